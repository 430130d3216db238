/**
 * `npm run bench -- --compare` (issue 14 item 4): flotilla's controller and
 * upstream Argo's workflow-controller (v4.0.5, scripts/bench/build-upstream.sh),
 * side by side on one real cluster, one after the other, same workload.
 *
 * The bench starts its own cluster (scripts/clusters/up.sh: `main` only, kwok
 * nodes only, state in `<repo>/.bench-clusters`, ports from 27400; two runs on
 * one machine set `BENCH_CLUSTERS_DIR` and `BENCH_PORT_BASE` apart), so it never
 * touches the test clusters in `<repo>/.clusters`, and stops it at the end with
 * down.sh (also on failure or Ctrl-C). `BENCH_FLOTILLA_NODE_ARGS` adds node flags
 * to flotilla's process (`--cpu-prof --cpu-prof-dir=...`: the profile is written
 * when the bench stops it).
 *
 * flotilla runs in its shipped form: compiled JS run by plain Node 24 with
 * the image's node flags (scripts/images/node-flags) and `NODE_ENV=production`,
 * no tsx loader in the process, as the image runs `node <flags>
 * /app/dist/cli/main.js` (Dockerfile, scripts/images/controller-rootfs.sh). The bench compiles src
 * with tsc once per run (`compileFlotilla`: bench/results/flotilla-dist, about
 * 10 s) and runs dist/cli/main.js with the project's Node
 * (node_modules/node/bin/node); `process` in the JSON says so.
 *
 * Each controller runs as a process with its own service account
 * (`system:serviceaccount:bench-<controller>:controller`, cluster-admin on this
 * throwaway cluster), the identity scripts/clusters/audit-policy.yaml audits in
 * full, so its API requests are counted from the audit log. The harness (the
 * workflow submitter, the Workflow watch and `PodCompleter`) uses the admin
 * identity: none of its requests are charged to either controller.
 *
 * Per controller and rate-limit pass, in a fresh workload namespace:
 *   1. the controller starts, the pod completer watches the namespace, one
 *      warm-up workflow runs to completion (the controller is then ready);
 *   2. N single-pod workflows are submitted (16 at a time) and watched until
 *      each has ended;
 *   3. figures: workflows per minute (first submission to the last workflow
 *      seen Succeeded), p50/p99 of pod done (the completer's Succeeded write)
 *      to its node seen Succeeded in the Workflow status, API requests per
 *      workflow by verb (audit log, submission start to the end of the run plus
 *      a short settle), peak RSS (VmHWM of the controller's own process: the
 *      node process running the compiled controller, no npx/tsx wrapper).
 *
 * Rate limits: both controllers take `--qps/--burst` and spend them alike:
 * client-go token buckets, one for the Kubernetes API and one for argoproj.io
 * (upstream's two clientsets; flotilla's src/kube/live/rateLimit.ts). Passes: `limited`
 * (both `--qps 20 --burst 30`, upstream's defaults) and, unless
 * `--no-unlimited`, `unlimited` (flotilla without `--qps`, its default: no
 * limit; upstream `--qps 100000 --burst 100000`, as good as none).
 *
 *   npm run bench -- --compare                 # N=200 (BENCH_COMPARE_WORKFLOWS)
 *   npm run bench -- --compare --smoke         # N=10, limited pass only; prints its wall time
 *
 *   npm run bench -- --multi-cluster           # flotilla alone on three clusters of its own (issue 14
 *                                              # item 3; bench/multiCluster.ts, on this file's helpers):
 *                                              # N=1,000 (BENCH_CLUSTERS_WORKFLOWS), --smoke N=12,
 *                                              # --no-unlimited; multi-cluster.json and .svg
 *
 * Builds upstream's controller first when it is not built yet
 * (scripts/bench/build-upstream.sh, cached under ~/.cache/flotilla). Writes
 * bench/results/compare.json, one SVG per pass (bench/results/compare-<pass>.svg:
 * throughput over time and the latency histogram, bench/plot.ts) and prints a table.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Context, Deferred, Duration, Effect, Fiber, Layer, Redacted, Schedule, Stream } from "effect"
import { parse } from "yaml"
import type { ConnectionSpec } from "../src/kube/api/Connection.js"
import type { KubeClientShape } from "../src/kube/api/KubeClient.js"
import { KubeConnector } from "../src/kube/api/KubeConnector.js"
import type { KubeObject } from "../src/kube/api/Resources.js"
import { watchResource } from "../src/kube/cache/Watch.js"
import { LiveKubeConnector } from "../src/kube/live/LiveKubeConnector.js"
import { imageNodeFlags } from "./imageNodeFlags.js"
import { compareSvg, type PlotSeries } from "./plot.js"
import { PodCompleter } from "./podCompleter.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
/** `BENCH_CLUSTERS_DIR` / `BENCH_PORT_BASE` let two runs on one machine keep apart (defaults `.bench-clusters`, 27400). */
export const stateDir = process.env["BENCH_CLUSTERS_DIR"] ?? path.join(repoRoot, ".bench-clusters")
export const portBase = process.env["BENCH_PORT_BASE"] ?? "27400"
const cluster = "main"
const resultsDir = path.join(repoRoot, "bench", "results")
/** Where the bench's clusters keep their state (`BENCH_CLUSTERS_DIR`), and where results go. */
export const benchStateDir = stateDir
export const benchResultsDir = resultsDir

