/**
 * How the pure engine's reconcile grows with a workflow's size: per-reconcile
 * time of large DAGs, steps chains and loops at two sizes each, the time per
 * node at both (equal when growth is linear), and the size of the status as
 * stored (compressed past `limits.maxStatusBytes`).
 *
 *   npx tsx bench/engine.ts      # this part alone; `npm run bench` runs it too
 *
 * Each case is measured in its steady state (every node created, pods
 * running or done, nothing to change: what every watch event costs) and on
 * the first reconcile (building every runnable node at once). Times are the
 * process's CPU time (user + system) as well as wall time: on a shared
 * machine the CPU time is the steadier of the two, and the growth is
 * computed from it.
 */
import { pathToFileURL } from "node:url"
import type { KubeObject } from "../src/kube/api/Resources.js"
import type { EngineConfig, EngineOutput, PodObservation, TaskResultObservation } from "../src/workflow/engine/contract.js"
import { reconcile } from "../src/workflow/engine/index.js"
import { nodeId } from "../src/workflow/engine/ids.js"
import { readStatusNodes } from "../src/workflow/model/compressedNodes.js"

const config: EngineConfig = { localCluster: "main", podNameVersion: "v2", executorImage: "argoexec" }
const now = Date.parse("2025-01-01T00:00:00Z")
const leaf = { name: "leaf", container: { image: "busybox", command: ["true"] } }

const workflow = (spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "wf", namespace: "bench", uid: "u" },
  spec
})

interface Shape {
  readonly name: string
  readonly sizes: readonly [number, number]
  readonly workflow: (n: number) => KubeObject
  /** Node names whose pods have already run in the steady state (the rest run or wait). */
  readonly done: (n: number) => ReadonlyArray<string>
}

const shapes: ReadonlyArray<Shape> = [
  {
    name: "dag-chain",
    sizes: [1000, 5000],
    workflow: (n) =>
      workflow({
        entrypoint: "main",
        templates: [
          { name: "main", dag: { tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, template: "leaf", ...(i > 0 ? { dependencies: [`t${i - 1}`] } : {}) })) } },
          leaf
        ]
      }),
    // Half way through: half the chain done, the next task running.
    done: (n) => Array.from({ length: n / 2 }, (_, i) => `wf.t${i}`)
  },
  {
    name: "dag-wide",
    sizes: [1000, 5000],
    workflow: (n) =>
      workflow({ entrypoint: "main", templates: [{ name: "main", dag: { tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, template: "leaf" })) } }, leaf] }),
    done: (n) => Array.from({ length: n / 2 }, (_, i) => `wf.t${i}`)
  },
  {
    name: "steps-chain",
    // Both sizes past maxStatusBytes, so both pay for compression (1,000 would not).
    sizes: [5000, 10_000],
    workflow: (n) => workflow({ entrypoint: "main", templates: [{ name: "main", steps: Array.from({ length: n }, (_, i) => [{ name: `s${i}`, template: "leaf" }]) }, leaf] }),
    done: (n) => Array.from({ length: n / 2 }, (_, i) => `wf[${i}].s${i}`)
  },
  {
    name: "loop",
    sizes: [5000, 10_000],
    workflow: (n) =>
      workflow({ entrypoint: "main", templates: [{ name: "main", steps: [[{ name: "fan", template: "leaf", withItems: Array.from({ length: n }, (_, i) => `item-${i}`) }]] }, leaf] }),
    done: (n) => Array.from({ length: n / 2 }, (_, i) => `wf[0].fan(${i}:item-${i})`)
  },
  {
    // Template-level failFast on the loop and on each item's own steps: every such node asks
    // whether one of its children failed, which must not cost a walk over every node.
    name: "loop-failfast",
    sizes: [1000, 5000],
    workflow: (n) =>
      workflow({
        entrypoint: "main",
        templates: [
          { name: "main", failFast: true, steps: [[{ name: "fan", template: "item", withItems: Array.from({ length: n }, (_, i) => `item-${i}`) }]] },
          { name: "item", failFast: true, steps: [[{ name: "run", template: "leaf" }]] },
          leaf
        ]
      }),
    done: (n) => Array.from({ length: n / 2 }, (_, i) => `wf[0].fan(${i}:item-${i})[0].run`)
  }
]

