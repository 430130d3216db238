/**
 * Prometheus metrics on :9090/metrics with Argo's names (`argo_workflows_`
 * prefix, argo-compat.md §2.8) for what flotilla tracks, plus the per-cluster
 * connection state that is flotilla's own (`flotilla_cluster_*`), so an
 * unreachable remote cluster shows in dashboards as well as in logs and node
 * messages. Text exposition format; no client library needed.
 */
import { Effect, Option, Scope } from "effect"
import type * as http from "node:http"
import type { Controller } from "./Controller.js"
import * as HttpEndpoint from "./HttpEndpoint.js"

const phases = ["Pending", "Running", "Succeeded", "Failed", "Error"] as const

const escape = (v: string): string => v.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** Renders the metrics text; exported for tests. */
export const render = (controller: Controller["Service"]): Effect.Effect<string> =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const workflows = yield* controller.workflows.list()
    const byPhase = new Map<string, number>(phases.map((p) => [p, 0]))
    for (const wf of workflows) {
      const phase = ((wf["status"] as { phase?: string } | undefined)?.phase) || "Pending"
      byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1)
    }
    lines.push("# HELP argo_workflows_gauge Number of workflows currently accessible by the controller by status")
    lines.push("# TYPE argo_workflows_gauge gauge")
    for (const [phase, n] of byPhase) lines.push(`argo_workflows_gauge{phase="${escape(phase)}"} ${n}`)
    lines.push("# HELP argo_workflows_queue_depth_gauge Depth of the queue")
    lines.push("# TYPE argo_workflows_queue_depth_gauge gauge")
    lines.push(`argo_workflows_queue_depth_gauge{queue_name="workflow_queue"} ${yield* controller.queueDepth}`)
    const views = yield* controller.pool.all
    let pods = 0
    for (const view of views) pods += (yield* view.pods.list()).length
    lines.push("# HELP argo_workflows_pods_gauge Number of workflow pods watched, in every cluster")
    lines.push("# TYPE argo_workflows_pods_gauge gauge")
    lines.push(`argo_workflows_pods_gauge ${pods}`)
    const states = yield* controller.pool.states
    lines.push("# HELP flotilla_cluster_connected 1 when the cluster's watches are connected")
    lines.push("# TYPE flotilla_cluster_connected gauge")
    for (const [cluster, state] of states) lines.push(`flotilla_cluster_connected{cluster="${escape(cluster)}",state="${state._tag}"} ${state._tag === "Connected" ? 1 : 0}`)
    const ignored = yield* controller.ignored
    lines.push("# HELP flotilla_ignored_objects_total Pods and task results that claimed a workflow's node but were not the ones the controller created for it")
    lines.push("# TYPE flotilla_ignored_objects_total counter")
    lines.push(`flotilla_ignored_objects_total{kind="pod"} ${ignored.pods}`)
    lines.push(`flotilla_ignored_objects_total{kind="taskresult"} ${ignored.taskResults}`)
    return lines.join("\n") + "\n"
  })

const leaderGauge = (leader: boolean) =>
  `# HELP flotilla_leader 1 on the replica holding the leader lease\n# TYPE flotilla_leader gauge\nflotilla_leader ${leader ? 1 : 0}\n`

export const serve = (
  /** The leader's controller; none while this replica waits for the lease. */
  leading: Effect.Effect<Option.Option<Controller["Service"]>>,
  port: number,
  host?: string
): Effect.Effect<http.Server, Error, Scope.Scope> =>
  HttpEndpoint.serve(
    port,
    "/metrics",
    Effect.flatMap(leading, (controller) =>
      Option.match(controller, {
        onNone: () => Effect.succeed(leaderGauge(false)),
        onSome: (c) => Effect.map(render(c), (text) => text + leaderGauge(true))
      })).pipe(Effect.map((body) => ({ status: 200, contentType: "text/plain; version=0.0.4", body }))),
    host
  )
