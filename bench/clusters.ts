/**
 * The controller embedded, its workflows spread over several clusters
 * (issue 14 items 2 and 6): the embedded runtime in simulate mode (in-memory
 * API servers, one simulated kubelet and scheduler per cluster), single-pod
 * workflows submitted to `main`, workflow `i` running its pod in cluster
 * `i mod k` (`main` itself, or a remote cluster through a template's
 * `cluster:`/`namespace:`, created with the workflow owner's kubeconfig
 * secret exactly as the embedded runtime provisions it).
 *
 * - `spreadRun(n, k)`: one run; `threeClusters` is item 2 (1,000 workflows
 *   over main and two remote clusters), `clusterScale` item 6 (the same
 *   workload over 1, 3 and 10 clusters, cost per workflow for each).
 *
 * Figures of one run, after one warm-up workflow per cluster (so caches are
 * synced and every remote connection is open before the clock starts):
 * - workflows per minute: first submission to the last workflow seen ended;
 * - pod done to node done: a pod first seen Succeeded (the simulated kubelet's
 *   write, seen through a watch of the in-memory API) to its node first seen
 *   Succeeded in the stored Workflow (a watch of the workflows), p50/p99;
 * - API requests per workflow by verb and by cluster: the controller's only,
 *   told apart by the identity each call authenticated as (`partyOf`), from the
 *   in-memory servers' request logs, first submission to the end of the settle
 *   (the writes after the last completion, until no cluster has had a write for
 *   `settleQuiet`, belong to the run);
 * - CPU ms (process.cpuUsage, same window) and peak RSS (process.memoryUsage,
 *   sampled every 100 ms): the WHOLE process, that is the controller plus the
 *   in-memory API servers, kubelets, schedulers and this harness (its watches
 *   and submissions). The part that is not the controller grows with the
 *   workflows, not with the clusters, so the curve over cluster counts is
 *   still the controller's; the absolute figures are an upper bound.
 *
 * Never a timed test: run.ts prints the figures, writes them under
 * bench/results/ and checks the flatness bound.
 */
import { Deferred, Duration, Effect, Schedule, Stream } from "effect"
import * as Embedded from "../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../src/kube/api/Resources.js"
import { watchResource } from "../src/kube/cache/Watch.js"
import { annotationNodeId } from "../src/util/argoKeys.js"
import { type AuditEntry, InMemoryKube } from "../src/testing/InMemoryKube.js"
import { percentile } from "./compare.js"

export const workflowNamespace = "bench"
/** Where remote pods run (every remote cluster has it). */
export const remoteNamespace = "bench-remote"
const workflowLabel = "workflows.argoproj.io/workflow"

// --------------------------------------------------------------------------- workload

/** `main` and `k - 1` remote clusters. */
export const clusterNames = (k: number): ReadonlyArray<string> =>
  Array.from({ length: Math.max(1, k) }, (_, i) => (i === 0 ? Embedded.localClusterName : `cluster-${i}`))

/**
 * Workflow `name`, one pod in `cluster`: the local cluster's in the workflow's
 * namespace, a remote one's in `remoteNamespace` (the template names both).
 * The simulated kubelet ends the pod at once (Succeeded).
 */
export const spreadWorkflow = (name: string, cluster: string): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: workflowNamespace },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    templates: [{
      name: "main",
      ...(cluster === Embedded.localClusterName ? {} : { cluster, namespace: remoteNamespace }),
      metadata: { annotations: { "flotilla.dev/simulate-duration": "0s" } },
      container: { image: "busybox", command: ["true"] }
    }]
  }
})

/** `n` workflows, the `i`th in cluster `i mod k`: evenly spread. */
export const spreadWorkload = (n: number, clusters: ReadonlyArray<string>, prefix = "wf"): ReadonlyArray<KubeObject> =>
  Array.from({ length: n }, (_, i) => spreadWorkflow(`${prefix}-${i}`, clusters[i % clusters.length]!))