/** The environment of scripts/clusters/{up,down}.sh for the bench's own cluster(s) (`main` alone unless told). */
export const clusterEnv = (kwokNodes: number, clusters: ReadonlyArray<string> = [cluster]): Record<string, string> => ({
  FLOTILLA_CLUSTERS: clusters.join(" "),
  FLOTILLA_REAL_NODES: "",
  FLOTILLA_CLUSTERS_DIR: stateDir,
  FLOTILLA_CLUSTERS_PORT_BASE: portBase,
  FLOTILLA_KWOK_NODES: String(kwokNodes)
})

export type ControllerName = "flotilla" | "upstream"
export type Pass = "limited" | "unlimited"
export const workers = 32
/**
 * Upstream's metrics port in the bench's range, `BENCH_PORT_BASE` + 90 (27490 by default;
 * two benches on one machine keep apart); its health port 6060 is fixed.
 */
export const upstreamMetricsPort = Number(portBase) + 90

/** The service account a controller runs as (audited in full by scripts/clusters/audit-policy.yaml). */
export const controllerUser = (c: ControllerName) => `system:serviceaccount:bench-${c}:controller`

// --------------------------------------------------------------------------- figures

export const percentile = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length) - 1
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!
}

/** One audit event, as much of it as the count needs. */
export interface AuditLine {
  readonly auditID: string
  readonly verb: string
  readonly user: { readonly username: string }
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string }
  readonly requestReceivedTimestamp?: string
}

/**
 * A user's requests received in [from, to] by verb and by `verb resource[/subresource]`,
 * each request once (a watch has a ResponseStarted and a ResponseComplete event).
 */
export const countRequests = (lines: Iterable<AuditLine>, user: string, from: number, to: number) => {
  const seen = new Set<string>()
  const byVerb: Record<string, number> = {}
  const byRequest: Record<string, number> = {}
  for (const e of lines) {
    if (e.user?.username !== user || seen.has(e.auditID)) continue
    const at = e.requestReceivedTimestamp === undefined ? NaN : Date.parse(e.requestReceivedTimestamp)
    if (!(at >= from && at <= to)) continue
    seen.add(e.auditID)
    const resource = e.objectRef?.resource === undefined
      ? "(non-resource)"
      : e.objectRef.subresource ? `${e.objectRef.resource}/${e.objectRef.subresource}` : e.objectRef.resource
    byVerb[e.verb] = (byVerb[e.verb] ?? 0) + 1
    const key = `${e.verb} ${resource}`
    byRequest[key] = (byRequest[key] ?? 0) + 1
  }
  return { total: seen.size, byVerb, byRequest }
}

/** Every audit event of a bench cluster (default `main`). */
export const readAudit = (of: string = cluster): Array<AuditLine> => {
  const dir = path.join(stateDir, of, "logs")
  // audit.log and its one rotated backup (audit-<time>.log)
  const files = fs.readdirSync(dir).filter((f) => f.startsWith("audit") && f.endsWith(".log"))
  const out: Array<AuditLine> = []
  for (const f of files) {
    for (const line of fs.readFileSync(path.join(dir, f), "utf8").split("\n")) {
      if (line.trim() === "") continue
      try {
        out.push(JSON.parse(line) as AuditLine)
      } catch {
        // a line cut by rotation
      }
    }
  }
  return out
}

