import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, Option, Ref } from "effect"
import { TestClock } from "effect/testing"
import type * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Controller } from "../../src/controller/Controller.js"
import * as Metrics from "../../src/controller/Metrics.js"
import type { ClusterState } from "../../src/kube/ClusterPool.js"
import * as Instruments from "../../src/observability/Metrics.js"

const get = (server: http.Server, path: string) =>
  Effect.promise(() =>
    fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`).then(async (r) => ({
      status: r.status,
      contentType: r.headers.get("content-type"),
      text: await r.text()
    }))
  )

/** Each test its own registry: the process-wide default is shared by every test of a file. */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Metric.MetricRegistry, new Map())

/** The lines of one metric family (its HELP, TYPE and samples). */
const family = (text: string, name: string): Array<string> =>
  text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `) || l.startsWith(`${name}_`) || l.startsWith(`# TYPE ${name} `) || l.startsWith(`# HELP ${name} `))

interface FakeState {
  readonly phases: ReadonlyArray<string>
  readonly depth: number
  readonly podsByCluster: Readonly<Record<string, number>>
  readonly states: ReadonlyMap<string, ClusterState>
  readonly ignored: { readonly pods: number; readonly taskResults: number }
}

/** A controller answering what /metrics reads; anything else dies loudly. */
const fakeController = (state: Ref.Ref<FakeState>): Controller["Service"] => {
  const loud = <T extends object>(name: string, target: T): T =>
    new Proxy(target, {
      get: (t, key) => {
        if (key in t || typeof key === "symbol") return (t as Record<PropertyKey, unknown>)[key]
        throw new Error(`fake ${name}: ${String(key)} is not faked`)
      }
    })
  const view = (name: string) =>
    loud("view", {
      name,
      pods: loud("pods", { list: () => Effect.map(Ref.get(state), (s) => Array.from({ length: s.podsByCluster[name] ?? 0 }, () => ({}))) })
    })
  return loud("controller", {
    workflows: loud("workflows", {
      list: () => Effect.map(Ref.get(state), (s) => s.phases.map((phase) => ({ metadata: {}, status: phase === "" ? {} : { phase } })))
    }),
    queueDepth: Effect.map(Ref.get(state), (s) => s.depth),
    pool: loud("pool", {
      all: Effect.map(Ref.get(state), (s) => Object.keys(s.podsByCluster).map(view)),
      states: Effect.map(Ref.get(state), (s) => s.states)
    }),
    ignored: Effect.map(Ref.get(state), (s) => s.ignored)
  }) as unknown as Controller["Service"]
}

const connected: ClusterState = { _tag: "Connected", since: 0, afterOutage: false }