// --------------------------------------------------------------------------- requests

/**
 * Who made a call, by the identity it authenticated as (the embedded runtime
 * gives each party its own token, Embedded.tokens):
 * - controller: `controller` (its own credentials, every cluster) and `workflow`
 *   (the workflow owner's credentials from `<sa>-kubeconfig`, which only the
 *   controller reads: it creates the pods with them);
 * - cluster: what a real cluster runs by itself: the kubelet, the scheduler and
 *   pods' service accounts (`system:serviceaccount:...`);
 * - harness: `admin`, this benchmark's submissions and watches;
 * - other: anything else (`system:anonymous`: a token no one was given).
 */
export type Party = "controller" | "cluster" | "harness" | "other"

export const partyOf = (identity: string): Party => {
  if (identity === "controller" || identity === "workflow") return "controller"
  if (identity === "kubelet" || identity === "scheduler" || identity.startsWith("system:serviceaccount:")) return "cluster"
  if (identity === "admin") return "harness"
  return "other"
}

export interface RequestCounts {
  readonly total: number
  readonly byVerb: Readonly<Record<string, number>>
  readonly byCluster: Readonly<Record<string, number>>
  /** `verb resource[/subresource]`. */
  readonly byRequest: Readonly<Record<string, number>>
  /** Calls by other parties in the same window, for the record (not the controller's). */
  readonly byOtherParty: Readonly<Record<string, number>>
}

const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1
}
const sorted = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b)))

/** The controller's calls after `afterSeq[cluster]` (exclusive; absent: all) in each cluster's log. */
export const countControllerRequests = (
  logs: ReadonlyMap<string, ReadonlyArray<AuditEntry>>,
  afterSeq: ReadonlyMap<string, number> = new Map()
): RequestCounts => {
  const byVerb: Record<string, number> = {}
  const byCluster: Record<string, number> = {}
  const byRequest: Record<string, number> = {}
  const byOtherParty: Record<string, number> = {}
  let total = 0
  for (const [cluster, entries] of logs) {
    const from = afterSeq.get(cluster) ?? -Infinity
    byCluster[cluster] = 0
    for (const e of entries) {
      if (e.seq <= from) continue
      const party = partyOf(e.identity)
      if (party !== "controller") {
        bump(byOtherParty, party)
        continue
      }
      total += 1
      byCluster[cluster] += 1
      bump(byVerb, e.verb)
      bump(byRequest, `${e.verb} ${e.resource}${e.subresource ? `/${e.subresource}` : ""}`)
    }
  }
  return { total, byVerb: sorted(byVerb), byCluster, byRequest: sorted(byRequest), byOtherParty: sorted(byOtherParty) }
}

const round = (x: number, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x)
/** Each count over `n`, rounded. */
export const perWorkflow = (m: Readonly<Record<string, number>>, n: number): Record<string, number> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v / n, 2)]))

// --------------------------------------------------------------------------- latency

/**
 * Pod done to node done per key (`workflow/nodeId`) seen on both sides, ms,
 * sorted; never negative (the two watches are separate streams: a node written
 * Succeeded has its pod's change behind it, seen a moment later at most).
 */
export const nodeLatencies = (podDone: ReadonlyMap<string, number>, nodeDone: ReadonlyMap<string, number>): Array<number> => {
  const out: Array<number> = []
  for (const [key, at] of podDone) {
    const done = nodeDone.get(key)
    if (done !== undefined) out.push(Math.max(0, done - at))
  }
  return out.sort((a, b) => a - b)
}

// --------------------------------------------------------------------------- one run

interface WorkflowStatus {
  readonly phase?: string
  readonly nodes?: Record<string, { readonly phase?: string; readonly type?: string }>
}
const isEnded = (phase: string | undefined) => phase === "Succeeded" || phase === "Failed" || phase === "Error"

/**
 * Watches (as `admin`, the harness) the workflows in `main` and the pods of
 * every cluster: when each workflow was first seen ended, each Pod node first
 * seen Succeeded, each pod first seen Succeeded. Ready once every watch listed.
 */
