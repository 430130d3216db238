/**
 * The one place watch semantics live: list, then watch from the list's
 * resourceVersion, resume after a normal end, relist after `Gone`, back off
 * (capped, jittered, exponential) after any other failure. After a failure of
 * the connection or an overloaded server (`Unavailable`, `Timeout`: an API
 * server restarting, a network blip, 429/5xx) the watch resumes from the last
 * resourceVersion it saw, as client-go's reflector does, so that an API
 * server's rolling restart does not make every client relist at once; the
 * server answers `Gone` when that version was compacted meanwhile, and we
 * relist then. The same after 401/403 (a restarting server refuses requests
 * until its RBAC caches are synced). After any other failure it relists.
 *
 * The stream never fails and never ends on its own; interrupt it (close the
 * scope running it) to stop. Consumers get a full snapshot (`Synced`) on every
 * (re)list and must replace their cache with it; between snapshots they get
 * `Upsert` / `Delete` events.
 */
import { Clock, Duration, Effect, Pull, Queue, Random, Result, Schedule, Stream } from "effect"
import type { KubeClientShape } from "../api/KubeClient.js"
import { KubeError } from "../api/KubeError.js"
import type { KubeObject, ListOptions, ResourceKind, WatchEvent } from "../api/Resources.js"

export type WatchItem =
  | { readonly _tag: "Synced"; readonly items: ReadonlyArray<KubeObject>; readonly resourceVersion: string }
  | { readonly _tag: "Upsert"; readonly object: KubeObject }
  | { readonly _tag: "Delete"; readonly object: KubeObject }

export type WatchState =
  | { readonly _tag: "Connecting" }
  | { readonly _tag: "Connected" }
  | {
    readonly _tag: "Retrying"
    /** 1 for the first failure since the last success. */
    readonly attempt: number
    readonly lastError: KubeError
    /** How long until the next attempt. */
    readonly nextRetryMs: number
  }

export interface WatchResourceOptions extends ListOptions {
  /**
   * Delays between failed attempts. Reset after a success. When it ends, its
   * last delay keeps being used (the stream never gives up).
   */
  readonly schedule?: Schedule.Schedule<unknown, KubeError>
  /** How long a list may take before the attempt fails with reason Timeout. Default 30s. */
  readonly openTimeout?: Duration.Input
  /** Restart a watch that delivered nothing, not even a bookmark, for this long. Default 5 min. */
  readonly idleTimeout?: Duration.Input
  /** Server-side watch timeout, picked uniformly in [min, max] seconds per watch. Default [300, 600]. */
  readonly serverTimeoutSeconds?: readonly [min: number, max: number]
  /** Called on every state transition (Retrying is reported on every failure). */
  readonly onState?: (state: WatchState) => Effect.Effect<void>
}

/** ~1s doubling up to 5 min, jittered (like Kueue MultiKueue's reconnect backoff). */
export const defaultRetrySchedule: Schedule.Schedule<Duration.Duration, unknown> = Schedule.min([
  Schedule.exponential("1 second"),
  Schedule.spaced("5 minutes")
]).pipe(Schedule.jittered)

export const defaultOpenTimeout: Duration.Input = "30 seconds"
export const defaultIdleTimeout: Duration.Input = "5 minutes"

const toKubeError = (
  client: KubeClientShape,
  verb: string,
  kind: ResourceKind,
  namespace: string | undefined
) =>
(defect: unknown): Effect.Effect<never, KubeError> =>
  Effect.fail(
    new KubeError({
      reason: "Unknown",
      cluster: client.cluster,
      verb,
      resource: kind,
      namespace,
      detail: `unexpected failure: ${defect instanceof Error ? defect.message : String(defect)}`
    })
  )

/**
 * Failures after which the watch resumes from its resourceVersion rather than
 * relisting: the server was unreachable or overloaded, or refused us for a
 * while (a restarted API server answers 403 until its RBAC caches have
 * synced; credentials may be rotated). Nothing about the version we hold is
 * wrong then; if it was compacted meanwhile the server says Gone.
 */
const resumable = (error: KubeError): boolean =>
  error.reason === "Unavailable" || error.reason === "Timeout" || error.reason === "Forbidden" ||
  error.reason === "Unauthorized"

/**
 * A resilient list+watch of one resource kind (in one namespace, or all when
 * `namespace` is undefined). Runs forever; see the module comment.
 */
export const watchResource = (
  client: KubeClientShape,
  kind: ResourceKind,
  namespace: string | undefined,
  options: WatchResourceOptions = {}
): Stream.Stream<WatchItem> =>
  Stream.callback<WatchItem>(
    (queue) => runWatchLoop(client, kind, namespace, options, (item) => Queue.offer(queue, item)),
    { bufferSize: 64, strategy: "suspend" }
  )

