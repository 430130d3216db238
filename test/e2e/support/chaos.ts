/**
 * Fault injection for the chaos e2e test on the real clusters: a seeded
 * random generator (so a failing run can be replayed with its seed), the
 * schedule of faults drawn from it, freezing a cluster's kube-apiserver
 * (SIGSTOP/SIGCONT: a partition that leaves every TCP connection open but
 * silent), and a controller process that can be SIGKILLed and comes back at
 * once, as a Deployment's container restarted in place would.
 *
 * Everything here acts on processes this test run started or on the test
 * clusters' own processes (pid files in <state>/run); it never looks up
 * processes by name.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { type Proc, sleep, startController, stateDir } from "./clusters.js"

// ---------------------------------------------------------------- random

/** A deterministic generator of floats in [0, 1) (mulberry32). */
export interface Random {
  readonly next: () => number
  /** Uniform in [lo, hi). */
  readonly between: (lo: number, hi: number) => number
  /** Uniform integer in [lo, hi]. */
  readonly int: (lo: number, hi: number) => number
  readonly pick: <A>(items: ReadonlyArray<A>) => A
  readonly shuffle: <A>(items: ReadonlyArray<A>) => Array<A>
}

export const seededRandom = (seed: number): Random => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const between = (lo: number, hi: number) => lo + (hi - lo) * next()
  const int = (lo: number, hi: number) => Math.floor(between(lo, hi + 1))
  return {
    next,
    between,
    int,
    pick: (items) => items[int(0, items.length - 1)]!,
    shuffle: (items) => {
      const out = [...items]
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(0, i)
        ;[out[i], out[j]] = [out[j]!, out[i]!]
      }
      return out
    }
  }
}

/** `CHAOS_SEED` when set (to replay a run), otherwise a fresh seed. */
export const chaosSeed = (): number => {
  const fromEnv = process.env["CHAOS_SEED"]
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    const n = Number(fromEnv)
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`CHAOS_SEED must be an integer in [0, 2^32): ${fromEnv}`)
    return n
  }
  return Math.floor(Math.random() * 0xffffffff)
}

// ---------------------------------------------------------------- schedule

/** A fault on one remote cluster's control plane. */
export type Disruption =
  | { readonly _tag: "Restart"; readonly cluster: string; readonly at: number; readonly downSeconds: number; readonly withEtcd: boolean; readonly compact: boolean }
  | { readonly _tag: "Partition"; readonly cluster: string; readonly at: number; readonly seconds: number }

/**
 * A SIGKILL of the controller, due `at` seconds after the chaos began. It
 * lands on a controller at work: one still starting waits until it leads.
 * A mid-create kill then waits for the next pod to appear in a remote
 * cluster and strikes `delay` seconds later, while the controller is still
 * between the create's answer and the status write that records the pod
 * (about 50-100 ms when the machine is not busy); another strikes `delay` seconds
 * after the controller leads when it had to wait, at once otherwise.
 */
export interface PlannedKill {
  readonly at: number
  readonly midCreate: boolean
  readonly delay: number
}

export interface ChaosPlan {
  readonly kills: ReadonlyArray<PlannedKill>
  readonly disruptions: ReadonlyArray<Disruption>
  readonly rotationAt: number
  /** Windows [from, to] (seconds) where no kill is planned, around each compaction restart. */
  readonly killFree: ReadonlyArray<readonly [number, number]>
}

export interface ChaosPlanOptions {
  /** Length of the chaos phase, seconds. */
  readonly windowSeconds: number
  readonly kills: number
  /** Remote clusters; each gets one partition. */
  readonly remotes: ReadonlyArray<string>
  readonly partitionSeconds: number
  /** One cluster per restart; restarts of `compactOn` compact etcd (apiserver only), the others restart etcd too. */
  readonly restarts: ReadonlyArray<string>
  readonly compactOn: string
  /** No kill from this long before a compaction restart to this long after it was planned to end. */
  readonly killFreeBefore: number
  readonly killFreeAfter: number
  readonly minKillGap: number
  /** Share of the kills that wait for a pod being created. */
  readonly midCreateShare: number
}

/** Planned length of a disruption, seconds (restart.sh takes a few seconds beyond `--down`). */
export const plannedLength = (d: Disruption): number => d._tag === "Partition" ? d.seconds : d.downSeconds + 15