const tracker = Effect.fnUntraced(function*(kube: InMemoryKube["Service"], clusters: ReadonlyArray<string>) {
  const ended = new Map<string, { readonly at: number; readonly phase: string }>()
  const nodeDone = new Map<string, number>()
  const podDone = new Map<string, number>()
  const waits: Array<{ readonly pending: Set<string>; readonly done: Deferred.Deferred<void> }> = []
  const seeWorkflow = (wf: KubeObject) => {
    const now = Date.now()
    const name = wf.metadata.name!
    const status = (wf["status"] ?? {}) as WorkflowStatus
    for (const [id, node] of Object.entries(status.nodes ?? {})) {
      const key = `${name}/${id}`
      if (node.type === "Pod" && node.phase === "Succeeded" && !nodeDone.has(key)) nodeDone.set(key, now)
    }
    if (isEnded(status.phase) && !ended.has(name)) {
      ended.set(name, { at: now, phase: status.phase! })
      for (const w of waits) {
        if (w.pending.delete(name) && w.pending.size === 0) Deferred.doneUnsafe(w.done, Effect.void)
      }
    }
  }
  const podCluster = new Map<string, string>()
  const seePod = (cluster: string) => (pod: KubeObject) => {
    if ((pod["status"] as { phase?: string } | undefined)?.phase !== "Succeeded") return
    const wf = pod.metadata.labels?.[workflowLabel]
    const id = pod.metadata.annotations?.[annotationNodeId]
    if (wf === undefined || id === undefined) return
    const key = `${wf}/${id}`
    if (!podDone.has(key)) {
      podDone.set(key, Date.now())
      podCluster.set(key, cluster)
    }
  }
  const follow = (client: ReturnType<typeof kube.adminClient>, kind: "workflows" | "pods", ns: string, see: (o: KubeObject) => void) =>
    Effect.gen(function*() {
      const synced = yield* Deferred.make<void>()
      yield* watchResource(client, kind, ns).pipe(
        Stream.runForEach((item) =>
          Effect.sync(() => {
            if (item._tag === "Synced") {
              item.items.forEach(see)
              Deferred.doneUnsafe(synced, Effect.void)
            } else if (item._tag === "Upsert" || item._tag === "Delete") see(item.object)
          })
        ),
        Effect.forkScoped
      )
      yield* Deferred.await(synced)
    })
  yield* follow(kube.adminClient(Embedded.localClusterName), "workflows", workflowNamespace, seeWorkflow)
  for (const c of clusters) {
    yield* follow(kube.adminClient(c), "pods", c === Embedded.localClusterName ? workflowNamespace : remoteNamespace, seePod(c))
  }
  /** Waits until every named workflow has ended. */
  const awaitEnded = (names: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const pending = new Set(names.filter((n) => !ended.has(n)))
      if (pending.size === 0) return
      const done = yield* Deferred.make<void>()
      waits.push({ pending, done })
      yield* Deferred.await(done)
    })
  return { ended, nodeDone, podDone, podCluster, awaitEnded }
})

export interface SpreadResult {
  readonly name: string
  readonly clusters: number
  readonly workflows: number
  readonly succeeded: number
  readonly seconds: number
  /** From the first submission to the last one's response. */
  readonly submitSeconds: number
  readonly workflowsPerMinute: number
  readonly p50NodeLatencyMs: number
  readonly p99NodeLatencyMs: number
  readonly maxNodeLatencyMs: number
  /** Pods whose latency was seen on both sides (should be every workflow's). */
  readonly latencySamples: number
  /** The same latency by the cluster the pod ran in. */
  readonly nodeLatencyMsByCluster: Readonly<Record<string, { readonly p50: number; readonly p99: number }>>
  readonly apiRequestsPerWorkflow: number
  readonly apiRequestsPerWorkflowByVerb: Readonly<Record<string, number>>
  readonly apiRequestsPerWorkflowByCluster: Readonly<Record<string, number>>
  /** The controller's calls, totals by `verb resource`. */
  readonly apiRequests: Readonly<Record<string, number>>
  /** Other parties' calls in the window (the simulated cluster, the harness), totals. */
  readonly otherRequests: Readonly<Record<string, number>>
  /** Whole process: see the module header. */
  readonly cpuMs: number
  readonly cpuMsPerWorkflow: number
  readonly peakRssMiB: number
  /** From the last completion to the end of the settle. */
  readonly settleMs: number
  /** Seconds from the first submission to each workflow seen ended, sorted (the plot's). */
  readonly completedAtSeconds: ReadonlyArray<number>
  /** Pod done to node done, ms, sorted (the plot's). */
  readonly latenciesMs: ReadonlyArray<number>
}

