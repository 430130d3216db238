/**
 * `npm run bench -- --large` (issue 14 item 5): large workflows end to end on
 * both controllers, flotilla's (compiled, as the image runs it) and upstream
 * Argo's workflow-controller v4.0.5 (scripts/bench/build-upstream.sh), one
 * after the other on the bench's own real cluster with kwok nodes.
 *
 * Two workloads, one workflow each (bench/largeWorkload.ts, the same spec for
 * both controllers):
 *   - `dag`: a `BENCH_LARGE_DAG`-task DAG (default 5,000): `start` fans out to
 *     10 layers, each task depending on two of the layer before, fanning in to
 *     `end`;
 *   - `loop`: a steps template looping over `BENCH_LARGE_ITEMS` items (default
 *     10,000) with `withItems`, one pod per item, no parallelism limit.
 * Every pod is completed by bench/podCompleter.ts (task result, then pod
 * Succeeded), the same harness component `--compare` uses.
 *
 * flotilla runs compiled as compare.ts's `compileFlotilla` builds it, in the
 * image's form (`process` in the JSON says how), no tsx loader in the process.
 *
 * Each (workload, controller) runs in a process of its own (so the reconcile
 * histogram, peak RSS and API requests are that run's alone), in a fresh
 * namespace deleted afterwards: the controller starts, a one-pod warm-up
 * workflow runs to completion (caches synced), the metrics are scraped, the
 * large workflow is submitted and its phase read every second until it ends
 * or the per-run timeout passes (`BENCH_LARGE_TIMEOUT_SECONDS`, default
 * max(600 s, 0.25 s per pod)); a timeout or an early exit of the controller is
 * recorded as the run's outcome (with the log's tail) and the bench goes on.
 * Figures per run:
 *   - `seconds`: submission to the workflow seen ended (1 s polling);
 *   - `reconciles`: the reconciles of the run from the controller's own
 *     histogram, scraped before the submission and at the end: flotilla's
 *     `flotilla_reconcile_duration_seconds` (every result; fine buckets),
 *     upstream's `argo_workflows_operation_duration_seconds` (one `operate`
 *     per workflow key processed, workflow/controller/controller.go), on
 *     linear 50 ms buckets (`OPERATION_DURATION_METRIC_BUCKET_COUNT=600` over
 *     its default MAX_OPERATION_TIME of 30 s: the buckets only, the operation
 *     deadline is untouched). Count, mean (sum/count, exact), p50/p99 (bucket
 *     interpolation: a quantile beyond the last finite bound, 60 s for
 *     flotilla, 30 s for upstream, is reported as that bound, a lower bound),
 *     total seconds. Both include the API calls a reconcile waits on (pod
 *     creates), not only CPU: `cpuSeconds` beside them tells the two apart;
 *   - `status`: the Workflow as fetched at the end: bytes of `status` and of
 *     the object as JSON, node count, whether the nodes were compressed
 *     (`status.compressedNodes`) or offloaded, phase and message (upstream's
 *     1 MiB `MAX_WORKFLOW_SIZE` shows here as its "workflow is longer than
 *     maximum allowed size" error);
 *   - `rssMiB`: peak resident set (VmHWM) of the controller's own process,
 *     beside `rssAtSubmitMiB` (VmRSS after the warm-up, at the submission);
 *   - `cpuSeconds`: the controller process's CPU time (user + system,
 *     /proc/<pid>/stat) from the submission to the end;
 *   - `apiRequests`: the controller's requests by verb from the submission to
 *     the end (audit log, counted as `--compare` counts them, but followed as it
 *     grows, bench/auditTail.ts: it rotates at 50 MB into one backup, and a
 *     10,000-pod run writes more than that);
 *   - `podsCompletedAtSeconds`: each pod's completion, from the submission
 *     (the plot's series).
 *
 * Rate limits: none for either (flotilla without `--qps`, its default;
 * upstream `--qps/--burst 100000`), which keeps the run short; the large
 * workflows measure the reconcile of one big object, not the client's
 * token bucket. Workers 32 each (one workflow: it hardly matters).
 *
 *   npm run bench -- --large                          # 5,000-task DAG, 10,000-item loop
 *   BENCH_LARGE_DAG=200 BENCH_LARGE_ITEMS=400 npm run bench -- --large
 *   BENCH_LARGE_CONTROLLERS=flotilla BENCH_LARGE_WORKLOADS=loop npm run bench -- --large
 *   BENCH_FLOTILLA_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- --large
 *
 * Measured at BENCH_LARGE_DAG=1000 BENCH_LARGE_ITEMS=2000 on the 2-core machine
 * shared and loaded (load average 8-9), flotilla (then an esbuild bundle; compiled by
 * tsc since, about 30 MiB less at start) / upstream v4.0.5:
 *   DAG 1,000:  54.2 s / 140.6 s to complete; reconciles 39 / 13, mean 1.37 s / 9.68 s;
 *               controller CPU 6.3 s / 46.8 s; status 459 KB / 508 KB (not compressed);
 *               peak RSS 469 / 191 MiB (261 / 67 MiB after the warm-up); API requests 2,028 / 4,013
 *   loop 2,000: 106.2 s / 179.2 s; reconciles 3 / 7, mean 35.2 s / 25.3 s (upstream's
 *               30 s operation deadline; flotilla's longest about 60 s: one reconcile creates
 *               every pod the engine asks for, 8 at a time, before it writes the status);
 *               CPU 9.3 s / 69.6 s; status 932 KB / 1,030 KB (not compressed);
 *               peak RSS 560 / 349 MiB; API requests 2,902 / 5,425
 * flotilla's CPU profile of the loop (BENCH_FLOTILLA_NODE_ARGS=--cpu-prof): 79% idle, the
 * rest spread (watch line parsing, GC, Effect's run loop): the long reconciles wait on the
 * API server, they do not compute.
 *
 * The cluster is compare.ts's `benchCluster` (`BENCH_CLUSTERS_DIR`, `BENCH_PORT_BASE`; down.sh
 * at the end, also on failure or Ctrl-C) with enough kwok nodes (110 pods
 * each) for every pod of the wider workload at once (`BENCH_LARGE_KWOK_NODES`
 * overrides). Writes bench/results/large.json and bench/results/large.svg
 * (pods completed over time, both controllers, one panel per workload) and
 * prints a table.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Duration, Effect, Fiber, Layer, Option, Schedule } from "effect"
import { parse } from "yaml"
import { KubeConnector } from "../src/kube/api/KubeConnector.js"
import type { KubeClientShape } from "../src/kube/api/KubeClient.js"
import type { KubeObject } from "../src/kube/api/Resources.js"
import { LiveKubeConnector } from "../src/kube/live/LiveKubeConnector.js"
import {
  adminKubeconfigOf,
  adminSpec,
  benchCluster,
  benchResultsDir,
  benchStateDir,
  commandLineOf,
  type CompiledFlotilla,
  compileFlotilla,
  type ControllerName,
  controllerUser,
  countRequests,
  flotillaEnv,
  flotillaNodeArgs,
  rateLimitArgs,
  round,
  run,
  startProcess,
  tail,
  vmHwmMiB,
  workers,
  workflowOf,
  runBenchMain
} from "./compare.js"
import {
  dagLayers,
  dagWorkflow,
  type Histogram,
  histogramDelta,
  histogramQuantile,
  loopWorkflow,
  parseHistogram,
  type StatusFigures,
  statusFigures
} from "./largeWorkload.js"
import { largeSvg } from "./plot.js"
import { followAudit } from "./auditTail.js"
import { PodCompleter } from "./podCompleter.js"

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..")
const resultsDir = benchResultsDir
const adminKubeconfig = adminKubeconfigOf("main")
const portBase = Number(process.env["BENCH_PORT_BASE"] ?? "27400")
/** Metrics ports in the bench's range: upstream's default 9090 is taken by any other controller here. */
const metricsPort = (c: ControllerName) => portBase + (c === "upstream" ? 90 : 91)

