/**
 * Reads a sandboxed pod's output files after it exited, as the pod saw them:
 * its symbolic links resolved inside its own view of the file system, never
 * on the host; a host file only if the pod's uid could read it; never a FIFO
 * or a device. So a link to a host secret in an output parameter yields
 * nothing, and the runner (host root) reads nothing on the pod's behalf that
 * the pod could not have read itself.
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import { type HostPathMount, scriptPath } from "./PodPlan.js"
import { isUnder, podHostId } from "./processSpec.js"

/** What a sandboxed pod sees at its paths, for reading its outputs after it exited. */
export interface PodView {
  readonly podDir: string
  readonly hostPaths: ReadonlyArray<HostPathMount>
  readonly exposed: ReadonlyArray<string>
  readonly mounts: ReadonlyArray<string>
  /** Paths whose content the host cannot know (the pod's /proc, /dev, its /dev/shm) or that are hidden. */
  readonly hidden: ReadonlyArray<string>
  readonly script: boolean
}

interface Located {
  /** The host path of what the pod saw. */
  readonly file: string
  /**
   * "pod": in the pod's own directories (private /tmp, upper dir), readable
   * by the runner; "host": a host file, read only if the pod's unprivileged
   * uid could read it, checking folders up to `root` (the mount the pod saw it through).
   */
  readonly owner: "pod" | "host"
  readonly root: string
}

/** The host file behind one pod path, without following symbolic links; undefined when unknowable. */
const locate = (view: PodView, p: string): Located | undefined => {
  const rel = (dir: string) => path.posix.relative(dir, p)
  // Mounted last, so they win: hostPath volumes, the script, the kubelet's folders, then /tmp.
  for (const m of [...view.hostPaths].reverse()) {
    if (isUnder(p, m.mountPath)) return { file: path.join(m.hostPath, rel(m.mountPath)), owner: "host", root: m.hostPath }
  }
  if (view.script && p === scriptPath) return { file: path.join(view.podDir, "script"), owner: "pod", root: "/" }
  for (const dir of view.exposed) if (isUnder(p, dir)) return { file: path.join(dir, rel(dir)), owner: "host", root: dir }
  if (isUnder(p, "/tmp")) return { file: path.join(view.podDir, "tmp", rel("/tmp")), owner: "pod", root: "/" }
  if (view.hidden.some((h) => isUnder(p, h))) return undefined
  if (view.mounts.some((m) => isUnder(p, m))) return { file: p, owner: "host", root: "/" }
  const upper = path.join(view.podDir, "upper", p)
  try {
    // A character device 0/0 in the upper dir is a whiteout: the pod deleted the file.
    const st = fs.lstatSync(upper)
    return st.isCharacterDevice() && st.rdev === 0 ? undefined : { file: upper, owner: "pod", root: "/" }
  } catch {
    return { file: p, owner: "host", root: "/" }
  }
}

/**
 * Resolves a pod path as the pod's kernel would: symbolic links (the pod's
 * own too) are followed inside the pod's view, never on the host, so a link
 * to a host secret written by the pod does not make the runner read it.
 */
const resolveInPod = (view: PodView, podPath: string): Located | undefined => {
  let pending = podPath.split("/").filter((c) => c !== "")
  let current = "/"
  let links = 0
  while (pending.length > 0) {
    const name = pending.shift()!
    if (name === ".") continue
    if (name === "..") {
      current = path.posix.dirname(current)
      continue
    }
    const next = path.posix.join(current, name)
    const found = locate(view, next)
    if (found === undefined) return undefined
    let st: fs.Stats
    try {
      st = fs.lstatSync(found.file)
    } catch {
      return undefined
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) return undefined
      const target = fs.readlinkSync(found.file)
      pending = [...target.split("/").filter((c) => c !== ""), ...pending]
      if (target.startsWith("/")) current = "/"
      continue
    }
    current = next
  }
  return locate(view, current)
}

/** Whether the pod's uid and gid (no supplementary groups) have permission `bit` (4 read, 1 search) on a file. */
const podAllowed = (st: fs.Stats, bit: number): boolean =>
  ((st.uid === podHostId ? st.mode >> 6 : st.gid === podHostId ? st.mode >> 3 : st.mode) & bit) !== 0

