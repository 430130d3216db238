/**
 * Prometheus metrics on :9090/metrics with Argo's names (`argo_workflows_`
 * prefix, argo-compat.md §2.8) for what flotilla tracks, plus the per-cluster
 * connection state that is flotilla's own (`flotilla_cluster_*`), so an
 * unreachable remote cluster shows in dashboards as well as in logs and node
 * messages. The instruments and their labels are in observability/Metrics.ts;
 * this module sets the ones read from the controller's state on each scrape
 * and serves the whole registry in the text exposition format.
 *
 * A replica waiting for the leader lease exposes `flotilla_leader 0` (and
 * `argo_workflows_is_leader 0`) and none of the leader's gauges.
 */
import { Effect, Option, Scope } from "effect"
import type { ServeError } from "effect/http/HttpServerError"
import type * as http from "node:http"
import * as Instruments from "../observability/Metrics.js"
import type { Controller } from "./Controller.js"
import * as HttpEndpoint from "./HttpEndpoint.js"

const phases = ["Pending", "Running", "Succeeded", "Failed", "Error"] as const

/** Sets the metrics read from `controller` (none while this replica does not lead) and the leader gauges. */
export const observe = (controller: Option.Option<Controller["Service"]>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const leads = Option.isSome(controller)
    yield* Instruments.observeGauges(Instruments.leader, [[{}, leads ? 1 : 0]])
    yield* Instruments.observeGauges(Instruments.isLeader, [[{}, leads ? 1 : 0]])
    if (Option.isNone(controller)) {
      for (const family of [Instruments.workflowsByPhase, Instruments.queueDepth, Instruments.pods, Instruments.clusterConnected]) {
        yield* Instruments.observeGauges(family, [])
      }
      yield* Instruments.observeCounters(Instruments.ignoredObjects, [])
      return
    }
    const c = controller.value
    const byPhase = new Map<string, number>(phases.map((p) => [p, 0]))
    for (const wf of yield* c.workflows.list()) {
      const phase = ((wf["status"] as { phase?: string } | undefined)?.phase) || "Pending"
      byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1)
    }
    yield* Instruments.observeGauges(Instruments.workflowsByPhase, [...byPhase].map(([phase, n]) => [{ phase }, n]))
    yield* Instruments.observeGauges(Instruments.queueDepth, [[{ queue_name: Instruments.workflowQueue }, yield* c.queueDepth]])
    let pods = 0
    for (const view of yield* c.pool.all) pods += (yield* view.pods.list()).length
    yield* Instruments.observeGauges(Instruments.pods, [[{}, pods]])
    const states = yield* c.pool.states
    yield* Instruments.observeGauges(
      Instruments.clusterConnected,
      [...states].map(([cluster, state]) => [{ cluster, state: state._tag }, state._tag === "Connected" ? 1 : 0])
    )
    const ignored = yield* c.ignored
    yield* Instruments.observeCounters(Instruments.ignoredObjects, [[{ kind: "pod" }, ignored.pods], [{ kind: "taskresult" }, ignored.taskResults]])
    yield* Instruments.registerRecorded
  })

/**
 * The metrics text of a replica leading with `controller`: its observed state and everything
 * recorded into the context's registry. Exported for tests.
 */
export const render = (controller: Controller["Service"]): Effect.Effect<string> =>
  Effect.andThen(observe(Option.some(controller)), Instruments.format)

export const serve = (
  /** The leader's controller; none while this replica waits for the lease. */
  leading: Effect.Effect<Option.Option<Controller["Service"]>>,
  port: number,
  host?: string
): Effect.Effect<http.Server, ServeError, Scope.Scope> =>
  HttpEndpoint.serve(port, {
    "/metrics": leading.pipe(
      Effect.flatMap(observe),
      Effect.andThen(Instruments.format),
      Effect.map((body) => ({ status: 200, contentType: Instruments.contentType, body }))
    )
  }, host)