export type Workload = "dag" | "loop"

export interface ReconcileFigures {
  /** The histogram read: flotilla's fine one, upstream's operation duration. */
  readonly metric: string
  readonly count: number
  readonly meanMs: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly totalSeconds: number
}

export interface LargeRun {
  readonly controller: ControllerName
  readonly workload: Workload
  /** Pods the workflow runs (tasks or items). */
  readonly pods: number
  /** The workflow's phase at the end, or `timeout` / `exited` (the controller died) / `error`. */
  readonly outcome: string
  readonly message?: string
  /** Submission to the workflow seen ended; null when it did not end. */
  readonly seconds: number | null
  readonly podsCompleted: number
  readonly reconciles: ReconcileFigures | null
  readonly status: (StatusFigures & { readonly phase: string }) | null
  readonly rssMiB: number
  /** Resident set when the large workflow was submitted (after the warm-up): what the workflow adds is the difference. */
  readonly rssAtSubmitMiB: number
  /** CPU seconds (user + system) the controller process spent from the submission to the end. */
  readonly cpuSeconds: number
  readonly apiRequests: number
  readonly apiRequestsByVerb: Record<string, number>
  readonly process: string
}

// --------------------------------------------------------------------------- one run

/** Current resident set of a process, MiB (0 once it is gone). */
const vmRssMiB = (pid: number): number => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) / 1024 : 0
  } catch {
    return 0
  }
}