export interface SpreadOptions {
  /** Submissions in flight at once. Default 16 (as the compare bench). */
  readonly submitConcurrency?: number
  /** The run fails when the workflows have not all ended by then. Default 10 minutes. */
  readonly timeout?: Duration.Input
  /** The settle ends when no cluster has had a write for this long. Default 500 ms. */
  readonly settleQuiet?: Duration.Input
}

/** One run: `n` single-pod workflows over `k` clusters, on a fresh embedded runtime. */
export const spreadRun = (n: number, k: number, options: SpreadOptions = {}) =>
  Effect.gen(function*() {
    const clusters = clusterNames(k)
    const warmups = spreadWorkload(clusters.length, clusters, "warmup")
    const workload = spreadWorkload(n, clusters)
    const { admin, kube } = yield* Embedded.start(Embedded.placementOf([...warmups, ...workload]), { mode: "simulate" })

    let peak = 0
    const sample = () => {
      peak = Math.max(peak, process.memoryUsage().rss)
    }
    yield* Effect.sync(sample).pipe(Effect.repeat(Schedule.spaced("100 millis")), Effect.forkScoped)

    const track = yield* tracker(kube, clusters)
    const timeout = Duration.fromInputUnsafe(options.timeout ?? "10 minutes")
    const within = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) =>
      effect.pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.die(new Error(`clusters bench (${n} workflows, ${k} clusters): ${what} not done after ${Duration.format(timeout)}; ${track.ended.size} ended`))
        })
      )

    // warm-up: one workflow per cluster, so every cache is synced and every remote connection open
    yield* Effect.forEach(warmups, (wf) => admin.create("workflows", workflowNamespace, wf), { discard: true })
    yield* within(track.awaitEnded(warmups.map((w) => w.metadata.name!)), "warm-up")

    const lastSeq = Effect.forEach(clusters, (c) =>
      kube.requests(c).pipe(Effect.map((log) => [c, log.length === 0 ? 0 : log[log.length - 1]!.seq] as const)))
    const fromSeq = new Map(yield* lastSeq)
    const cpu0 = process.cpuUsage()
    const t0 = Date.now()
    yield* Effect.forEach(workload, (wf) => admin.create("workflows", workflowNamespace, wf), {
      concurrency: options.submitConcurrency ?? 16,
      discard: true
    })
    const submittedMs = Date.now() - t0
    const names = workload.map((w) => w.metadata.name!)
    yield* within(track.awaitEnded(names), `${n} workflows`)
    const tEnd = Math.max(...names.map((name) => track.ended.get(name)!.at))

    // settle: until no cluster has had a write for settleQuiet (resourceVersions are cheap to read,
    // the request logs are not: copying them would be charged to the run)
    const quietMs = Duration.toMillis(Duration.fromInputUnsafe(options.settleQuiet ?? "500 millis"))
    const versions = Effect.forEach(clusters, (c) => kube.resourceVersion(c)).pipe(Effect.map((vs) => vs.join(",")))
    let last = yield* versions
    let quietSince = Date.now()
    while (Date.now() - quietSince < quietMs && Date.now() - tEnd < 10_000) {
      yield* Effect.sleep("50 millis")
      const now = yield* versions
      if (now !== last) {
        last = now
        quietSince = Date.now()
      }
    }
    const cpu = process.cpuUsage(cpu0)
    const settleMs = Date.now() - tEnd
    sample()

    const logs = new Map(yield* Effect.forEach(clusters, (c) => kube.requests(c).pipe(Effect.map((log) => [c, log] as const))))
    for (const [c, log] of logs) {
      // the logs keep their last entries only (InMemoryKubeOptions.maxLogEntries): a gap would undercount
      if (log.length > 0 && log[0]!.seq > fromSeq.get(c)! + 1) {
        return yield* Effect.die(new Error(`clusters bench: ${c}'s request log was trimmed during the run; raise maxLogEntries`))
      }
    }
    const counts = countControllerRequests(logs, fromSeq)
    const measured = [...track.podDone].filter(([key]) => !key.startsWith("warmup-"))
    const latencies = nodeLatencies(new Map(measured), track.nodeDone)
    const nodeLatencyMsByCluster = Object.fromEntries(clusters.map((c) => {
      const of = nodeLatencies(new Map(measured.filter(([key]) => track.podCluster.get(key) === c)), track.nodeDone)
      return [c, { p50: round(percentile(of, 50), 0), p99: round(percentile(of, 99), 0) }]
    }))
    const seconds = (tEnd - t0) / 1000
    const cpuMs = (cpu.user + cpu.system) / 1000
    const result: SpreadResult = {
      name: `controller.clusters`,
      clusters: clusters.length,
      workflows: n,
      succeeded: names.filter((name) => track.ended.get(name)!.phase === "Succeeded").length,
      seconds: round(seconds, 2),
      submitSeconds: round(submittedMs / 1000, 2),
      workflowsPerMinute: round((n / seconds) * 60),
      p50NodeLatencyMs: round(percentile(latencies, 50), 0),
      p99NodeLatencyMs: round(percentile(latencies, 99), 0),
      maxNodeLatencyMs: round(latencies[latencies.length - 1] ?? NaN, 0),
      latencySamples: latencies.length,
      nodeLatencyMsByCluster,
      apiRequestsPerWorkflow: round(counts.total / n, 2),
      apiRequestsPerWorkflowByVerb: perWorkflow(counts.byVerb, n),
      apiRequestsPerWorkflowByCluster: perWorkflow(counts.byCluster, n),
      apiRequests: counts.byRequest,
      otherRequests: counts.byOtherParty,
      cpuMs: round(cpuMs, 0),
      cpuMsPerWorkflow: round(cpuMs / n, 2),
      peakRssMiB: round(peak / 2 ** 20),
      settleMs,
      completedAtSeconds: names.map((name) => round((track.ended.get(name)!.at - t0) / 1000, 3)).sort((a, b) => a - b),
      latenciesMs: latencies
    }
    return result
  }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer))

