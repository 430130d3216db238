/**
 * The controller's Prometheus metrics, as effect `Metric` instruments, exposed
 * with `effect/observability`'s Prometheus text format (`format`). Names and
 * labels follow Argo (`argo_workflows_` prefix, no unit or `_total` suffix added:
 * Argo's exporter uses `UnderscoreEscapingWithoutSuffixes`, argo-compat.md §2.8)
 * where Argo has the metric; flotilla's own are `flotilla_*`.
 *
 * Recorded by the controller as things happen (call the `record*` functions):
 *
 * | metric | type | labels | what |
 * | --- | --- | --- | --- |
 * | `flotilla_reconcile_duration_seconds` | histogram | `result` (`success`, `error`, `requeue`) | one workflow reconcile |
 * | `argo_workflows_operation_duration_seconds` | histogram | none | the same reconciles, under Argo's name and buckets (5 s to 30 s) |
 * | `argo_workflows_queue_adds_count` | counter | `queue_name` | additions to the work queue |
 * | `argo_workflows_queue_latency` | histogram | `queue_name` | seconds a key waited in the queue before a worker took it (client-go's queue latency) |
 * | `argo_workflows_queue_duration` | histogram | `queue_name` | seconds a worker spent on a key (client-go's work duration) |
 *
 * `queue_name` is `workflow_queue` (Argo's name for the queue of workflow
 * updates). A reconcile's `result`: `success` it ran to the end (even if it asked
 * for a later wake-up); `requeue` it could not run yet and put the key back
 * (caches not synced, the watch not caught up with its own write, finalizer
 * pending); `error` it failed (logged and retried). No `cluster` label: one
 * reconcile spans every cluster a workflow's pods run in.
 *
 * Observed when scraped (set from the controller's state by `observeGauges` /
 * `observeCounters`, see controller/Metrics.ts): `argo_workflows_gauge{phase}`,
 * `argo_workflows_queue_depth_gauge{queue_name}`, `argo_workflows_pods_gauge`,
 * `flotilla_cluster_connected{cluster,state}`, `flotilla_ignored_objects_total{kind}`,
 * `flotilla_leader` and Argo's `argo_workflows_is_leader`. A series whose label
 * value went away (a cluster's former state) is removed rather than left stale.
 *
 * Every function reads and writes the `Metric.MetricRegistry` of its context:
 * the process-wide default in the controller (one registry, one `/metrics`);
 * tests that run several controllers in one process provide a fresh `Map` to
 * keep their numbers apart.
 */
import { Clock, Effect, Exit, Cause, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"

/** Argo's `queue_name` for the queue of workflow updates. */
export const workflowQueue = "workflow_queue"

export type ReconcileResult = "success" | "error" | "requeue"

// Recorded instruments -------------------------------------------------------

/** Fine buckets: a reconcile usually takes milliseconds, a slow API server makes it seconds. */
export const reconcileDuration = Metric.histogram("flotilla_reconcile_duration_seconds", {
  description: "Seconds one workflow reconcile took, by result (success, error, requeue)",
  boundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
})

/** Argo's defaults: MAX_OPERATION_TIME (30 s) in OPERATION_DURATION_METRIC_BUCKET_COUNT (6) buckets. */
export const operationDuration = Metric.histogram("argo_workflows_operation_duration_seconds", {
  description: "A histogram of durations of operations",
  boundaries: [5, 10, 15, 20, 25, 30]
})

export const queueAdds = Metric.counter("argo_workflows_queue_adds_count", {
  description: "A counter of additions to the work queues inside the controller",
  incremental: true
})

/** Argo's default buckets. */
export const queueLatency = Metric.histogram("argo_workflows_queue_latency", {
  description: "A histogram of the time events in the queues are taking before they are processed",
  boundaries: [1, 5, 20, 60, 180]
})

/** Argo's default buckets. */
export const queueDuration = Metric.histogram("argo_workflows_queue_duration", {
  description: "A histogram of the time events in the queues are taking to be processed",
  boundaries: [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 60, 180]
})

const results: ReadonlyArray<ReconcileResult> = ["success", "error", "requeue"]
const reconcileByResult = new Map(results.map((r) => [r, Metric.withAttributes(reconcileDuration, { result: r })]))
const onQueue = <I, S>(metric: Metric.Metric<I, S>, queueName: string) => Metric.withAttributes(metric, { queue_name: queueName })

/** Records one reconcile of `durationMs` milliseconds (in both reconcile histograms). */
export const recordReconcile = (durationMs: number, result: ReconcileResult): Effect.Effect<void> =>
  Effect.andThen(
    Metric.update(reconcileByResult.get(result)!, durationMs / 1000),
    Metric.update(operationDuration, durationMs / 1000)
  )

const timed = <A, E, R>(reconcile: Effect.Effect<A, E, R>, resultOf: (a: A) => ReconcileResult): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(reconcile)
    if (!(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))) {
      yield* recordReconcile((yield* Clock.currentTimeMillis) - start, Exit.isSuccess(exit) ? resultOf(exit.value) : "error")
    }
    return yield* exit
  })

/**
 * Runs a reconcile and records its duration (once): `success` when it succeeds, `error` when it
 * fails or dies (the failure is passed on unchanged). An interrupted reconcile records nothing.
 * Pipeable: `reconcileKey(key).pipe(Instruments.timeReconcile)`.
 */