/** utime + stime of a process so far, seconds (NaN once it is gone); /proc/<pid>/stat counts in USER_HZ, 100 on Linux. */
export const cpuSecondsOf = (stat: string): number => {
  // the command name (field 2) may hold spaces: count fields after its closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const processCpuSeconds = (pid: number): number => {
  try {
    return cpuSecondsOf(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return NaN
  }
}

const scrape = (port: number) =>
  Effect.tryPromise(() => fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text())).pipe(
    Effect.catch((e) => Effect.as(Effect.logWarning(`large: metrics on :${port}: ${String(e)}`), ""))
  )

const histogramName = (c: ControllerName) => c === "flotilla" ? "flotilla_reconcile_duration_seconds" : "argo_workflows_operation_duration_seconds"

export const reconcileFigures = (metric: string, before: Histogram | undefined, after: Histogram | undefined): ReconcileFigures | null => {
  if (after === undefined) return null
  const d = histogramDelta(after, before)
  return {
    metric,
    count: d.count,
    meanMs: d.count > 0 ? round((d.sum / d.count) * 1000, 2) : NaN,
    p50Ms: round(histogramQuantile(d, 0.5) * 1000, 2),
    p99Ms: round(histogramQuantile(d, 0.99) * 1000, 2),
    totalSeconds: round(d.sum, 2)
  }
}

const phaseOf = (wf: KubeObject) => ((wf.status ?? {}) as { phase?: string }).phase ?? ""
const messageOf = (wf: KubeObject) => ((wf.status ?? {}) as { message?: string }).message
const ended = (phase: string) => phase === "Succeeded" || phase === "Failed" || phase === "Error"

/** Polls a workflow's phase every second until it has ended. */
const awaitEnded = (admin: KubeClientShape, namespace: string, name: string) =>
  admin.get("workflows", namespace, name).pipe(
    Effect.map(phaseOf),
    Effect.catch(() => Effect.succeed("")),
    Effect.repeat({ schedule: Schedule.spaced("1 second"), until: ended })
  )

