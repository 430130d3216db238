/**
 * Runs the main container of one pod as a host process, for the local
 * kubelet, and collects what the executor would: stdout, the combined log,
 * the exit code and the output-parameter files as the process left them.
 *
 * It is a runtime for development and tests, not a container runtime, and
 * not a boundary for untrusted code: it keeps a pod from acting as host root,
 * from writing the host and from seeing other pods, but shares the kernel and
 * everything world-readable (see "Not isolated"). Real isolation comes from a
 * real kubelet and container runtime. It must never run a pod as host root
 * with host privileges, nor hand a pod the runner's environment.
 *
 * The sandbox ("overlay" isolation). A shell script (`wrapper`) runs as host
 * root as PID 1 of new mount, PID and IPC namespaces, and network and UTS
 * namespaces unless the pod has `hostNetwork: true`; it builds the pod's view
 * of the file system, `pivot_root`s into it, and starts the pod in a user
 * namespace of its own:
 *  - file system: an overlayfs with the host's `/` as lower layer and the
 *    pod's own upper dir, so every write to a fixed path (`/output`, even
 *    `/etc/...`) is private, like a container's writable layer, and the host
 *    file system is never modified; `/tmp` is a per-pod host directory; every
 *    other host mount is bound read-only (nosuid, nodev), as are the kubelet's
 *    PATH folders (the checkout's stand-in entrypoints, the node binary) and
 *    the script at Argo's `/argo/staging/script`; the pod gets its own /proc,
 *    a read-only /sys, a read-only minimal /dev (null, zero, full, random,
 *    urandom, tty, the fd links) and a private tmpfs /dev/shm; the kubelet's
 *    work directory is hidden. hostPath volumes are bound as the spec says
 *    (read-write unless readOnly), at paths resolved inside the pod's view.
 *    After `pivot_root` the host's root is detached: there is no outside left
 *    to chroot back to.
 *  - identity: root in the pod is host uid and gid `podHostId` (0x70000000;
 *    65536 ids from there), not host root. On the host the pod owns only what
 *    it wrote, and reads only what any user may read (not a 0600 kubeconfig);
 *    its files in /tmp and the upper dir belong to that uid and the runner
 *    (root) reads them back after exit.
 *  - privileges: the pod's root keeps CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
 *    KILL, SETGID, SETUID and NET_BIND_SERVICE, valid only for its own ids;
 *    the bounding set is cut to these, no_new_privs is set, and its user
 *    namespace may have no child (max_user_namespaces 0). So it cannot mount,
 *    chroot, ptrace or signal anything outside, load modules, or get such
 *    rights back; the mounts belong to the host's user namespace anyway.
 *  - network: its own namespace with loopback up, so the host's 127.0.0.1 is
 *    out of reach, and its own host name (the pod's name); `hostNetwork: true`
 *    shares the host's, as on a real node.
 *  - environment: only the pod's (the spec's and what LocalKubelet adds). The
 *    wrapper and its helpers run with a fixed PATH, and the pod's variables
 *    are applied by `env -i` after privileges are dropped, so one such as
 *    LD_PRELOAD never reaches a program running as root.
 *  - processes: killing `unshare` (the group leader of a detached process
 *    group; `--kill-child` forwards SIGKILL to PID 1) ends the PID namespace,
 *    so nothing a pod started, daemons included, outlives it or the kubelet.
 *  - outputs: read back as the pod saw them: its symbolic links resolved
 *    inside its view, never on the host; a host file only if the pod's uid
 *    could read it; never a FIFO or a device. A link to a host secret in an
 *    output parameter yields nothing.
 *
 * Not isolated: every world-readable host file is readable and world-writable
 * unix sockets on the host's file system are reachable; there are no cgroup
 * limits (CPU, memory, pids, disk); the kernel is shared with no seccomp or
 * LSM profile; all pods share one uid range; with hostNetwork every host
 * service on loopback is reachable; hostPath volumes open what they name.
 *
 * Cost, measured on the development host (2 cores, Linux 6.18, util-linux
 * 2.38, ext4 root, load average about 5 from other work): 35-45 ms per pod
 * run one after another, against 20-30 ms for the previous overlay + chroot
 * (no user, network or IPC namespace) and 3-20 ms with no isolation; 30
 * concurrent pods sleeping 0.2 s take 0.75-0.95 s (before: 0.65-0.8 s). Most
 * of it is the ~18 programs the wrapper starts (a `mount` per bind,
 * `pivot_root`, `unshare`, `setpriv`, `env`); the pods' /dev is made once per
 * runner to save seven more. It needs root, overlayfs, util-linux (`unshare`,
 * `setpriv`, `pivot_root`, `mount`) and iproute2 (`ip`); "auto" probes once
 * per kubelet by running one sandboxed pod.
 *
 * Fallback ("none"): when the probe fails (not root, not Linux, no overlayfs:
 * typical on a laptop or macOS) pods run directly, as this user with the
 * host's file system, network and devices, and the runner logs a warning
 * that they are UNISOLATED. Each gets a per-pod TMPDIR and working directory;
 * pods that declare output parameters are serialised by the caller, and their
 * declared output files under the temp directories are removed before they
 * start, so a stale file from another pod is never reported as theirs.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, type Scope } from "effect"
import { type HostPathMount, scriptPath } from "./PodPlan.js"

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

/**
 * The host uid and gid that root in a pod maps to, with the next 65535 ids
 * for the pod's other users. 0x70000000 lies above the ranges Debian's
 * useradd hands out (/etc/subuid, from 100000) and systemd-nspawn's
 * (524288-1879048191), in a range systemd leaves unused; no host user owns
 * files there, so a pod owns nothing on the host but what it wrote itself.
 */
