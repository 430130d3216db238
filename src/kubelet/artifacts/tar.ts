/**
 * A minimal tar codec for artifacts: writes what Go's `archive/tar` writes
 * for argoexec's `TarGzToWriter` (ustar headers, a PAX record for names or
 * link targets that do not fit) and reads what such tools write (ustar, GNU
 * long names `L`/`K`, PAX `x` records; global `g` records are skipped).
 * Regular files, directories and symbolic links only: hard links, devices
 * and FIFOs are not artifacts and are skipped on read.
 *
 * Streamed, with no file system of its own: the writer's pieces
 * (`entryHeader`, `padding`, `trailer`) are put around each entry's data by
 * the packer (archive.ts `tarChunks`), and `readTarStream` reads a stream
 * entry by entry. It never decides where an entry lands on disk; the
 * extracting side (archive.ts) checks names against traversal.
 */

/** An entry's header fields (its data, for a file, follows the header in the stream). */
export interface TarEntry {
  /** Slash-separated, relative. */
  readonly name: string
  readonly type: "file" | "dir" | "symlink"
  /** Permission bits (0o7777 at most). */
  readonly mode: number
  readonly linkname?: string | undefined
  /** Seconds since the epoch. */
  readonly mtime?: number | undefined
}

export class TarFormatError extends Error {
  override readonly name = "TarFormatError"
}

const block = 512
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const octal = (value: number, width: number): string => value.toString(8).padStart(width - 1, "0") + "\0"

const putString = (header: Uint8Array, offset: number, width: number, value: string) => {
  const bytes = encoder.encode(value)
  header.set(bytes.subarray(0, width), offset)
}

/** Splits a long name into ustar's prefix (155) and name (100), or undefined when it cannot. */
const splitUstar = (name: string): { prefix: string; name: string } | undefined => {
  if (encoder.encode(name).length <= 100) return { prefix: "", name }
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== "/") continue
    const prefix = name.slice(0, i)
    const rest = name.slice(i + 1)
    if (encoder.encode(prefix).length <= 155 && encoder.encode(rest).length <= 100 && rest !== "") return { prefix, name: rest }
  }
  return undefined
}

const header = (name: string, prefix: string, typeflag: string, mode: number, size: number, mtime: number, linkname: string) => {
  const h = new Uint8Array(block)
  putString(h, 0, 100, name)
  putString(h, 100, 8, octal(mode & 0o7777, 8))
  putString(h, 108, 8, octal(0, 8))
  putString(h, 116, 8, octal(0, 8))
  putString(h, 124, 12, octal(size, 12))
  putString(h, 136, 12, octal(Math.max(0, Math.floor(mtime)), 12))
  h.fill(0x20, 148, 156)
  putString(h, 156, 1, typeflag)
  putString(h, 157, 100, linkname)
  putString(h, 257, 6, "ustar\0")
  putString(h, 263, 2, "00")
  putString(h, 345, 155, prefix)
  let sum = 0
  for (const b of h) sum += b
  putString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ")
  return h
}

const padded = (data: Uint8Array): Array<Uint8Array> => {
  const rest = data.length % block
  return rest === 0 ? [data] : [data, new Uint8Array(block - rest)]
}

/** A PAX record "<len> key=value\n", whose length counts itself. */
const paxRecord = (key: string, value: string): string => {
  const body = ` ${key}=${value}\n`
  const bodyLen = encoder.encode(body).length
  let len = bodyLen + 1
  while (bodyLen + String(len).length !== len) len = bodyLen + String(len).length
  return `${len}${body}`
}

