/**
 * `/healthz` and `/readyz` on :6060, like Argo's controller port.
 *
 * Both are unauthenticated (probes call them), so they answer with states and
 * names only: each cluster's connection state (`Connected`, `Connecting`,
 * `Retrying`, `Failed`), each supervised component's (`Running`,
 * `Restarting`). The errors behind a state (RBAC messages, identities, server
 * addresses, a component's cause) are in the controller's log and in the
 * workflows' messages, never here.
 *
 * `/healthz` (liveness): 200 while the local cluster is connected; a remote
 * cluster being down does not make the controller unhealthy (its other clusters
 * still work).
 *
 * `/readyz` (readiness): on the leader, 200 when its local cluster is connected
 * and every supervised component (runtime/Supervisor.ts) runs; 503 while one
 * is restarting after a failure or the local cluster is not connected.
 *
 * A replica waiting for the leader lease answers 200 on both, with
 * `leader: false`. That is what client-go leader-elected controllers do
 * (kube-controller-manager, controller-runtime managers: leader election
 * decides who acts, the health and readiness checks say whether the process
 * works), and Argo's /healthz answers 200 on a standby. A standby answering 503
 * on /readyz would be harmful: a Deployment's rolling update waits for the new
 * pod to be Ready before it stops the old one, which holds the lease, so the
 * new pod could never become Ready and the rollout would stall; disruption
 * budgets would count every standby as unavailable. Who leads is in the body,
 * and in /metrics (`flotilla_leader`, `argo_workflows_is_leader`). Liveness
 * probes must not restart a standby either.
 */
import { Effect, Option, Scope } from "effect"
import type { ServeError } from "effect/http/HttpServerError"
import type * as http from "node:http"
import type { ClusterPool } from "../kube/ClusterPool.js"
import type { Supervisor } from "../runtime/Supervisor.js"
import * as HttpEndpoint from "./HttpEndpoint.js"

const json = (status: number, body: unknown): HttpEndpoint.Response => ({
  status,
  contentType: "application/json",
  body: JSON.stringify(body)
})

const standby = json(200, { ok: true, leader: false })

const clusterStates = (pool: ClusterPool["Service"]) =>
  Effect.map(pool.states, (states) => ({
    localConnected: states.get(pool.localCluster)?._tag === "Connected",
    clusters: Object.fromEntries([...states].map(([name, state]) => [name, state._tag]))
  }))

/** The /healthz answer. */
export const healthz = (leading: Effect.Effect<Option.Option<ClusterPool["Service"]>>): Effect.Effect<HttpEndpoint.Response> =>
  Effect.gen(function*() {
    const pool = yield* leading
    if (Option.isNone(pool)) return standby
    const { clusters, localConnected } = yield* clusterStates(pool.value)
    return json(localConnected ? 200 : 503, { ok: localConnected, leader: true, localCluster: pool.value.localCluster, clusters })
  })

/** The /readyz answer. */
export const readyz = (
  leading: Effect.Effect<Option.Option<ClusterPool["Service"]>>,
  supervisor: Effect.Effect<Option.Option<Supervisor["Service"]>> = Effect.succeedNone
): Effect.Effect<HttpEndpoint.Response> =>
  Effect.gen(function*() {
    const pool = yield* leading
    if (Option.isNone(pool)) return standby
    const { clusters, localConnected } = yield* clusterStates(pool.value)
    const components = yield* (yield* supervisor).pipe(
      Option.match({
        onNone: () => Effect.succeed(new Map()),
        onSome: (s) => s.states
      })
    )
    // State tags only: a restarting component's `error` is exactly what must not leave the log.
    const componentStates = Object.fromEntries([...components].map(([name, state]) => [name, state._tag as string]))
    const ready = localConnected && Object.values(componentStates).every((tag) => tag === "Running")
    return json(ready ? 200 : 503, {
      ok: ready,
      leader: true,
      localCluster: pool.value.localCluster,
      clusters,
      components: componentStates
    })
  })

export const serve = (
  /** The leader's cluster pool; none while this replica waits for the lease. */
  leading: Effect.Effect<Option.Option<ClusterPool["Service"]>>,
  port: number,
  host?: string,
  /**
   * The supervisor of the leader's long-running components, for /readyz; none (or left out)
   * when nothing is supervised yet.
   */
  supervisor?: Effect.Effect<Option.Option<Supervisor["Service"]>>
): Effect.Effect<http.Server, ServeError, Scope.Scope> =>
  HttpEndpoint.serve(port, { "/healthz": healthz(leading), "/readyz": readyz(leading, supervisor) }, host)
