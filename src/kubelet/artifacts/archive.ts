/**
 * Artifact archives on the host's file system, as argoexec makes and opens
 * them: a file or directory packed as tar+gzip (`TarGzToWriter`: a file
 * under its base name, a directory's entries under the directory's base
 * name, symbolic links kept as links), the gzip level from `archive.tar`
 * (`compressionLevel`; default gzip's default); unpacked as `untar`+`unpack`
 * do (a single top-level entry becomes the destination itself, several
 * become its contents); `isTarball` (auto-detection when `archive` is not
 * given); `chmod` for `mode`/`recurseMode`.
 *
 * Extraction never writes outside the destination: names with `..`,
 * absolute names, links pointing outside and files under such links are
 * refused (upstream's "illegal file path" errors).
 *
 * Artifacts are streamed, never held whole: packing reads each file in
 * chunks into a streaming gzip written to a host file; unpacking streams a
 * file through gunzip and the tar reader onto the disk, bounded by a
 * maximum decompressed size (a gzip bomb fails after `maxBytes`, not after
 * filling memory or disk).
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Readable, Transform } from "node:stream"
import { pipeline } from "node:stream/promises"
import * as zlib from "node:zlib"
import { entryHeader, isTarHeader, padding, TarFormatError, trailer, readTarStream } from "./tar.js"

export class ArchiveError extends Error {
  override readonly name = "ArchiveError"
}

/** Go's gzip.DefaultCompression. */
export const defaultCompression = -1

/** Fails a stream once more than `maxBytes` went through it. */
export const byteCap = (maxBytes: number, exceeded: () => Error): Transform => {
  let seen = 0
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length
      if (seen > maxBytes) return done(exceeded())
      done(null, chunk)
    }
  })
}

/** Fails a stream (with `timedOut()`) when no bytes went through it for `idleMs` (real time). */
export const idleCap = (idleMs: number, timedOut: () => Error): Transform => {
  let timer: NodeJS.Timeout | undefined
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, done) {
      arm()
      done(null, chunk)
    },
    flush(done) {
      clearTimeout(timer)
      done()
    },
    destroy(err, done) {
      clearTimeout(timer)
      done(err)
    }
  })
  const arm = () => {
    clearTimeout(timer)
    timer = setTimeout(() => t.destroy(timedOut()), idleMs)
  }
  arm()
  return t
}

/** Writes a chunk fully (a FileHandle write may be partial). */
const writeAll = async (fh: fsp.FileHandle, chunk: Uint8Array) => {
  let at = 0
  while (at < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, at, chunk.length - at)
    at += bytesWritten
  }
}

/** The tar stream of `source` (a file or a directory, its own links not followed) under `base`, chunk by chunk. */
async function* tarChunks(source: string, base: string): AsyncGenerator<Uint8Array> {
  const fileEntry = async function*(file: string, name: string, follow: boolean): AsyncGenerator<Uint8Array> {
    const fh = await fsp.open(file, fs.constants.O_RDONLY | (follow ? 0 : fs.constants.O_NOFOLLOW) | fs.constants.O_NONBLOCK)
    try {
      const st = await fh.stat()
      if (!st.isFile()) return
      const size = st.size
      yield entryHeader({ name, type: "file", mode: st.mode & 0o7777, mtime: st.mtimeMs / 1000 }, size)
      let left = size
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(left, 1 << 20))
        const { bytesRead } = await fh.read(buf, 0, buf.length, null)
        // A file that shrank meanwhile: the header's size is kept, the rest zeros (as a tar writer must).
        if (bytesRead === 0) {
          yield new Uint8Array(left)
          break
        }
        left -= bytesRead
        yield buf.subarray(0, bytesRead)
      }
      yield padding(size)
    } finally {
      await fh.close()
    }
  }
  const walk = async function*(dir: string, rel: string): AsyncGenerator<Uint8Array> {
    const dst = await fsp.lstat(dir)
    yield entryHeader({ name: rel, type: "dir", mode: dst.mode & 0o7777, mtime: dst.mtimeMs / 1000 }, 0)
    for (const name of (await fsp.readdir(dir)).sort()) {
      const full = path.join(dir, name)
      const childRel = `${rel}/${name}`
      const cst = await fsp.lstat(full)
      if (cst.isSymbolicLink()) {
        yield entryHeader({ name: childRel, type: "symlink", mode: cst.mode & 0o7777, linkname: await fsp.readlink(full), mtime: cst.mtimeMs / 1000 }, 0)
      } else if (cst.isDirectory()) {
        yield* walk(full, childRel)
      } else if (cst.isFile()) {
        yield* fileEntry(full, childRel, false)
      }
    }
  }
  const st = await fsp.stat(source)
  if (st.isFile()) yield* fileEntry(source, base, true)
  else if (st.isDirectory()) yield* walk(source, base)
  else throw new ArchiveError(`${source} is not a regular file or directory`)
  yield trailer()
}

