/**
 * Which lane of a connection's client-side rate limit a request takes
 * (`kube/live/rateLimit.ts`). Set around a call with
 * `Effect.provideService(RequestLane, background(...))`; the default is the
 * normal lane. Only live connections under a rate limit read it: with no
 * limit (flotilla's default) and on the in-memory clusters both lanes are the
 * same.
 *
 * The background lane is for requests that no workflow's progress waits for:
 * they take a token only when one is spare, so in a burst the requests that
 * move workflows on (pod creates, completion writes) go first.
 */
import { Context, type Duration, Effect } from "effect"

export interface NormalLane {
  readonly _tag: "Normal"
}

export interface BackgroundLane {
  readonly _tag: "Background"
  /** Longest wait for a spare token; after it the request waits as a normal one (default 30 s). */
  readonly patience?: Duration.Duration | undefined
  /** When this completes before a token came, the request is not sent (it fails with reason Conflict). */
  readonly giveUpWhen?: Effect.Effect<void> | undefined
}

export type Lane = NormalLane | BackgroundLane

export const normal: Lane = { _tag: "Normal" }

export const background = (options: Omit<BackgroundLane, "_tag"> = {}): Lane => ({ _tag: "Background", ...options })

export const RequestLane = Context.Reference<Lane>("flotilla/kube/RequestLane", { defaultValue: () => normal })

/** Runs `effect` with its requests in `lane`. */
export const inLane = (lane: Lane) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, RequestLane, lane)
