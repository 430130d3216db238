/**
 * Runs the main container of one pod as a host process, for the local
 * kubelet, and collects what the executor would: stdout, the combined log,
 * the exit code and the output-parameter files as the process left them.
 *
 * Isolation. Pods run concurrently and upstream examples write fixed paths
 * (`/tmp/hello_world.txt`, `/tmp/out.txt`, even `/output` at the root), so two
 * pods must not see each other's files. Measured on the development host
 * (root, Linux 6.x, ext4 root): `unshare --mount --pid --fork --kill-child
 * --mount-proc` followed by an overlayfs mount of `/` (upper dir per pod) and a
 * `chroot` costs about 50 ms per pod (30 concurrent pods in about 1.9 s with a
 * 0.2 s sleep each); a bare `/tmp` bind is about 20 ms but leaves `/output`
 * shared. We choose the overlay ("overlay" isolation) because:
 *  - every write outside bind-mounted host mounts lands in the pod's own upper
 *    dir, so any fixed path is private, like a container's writable layer, and
 *    the host file system is never modified by a pod;
 *  - `/tmp` is a per-pod host directory bind-mounted over `/tmp`, and the
 *    upper dir stays on the host after the namespace dies, so output parameter
 *    files are read from the pod's private view after the process exits;
 *  - the pid namespace makes the pod's first process an init: killing
 *    `unshare` (it is the group leader of a detached process group, and
 *    `--kill-child` forwards SIGKILL) kills everything the pod started, even
 *    daemons that called setsid, so no process outlives its pod or kubelet;
 *  - the script source is bind-mounted at Argo's `/argo/staging/script`;
 *  - the kubelet's own directories on PATH (the stand-in entrypoints in the
 *    checkout's `images/`) are bind-mounted read-only at their own paths last,
 *    so a checkout under /tmp (hidden by the pod's private /tmp) still works.
 * Other top-level mounts (/proc, /dev, /sys, /work...) are rbind-mounted into
 * the view because overlayfs only sees the root file system.
 *
 * Fallback ("none"): when the probe fails (not root, no overlayfs, no
 * unshare: typical on a laptop or macOS) pods run directly with a per-pod
 * TMPDIR and working directory; pods that declare output parameters are
 * serialised by the caller, and their declared output files under the temp
 * directories are removed before they start, so a stale file from another pod
 * is never reported as theirs.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { scriptPath } from "./PodPlan.js"

export type Isolation = "overlay" | "none"

export interface ProcessSpec {
  readonly argv: ReadonlyArray<string>
  /** The complete environment of the process. */
  readonly env: Readonly<Record<string, string>>
  readonly workingDir?: string | undefined
  readonly scriptSource?: string | undefined
  /** Absolute paths to read after the process exits. */
  readonly outputPaths: ReadonlyArray<string>
  /** A fresh directory owned by this pod run; removed afterwards by the caller. */
  readonly podDir: string
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
}

/** Kept like Argo's executor: the last 256 kB of stdout become `result`. */
const maxStdout = 256 * 1024
/** Logs are kept in memory; cap them so a chatty pod cannot exhaust it. */
const maxLog = 4 * 1024 * 1024

const wrapper = `set -eu
P=$1; W=$2; S=$3; shift 3
R="$P/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$P/upper,workdir=$P/work" "$R"
while [ "$1" != "--" ]; do
  if [ -d "$R$1" ]; then mount --rbind "$1" "$R$1" 2>/dev/null || true; fi
  shift
done
shift
mount --bind "$P/tmp" "$R/tmp"
while [ "$1" != "--" ]; do
  if [ -d "$1" ]; then
    mkdir -p "$R$1"
    mount --bind "$1" "$R$1"
    mount -o remount,bind,ro "$R$1" 2>/dev/null || true
  fi
  shift
done
shift
if [ "$S" = 1 ]; then
  mkdir -p "$R/argo/staging"
  : > "$R${scriptPath}"
  mount --bind "$P/script" "$R${scriptPath}"
fi
mkdir -p "$R$W"
exec chroot "$R" /bin/sh -c 'cd "$0" && exec "$@"' "$W" "$@"
`

/** Mount points that are not on the root file system, outermost only. */
const hostMounts = (exclude: ReadonlyArray<string>): ReadonlyArray<string> => {
  let text: string
  try {
    text = fs.readFileSync("/proc/self/mountinfo", "utf8")
  } catch {
    return []
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  const points = [...new Set(text.split("\n").filter(Boolean).map((l) => unescape(l.split(" ")[4] ?? "")))]
    .filter((p) => p.startsWith("/") && p !== "/")
  const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith("/") ? dir : dir + "/")
  return points
    .filter((p) => !exclude.some((e) => under(p, e)))
    .filter((p) => !points.some((q) => q !== p && under(p, q)))
    .sort()
}

