/**
 * One HTTP request of a live connection, through node:http(s) on the
 * connection's agent (its TLS settings: CA, client certificate, server name)
 * with its bearer token, if any, once the connection's rate limit
 * gave it a token, under a timeout (the wait for the token is not part of it); an answer outside
 * 2xx becomes a `KubeError` carrying the server's message, and a 401 drops the
 * cached bearer token.
 */
import type * as http from "node:http"
import { Duration, Effect } from "effect"
import type { KubeError } from "../api/KubeError.js"
import { resources, type ResourceKind } from "../api/Resources.js"
import { describe, type ErrorContext, reasonFromNetworkError, statusError } from "./errors.js"
import { collectionPath, enc } from "./paths.js"
import type { Session } from "./session.js"

export interface HttpRequest {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
  readonly path: string
  readonly body?: unknown
  readonly contentType?: string
  readonly accept?: string
}

export interface HttpResponse {
  readonly status: number
  readonly body: string
}

export interface Requests {
  readonly request: (ctx: ErrorContext, req: HttpRequest) => Effect.Effect<HttpResponse, KubeError>
  readonly requestJson: (ctx: ErrorContext, req: HttpRequest) => Effect.Effect<any, KubeError>
  /** The path of one object; fails when a namespaced kind has no namespace or the name is empty. */
  readonly objectPath: (
    ctx: ErrorContext,
    kind: ResourceKind,
    namespace: string | undefined,
    name: string
  ) => Effect.Effect<string, KubeError>
}

export const makeRequests = (session: Session): Requests => {
  const { authHeaders, ensureCredentials, fail, onUnauthorized, requestTimeout, transport } = session

  const request = (ctx: ErrorContext, req: HttpRequest): Effect.Effect<HttpResponse, KubeError> =>
    Effect.gen(function*() {
      if (session.isClosed()) return yield* Effect.fail(fail(ctx, "Unavailable", "client is closed"))
      yield* session.buckets.forPath(req.path).take
      yield* Effect.mapError(ensureCredentials, (error) => fail(ctx, error.reason, error.detail))
      // the wait for a token or a credential may have outlasted the connection
      if (session.isClosed()) return yield* Effect.fail(fail(ctx, "Unavailable", "client is closed"))
      const headers: Record<string, string> = {
        ...authHeaders(),
        Accept: req.accept ?? "application/json"
      }
      let payload: string | undefined
      if (req.body !== undefined) {
        payload = JSON.stringify(req.body)
        headers["Content-Type"] = req.contentType ?? "application/json"
        headers["Content-Length"] = String(Buffer.byteLength(payload))
      }
      const url = new URL(transport.server + req.path)
      const response = yield* Effect.callback<HttpResponse, KubeError>((resume, signal) => {
        let outgoing: http.ClientRequest
        try {
          outgoing = transport.request(url, { method: req.method, agent: transport.agent, headers, signal }, (res) => {
            const chunks: Array<Buffer> = []
            res.on("data", (chunk: Buffer) => chunks.push(chunk))
            res.on("error", (error) => resume(Effect.fail(fail(ctx, reasonFromNetworkError(error), describe(error)))))
            res.on("end", () =>
              resume(Effect.succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
            )
          })
        } catch (error) {
          resume(Effect.fail(fail(ctx, "Invalid", describe(error))))
          return
        }
        outgoing.on("error", (error) => {
          if (!signal.aborted) resume(Effect.fail(fail(ctx, reasonFromNetworkError(error), describe(error))))
        })
        if (payload !== undefined) outgoing.write(payload)
        outgoing.end()
      }).pipe(
        Effect.timeoutOrElse({
          duration: requestTimeout,
          orElse: () => Effect.fail(fail(ctx, "Timeout", `no answer within ${Duration.toMillis(requestTimeout)}ms`))
        })
      )
      if (response.status >= 200 && response.status < 300) return response
      if (response.status === 401) yield* onUnauthorized
      const error = statusError(ctx, response.status, response.body)
      return yield* Effect.fail(fail(ctx, error.reason, error.detail))
    })

  const requestJson = (ctx: ErrorContext, req: HttpRequest): Effect.Effect<any, KubeError> =>
    Effect.flatMap(request(ctx, req), (response) =>
      Effect.try({
        try: () => JSON.parse(response.body) as unknown,
        catch: () => fail(ctx, "Unknown", `the server answered ${response.status} with a body that is not JSON`)
      }))

  const objectPath = (
    ctx: ErrorContext,
    kind: ResourceKind,
    namespace: string | undefined,
    name: string
  ): Effect.Effect<string, KubeError> =>
    resources[kind].namespaced && !namespace
      ? Effect.fail(fail(ctx, "Invalid", `${kind} are namespaced: a namespace is required`))
      : name === ""
      ? Effect.fail(fail(ctx, "Invalid", "a name is required"))
      : Effect.succeed(`${collectionPath(kind, namespace)}/${enc(name)}`)

  return { request, requestJson, objectPath }
}