/** A `Vm*` figure of /proc/<pid>/status, MiB; undefined once the process is gone. */
const procStatusMiB = (pid: number, field: "VmHWM" | "VmRSS"): number | undefined => {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** Peak resident set (VmHWM) of a process, MiB; undefined once it is gone. */
export const vmHwmMiB = (pid: number): number | undefined => procStatusMiB(pid, "VmHWM")

/** Resident set now (VmRSS) of a process, MiB; undefined once it is gone. */
export const vmRssMiB = (pid: number): number | undefined => procStatusMiB(pid, "VmRSS")

// --------------------------------------------------------------------------- processes

export const run = (command: string, args: ReadonlyArray<string>, options: { env?: Record<string, string>; input?: string } = {}) =>
  Effect.callback<string, Error>((resume) => {
    const child = execFile(command, args, {
      cwd: repoRoot,
      env: { ...process.env, ...options.env },
      maxBuffer: 64 * 2 ** 20
    }, (error, stdout, stderr) => {
      if (error) resume(Effect.fail(new Error(`${path.basename(command)} ${args.join(" ")}: ${error.message}\n${stderr}`)))
      else resume(Effect.succeed(stdout))
    })
    if (options.input !== undefined) child.stdin?.end(options.input)
    return Effect.sync(() => {
      child.kill("SIGTERM")
    })
  })

/** A script whose output goes to our stderr (cluster start and stop are slow: show progress). */
export const runScript = (script: string, env: Record<string, string>) =>
  Effect.callback<void, Error>((resume) => {
    const child = spawn("bash", [path.join(repoRoot, script)], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", 2, 2] })
    child.on("exit", (code) => resume(code === 0 ? Effect.void : Effect.fail(new Error(`${script} exited ${code}`))))
  })

export interface Proc {
  readonly child: ChildProcess
  readonly logFile: string
  readonly exited: () => boolean
}

/** A controller process, stopped (SIGTERM, SIGKILL after 10 s) when the scope closes. */
export const startProcess = (name: string, command: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync((): Proc => {
      const logFile = path.join(stateDir, "bench", `${name}.log`)
      fs.mkdirSync(path.dirname(logFile), { recursive: true })
      const fd = fs.openSync(logFile, "w")
      const child = spawn(command, args, { cwd: repoRoot, stdio: ["ignore", fd, fd], env: { ...process.env, NO_COLOR: "1", ...env } })
      fs.closeSync(fd)
      // down.sh stops it too if the bench dies
      if (child.pid !== undefined) fs.writeFileSync(path.join(stateDir, "run", `bench-${name}.pid`), `${child.pid}\n`)
      let done = false
      child.on("exit", () => {
        done = true
      })
      return { child, logFile, exited: () => done }
    }),
    (p) =>
      Effect.callback<void>((resume) => {
        fs.rmSync(path.join(stateDir, "run", `bench-${name}.pid`), { force: true })
        if (p.exited()) return resume(Effect.void)
        const t = setTimeout(() => p.child.kill("SIGKILL"), 10_000)
        p.child.on("exit", () => {
          clearTimeout(t)
          resume(Effect.void)
        })
        p.child.kill("SIGTERM")
      })
  )

export const tail = (file: string) => {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-20).join("\n")
  } catch {
    return ""
  }
}

// --------------------------------------------------------------------------- flotilla, compiled

/** The controller in its shipped form: a compiled entry point and the Node that runs it. */
export interface CompiledFlotilla {
  readonly node: string
  readonly entry: string
  /** How it was built and run, for the JSON's `process`. */
  readonly form: string
}

/** The project's Node 24 (the `node` devDependency), else the one running the bench. */
export const projectNode = (): string => {
  const p = path.join(repoRoot, "node_modules/node/bin/node")
  return fs.existsSync(p) ? p : process.execPath
}

/**
 * src compiled by tsc as scripts/images/controller-rootfs.sh compiles it for the image (the
 * repository's tsconfig, emitting, source maps, rootDir src), into bench/results/flotilla-dist
 * (packages resolved from the repository's node_modules, up from there), rebuilt on every run.
 * `--noCheck`: emit only (the type check is `npm run typecheck`'s job; about 10 s instead of a
 * minute on the 2-core machine, and a type error elsewhere in a work tree does not stop a bench).
 * tsc's output rather than a bundle: the image's module layout, whose RSS it reports (an esbuild
 * bundle of the same code measured about 30 MiB less at start).
 */
export const compileFlotilla = Effect.gen(function*() {
  const out = path.join(resultsDir, "flotilla-dist")
  // built beside (its tsconfig inside the repository, so `types: ["node"]` resolves), then
  // swapped in: a bench starting its controller meanwhile reads the old tree or the new one
  const scratch = path.join(resultsDir, `.build-${process.pid}`)
  const config = path.join(scratch, "tsconfig.build.json")
  yield* Effect.sync(() => {
    fs.rmSync(scratch, { recursive: true, force: true })
    fs.mkdirSync(scratch, { recursive: true })
    fs.writeFileSync(config, JSON.stringify({
      extends: path.join(repoRoot, "tsconfig.json"),
      compilerOptions: { noEmit: false, outDir: path.join(scratch, "dist"), rootDir: path.join(repoRoot, "src"), sourceMap: true },
      include: [path.join(repoRoot, "src")]
    }))
  })
  const node = projectNode()
  yield* run(node, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", config, "--noCheck"]).pipe(
    Effect.andThen(Effect.sync(() => {
      const old = path.join(resultsDir, `.old-${process.pid}`)
      if (fs.existsSync(out)) fs.renameSync(out, old)
      fs.renameSync(path.join(scratch, "dist"), out)
      fs.rmSync(old, { recursive: true, force: true })
    })),
    Effect.ensuring(Effect.sync(() => fs.rmSync(scratch, { recursive: true, force: true })))
  )
  const version = (yield* run(node, ["--version"])).trim()
  const compiled: CompiledFlotilla = {
    node,
    entry: path.join(out, "cli", "main.js"),
    form: `compiled as the image: tsc output of src (bench/results/flotilla-dist) run by Node ${version} ${imageNodeFlags().join(" ")} (scripts/images/node-flags), NODE_ENV=production, no tsx`
  }
  return compiled
})

