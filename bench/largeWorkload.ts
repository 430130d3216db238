/**
 * The pure pieces of `npm run bench -- --large` (bench/large.ts): the two large
 * workflows it runs on both controllers, the Prometheus histogram arithmetic
 * that turns each controller's reconcile histogram into per-reconcile figures,
 * and the size figures of a stored Workflow's status. No I/O here (unit tests:
 * test/bench/large.test.ts).
 */
import type { KubeObject } from "../src/kube/api/Resources.js"
import { readStatusNodes } from "../src/workflow/model/compressedNodes.js"

// --------------------------------------------------------------------------- workloads

/** kwok nodes only (tainted); no kwok outcome annotation: the pod completer completes the pods. */
const onKwok = {
  nodeSelector: { type: "kwok" },
  tolerations: [{ key: "kwok.x-k8s.io/node", operator: "Exists", effect: "NoSchedule" }]
}

/** The one task template of both workloads: a container with one input, as a real job step has. */
const workTemplate = {
  name: "work",
  inputs: { parameters: [{ name: "i" }] },
  container: { image: "busybox", command: ["sh", "-c"], args: ["echo {{inputs.parameters.i}}"] }
}

/** Layers of the DAG between its `start` and `end` tasks: 10, fewer when there are too few tasks. */
export const dagLayers = (tasks: number): ReadonlyArray<number> => {
  const middle = Math.max(0, tasks - 2)
  const count = Math.min(10, middle)
  if (count === 0) return []
  const width = Math.ceil(middle / count)
  const widths: Array<number> = []
  for (let left = middle; left > 0; left -= width) widths.push(Math.min(width, left))
  return widths
}

/**
 * A `tasks`-task DAG (at least 3) shaped as a batch pipeline: one `start` task fans out to
 * the first of up to 10 equal layers; each task of a later layer depends on two neighbours
 * of the layer before (`i` and `i+1`, wrapping), so results flow through as a map stage's
 * would; one `end` task fans in from every task of the last layer.
 */
export const dagWorkflow = (name: string, namespace: string, tasks: number, labels: Record<string, string> = {}): KubeObject => {
  if (!(Number.isInteger(tasks) && tasks >= 3)) throw new Error(`a DAG needs at least 3 tasks, not ${tasks}`)
  const widths = dagLayers(tasks)
  const taskOf = (taskName: string, dependencies: ReadonlyArray<string>) => ({
    name: taskName,
    template: "work",
    arguments: { parameters: [{ name: "i", value: taskName }] },
    ...(dependencies.length > 0 ? { dependencies } : {})
  })
  const dagTasks = [taskOf("start", [])]
  widths.forEach((width, layer) => {
    for (let i = 0; i < width; i++) {
      const before = widths[layer - 1]
      const deps = before === undefined
        ? ["start"]
        : [...new Set([`l${layer - 1}-${i % before}`, `l${layer - 1}-${(i + 1) % before}`])]
      dagTasks.push(taskOf(`l${layer}-${i}`, deps))
    }
  })
  const last = widths.length - 1
  dagTasks.push(taskOf("end", Array.from({ length: widths[last] ?? 0 }, (_, i) => `l${last}-${i}`)))
  return {
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Workflow",
    metadata: { name, namespace, labels },
    spec: { entrypoint: "main", ...onKwok, templates: [{ name: "main", dag: { tasks: dagTasks } }, workTemplate] }
  }
}

/** One steps template with one step looping over `items` numbers (`withItems`), a pod per item. */
export const loopWorkflow = (name: string, namespace: string, items: number, labels: Record<string, string> = {}): KubeObject => {
  if (!(Number.isInteger(items) && items >= 1)) throw new Error(`a loop needs at least 1 item, not ${items}`)
  return {
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Workflow",
    metadata: { name, namespace, labels },
    spec: {
      entrypoint: "main",
      ...onKwok,
      templates: [
        {
          name: "main",
          steps: [[{
            name: "item",
            template: "work",
            arguments: { parameters: [{ name: "i", value: "{{item}}" }] },
            withItems: Array.from({ length: items }, (_, i) => i)
          }]]
        },
        workTemplate
      ]
    }
  }
}

// --------------------------------------------------------------------------- histograms

