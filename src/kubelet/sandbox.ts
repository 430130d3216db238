/**
 * The "overlay" runner: runs a pod's process in a sandbox of namespaces and
 * mounts built by a shell script.
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
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, type Scope } from "effect"
import { stagedInputRefusal } from "./artifacts/archive.js"
import { scriptPath } from "./PodPlan.js"
import { copyOut, type PodView, readOutput } from "./podView.js"
import {
  collectArtifactsAsync,
  helperEnv,
  isUnder,
  podHostId,
  prepareDirs,
  type ProcessResult,
  type ProcessSpec,
  removeDir,
  type Runner
} from "./processSpec.js"
import { spawnAndWait } from "./spawn.js"

const podIdCount = 65536

/** Capabilities root keeps inside a pod, all in its own user namespace: Docker's defaults minus
 * CAP_SYS_CHROOT, CAP_MKNOD, CAP_NET_RAW, CAP_SETFCAP, CAP_SETPCAP and CAP_AUDIT_WRITE. */
const podCapabilities = ["chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "net_bind_service"]

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
export const makeDevTemplate = (workDir: string): Effect.Effect<string, string, Scope.Scope> =>
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

export const makeOverlayRunner = (workDir: string, exposed: ReadonlyArray<string>, devTemplate: string): Runner => {
  const mounts = hostMounts(["/tmp", workDir])
  const run = (spec: ProcessSpec): Effect.Effect<ProcessResult> =>
    Effect.gen(function*() {
      // a staged input is bound by the host's mount, which follows links: one leading out of its stage folder is refused
      const refused = (spec.inputs ?? []).map((i) => stagedInputRefusal(i.hostPath)).find((r) => r !== undefined)
      if (refused !== undefined) return { exitCode: 128, stdout: "", log: `${refused}\n`, files: {}, startError: refused } satisfies ProcessResult
      yield* Effect.sync(() => prepareDirs(spec, true))
      const workingDir = spec.workingDir !== undefined && spec.workingDir.startsWith("/") ? path.posix.resolve("/", spec.workingDir) : "/"
      const inputMounts = (spec.inputs ?? []).map((i) => ({ name: "input-artifacts", hostPath: i.hostPath, mountPath: i.podPath, readOnly: false }))
      const hostPaths = [...(spec.hostPaths ?? []), ...inputMounts].map((m) => ({ ...m, mountPath: path.posix.resolve("/", m.mountPath) }))
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
      const spawned = yield* spawnAndWait(argv, { env: helperEnv, cwd: "/", stop: spec.stop })
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
      // streamed off the event loop's hot path: a large output does not stall the node agent's other pods
      const artifacts = yield* Effect.promise(() => collectArtifactsAsync(spec, (p, dest) => copyOut(view, p, dest)))
      return { ...spawned, files, ...(artifacts !== undefined ? { artifacts } : {}) }
    })
  return { isolation: "overlay", run }
}