const runWatchLoop = (
  client: KubeClientShape,
  kind: ResourceKind,
  namespace: string | undefined,
  options: WatchResourceOptions,
  emit: (item: WatchItem) => Effect.Effect<unknown>
): Effect.Effect<never> =>
  Effect.gen(function*() {
    const schedule: Schedule.Schedule<unknown, KubeError> = options.schedule ?? defaultRetrySchedule
    const openTimeout = Duration.fromInputUnsafe(options.openTimeout ?? defaultOpenTimeout)
    const idleTimeout = Duration.fromInputUnsafe(options.idleTimeout ?? defaultIdleTimeout)
    const [minServerTimeout, maxServerTimeout] = options.serverTimeoutSeconds ?? [300, 600]
    const selectors: ListOptions = {
      ...(options.labelSelector !== undefined ? { labelSelector: options.labelSelector } : {}),
      ...(options.fieldSelector !== undefined ? { fieldSelector: options.fieldSelector } : {})
    }

    let state: WatchState | undefined
    const setState = (next: WatchState): Effect.Effect<void> => {
      if (state !== undefined && state._tag === next._tag && next._tag !== "Retrying") return Effect.void
      state = next
      return options.onState ? options.onState(next).pipe(Effect.catchDefect(() => Effect.void)) : Effect.void
    }

    /** undefined means the next round must (re)list. */
    let resourceVersion: string | undefined
    let attempt = 0
    let lastDelayMs = 1000
    let step = yield* Schedule.toStep(schedule)
    /** Gone answers in a row without any watch event in between. */
    let gonesInARow = 0
    /** Watches in a row that ended normally without delivering anything. */
    let emptyEndsInARow = 0

    /** The server is reachable again: the next failure starts the schedule over. */
    const resetBackoff = Effect.gen(function*() {
      if (attempt === 0) return
      attempt = 0
      step = yield* Schedule.toStep(schedule)
    })

    /** Waits the schedule's next delay; `relist` drops the resourceVersion to list again after it. */
    const backOff = (error: KubeError, relist: boolean) =>
      Effect.gen(function*() {
        attempt += 1
        const now = yield* Clock.currentTimeMillis
        const delayMs = yield* step(now, error).pipe(
          Effect.map(([, delay]) => Duration.toMillis(delay)),
          Pull.catchDone(() => Effect.succeed(lastDelayMs))
        )
        lastDelayMs = delayMs
        yield* setState({ _tag: "Retrying", attempt, lastError: error, nextRetryMs: delayMs })
        yield* Effect.logWarning(`watch ${kind} failed (attempt ${attempt}), retrying in ${Math.round(delayMs)}ms`).pipe(
          Effect.annotateLogs({ cluster: client.cluster, namespace: namespace ?? "*", reason: error.reason, detail: error.detail })
        )
        yield* Effect.sleep(Duration.millis(delayMs))
        if (relist) resourceVersion = undefined
      })

    const listOnce = client.list(kind, namespace, selectors).pipe(
      Effect.catchDefect(toKubeError(client, "list", kind, namespace)),
      Effect.timeoutOrElse({
        duration: openTimeout,
        orElse: () =>
          Effect.fail(
            new KubeError({
              reason: "Timeout",
              cluster: client.cluster,
              verb: "list",
              resource: kind,
              namespace,
              detail: `no answer within ${Duration.toMillis(openTimeout)}ms`
            })
          )
      }),
      Effect.result
    )

    yield* setState({ _tag: "Connecting" })

    while (true) {
      if (resourceVersion === undefined) {
        const listed = yield* listOnce
        if (Result.isFailure(listed)) {
          yield* backOff(listed.failure, true)
          continue
        }
        yield* emit({ _tag: "Synced", items: listed.success.items, resourceVersion: listed.success.resourceVersion })
        resourceVersion = listed.success.resourceVersion
        yield* setState({ _tag: "Connected" })
      }

      const timeoutSeconds = yield* Random.nextIntBetween(minServerTimeout, maxServerTimeout)
      let delivered = 0
      const onEvent = (event: WatchEvent): Effect.Effect<void> =>
        Effect.gen(function*() {
          if (event.type === "OPENED") {
            // Reachable again (a resumed watch may stay quiet for long), but
            // not progress: a Gone may follow.
            yield* resetBackoff
            yield* setState({ _tag: "Connected" })
            return
          }
          delivered += 1
          if (delivered === 1) {
            emptyEndsInARow = 0
            gonesInARow = 0
            yield* resetBackoff
            yield* setState({ _tag: "Connected" })
          }
          if (event.type === "BOOKMARK") {
            if (event.resourceVersion) resourceVersion = event.resourceVersion
            return
          }
          const rv = event.object.metadata.resourceVersion
          if (rv) resourceVersion = rv
          yield* emit(event.type === "DELETED" ? { _tag: "Delete", object: event.object } : { _tag: "Upsert", object: event.object })
        })

      const watched = yield* client.watch(kind, namespace, {
        ...selectors,
        resourceVersion: resourceVersion!,
        allowBookmarks: true,
        timeoutSeconds
      }).pipe(
        Stream.timeout(idleTimeout),
        Stream.runForEach(onEvent),
        Effect.catchDefect(toKubeError(client, "watch", kind, namespace)),
        Effect.result
      )

      if (Result.isSuccess(watched)) {
        // A normal end: resume from the last version we saw, no relist.
        if (delivered === 0) {
          emptyEndsInARow += 1
          // A server that keeps closing watches at once must not make us spin.
          if (emptyEndsInARow >= 3) yield* Effect.sleep(Duration.seconds(1))
        }
        continue
      }
      const error = watched.failure
      if (error.reason === "Gone" && gonesInARow === 0) {
        gonesInARow += 1
        yield* Effect.logInfo(`watch ${kind} resourceVersion ${resourceVersion} is gone, relisting`).pipe(
          Effect.annotateLogs({ cluster: client.cluster, namespace: namespace ?? "*", detail: error.detail })
        )
        resourceVersion = undefined
        continue
      }
      yield* backOff(error, !resumable(error))
    }
  }) as Effect.Effect<never>