const zlibLevel = (level: number) => {
  if (!Number.isInteger(level) || level < -1 || level > 9) throw new ArchiveError(`gzip: invalid compression level: ${level}`)
  return level === -1 ? zlib.constants.Z_DEFAULT_COMPRESSION : level
}

/**
 * `source` as argoexec's `.tgz`, streamed into the host file `file` (tar
 * writer → gzip at `level` → file), its top entry named `base`.
 */
export const tarGzToFile = async (
  source: string,
  file: string,
  level: number,
  base: string = path.basename(source),
  /** Aborting stops the packing (the pod's deadline, an interruption). */
  signal?: AbortSignal
): Promise<void> => {
  const gz = zlib.createGzip({ level: zlibLevel(level) })
  await pipeline(Readable.from(tarChunks(source, base)), gz, fs.createWriteStream(file, { mode: 0o600 }), ...(signal !== undefined ? [{ signal }] : []))
}

/** Whether the host file is a gzipped tar: gzip's magic, then a tar header in the first 512 decompressed bytes (`isTarball`). */
export const isTarGzFile = async (file: string): Promise<boolean> => {
  const fh = await fsp.open(file, "r")
  try {
    const magic = Buffer.alloc(2)
    const { bytesRead } = await fh.read(magic, 0, 2, 0)
    if (bytesRead < 2 || magic[0] !== 0x1f || magic[1] !== 0x8b) return false
  } finally {
    await fh.close()
  }
  const input = fs.createReadStream(file)
  const gunzip = zlib.createGunzip()
  const chunks: Array<Buffer> = []
  let have = 0
  try {
    for await (const chunk of input.pipe(gunzip) as AsyncIterable<Buffer>) {
      chunks.push(chunk)
      have += chunk.length
      if (have >= 512) break
    }
  } catch {
    return false
  } finally {
    input.destroy()
    gunzip.destroy()
  }
  return isTarHeader(Buffer.concat(chunks).subarray(0, 512))
}

const inside = (p: string, dir: string) => p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep)

export interface UntarLimits {
  /** Bound on the decompressed bytes (the whole tar stream, headers included). */
  readonly maxBytes: number
  /** Aborting stops the unpacking (the pod's deadline, an interruption). */
  readonly signal?: AbortSignal | undefined
}

/** Default bound on an artifact's decompressed size: 10 GiB. */
export const defaultMaxDecompressedBytes = 10 * 1024 ** 3

const insideOrAt = (p: string, dir: string) => p === dir || inside(p, dir)

const lstatOrUndefined = async (p: string): Promise<fs.Stats | undefined> => {
  try {
    return await fsp.lstat(p)
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return undefined
    throw e
  }
}

/**
 * Whether the link `link`, placed in the real folder `realParent`, resolves inside `realRoot` as
 * the kernel would resolve it: component by component on the real file system (a `..` after a
 * link goes up from the link's real target, never lexically), each step required inside the root.
 * Past the first component that does not exist yet, no `..` is allowed: a later entry could make
 * that component a link to a shallower folder, and the `..` would then climb out.
 */
export const linkStaysInside = async (realParent: string, link: string, realRoot: string): Promise<boolean> => {
  let cur = path.isAbsolute(link) ? "/" : realParent
  const parts = link.split("/").filter((c) => c !== "" && c !== ".")
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    if (part === "..") {
      cur = path.dirname(cur)
    } else {
      const next = path.join(cur, part)
      const st = await lstatOrUndefined(next)
      if (st === undefined) {
        if (parts.slice(i + 1).includes("..")) return false
        return insideOrAt(path.join(next, ...parts.slice(i + 1)), realRoot)
      }
      if (st.isSymbolicLink()) {
        try {
          cur = await fsp.realpath(next)
        } catch {
          return false // a dangling link in the way: where it will lead is not known
        }
      } else cur = next
    }
    // an absolute link may pass through `/` and the folders above the root on its way down: only where it ends counts then
    if (!path.isAbsolute(link) && !insideOrAt(cur, realRoot)) return false
  }
  return insideOrAt(cur, realRoot)
}