describe("observability/Metrics", () => {
  it.effect("recorded reconciles and queue activity appear in /metrics as histograms and counters with Argo's names", () =>
    Effect.gen(function*() {
      yield* Instruments.recordReconcile(30, "success")
      yield* Instruments.recordReconcile(7_000, "error")
      yield* Instruments.recordQueueAdd()
      yield* Instruments.recordQueueAdd()
      yield* Instruments.recordQueueLatency(2_500)
      yield* Instruments.recordWorkDuration(150)
      const server = yield* Metrics.serve(Effect.succeed(Option.none()), 0, "127.0.0.1")
      const r = yield* get(server, "/metrics")
      assert.strictEqual(r.status, 200)
      assert.include(r.contentType ?? "", "text/plain; version=0.0.4")
      const text = r.text

      const reconcile = family(text, "flotilla_reconcile_duration_seconds")
      assert.include(reconcile, "# TYPE flotilla_reconcile_duration_seconds histogram")
      assert.include(reconcile, `flotilla_reconcile_duration_seconds_bucket{result="success",le="0.05"} 1`)
      assert.include(reconcile, `flotilla_reconcile_duration_seconds_bucket{result="success",le="0.025"} 0`)
      assert.include(reconcile, `flotilla_reconcile_duration_seconds_bucket{result="error",le="10"} 1`)
      assert.include(reconcile, `flotilla_reconcile_duration_seconds_bucket{result="error",le="+Inf"} 1`)
      assert.include(reconcile, `flotilla_reconcile_duration_seconds_sum{result="error"} 7`)
      assert.include(reconcile, `flotilla_reconcile_duration_seconds_count{result="success"} 1`)

      const operation = family(text, "argo_workflows_operation_duration_seconds")
      assert.include(operation, "# TYPE argo_workflows_operation_duration_seconds histogram")
      assert.include(operation, `argo_workflows_operation_duration_seconds_bucket{le="5"} 1`)
      assert.include(operation, `argo_workflows_operation_duration_seconds_bucket{le="10"} 2`)
      assert.include(operation, `argo_workflows_operation_duration_seconds_count 2`)

      assert.includeMembers(family(text, "argo_workflows_queue_adds_count"), [
        "# TYPE argo_workflows_queue_adds_count counter",
        `argo_workflows_queue_adds_count{queue_name="workflow_queue"} 2`
      ])
      assert.includeMembers(family(text, "argo_workflows_queue_latency"), [
        "# TYPE argo_workflows_queue_latency histogram",
        `argo_workflows_queue_latency_bucket{queue_name="workflow_queue",le="1"} 0`,
        `argo_workflows_queue_latency_bucket{queue_name="workflow_queue",le="5"} 1`,
        `argo_workflows_queue_latency_sum{queue_name="workflow_queue"} 2.5`
      ])
      assert.includeMembers(family(text, "argo_workflows_queue_duration"), [
        "# TYPE argo_workflows_queue_duration histogram",
        `argo_workflows_queue_duration_bucket{queue_name="workflow_queue",le="0.2"} 1`,
        `argo_workflows_queue_duration_count{queue_name="workflow_queue"} 1`
      ])
      assert.include(text, "# TYPE flotilla_leader gauge\nflotilla_leader 0")
      assert.include(text, "argo_workflows_is_leader 0")
      assert.strictEqual((yield* get(server, "/healthz")).status, 404)
    }).pipe(Effect.scoped, isolated))

  it.effect("timeReconcile records the duration by the clock, as success or error, and passes the failure on; timeReconcileBy takes the result from the outcome", () =>
    Effect.gen(function*() {
      yield* Instruments.timeReconcile(TestClock.adjust("200 millis"))
      const failed = yield* Instruments.timeReconcile(Effect.andThen(TestClock.adjust("3 seconds"), Effect.fail("conflict"))).pipe(Effect.flip)
      assert.strictEqual(failed, "conflict")
      const success = yield* Metric.value(Metric.withAttributes(Instruments.reconcileDuration, { result: "success" }))
      const error = yield* Metric.value(Metric.withAttributes(Instruments.reconcileDuration, { result: "error" }))
      assert.strictEqual(success.count, 1)
      assert.closeTo(success.sum, 0.2, 1e-9)
      assert.strictEqual(error.count, 1)
      assert.closeTo(error.sum, 3, 1e-9)

      // A reconcile that reports its outcome is recorded once, under the result it maps to.
      const outcome = yield* Effect.as(TestClock.adjust("1 second"), "retry" as const).pipe(
        Instruments.timeReconcileBy((o) => o === "retry" ? "requeue" : "success")
      )
      assert.strictEqual(outcome, "retry")
      const requeue = yield* Metric.value(Metric.withAttributes(Instruments.reconcileDuration, { result: "requeue" }))
      assert.strictEqual(requeue.count, 1)
      assert.strictEqual((yield* Metric.value(Metric.withAttributes(Instruments.reconcileDuration, { result: "success" }))).count, 1)
      assert.strictEqual((yield* Metric.value(Instruments.operationDuration)).count, 3)
    }).pipe(isolated))

  it.effect("the leader's observed state: gauges set on each scrape, a cluster's former state removed, totals as counters; a standby shows none of it", () =>
    Effect.gen(function*() {
      const state = yield* Ref.make<FakeState>({
        phases: ["Running", "Succeeded", "Succeeded", ""],
        depth: 3,
        podsByCluster: { main: 2, "cluster-1": 1 },
        states: new Map([["main", connected], ["cluster-1", connected]]),
        ignored: { pods: 2, taskResults: 0 }
      })
      const controller = fakeController(state)
      const leading = yield* Ref.make(Option.some(controller))
      const server = yield* Metrics.serve(Ref.get(leading), 0, "127.0.0.1")

      const first = (yield* get(server, "/metrics")).text
      assert.includeMembers(family(first, "argo_workflows_gauge"), [
        "# HELP argo_workflows_gauge Number of workflows currently accessible by the controller by status",
        "# TYPE argo_workflows_gauge gauge",
        `argo_workflows_gauge{phase="Pending"} 1`,
        `argo_workflows_gauge{phase="Running"} 1`,
        `argo_workflows_gauge{phase="Succeeded"} 2`,
        `argo_workflows_gauge{phase="Failed"} 0`,
        `argo_workflows_gauge{phase="Error"} 0`
      ])
      assert.include(first, `argo_workflows_queue_depth_gauge{queue_name="workflow_queue"} 3`)
      assert.include(first, "# TYPE argo_workflows_pods_gauge gauge\nargo_workflows_pods_gauge 3")
      assert.includeMembers(family(first, "flotilla_cluster_connected"), [
        `flotilla_cluster_connected{cluster="main",state="Connected"} 1`,
        `flotilla_cluster_connected{cluster="cluster-1",state="Connected"} 1`
      ])
      assert.includeMembers(family(first, "flotilla_ignored_objects_total"), [
        "# TYPE flotilla_ignored_objects_total counter",
        `flotilla_ignored_objects_total{kind="pod"} 2`,
        `flotilla_ignored_objects_total{kind="taskresult"} 0`
      ])
      assert.include(first, "flotilla_leader 1")
      assert.include(first, "argo_workflows_is_leader 1")
      // The recorded instruments are there at zero before the first reconcile.
      assert.include(first, `flotilla_reconcile_duration_seconds_count{result="success"} 0`)
      assert.include(first, `argo_workflows_queue_adds_count{queue_name="workflow_queue"} 0`)

      yield* Ref.update(state, (s) => ({
        ...s,
        phases: ["Succeeded", "Succeeded", "Succeeded"],
        depth: 0,
        states: new Map<string, ClusterState>([["main", connected], ["cluster-1", { _tag: "Retrying", attempt: 2, lastError: "x", reason: "Unavailable" }]]),
        ignored: { pods: 3, taskResults: 1 }
      }))
      const second = (yield* get(server, "/metrics")).text
      assert.include(second, `argo_workflows_gauge{phase="Succeeded"} 3`)
      assert.include(second, `argo_workflows_gauge{phase="Pending"} 0`)
      assert.include(second, `argo_workflows_queue_depth_gauge{queue_name="workflow_queue"} 0`)
      // One series per cluster, with its current state: the former one is gone, not left at 1.
      assert.sameMembers(family(second, "flotilla_cluster_connected").filter((l) => !l.startsWith("#")), [
        `flotilla_cluster_connected{cluster="main",state="Connected"} 1`,
        `flotilla_cluster_connected{cluster="cluster-1",state="Retrying"} 0`
      ])
      assert.include(second, `flotilla_ignored_objects_total{kind="pod"} 3`)
      assert.include(second, `flotilla_ignored_objects_total{kind="taskresult"} 1`)
      // Every family once: one HELP and one TYPE line each.
      const types = second.split("\n").filter((l) => l.startsWith("# TYPE "))
      assert.strictEqual(new Set(types).size, types.length)

      yield* Ref.set(leading, Option.none())
      const standby = (yield* get(server, "/metrics")).text
      assert.include(standby, "flotilla_leader 0")
      for (const name of ["argo_workflows_gauge", "argo_workflows_queue_depth_gauge", "argo_workflows_pods_gauge", "flotilla_cluster_connected", "flotilla_ignored_objects_total"]) {
        assert.deepStrictEqual(family(standby, name).filter((l) => !l.startsWith("#")), [], name)
      }
    }).pipe(Effect.scoped, isolated))

  it.effect("handlers run in the caller's runtime: /metrics reads the registry of the fibre that served it", () =>
    Effect.gen(function*() {
      const mine = new Map()
      const server = yield* Metrics.serve(Effect.succeed(Option.none()), 0, "127.0.0.1").pipe(
        Effect.provideService(Metric.MetricRegistry, mine)
      )
      yield* Instruments.recordQueueAdd().pipe(Effect.provideService(Metric.MetricRegistry, mine))
      yield* Instruments.recordQueueAdd("elsewhere") // another registry: not served
      const text = (yield* get(server, "/metrics")).text
      assert.include(text, `argo_workflows_queue_adds_count{queue_name="workflow_queue"} 1`)
      assert.notInclude(text, "elsewhere")
    }).pipe(Effect.scoped, isolated))
})
