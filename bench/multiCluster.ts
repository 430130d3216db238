/**
 * `npm run bench -- --multi-cluster` (issue 14 item 3): flotilla's controller on
 * three real clusters (`main`, `cluster-1`, `cluster-2`: scripts/clusters/up.sh,
 * kwok nodes only, state in `BENCH_CLUSTERS_DIR`, ports from `BENCH_PORT_BASE`
 * as bench/compare.ts), N single-pod workflows spread evenly over the three.
 * Upstream's controller cannot run a template in another cluster: this pass is
 * flotilla's alone (its figures beside compare.json's single-cluster ones).
 *
 * Set-up, per rate-limit pass, is the e2e tests' own (test/e2e/support/
 * isolatedSetup.ts `applyIsolatedSetup`, on the bench clusters): on main the
 * system namespace (`workflow-controller-configmap` with `cluster: main`,
 * `argo-kubeconfig`), the workflow namespace with service account `workflow`
 * and its `workflow-kubeconfig` secret (the user's token in each remote
 * cluster), and in each remote cluster the managed namespace where the user may
 * create pods. One change: the controller's identity is the service account
 * `bench-flotilla/controller` in every cluster (cluster-admin on these
 * throwaway clusters), the identity scripts/clusters/audit-policy.yaml audits in
 * full, so `argo-kubeconfig` is rewritten with its tokens. The remote pods are
 * created with the user's credentials (`workflow-user`), as the design wants:
 * those creates are audited too (every pod write is) and counted beside the
 * controller's requests; the user's identity has no other right there.
 *
 * Workflow i runs its one pod in main (the workflow namespace) when i % 3 is 0,
 * else in cluster-1 or cluster-2 (`cluster:`/`namespace:` on the template); one
 * bench/podCompleter.ts per cluster (admin identity) completes them. Figures as
 * compare's: workflows per minute, p50/p99 pod done to node done, API requests
 * per workflow by verb and by cluster (each cluster's audit log), peak RSS
 * (VmHWM) of the controller, which runs compiled as in compare (`process`),
 * and its RSS once idle `BENCH_SETTLE_SECONDS` (default 30) after the run with
 * every workflow still tracked (VmRSS; what it keeps, not its burst's peak).
 *
 * Passes: `limited` (`--qps 20 --burst 30`, per cluster: one pair of token
 * buckets per connection) unless `--no-limited`, and, unless `--no-unlimited`,
 * `unlimited` (no `--qps`). Each pass starts a fresh controller with warm-up workflows (one per
 * cluster) and its own namespaces; between passes the workflow namespace is
 * deleted while the controller still runs (it releases what it holds).
 *
 *   npm run bench -- --multi-cluster             # N=1,000 (BENCH_CLUSTERS_WORKFLOWS)
 *   npm run bench -- --multi-cluster --smoke     # N=12, limited pass only
 *   BENCH_CLUSTERS_WORKFLOWS=5000 npm run bench -- --multi-cluster --no-limited   # RSS with 5,000 workflows tracked
 *
 * Writes bench/results/multi-cluster.json and bench/results/multi-cluster.svg
 * (both passes: throughput over time, latency histogram) and prints a table.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import { KubeConnector } from "../src/kube/api/KubeConnector.js"
import type { KubeObject } from "../src/kube/api/Resources.js"
import { LiveKubeConnector } from "../src/kube/live/LiveKubeConnector.js"
import {
  adminSpec,
  type AuditLine,
  benchCluster,
  benchResultsDir,
  benchStateDir,
  commandLineOf,
  compileFlotilla,
  type CompiledFlotilla,
  controllerUser,
  countRequests,
  flotillaEnv,
  flotillaNodeArgs,
  type Pass,
  percentile,
  rateLimitArgs,
  readAudit,
  round,
  type RunSeries,
  startProcess,
  tail,
  tracker,
  vmHwmMiB,
  vmRssMiB,
  workers,
  runBenchMain
} from "./compare.js"
import { compareSvg } from "./plot.js"
import { PodCompleter } from "./podCompleter.js"

export const clusters = ["main", "cluster-1", "cluster-2"] as const
export type BenchCluster = (typeof clusters)[number]
/** The controller's identity in every cluster (audited in full; compare.ts's flotilla identity). */
const systemNs = "bench-flotilla"
/** The workflow user's identity in the remote clusters (scripts/clusters/up.sh's static `workflow` token). */
export const workflowUser = "workflow-user"