/** Whether the pod may search the folders from `file`'s up to `root` (its own mode is checked on the open file). */
const podMayReach = (file: string, root: string): boolean => {
  try {
    for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
      if (!podAllowed(fs.statSync(dir), 1)) return false
      if (dir === root || dir === "/") return true
    }
  } catch {
    return false
  }
}

/**
 * Reads a regular file without following a final link or blocking on a
 * FIFO; a host file only if its mode, checked on the open file (another pod
 * may change a shared hostPath folder meanwhile), lets the pod read it.
 */
const readRegular = (file: string, asPod: boolean): string | undefined => readRegularBytes(file, asPod)?.toString("utf8")

const readRegularBytes = (file: string, asPod: boolean): Buffer | undefined => {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const st = fs.fstatSync(fd)
    return st.isFile() && (!asPod || podAllowed(st, 4)) ? fs.readFileSync(fd) : undefined
  } catch {
    return undefined
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Copies a regular file as `readRegularBytes` reads it (no final link
 * followed, no FIFO, a host file only if the pod may read it), streamed
 * and asynchronous: an artifact is never held whole in memory, and a large
 * one does not hold the node agent's event loop (other pods' status, leases,
 * logs) while it copies.
 */
const copyRegular = async (file: string, asPod: boolean, to: string, mode: number): Promise<boolean> => {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch {
    return false
  }
  try {
    const st = await fh.stat()
    if (!st.isFile() || (asPod && !podAllowed(st, 4))) return false
    const out = await fsp.open(to, fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, mode)
    try {
      // the streams close their handles when done (closing a handle a stream still holds open would wait for ever); closing again is a no-op
      await pipeline(fh.createReadStream({ highWaterMark: 1 << 20 }), out.createWriteStream())
    } finally {
      await out.close()
    }
    return true
  } catch {
    return false
  } finally {
    await fh.close()
  }
}

export const readOutput = (view: PodView, podPath: string): string | undefined => {
  const found = resolveInPod(view, path.posix.resolve("/", podPath))
  if (found === undefined) return undefined
  if (found.owner === "host" && !podMayReach(found.file, found.root)) return undefined
  return readRegular(found.file, found.owner === "host")
}

/** A pod folder's entry names as the pod saw them: the upper dir's over the host's (lower layer), whiteouts dropped later by `locate`. */
const podDirNames = (view: PodView, podDir: string, found: Located): ReadonlyArray<string> => {
  const names = new Set<string>()
  const add = (dir: string) => {
    try {
      for (const n of fs.readdirSync(dir)) names.add(n)
    } catch {
      // Not a folder on that layer.
    }
  }
  add(found.file)
  if (found.owner === "pod" && found.file === path.join(view.podDir, "upper", podDir)) add(podDir)
  return [...names].sort()
}

/**
 * Copies what the pod left at `podPath` (a file or a folder, the path's own
 * links resolved inside the pod's view) to the host path `dest`, for output
 * artifacts: links inside a folder are copied as links, never followed;
 * host files only if the pod's uid could read them; FIFOs and devices
 * skipped. False when the pod left nothing there. (Overlay's opaque folders,
 * a folder deleted and made again, are not detected: the lower layer's
 * entries would show through.)
 */
export const copyOut = async (view: PodView, podPath: string, dest: string): Promise<boolean> => {
  const root = path.posix.resolve("/", podPath)
  const found = resolveInPod(view, root)
  if (found === undefined) return false
  if (found.owner === "host" && !podMayReach(found.file, found.root)) return false
  const copy = async (p: string, loc: Located, to: string, top: boolean): Promise<boolean> => {
    let st: fs.Stats
    try {
      st = fs.lstatSync(loc.file)
    } catch {
      return false
    }
    if (st.isCharacterDevice() && st.rdev === 0) return false
    if (st.isSymbolicLink() && !top) {
      fs.symlinkSync(fs.readlinkSync(loc.file), to)
      return true
    }
    if (st.isDirectory()) {
      if (loc.owner === "host" && !podAllowed(st, 5)) return false
      fs.mkdirSync(to, { mode: st.mode & 0o777 })
      for (const name of podDirNames(view, p, loc)) {
        const child = path.posix.join(p, name)
        const childLoc = locate(view, child)
        if (childLoc !== undefined) await copy(child, childLoc, path.join(to, name), false)
      }
      return true
    }
    return copyRegular(loc.file, loc.owner === "host", to, st.mode & 0o777)
  }
  return copy(root, found, dest, true)
}