export const podHostId = 0x70000000
const podIdCount = 65536

/** Capabilities root keeps inside a pod, all in its own user namespace: Docker's defaults minus
 * CAP_SYS_CHROOT, CAP_MKNOD, CAP_NET_RAW, CAP_SETFCAP, CAP_SETPCAP and CAP_AUDIT_WRITE. */
const podCapabilities = ["chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "net_bind_service"]

/** The environment of the runner's own helpers (unshare, mount...): never the pod's, never the host's. */
const helperEnv = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }

/**
 * Runs as host root as PID 1 of the pod's new mount, PID, IPC (and, without
 * hostNetwork, network and UTS) namespaces; see the module comment.
 * Arguments: P W U NET NAME HIDE S DEV, host mounts --, kubelet folders --,
 * hostPath sources and read-only flags (pairs) --, hostPath mount paths --,
 * then the pod's NAME=VALUE variables and command, handed to `env -i`.
 */
const wrapper = `set -eu
P=$1; W=$2; U=$3; NET=$4; NAME=$5; HIDE=$6; S=$7; DEV=$8; shift 8
R="$P/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$P/upper,workdir=$P/work" "$R"
while [ "$1" != "--" ]; do
  if [ -e "$R$1" ]; then mount -o bind,ro,nosuid,nodev "$1" "$R$1"; fi
  shift
done
shift
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -o bind,ro,nosuid,noexec "$DEV" "$R/dev"
mount -t tmpfs -o nosuid,nodev,mode=1777,size=64m shm "$R/dev/shm"
mount -o bind,nosuid,nodev "$P/tmp" "$R/tmp"
while [ "$1" != "--" ]; do
  if [ -d "$1" ]; then
    mkdir -p "$R$1"
    mount -o bind,ro,nosuid,nodev "$1" "$R$1"
  fi
  shift
done
shift
if [ "$S" = 1 ]; then
  mkdir -p "$R/argo/staging"
  : > "$R${scriptPath}"
  mount -o bind,ro,nosuid,nodev "$P/script" "$R${scriptPath}"
fi
if [ -n "$HIDE" ] && [ -d "$R$HIDE" ]; then mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k,mode=0755 hidden "$R$HIDE"; fi
V="$R/dev/shm/.flotilla-volumes"
[ "$1" = "--" ] || mkdir "$V"
n=0
while [ "$1" != "--" ]; do
  if [ -d "$1" ]; then mkdir "$V/$n"; elif [ -e "$1" ]; then : > "$V/$n"; else echo "hostPath $1: no such file or directory" >&2; exit 1; fi
  if [ "$2" = 1 ]; then o=bind,ro,nosuid,nodev; else o=bind,nosuid,nodev; fi
  mount -o "$o" "$1" "$V/$n"
  n=$((n + 1)); shift 2
done
shift
if [ "$NET" = private ]; then
  ip link set lo up
  printf %s "$NAME" > /proc/sys/kernel/hostname
fi
mkfifo "$P/ready" "$P/go"
exec 5<>"$P/ready" 3<"$P/ready" 6>"$P/ready" 4<>"$P/go"
exec 5>&-
cd "$R"
pivot_root . .
umount -l .
cd /
V=/dev/shm/.flotilla-volumes
n=0
while [ "$1" != "--" ]; do
  if [ -d "$V/$n" ]; then
    mkdir -p "$1"
    mount --move "$V/$n" "$1"
    rmdir "$V/$n"
  else
    mkdir -p "$(dirname "$1")"
    [ -e "$1" ] || : > "$1"
    mount --move "$V/$n" "$1"
    rm -f "$V/$n"
  fi
  n=$((n + 1)); shift
done
shift
[ ! -d "$V" ] || rmdir "$V"
if [ ! -d "$W" ]; then mkdir -p "$W"; chown "$U:$U" "$W"; fi
unshare --user --keep-caps /bin/sh -c '
  echo >&6; exec 6>&- 3<&-
  read _ <&4; exec 4<&-
  echo 0 > /proc/sys/user/max_user_namespaces
  exec setpriv --reuid=0 --regid=0 --clear-groups --nnp --inh-caps=-all --bounding-set=-all,${podCapabilities.map((c) => `+${c}`).join(",")} -- env -i -C "$0" -- "$@"
' "$W" "$@" &
pid=$!
exec 6>&-
read _ <&3
echo "0 $U ${podIdCount}" > "/proc/$pid/uid_map"
echo "0 $U ${podIdCount}" > "/proc/$pid/gid_map"
echo >&4
exec 3<&- 4>&-
set +e
wait "$pid"
`

