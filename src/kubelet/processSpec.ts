/**
 * What a pod runner is given (`ProcessSpec`) and gives back
 * (`ProcessResult`), and what its two runners share: the host uid pods run
 * as in the sandbox, the environment of the runner's own helper programs, and
 * the per-pod directories they prepare and remove.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { Effect } from "effect"
import type { HostPathMount } from "./PodPlan.js"

export type Isolation = "overlay" | "none"

export type { HostPathMount } from "./PodPlan.js"

export interface ProcessSpec {
  readonly argv: ReadonlyArray<string>
  /** The complete environment of the process: nothing of the runner's own is added. */
  readonly env: Readonly<Record<string, string>>
  readonly workingDir?: string | undefined
  readonly scriptSource?: string | undefined
  /** Absolute paths to read after the process exits. */
  readonly outputPaths: ReadonlyArray<string>
  /** A fresh directory owned by this pod run; removed afterwards by the caller. */
  readonly podDir: string
  /** The pod's host name in its own UTS namespace (the pod's name; ignored with hostNetwork). */
  readonly hostname?: string | undefined
  /** `spec.hostNetwork`: share the host's network and UTS namespaces instead of getting private ones. */
  readonly hostNetwork?: boolean | undefined
  /** hostPath volumes, bound as declared (read-write unless readOnly). */
  readonly hostPaths?: ReadonlyArray<HostPathMount> | undefined
  /** When this completes, the pod's processes are killed (SIGKILL) and the run returns what they left, `stopped` set. */
  readonly stop?: Effect.Effect<void> | undefined
  /** Input artifacts staged on the host, shown to the pod at their paths (upstream's input-artifacts volume). */
  readonly inputs?: ReadonlyArray<{ readonly podPath: string; readonly hostPath: string }> | undefined
  /** Output artifact paths: after exit, what the pod left at each is copied to `<artifactDir>/<index>`. */
  readonly artifactPaths?: ReadonlyArray<string> | undefined
  /** A fresh host directory for those copies, owned by the caller. */
  readonly artifactDir?: string | undefined
}

export interface ProcessResult {
  readonly exitCode: number
  readonly stdout: string
  /** stdout and stderr interleaved as they arrived: the container log. */
  readonly log: string
  /** Contents of each output path; undefined when the file does not exist. */
  readonly files: Readonly<Record<string, string | undefined>>
  /** Set when the process could not start at all (command not found...). */
  readonly startError?: string | undefined
  /** The processes were killed because `stop` completed (the kubelet's active deadline). */
  readonly stopped?: boolean | undefined
  /** Host copies of the output artifact paths (`ProcessSpec.artifactPaths`); undefined when the pod left nothing there. */
  readonly artifacts?: Readonly<Record<string, string | undefined>> | undefined
}

export interface Runner {
  readonly isolation: Isolation
  readonly run: (spec: ProcessSpec) => Effect.Effect<ProcessResult>
}

/**
 * The host uid and gid that root in a pod maps to, with the next 65535 ids
 * for the pod's other users. 0x70000000 lies above the ranges Debian's
 * useradd hands out (/etc/subuid, from 100000) and systemd-nspawn's
 * (524288-1879048191), in a range systemd leaves unused; no host user owns
 * files there, so a pod owns nothing on the host but what it wrote itself.
 */
export const podHostId = 0x70000000

/** The environment of the runner's own helpers (unshare, mount...): never the pod's, never the host's. */
export const helperEnv = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }

export const isUnder = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith("/") ? dir : dir + "/")

export const prepareDirs = (spec: ProcessSpec, overlay: boolean) => {
  const tmp = path.join(spec.podDir, "tmp")
  fs.mkdirSync(tmp, { recursive: true, mode: 0o1777 })
  fs.chmodSync(tmp, 0o1777)
  if (overlay) {
    // Only the runner may walk the pod's directory; the pod reaches its parts through bind mounts.
    fs.chmodSync(spec.podDir, 0o700)
    for (const d of ["upper", "work", "root"]) fs.mkdirSync(path.join(spec.podDir, d), { recursive: true })
    // Root in the pod owns its /tmp and its root folder (the upper dir's owner is the overlay root's).
    fs.chownSync(tmp, podHostId, podHostId)
    fs.chownSync(path.join(spec.podDir, "upper"), podHostId, podHostId)
    // In a container, root owns the image's folders: the folders above an output's path (/mnt of /mnt/file)
    // get a copy in the upper dir owned by the pod's root (same mode), so it may write there; the host's stay as they are.
    for (const p of [...spec.outputPaths, ...(spec.artifactPaths ?? [])]) {
      if (!path.isAbsolute(p) || isUnder(p, "/tmp") || ["/proc", "/sys", "/dev"].some((d) => isUnder(p, d))) continue
      let dir = "/"
      for (const part of path.posix.dirname(path.posix.normalize(p)).split("/").filter((x) => x !== "")) {
        dir = path.posix.join(dir, part)
        let st: fs.Stats
        try {
          st = fs.lstatSync(dir)
        } catch {
          break // the pod makes the rest itself
        }
        if (!st.isDirectory()) break
        const upper = path.join(spec.podDir, "upper", dir)
        if (!fs.existsSync(upper)) {
          fs.mkdirSync(upper, { mode: st.mode & 0o7777 })
          fs.chmodSync(upper, st.mode & 0o7777)
          fs.chownSync(upper, podHostId, podHostId)
        }
      }
    }
  }
  if (spec.scriptSource !== undefined) {
    fs.writeFileSync(path.join(spec.podDir, "script"), spec.scriptSource, { mode: 0o755 })
  }
}

export const removeDir = (dir: string): void => {
  try {
    fs.rmSync(dir, { recursive: true, force: true })
  } catch {
    // Best effort: a leftover per-pod directory is harmless and named by uid.
  }
}

/** `collectArtifacts` with an asynchronous `copy` (the sandbox's streamed one), one path after another. */
export const collectArtifactsAsync = async (
  spec: ProcessSpec,
  copy: (podPath: string, dest: string) => Promise<boolean>
): Promise<Readonly<Record<string, string | undefined>> | undefined> => {
  if (spec.artifactPaths === undefined || spec.artifactPaths.length === 0 || spec.artifactDir === undefined) return undefined
  await fs.promises.mkdir(spec.artifactDir, { recursive: true, mode: 0o700 })
  const out: Record<string, string | undefined> = {}
  for (const [i, p] of spec.artifactPaths.entries()) {
    const dest = path.join(spec.artifactDir, String(i))
    const ok = await copy(p, dest).catch(() => false)
    out[p] = ok ? dest : undefined
  }
  return out
}

/** Copies out each of `spec.artifactPaths` with `copy` (true when something was there) into `<artifactDir>/<index>`. */
export const collectArtifacts = (
  spec: ProcessSpec,
  copy: (podPath: string, dest: string) => boolean
): Readonly<Record<string, string | undefined>> | undefined => {
  if (spec.artifactPaths === undefined || spec.artifactPaths.length === 0 || spec.artifactDir === undefined) return undefined
  fs.mkdirSync(spec.artifactDir, { recursive: true, mode: 0o700 })
  const out: Record<string, string | undefined> = {}
  spec.artifactPaths.forEach((p, i) => {
    const dest = path.join(spec.artifactDir!, String(i))
    let ok = false
    try {
      ok = copy(p, dest)
    } catch {
      ok = false
    }
    out[p] = ok ? dest : undefined
  })
  return out
}
