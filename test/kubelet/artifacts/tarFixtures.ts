/**
 * Tar fixtures for the artifact tests, made and read with the streaming
 * codec's own pieces (src/kubelet/artifacts/tar.ts, archive.ts), so the
 * tests exercise the code pods' artifacts go through: crafted archives
 * (names and links no file system would give, to test refusals) are written
 * with `entryHeader`/`padding`/`trailer`, trees are packed by `tarGzToFile`,
 * and archives are read back by `readTarStream`.
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { tarGzToFile } from "../../../src/kubelet/artifacts/archive.js"
import { entryHeader, padding, readTarStream, type TarEntry, trailer } from "../../../src/kubelet/artifacts/tar.js"

/** An entry of a fixture archive, with its data (files). */
export interface FixtureEntry extends TarEntry {
  readonly data?: Uint8Array | undefined
}

/** The tar stream (uncompressed) of `entries`, in order, with the two zero blocks at the end. */
export const tarBytes = (entries: ReadonlyArray<FixtureEntry>): Buffer =>
  Buffer.concat([
    ...entries.flatMap((e) => {
      const data = e.type === "file" ? e.data ?? new Uint8Array(0) : new Uint8Array(0)
      return [entryHeader(e, data.length), data, padding(data.length)]
    }),
    trailer()
  ])

/** `entries` as a gzipped tar. */
export const tgzBytes = (entries: ReadonlyArray<FixtureEntry>): Buffer => zlib.gzipSync(tarBytes(entries))

/** The entries of a tar stream (uncompressed), their data read whole (small archives). */
export const readTar = async (tar: Uint8Array | AsyncIterable<Uint8Array>): Promise<Array<FixtureEntry>> => {
  const source = tar instanceof Uint8Array ? (async function*() { yield tar })() : tar
  const entries: Array<FixtureEntry> = []
  await readTarStream(source, async (entry, read) => {
    const chunks: Array<Uint8Array> = []
    if (entry.type === "file") await read(async (chunk) => void chunks.push(Buffer.from(chunk)))
    const { size: _size, ...rest } = entry
    entries.push(entry.type === "file" ? { ...rest, data: Buffer.concat(chunks) } : rest)
  })
  return entries
}

/** The entries of a gzipped tar, in memory or in a host file. */
export const readTgz = (tgz: Uint8Array | string): Promise<Array<FixtureEntry>> =>
  readTar(typeof tgz === "string" ? fs.createReadStream(tgz).pipe(zlib.createGunzip()) : zlib.gunzipSync(tgz))

/** `source` packed as argoexec's `.tgz` by the streaming packer (`tarGzToFile`), its bytes. */
export const packedTgz = async (source: string, level: number, base?: string): Promise<Buffer> => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "flotilla-tgz-"))
  try {
    const file = path.join(dir, "packed.tgz")
    await tarGzToFile(source, file, level, base)
    return await fsp.readFile(file)
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
  }
}