const isUnder = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith("/") ? dir : dir + "/")

/** The kernel's folders: a pod gets its own /proc, /sys and a minimal /dev, nothing of the host's mounted there. */
const systemDirs = ["/proc", "/sys", "/dev"]

/**
 * Kernel file systems (and other containers' root file systems) that a pod
 * gets no view of: its own /proc, /sys and /dev replace the host's, and a
 * namespace file or a cgroup tree bound elsewhere is no business of a pod's.
 */
const pseudoFileSystems = new Set([
  "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs", "efivarfs",
  "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay", "proc", "pstore", "rpc_pipefs", "securityfs", "sysfs", "tracefs"
])

/**
 * The host's mount points a pod sees (each bound read-only), parents first:
 * every one but the root, those under `exclude` or the kernel's folders,
 * pseudo file systems, and folders bound onto themselves from the root file
 * system (the overlay's lower layer shows them already).
 */
const hostMounts = (exclude: ReadonlyArray<string>): ReadonlyArray<string> => {
  let text: string
  try {
    text = fs.readFileSync("/proc/self/mountinfo", "utf8")
  } catch {
    return []
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  const entries = text.split("\n").filter(Boolean).map((line) => {
    const fields = line.split(" ")
    const dash = fields.indexOf("-")
    return { device: fields[2], root: unescape(fields[3] ?? ""), point: unescape(fields[4] ?? ""), type: fields[dash + 1] ?? "" }
  })
  const rootDevice = entries.filter((e) => e.point === "/").at(-1)?.device
  return [...new Set(
    entries
      .filter((e) => e.point.startsWith("/") && e.point !== "/")
      .filter((e) => !pseudoFileSystems.has(e.type))
      .filter((e) => !(e.device === rootDevice && e.root === e.point))
      .map((e) => e.point)
  )]
    .filter((p) => !exclude.some((e) => isUnder(p, e)))
    .filter((p) => !systemDirs.some((d) => isUnder(p, d)))
    .sort()
}

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

// ---- reading outputs as the pod saw them -------------------------------------

/** What a sandboxed pod sees at its paths, for reading its outputs after it exited. */
interface PodView {
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
const readRegular = (file: string, asPod: boolean): string | undefined => {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const st = fs.fstatSync(fd)
    return st.isFile() && (!asPod || podAllowed(st, 4)) ? fs.readFileSync(fd, "utf8") : undefined
  } catch {
    return undefined
  } finally {
    fs.closeSync(fd)
  }
}

const readOutput = (view: PodView, podPath: string): string | undefined => {
  const found = resolveInPod(view, path.posix.resolve("/", podPath))
  if (found === undefined) return undefined
  if (found.owner === "host" && !podMayReach(found.file, found.root)) return undefined
  return readRegular(found.file, found.owner === "host")
}

// ---- runners -------------------------------------------------------------------

const prepareDirs = (spec: ProcessSpec, overlay: boolean) => {
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
  }
  if (spec.scriptSource !== undefined) {
    fs.writeFileSync(path.join(spec.podDir, "script"), spec.scriptSource, { mode: 0o755 })
  }
}