/** The namespaces of one pass (the shape of isolatedSetup.ts's `IsolatedSetup`). */
export const setupOf = (pass: Pass) => ({
  prefix: `bench3-${pass}`,
  systemNamespace: systemNs,
  workflowNamespaces: [`bench3-${pass}-local`],
  userSecretIn: [`bench3-${pass}-local`],
  remoteNamespace: `bench3-${pass}-remote`
})

/** Where workflow i runs its pod: main, cluster-1, cluster-2, main, ... */
export const clusterOf = (i: number): BenchCluster => clusters[i % clusters.length]!

/** Workflow i of the workload: one pod on a kwok node of `clusterOf(i)`, run as service account `workflow`. */
export const multiClusterWorkflowOf = (name: string, i: number, namespace: string, remoteNamespace: string): KubeObject => {
  const c = clusterOf(i)
  return {
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Workflow",
    metadata: { name, namespace, labels: { "bench.flotilla.dev/run": namespace, "bench.flotilla.dev/cluster": c } },
    spec: {
      entrypoint: "main",
      serviceAccountName: "workflow",
      // kwok nodes only (tainted); no kwok outcome annotation: PodCompleter completes the pods
      nodeSelector: { type: "kwok" },
      tolerations: [{ key: "kwok.x-k8s.io/node", operator: "Exists", effect: "NoSchedule" }],
      templates: [{
        name: "main",
        ...(c === "main" ? {} : { cluster: c, namespace: remoteNamespace }),
        container: { image: "busybox", command: ["true"] }
      }]
    }
  }
}

export interface MultiClusterArgs {
  readonly smoke: boolean
  readonly limited: boolean
  readonly unlimited: boolean
}

export const parseMultiClusterArgs = (argv: ReadonlyArray<string>): MultiClusterArgs => {
  const unlimited = !argv.includes("--no-unlimited") && !argv.includes("--smoke")
  // --no-limited (e.g. for a large N, where the 20 QPS pass is long) keeps the unlimited pass only
  return { smoke: argv.includes("--smoke"), limited: !argv.includes("--no-limited") || !unlimited, unlimited }
}

export interface ClusterRequests {
  /** Workflows whose pod ran in this cluster. */
  readonly workflows: number
  /** The controller's requests here (its own identity, and the user's pod creates it made). */
  readonly requests: number
  /** `requests` over the workflows whose pod ran here. */
  readonly perWorkflowPlacedHere: number
  /** By verb, per workflow of the whole run (so the clusters' rows add up to the total). */
  readonly perWorkflowByVerb: Record<string, number>
  /** By `verb resource` and identity (`user:` prefix for the workflow user's), totals. */
  readonly byRequest: Record<string, number>
}

export interface MultiClusterFigures {
  readonly pass: Pass
  readonly rateLimit: string
  readonly workers: number
  readonly workflows: number
  readonly succeeded: number
  readonly seconds: number
  readonly workflowsPerMinute: number
  readonly p50NodeLatencyMs: number
  readonly p99NodeLatencyMs: number
  readonly maxNodeLatencyMs: number
  readonly rssMiB: number
  /**
   * Resident set once the run is over and the controller has been idle `settleSeconds` with every
   * workflow still tracked (its caches hold them all): what a controller keeps, not its burst's peak.
   */
  readonly settledRssMiB: number
  readonly settleSeconds: number
  readonly apiRequestsPerWorkflow: number
  readonly apiRequestsPerWorkflowByVerb: Record<string, number>
  readonly apiRequestsByCluster: Record<string, ClusterRequests>
  readonly apiRequestsTotalWithStartup: number
  readonly completer: { readonly requests: number; readonly failed: number }
  readonly process: string
}

/**
 * The audit counts of one cluster: the controller's identity (every request), plus the workflow
 * user's (audited: pod writes; it may do nothing else there).
 */
export const clusterRequests = (
  lines: ReadonlyArray<AuditLine>,
  from: number,
  to: number,
  workflowsHere: number,
  workflowsAll: number
): ClusterRequests => {
  const own = countRequests(lines, controllerUser("flotilla"), from, to)
  const user = countRequests(lines, workflowUser, from, to)
  const byVerb: Record<string, number> = {}
  for (const counts of [own.byVerb, user.byVerb]) {
    for (const [v, c] of Object.entries(counts)) byVerb[v] = (byVerb[v] ?? 0) + c
  }
  const requests = own.total + user.total
  return {
    workflows: workflowsHere,
    requests,
    perWorkflowPlacedHere: workflowsHere === 0 ? 0 : round(requests / workflowsHere, 2),
    perWorkflowByVerb: Object.fromEntries(Object.entries(byVerb).sort().map(([v, c]) => [v, round(c / workflowsAll, 2)])),
    byRequest: Object.fromEntries([
      ...Object.entries(own.byRequest),
      ...Object.entries(user.byRequest).map(([k, c]) => [`user: ${k}`, c] as const)
    ].sort())
  }
}