// --------------------------------------------------------------------------- item 2 and item 6

/** Item 2: `n` workflows (BENCH_WORKFLOWS, default 1,000) over main and two remote clusters. */
export const threeClusters = (n: number) =>
  Effect.timed(spreadRun(n, 3)).pipe(
    Effect.map(([took, r]) => ({ ...r, name: "controller.threeClusters", wallSeconds: round(Duration.toSeconds(took), 1) }))
  )

export interface ScalePoint {
  readonly clusters: number
  /** Of the workflows, the share whose pod ran in a remote cluster ((k - 1) / k). */
  readonly remoteShare: number
  readonly workflows: number
  readonly succeeded: number
  readonly cpuMsPerWorkflow: number
  readonly apiRequestsPerWorkflow: number
  readonly apiRequestsPerWorkflowByVerb: Readonly<Record<string, number>>
  readonly workflowsPerMinute: number
  readonly p99NodeLatencyMs: number
  readonly peakRssMiB: number
}

export interface ScaleResult {
  readonly name: "controller.clusterScale"
  readonly workflows: number
  readonly points: ReadonlyArray<ScalePoint>
  /** The largest cluster count's cost per workflow over the smallest's. */
  readonly cpuGrowth: number
  readonly requestGrowth: number
  /** The whole benchmark, set-ups and tear-downs included. */
  readonly wallSeconds: number
}