const isUnder = (p: string, dir: string) => p === dir || p.startsWith(dir + "/")

export interface Runner {
  readonly isolation: Isolation
  readonly run: (spec: ProcessSpec) => Effect.Effect<ProcessResult>
}

interface Spawned {
  readonly exitCode: number
  readonly stdout: string
  readonly log: string
  readonly startError?: string | undefined
}

const signalExitCode = (signal: NodeJS.Signals | null): number =>
  signal === null ? 1 : 128 + (os.constants.signals[signal] ?? 9)

/**
 * Spawns argv in its own process group and waits for it. Interrupting the
 * effect SIGKILLs the whole group and waits until the process is reaped, so
 * a finished interruption means no process is left.
 */
const spawnAndWait = (
  argv: ReadonlyArray<string>,
  options: { readonly env: Readonly<Record<string, string>>; readonly cwd: string }
): Effect.Effect<Spawned> =>
  Effect.callback<Spawned>((resume) => {
    let stdout = ""
    let log = ""
    let settled = false
    let closed = false
    const onClosed: Array<() => void> = []
    const child = spawn(argv[0], argv.slice(1), {
      env: options.env,
      cwd: options.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    const append = (out: boolean) => (chunk: Buffer) => {
      const s = chunk.toString("utf8")
      if (out) {
        stdout += s
        if (stdout.length > 2 * maxStdout) stdout = stdout.slice(-maxStdout)
      }
      if (log.length < maxLog) log += s
    }
    child.stdout!.on("data", append(true))
    child.stderr!.on("data", append(false))
    const finish = (value: Spawned) => {
      if (settled) return
      settled = true
      resume(Effect.succeed(value))
    }
    child.on("error", (err: NodeJS.ErrnoException) => {
      closed = true
      onClosed.splice(0).forEach((f) => f())
      finish({
        exitCode: err.code === "ENOENT" ? 127 : 128,
        stdout,
        log,
        startError: err.code === "ENOENT"
          ? `exec: "${argv[0]}": executable file not found in $PATH`
          : `exec: "${argv[0]}": ${err.message}`
      })
    })
    child.on("close", (code, signal) => {
      closed = true
      onClosed.splice(0).forEach((f) => f())
      finish({ exitCode: code ?? signalExitCode(signal), stdout: stdout.slice(-maxStdout), log })
    })
    return Effect.callback<void>((resumeKill) => {
      if (closed || child.pid === undefined) return resumeKill(Effect.void)
      onClosed.push(() => resumeKill(Effect.void))
      try {
        process.kill(-child.pid, "SIGKILL")
      } catch {
        try {
          child.kill("SIGKILL")
        } catch {
          // Already gone; 'close' follows.
        }
      }
    })
  })

const readIfFile = (p: string): string | undefined => {
  try {
    const st = fs.lstatSync(p)
    // A character device in an overlay upper dir is a whiteout: the pod deleted the file.
    if (st.isCharacterDevice()) return undefined
    return fs.readFileSync(p, "utf8")
  } catch {
    return undefined
  }
}

const prepareDirs = (spec: ProcessSpec, overlay: boolean) => {
  fs.mkdirSync(path.join(spec.podDir, "tmp"), { recursive: true, mode: 0o1777 })
  fs.chmodSync(path.join(spec.podDir, "tmp"), 0o1777)
  if (overlay) {
    for (const d of ["upper", "work", "root"]) fs.mkdirSync(path.join(spec.podDir, d), { recursive: true })
  }
  if (spec.scriptSource !== undefined) {
    fs.writeFileSync(path.join(spec.podDir, "script"), spec.scriptSource, { mode: 0o755 })
  }
}

const makeOverlayRunner = (workDir: string, exposed: ReadonlyArray<string>): Runner => {
  const mounts = hostMounts(["/tmp", workDir])
  const run = (spec: ProcessSpec): Effect.Effect<ProcessResult> =>
    Effect.gen(function*() {
      yield* Effect.sync(() => prepareDirs(spec, true))
      const workingDir = spec.workingDir !== undefined && spec.workingDir.startsWith("/") ? path.posix.normalize(spec.workingDir) : "/"
      const env: Record<string, string> = { ...spec.env }
      // The pod's /tmp is private; a host TMPDIR would point outside it.
      if (env.TMPDIR !== undefined && !isUnder(env.TMPDIR, "/tmp")) delete env.TMPDIR
      const argv = [
        "unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
        "/bin/sh", "-c", wrapper, "flotilla-pod",
        spec.podDir, workingDir, spec.scriptSource !== undefined ? "1" : "0",
        ...mounts, "--",
        ...exposed, "--",
        ...spec.argv
      ]
      const spawned = yield* spawnAndWait(argv, { env, cwd: "/" })
      const files = yield* Effect.sync(() => {
        const out: Record<string, string | undefined> = {}
        for (const p of spec.outputPaths) {
          const abs = path.posix.normalize(p)
          if (isUnder(abs, "/tmp")) out[p] = readIfFile(path.join(spec.podDir, "tmp", path.posix.relative("/tmp", abs)))
          else if (mounts.some((m) => isUnder(abs, m))) out[p] = readIfFile(abs)
          else {
            const upper = path.join(spec.podDir, "upper", abs)
            out[p] = fs.existsSync(upper) || isWhiteout(upper) ? readIfFile(upper) : readIfFile(abs)
          }
        }
        return out
      })
      return { ...spawned, files }
    })
  return { isolation: "overlay", run }
}

const isWhiteout = (p: string): boolean => {
  try {
    return fs.lstatSync(p).isCharacterDevice()
  } catch {
    return false
  }
}

const makePlainRunner = (): Runner => {
  const run = (spec: ProcessSpec): Effect.Effect<ProcessResult> =>
    Effect.gen(function*() {
      const tmp = path.join(spec.podDir, "tmp")
      yield* Effect.sync(() => {
        prepareDirs(spec, false)
        for (const p of spec.outputPaths) {
          if (isUnder(p, "/tmp") || isUnder(p, os.tmpdir())) fs.rmSync(p, { force: true })
        }
      })
      const script = path.join(spec.podDir, "script")
      const argv = spec.argv.map((a) => (spec.scriptSource !== undefined && a === scriptPath ? script : a))
      const cwd = spec.workingDir !== undefined && fs.existsSync(spec.workingDir) ? spec.workingDir : spec.podDir
      const spawned = yield* spawnAndWait(argv, { env: { ...spec.env, TMPDIR: tmp }, cwd })
      const files = yield* Effect.sync(() => {
        const out: Record<string, string | undefined> = {}
        for (const p of spec.outputPaths) out[p] = readIfFile(p)
        return out
      })
      return { ...spawned, files }
    })
  return { isolation: "none", run }
}

/**
 * Picks the isolation: "auto" probes by running `true` in an overlay view.
 * The probe costs one pod start (tens of ms) once per kubelet.
 */
export const makeRunner = (
  workDir: string,
  isolation: Isolation | "auto",
  /** Host directories every pod sees at the same path, read-only (the kubelet's own PATH entries). */
  exposed: ReadonlyArray<string> = []
): Effect.Effect<Runner> =>
  Effect.gen(function*() {
    yield* Effect.sync(() => fs.mkdirSync(workDir, { recursive: true }))
    if (isolation === "none") return makePlainRunner()
    const overlay = makeOverlayRunner(workDir, exposed.filter((dir) => path.isAbsolute(dir)).map((dir) => path.normalize(dir)))
    if (isolation === "overlay") return overlay
    if (process.platform !== "linux") return makePlainRunner()
    const probeDir = yield* Effect.sync(() => fs.mkdtempSync(path.join(workDir, "probe-")))
    const result = yield* overlay.run({
      argv: ["/bin/sh", "-c", "echo ok > /tmp/probe; echo ok > /flotilla-probe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      outputPaths: ["/tmp/probe", "/flotilla-probe"],
      podDir: probeDir
    }).pipe(Effect.ensuring(Effect.sync(() => removeDir(probeDir))))
    const ok = result.exitCode === 0 && result.files["/tmp/probe"] === "ok\n" && result.files["/flotilla-probe"] === "ok\n"
    if (ok) return overlay
    yield* Effect.logWarning(
      `local kubelet: overlay isolation unavailable (exit ${result.exitCode}: ${result.log.trim().slice(0, 200)}); pods share the host file system, pods with output parameters run one at a time`
    )
    return makePlainRunner()
  })

export const removeDir = (dir: string): void => {
  try {
    fs.rmSync(dir, { recursive: true, force: true })
  } catch {
    // Best effort: a leftover per-pod directory is harmless and named by uid.
  }
}
