/**
 * The watch of a live client, as a `Stream` of `WatchEvent`s: one GET with
 * `watch=true` on the connection's agent, read as the API server writes it
 * (one JSON event per line): OPENED once the server answered 200, then ADDED,
 * MODIFIED, DELETED and BOOKMARK; an ERROR event fails the stream with its
 * reason (Gone for an expired resourceVersion); an answer other than 200 fails
 * it with the server's `Status` message; the server ending the watch (its
 * `timeoutSeconds`) or a silence longer than `watchInactivityTimeoutMs` just
 * ends the stream, for the caller to resume from its last version. A server
 * that does not answer at all fails it with Timeout after the connection's
 * request timeout. Closing the stream's scope or the connection's aborts the
 * request.
 */
import { Cause, Duration, Effect, Queue, Stream } from "effect"
import type * as http from "node:http"
import type { KubeClientShape } from "../api/KubeClient.js"
import { type KubeError, type KubeErrorReason, reasonFromStatus } from "../api/KubeError.js"
import type { KubeObject, WatchEvent, WatchOptions } from "../api/Resources.js"
import { describe, type ErrorContext, reasonFromNetworkError, statusError } from "./errors.js"
import { collectionPath, namespaceFor, query } from "./paths.js"
import type { Session } from "./session.js"

/**
 * How long an open watch may receive nothing before the client ends it. A
 * healthy idle watch receives only the API server's bookmarks, about one a
 * minute, so this lies past the server-side timeout the watch asks for (or 10
 * min): it only ends a watch whose connection died silently. The watch loop's
 * own idle timeout (kube/cache/Watch.ts, `idleTimeout`, 5 min: nothing, not
 * even a bookmark) comes first. (client-node's `Watch`, used before, ended
 * every quiet watch after 30 s: with 10 idle remote clusters, one reopened
 * watch every 1.5 s, `npm run bench -- --idle`.)
 */
export const watchInactivityTimeoutMs = (timeoutSeconds: number | undefined): number =>
  ((timeoutSeconds ?? 600) + 60) * 1000

/** The longest watch event line read: far above any object the API server stores (etcd's 1.5 MiB limit). */
export const maxWatchEventChars = 16 * 1024 * 1024

/** Of an error answer, the first bytes kept for its message. */
const maxErrorBodyBytes = 64 * 1024