/**
 * The real path of folder `rel` under `realRoot`, made one level at a time: each existing level
 * that is a link is followed only to a real folder inside the root, so nothing is ever made or
 * written outside it.
 */
const realFolder = async (realRoot: string, rel: string, name: string): Promise<string> => {
  let cur = realRoot
  for (const part of rel.split(path.sep).filter((c) => c !== "" && c !== ".")) {
    const next = path.join(cur, part)
    const st = await lstatOrUndefined(next)
    if (st === undefined) {
      await fsp.mkdir(next, { mode: 0o755 })
      cur = next
      continue
    }
    const real = st.isSymbolicLink() ? await fsp.realpath(next).catch(() => undefined) : next
    if (real === undefined || !insideOrAt(real, realRoot)) {
      throw new ArchiveError(`illegal file path after symlink resolution: ${name} resolves outside destination`)
    }
    if (!(await fsp.stat(real)).isDirectory()) throw new ArchiveError(`illegal file path: ${name}: ${part} is not a directory`)
    cur = real
  }
  return cur
}

/** Writes the streamed tar entries under `dest` (a fresh directory), refusing anything that would land outside it. */
const extractTo = (dest: string) => {
  const root = path.resolve(dest)
  const realRoot = fs.realpathSync(root)
  return async (e: Parameters<Parameters<typeof readTarStream>[1]>[0], read: Parameters<Parameters<typeof readTarStream>[1]>[1]) => {
    const target = path.join(root, path.normalize(e.name))
    if (!inside(target, root)) {
      if (e.type === "dir" && target === root) return
      throw new ArchiveError(`illegal file path: ${e.name}`)
    }
    const rel = path.relative(root, target)
    if (e.type === "dir") {
      await realFolder(realRoot, rel, e.name)
      return
    }
    // the entry goes into its folder's real path (checked inside the root before anything is made)
    const realParent = await realFolder(realRoot, path.dirname(rel), e.name)
    const at = path.join(realParent, path.basename(rel))
    if (e.type === "symlink") {
      const link = e.linkname ?? ""
      const lexical = path.isAbsolute(link) ? path.normalize(link) : path.join(path.dirname(target), link)
      if (!inside(lexical, root) || !(await linkStaysInside(realParent, link, realRoot))) {
        throw new ArchiveError(`illegal symlink target: ${e.name} -> ${link}`)
      }
      await fsp.symlink(link, at)
      return
    }
    const fh = await fsp.open(at, fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, e.mode)
    try {
      await read((chunk) => writeAll(fh, chunk))
    } finally {
      await fh.close()
    }
    if (e.mtime !== undefined) await fsp.utimes(at, e.mtime, e.mtime)
  }
}

/** Every link under `dir` (not followed), for the re-check of a moved top-level folder. */
const linksUnder = async (dir: string): Promise<ReadonlyArray<string>> => {
  const out: Array<string> = []
  const walk = async (d: string) => {
    for (const entry of await fsp.readdir(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name)
      if (entry.isSymbolicLink()) out.push(full)
      else if (entry.isDirectory()) await walk(full)
    }
  }
  await walk(dir)
  return out
}

/**
 * A single top-level entry is moved up one level (to `dest`): a link there would be re-based onto
 * `dest`'s folder (the other inputs), so a top-level link is refused, and each link inside a
 * top-level folder must still resolve inside that folder alone.
 */
const checkMovedTop = async (top: string, name: string): Promise<void> => {
  const st = await fsp.lstat(top)
  if (st.isSymbolicLink()) throw new ArchiveError(`illegal symlink: the archive's single top-level entry ${name} is a symlink`)
  if (!st.isDirectory()) return
  const realTop = await fsp.realpath(top)
  for (const l of await linksUnder(top)) {
    const link = await fsp.readlink(l)
    if (!(await linkStaysInside(await fsp.realpath(path.dirname(l)), link, realTop))) {
      throw new ArchiveError(`illegal symlink target: ${path.relative(path.dirname(top), l)} -> ${link} leaves the archive's top-level folder`)
    }
  }
}