/** The environment the image gives the controller (Dockerfile: `ENV NODE_ENV=production`). */
export const flotillaEnv: Record<string, string> = { NODE_ENV: "production" }

export { imageNodeFlags }

/**
 * The node flags and entry of flotilla's process: `BENCH_FLOTILLA_NODE_ARGS` first (e.g.
 * `--cpu-prof`), then the image's own flags.
 */
export const flotillaNodeArgs = (compiled: CompiledFlotilla): ReadonlyArray<string> => [
  ...(process.env["BENCH_FLOTILLA_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== ""),
  ...imageNodeFlags(),
  compiled.entry
]

/** The command line of a process (paths in the repository made relative), its first `words` words. */
export const commandLineOf = (pid: number, words = 6): string => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "")
      .map((a) => a.startsWith(repoRoot + "/") ? path.relative(repoRoot, a) : a).slice(0, words).join(" ")
  } catch {
    return "(gone)"
  }
}

// --------------------------------------------------------------------------- cluster

interface Kubeconfig {
  clusters: Array<{ cluster: { server: string; "certificate-authority-data": string } }>
  users: Array<{ name: string; user: { token: string } }>
}

/** The admin kubeconfig of a bench cluster (default `main`), written by up.sh. */
export const adminKubeconfigOf = (of: string) => path.join(stateDir, of, "kubeconfig", "admin.yaml")
export const adminKubeconfig = adminKubeconfigOf(cluster)

/** The harness's connection to a bench cluster (default `main`): its admin token. */
export const adminSpec = (of: string = cluster): ConnectionSpec => {
  const doc = parse(fs.readFileSync(adminKubeconfigOf(of), "utf8")) as Kubeconfig
  return {
    cluster: of,
    user: doc.users[0]!.name,
    endpoint: { server: doc.clusters[0]!.cluster.server, certificateAuthorityData: doc.clusters[0]!.cluster["certificate-authority-data"] },
    auth: { _tag: "Token", token: Redacted.make(doc.users[0]!.user.token) }
  }
}

/**
 * The bench cluster(s) (default `main` alone), up for the scope (down.sh with the same env when
 * it closes, whatever happened).
 */
export const benchCluster = (kwokNodes: number, clusters: ReadonlyArray<string> = [cluster]) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      yield* Effect.logWarning(`bench: starting the bench cluster(s) ${clusters.join(", ")} in ${stateDir} (ports ${portBase}+)`)
      yield* runScript("scripts/clusters/up.sh", clusterEnv(kwokNodes, clusters))
      const env = fs.readFileSync(path.join(stateDir, "clusters.env"), "utf8")
      const kubectl = /^KUBECTL=(.*)$/m.exec(env)?.[1]
      if (kubectl === undefined) return yield* Effect.fail(new Error(`no KUBECTL in ${stateDir}/clusters.env`))
      return { kubectl }
    }),
    () =>
      runScript("scripts/clusters/down.sh", clusterEnv(kwokNodes, clusters)).pipe(
        Effect.catch((e) => Effect.logError(`bench: down.sh failed: ${e.message}`))
      )
  )

// --------------------------------------------------------------------------- workload

export const workflowOf = (name: string, namespace: string): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace, labels: { "bench.flotilla.dev/run": namespace } },
  spec: {
    entrypoint: "main",
    // kwok nodes only (tainted); no kwok outcome annotation: PodCompleter completes the pods
    nodeSelector: { type: "kwok" },
    tolerations: [{ key: "kwok.x-k8s.io/node", operator: "Exists", effect: "NoSchedule" }],
    templates: [{ name: "main", container: { image: "busybox", command: ["true"] } }]
  }
})

interface Status {
  readonly phase?: string
  readonly nodes?: Record<string, { readonly phase?: string; readonly type?: string }>
}
export const statusOf = (wf: KubeObject) => (wf.status ?? {}) as Status
const ended = (phase: string | undefined) => phase === "Succeeded" || phase === "Failed" || phase === "Error"

/**
 * Watches the namespace's Workflows: when each was first seen ended, and when
 * each Pod node was first seen Succeeded (by node ID).
 */
export const tracker = Effect.fnUntraced(function*(admin: KubeClientShape, namespace: string) {
  const workflowEnded = new Map<string, { at: number; phase: string }>()
  const nodeDone = new Map<string, number>()
  let changed = yield* Deferred.make<void>()
  const see = (wf: KubeObject) => {
    const now = Date.now()
    const status = statusOf(wf)
    for (const [id, node] of Object.entries(status.nodes ?? {})) {
      if (node.type === "Pod" && node.phase === "Succeeded" && !nodeDone.has(id)) nodeDone.set(id, now)
    }
    const name = wf.metadata.name!
    if (ended(status.phase) && !workflowEnded.has(name)) {
      workflowEnded.set(name, { at: now, phase: status.phase! })
      Deferred.doneUnsafe(changed, Effect.void)
    }
  }
  yield* watchResource(admin, "workflows", namespace).pipe(
    Stream.runForEach((item) =>
      Effect.sync(() => {
        if (item._tag === "Synced") item.items.forEach(see)
        else if (item._tag === "Upsert") see(item.object)
      })
    ),
    Effect.forkScoped
  )
  /** Waits until every named workflow has ended. */
  const awaitEnded = (names: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      while (!names.every((n) => workflowEnded.has(n))) {
        const d = changed
        yield* Deferred.await(d)
        if (d === changed) changed = yield* Deferred.make<void>()
      }
    })
  return { workflowEnded, nodeDone, awaitEnded }
})