const runOne = Effect.fnUntraced(function*(options: {
  controller: ControllerName
  workload: Workload
  size: number
  kubectl: string
  upstreamBinary: string
  flotilla: CompiledFlotilla
  timeout: Duration.Duration
}) {
  const { controller, workload, size, kubectl } = options
  const systemNs = `bench-${controller}`
  const workloadNs = `bench-large-${controller}-${workload}`
  const name = `large-${controller}-${workload}`
  const k = (args: ReadonlyArray<string>, input?: string) =>
    run(kubectl, ["--kubeconfig", adminKubeconfig, ...args], input === undefined ? {} : { input })
  const admin = yield* (yield* KubeConnector).connect(adminSpec())
  const port = metricsPort(controller)

  // The controller's identity (audited by name: scripts/clusters/audit-policy.yaml), as compare.ts.
  yield* k(["apply", "-f", "-"], [
    `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"${systemNs}"}}`,
    `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"${workloadNs}"}}`,
    `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"controller","namespace":"${systemNs}"}}`,
    `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"${systemNs}-controller"},` +
    `"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},` +
    `"subjects":[{"kind":"ServiceAccount","name":"controller","namespace":"${systemNs}"}]}`,
    // upstream: its metrics on the bench's port, plain HTTP (secure is its default)
    `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"workflow-controller-configmap","namespace":"${systemNs}"},"data":${
      JSON.stringify(controller === "upstream" ? { metricsConfig: `{port: ${port}, secure: false}` } : {})
    }}`
  ].join("\n---\n"))
  yield* k(["-n", workloadNs, "get", "serviceaccount", "default"]).pipe(
    Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 120 })
  )
  const token = (yield* k(["-n", systemNs, "create", "token", "controller", "--duration=4h"])).trim()
  const adminDoc = parse(fs.readFileSync(adminKubeconfig, "utf8")) as { clusters: Array<{ cluster: unknown }> }
  const kubeconfig = path.join(benchStateDir, "bench", `${controller}-large.kubeconfig`)
  fs.mkdirSync(path.dirname(kubeconfig), { recursive: true })
  fs.writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "main", cluster: adminDoc.clusters[0]!.cluster }],
    users: [{ name: "controller", user: { token } }],
    contexts: [{ name: "main", context: { cluster: "main", user: "controller", namespace: systemNs } }],
    "current-context": "main"
  }), { mode: 0o600 })

  const common = ["--kubeconfig", kubeconfig, "--namespace", systemNs, "--configmap=workflow-controller-configmap", `--workflow-workers=${workers}`]
  const proc = controller === "flotilla"
    ? yield* startProcess(name, options.flotilla.node, [
      ...flotillaNodeArgs(options.flotilla),
      "controller",
      ...common,
      "--health-port=0",
      `--metrics-port=${port}`,
      ...rateLimitArgs("flotilla", "unlimited")
    ], { ...flotillaEnv, LEADER_ELECTION_DISABLE: "true", ARGO_NAMESPACE: systemNs, POD_NAMES: "v2" })
    : yield* startProcess(name, options.upstreamBinary, [
      ...common,
      "--namespaced",
      `--managed-namespace=${workloadNs}`,
      ...rateLimitArgs("upstream", "unlimited"),
      "--loglevel=warn"
    ], { LEADER_ELECTION_DISABLE: "true", OPERATION_DURATION_METRIC_BUCKET_COUNT: "600" })
  const pid = proc.child.pid!
  const cmdline = controller === "flotilla" ? `${commandLineOf(pid)} (${options.flotilla.form})` : commandLineOf(pid, 5)
  let peak = 0
  const sample = () => {
    const v = vmHwmMiB(pid)
    if (v !== undefined) peak = Math.max(peak, v)
  }
  yield* Effect.sync(sample).pipe(Effect.repeat(Schedule.spaced("500 millis")), Effect.forkScoped)

  const completer = yield* Layer.build(PodCompleter.layerConnected(adminSpec(), { namespaces: [workloadNs], concurrency: 32 })).pipe(
    Effect.map((ctx) => Context.get(ctx, PodCompleter))
  )
  /** Fails once the controller process has exited (checked every second). */
  const exited = Effect.suspend(() => proc.exited() ? Effect.fail(new Error(`${name} exited`)) : Effect.void).pipe(
    Effect.repeat(Schedule.spaced("1 second")),
    Effect.andThen(Effect.never)
  )

  // Warm-up: one single-pod workflow through, the controller is up and its caches synced.
  yield* admin.create("workflows", workloadNs, workflowOf("warmup", workloadNs))
  yield* Effect.raceFirst(awaitEnded(admin, workloadNs, "warmup"), exited).pipe(
    Effect.timeoutOrElse({
      duration: "180 seconds",
      orElse: () => Effect.fail(new Error(`${name}: warm-up workflow not done after 180 s; ${proc.logFile}:\n${tail(proc.logFile)}`))
    })
  )
  const completedBefore = (yield* completer.stats).completed
  const before = parseHistogram(yield* scrape(port), histogramName(controller))
  const rssAtSubmit = vmRssMiB(pid)
  const cpuAtSubmit = processCpuSeconds(pid)

  // the audit log from here on, read as it grows: a 10,000-pod run rotates it more than once
  const audit = followAudit(path.join(benchStateDir, "main", "logs"), controllerUser(controller))
  yield* Effect.sync(audit.poll).pipe(Effect.repeat(Schedule.spaced("10 seconds")), Effect.forkScoped)
  const wf = workload === "dag" ? dagWorkflow("large", workloadNs, size) : loopWorkflow("large", workloadNs, size)
  yield* Effect.logWarning(`large: ${name}: submitting a ${workload} of ${size} pods (timeout ${Duration.format(options.timeout)})`)
  const t0 = Date.now()
  yield* admin.create("workflows", workloadNs, wf)
  const progress = yield* Effect.gen(function*() {
    const s = yield* completer.stats
    yield* Effect.logWarning(`large: ${name}: ${s.completed - completedBefore} of ${size} pods completed after ${Math.round((Date.now() - t0) / 1000)} s`)
  }).pipe(Effect.repeat(Schedule.spaced("30 seconds")), Effect.delay("30 seconds"), Effect.forkScoped)
  const waited = yield* Effect.raceFirst(awaitEnded(admin, workloadNs, "large"), exited).pipe(
    Effect.timeoutOption(options.timeout),
    Effect.result
  )
  const tEnd = Date.now()
  yield* Fiber.interrupt(progress)
  const outcomeOf = (): { outcome: string; seconds: number | null; message?: string } => {
    if (waited._tag === "Failure") return { outcome: "exited", seconds: null, message: tail(proc.logFile) }
    if (Option.isNone(waited.success)) return { outcome: "timeout", seconds: null, message: `not ended after ${Duration.format(options.timeout)}` }
    return { outcome: waited.success.value, seconds: round((tEnd - t0) / 1000, 2) }
  }
  const outcome = outcomeOf()
  yield* Effect.sleep("2 seconds")
  const after = parseHistogram(yield* scrape(port), histogramName(controller))
  sample()
  const cpuSeconds = processCpuSeconds(pid) - cpuAtSubmit
  const final = yield* admin.get("workflows", workloadNs, "large").pipe(Effect.option)
  const completions = (yield* completer.completions).slice(completedBefore)
  // requests land in the audit log as they end: give it a moment
  yield* Effect.sleep("1 second")
  audit.poll()
  const requests = countRequests(audit.events(), controllerUser(controller), t0, Date.now())
  if (outcome.outcome === "timeout" || outcome.outcome === "exited") {
    yield* Effect.logWarning(`large: ${name}: ${outcome.outcome}; ${proc.logFile}:\n${tail(proc.logFile)}`)
  }
  const result: LargeRun = {
    controller,
    workload,
    pods: size,
    outcome: outcome.outcome,
    ...(outcome.message !== undefined
      ? { message: outcome.message }
      : Option.isSome(final) && messageOf(final.value) !== undefined
      ? { message: messageOf(final.value)! }
      : {}),
    seconds: outcome.seconds,
    podsCompleted: completions.length,
    reconciles: reconcileFigures(histogramName(controller), before, after),
    status: Option.isSome(final) ? { phase: phaseOf(final.value), ...statusFigures(final.value) } : null,
    rssMiB: round(peak),
    rssAtSubmitMiB: round(rssAtSubmit),
    cpuSeconds: round(cpuSeconds, 2),
    apiRequests: requests.total,
    apiRequestsByVerb: Object.fromEntries(Object.entries(requests.byVerb).sort()),
    process: cmdline
  }
  const series = completions.map((c) => round((c.completedAt - t0) / 1000, 3)).sort((a, b) => a - b)
  return { result, series }
}, (effect, options) =>
  // the controller stops with the scope; then its namespace goes, pods and all
  Effect.scoped(effect).pipe(
    Effect.ensuring(
      run(options.kubectl, ["--kubeconfig", adminKubeconfig, "delete", "namespace", `bench-large-${options.controller}-${options.workload}`, "--wait", "--timeout=600s"]).pipe(
        Effect.catch((e) => Effect.logWarning(`large: namespace clean-up: ${e.message}`))
      )
    )
  ))

