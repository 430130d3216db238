/**
 * `npm run bench -- --idle` (issue 14): the controller with 10 remote
 * contexts and nothing to do: CPU under 1%, exactly one open watch per
 * context and resource, no re-lists.
 *
 * The bench starts its own cluster (bench/compare.ts's `benchCluster`:
 * scripts/clusters/up.sh, `main` only, one kwok node, state in
 * `BENCH_CLUSTERS_DIR`, ports from `BENCH_PORT_BASE`) and stops it at the end
 * (also on failure or Ctrl-C). In namespace `bench-idle` it makes:
 *   - service account `controller` (cluster-admin): the controller's identity on
 *     its local cluster (configmap `workflow-controller-configmap`, `cluster: main`);
 *   - service accounts `cluster-1`..`cluster-10`, bound to the remote role of
 *     k8s/rbac/remote-cluster.yaml (list/watch/delete pods and task results...),
 *     and secret `argo-kubeconfig` with one context per account, named after it,
 *     all on this one API server: ten remote clusters, each with an identity of
 *     its own, so the audit log (scripts/clusters/audit-policy.yaml audits every
 *     account of `bench-idle`) tells their requests apart.
 * The controller runs as the image runs it: src/cli/main.ts compiled (bundled
 * with esbuild, packages from node_modules) and run by plain node
 * (`node <the image's node flags> <bundle> controller`), leader election on.
 * Once /readyz is 200 with all 11 clusters Connected and a settle
 * (BENCH_IDLE_SETTLE_SECONDS, default 5), the window (BENCH_IDLE_SECONDS,
 * default 60): CPU % of the controller process (utime+stime from
 * /proc/<pid>/stat over wall time), and from the audit log, per identity and
 * resource, the watches opened, closed and still open, and the lists.
 * `BENCH_FLOTILLA_NODE_ARGS` adds node flags (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 *
 * Prints a table, writes bench/results/idle.json, exits 1 when a target is missed.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Duration, Effect, type Layer, Schedule } from "effect"
import { parse } from "yaml"
import { adminKubeconfig, benchCluster, imageNodeFlags, portBase, readAudit, run, runBenchMain, startProcess, stateDir, tail } from "./compare.js"
import { type AuditEvent, cpuPercent, cpuTicksOfStat, type IdentityFigures, identityFigures, idleMisses, type IdleTargets } from "./idleFigures.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const resultsDir = path.join(repoRoot, "bench", "results")
const systemNs = "bench-idle"
export const contexts = Array.from({ length: 10 }, (_, i) => `cluster-${i + 1}`)
export const userOf = (account: string) => `system:serviceaccount:${systemNs}:${account}`

export const targets: IdleTargets = {
  maxCpuPercent: 1,
  // what ClusterPool watches in every remote cluster
  remoteResources: ["pods", "workflowtaskresults"],
  serverTimeoutSeconds: 300
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits

interface Kubeconfig {
  clusters: Array<{ cluster: { server: string; "certificate-authority-data": string } }>
}

/** The remote role of k8s/rbac/remote-cluster.yaml (its ClusterRole's rules). */
const remoteRules = () => {
  const docs = fs.readFileSync(path.join(repoRoot, "k8s/rbac/remote-cluster.yaml"), "utf8").split(/^---$/m).map((d) => parse(d) as { kind?: string; rules?: unknown })
  const role = docs.find((d) => d?.kind === "ClusterRole")
  if (role?.rules === undefined) throw new Error("k8s/rbac/remote-cluster.yaml: no ClusterRole")
  return role.rules
}

const clockTicks = (): number => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
}

const ticksOf = (pid: number) => cpuTicksOfStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))

const envSeconds = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback)
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`${name} must be a positive number of seconds`)
  return v
}

/** The rows of the table: one per remote context, then the local identity. */
export const idleTable = (remote: Record<string, IdentityFigures>, local: IdentityFigures, resources: ReadonlyArray<string>): string => {
  const rows: Array<Array<string>> = [["identity", ...resources.flatMap((r) => [`${r} open`, `${r} opened`]), "lists", "requests"]]
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0)
  const row = (name: string, f: IdentityFigures) =>
    rows.push([
      name,
      ...resources.flatMap((r) => [String(f.watches[r]?.openAtEnd ?? 0), String(f.watches[r]?.openedInWindow ?? 0)]),
      String(sum(f.listsInWindow)),
      String(sum(f.requestsInWindow))
    ])
  for (const [name, f] of Object.entries(remote)) row(name, f)
  row("local (controller)", local)
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