/** A host name as Kubernetes makes one from a pod name: at most 63 characters, no trailing `-` or `.`. */
const hostnameOf = (name: string | undefined): string =>
  (name ?? "").slice(0, 63).replace(/[-.]+$/, "") || "pod"

/** Pod variables that `env` can set: a name without `=`. */
const envPairs = (env: Readonly<Record<string, string>>): ReadonlyArray<string> =>
  Object.entries(env).filter(([k]) => k !== "" && !k.includes("=")).map(([k, v]) => `${k}=${v}`)

/**
 * The pods' /dev, bound read-only into each (a tmpfs /dev/shm on top): the
 * harmless devices with the usual 0666 modes (whatever the host's are) and
 * the usual links. Made once per runner, because each `cp`/`ln` would cost
 * a process start per pod.
 */
const makeDevTemplate = (workDir: string): Effect.Effect<string, string, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(workDir, "dev-"))),
    (dir) => Effect.sync(() => removeDir(dir))
  ).pipe(
    Effect.tap((dir) =>
      spawnAndWait(
        ["/bin/sh", "-c", "set -eu; cd \"$0\"; cp -a /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty .; chmod 0666 null zero full random urandom tty", dir],
        { env: helperEnv, cwd: "/" }
      ).pipe(
        Effect.flatMap((r) => r.exitCode === 0 ? Effect.void : Effect.fail(`making the pods' /dev failed: ${r.log.trim()}`)),
        Effect.andThen(Effect.sync(() => {
          fs.chmodSync(dir, 0o755)
          fs.mkdirSync(path.join(dir, "shm"))
          fs.symlinkSync("/proc/self/fd", path.join(dir, "fd"))
          for (const [i, name] of ["stdin", "stdout", "stderr"].entries()) fs.symlinkSync(`/proc/self/fd/${i}`, path.join(dir, name))
        }))
      )
    )
  )