class Cluster {
  readonly pods = new Map<string, PodObservation>()
  readonly taskResults = new Map<string, TaskResultObservation>()
  wf: KubeObject
  constructor(wf: KubeObject) {
    this.wf = wf
  }
  reconcile(): EngineOutput {
    const out = reconcile({ workflow: this.wf, pods: this.pods, taskResults: this.taskResults, now, config })
    this.wf = { ...this.wf, status: out.status }
    return out
  }
  run(id: string, phase: "Running" | "Succeeded"): void {
    this.pods.set(id, { nodeId: id, podName: id, cluster: "main", namespace: "bench", phase, ...(phase === "Succeeded" ? { exitCode: 0, finishedAt: "2025-01-01T00:00:00Z" } : {}) })
    if (phase === "Succeeded") this.taskResults.set(id, { nodeId: id, outputs: { exitCode: "0" }, completed: true })
  }
}

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** The result, wall milliseconds and CPU milliseconds of `f`. */
const timed = <A>(f: () => A): [A, number, number] => {
  const t = performance.now()
  const cpu = process.cpuUsage()
  const a = f()
  const used = process.cpuUsage(cpu)
  return [a, performance.now() - t, (used.user + used.system) / 1000]
}

const round1 = (x: number): number => Math.round(x * 10) / 10

export interface EngineScaleResult {
  readonly name: string
  readonly shape: string
  readonly size: number
  readonly nodes: number
  readonly firstReconcileMs: number
  readonly steadyReconcileMs: number
  readonly steadyReconcileCpuMs: number
  /** Steady-state CPU time per node in the status. */
  readonly steadyMicrosPerNode: number
  readonly statusJsonBytes: number
  readonly storedStatusBytes: number
  readonly compressed: boolean
}

const measure = (shape: Shape, n: number): EngineScaleResult => {
  const cluster = new Cluster(shape.workflow(n))
  const [, firstReconcileMs] = timed(() => cluster.reconcile())
  // The steady state: the done part's pods succeeded, every pod asked for is running.
  for (const name of shape.done(n)) cluster.run(nodeId("wf", name), "Succeeded")
  // A few rounds to reach it, then a few more so the JIT has seen this shape at this size.
  for (let i = 0; i < 8; i++) {
    const out = cluster.reconcile()
    for (const a of out.actions) if (a._tag === "CreatePod" && !cluster.pods.has(a.nodeId)) cluster.run(a.nodeId, "Running")
  }
  const runs: Array<number> = []
  const cpuRuns: Array<number> = []
  let last: EngineOutput | undefined
  for (let i = 0; i < 9; i++) {
    const [out, ms, cpuMs] = timed(() => cluster.reconcile())
    runs.push(ms)
    cpuRuns.push(cpuMs)
    last = out
  }
  const status = last!.status as Record<string, unknown>
  const nodes = readStatusNodes(status)
  if (!nodes.ok) throw new Error(nodes.error)
  if (status.phase !== "Running") throw new Error(`${shape.name} ${n}: ${String(status.phase)} ${String(status.message ?? "")}`)
  const count = Object.keys(nodes.nodes).length
  const steadyCpuMs = median(cpuRuns)
  return {
    name: "engine.scale",
    shape: shape.name,
    size: n,
    nodes: count,
    firstReconcileMs: round1(firstReconcileMs),
    steadyReconcileMs: round1(median(runs)),
    steadyReconcileCpuMs: round1(steadyCpuMs),
    steadyMicrosPerNode: round1((steadyCpuMs * 1000) / count),
    statusJsonBytes: Buffer.byteLength(JSON.stringify({ ...status, compressedNodes: undefined, nodes: nodes.nodes })),
    storedStatusBytes: Buffer.byteLength(JSON.stringify(status)),
    compressed: typeof status.compressedNodes === "string"
  }
}

export interface EngineScaleSummary {
  readonly name: string
  readonly shape: string
  readonly sizes: readonly [number, number]
  readonly microsPerNode: readonly [number, number]
  /** Time per node at the larger size over the smaller: 1 is linear, the size ratio is quadratic. */
  readonly growth: number
}

/** Every shape at both sizes, then one summary line per shape. */
export const engineScaling = (print: (line: string) => void = console.log): ReadonlyArray<EngineScaleSummary> => {
  // Warm the JIT on a small case first, so the first measured shape is not penalised.
  measure(shapes[0], 200)
  const summaries: Array<EngineScaleSummary> = []
  for (const shape of shapes) {
    const [small, large] = shape.sizes.map((n) => measure(shape, n))
    print(JSON.stringify(small))
    print(JSON.stringify(large))
    const summary: EngineScaleSummary = {
      name: "engine.scale.growth",
      shape: shape.name,
      sizes: shape.sizes,
      microsPerNode: [small.steadyMicrosPerNode, large.steadyMicrosPerNode],
      growth: Math.round((large.steadyMicrosPerNode / small.steadyMicrosPerNode) * 100) / 100
    }
    print(JSON.stringify(summary))
    summaries.push(summary)
  }
  return summaries
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) engineScaling()