/** A Prometheus histogram, every series of one name summed: cumulative counts by upper bound. */
export interface Histogram {
  /** Upper bounds, ascending, `Infinity` last, with their cumulative counts. */
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>
  readonly sum: number
  readonly count: number
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/

/**
 * The histogram `name` in a Prometheus text exposition, its series (label sets) summed
 * bucket by bucket; undefined when it has no sample (a controller that has not reconciled yet).
 */
export const parseHistogram = (text: string, name: string): Histogram | undefined => {
  const buckets = new Map<number, number>()
  let sum = 0
  let count = 0
  let seen = false
  for (const line of text.split("\n")) {
    const m = sampleLine.exec(line.trim())
    if (m === null) continue
    const [, metric, labels = "", raw] = m
    const value = Number(raw)
    if (!Number.isFinite(value)) continue
    if (metric === `${name}_bucket`) {
      const le = /(?:^|[{,])\s*le="([^"]*)"/.exec(labels)?.[1]
      if (le === undefined) continue
      const bound = le === "+Inf" ? Infinity : Number(le)
      buckets.set(bound, (buckets.get(bound) ?? 0) + value)
      seen = true
    } else if (metric === `${name}_sum`) {
      sum += value
      seen = true
    } else if (metric === `${name}_count`) {
      count += value
      seen = true
    }
  }
  if (!seen) return undefined
  return { buckets: [...buckets].sort(([a], [b]) => a - b).map(([le, c]) => ({ le, count: c })), sum, count }
}

/** What was recorded between two scrapes of one histogram (`before` undefined: nothing before). */
export const histogramDelta = (after: Histogram, before: Histogram | undefined): Histogram => {
  const was = new Map((before?.buckets ?? []).map((b) => [b.le, b.count]))
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (was.get(b.le) ?? 0) })),
    sum: after.sum - (before?.sum ?? 0),
    count: after.count - (before?.count ?? 0)
  }
}

/**
 * The q-quantile (0..1) as Prometheus's `histogram_quantile` estimates it: linear within
 * the bucket it falls in (from 0 for the first); the highest finite bound when it falls in
 * the `+Inf` bucket. NaN for an empty histogram.
 */
export const histogramQuantile = (h: Histogram, q: number): number => {
  const total = h.buckets.find((b) => b.le === Infinity)?.count ?? h.count
  if (!(total > 0)) return NaN
  const rank = q * total
  let lowerBound = 0
  let lowerCount = 0
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerBound
      const inBucket = b.count - lowerCount
      return inBucket <= 0 ? b.le : lowerBound + (b.le - lowerBound) * ((rank - lowerCount) / inBucket)
    }
    if (b.le !== Infinity) lowerBound = b.le
    lowerCount = b.count
  }
  return lowerBound
}

// --------------------------------------------------------------------------- status size

export interface StatusFigures {
  /** UTF-8 bytes of `status` as JSON, as stored (nodes compressed or not). */
  readonly statusBytes: number
  /** UTF-8 bytes of the whole Workflow object as JSON. */
  readonly objectBytes: number
  /** Nodes in the status (decompressed when they are compressed; -1 when they cannot be read). */
  readonly nodes: number
  /** The nodes as JSON, uncompressed, bytes. */
  readonly nodesJsonBytes: number
  /** The nodes were stored in `status.compressedNodes` (gzip, base64). */
  readonly compressed: boolean
  /** The nodes were offloaded (`status.offloadNodeStatusVersion`: a database holds them). */
  readonly offloaded: boolean
}

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value ?? null), "utf8")

export const statusFigures = (wf: KubeObject): StatusFigures => {
  const status = (wf.status ?? {}) as { nodes?: Record<string, unknown>; compressedNodes?: string; offloadNodeStatusVersion?: string }
  const compressed = typeof status.compressedNodes === "string" && status.compressedNodes !== ""
  const offloaded = typeof status.offloadNodeStatusVersion === "string" && status.offloadNodeStatusVersion !== ""
  const read = readStatusNodes(wf.status)
  const nodes = read.ok ? read.nodes : undefined
  return {
    statusBytes: bytes(wf.status),
    objectBytes: bytes(wf),
    nodes: nodes === undefined || (offloaded && Object.keys(nodes).length === 0) ? -1 : Object.keys(nodes).length,
    nodesJsonBytes: nodes === undefined ? 0 : bytes(nodes),
    compressed,
    offloaded
  }
}