// --------------------------------------------------------------------------- one controller

export interface ControllerFigures {
  readonly controller: ControllerName
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
  readonly apiRequestsPerWorkflow: number
  readonly apiRequestsPerWorkflowByVerb: Record<string, number>
  /** The run's requests by `verb resource` (totals, not per workflow). */
  readonly apiRequests: Record<string, number>
  /** Requests from the controller's start to the end of its run, start-up and warm-up included. */
  readonly apiRequestsTotalWithStartup: number
  readonly completer: { readonly requests: number; readonly failed: number }
  /** The command line of the process whose peak RSS is reported (/proc/<pid>/cmdline). */
  readonly process: string
}

export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits

/** The rate limit flags of a controller in a pass: upstream's defaults for both when limited. */
export const rateLimitArgs = (controller: ControllerName, pass: Pass): ReadonlyArray<string> =>
  pass === "limited"
    ? ["--qps=20", "--burst=30"]
    // flotilla's default is no limit; upstream's client-go has one whatever is passed: make it moot
    : controller === "flotilla" ? [] : ["--qps=100000", "--burst=100000"]

/** What the plots need of one run. */
export interface RunSeries {
  /** Seconds from the first submission to each workflow seen ended. */
  readonly completedAtSeconds: ReadonlyArray<number>
  /** Pod done to node done of each pod, ms, sorted. */
  readonly latenciesMs: ReadonlyArray<number>
}

