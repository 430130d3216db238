import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { TestClock } from "effect/testing"
import * as CustomMetrics from "../../src/observability/CustomMetrics.js"
import * as Instruments from "../../src/observability/Metrics.js"
import type { MetricEmission } from "../../src/workflow/engine/contract.js"

/** A registry of its own, so that tests in one process keep their numbers apart. */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Metric.MetricRegistry, new Map())

const lines = (text: string, prefix: string) => text.split("\n").filter((l) => l.startsWith(prefix))

describe("custom metrics on /metrics", () => {
  it.effect("counters, gauges and histograms appear with Argo's prefix, help text and labels", () =>
    isolated(Effect.gen(function*() {
      const counter = { name: "result_counter", help: "Count of step execution by result status", labels: { name: "flakey", status: "Failed" }, kind: "counter" as const, value: 1 }
      yield* CustomMetrics.recordAll([counter, counter, { ...counter, labels: { name: "flakey", status: "Succeeded" } }])
      yield* CustomMetrics.recordAll([
        { name: "g", help: "A gauge", labels: {}, kind: "gauge", value: 5 },
        { name: "g", help: "A gauge", labels: {}, kind: "gauge", value: 2, operation: "Sub" },
        { name: "random_int_step_histogram", help: "Value of the int", labels: {}, kind: "histogram", value: 3, buckets: [2.01, 4.01] }
      ])
      const text = yield* Instruments.format
      assert.include(text, "# HELP argo_workflows_result_counter Count of step execution by result status")
      assert.include(text, "# TYPE argo_workflows_result_counter counter")
      assert.include(text, `argo_workflows_result_counter{name="flakey",status="Failed"} 2`)
      assert.include(text, `argo_workflows_result_counter{name="flakey",status="Succeeded"} 1`)
      assert.deepStrictEqual(lines(text, "argo_workflows_g "), ["argo_workflows_g 3"])
      assert.include(text, `argo_workflows_random_int_step_histogram_bucket{le="2.01"} 0`)
      assert.include(text, `argo_workflows_random_int_step_histogram_bucket{le="4.01"} 1`)
      assert.include(text, "argo_workflows_random_int_step_histogram_count 1")
    })))

  it.effect("a realtime gauge is the seconds since its start when scraped, fixed once finished", () =>
    isolated(Effect.gen(function*() {
      yield* TestClock.setTime(10_000)
      yield* CustomMetrics.record({ name: "duration_gauge", help: "Duration gauge by name", labels: { name: "steps" }, kind: "gauge", realtime: { startedAt: 10_000 } })
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(lines(yield* Instruments.format, "argo_workflows_duration_gauge{"), [`argo_workflows_duration_gauge{name="steps"} 30`])
      yield* CustomMetrics.record({ name: "duration_gauge", help: "Duration gauge by name", labels: { name: "steps" }, kind: "gauge", realtime: { startedAt: 10_000, finishedAt: 55_000 } })
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(lines(yield* Instruments.format, "argo_workflows_duration_gauge{"), [`argo_workflows_duration_gauge{name="steps"} 45`])
    })))

  it.effect("a name keeps its first help and type: a changed one is not recorded", () =>
    isolated(Effect.gen(function*() {
      yield* CustomMetrics.record({ name: "m", help: "first", labels: {}, kind: "counter", value: 1 })
      yield* CustomMetrics.record({ name: "m", help: "second", labels: {}, kind: "counter", value: 1 })
      yield* CustomMetrics.record({ name: "m", help: "first", labels: {}, kind: "gauge", value: 7 })
      const text = yield* Instruments.format
      assert.deepStrictEqual(lines(text, "argo_workflows_m "), ["argo_workflows_m 1"])
      assert.notInclude(text, "second")
    })))

  it.effect("metricsTTL: a series not updated for longer than the TTL leaves /metrics; histograms and counting realtime gauges stay", () =>
    isolated(Effect.gen(function*() {
      const ttl = "10 minutes"
      yield* Effect.forkScoped(CustomMetrics.expireEvery(ttl))
      yield* Effect.yieldNow
      const counter = (name: string) => ({ name: "runs", help: "Runs", labels: { name }, kind: "counter" as const, value: 1 })
      yield* CustomMetrics.recordAll([
        counter("finished"),
        counter("busy"),
        { name: "g", help: "A gauge", labels: { wf: "old" }, kind: "gauge", value: 4 },
        { name: "h", help: "A histogram", labels: {}, kind: "histogram", value: 3, buckets: [5] },
        { name: "rt", help: "Realtime", labels: { node: "running" }, kind: "gauge", realtime: { startedAt: 0 } },
        { name: "rt", help: "Realtime", labels: { node: "done" }, kind: "gauge", realtime: { startedAt: 0, finishedAt: 1000 } }
      ])
      const text0 = yield* Instruments.format
      assert.include(text0, `argo_workflows_runs{name="finished"} 1`)
      assert.include(text0, `argo_workflows_g{wf="old"} 4`)
      assert.include(text0, `argo_workflows_rt{node="done"} 1`)

      // one TTL on: the first sweep finds nothing older than the TTL
      yield* TestClock.adjust("10 minutes")
      assert.include(yield* Instruments.format, `argo_workflows_runs{name="finished"} 1`)
      yield* TestClock.adjust("5 minutes")
      yield* CustomMetrics.record(counter("busy"))

      // the next sweep (20 minutes in): what was not updated since the start is gone
      yield* TestClock.adjust("5 minutes")
      const text = yield* Instruments.format
      assert.notInclude(text, `argo_workflows_runs{name="finished"}`)
      assert.notInclude(text, `argo_workflows_g{wf="old"}`)
      assert.notInclude(text, `argo_workflows_rt{node="done"}`)
      // updated 5 minutes ago: not yet
      assert.include(text, `argo_workflows_runs{name="busy"} 2`)
      // histograms are never dropped; a realtime gauge still counting is not either
      assert.include(text, "argo_workflows_h_count 1")
      assert.deepStrictEqual(lines(text, "argo_workflows_rt{"), [`argo_workflows_rt{node="running"} 1200`])

      yield* TestClock.adjust("10 minutes")
      assert.notInclude(yield* Instruments.format, `argo_workflows_runs{name="busy"}`)
      // recorded again, a dropped series starts afresh
      yield* CustomMetrics.record(counter("finished"))
      assert.include(yield* Instruments.format, `argo_workflows_runs{name="finished"} 1`)
    })))

  it.effect("metricsTTL 0 (the default): nothing is ever dropped", () =>
    isolated(Effect.gen(function*() {
      yield* Effect.forkScoped(CustomMetrics.expireEvery(0))
      yield* CustomMetrics.record({ name: "c", help: "C", labels: {}, kind: "counter", value: 1 })
      yield* TestClock.adjust("30 days")
      assert.include(yield* Instruments.format, "argo_workflows_c 1")
    })))

  const emissions: ReadonlyArray<MetricEmission> = [
    { name: "c", help: "C", labels: { wf: "a" }, kind: "counter", value: 1 },
    { name: "g", help: "G", labels: {}, kind: "gauge", value: 2 },
    { name: "h", help: "H", labels: { wf: "a" }, kind: "histogram", value: 3, buckets: [5] },
    { name: "rt", help: "RT", labels: { node: "running" }, kind: "gauge", realtime: { startedAt: 0 } }
  ]

  it.effect("nothing is tracked for expiry without a TTL; with one, never a histogram or a realtime gauge still counting", () =>
    isolated(Effect.gen(function*() {
      // TTL 0 (the default): no series map grows, however many series are recorded
      yield* Effect.forkScoped(CustomMetrics.expireEvery(0))
      yield* CustomMetrics.recordAll(emissions)
      for (let i = 0; i < 100; i++) yield* CustomMetrics.record({ name: "h", help: "H", labels: { wf: `w${i}` }, kind: "histogram", value: i, buckets: [5] })
      assert.strictEqual(yield* CustomMetrics.trackedSeries, 0)
    }).pipe(Effect.andThen(isolated(Effect.gen(function*() {
      yield* Effect.forkScoped(CustomMetrics.expireEvery("10 minutes"))
      yield* Effect.yieldNow
      yield* CustomMetrics.recordAll(emissions)
      for (let i = 0; i < 100; i++) yield* CustomMetrics.record({ name: "h", help: "H", labels: { wf: `w${i}` }, kind: "histogram", value: i, buckets: [5] })
      // the counter and the gauge only
      assert.strictEqual(yield* CustomMetrics.trackedSeries, 2)
      // the realtime gauge finishes: now it may expire
      yield* CustomMetrics.record({ name: "rt", help: "RT", labels: { node: "running" }, kind: "gauge", realtime: { startedAt: 0, finishedAt: 1000 } })
      assert.strictEqual(yield* CustomMetrics.trackedSeries, 3)
      yield* TestClock.adjust("20 minutes")
      assert.strictEqual(yield* CustomMetrics.trackedSeries, 0)
      assert.include(yield* Instruments.format, `argo_workflows_h_count{wf="w99"} 1`)
    }))))))
})
