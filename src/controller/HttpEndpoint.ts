/**
 * A small HTTP endpoint (/healthz and /readyz, /metrics) as a scoped resource:
 * listening while the scope is open, closed with it. Served by `effect/http`'s
 * router on `@effect/platform-node`'s server, inside the caller's runtime: the
 * handlers run with the services, logger, log annotations and metric registry
 * of the fibre that called `serve` (no `runPromise` on a default runtime).
 *
 * Each route answers GET (and HEAD); any other path answers 404, as before.
 * Port 0 binds a free port: the returned `http.Server` says which (tests).
 * The probes behind these routes are unauthenticated: a route must never put
 * error text in its body, only states (see Health.ts).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Scope } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import * as http from "node:http"

export interface Response {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

export type Routes<R> = Readonly<Record<`/${string}`, Effect.Effect<Response, never, R>>>

export const serve = <R>(
  port: number,
  routes: Routes<R>,
  /** The address to listen on; all interfaces by default. */
  host = "0.0.0.0"
): Effect.Effect<http.Server, ServeError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const router = yield* HttpRouter.make
    for (const [path, respond] of Object.entries(routes) as Array<[`/${string}`, Effect.Effect<Response, never, R>]>) {
      yield* router.add(
        "GET",
        path,
        // `Exclude<R, R>` stays unresolved for a generic R: the cast says what provideContext did.
        Effect.map(Effect.provideContext(respond, context) as Effect.Effect<Response>, (r) =>
          HttpServerResponse.text(r.body, { status: r.status, contentType: r.contentType }))
      )
    }
    const server = http.createServer()
    const node = yield* NodeHttpServer.make(() => server, { port, host })
    yield* node.serve(router.asHttpEffect())
    // Runs first when the scope closes: stop listening and drop every connection at once, as the
    // hand-written server did. A probe or scrape in flight is cut (its fibre interrupted); waiting
    // for it, or for a client's idle keep-alive connection, would only delay shutdown.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        server.close()
        server.closeAllConnections()
      })
    )
    return server
  })
