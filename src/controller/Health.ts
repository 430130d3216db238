/**
 * `/healthz` on :6060 like Argo's controller, answering with each cluster's
 * connection state (`Connected`, `Connecting`, `Retrying`, `Failed`) so an
 * operator (or a probe) can see which remote cluster is down. The endpoint is
 * unauthenticated (probes call it), so it says no more than that: the errors
 * behind a state (RBAC messages, identities, server addresses) are in the
 * controller's log and in the workflows' messages, never here. 200 while the local
 * cluster is connected; a remote cluster being down does not make the
 * controller unhealthy (its other clusters still work). A replica waiting for
 * the leader lease answers 200 with `leader: false`: it is alive and ready to
 * take over (liveness probes must not restart a standby).
 */
import { Effect, Option, Scope } from "effect"
import type * as http from "node:http"
import type { ClusterPool } from "../kube/ClusterPool.js"
import * as HttpEndpoint from "./HttpEndpoint.js"

export const serve = (
  /** The leader's cluster pool; none while this replica waits for the lease. */
  leading: Effect.Effect<Option.Option<ClusterPool["Service"]>>,
  port: number,
  host?: string
): Effect.Effect<http.Server, Error, Scope.Scope> =>
  HttpEndpoint.serve(
    port,
    "/healthz",
    Effect.gen(function*() {
      const pool = yield* leading
      if (Option.isNone(pool)) {
        return { status: 200, contentType: "application/json", body: JSON.stringify({ ok: true, leader: false }) }
      }
      const states = yield* pool.value.states
      const ok = states.get(pool.value.localCluster)?._tag === "Connected"
      return {
        status: ok ? 200 : 503,
        contentType: "application/json",
        body: JSON.stringify({
          ok,
          leader: true,
          localCluster: pool.value.localCluster,
          clusters: Object.fromEntries([...states].map(([name, state]) => [name, state._tag]))
        })
      }
    }),
    host
  )