const runController = Effect.fnUntraced(function*(
  options: {
    controller: ControllerName
    pass: Pass
    n: number
    kubectl: string
    upstreamBinary: string
    flotilla: CompiledFlotilla
    timeout: Duration.Duration
  }
) {
  const { controller, pass, n, kubectl } = options
  const systemNs = `bench-${controller}`
  const workloadNs = `bench-wl-${controller}-${pass}`
  const k = (args: ReadonlyArray<string>, input?: string) =>
    run(kubectl, ["--kubeconfig", adminKubeconfig, ...args], input === undefined ? {} : { input })
  const admin = yield* (yield* KubeConnector).connect(adminSpec())

  // The controller's identity: a service account with cluster-admin (throwaway cluster).
  yield* k(["apply", "-f", "-"], [
    `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"${systemNs}"}}`,
    `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"${workloadNs}"}}`,
    `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"controller","namespace":"${systemNs}"}}`,
    `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"${systemNs}-controller"},` +
    `"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},` +
    `"subjects":[{"kind":"ServiceAccount","name":"controller","namespace":"${systemNs}"}]}`,
    // both controllers' defaults, except upstream's metrics port: its default, 9090, is taken by any
    // other controller on this machine (a panic at start); the bench's ports are 27400 and up.
    // A flow mapping: upstream pastes each key's value after "key: " into one YAML document.
    // (Its health port, 6060, cannot be moved: taken, upstream logs an error and serves on.)
    `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"workflow-controller-configmap","namespace":"${systemNs}"},"data":${
      JSON.stringify(controller === "upstream" ? { metricsConfig: `{port: ${upstreamMetricsPort}}` } : {})
    }}`
  ].join("\n---\n"))
  // pods need the workload namespace's default service account (kube-controller-manager makes it)
  yield* k(["-n", workloadNs, "get", "serviceaccount", "default"]).pipe(
    Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 120 })
  )
  const token = (yield* k(["-n", systemNs, "create", "token", "controller", "--duration=4h"])).trim()
  const adminDoc = parse(fs.readFileSync(adminKubeconfig, "utf8")) as Kubeconfig
  const kubeconfig = path.join(stateDir, "bench", `${controller}.kubeconfig`)
  fs.mkdirSync(path.dirname(kubeconfig), { recursive: true })
  fs.writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: adminDoc.clusters[0]!.cluster }],
    users: [{ name: "controller", user: { token } }],
    contexts: [{ name: cluster, context: { cluster, user: "controller", namespace: systemNs } }],
    "current-context": cluster
  }), { mode: 0o600 })

  const name = `${controller}-${pass}`
  const rateLimit = pass === "limited"
    ? "qps 20 / burst 30"
    : controller === "flotilla" ? "unlimited (no --qps)" : "unlimited (qps/burst 100000)"
  const proc = controller === "flotilla"
    // the compiled controller run by node itself: the pid is the controller's, no wrapper process
    ? yield* startProcess(name, options.flotilla.node, [
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
    : yield* startProcess(name, options.upstreamBinary, [
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      systemNs,
      "--namespaced",
      `--managed-namespace=${workloadNs}`,
      "--configmap=workflow-controller-configmap",
      `--workflow-workers=${workers}`,
      ...rateLimitArgs("upstream", pass),
      "--loglevel=warn"
    ], { LEADER_ELECTION_DISABLE: "true" })
  const pid = proc.child.pid!
  const startedAt = Date.now()
  const cmdline = yield* Effect.sync(() =>
    controller === "flotilla" ? `${commandLineOf(pid)} (${options.flotilla.form})` : commandLineOf(pid, 5)
  )
  let peak = 0
  const sample = () => {
    const v = vmHwmMiB(pid)
    if (v !== undefined) peak = Math.max(peak, v)
  }
  yield* Effect.sync(sample).pipe(Effect.repeat(Schedule.spaced("500 millis")), Effect.forkScoped)

  const track = yield* tracker(admin, workloadNs)
  const completer = yield* Layer.build(PodCompleter.layerConnected(adminSpec(), { namespaces: [workloadNs], concurrency: 16 })).pipe(
    Effect.map((ctx) => Context.get(ctx, PodCompleter))
  )
  const failIfExited = Effect.suspend(() =>
    proc.exited()
      ? Effect.fail(new Error(`${name} exited early; ${proc.logFile}:\n${tail(proc.logFile)}`))
      : Effect.void
  ).pipe(Effect.repeat(Schedule.spaced("1 second")), Effect.andThen(Effect.never))
  const guarded = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string, timeout: Duration.Input) =>
    Effect.raceFirst(effect, failIfExited).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new Error(`${name}: ${what} not done after ${Duration.format(Duration.fromInputUnsafe(timeout))}; ${proc.logFile}:\n${tail(proc.logFile)}`))
      })
    )

  // Warm-up: once one workflow has gone through, the controller is up and its caches synced.
  yield* admin.create("workflows", workloadNs, workflowOf("warmup", workloadNs))
  yield* guarded(track.awaitEnded(["warmup"]), "warm-up workflow", "180 seconds")
  const completedBefore = (yield* completer.stats).completed

  yield* Effect.logWarning(`compare: ${name}: submitting ${n} workflows`)
  const names = Array.from({ length: n }, (_, i) => `wf-${i}`)
  const t0 = Date.now()
  yield* Effect.forEach(names, (wf) => admin.create("workflows", workloadNs, workflowOf(wf, workloadNs)), { concurrency: 16, discard: true })
  yield* guarded(track.awaitEnded(names), `${n} workflows`, options.timeout)
  const tEnd = Math.max(...names.map((wf) => track.workflowEnded.get(wf)!.at))
  // settle: the writes that follow the last completion (labels, pod clean-up) belong to the run
  yield* Effect.sleep("3 seconds")
  sample()
  const stats = yield* completer.stats
  const runEnd = Date.now()

  const latencies = (yield* completer.completions).slice(completedBefore)
    .flatMap((c) => {
      const done = track.nodeDone.get(c.nodeId)
      return done === undefined ? [] : [Math.max(0, done - c.completedAt)]
    })
    .sort((a, b) => a - b)
  // requests land in the audit log as they end: give it a moment
  yield* Effect.sleep("1 second")
  const audit = readAudit()
  const inRun = countRequests(audit, controllerUser(controller), t0, runEnd)
  const withStartup = countRequests(audit, controllerUser(controller), startedAt - 1000, runEnd)
  const succeeded = names.filter((wf) => track.workflowEnded.get(wf)!.phase === "Succeeded").length
  const seconds = (tEnd - t0) / 1000
  const figures: ControllerFigures = {
    controller,
    pass,
    rateLimit,
    workers,
    workflows: n,
    succeeded,
    seconds: round(seconds, 2),
    workflowsPerMinute: round(n / seconds * 60),
    p50NodeLatencyMs: round(percentile(latencies, 50), 0),
    p99NodeLatencyMs: round(percentile(latencies, 99), 0),
    maxNodeLatencyMs: round(latencies[latencies.length - 1] ?? NaN, 0),
    rssMiB: round(peak),
    apiRequestsPerWorkflow: round(inRun.total / n, 2),
    apiRequestsPerWorkflowByVerb: Object.fromEntries(Object.entries(inRun.byVerb).sort().map(([v, c]) => [v, round(c / n, 2)])),
    apiRequests: Object.fromEntries(Object.entries(inRun.byRequest).sort()),
    apiRequestsTotalWithStartup: withStartup.total,
    completer: { requests: stats.totalRequests, failed: stats.failed },
    process: cmdline
  }
  if (latencies.length < n) yield* Effect.logWarning(`compare: ${name}: latency of ${latencies.length} of ${n} pods only`)
  const series: RunSeries = {
    completedAtSeconds: names.map((wf) => round((track.workflowEnded.get(wf)!.at - t0) / 1000, 3)).sort((a, b) => a - b),
    latenciesMs: latencies
  }
  return { figures, series }
}, (effect, options) =>
  // the controller stops with the scope; then its workload namespace goes (both controllers see a clean cluster)
  Effect.scoped(effect).pipe(
    Effect.ensuring(
      run(options.kubectl, ["--kubeconfig", adminKubeconfig, "delete", "namespace", `bench-wl-${options.controller}-${options.pass}`, "--wait", "--timeout=120s"]).pipe(
        Effect.catch((e) => Effect.logWarning(`compare: namespace clean-up: ${e.message}`))
      )
    )
  ))

