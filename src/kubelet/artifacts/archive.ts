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
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { packTar, type TarEntry, TarFormatError, unpackTar } from "./tar.js"

export class ArchiveError extends Error {
  override readonly name = "ArchiveError"
}

/** Go's gzip.DefaultCompression. */
export const defaultCompression = -1

/**
 * The entries `TarGzToWriter` writes for `source` (a file or a directory; its
 * own links are not followed), under `base`: the base name of the path it
 * tars, which is the artifact's path in the pod (`/mainctrfs/<path>` or the
 * container's `<path>`), whatever the host copy at `source` is called.
 */
export const treeEntries = (source: string, base: string = path.basename(source)): ReadonlyArray<TarEntry> => {
  const st = fs.statSync(source)
  if (st.isFile()) return [{ name: base, type: "file", mode: st.mode & 0o7777, data: fs.readFileSync(source), mtime: st.mtimeMs / 1000 }]
  if (!st.isDirectory()) throw new ArchiveError(`${source} is not a regular file or directory`)
  const entries: Array<TarEntry> = []
  const walk = (dir: string, rel: string) => {
    const dst = fs.lstatSync(dir)
    entries.push({ name: rel, type: "dir", mode: dst.mode & 0o7777, mtime: dst.mtimeMs / 1000 })
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name)
      const childRel = `${rel}/${name}`
      const cst = fs.lstatSync(full)
      if (cst.isSymbolicLink()) {
        entries.push({ name: childRel, type: "symlink", mode: cst.mode & 0o7777, linkname: fs.readlinkSync(full), mtime: cst.mtimeMs / 1000 })
      } else if (cst.isDirectory()) {
        walk(full, childRel)
      } else if (cst.isFile()) {
        entries.push({ name: childRel, type: "file", mode: cst.mode & 0o7777, data: fs.readFileSync(full), mtime: cst.mtimeMs / 1000 })
      }
    }
  }
  walk(source, base)
  return entries
}

/** gzip of `data` at Go's `level` (-1 default, 0 none, 1-9). */
export const gzip = (data: Uint8Array, level: number): Buffer => {
  if (!Number.isInteger(level) || level < -1 || level > 9) throw new ArchiveError(`gzip: invalid compression level: ${level}`)
  return zlib.gzipSync(data, { level: level === -1 ? zlib.constants.Z_DEFAULT_COMPRESSION : level })
}

/** `source` as argoexec's `.tgz`, its top entry named `base` (default: `source`'s base name). */
export const tarGz = (source: string, level: number, base?: string): Buffer => gzip(packTar(treeEntries(source, base)), level)

const gunzip = (data: Uint8Array): Buffer | undefined => {
  try {
    return zlib.gunzipSync(data)
  } catch {
    return undefined
  }
}

/** Whether `data` is a gzipped tar with at least one entry header (`isTarball`). */
export const isTarGz = (data: Uint8Array): boolean => {
  const raw = gunzip(data)
  if (raw === undefined) return false
  try {
    unpackTar(raw)
    return true
  } catch {
    return false
  }
}

const inside = (p: string, dir: string) => p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep)

/** Writes the tar entries under `dest` (a fresh directory), refusing anything that would land outside it. */
const extractEntries = (entries: ReadonlyArray<TarEntry>, dest: string) => {
  const root = path.resolve(dest)
  const realRoot = fs.realpathSync(root)
  for (const e of entries) {
    const target = path.join(root, path.normalize(e.name))
    if (!inside(target, root)) {
      if (e.type === "dir" && target === root) continue
      throw new ArchiveError(`illegal file path: ${e.name}`)
    }
    if (e.type === "dir") {
      fs.mkdirSync(target, { recursive: true, mode: 0o755 })
      continue
    }
    const parent = path.dirname(target)
    fs.mkdirSync(parent, { recursive: true, mode: 0o755 })
    const realParent = fs.realpathSync(parent)
    if (realParent !== realRoot && !inside(realParent, realRoot)) {
      throw new ArchiveError(`illegal file path after symlink resolution: ${e.name} resolves outside destination`)
    }
    if (e.type === "symlink") {
      const link = e.linkname ?? ""
      const resolved = path.isAbsolute(link) ? path.normalize(link) : path.join(path.dirname(target), link)
      if (!inside(resolved, root)) throw new ArchiveError(`illegal symlink target: ${e.name} -> ${link}`)
      fs.symlinkSync(link, target)
      continue
    }
    const fd = fs.openSync(target, fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, e.mode)
    try {
      fs.writeSync(fd, e.data ?? new Uint8Array(0))
    } finally {
      fs.closeSync(fd)
    }
    if (e.mtime !== undefined) fs.utimesSync(target, e.mtime, e.mtime)
  }
}

/**
 * Unpacks a `.tgz` to `dest` as argoexec's `untar`: into `<dest>.tmpdir`,
 * then a single top-level entry is renamed to `dest`, or the folder itself
 * when there are several.
 */
export const untarGz = (data: Uint8Array, dest: string): void => {
  const raw = gunzip(data)
  if (raw === undefined) throw new ArchiveError("gzip: invalid header")
  let entries: ReadonlyArray<TarEntry>
  try {
    entries = unpackTar(raw)
  } catch (e) {
    throw new ArchiveError(e instanceof TarFormatError ? e.message : String(e))
  }
  const tmp = `${dest}.tmpdir`
  fs.rmSync(tmp, { recursive: true, force: true })
  fs.mkdirSync(tmp, { recursive: true })
  try {
    extractEntries(entries, tmp)
    const top = fs.readdirSync(tmp)
    if (top.length === 1) {
      fs.renameSync(path.join(tmp, top[0]!), dest)
      fs.rmdirSync(tmp)
    } else {
      fs.renameSync(tmp, dest)
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** `mode` on the artifact, and on everything under it with `recurseMode`. */
export const chmodTree = (p: string, mode: number, recurse: boolean): void => {
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
