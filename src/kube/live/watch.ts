/**
 * The watch of a live client, through client-node's `Watch` class, as a
 * `Stream` of `WatchEvent`s: OPENED once the server answered, then ADDED,
 * MODIFIED, DELETED and BOOKMARK; an ERROR event fails the stream with its
 * reason (Gone for an expired resourceVersion), and a watch the library ends
 * for silence (see `watchInactivityTimeoutMs`) just ends the stream, for the
 * caller to resume from its last version.
 * Closing the stream's scope or the connection's aborts the request.
 */
import { Watch } from "@kubernetes/client-node"
import { Cause, Duration, Effect, Queue, Stream } from "effect"
import type { KubeClientShape } from "../api/KubeClient.js"
import { type KubeError, type KubeErrorReason, reasonFromStatus } from "../api/KubeError.js"
import type { KubeObject, WatchEvent, WatchOptions } from "../api/Resources.js"
import { describe, type ErrorContext, reasonFromNetworkError } from "./errors.js"
import { collectionPath, namespaceFor } from "./paths.js"
import type { Session } from "./session.js"

/**
 * How long client-node's `Watch` may see nothing on a watch before it ends it.
 * Its default, 30 s (`requestTimeoutMs`, also its connect timeout), ended every
 * quiet watch: a healthy idle watch receives only the API server's bookmarks,
 * about one a minute, so each was closed after 30 s and reopened (resumed from
 * its resourceVersion, no relist): with 10 idle remote clusters, 2 watches each,
 * one reopened watch every 1.5 s (`npm run bench -- --idle`). Past the server-side
 * timeout the watch asks for (or 10 min), this timer only ends a watch whose
 * connection died silently; the watch loop's own idle timeout
 * (kube/cache/Watch.ts, `idleTimeout`, 5 min: nothing, not even a bookmark) comes
 * first. A server that does not answer the watch request at all is given the
 * connection's request timeout, as any request (`makeWatch`: the timer's first read).
 */
export const watchInactivityTimeoutMs = (timeoutSeconds: number | undefined): number =>
  ((timeoutSeconds ?? 600) + 60) * 1000

export const makeWatch = (session: Session): KubeClientShape["watch"] => {
  const { base, ensureCredentials, fail, kc, watchControllers } = session

  const watch: KubeClientShape["watch"] = (kind, namespace, watchOptions: WatchOptions) => {
    const ns = namespaceFor(kind, namespace)
    const ctx: ErrorContext = { ...base, verb: "watch", resource: kind, namespace: ns }
    return Stream.callback<WatchEvent, KubeError>((queue) =>
      Effect.gen(function*() {
        if (session.isClosed()) return yield* Effect.fail(fail(ctx, "Unavailable", "client is closed"))
        // one token per watch opened, none for its events (client-go's throttle of a watch request)
        yield* session.buckets.forPath(collectionPath(kind, ns)).take
        yield* Effect.mapError(ensureCredentials, (error) => fail(ctx, error.reason, error.detail))
        const failWith = (error: KubeError) => {
          Queue.failCauseUnsafe(queue, Cause.fail(error))
        }
        let stopped = false
        let opened = false
        let controller: AbortController | undefined
        const stop = () => {
          stopped = true
          if (controller) {
            controller.abort()
            watchControllers.delete(controller)
          }
        }
        yield* Effect.addFinalizer(() => Effect.sync(stop))
        const watcher = new Watch(kc)
        // Private in the library's typings: a plain property, read each time its timer is set
        // (test/kube/WatchInactivity.test.ts checks that it still is). Its first read arms the
        // connect timer: the connection's request timeout, so the library aborts a request the
        // server does not answer (its socket closed, not left open); every later read re-arms the
        // inactivity timer of the open watch.
        let timerReads = 0
        const connectMs = Duration.toMillis(session.requestTimeout)
        const inactivityMs = watchInactivityTimeoutMs(watchOptions.timeoutSeconds)
        Object.defineProperty(watcher, "requestTimeoutMs", {
          configurable: true,
          get: () => timerReads++ === 0 ? connectMs : inactivityMs
        })
        const params = {
          resourceVersion: watchOptions.resourceVersion,
          allowWatchBookmarks: watchOptions.allowBookmarks,
          timeoutSeconds: watchOptions.timeoutSeconds,
          labelSelector: watchOptions.labelSelector,
          fieldSelector: watchOptions.fieldSelector
        }
        const onEvent = (phase: string, object: any) => {
          if (stopped) return
          switch (phase) {
            case "ADDED":
            case "MODIFIED":
            case "DELETED":
              Queue.offerUnsafe(queue, { type: phase, object: object as KubeObject })
              return
            case "BOOKMARK":
              Queue.offerUnsafe(queue, { type: "BOOKMARK", resourceVersion: String(object?.metadata?.resourceVersion ?? "") })
              return
            case "ERROR": {
              const code = typeof object?.code === "number" ? object.code : undefined
              let reason: KubeErrorReason = code === undefined ? "Unknown" : reasonFromStatus(code)
              if (object?.reason === "Expired" || object?.reason === "Gone") reason = "Gone"
              const message = typeof object?.message === "string" ? object.message : JSON.stringify(object)
              failWith(fail(ctx, reason, `${code ?? "watch error"}: ${message}`))
              stop()
              return
            }
            default:
              return
          }
        }
        const onDone = (error: any) => {
          if (stopped) return
          stopped = true
          if (controller) watchControllers.delete(controller)
          if (!error) {
            Queue.endUnsafe(queue)
          } else if (opened && (error?.name === "TimeoutError" || error?.name === "AbortError")) {
            // the library ends a quiet watch; the caller resumes from its last version
            Queue.endUnsafe(queue)
          } else if (typeof error?.statusCode === "number") {
            if (error.statusCode === 401) session.dropCredentials()
            failWith(fail(ctx, reasonFromStatus(error.statusCode), `${error.statusCode}: ${describe(error)}`))
          } else {
            failWith(fail(ctx, reasonFromNetworkError(error), describe(error)))
          }
        }
        let started: Promise<AbortController>
        try {
          started = watcher.watch(collectionPath(kind, ns), params, onEvent, onDone)
        } catch (error) {
          return yield* Effect.fail(fail(ctx, reasonFromNetworkError(error), describe(error)))
        }
        // the answer comes within the connection's request timeout, as any request's (a watch
        // opening on a hung server is retried, not waited for): the library's connect timer aborts
        // it; this is the backstop should that timer not fire (a late answer is aborted when it comes)
        yield* Effect.sleep(Duration.sum(session.requestTimeout, Duration.seconds(5))).pipe(
          Effect.andThen(Effect.sync(() => {
            if (!opened && !stopped) {
              stopped = true
              failWith(fail(ctx, "Timeout", `no answer within ${Duration.toMillis(session.requestTimeout)}ms`))
            }
          })),
          Effect.forkScoped
        )
        started.then(
          (abort) => {
            opened = true
            controller = abort
            if (stopped || session.isClosed()) abort.abort()
            else {
              watchControllers.add(abort)
              Queue.offerUnsafe(queue, { type: "OPENED" })
            }
          },
          (error) => {
            if (!stopped) {
              stopped = true
              failWith(fail(ctx, reasonFromNetworkError(error), describe(error)))
            }
          }
        )
      })
    )
  }

  return watch
}