/** The header block(s) of one entry whose data is `size` bytes (a PAX record first when the name or link does not fit ustar). */
export const entryHeader = (e: TarEntry, size: number): Uint8Array => {
  // As argoexec's tarDir: a folder's name as given, with no trailing slash (it sets header.Name itself).
  const name = e.name
  const linkname = e.type === "symlink" ? e.linkname ?? "" : ""
  const split = splitUstar(name)
  const pax: Array<string> = []
  if (split === undefined) pax.push(paxRecord("path", name))
  if (encoder.encode(linkname).length > 100) pax.push(paxRecord("linkpath", linkname))
  const mtime = e.mtime ?? 0
  const parts: Array<Uint8Array> = []
  if (pax.length > 0) {
    const body = encoder.encode(pax.join(""))
    parts.push(header("PaxHeaders/" + name.slice(-80), "", "x", 0o644, body.length, mtime, ""), ...padded(body))
  }
  const typeflag = e.type === "file" ? "0" : e.type === "dir" ? "5" : "2"
  parts.push(header(split?.name ?? name.slice(0, 100), split?.prefix ?? "", typeflag, e.mode, e.type === "file" ? size : 0, mtime, linkname.slice(0, 100)))
  return concat(parts)
}

/** The zero bytes that pad an entry's `size` bytes of data to a whole block. */
export const padding = (size: number): Uint8Array => new Uint8Array(size % block === 0 ? 0 : block - (size % block))

/** The two zero blocks that end a tar stream. */
export const trailer = (): Uint8Array => new Uint8Array(block * 2)

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const total = parts.reduce((n, p) => n + p.length, 0)
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

const readString = (buf: Uint8Array, offset: number, width: number): string => {
  const slice = buf.subarray(offset, offset + width)
  const end = slice.indexOf(0)
  return decoder.decode(end === -1 ? slice : slice.subarray(0, end))
}

const readNumber = (buf: Uint8Array, offset: number, width: number, field: string): number => {
  // GNU base-256 for large values: high bit of the first byte set.
  if ((buf[offset]! & 0x80) !== 0) {
    let value = buf[offset]! & 0x7f
    for (let i = 1; i < width; i++) value = value * 256 + buf[offset + i]!
    return value
  }
  const text = readString(buf, offset, width).trim()
  if (text === "") return 0
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`invalid tar header: ${field} is not octal`)
  return parseInt(text, 8)
}

const checksumOk = (h: Uint8Array): boolean => {
  const stored = readNumber(h, 148, 8, "checksum")
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < block; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  return stored === unsigned || stored === signed
}

const parsePax = (body: Uint8Array): Record<string, string> => {
  const out: Record<string, string> = {}
  const text = decoder.decode(body)
  let at = 0
  while (at < text.length) {
    const space = text.indexOf(" ", at)
    if (space === -1) break
    const len = parseInt(text.slice(at, space), 10)
    if (!Number.isFinite(len) || len <= 0) throw new TarFormatError("invalid tar PAX record")
    const record = text.slice(space + 1, at + len - 1)
    const eq = record.indexOf("=")
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1)
    at += len
  }
  return out
}

/** Whether `h` (the first 512 bytes of a stream) is a tar header: not empty, its checksum right. */
export const isTarHeader = (h: Uint8Array): boolean => {
  if (h.length < block || h.subarray(0, block).every((b) => b === 0)) return false
  try {
    return checksumOk(h.subarray(0, block))
  } catch {
    return false
  }
}

/** Bound on a PAX record or GNU long name held in memory. */
const maxMetaBytes = 1 << 20

/** Reads exact byte counts from an async stream of chunks, holding no more than one chunk. */
class ByteReader {
  private chunks: Array<Uint8Array> = []
  private length = 0
  private ended = false
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  /** Whether `n` bytes are buffered (false: the stream ended first). */
  async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.ended) {
      const r = await this.it.next()
      if (r.done === true) this.ended = true
      else if (r.value.length > 0) {
        this.chunks.push(r.value)
        this.length += r.value.length
      }
    }
    return this.length >= n
  }

  /** Up to `n` buffered bytes (at least one when any is buffered). */
  takeSome(n: number): Uint8Array {
    const first = this.chunks[0]!
    if (first.length <= n) {
      this.chunks.shift()
      this.length -= first.length
      return first
    }
    this.chunks[0] = first.subarray(n)
    this.length -= n
    return first.subarray(0, n)
  }

  /** Exactly `n` bytes, which must be buffered. */
  take(n: number): Uint8Array {
    const parts: Array<Uint8Array> = []
    let left = n
    while (left > 0) {
      const part = this.takeSome(left)
      parts.push(part)
      left -= part.length
    }
    return parts.length === 1 ? parts[0]! : concat(parts)
  }

  /** Skips or streams `n` bytes to `sink`; throws when the stream ends first. */
  async pass(n: number, sink?: (chunk: Uint8Array) => Promise<void>): Promise<void> {
    let left = n
    while (left > 0) {
      if (!(await this.fill(1))) throw new TarFormatError("truncated tar archive")
      const part = this.takeSome(left)
      left -= part.length
      if (sink !== undefined) await sink(part)
    }
  }
}

