/**
 * Workflows' custom Prometheus metrics (`metrics.prometheus`, Argo's docs/metrics.md "Custom
 * metrics"), recorded into the context's `Metric.MetricRegistry` and so exposed on the
 * controller's /metrics with the rest (observability/Metrics.ts `format`). The engine decides what
 * to emit (workflow/engine/metrics.ts); this records it as upstream's workflow/metrics/metrics_custom.go:
 *
 * - name `argo_workflows_<name>` (upstream's telemetry prefix), help text as written;
 * - a gauge is set (or raised / lowered with `operation: Add|Sub`), a counter adds the value, a
 *   histogram observes it in the metric's buckets;
 * - a realtime gauge is the seconds since its node (or workflow) started, read when scraped, fixed
 *   once it finished;
 * - one name keeps its first help and type: a metric that would change them is refused with
 *   upstream's message, logged.
 *
 * - `metricsConfig.metricsTTL` (the controller configmap, upstream's `MetricsTTL`; default 0: never):
 *   every TTL, the series not updated for longer than the TTL are dropped (`expireEvery`, upstream's
 *   `customMetricsGC` / `runCustomGC`), so the series of finished workflows do not pile up. As
 *   upstream: histograms are never dropped; a realtime gauge only once it is fixed (its node or
 *   workflow finished), never while it still counts. A series recorded again later starts afresh.
 */
import { Clock, Duration, Effect, Metric } from "effect"
import type { MetricEmission } from "../workflow/engine/contract.js"

/** Upstream's telemetry prefix for every instrument. */
export const customPrefix = "argo_workflows_"

type Kind = "gauge" | "counter" | "histogram"
/** Per registry: each custom name's type and help, as first recorded. */
const declared = new WeakMap<object, Map<string, { readonly kind: Kind; readonly help: string }>>()

const options = (e: MetricEmission) => ({
  description: e.help,
  ...(Object.keys(e.labels).length > 0 ? { attributes: e.labels } : {})
})

/** Why the emission cannot be recorded under its name (upstream's `matchExistingMetric`), or undefined. */
const conflict = (registry: object, e: MetricEmission): string | undefined => {
  let names = declared.get(registry)
  if (names === undefined) declared.set(registry, names = new Map())
  const kind: Kind = e.realtime !== undefined ? "gauge" : e.kind
  const known = names.get(e.name)
  if (known === undefined) {
    names.set(e.name, { kind, help: e.help })
    return undefined
  }
  if (known.help !== e.help) return `help for metric ${e.name} is already set to ${known.help}, it cannot be changed`
  if (known.kind !== kind) return `found existing ${known.kind} for custom metric ${e.name} of type ${kind}`
  return undefined
}

/** One series that may expire, as last recorded: when, and how to drop it. */
interface SeriesEntry {
  readonly lastUpdated: number
  readonly drop: Metric.Metric<any, any>
}
/**
 * Per registry whose series expire (a TTL above 0 runs `expireEvery` on it): each custom series
 * (name and labels) that may be dropped, as last recorded. Nothing is tracked for a registry
 * without a TTL (the default), nor ever a histogram or a realtime gauge still counting.
 */
const seriesOf = new WeakMap<object, Map<string, SeriesEntry>>()

/** How many series of the context's registry are tracked for expiry (for tests). */
export const trackedSeries: Effect.Effect<number> = Effect.gen(function*() {
  return seriesOf.get(yield* Metric.MetricRegistry)?.size ?? 0
})

const seriesKey = (name: string, labels: Readonly<Record<string, string>>): string =>
  JSON.stringify([name, Object.entries(labels).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)])

/** Records one emission; a refused one is logged (upstream reports it as a MetricsError condition). */
export const record = Effect.fnUntraced(function*(e: MetricEmission) {
  const registry = yield* Metric.MetricRegistry
  const why = conflict(registry, e)
  if (why !== undefined) {
    return yield* Effect.logWarning("custom metric not recorded").pipe(Effect.annotateLogs({ metric: e.name, error: `could not construct metric '${e.name}': ${why}` }))
  }
  const name = customPrefix + e.name
  const now = yield* Clock.currentTimeMillis
  const series = seriesOf.get(registry)
  /** Tracks the series for expiry (only when a TTL applies); `undefined`: it never expires, forget it. */
  const touch = (drop: Metric.Metric<any, any> | undefined) => {
    if (series === undefined) return
    const key = seriesKey(name, e.labels)
    if (drop === undefined) series.delete(key)
    else series.set(key, { lastUpdated: now, drop })
  }
  if (e.realtime !== undefined) {
    const { startedAt, finishedAt } = e.realtime
    const clock = yield* Clock.clockWith(Effect.succeed)
    const context = yield* Effect.context<never>()
    const gauge = Metric.gauge(name, options(e))
    Metric.registerUnsafe(gauge, context, {
      get: () => ({ value: Math.max(0, ((finishedAt ?? clock.currentTimeMillisUnsafe()) - startedAt) / 1000) }),
      update: () => {},
      modify: () => {}
    })
    return touch(finishedAt === undefined ? undefined : gauge)
  }
  const value = e.value ?? 0
  if (e.kind === "counter") {
    const counter = Metric.counter(name, { ...options(e), incremental: true })
    touch(counter)
    return yield* Metric.update(counter, value)
  }
  if (e.kind === "histogram") {
    return yield* Metric.update(Metric.histogram(name, { ...options(e), boundaries: e.buckets ?? [] }), value)
  }
  const gauge = Metric.gauge(name, options(e))
  touch(gauge)
  if (e.operation === "Add") return yield* Metric.modify(gauge, value)
  if (e.operation === "Sub") return yield* Metric.modify(gauge, -value)
  return yield* Metric.update(gauge, value)
})

/** Drops the custom series of the context's registry not updated for longer than `ttl` (upstream's `runCustomGC`). */
export const expire = Effect.fnUntraced(function*(ttl: Duration.Input) {
  const ttlMs = Duration.toMillis(Duration.fromInputUnsafe(ttl))
  const series = seriesOf.get(yield* Metric.MetricRegistry)
  if (series === undefined) return
  const now = yield* Clock.currentTimeMillis
  for (const [key, entry] of series) {
    if (now - entry.lastUpdated <= ttlMs) continue
    series.delete(key)
    yield* Metric.remove(entry.drop)
  }
})

/**
 * Every `ttl`, drops what `expire` drops; runs until interrupted (fork it in the controller's
 * scope). A TTL of 0 (the default) never drops anything, as upstream.
 */
export const expireEvery = (ttl: Duration.Input): Effect.Effect<void> =>
  Duration.toMillis(Duration.fromInputUnsafe(ttl)) <= 0
    ? Effect.void
    : Effect.gen(function*() {
      // from now on the registry's series are tracked (until this stops)
      const registry = yield* Metric.MetricRegistry
      if (!seriesOf.has(registry)) seriesOf.set(registry, new Map())
      return yield* Effect.forever(Effect.andThen(Effect.sleep(ttl), expire(ttl))).pipe(
        Effect.ensuring(Effect.sync(() => void seriesOf.delete(registry)))
      )
    })

/** Records a reconcile's emissions, in order. */
export const recordAll = (emissions: ReadonlyArray<MetricEmission>): Effect.Effect<void> =>
  Effect.forEach(emissions, record, { discard: true })