/**
 * Draws a schedule: disruptions of one cluster never overlap (5 s apart at
 * least), the secret rotation falls where no remote cluster is disrupted,
 * kills are at least `minKillGap` apart and outside the kill-free windows
 * around compactions (so a controller that watched the old history is
 * there to get the 410).
 */
export const planChaos = (rng: Random, o: ChaosPlanOptions): ChaosPlan => {
  const W = o.windowSeconds
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const disruptions: Array<Disruption> = []
    for (const cluster of o.remotes) {
      disruptions.push({ _tag: "Partition", cluster, at: Math.round(rng.between(10, W - o.partitionSeconds - 10)), seconds: o.partitionSeconds })
    }
    for (const cluster of o.restarts) {
      const compact = cluster === o.compactOn
      disruptions.push({
        _tag: "Restart",
        cluster,
        at: Math.round(rng.between(o.killFreeBefore, W - 40)),
        downSeconds: compact ? 0 : rng.int(2, 10),
        withEtcd: !compact,
        compact
      })
    }
    const busy = (d: Disruption): readonly [number, number] => [d.at - 5, d.at + plannedLength(d) + 5]
    const overlap = (a: readonly [number, number], b: readonly [number, number]) => a[0] < b[1] && b[0] < a[1]
    const clash = disruptions.some((a, i) => disruptions.some((b, j) => j > i && a.cluster === b.cluster && overlap(busy(a), busy(b))))
    if (clash) continue
    const rotationAt = Math.round(rng.between(0.3 * W, 0.7 * W))
    if (disruptions.some((d) => overlap(busy(d), [rotationAt, rotationAt + 20]))) continue
    const killFree = disruptions
      .filter((d) => d._tag === "Restart" && d.compact)
      .map((d) => [d.at - o.killFreeBefore, d.at + plannedLength(d) + o.killFreeAfter] as const)
    const kills: Array<number> = []
    for (let tries = 0; kills.length < o.kills && tries < 100_000; tries++) {
      const t = Math.round(rng.between(3, W) * 10) / 10
      if (killFree.some(([from, to]) => t >= from && t <= to)) continue
      if (kills.some((k) => Math.abs(k - t) < o.minKillGap)) continue
      kills.push(t)
    }
    if (kills.length < o.kills) continue
    kills.sort((a, b) => a - b)
    const planned = kills.map((at): PlannedKill => {
      const midCreate = rng.next() < o.midCreateShare
      return { at, midCreate, delay: Math.round((midCreate ? rng.between(0, 0.08) : rng.between(0.5, 4)) * 1000) / 1000 }
    })
    disruptions.sort((a, b) => a.at - b.at)
    return { kills: planned, disruptions, rotationAt, killFree }
  }
  throw new Error("planChaos: no schedule fits these options")
}

export const describePlan = (plan: ChaosPlan): string =>
  [
    `kills at ${plan.kills.map((k) => `${k.at}s${k.midCreate ? `(mid-create +${k.delay}s)` : `(+${k.delay}s)`}`).join(" ")}`,
    ...plan.disruptions.map((d) =>
      d._tag === "Partition"
        ? `partition ${d.cluster} at ${d.at}s (at its next pod create) for ${d.seconds}s`
        : `restart ${d.cluster} at ${d.at}s (${d.withEtcd ? `with etcd, down ${d.downSeconds}s` : "API server only"}${d.compact ? ", etcd compacted" : ""})`
    ),
    `secret rotation at ${plan.rotationAt}s`
  ].join("; ")

// ---------------------------------------------------------------- processes

/** The pid of a cluster component from its pid file (scripts/clusters/lib.sh `start`). */
export const componentPid = (cluster: string, component: string): number => {
  const file = path.join(stateDir, "run", `${cluster}-${component}.pid`)
  const pid = Number(fs.readFileSync(file, "utf8").trim())
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`${file}: no pid`)
  return pid
}

const signal = (pid: number, sig: NodeJS.Signals): boolean => {
  try {
    process.kill(pid, sig)
    return true
  } catch {
    return false
  }
}

/**
 * Freezes `cluster`'s kube-apiserver (SIGSTOP): connections stay open and
 * nothing answers, as behind a network partition that drops packets.
 * Returns the pid, for `resumeApiserver`.
 */
export const pauseApiserver = (cluster: string): number => {
  const pid = componentPid(cluster, "kube-apiserver")
  if (!signal(pid, "SIGSTOP")) throw new Error(`${cluster}/kube-apiserver (pid ${pid}) could not be stopped`)
  pausedApiservers.add(pid)
  return pid
}

