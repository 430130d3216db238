/**
 * One small HTTP endpoint as a scoped resource (listening while the scope is
 * open), for /healthz and /metrics. Anything but `path` answers 404.
 */
import { Effect, Scope } from "effect"
import * as http from "node:http"

export interface Response {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

export const serve = (
  port: number,
  path: string,
  respond: Effect.Effect<Response>,
  /** The address to listen on; all interfaces by default. */
  host = "0.0.0.0"
): Effect.Effect<http.Server, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<http.Server, Error>((resume) => {
      const server = http.createServer((req, res) => {
        if (req.url !== path) {
          res.writeHead(404).end()
          return
        }
        Effect.runPromise(respond).then((r) => {
          res.writeHead(r.status, { "content-type": r.contentType })
          res.end(r.body)
        }, () => res.writeHead(500).end())
      })
      server.once("error", (e) => resume(Effect.fail(e)))
      server.listen(port, host, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )
