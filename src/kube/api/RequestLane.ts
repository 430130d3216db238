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
import type { KubeError } from "./KubeError.js"

export interface NormalLane {
  readonly _tag: "Normal"
}

export interface BackgroundLane {
  readonly _tag: "Background"
  /** Longest wait for a spare token (default 30 s; zero: one spare now or none). */
  readonly patience?: Duration.Duration | undefined
  /**
   * Out of patience, the request waits for a token as a normal one does (false, the default), or
   * is given up (true): not sent, it fails with reason Conflict.
   */
  readonly giveUp?: boolean | undefined
}

export type Lane = NormalLane | BackgroundLane

export const normal: Lane = { _tag: "Normal" }

export const background = (options: Omit<BackgroundLane, "_tag"> = {}): Lane => ({ _tag: "Background", ...options })

export const RequestLane = Context.Reference<Lane>("flotilla/kube/RequestLane", { defaultValue: () => normal })

/** Runs `effect` with its requests in `lane`. */
export const inLane = (lane: Lane) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, RequestLane, lane)

/** The detail of the Conflict a request given up in its lane fails with (never sent). */
export const givenUpDetail = "not sent: no spare token under the client-side rate limit (given up, as its lane asks)"

/** True for the error of a request given up in its lane, not an answer of the server. */
export const givenUp = (error: KubeError): boolean => error.reason === "Conflict" && error.detail === givenUpDetail