/** The test harness (test/e2e/support), pointed at the bench's clusters before its modules read their state dir. */
const harness = Effect.tryPromise({
  try: async () => {
    process.env["FLOTILLA_CLUSTERS_DIR"] = benchStateDir
    const [C, I] = await Promise.all([import("../test/e2e/support/clusters.js"), import("../test/e2e/support/isolatedSetup.js")])
    if (C.stateDir !== benchStateDir) throw new Error(`test/e2e/support reads ${C.stateDir}, not the bench's ${benchStateDir}`)
    return { C, I }
  },
  catch: (e) => new Error(`loading test/e2e/support: ${String(e)}`)
})

const promise = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`) })

/** `applyIsolatedSetup` of the pass, then the controller's audited identity in every cluster; its kubeconfig for main. */
const setUpPass = Effect.fnUntraced(function*(pass: Pass) {
  const { C, I } = yield* harness
  const setup = setupOf(pass)
  yield* promise("applyIsolatedSetup", () => I.applyIsolatedSetup(setup))
  const tokens: Record<string, string> = {}
  for (const c of clusters) {
    yield* promise(`controller identity in ${c}`, () =>
      C.kubectl(c, ["apply", "-f", "-"], {
        input: [
          `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"${systemNs}"}}`,
          `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"controller","namespace":"${systemNs}"}}`,
          `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"${systemNs}-controller"},` +
          `"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},` +
          `"subjects":[{"kind":"ServiceAccount","name":"controller","namespace":"${systemNs}"}]}`
        ].join("\n---\n")
      }))
    tokens[c] = (yield* promise(`token in ${c}`, () => C.kubectl(c, ["-n", systemNs, "create", "token", "controller", "--duration=4h"]))).trim()
  }
  const remotes = clusters.filter((c) => c !== "main")
  // argo-kubeconfig as applyIsolatedSetup writes it, with the audited identity's tokens
  const argoKubeconfig = C.kubeconfigDoc({
    clusters: remotes.map((c) => ({ name: c, server: C.server(c), caData: C.caData(c) })),
    users: remotes.map((c) => ({ name: `controller@${c}`, token: tokens[c]! })),
    contexts: remotes.map((c) => ({ name: c, cluster: c, user: `controller@${c}`, namespace: setup.remoteNamespace }))
  })
  yield* promise("argo-kubeconfig", () =>
    C.kubectlEnsure("main", [
      "-n",
      systemNs,
      "create",
      "secret",
      "generic",
      "argo-kubeconfig",
      `--from-file=value=${C.writePrivateFile(`bench3-argo-kubeconfig`, argoKubeconfig)}`
    ]))
  for (const ns of setup.workflowNamespaces) yield* promise(`namespace ${ns}`, () => C.ensureServiceAccount("main", ns, "workflow"))
  for (const c of remotes) yield* promise(`namespace ${setup.remoteNamespace} in ${c}`, () => C.ensureServiceAccount(c, setup.remoteNamespace, "workflow"))
  const kubeconfig = C.writePrivateFile(
    "bench3-controller.kubeconfig",
    C.kubeconfigDoc({
      clusters: [{ name: "main", server: C.server("main"), caData: C.caData("main") }],
      users: [{ name: "controller", token: tokens["main"]! }],
      contexts: [{ name: "main", cluster: "main", user: "controller", namespace: systemNs }],
      currentContext: "main"
    })
  )
  return { setup, kubeconfig, C }
})

