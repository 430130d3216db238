/**
 * `/healthz` on :6060 like Argo's controller, answering with each cluster's
 * connection state so an operator (or a probe) can see which remote cluster is
 * connected, retrying (with its last error) or failed. 200 while the local
 * cluster is connected; a remote cluster being down does not make the
 * controller unhealthy (its other clusters still work).
 */
import { Effect, Scope } from "effect"
import * as http from "node:http"
import type { ClusterPool } from "../kube/ClusterPool.js"

export const serve = (pool: ClusterPool["Service"], port: number): Effect.Effect<http.Server, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<http.Server, Error>((resume) => {
      const server = http.createServer((req, res) => {
        if (req.url !== "/healthz") {
          res.writeHead(404).end()
          return
        }
        Effect.runPromise(pool.states).then((states) => {
          const clusters = Object.fromEntries(states)
          const local = states.get(pool.localCluster)
          const ok = local?._tag === "Connected"
          res.writeHead(ok ? 200 : 503, { "content-type": "application/json" })
          res.end(JSON.stringify({ ok, localCluster: pool.localCluster, clusters }))
        }, () => res.writeHead(500).end())
      })
      server.once("error", (e) => resume(Effect.fail(e)))
      server.listen(port, "0.0.0.0", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
      server.closeAllConnections()
    })
  )