/**
 * Unpacks the host `.tgz` file to `dest` as argoexec's `untar`, streamed
 * (file → gunzip → size cap → tar reader → disk): into `<dest>.tmpdir`, then
 * a single top-level entry is renamed to `dest`, or the folder itself when
 * there are several.
 */
export const untarGzFile = async (file: string, dest: string, limits: UntarLimits = { maxBytes: defaultMaxDecompressedBytes }): Promise<void> => {
  const tmp = `${dest}.tmpdir`
  await fsp.rm(tmp, { recursive: true, force: true })
  await fsp.mkdir(tmp, { recursive: true })
  try {
    const extract = extractTo(tmp)
    try {
      await pipeline(
        fs.createReadStream(file),
        zlib.createGunzip(),
        byteCap(limits.maxBytes, () => new ArchiveError(`the archive decompresses to more than the limit of ${limits.maxBytes} bytes`)),
        async (source: AsyncIterable<Uint8Array>) => readTarStream(source, extract),
        ...(limits.signal !== undefined ? [{ signal: limits.signal }] : [])
      )
    } catch (e) {
      if (e instanceof ArchiveError) throw e
      if (e instanceof TarFormatError) throw new ArchiveError(e.message)
      const code = (e as { code?: string }).code
      if (typeof code === "string" && code.startsWith("Z_")) {
        // Go's gzip reader's words for input that is no gzip at all.
        const message = (e as Error).message
        throw new ArchiveError(/incorrect header check|unknown compression method/.test(message) ? "gzip: invalid header" : `gzip: ${message}`)
      }
      throw e
    }
    const top = await fsp.readdir(tmp)
    if (top.length === 1) {
      await checkMovedTop(path.join(tmp, top[0]!), top[0]!)
      await fsp.rename(path.join(tmp, top[0]!), dest)
      await fsp.rmdir(tmp)
    } else {
      await fsp.rename(tmp, dest)
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true })
  }
}

/** `mode` on the artifact, and on everything under it with `recurseMode`. */
export const chmodTree = (p: string, mode: number, recurse: boolean): void => {
  // A link (even the artifact itself, a single top-level link in its tarball) is not followed: chmod would change its target.
  if (fs.lstatSync(p).isSymbolicLink()) return
  fs.chmodSync(p, mode)
  if (!recurse || !fs.lstatSync(p).isDirectory()) return
  for (const name of fs.readdirSync(p)) {
    const child = path.join(p, name)
    if (fs.lstatSync(child).isSymbolicLink()) continue
    chmodTree(child, mode, true)
  }
}

/** Regular files under `dir` with their slash-separated relative names, links skipped (`generatePutTasks`). */
export const filesUnder = (dir: string): ReadonlyArray<{ readonly rel: string; readonly file: string }> => {
  const out: Array<{ rel: string; file: string }> = []
  const walk = (d: string, rel: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const full = path.join(d, name)
      const r = rel === "" ? name : `${rel}/${name}`
      const st = fs.lstatSync(full)
      if (st.isDirectory()) walk(full, r)
      else if (st.isFile()) out.push({ rel: r, file: full })
    }
  }
  walk(dir, "")
  return out
}

/**
 * Why the host must not use the staged input `hostPath` (bind-mount it, read it), or undefined:
 * a link (the single top-level entry of an archive is refused when unpacked, so this is a second
 * guard) whose real path is not inside the folder it was staged in.
 */
export const stagedInputRefusal = (hostPath: string): string | undefined => {
  let st: fs.Stats
  try {
    st = fs.lstatSync(hostPath)
  } catch {
    return undefined // not there: whoever uses it says so
  }
  if (!st.isSymbolicLink()) return undefined
  const refusal = `the staged input ${path.basename(hostPath)} is a symlink leading outside its stage folder`
  try {
    const stage = fs.realpathSync(path.dirname(hostPath))
    return inside(fs.realpathSync(hostPath), stage) ? undefined : refusal
  } catch {
    return refusal
  }
}