const makeOverlayRunner = (workDir: string, exposed: ReadonlyArray<string>, devTemplate: string): Runner => {
  const mounts = hostMounts(["/tmp", workDir])
  const run = (spec: ProcessSpec): Effect.Effect<ProcessResult> =>
    Effect.gen(function*() {
      yield* Effect.sync(() => prepareDirs(spec, true))
      const workingDir = spec.workingDir !== undefined && spec.workingDir.startsWith("/") ? path.posix.resolve("/", spec.workingDir) : "/"
      const hostPaths = (spec.hostPaths ?? []).map((m) => ({ ...m, mountPath: path.posix.resolve("/", m.mountPath) }))
        .filter((m) => m.mountPath !== "/" && path.isAbsolute(m.hostPath))
      const privateNet = spec.hostNetwork !== true
      const argv = [
        "unshare", "--mount", "--pid", "--ipc", ...(privateNet ? ["--net", "--uts"] : []),
        "--fork", "--kill-child", "--propagation", "private",
        "/bin/sh", "-c", wrapper, "flotilla-pod",
        spec.podDir, workingDir, String(podHostId), privateNet ? "private" : "host", hostnameOf(spec.hostname),
        isUnder(workDir, "/tmp") ? "" : workDir, spec.scriptSource !== undefined ? "1" : "0", devTemplate,
        ...mounts, "--",
        ...exposed, "--",
        ...hostPaths.flatMap((m) => [m.hostPath, m.readOnly ? "1" : "0"]), "--",
        ...hostPaths.map((m) => m.mountPath), "--",
        ...envPairs(spec.env),
        ...spec.argv
      ]
      const spawned = yield* spawnAndWait(argv, { env: helperEnv, cwd: "/" })
      const view: PodView = {
        podDir: spec.podDir,
        hostPaths,
        exposed,
        mounts,
        hidden: [...systemDirs, workDir],
        script: spec.scriptSource !== undefined
      }
      const files = yield* Effect.sync(() => {
        const out: Record<string, string | undefined> = {}
        for (const p of spec.outputPaths) out[p] = readOutput(view, p)
        return out
      })
      return { ...spawned, files }
    })
  return { isolation: "overlay", run }
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

const unisolated = (reason: string) =>
  Effect.logWarning(
    `local kubelet: pods run UNISOLATED (${reason}): each is a plain process of this user with the host's file system, ` +
      `network and devices; use this only for trusted workflows. Pods with output parameters run one at a time`
  )

/** Why this host cannot sandbox pods, or undefined: runs one sandboxed pod and checks what it wrote as whom. */
const probe = (overlay: Runner, workDir: string): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    const probeDir = yield* Effect.sync(() => fs.mkdtempSync(path.join(workDir, "probe-")))
    return yield* overlay.run({
      argv: ["/bin/sh", "-c", "echo ok > /tmp/probe; echo ok > /flotilla-probe; id -u"],
      env: { PATH: helperEnv.PATH },
      outputPaths: ["/tmp/probe", "/flotilla-probe"],
      podDir: probeDir
    }).pipe(
      Effect.map((result) => {
        let owner: number | undefined
        try {
          owner = fs.statSync(path.join(probeDir, "tmp", "probe")).uid
        } catch {
          owner = undefined
        }
        const ok = result.exitCode === 0 && result.stdout === "0\n" && owner === podHostId &&
          result.files["/tmp/probe"] === "ok\n" && result.files["/flotilla-probe"] === "ok\n"
        return ok ? undefined : `the sandbox probe exited ${result.exitCode}: ${result.log.trim().slice(0, 300)}`
      }),
      Effect.ensuring(Effect.sync(() => removeDir(probeDir)))
    )
  })

/**
 * Picks the isolation: "auto" probes by running one sandboxed pod (it costs
 * one pod start, once per kubelet) and checks that it ran as root of its own
 * user namespace; without the sandbox, it says so loudly. The scope holds the
 * pods' /dev template.
 */
export const makeRunner = (
  workDir: string,
  isolation: Isolation | "auto",
  /** Host directories every pod sees at the same path, read-only (the kubelet's own PATH entries). */
  exposed: ReadonlyArray<string> = []
): Effect.Effect<Runner, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* Effect.sync(() => fs.mkdirSync(workDir, { recursive: true }))
    if (isolation === "none") {
      yield* unisolated("isolation \"none\" was asked for")
      return makePlainRunner()
    }
    if (process.platform !== "linux") {
      yield* unisolated(`the sandbox needs Linux, this is ${process.platform}`)
      return makePlainRunner()
    }
    const uid = process.getuid?.()
    const made = yield* Effect.gen(function*() {
      // The pods' directories live here; another user owning it could swap them under the runner.
      const st = yield* Effect.sync(() => fs.statSync(workDir))
      if (st.uid !== uid) return yield* Effect.fail(`work directory ${workDir} belongs to uid ${st.uid}, not to this process`)
      if ((st.mode & 0o022) !== 0) yield* Effect.sync(() => fs.chmodSync(workDir, st.mode & 0o755))
      const dev = yield* makeDevTemplate(workDir)
      const overlay = makeOverlayRunner(workDir, exposed.filter((dir) => path.isAbsolute(dir)).map((dir) => path.normalize(dir)), dev)
      const failure = isolation === "overlay" ? undefined : yield* probe(overlay, workDir)
      return failure === undefined ? overlay : yield* Effect.fail(failure)
    }).pipe(Effect.result)
    if (made._tag === "Success") return made.success
    const reason = `${uid !== 0 ? `not root (uid ${uid}); ` : ""}${made.failure}`
    if (isolation === "overlay") return yield* Effect.die(new Error(`local kubelet: the sandbox was asked for and is unavailable: ${reason}`))
    yield* unisolated(reason)
    return makePlainRunner()
  })

export const removeDir = (dir: string): void => {
  try {
    fs.rmSync(dir, { recursive: true, force: true })
  } catch {
    // Best effort: a leftover per-pod directory is harmless and named by uid.
  }
}