// --------------------------------------------------------------------------- table and entry

const fmt = (x: number | null | undefined) => x === null || x === undefined || Number.isNaN(x) ? "-" : String(x)
const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || b === null || a === undefined || b === undefined || !(b > 0) || !Number.isFinite(a / b) ? "-" : `${round(a / b, 2)}x`

export const largeTable = (runs: ReadonlyArray<LargeRun>): string => {
  const rows: Array<Array<string>> = [["workload", "figure", "flotilla", "upstream", "flotilla/upstream"]]
  for (const workload of ["dag", "loop"] as const) {
    const f = runs.find((r) => r.workload === workload && r.controller === "flotilla")
    const u = runs.find((r) => r.workload === workload && r.controller === "upstream")
    if (f === undefined && u === undefined) continue
    const row = (figure: string, get: (r: LargeRun) => number | null | undefined, withRatio = true) => {
      const a = f === undefined ? undefined : get(f)
      const b = u === undefined ? undefined : get(u)
      rows.push([workload, figure, fmt(a), fmt(b), withRatio ? ratio(a, b) : ""])
    }
    rows.push([workload, "pods", String(f?.pods ?? u?.pods), String(u?.pods ?? f?.pods), ""])
    rows.push([workload, "outcome", f?.outcome ?? "-", u?.outcome ?? "-", ""])
    row("seconds to complete", (r) => r.seconds)
    row("pods completed", (r) => r.podsCompleted, false)
    row("reconciles", (r) => r.reconciles?.count)
    row("reconcile mean ms", (r) => r.reconciles?.meanMs)
    row("reconcile p50 ms", (r) => r.reconciles?.p50Ms)
    row("reconcile p99 ms", (r) => r.reconciles?.p99Ms)
    row("reconcile total s", (r) => r.reconciles?.totalSeconds)
    row("status bytes", (r) => r.status?.statusBytes)
    row("nodes in status", (r) => r.status?.nodes, false)
    rows.push([workload, "nodes compressed / offloaded", f?.status ? `${f.status.compressed} / ${f.status.offloaded}` : "-", u?.status ? `${u.status.compressed} / ${u.status.offloaded}` : "-", ""])
    row("controller CPU s", (r) => r.cpuSeconds)
    row("peak RSS MiB", (r) => r.rssMiB)
    row("RSS at submission MiB", (r) => r.rssAtSubmitMiB)
    row("API requests", (r) => r.apiRequests)
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

const envInt = (name: string, fallback: number) => {
  const raw = process.env[name]
  const n = raw === undefined || raw === "" ? fallback : Number(raw)
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`${name} must be a positive integer, not ${raw}`)
  return n
}

const envList = <A extends string>(name: string, all: ReadonlyArray<A>): ReadonlyArray<A> => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return all
  const picked = raw.split(",").map((s) => s.trim()).filter((s) => s !== "")
  const bad = picked.filter((s) => !all.includes(s as A))
  if (bad.length > 0) throw new Error(`${name}: unknown ${bad.join(", ")} (one of ${all.join(", ")})`)
  return all.filter((a) => picked.includes(a))
}

