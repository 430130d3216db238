/**
 * Controller memory with many workflows tracked (issue 14: RSS under 200 MB
 * with 5,000 workflows tracked).
 *
 * On the embedded runtime (in-memory clusters, simulate mode), `BENCH_MEMORY_WORKFLOWS`
 * (default 5,000) single-pod workflows run to completion and are kept (their
 * Workflow objects, pods and task results stay in the caches), then
 * `BENCH_MEMORY_RUNNING` (default 50) more start pods that keep running (an
 * hour's simulated duration). Every object is created with `managedFields` and
 * a `last-applied-configuration` annotation, as a real API server and
 * `kubectl apply` leave them (the in-memory server adds neither), so what the
 * controller's caches do with them is measured too.
 *
 * The embedded process also holds the in-memory API server, kubelets and
 * schedulers, so the controller's own share is measured by difference: the
 * heap after a full GC with the controller running minus the same once its
 * scope is closed (its informers, caches, queues and work state released).
 * The controller's RSS is then estimated as the process's RSS at start (Node
 * and every module loaded, nothing created) plus that share; the whole
 * process's figures are printed beside it.
 *
 *   npx tsx bench/memory.ts              # this part alone, under tsx (whose loader adds to the base RSS)
 *   npm run bench                        # runs it compiled (memoryCompiled), checks the target
 *   BENCH_MEMORY_SNAPSHOT=1 npx tsx bench/memory.ts
 *       # also writes bench/results/memory-*.heapsnapshot (controller running, and stopped)
 *       # and prints the self size by constructor of the difference (what the controller holds)
 *
 * Measured on the 2-core development machine (compiled form, 5,000 completed + 50 running,
 * machine shared and loaded), controller heap / estimated controller RSS / whole process RSS:
 *   before (commit 352488d: caches kept objects as delivered)    55.5 MiB / 204.2 MiB (214 MB) / 1,096 MiB
 *   managedFields stripped, pods slimmed (spec)                   38.1-38.6 MiB / 186.3-186.7 MiB / 797-937 MiB
 *   and pods' status slimmed                                      36.3 MiB / 184.5 MiB (193 MB) / 966 MiB
 *   and index values filing one object without a Set              32.4 MiB / 184.2 MiB (193 MB) / 935 MiB
 * of which the base (Node, every module, nothing created) is 148-152 MiB from run to run: it
 * dominates the estimate, and holds the in-memory API server's, kubelets' and harness's modules
 * too (a real controller loads fewer). The caches as JSON
 * after: workflows 7.7 MiB, pods 19.1 MiB (23.4 before the status slimming), task results 2.5 MiB.
 * The embedded figures understate a real controller's strings: the in-memory server's copies
 * share their strings with the server's store, where a real client parses a string per value.
 *
 * Note on the shipped form: the image runs compiled JS (`node <scripts/images/node-flags>
 * /app/dist/cli/main.js controller`, see Dockerfile and scripts/images/controller-rootfs.sh),
 * not `tsx`: a benchmark of the controller's RSS on a cluster should run that form, since tsx's
 * in-process loader (esbuild service, transpile caches, source maps) is not in the image.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { setFlagsFromString, writeHeapSnapshot } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect, Exit, PubSub, Scope } from "effect"
import type { Controller } from "../src/controller/Controller.js"
import * as Embedded from "../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../src/kube/api/Resources.js"
import { InMemoryKube } from "../src/testing/InMemoryKube.js"
import { imageNodeFlags } from "./imageNodeFlags.js"

const completedN = Number(process.env["BENCH_MEMORY_WORKFLOWS"] ?? 5_000)
const runningN = Number(process.env["BENCH_MEMORY_RUNNING"] ?? 50)
const snapshots = process.env["BENCH_MEMORY_SNAPSHOT"] === "1"
const ns = "mem"
/** bench/results (relative to the working directory: the repository's root under `npm run bench`). */
const resultsDir = resolve("bench/results") + "/"