export const idle = Effect.gen(function*() {
  const windowSeconds = envSeconds("BENCH_IDLE_SECONDS", 60)
  const settleSeconds = envSeconds("BENCH_IDLE_SETTLE_SECONDS", 5)
  const healthPort = Number(portBase) + 91
  const { kubectl } = yield* benchCluster(1)
  const k = (args: ReadonlyArray<string>, input?: string) =>
    run(kubectl, ["--kubeconfig", adminKubeconfig, ...args], input === undefined ? {} : { input })

  // identities: the controller (cluster-admin on its local cluster) and one account per remote context
  const accounts = ["controller", ...contexts]
  yield* k(["apply", "-f", "-"], [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: systemNs } },
    ...accounts.map((name) => ({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: systemNs } })),
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `${systemNs}-controller` },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ kind: "ServiceAccount", name: "controller", namespace: systemNs }]
    },
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: `${systemNs}-remote` }, rules: remoteRules() },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `${systemNs}-remote` },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `${systemNs}-remote` },
      subjects: contexts.map((name) => ({ kind: "ServiceAccount", name, namespace: systemNs }))
    },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "workflow-controller-configmap", namespace: systemNs }, data: { cluster: "main" } }
  ].map((d) => JSON.stringify(d)).join("\n---\n"))
  const tokens = new Map<string, string>()
  for (const account of accounts) {
    tokens.set(account, (yield* k(["-n", systemNs, "create", "token", account, "--duration=4h"])).trim())
  }
  const endpoint = (parse(fs.readFileSync(adminKubeconfig, "utf8")) as Kubeconfig).clusters[0]!.cluster
  const benchDir = path.join(stateDir, "bench")
  fs.mkdirSync(benchDir, { recursive: true })
  const kubeconfig = path.join(benchDir, "idle-controller.kubeconfig")
  fs.writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "main", cluster: endpoint }],
    users: [{ name: "controller", user: { token: tokens.get("controller")! } }],
    contexts: [{ name: "main", context: { cluster: "main", user: "controller", namespace: systemNs } }],
    "current-context": "main"
  }), { mode: 0o600 })
  // argo-kubeconfig: ten contexts on this API server, each with its own account, all namespaces
  const argoKubeconfig = JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: contexts.map((name) => ({ name, cluster: endpoint })),
    users: contexts.map((name) => ({ name, user: { token: tokens.get(name)! } })),
    contexts: contexts.map((name) => ({ name, context: { cluster: name, user: name } }))
  })
  yield* k(["apply", "-f", "-"], JSON.stringify({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "argo-kubeconfig", namespace: systemNs },
    stringData: { value: argoKubeconfig }
  }))

  // the controller, compiled as the image holds it (dist/cli/main.js there; one bundle here)
  const bundle = path.join(resultsDir, "idle-controller.mjs")
  fs.mkdirSync(resultsDir, { recursive: true })
  yield* run(path.join(repoRoot, "node_modules/.bin/esbuild"), [
    "src/cli/main.ts",
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--packages=external",
    "--sourcemap",
    "--log-level=warning",
    `--outfile=${bundle}`
  ])
  const proc = yield* startProcess("flotilla-idle", process.execPath, [
    ...(process.env["BENCH_FLOTILLA_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== ""),
    ...imageNodeFlags(),
    bundle,
    "controller",
    "--configmap=workflow-controller-configmap",
    "--kubeconfig",
    kubeconfig,
    "--namespace",
    systemNs,
    `--health-port=${healthPort}`,
    "--metrics-port=0"
  ], { ARGO_NAMESPACE: systemNs, LEADER_ELECTION_IDENTITY: "bench-idle" })
  const pid = proc.child.pid!
  const failIfExited = Effect.suspend(() =>
    proc.exited() ? Effect.fail(new Error(`the controller exited; ${proc.logFile}:\n${tail(proc.logFile)}`)) : Effect.void
  )

  // ready: /readyz 200 with every cluster Connected
  const startedAt = Date.now()
  const ready = Effect.gen(function*() {
    yield* failIfExited
    const body = yield* Effect.tryPromise(async () => {
      const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`)
      return { status: res.status, body: await res.json() as { clusters?: Record<string, string> } }
    }).pipe(Effect.orElseSucceed(() => undefined))
    const clusters = body?.body.clusters ?? {}
    const connected = Object.values(clusters).filter((s) => s === "Connected").length
    if (body?.status !== 200 || connected !== contexts.length + 1) {
      return yield* Effect.fail(new Error(`not ready: /readyz ${body?.status ?? "unreachable"}, ${connected} of ${contexts.length + 1} clusters connected`))
    }
  })
  yield* ready.pipe(
    Effect.retry({
      schedule: Schedule.spaced("500 millis"),
      while: () => !proc.exited() && Date.now() - startedAt < 180_000
    }),
    Effect.mapError((e) => new Error(`${e.message}; ${proc.logFile}:\n${tail(proc.logFile)}`))
  )
  const readySeconds = (Date.now() - startedAt) / 1000
  yield* Effect.logWarning(`idle: controller ready after ${round(readySeconds, 1)} s; settling ${settleSeconds} s, then an idle window of ${windowSeconds} s`)
  yield* Effect.sleep(Duration.seconds(settleSeconds))

  const hz = clockTicks()
  const t0 = Date.now()
  const ticks0 = ticksOf(pid)
  yield* Effect.sleep(Duration.seconds(windowSeconds))
  yield* failIfExited
  const ticks1 = ticksOf(pid)
  const t1 = Date.now()
  const cpu = cpuPercent(ticks1 - ticks0, hz, t1 - t0)
  const rssMiB = (() => {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) / 1024 : NaN
  })()
  // the audit log is written as requests end or start: give it a moment
  yield* Effect.sleep("1 second")
  const events = readAudit() as unknown as ReadonlyArray<AuditEvent>
  const figures = identityFigures(events, accounts.map(userOf), t0, t1)
  const remote = Object.fromEntries(contexts.map((c) => [c, figures[userOf(c)]!]))
  const local = figures[userOf("controller")]!
  const windowS = round((t1 - t0) / 1000, 1)
  const misses = idleMisses({ cpuPercent: cpu, windowSeconds: windowS, remote, local }, targets)
  const logLines = fs.readFileSync(proc.logFile, "utf8").split("\n").filter((l) => l.trim() !== "")
  const result = {
    cpuPercent: round(cpu, 3),
    cpuSeconds: round((ticks1 - ticks0) / hz, 2),
    windowSeconds: windowS,
    settleSeconds,
    readySeconds: round(readySeconds, 1),
    rssMiB: round(rssMiB, 1),
    contexts: contexts.length,
    remoteResources: targets.remoteResources,
    targets,
    misses,
    remote,
    local,
    controller: {
      process: `node ${imageNodeFlags().join(" ")} ${path.relative(repoRoot, bundle)} controller (esbuild bundle of src/cli/main.ts)`,
      logFile: proc.logFile,
      logLines: logLines.length,
      warningsOrErrors: logLines.filter((l) => /level=(warning|error)/.test(l)).slice(-20)
    },
    machine: { cores: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20), loadAverage: os.loadavg().map((l) => round(l, 2)) },
    finishedAt: new Date().toISOString()
  }
  const file = path.join(resultsDir, "idle.json")
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n")
  const resources = [...new Set([...targets.remoteResources, ...Object.values(remote).flatMap((f) => Object.keys(f.watches))])].sort()
  console.log(idleTable(remote, local, resources))
  console.log(`controller CPU ${round(cpu, 3)}% of one core over ${windowS} s idle (${result.cpuSeconds} s CPU), RSS ${result.rssMiB} MiB, ${contexts.length} remote contexts`)
  console.log(`local identity's requests in the window: ${JSON.stringify(local.requestsInWindow)}`)
  console.log(`written ${path.relative(repoRoot, file)}`)
  return result
}).pipe(Effect.scoped)

/** Runs the idle bench; interrupts it (stopping the controller and the cluster) on SIGINT/SIGTERM; exit 1 on a miss. */
export const runIdleMain = (logs: Layer.Layer<never>): void =>
  runBenchMain(
    idle.pipe(Effect.tap((result) =>
      Effect.sync(() => {
        if (result.misses.length > 0) {
          console.error("targets missed: " + result.misses.join("; "))
          process.exitCode = 1
        } else console.log("all idle targets met")
      })
    )),
    logs
  )
