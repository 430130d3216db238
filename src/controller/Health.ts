/**
 * `/healthz` on :6060 like Argo's controller, answering with each cluster's
 * connection state so an operator (or a probe) can see which remote cluster is
 * connected, retrying (with its last error) or failed. 200 while the local
 * cluster is connected; a remote cluster being down does not make the
 * controller unhealthy (its other clusters still work).
 */
import { Effect, Scope } from "effect"
import type * as http from "node:http"
import type { ClusterPool } from "../kube/ClusterPool.js"
import * as HttpEndpoint from "./HttpEndpoint.js"

export const serve = (pool: ClusterPool["Service"], port: number): Effect.Effect<http.Server, Error, Scope.Scope> =>
  HttpEndpoint.serve(
    port,
    "/healthz",
    Effect.map(pool.states, (states) => {
      const ok = states.get(pool.localCluster)?._tag === "Connected"
      return {
        status: ok ? 200 : 503,
        contentType: "application/json",
        body: JSON.stringify({ ok, localCluster: pool.localCluster, clusters: Object.fromEntries(states) })
      }
    })
  )