export const large = Effect.gen(function*() {
  const sizes: Record<Workload, number> = { dag: envInt("BENCH_LARGE_DAG", 5000), loop: envInt("BENCH_LARGE_ITEMS", 10000) }
  const workloads = envList<Workload>("BENCH_LARGE_WORKLOADS", ["dag", "loop"])
  const controllers = envList<ControllerName>("BENCH_LARGE_CONTROLLERS", ["flotilla", "upstream"])
  const widest = Math.max(...workloads.map((w) => w === "dag" ? Math.max(...dagLayers(sizes.dag)) : sizes.loop))
  const kwokNodes = envInt("BENCH_LARGE_KWOK_NODES", Math.max(2, Math.ceil((widest + 20) / 100)))
  const timeoutOf = (pods: number) => Duration.seconds(envInt("BENCH_LARGE_TIMEOUT_SECONDS", Math.max(600, Math.ceil(pods * 0.25))))

  yield* run("bash", [path.join(repoRoot, "scripts/bench/build-upstream.sh")])
  const upstreamBinary = /^WORKFLOW_CONTROLLER=(.*)$/m.exec(yield* run("bash", [path.join(repoRoot, "scripts/bench/build-upstream.sh"), "--print-env"]))?.[1]
  if (upstreamBinary === undefined) return yield* Effect.fail(new Error("build-upstream.sh --print-env printed no WORKFLOW_CONTROLLER"))
  const flotilla = yield* compileFlotilla
  const { kubectl } = yield* benchCluster(kwokNodes)
  const upstreamCrds = path.join(os.homedir(), ".cache/flotilla/build/argo-workflows-v4.0.5/manifests/base/crds/minimal")

  const runs: Array<LargeRun> = []
  const series: Record<string, ReadonlyArray<number>> = {}
  const started = Date.now()
  for (const workload of workloads) {
    for (const controller of controllers) {
      // flotilla on the CRDs up.sh installed (k8s/crd), upstream on its own (the module's base CRDs)
      yield* run(kubectl, ["--kubeconfig", adminKubeconfig, "apply", "--server-side", "--force-conflicts", "-k", controller === "flotilla" ? path.join(repoRoot, "k8s/crd") : upstreamCrds])
      const out = yield* runOne({ controller, workload, size: sizes[workload], kubectl, upstreamBinary, flotilla, timeout: timeoutOf(sizes[workload]) }).pipe(
        Effect.catch((e) =>
          Effect.as(Effect.logError(`large: ${controller} ${workload}: ${e instanceof Error ? e.message : String(e)}`), {
            result: {
              controller,
              workload,
              pods: sizes[workload],
              outcome: "error",
              message: e instanceof Error ? e.message : String(e),
              seconds: null,
              podsCompleted: 0,
              reconciles: null,
              status: null,
              rssMiB: 0,
              rssAtSubmitMiB: 0,
              cpuSeconds: NaN,
              apiRequests: 0,
              apiRequestsByVerb: {},
              process: ""
            } satisfies LargeRun,
            series: [] as ReadonlyArray<number>
          })
        )
      )
      console.log(JSON.stringify(out.result))
      runs.push(out.result)
      series[`${workload}/${controller}`] = out.series
    }
  }
  const result = {
    runs,
    machine: { cores: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20), loadAverage: os.loadavg().map((l) => round(l, 2)) },
    workload: {
      dag: { tasks: sizes.dag, layers: dagLayers(sizes.dag), shape: "start -> layers (each task depends on 2 of the layer before) -> end" },
      loop: { items: sizes.loop, shape: "one steps template, one step withItems, no parallelism" },
      workloads,
      controllers,
      kwokNodes,
      workers,
      rateLimit: "none: flotilla without --qps, upstream --qps/--burst 100000",
      timeoutSeconds: Object.fromEntries(workloads.map((w) => [w, Duration.toSeconds(timeoutOf(sizes[w]))])),
      completer: "bench/podCompleter.ts, admin identity, concurrency 32, task result then pod Succeeded",
      flotilla: flotilla.form
    },
    series,
    wallSeconds: round((Date.now() - started) / 1000),
    finishedAt: new Date().toISOString()
  }
  fs.mkdirSync(resultsDir, { recursive: true })
  const json = path.join(resultsDir, "large.json")
  const svg = path.join(resultsDir, "large.svg")
  fs.writeFileSync(json, JSON.stringify(result, null, 2) + "\n")
  fs.writeFileSync(svg, largeSvg(
    `One large workflow per controller, no client rate limit (npm run bench -- --large)`,
    workloads.map((w) => ({
      title: w === "dag" ? `${sizes.dag}-task DAG` : `${sizes.loop}-item withItems loop`,
      series: controllers.map((c) => ({ label: c === "flotilla" ? "flotilla" : "upstream v4.0.5", completedAtSeconds: series[`${w}/${c}`] ?? [] }))
    }))
  ))
  console.log(largeTable(runs))
  console.log(`written ${[json, svg].map((f) => path.relative(repoRoot, f)).join(", ")}`)
  return result
}).pipe(Effect.scoped, Effect.provide(LiveKubeConnector.layer))

/** Interrupts the run (and so stops the controllers and the cluster) on SIGINT/SIGTERM. */
export const runLargeMain = (logs: Layer.Layer<never>): void => runBenchMain(large, logs)
