/**
 * Client-side rate limiting of one live connection, as client-go's
 * `flowcontrol.NewTokenBucketRateLimiter(qps, burst)` does it: a bucket
 * holding up to `burst` tokens, full at the start, refilled at `qps` tokens a
 * second. Every request takes one token before it goes out (each page of a
 * list is a request; a watch takes one when it is opened, never for its
 * events); a request finding the bucket empty reserves the next token and
 * waits for it, in the order the reservations were made. Nothing is ever
 * dropped, only delayed, and the wait is interruptible: a request interrupted
 * while it waits gives its reservation back (as `rate.Reservation.Cancel`).
 *
 * The buckets live in the connection's session: every connection (every
 * cluster and every user context) has two, one for the argoproj.io API
 * (workflows, templates, task results...) and one for the rest of the
 * Kubernetes API (pods, configmaps, events, leases...). That is how upstream's
 * controller spends its `--qps/--burst`: client-go gives each clientset a
 * bucket of its own, and Argo builds a Kubernetes clientset and an Argo
 * clientset from the same settings, so `--qps 20` lets it send about 20 pod
 * and 20 workflow requests a second. Same flags, same budget.
 *
 * Why not `effect/persistence/RateLimiter`: it is a keyed, store-backed
 * limiter (meant for limits shared across processes) with a store error in its
 * failure channel and no way to hand back a reservation on interruption; the
 * bucket here is a few lines on `Clock` and `Effect.sleep`, so `TestClock`
 * drives it in tests.
 *
 * Flotilla's default is no limit (`qps` unset or 0): see `--qps` in the CLI.
 */
import { Effect } from "effect"

export interface RateLimit {
  /** Sustained requests per second; 0 or less: no limit. */
  readonly qps: number
  /** Requests that may go out at once after a quiet spell; default `qps` rounded up (at least 1). */
  readonly burst?: number | undefined
}

export interface TokenBucket {
  /** Waits for a token; interruptible, never fails. */
  readonly take: Effect.Effect<void>
  /** The limit in force, undefined when there is none. */
  readonly limit: { readonly qps: number; readonly burst: number } | undefined
}

/** The bucket of a connection without a limit. */
export const unlimited: TokenBucket = { take: Effect.void, limit: undefined }

/** The burst a limit allows: its own, else `qps` rounded up, at least 1. */
export const burstOf = (limit: RateLimit): number =>
  Math.max(1, Math.floor(limit.burst !== undefined && limit.burst > 0 ? limit.burst : Math.ceil(limit.qps)))

/** A fresh bucket (full) for one connection; `unlimited` when `limit` sets no positive qps. */
export const makeTokenBucket = (limit: RateLimit | undefined): TokenBucket => {
  if (limit === undefined || !(limit.qps > 0) || !Number.isFinite(limit.qps)) return unlimited
  const qps = limit.qps
  const burst = burstOf(limit)
  // tokens may go below zero: each negative token is a request already waiting for it
  let tokens = burst
  let last: number | undefined
  const take = Effect.clockWith((clock) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const now = clock.currentTimeMillisUnsafe()
        if (last === undefined) last = now
        tokens = Math.min(burst, tokens + (Math.max(0, now - last) * qps) / 1000)
        last = now
        tokens -= 1
        if (tokens >= 0) return Effect.void
        const waitMs = Math.ceil((-tokens * 1000) / qps)
        return restore(Effect.sleep(waitMs)).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              tokens = Math.min(burst, tokens + 1)
            })
          )
        )
      })
    )
  )
  return { take, limit: { qps, burst } }
}

/** The buckets of one connection: argoproj.io requests take from one, all others from the other. */
export interface ConnectionBuckets {
  /** The bucket of a request to `path` (a URL path on the API server). */
  readonly forPath: (path: string) => TokenBucket
}

export const makeConnectionBuckets = (limit: RateLimit | undefined): ConnectionBuckets => {
  const argo = makeTokenBucket(limit)
  const kubernetes = makeTokenBucket(limit)
  return { forPath: (path) => (path.startsWith("/apis/argoproj.io/") ? argo : kubernetes) }
}