// --------------------------------------------------------------------------- table and entry

const ratio = (a: number, b: number) => (b === 0 || !Number.isFinite(a / b) ? "-" : `${round(a / b, 2)}x`)

export const table = (pairs: ReadonlyArray<{ pass: Pass; flotilla: ControllerFigures; upstream: ControllerFigures }>): string => {
  const rows: Array<Array<string>> = [["pass", "figure", "flotilla", "upstream", "flotilla/upstream"]]
  for (const { pass, flotilla: f, upstream: u } of pairs) {
    const row = (figure: string, a: number, b: number) => rows.push([pass, figure, String(a), String(b), ratio(a, b)])
    rows.push([pass, "rate limit", f.rateLimit, u.rateLimit, ""])
    row("workflows succeeded", f.succeeded, u.succeeded)
    row("workflows per minute", f.workflowsPerMinute, u.workflowsPerMinute)
    row("p50 pod-done to node-done ms", f.p50NodeLatencyMs, u.p50NodeLatencyMs)
    row("p99 pod-done to node-done ms", f.p99NodeLatencyMs, u.p99NodeLatencyMs)
    row("peak RSS MiB", f.rssMiB, u.rssMiB)
    row("API requests per workflow", f.apiRequestsPerWorkflow, u.apiRequestsPerWorkflow)
    for (const verb of [...new Set([...Object.keys(f.apiRequestsPerWorkflowByVerb), ...Object.keys(u.apiRequestsPerWorkflowByVerb)])].sort()) {
      row(`  ${verb} per workflow`, f.apiRequestsPerWorkflowByVerb[verb] ?? 0, u.apiRequestsPerWorkflowByVerb[verb] ?? 0)
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

/** The SVG of one pass: both controllers' throughput over time and latency histogram. */
export const plotOf = (p: { pass: Pass; flotilla: RunSeries; upstream: RunSeries }, n: number): string => {
  const limit = p.pass === "limited" ? "both --qps 20 --burst 30" : "no client rate limit"
  const lines: Array<PlotSeries> = [
    { label: "flotilla", ...p.flotilla },
    { label: "upstream v4.0.5", ...p.upstream }
  ]
  return compareSvg(`${n} single-pod workflows, ${limit} (npm run bench -- --compare)`, lines)
}

export interface CompareArgs {
  readonly smoke: boolean
  readonly unlimited: boolean
}

export const parseArgs = (argv: ReadonlyArray<string>): CompareArgs => ({
  smoke: argv.includes("--smoke"),
  unlimited: !argv.includes("--no-unlimited") && !argv.includes("--smoke")
})

export const compare = (args: CompareArgs) =>
  Effect.gen(function*() {
    const wallStart = Date.now()
    const n = args.smoke ? 10 : Number(process.env["BENCH_COMPARE_WORKFLOWS"] ?? 200)
    if (!(Number.isInteger(n) && n > 0)) return yield* Effect.fail(new Error(`BENCH_COMPARE_WORKFLOWS must be a positive integer`))
    const kwokNodes = Math.max(2, Math.ceil((n + 20) / 100))
    const timeout = Duration.minutes(args.smoke ? 5 : Math.max(10, Math.ceil(n / 20)))
    yield* run("bash", [path.join(repoRoot, "scripts/bench/build-upstream.sh")])
    const upstreamBinary = /^WORKFLOW_CONTROLLER=(.*)$/m.exec(yield* run("bash", [path.join(repoRoot, "scripts/bench/build-upstream.sh"), "--print-env"]))?.[1]
    if (upstreamBinary === undefined) return yield* Effect.fail(new Error("build-upstream.sh --print-env printed no WORKFLOW_CONTROLLER"))
    const flotilla = yield* compileFlotilla
    const { kubectl } = yield* benchCluster(kwokNodes)
    const passes: ReadonlyArray<Pass> = args.unlimited ? ["limited", "unlimited"] : ["limited"]
    const upstreamCrds = path.join(os.homedir(), ".cache/flotilla/build/argo-workflows-v4.0.5/manifests/base/crds/minimal")
    const pairs: Array<{ pass: Pass; flotilla: ControllerFigures; upstream: ControllerFigures }> = []
    const series: Array<{ pass: Pass; flotilla: RunSeries; upstream: RunSeries }> = []
    for (const pass of passes) {
      // flotilla on the CRDs up.sh installed (k8s/crd), upstream on its own (the module's base CRDs)
      yield* run(kubectl, ["--kubeconfig", adminKubeconfig, "apply", "--server-side", "--force-conflicts", "-k", path.join(repoRoot, "k8s/crd")])
      const f = yield* runController({ controller: "flotilla", pass, n, kubectl, upstreamBinary, flotilla, timeout })
      console.log(JSON.stringify(f.figures))
      yield* run(kubectl, ["--kubeconfig", adminKubeconfig, "apply", "--server-side", "--force-conflicts", "-k", upstreamCrds])
      const upstream = yield* runController({ controller: "upstream", pass, n, kubectl, upstreamBinary, flotilla, timeout })
      console.log(JSON.stringify(upstream.figures))
      pairs.push({ pass, flotilla: f.figures, upstream: upstream.figures })
      series.push({ pass, flotilla: f.series, upstream: upstream.series })
    }
    const main = pairs[0]!
    const result = {
      flotilla: main.flotilla,
      upstream: main.upstream,
      ratio: {
        workflowsPerMinute: round(main.flotilla.workflowsPerMinute / main.upstream.workflowsPerMinute, 2),
        p99NodeLatencyMs: round(main.flotilla.p99NodeLatencyMs / main.upstream.p99NodeLatencyMs, 2),
        rssMiB: round(main.flotilla.rssMiB / main.upstream.rssMiB, 2),
        apiRequestsPerWorkflow: round(main.flotilla.apiRequestsPerWorkflow / main.upstream.apiRequestsPerWorkflow, 2)
      },
      passes: Object.fromEntries(pairs.map((p) => [p.pass, { flotilla: p.flotilla, upstream: p.upstream }])),
      machine: { cores: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20), loadAverage: os.loadavg().map((l) => round(l, 2)) },
      workload: {
        workflows: n,
        shape: "one container template, one pod per workflow",
        submitConcurrency: 16,
        kwokNodes,
        workers,
        smoke: args.smoke,
        cluster: "one kube-apiserver with kwok nodes (scripts/clusters/up.sh, .bench-clusters)",
        completer: "bench/podCompleter.ts, admin identity, task result then pod Succeeded",
        notes: "limited: both controllers --qps 20 --burst 30; unlimited: flotilla without --qps (no limit), upstream --qps/--burst 100000; apiRequests count the controller's requests from the first submission to 3 s after the last workflow ended"
      },
      series: Object.fromEntries(series.map((p) => [p.pass, { flotilla: p.flotilla, upstream: p.upstream }])),
      // bench start to the results, cluster start included (its stop follows)
      wallSeconds: round((Date.now() - wallStart) / 1000, 1),
      finishedAt: new Date().toISOString()
    }
    fs.mkdirSync(resultsDir, { recursive: true })
    const written = [path.join(resultsDir, "compare.json")]
    fs.writeFileSync(written[0]!, JSON.stringify(result, null, 2) + "\n")
    for (const p of series) {
      const file = path.join(resultsDir, `compare-${p.pass}.svg`)
      fs.writeFileSync(file, plotOf(p, n))
      written.push(file)
    }
    console.log(table(pairs))
    console.log(`written ${written.map((f) => path.relative(repoRoot, f)).join(", ")}`)
    // figures of a run whose workflows did not all succeed measure something else: a failure
    // (what keeps `--smoke` in CI from rotting), after the results are written
    const short = pairs.flatMap((p) => [p.flotilla, p.upstream]).filter((f) => f.succeeded !== n)
    if (short.length > 0) {
      return yield* Effect.fail(new Error(`not every workflow succeeded: ${short.map((f) => `${f.controller} (${f.pass}) ${f.succeeded}/${n}`).join(", ")}`))
    }
    return { result, wallStart }
  }).pipe(
    Effect.scoped,
    // after the scope: the cluster's stop counts in the wall time
    Effect.tap(({ wallStart }) =>
      Effect.sync(() => console.log(`compare${args.smoke ? " --smoke" : ""}: wall time ${round((Date.now() - wallStart) / 1000, 1)} s (cluster start and stop included)`))
    ),
    Effect.map(({ result }) => result),
    Effect.provide(LiveKubeConnector.layer)
  )

/**
 * Runs a bench as the process's main: SIGINT/SIGTERM interrupt it (so its scope stops the
 * controllers and the clusters), a failure is printed and sets exit code 1.
 */
export const runBenchMain = <A, E>(bench: Effect.Effect<A, E>, logs: Layer.Layer<never>): void => {
  const fiber = Effect.runFork(bench.pipe(Effect.provide(logs)))
  const stop = () => {
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  fiber.addObserver((exit) => {
    if (exit._tag === "Failure") {
      console.error(String(exit.cause))
      process.exitCode = 1
    }
    process.removeListener("SIGINT", stop)
    process.removeListener("SIGTERM", stop)
  })
}

export const runCompareMain = (argv: ReadonlyArray<string>, logs: Layer.Layer<never>): void =>
  runBenchMain(compare(parseArgs(argv)), logs)