const runPass = Effect.fnUntraced(function*(
  options: { pass: Pass; n: number; flotilla: CompiledFlotilla; timeout: Duration.Duration; last: boolean; settleSeconds: number }
) {
  const { pass, n } = options
  const { setup, kubeconfig, C } = yield* setUpPass(pass)
  const workloadNs = setup.workflowNamespaces[0]!
  const connector = yield* KubeConnector
  const admin = yield* connector.connect(adminSpec("main"))
  const name = `flotilla-3clusters-${pass}`
  const proc = yield* startProcess(name, options.flotilla.node, [
    ...flotillaNodeArgs(options.flotilla),
    "controller",
    "--kubeconfig",
    kubeconfig,
    "--namespace",
    systemNs,
    "--configmap=workflow-controller-configmap",
    `--workflow-workers=${workers}`,
    "--health-port=0",
    "--metrics-port=0",
    ...rateLimitArgs("flotilla", pass)
  ], { ...flotillaEnv, LEADER_ELECTION_DISABLE: "true", ARGO_NAMESPACE: systemNs, POD_NAMES: "v2" })
  const pid = proc.child.pid!
  const startedAt = Date.now()
  const cmdline = `${commandLineOf(pid)} (${options.flotilla.form})`
  let peak = 0
  const sample = () => {
    const v = vmHwmMiB(pid)
    if (v !== undefined) peak = Math.max(peak, v)
  }
  yield* Effect.sync(sample).pipe(Effect.repeat(Schedule.spaced("500 millis")), Effect.forkScoped)

  const track = yield* tracker(admin, workloadNs)
  const completers = yield* Effect.forEach(clusters, (c) =>
    Layer.build(PodCompleter.layerConnected(adminSpec(c), {
      namespaces: [c === "main" ? workloadNs : setup.remoteNamespace],
      concurrency: 16
    })).pipe(Effect.map((ctx) => Context.get(ctx, PodCompleter))))
  const failIfExited = Effect.suspend(() =>
    proc.exited()
      ? Effect.fail(new Error(`${name} exited early; ${proc.logFile}:\n${tail(proc.logFile)}`))
      : Effect.void
  ).pipe(Effect.repeat(Schedule.spaced("1 second")), Effect.andThen(Effect.never))
  const guarded = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string, timeout: Duration.Input) =>
    Effect.raceFirst(effect, failIfExited).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(new Error(`${name}: ${what} not done after ${Duration.format(Duration.fromInputUnsafe(timeout))}; ${proc.logFile}:\n${tail(proc.logFile)}`))
      })
    )
  const workflow = (wf: string, i: number) => multiClusterWorkflowOf(wf, i, workloadNs, setup.remoteNamespace)

  // Warm-up: one workflow per cluster through (caches synced, every remote connection open).
  const warmups = clusters.map((_, i) => `warmup-${i}`)
  yield* Effect.forEach(warmups, (wf, i) => admin.create("workflows", workloadNs, workflow(wf, i)), { discard: true })
  yield* guarded(track.awaitEnded(warmups), "warm-up workflows", "180 seconds")
  const completedBefore = yield* Effect.forEach(completers, (c) => Effect.map(c.stats, (s) => s.completed))

  yield* Effect.logWarning(`multi-cluster: ${name}: submitting ${n} workflows over ${clusters.join(", ")}`)
  const names = Array.from({ length: n }, (_, i) => `wf-${i}`)
  const t0 = Date.now()
  yield* Effect.forEach(names, (wf, i) => admin.create("workflows", workloadNs, workflow(wf, i)), { concurrency: 16, discard: true })
  yield* guarded(track.awaitEnded(names), `${n} workflows`, options.timeout)
  const tEnd = Math.max(...names.map((wf) => track.workflowEnded.get(wf)!.at))
  // settle: the writes that follow the last completion (labels, pod clean-up) belong to the run
  yield* Effect.sleep("3 seconds")
  sample()
  const stats = yield* Effect.forEach(completers, (c) => c.stats)
  const runEnd = Date.now()

  const latencies: Array<number> = []
  for (const [i, c] of completers.entries()) {
    for (const done of (yield* c.completions).slice(completedBefore[i]!)) {
      const at = track.nodeDone.get(done.nodeId)
      if (at !== undefined) latencies.push(Math.max(0, at - done.completedAt))
    }
  }
  latencies.sort((a, b) => a - b)
  // requests land in the audit log as they end: give it a moment
  yield* Effect.sleep("1 second")
  const byCluster: Record<string, ClusterRequests> = {}
  let withStartup = 0
  for (const c of clusters) {
    const audit = readAudit(c)
    const here = names.filter((_, i) => clusterOf(i) === c).length
    byCluster[c] = clusterRequests(audit, t0, runEnd, here, n)
    withStartup += countRequests(audit, controllerUser("flotilla"), startedAt - 1000, runEnd).total +
      countRequests(audit, workflowUser, startedAt - 1000, runEnd).total
  }
  const total = Object.values(byCluster).reduce((a, r) => a + r.requests, 0)
  const byVerb: Record<string, number> = {}
  for (const r of Object.values(byCluster)) {
    for (const [v, x] of Object.entries(r.perWorkflowByVerb)) byVerb[v] = round((byVerb[v] ?? 0) + x, 2)
  }
  // idle with every workflow tracked: V8's memory reducer runs when the controller is idle
  yield* Effect.sleep(Duration.seconds(options.settleSeconds))
  const settled = vmRssMiB(pid) ?? NaN
  const seconds = (tEnd - t0) / 1000
  const figures: MultiClusterFigures = {
    pass,
    rateLimit: pass === "limited" ? "qps 20 / burst 30 (per cluster)" : "unlimited (no --qps)",
    workers,
    workflows: n,
    succeeded: names.filter((wf) => track.workflowEnded.get(wf)!.phase === "Succeeded").length,
    seconds: round(seconds, 2),
    workflowsPerMinute: round(n / seconds * 60),
    p50NodeLatencyMs: round(percentile(latencies, 50), 0),
    p99NodeLatencyMs: round(percentile(latencies, 99), 0),
    maxNodeLatencyMs: round(latencies[latencies.length - 1] ?? NaN, 0),
    rssMiB: round(peak),
    settledRssMiB: round(settled),
    settleSeconds: options.settleSeconds,
    apiRequestsPerWorkflow: round(total / n, 2),
    apiRequestsPerWorkflowByVerb: Object.fromEntries(Object.entries(byVerb).sort()),
    apiRequestsByCluster: byCluster,
    apiRequestsTotalWithStartup: withStartup,
    completer: { requests: stats.reduce((a, s) => a + s.totalRequests, 0), failed: stats.reduce((a, s) => a + s.failed, 0) },
    process: cmdline
  }
  if (latencies.length < n) yield* Effect.logWarning(`multi-cluster: ${name}: latency of ${latencies.length} of ${n} pods only`)
  const series: RunSeries = {
    completedAtSeconds: names.map((wf) => round((track.workflowEnded.get(wf)!.at - t0) / 1000, 3)).sort((a, b) => a - b),
    latenciesMs: latencies
  }
  if (!options.last) {
    // The next pass's controller must not find this one's workflows: deleted while this
    // controller still runs (it releases what it holds), remote namespaces too.
    yield* Effect.logWarning(`multi-cluster: ${name}: deleting this pass's namespaces`)
    yield* promise("namespace clean-up", () => C.kubectl("main", ["delete", "namespace", workloadNs, "--wait", "--timeout=300s"])).pipe(
      Effect.andThen(Effect.forEach(clusters.filter((c) => c !== "main"), (c) =>
        promise(`clean-up in ${c}`, () => C.kubectl(c, ["delete", "namespace", setup.remoteNamespace, "--wait", "--timeout=300s"])))),
      Effect.catch((e) => Effect.logWarning(`multi-cluster: ${e.message}`))
    )
  }
  return { figures, series }
}, Effect.scoped)