export const makeWatch = (session: Session): KubeClientShape["watch"] => {
  const { authHeaders, base, ensureCredentials, fail, transport, watchControllers } = session

  const watch: KubeClientShape["watch"] = (kind, namespace, watchOptions: WatchOptions) => {
    const ns = namespaceFor(kind, namespace)
    const ctx: ErrorContext = { ...base, verb: "watch", resource: kind, namespace: ns }
    return Stream.callback<WatchEvent, KubeError>((queue) =>
      Effect.gen(function*() {
        if (session.isClosed()) return yield* Effect.fail(fail(ctx, "Unavailable", "client is closed"))
        // one token per watch opened, none for its events (client-go's throttle of a watch request)
        yield* session.buckets.forPath(collectionPath(kind, ns)).take
        yield* Effect.mapError(ensureCredentials, (error) => fail(ctx, error.reason, error.detail))

        // closing the connection aborts this controller; the request is ended by `release`
        const controller = new AbortController()
        let outgoing: http.ClientRequest | undefined
        let done = false
        let timer: ReturnType<typeof setTimeout> | undefined
        /**
         * Stops the watch: its request and response are destroyed without an error (an abort
         * signal would destroy them with one, which a keep-alive socket whose answer had already
         * ended re-emits with no listener: an uncaught exception).
         */
        const release = () => {
          done = true
          if (timer !== undefined) clearTimeout(timer)
          watchControllers.delete(controller)
          outgoing?.destroy()
        }
        // the connection closed under the watch: its stream fails (the caller's scope is closing too)
        controller.signal.addEventListener("abort", () => finish(fail(ctx, "Unavailable", "client is closed")), { once: true })
        /** Ends the stream (the caller resumes from its last version) or fails it; the first call wins. */
        const finish = (error?: KubeError) => {
          if (done) return
          release()
          if (error === undefined) Queue.endUnsafe(queue)
          else Queue.failCauseUnsafe(queue, Cause.fail(error))
        }
        yield* Effect.addFinalizer(() => Effect.sync(release))
        // the wait for a token or a credential may have outlasted the connection
        if (session.isClosed()) return yield* Effect.fail(fail(ctx, "Unavailable", "client is closed"))
        watchControllers.add(controller)

        const connectMs = Duration.toMillis(session.requestTimeout)
        const inactivityMs = session.watchInactivityTimeout === undefined
          ? watchInactivityTimeoutMs(watchOptions.timeoutSeconds)
          : Duration.toMillis(session.watchInactivityTimeout)
        // until the server answers: the connection's request timeout, as any request's
        timer = setTimeout(() => finish(fail(ctx, "Timeout", `no answer within ${connectMs}ms`)), connectMs)
        const rearm = () => {
          if (timer !== undefined) clearTimeout(timer)
          timer = setTimeout(() => finish(), inactivityMs)
        }

        const onEvent = (line: string) => {
          let event: { type?: unknown; object?: any }
          try {
            event = JSON.parse(line)
          } catch {
            finish(fail(ctx, "Unknown", "the server sent a watch event that is not JSON"))
            return
          }
          const object = event?.object
          switch (event?.type) {
            case "ADDED":
            case "MODIFIED":
            case "DELETED":
              if (object === null || typeof object !== "object" || typeof object.metadata !== "object" || object.metadata === null) {
                finish(fail(ctx, "Unknown", `the server sent a ${event.type} watch event without an object`))
                return
              }
              Queue.offerUnsafe(queue, { type: event.type, object: object as KubeObject })
              return
            case "BOOKMARK":
              Queue.offerUnsafe(queue, { type: "BOOKMARK", resourceVersion: String(object?.metadata?.resourceVersion ?? "") })
              return
            case "ERROR": {
              const code = typeof object?.code === "number" ? object.code : undefined
              let reason: KubeErrorReason = code === undefined ? "Unknown" : reasonFromStatus(code)
              if (object?.reason === "Expired" || object?.reason === "Gone") reason = "Gone"
              const message = typeof object?.message === "string" ? object.message : JSON.stringify(object)
              finish(fail(ctx, reason, `${code ?? "watch error"}: ${message}`))
              return
            }
            default:
              return
          }
        }

        /** Reads the answer of an open watch: lines of JSON, split across chunks anywhere. */
        const readEvents = (res: http.IncomingMessage) => {
          rearm()
          Queue.offerUnsafe(queue, { type: "OPENED" })
          res.setEncoding("utf8")
          const partial: Array<string> = []
          let partialLength = 0
          res.on("data", (chunk: string) => {
            if (done) return
            rearm()
            let start = 0
            let newline = chunk.indexOf("\n")
            while (newline >= 0) {
              const tail = chunk.slice(start, newline)
              const line = partial.length === 0 ? tail : partial.join("") + tail
              partial.length = 0
              partialLength = 0
              if (line.trim() !== "") onEvent(line)
              if (done) return
              start = newline + 1
              newline = chunk.indexOf("\n", start)
            }
            if (start < chunk.length) {
              partial.push(start === 0 ? chunk : chunk.slice(start))
              partialLength += chunk.length - start
              if (partialLength > maxWatchEventChars) {
                finish(fail(ctx, "Unknown", `the server sent a watch event longer than ${maxWatchEventChars} characters`))
              }
            }
          })
          res.on("end", () => {
            if (done) return
            const rest = partial.join("")
            if (rest.trim() !== "") onEvent(rest)
            // the server closed the watch (its timeoutSeconds): the caller resumes from its last version
            finish()
          })
          res.on("error", (error) => finish(fail(ctx, reasonFromNetworkError(error), describe(error))))
          res.on("close", () => finish(fail(ctx, "Unavailable", "the watch connection closed before its end")))
        }

        /** Reads an answer other than 200: the server's `Status`, as any request's error. */
        const readFailure = (res: http.IncomingMessage) => {
          const status = res.statusCode ?? 0
          const chunks: Array<Buffer> = []
          let size = 0
          res.on("data", (chunk: Buffer) => {
            if (size < maxErrorBodyBytes) chunks.push(chunk)
            size += chunk.length
          })
          res.on("end", () => {
            if (status === 401) session.dropCredentials()
            const error = statusError(ctx, status, Buffer.concat(chunks).toString("utf8"))
            finish(fail(ctx, error.reason, error.detail))
          })
          res.on("error", (error) => finish(fail(ctx, reasonFromNetworkError(error), describe(error))))
        }

        const url = new URL(transport.server + collectionPath(kind, ns) + query({
          watch: true,
          resourceVersion: watchOptions.resourceVersion,
          allowWatchBookmarks: watchOptions.allowBookmarks,
          timeoutSeconds: watchOptions.timeoutSeconds,
          labelSelector: watchOptions.labelSelector,
          fieldSelector: watchOptions.fieldSelector
        }))
        let request: http.ClientRequest
        try {
          request = transport.request(url, {
            method: "GET",
            agent: transport.agent,
            headers: { ...authHeaders(), Accept: "application/json" }
          }, (res) => {
            if (done) {
              res.resume()
              return
            }
            if (res.statusCode === 200) readEvents(res)
            else readFailure(res)
          })
        } catch (error) {
          release()
          return yield* Effect.fail(fail(ctx, "Invalid", describe(error)))
        }
        outgoing = request
        request.on("error", (error) => finish(fail(ctx, reasonFromNetworkError(error), describe(error))))
        request.end()
      })
    )
  }

  return watch
}