/** The last point's figure over the first's (1 when flat, NaN without two points). */
export const growth = (points: ReadonlyArray<ScalePoint>, figure: (p: ScalePoint) => number): number => {
  if (points.length < 2) return NaN
  return round(figure(points[points.length - 1]!) / figure(points[0]!), 2)
}

export const scalePoint = (r: SpreadResult): ScalePoint => ({
  clusters: r.clusters,
  remoteShare: round((r.clusters - 1) / r.clusters, 2),
  workflows: r.workflows,
  succeeded: r.succeeded,
  cpuMsPerWorkflow: r.cpuMsPerWorkflow,
  apiRequestsPerWorkflow: r.apiRequestsPerWorkflow,
  apiRequestsPerWorkflowByVerb: r.apiRequestsPerWorkflowByVerb,
  workflowsPerMinute: r.workflowsPerMinute,
  p99NodeLatencyMs: r.p99NodeLatencyMs,
  peakRssMiB: r.peakRssMiB
})

/** Item 6: `n` workflows (BENCH_SCALE_WORKFLOWS, default 600) over each cluster count, one fresh runtime each. */
export const clusterScale = (n: number, counts: ReadonlyArray<number> = [1, 3, 10]) =>
  Effect.gen(function*() {
    const started = Date.now()
    const points: Array<ScalePoint> = []
    for (const k of counts) points.push(scalePoint(yield* spreadRun(n, k)))
    const result: ScaleResult = {
      name: "controller.clusterScale",
      workflows: n,
      points,
      cpuGrowth: growth(points, (p) => p.cpuMsPerWorkflow),
      requestGrowth: growth(points, (p) => p.apiRequestsPerWorkflow),
      wallSeconds: round((Date.now() - started) / 1000)
    }
    return result
  })

// --------------------------------------------------------------------------- tables

const pad = (rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

/** Item 2's figures, one per line. */
export const spreadTable = (r: SpreadResult): string =>
  pad([
    ["figure", "value"],
    ["clusters", String(r.clusters)],
    ["workflows succeeded", `${r.succeeded} of ${r.workflows}`],
    ["workflows per minute", String(r.workflowsPerMinute)],
    ["seconds: all submitted / all ended", `${r.submitSeconds} / ${r.seconds}`],
    ["p50 / p99 pod-done to node-done ms", `${r.p50NodeLatencyMs} / ${r.p99NodeLatencyMs} (max ${r.maxNodeLatencyMs})`],
    ["API requests per workflow (controller)", String(r.apiRequestsPerWorkflow)],
    ...Object.entries(r.apiRequestsPerWorkflowByVerb).map(([verb, v]) => [`  by verb: ${verb}`, String(v)]),
    ...Object.entries(r.apiRequestsPerWorkflowByCluster).map(([c, v]) => [`  in cluster: ${c}`, String(v)]),
    ["CPU ms per workflow (whole process)", String(r.cpuMsPerWorkflow)],
    ["peak RSS MiB (whole process)", String(r.peakRssMiB)]
  ])

/** Item 6: one row per cluster count. */
export const scaleTable = (s: ScaleResult): string =>
  pad([
    ["clusters", "remote share", "workflows", "CPU ms/workflow", "API requests/workflow", "workflows/min", "p99 node latency ms", "peak RSS MiB"],
    ...s.points.map((p) => [
      String(p.clusters),
      String(p.remoteShare),
      `${p.succeeded}/${p.workflows}`,
      String(p.cpuMsPerWorkflow),
      String(p.apiRequestsPerWorkflow),
      String(p.workflowsPerMinute),
      String(p.p99NodeLatencyMs),
      String(p.peakRssMiB)
    ])
  ])