export const resumeApiserver = (pid: number): void => {
  signal(pid, "SIGCONT")
  pausedApiservers.delete(pid)
}

/** Resumes every API server this process froze (also when the test process exits). */
export const resumeAllApiservers = (): void => {
  for (const pid of [...pausedApiservers]) resumeApiserver(pid)
}
const pausedApiservers = new Set<number>()
process.on("exit", resumeAllApiservers)

/** Pids of `pid`'s descendants (children first), from /proc. */
export const descendants = (pid: number): Array<number> => {
  const parentOf = new Map<number, number>()
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      // pid (comm) state ppid ...: comm may hold spaces and parentheses
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      parentOf.set(Number(entry), ppid)
    } catch {
      // the process ended while we looked
    }
  }
  const out: Array<number> = []
  const walk = (p: number) => {
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        walk(child)
        out.push(child)
      }
    }
  }
  walk(pid)
  return out
}

/** Running (a zombie, dead but not yet reaped by its parent, is not). */
const alive = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

/**
 * SIGKILLs a process and everything under it at once (`tsx` runs the
 * controller in a child node process: killing only `tsx` would leave the
 * controller running), then waits until all of them are gone.
 */
export const killTree = async (pid: number): Promise<number> => {
  const tree = [...descendants(pid), pid]
  for (const p of tree) signal(p, "SIGKILL")
  const deadline = Date.now() + 10_000
  while (tree.some(alive)) {
    if (Date.now() > deadline) throw new Error(`processes ${tree.filter(alive).join(" ")} survived SIGKILL`)
    await sleep(20)
  }
  return tree.length
}

/**
 * The controller as one replica of its Deployment whose container keeps
 * getting killed: `kill()` SIGKILLs the process tree and starts it again
 * right away with the same LEADER_ELECTION_IDENTITY (the pod name, which a
 * container restart keeps, so the new process takes the Lease over at
 * once). A controller that exits by itself is restarted as well, and
 * counted. Each incarnation logs to its own file.
 */
export class ControllerReplica {
  readonly incarnations: Array<Proc> = []
  /** When each incarnation was started (ms since the epoch). */
  readonly startedAt: Array<number> = []
  private killing = false
  private stopped = false
  unexpectedExits = 0
  kills = 0
  private readonly watchdog: ReturnType<typeof setInterval>

  constructor(
    private readonly name: string,
    private readonly cluster: string,
    private readonly systemNamespace: string,
    private readonly onEvent: (message: string) => void = () => {}
  ) {
    this.start()
    this.watchdog = setInterval(() => {
      if (this.killing || this.stopped || !this.current.exited()) return
      this.unexpectedExits++
      this.onEvent(`${this.current.name} exited by itself (${this.current.child.exitCode ?? this.current.child.signalCode}): restarting it`)
      this.start()
    }, 500)
  }

  get current(): Proc {
    return this.incarnations[this.incarnations.length - 1]!
  }

  private start(): void {
    const proc = startController(`${this.name}-${this.incarnations.length}`, this.cluster, this.systemNamespace, {
      LEADER_ELECTION_IDENTITY: this.name
    })
    this.incarnations.push(proc)
    this.startedAt.push(Date.now())
  }

  /** The incarnation that was running at `time` (ms since the epoch). */
  incarnationAt(time: number): number {
    let n = 0
    for (let i = 0; i < this.startedAt.length; i++) if (this.startedAt[i]! <= time) n = i
    return n
  }

  /** SIGKILL now, then start again at once. */
  async kill(): Promise<void> {
    if (this.stopped) return
    this.killing = true
    try {
      const pid = this.current.child.pid
      if (pid !== undefined && !this.current.exited()) await killTree(pid)
      this.kills++
      this.start()
    } finally {
      this.killing = false
    }
  }

  /** True once the running incarnation holds the Lease. */
  leading(): boolean {
    return this.current.log().includes("became leader")
  }

  /** Every incarnation's log, in order. */
  logs(): string {
    return this.incarnations.map((p) => p.log()).join("\n")
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.watchdog)
    const p = this.current
    if (p.child.pid !== undefined && !p.exited()) {
      // SIGTERM lets it end its scopes (tsx passes it on); whatever is left after that gets SIGKILL
      const tree = descendants(p.child.pid)
      await p.stop()
      for (const child of tree) if (alive(child)) signal(child, "SIGKILL")
    }
  }
}
