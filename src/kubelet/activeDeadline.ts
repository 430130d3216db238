/**
 * `spec.activeDeadlineSeconds`, enforced as the kubelet does
 * (pkg/kubelet/active_deadline.go): counted from the pod's `status.startTime`;
 * once that many seconds have passed, the pod's containers are killed and the
 * pod ends `Failed` with reason `DeadlineExceeded` and the kubelet's message.
 * The field may be lowered on a running pod (the API server allows setting or
 * decreasing it), so the kubelet follows its changes.
 */
import { Clock, Deferred, Effect } from "effect"
import type { KubeObject } from "../kube/api/Resources.js"

/** The kubelet's reason and message for a pod past its active deadline. */
export const deadlineExceeded = {
  reason: "DeadlineExceeded",
  message: "Pod was active on the node longer than the specified deadline"
} as const

/** `spec.activeDeadlineSeconds`, when set to a whole number of seconds (the API requires a positive integer). */
export const activeDeadlineSeconds = (pod: KubeObject): number | undefined => {
  const v = (pod.spec as { activeDeadlineSeconds?: unknown } | undefined)?.activeDeadlineSeconds
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined
}

/** `status.startTime` in milliseconds, when the pod has one. */
export const startTimeMs = (pod: KubeObject): number | undefined => {
  const v = (pod.status as { startTime?: unknown } | undefined)?.startTime
  if (typeof v !== "string") return undefined
  const ms = Date.parse(v)
  return Number.isNaN(ms) ? undefined : ms
}

/**
 * The deadline of one running pod: `set` follows the pod's spec as the watch
 * brings it; `passed` completes once `startMs + seconds` is reached (on
 * Effect's clock), and never while no deadline is set.
 */
export interface DeadlineTracker {
  readonly set: (seconds: number | undefined) => Effect.Effect<void>
  readonly passed: Effect.Effect<void>
}

export const makeDeadlineTracker = (startMs: number, initial: number | undefined): Effect.Effect<DeadlineTracker> =>
  Effect.gen(function*() {
    let seconds = initial
    let changed = yield* Deferred.make<void>()
    const set = (next: number | undefined) =>
      Effect.suspend(() => {
        if (next === seconds) return Effect.void
        seconds = next
        const previous = changed
        return Effect.flatMap(Deferred.make<void>(), (fresh) => {
          changed = fresh
          return Deferred.succeed(previous, undefined)
        })
      })
    const passed: Effect.Effect<void> = Effect.suspend(() => {
      const wake = changed
      if (seconds === undefined) return Effect.andThen(Deferred.await(wake), passed)
      const deadline = startMs + seconds * 1000
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        now >= deadline
          ? Effect.void
          : Effect.raceFirst(Effect.sleep(deadline - now).pipe(Effect.as(true)), Deferred.await(wake).pipe(Effect.as(false))).pipe(
            Effect.flatMap((elapsed) => (elapsed ? Effect.void : passed))
          ))
    })
    return { set, passed }
  })