const gc: () => void = (() => {
  try {
    setFlagsFromString("--expose-gc")
    const f = runInNewContext("gc") as unknown
    if (typeof f === "function") return f as () => void
  } catch {
    // no GC control: figures are taken as they are
  }
  return () => {}
})()
const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10
const usage = () => {
  gc()
  gc()
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers }
}

/** What a real API server adds to an object a user applied with kubectl (the in-memory server adds none). */
const applied = (object: KubeObject): KubeObject => {
  const metadata = object.metadata
  const lastApplied = JSON.stringify(object)
  return {
    ...object,
    metadata: {
      ...metadata,
      annotations: { ...metadata.annotations, "kubectl.kubernetes.io/last-applied-configuration": lastApplied },
      managedFields: [
        {
          manager: "kubectl-client-side-apply",
          operation: "Update",
          apiVersion: object.apiVersion,
          time: "2026-11-30T00:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: {
            "f:metadata": { "f:annotations": { ".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {} } },
            "f:spec": { ".": {}, "f:entrypoint": {}, "f:serviceAccountName": {}, "f:templates": {} }
          }
        },
        {
          manager: "workflow-controller",
          operation: "Update",
          apiVersion: object.apiVersion,
          time: "2026-11-30T00:00:01Z",
          fieldsType: "FieldsV1",
          fieldsV1: {
            "f:metadata": { "f:labels": { ".": {}, "f:workflows.argoproj.io/completed": {}, "f:workflows.argoproj.io/phase": {} } },
            "f:status": { ".": {}, "f:artifactRepositoryRef": {}, "f:finishedAt": {}, "f:nodes": {}, "f:phase": {}, "f:progress": {}, "f:startedAt": {} }
          }
        }
      ]
    } as KubeObject["metadata"]
  }
}

const workflow = (name: string, duration: string): KubeObject =>
  applied({
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Workflow",
    metadata: { name, namespace: ns, labels: { app: "memory-bench", team: "bench" } },
    spec: {
      entrypoint: "main",
      serviceAccountName: "workflow",
      templates: [
        {
          name: "main",
          metadata: { annotations: { "flotilla.dev/simulate-duration": duration } },
          container: { image: "busybox", command: ["sh", "-c"], args: ["echo hello from a single pod"] }
        }
      ]
    }
  })

export interface SelfSizeRow {
  readonly type: string
  readonly count: number
  readonly selfMiB: number
}

/**
 * Self size by constructor (objects) or type (strings, arrays, code...) of the nodes in `file`,
 * minus the same in `baseline`: what the heap in `file` holds beyond `baseline`'s.
 */
export const selfSizeDiff = (file: string, baseline: string, top = 20): ReadonlyArray<SelfSizeRow> => {
  const tally = (path: string) => {
    const snap = JSON.parse(readFileSync(path, "utf8")) as {
      snapshot: { meta: { node_fields: Array<string>; node_types: [Array<string>] } }
      nodes: Array<number>
      strings: Array<string>
    }
    const fields = snap.snapshot.meta.node_fields
    const types = snap.snapshot.meta.node_types[0]
    const width = fields.length
    const [iType, iName, iSize] = [fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")]
    const out = new Map<string, { count: number; size: number }>()
    for (let i = 0; i < snap.nodes.length; i += width) {
      const type = types[snap.nodes[i + iType]!]!
      const key = type === "object" || type === "closure" ? `${type}:${snap.strings[snap.nodes[i + iName]!]}` : type
      const row = out.get(key) ?? { count: 0, size: 0 }
      row.count++
      row.size += snap.nodes[i + iSize]!
      out.set(key, row)
    }
    return out
  }
  const a = tally(file)
  const b = tally(baseline)
  return [...a]
    .map(([type, row]) => ({ type, count: row.count - (b.get(type)?.count ?? 0), selfMiB: mib(row.size - (b.get(type)?.size ?? 0)) }))
    .sort((x, y) => y.selfMiB - x.selfMiB)
    .slice(0, top)
}

export interface MemoryResult {
  readonly name: string
  readonly completed: number
  readonly running: number
  /** The process at start: Node and every module loaded, nothing created. */
  readonly baseRssMiB: number
  /** The whole process with everything tracked: API server, kubelets, controller. */
  readonly processRssMiB: number
  readonly processHeapMiB: number
  /** Heap (after a full GC) the controller holds: running minus stopped. */
  readonly controllerHeapMiB: number
  /** External memory (buffers) the controller holds, the same way. */
  readonly controllerExternalMiB: number
  /** baseRssMiB + the controller's heap and external memory: the controller's RSS were it alone. */
  readonly controllerRssMiB: number
  readonly bytesPerWorkflow: number
  /** The controller's caches as JSON, by kind: what a real controller parses them from (each a copy of its own). */
  readonly cachedJsonMiB: { readonly workflows: number; readonly pods: number; readonly taskResults: number }
  readonly seconds: number
  readonly topTypes?: ReadonlyArray<SelfSizeRow>
}

/**
 * Until every workflow of `workflows` satisfies `predicate`: one subscription for all (one
 * awaiter per workflow would each see every change, quadratic at 5,000).
 */
const awaitAll = (
  controller: Controller["Service"],
  workflows: ReadonlyArray<KubeObject>,
  predicate: (wf: KubeObject) => boolean
) =>
  Effect.scoped(Effect.gen(function*() {
    const subscription = yield* controller.workflows.subscribe
    const pending = new Set(workflows.map((wf) => wf.metadata.name!))
    for (const name of [...pending]) {
      const current = yield* controller.workflows.get(ns, name)
      if (current._tag === "Some" && predicate(current.value)) pending.delete(name)
    }
    while (pending.size > 0) {
      const change = yield* PubSub.take(subscription)
      const name = change.object.metadata.name ?? ""
      if (change.type === "upsert" && change.object.metadata.namespace === ns && pending.has(name) && predicate(change.object)) {
        pending.delete(name)
      }
    }
  }))

const track = (scope: Scope.Closeable, completed: ReadonlyArray<KubeObject>, running: ReadonlyArray<KubeObject>, dir: string) =>
  Effect.gen(function*() {
    const { controller, admin } = yield* Embedded.startController().pipe(Scope.provide(scope))
    yield* Effect.forEach(completed, (wf) => admin.create("workflows", ns, wf), { concurrency: 16, discard: true })
    yield* awaitAll(controller, completed, Embedded.isCompleted)
    let succeeded = 0
    for (const wf of yield* controller.workflows.list()) if (Embedded.phaseOf(wf) === "Succeeded") succeeded++
    if (succeeded !== completedN) throw new Error(`${completedN - succeeded} of ${completedN} workflows did not succeed`)
    yield* Effect.forEach(running, (wf) => admin.create("workflows", ns, wf), { concurrency: 16, discard: true })
    yield* awaitAll(controller, running, (w) => Embedded.phaseOf(w) === "Running" && podRunning(w))
    while ((yield* controller.queueDepth) > 0) yield* Effect.sleep("20 millis")
    yield* Effect.sleep("1 second")
    const jsonMiB = (objects: ReadonlyArray<KubeObject>) => mib(objects.reduce((n, o) => n + JSON.stringify(o).length, 0))
    const cachedJsonMiB = { workflows: jsonMiB(yield* controller.workflows.list()), pods: 0, taskResults: 0 }
    for (const view of yield* controller.pool.all) {
      cachedJsonMiB.pods += jsonMiB(yield* view.pods.list())
      cachedJsonMiB.taskResults += jsonMiB(yield* view.taskResults.list())
    }
    const withController = usage()
    let withFile: string | undefined
    if (snapshots) {
      mkdirSync(dir, { recursive: true })
      withFile = writeHeapSnapshot(`${dir}memory-controller.heapsnapshot`)
    }
    return { withController, withFile, cachedJsonMiB }
  })

export const memory = () =>
  Effect.gen(function*() {
    const started = performance.now()
    const base = usage()
    const completed = Array.from({ length: completedN }, (_, i) => workflow(`done-${i}`, "1ms"))
    const running = Array.from({ length: runningN }, (_, i) => workflow(`running-${i}`, "1h"))
    const placement = Embedded.placementOf([...completed, ...running])
    yield* Embedded.provision(placement)
    yield* Embedded.startKubelets(placement, { mode: "simulate" })
    const controllerScope = yield* Scope.make()
    const dir = resultsDir
    // In a function of its own, so nothing of the controller stays reachable from here once it stops.
    const { cachedJsonMiB, withController, withFile } = yield* track(controllerScope, completed, running, dir)
    yield* Scope.close(controllerScope, Exit.void)
    yield* Effect.sleep("1 second")
    const without = usage()
    let topTypes: ReadonlyArray<SelfSizeRow> | undefined
    if (snapshots && withFile !== undefined) {
      const withoutFile = writeHeapSnapshot(`${dir}memory-stopped.heapsnapshot`)
      topTypes = selfSizeDiff(withFile, withoutFile)
    }
    const controllerHeap = withController.heapUsed - without.heapUsed
    const controllerExternal = Math.max(0, withController.external - without.external)
    const result: MemoryResult = {
      name: "controller.memory",
      completed: completedN,
      running: runningN,
      baseRssMiB: mib(base.rss),
      processRssMiB: mib(withController.rss),
      processHeapMiB: mib(withController.heapUsed),
      controllerHeapMiB: mib(controllerHeap),
      controllerExternalMiB: mib(controllerExternal),
      controllerRssMiB: mib(base.rss + controllerHeap + controllerExternal),
      bytesPerWorkflow: Math.round(controllerHeap / (completedN + runningN)),
      cachedJsonMiB,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      ...(topTypes ? { topTypes } : {})
    }
    return result
  }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer))

const podRunning = (wf: KubeObject | undefined): boolean => {
  const nodes = ((wf?.["status"] as { nodes?: Record<string, { type?: string; phase?: string }> } | undefined)?.nodes) ?? {}
  return Object.values(nodes).some((n) => n.type === "Pod" && n.phase === "Running")
}

/**
 * The benchmark in the form the image ships (compiled JS run by plain `node`, no tsx loader in
 * the process): bundled with esbuild (tsx's own, packages left to node_modules) to
 * bench/results/memory.mjs, then run by `node` in a child process; its JSON line is the result.
 */
export const memoryCompiled = (): MemoryResult => {
  mkdirSync(resultsDir, { recursive: true })
  const bundle = `${resultsDir}memory.mjs`
  execFileSync("npx", ["esbuild", "bench/memory.ts", "--bundle", "--platform=node", "--format=esm", "--packages=external", "--log-level=warning", `--outfile=${bundle}`], { stdio: "inherit" })
  const out = execFileSync(process.execPath, [...imageNodeFlags(), bundle], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], env: process.env, maxBuffer: 64 * 2 ** 20 })
  const line = out.split("\n").find((l) => l.startsWith("{\"name\":\"controller.memory\""))
  if (line === undefined) throw new Error(`bench/memory: no result in its output: ${out.slice(-2000)}`)
  return JSON.parse(line) as MemoryResult
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  Effect.runPromise(memory().pipe(Effect.provide(Embedded.quietLogs))).then(
    (r) => {
      console.log(JSON.stringify(r))
      if (r.topTypes) console.table(r.topTypes)
    },
    (e) => {
      console.error(e)
      process.exit(1)
    }
  )
}