export const timeReconcile = <A, E, R>(reconcile: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  timed(reconcile, () => "success")

/**
 * `timeReconcile` for a reconcile that says how it went: `resultOf` maps its value to the result
 * (say `requeue` for an outcome that put the key back), failures are `error`. Use it instead of
 * `timeReconcile` plus a separate `recordReconcile`, which would count that reconcile twice.
 * `effect.pipe(Instruments.timeReconcileBy((o) => o === "retry" ? "requeue" : "success"))`.
 */
export const timeReconcileBy = <A>(resultOf: (a: A) => ReconcileResult) =>
<E, R>(reconcile: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => timed(reconcile, resultOf)

/**
 * Counts one addition to the queue. As client-go: an add that queues the key, not one of a key
 * already waiting (which changes nothing); a delayed add counts when its wake-up queues the key.
 */
export const recordQueueAdd = (queueName: string = workflowQueue): Effect.Effect<void> =>
  Metric.update(onQueue(queueAdds, queueName), 1)

/** Records how long a key waited in the queue: from the add that queued it until a worker took it. */
export const recordQueueLatency = (durationMs: number, queueName: string = workflowQueue): Effect.Effect<void> =>
  Metric.update(onQueue(queueLatency, queueName), durationMs / 1000)

/** Records how long a worker spent on a key: from taking it until done (client-go's work duration). */
export const recordWorkDuration = (durationMs: number, queueName: string = workflowQueue): Effect.Effect<void> =>
  Metric.update(onQueue(queueDuration, queueName), durationMs / 1000)

/**
 * Creates the recorded series at zero, so that /metrics shows them (and dashboards find
 * them) before the first reconcile. Idempotent.
 */
export const registerRecorded: Effect.Effect<void> = Effect.gen(function*() {
  for (const metric of reconcileByResult.values()) yield* Metric.value(metric)
  yield* Metric.value(operationDuration)
  yield* Metric.value(onQueue(queueAdds, workflowQueue))
  yield* Metric.value(onQueue(queueLatency, workflowQueue))
  yield* Metric.value(onQueue(queueDuration, workflowQueue))
})

// Observed families ----------------------------------------------------------

export interface Family {
  readonly name: string
  readonly description: string
}

export const workflowsByPhase: Family = {
  name: "argo_workflows_gauge",
  description: "Number of workflows currently accessible by the controller by status"
}
export const queueDepth: Family = { name: "argo_workflows_queue_depth_gauge", description: "Depth of the queue" }
export const pods: Family = {
  name: "argo_workflows_pods_gauge",
  description: "Number of workflow pods watched, in every cluster"
}
export const clusterConnected: Family = {
  name: "flotilla_cluster_connected",
  description: "1 when the cluster's watches are connected"
}
export const ignoredObjects: Family = {
  name: "flotilla_ignored_objects_total",
  description: "Pods and task results that claimed a workflow's node but were not the ones the controller created for it"
}
export const leader: Family = { name: "flotilla_leader", description: "1 on the replica holding the leader lease" }
export const isLeader: Family = {
  name: "argo_workflows_is_leader",
  description: "Emits 1 if leader, 0 otherwise. Always 1 if leader election is disabled"
}

/** One series: its labels and value. */
export type Series = readonly [labels: Readonly<Record<string, string>>, value: number]

const labelKey = (labels: Readonly<Record<string, string>> | undefined): string =>
  JSON.stringify(Object.entries(labels ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))

/** Removes the family's series other than those with `keep`'s labels. */
const removeOthers = Effect.fnUntraced(function*(
  family: Family,
  keep: ReadonlySet<string>,
  make: (attributes: Readonly<Record<string, string>> | undefined) => Metric.Metric<any, any>
) {
  for (const s of yield* Metric.snapshot) {
    if (s.id === family.name && !keep.has(labelKey(s.attributes))) yield* Metric.remove(make(s.attributes))
  }
})

const gaugeOf = (family: Family) => (attributes: Readonly<Record<string, string>> | undefined) =>
  Metric.gauge(family.name, { description: family.description, ...(attributes ? { attributes } : {}) })

const counterOf = (family: Family) => (attributes: Readonly<Record<string, string>> | undefined) =>
  Metric.counter(family.name, {
    description: family.description,
    incremental: true,
    ...(attributes ? { attributes } : {})
  })

/** Sets the gauge family to exactly `series`: each series' value, and no other series. */
export const observeGauges = Effect.fnUntraced(function*(family: Family, series: ReadonlyArray<Series>) {
  const make = gaugeOf(family)
  for (const [labels, value] of series) yield* Metric.update(make(labels), value)
  yield* removeOthers(family, new Set(series.map(([labels]) => labelKey(labels))), make)
})

/**
 * Sets the counter family to exactly `series`: for totals the controller keeps itself (they
 * only grow while it runs), read at scrape time rather than pushed on every change.
 */
export const observeCounters = Effect.fnUntraced(function*(family: Family, series: ReadonlyArray<Series>) {
  const make = counterOf(family)
  const context = yield* Effect.context<never>()
  for (const [labels, count] of series) {
    Metric.registerUnsafe(make(labels), context, {
      get: () => ({ count, incremental: true }),
      update: () => {},
      modify: () => {}
    })
  }
  yield* removeOthers(family, new Set(series.map(([labels]) => labelKey(labels))), make)
})

/** Every metric of the context's registry in Prometheus' text exposition format (0.0.4). */
export const format: Effect.Effect<string> = PrometheusMetrics.format()

/** The content type of `format`'s text. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"