export const multiClusterTable = (passes: ReadonlyArray<MultiClusterFigures>): string => {
  const rows: Array<Array<string>> = [["figure", ...passes.map((p) => p.pass)]]
  const row = (figure: string, f: (p: MultiClusterFigures) => string | number) => rows.push([figure, ...passes.map((p) => String(f(p)))])
  row("rate limit", (p) => p.rateLimit)
  row("workflows succeeded", (p) => `${p.succeeded}/${p.workflows}`)
  row("workflows per minute", (p) => p.workflowsPerMinute)
  row("p50 pod-done to node-done ms", (p) => p.p50NodeLatencyMs)
  row("p99 pod-done to node-done ms", (p) => p.p99NodeLatencyMs)
  row("peak RSS MiB", (p) => p.rssMiB)
  row("RSS MiB idle after the run (all tracked)", (p) => `${p.settledRssMiB} (after ${p.settleSeconds} s)`)
  row("API requests per workflow", (p) => p.apiRequestsPerWorkflow)
  const verbs = [...new Set(passes.flatMap((p) => Object.keys(p.apiRequestsPerWorkflowByVerb)))].sort()
  for (const v of verbs) row(`  ${v} per workflow`, (p) => p.apiRequestsPerWorkflowByVerb[v] ?? 0)
  for (const c of clusters) {
    row(`  ${c}: requests per workflow placed there`, (p) => p.apiRequestsByCluster[c]?.perWorkflowPlacedHere ?? "-")
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

export const multiCluster = (args: MultiClusterArgs) =>
  Effect.gen(function*() {
    const wallStart = Date.now()
    const n = args.smoke ? 12 : Number(process.env["BENCH_CLUSTERS_WORKFLOWS"] ?? 1000)
    const settleSeconds = args.smoke ? 0 : Number(process.env["BENCH_SETTLE_SECONDS"] ?? 30)
    if (!(Number.isFinite(settleSeconds) && settleSeconds >= 0)) return yield* Effect.fail(new Error(`BENCH_SETTLE_SECONDS must be a number of seconds`))
    if (!(Number.isInteger(n) && n > 0)) return yield* Effect.fail(new Error(`BENCH_CLUSTERS_WORKFLOWS must be a positive integer`))
    // a cluster's pods stay until their workflow goes: room for its share (and the warm-up) on 110-pod nodes
    const kwokNodes = Math.max(2, Math.ceil((Math.ceil(n / clusters.length) + 10) / 100))
    const timeout = Duration.minutes(args.smoke ? 5 : Math.max(10, Math.ceil(n / 20)))
    const flotilla = yield* compileFlotilla
    yield* benchCluster(kwokNodes, clusters)
    const passes: ReadonlyArray<Pass> = [...(args.limited ? ["limited" as const] : []), ...(args.unlimited ? ["unlimited" as const] : [])]
    const results: Array<{ figures: MultiClusterFigures; series: RunSeries }> = []
    for (const [i, pass] of passes.entries()) {
      const r = yield* runPass({ pass, n, flotilla, timeout, last: i === passes.length - 1, settleSeconds })
      console.log(JSON.stringify(r.figures))
      results.push(r)
    }
    const result = {
      passes: Object.fromEntries(results.map((r) => [r.figures.pass, r.figures])),
      machine: { cores: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20), loadAverage: os.loadavg().map((l) => round(l, 2)) },
      workload: {
        workflows: n,
        shape: "one container template, one pod per workflow; workflow i's pod in main (i % 3 = 0), cluster-1 (1) or cluster-2 (2)",
        clusters,
        submitConcurrency: 16,
        kwokNodesPerCluster: kwokNodes,
        workers,
        smoke: args.smoke,
        cluster: "three kube-apiservers with kwok nodes (scripts/clusters/up.sh, BENCH_CLUSTERS_DIR)",
        setup: "test/e2e/support/isolatedSetup.ts applyIsolatedSetup; controller identity bench-flotilla/controller in every cluster",
        completer: "bench/podCompleter.ts, one per cluster, admin identity, task result then pod Succeeded",
        notes: "limited: --qps 20 --burst 30 (each cluster's connection its own buckets); unlimited: no --qps; " +
          "apiRequests count, per cluster, the controller's identity and the workflow user's pod creates, from the first submission to 3 s after the last workflow ended"
      },
      series: Object.fromEntries(results.map((r) => [r.figures.pass, r.series])),
      wallSeconds: round((Date.now() - wallStart) / 1000, 1),
      finishedAt: new Date().toISOString()
    }
    fs.mkdirSync(benchResultsDir, { recursive: true })
    const json = path.join(benchResultsDir, "multi-cluster.json")
    const svg = path.join(benchResultsDir, "multi-cluster.svg")
    fs.writeFileSync(json, JSON.stringify(result, null, 2) + "\n")
    fs.writeFileSync(svg, compareSvg(
      `flotilla, ${n} single-pod workflows over 3 clusters (npm run bench -- --multi-cluster)`,
      results.map((r) => ({ label: r.figures.pass === "limited" ? "qps 20 / burst 30" : "no rate limit", ...r.series }))
    ))
    console.log(multiClusterTable(results.map((r) => r.figures)))
    console.log(`written ${[json, svg].map((f) => path.relative(process.cwd(), f)).join(", ")}`)
    return { result, wallStart }
  }).pipe(
    Effect.scoped,
    Effect.tap(({ wallStart }) =>
      Effect.sync(() => console.log(`multi-cluster${args.smoke ? " --smoke" : ""}: wall time ${round((Date.now() - wallStart) / 1000, 1)} s (cluster start and stop included)`))
    ),
    Effect.map(({ result }) => result),
    Effect.provide(LiveKubeConnector.layer)
  )

/** Interrupts the run (and so stops the controller and the clusters) on SIGINT/SIGTERM. */
export const runMultiClusterMain = (argv: ReadonlyArray<string>, logs: Layer.Layer<never>): void =>
  runBenchMain(multiCluster(parseMultiClusterArgs(argv)), logs)