/** One entry of a streamed tar: its header, and its data (files only) to be read before the next entry. */
export type TarStreamEntry = TarEntry & { readonly size: number }

/**
 * Reads a tar stream (uncompressed) entry by entry: `onEntry` is called with
 * each file, folder or link and a `read` that streams the entry's data to a
 * sink (files; not calling it skips the data); throws `TarFormatError` when
 * the stream is not a tar. Nothing but one chunk and one entry's metadata is
 * held.
 */
export const readTarStream = async (
  source: AsyncIterable<Uint8Array>,
  onEntry: (entry: TarStreamEntry, read: (sink: (chunk: Uint8Array) => Promise<void>) => Promise<void>) => Promise<void>
): Promise<void> => {
  const reader = new ByteReader(source[Symbol.asyncIterator]())
  let longName: string | undefined
  let longLink: string | undefined
  let pax: Record<string, string> = {}
  let sawHeader = false
  const meta = async (size: number) => {
    if (size > maxMetaBytes) throw new TarFormatError(`tar metadata record of ${size} bytes is too large`)
    if (!(await reader.fill(size))) throw new TarFormatError("truncated tar archive")
    const data = reader.take(size)
    await reader.pass(padding(size).length)
    return data
  }
  while (await reader.fill(block)) {
    const h = reader.take(block)
    if (h.every((b) => b === 0)) {
      if (!sawHeader) throw new TarFormatError("not a tar archive: it starts with an empty block")
      return
    }
    if (!checksumOk(h)) throw new TarFormatError(sawHeader ? "invalid tar header checksum" : "not a tar archive")
    sawHeader = true
    const size = readNumber(h, 124, 12, "size")
    const typeflag = String.fromCharCode(h[156]!)
    if (typeflag === "L") {
      const d = await meta(size)
      longName = readString(d, 0, d.length)
      continue
    }
    if (typeflag === "K") {
      const d = await meta(size)
      longLink = readString(d, 0, d.length)
      continue
    }
    if (typeflag === "x") {
      pax = { ...pax, ...parsePax(await meta(size)) }
      continue
    }
    if (typeflag === "g") {
      await reader.pass(size + padding(size).length)
      continue
    }
    const magic = readString(h, 257, 6)
    const prefix = magic.startsWith("ustar") ? readString(h, 345, 155) : ""
    const short = readString(h, 0, 100)
    const name = pax.path ?? longName ?? (prefix !== "" ? `${prefix}/${short}` : short)
    const linkname = pax.linkpath ?? longLink ?? readString(h, 157, 100)
    const mode = readNumber(h, 100, 8, "mode") & 0o7777
    const mtime = readNumber(h, 136, 12, "mtime")
    longName = undefined
    longLink = undefined
    pax = {}
    const type = typeflag === "0" || typeflag === "\0" || typeflag === "7" ? "file" : typeflag === "5" ? "dir" : typeflag === "2" ? "symlink" : undefined
    let consumed = false
    if (type !== undefined) {
      await onEntry({ name, type, mode, mtime, size: type === "file" ? size : 0, ...(type === "symlink" ? { linkname } : {}) }, async (sink) => {
        if (consumed) return
        consumed = true
        await reader.pass(size, sink)
      })
    }
    // Hard links, devices, FIFOs: not artifacts; data not read is skipped.
    if (!consumed) await reader.pass(size)
    await reader.pass(padding(size).length)
  }
  if (!sawHeader) throw new TarFormatError("not a tar archive")
  // Go's reader accepts a stream cut after the last entry; so do we.
}
