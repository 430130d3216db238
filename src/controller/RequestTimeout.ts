/**
 * Bounds one call to a (possibly remote) cluster: a hung API server must not hold a worker, a
 * finalizer lease or the orphan sweep forever. The timeout is a transient `KubeError` (reason
 * `Timeout`) like any other, naming the call that did not answer.
 */
import { Duration, Effect } from "effect"
import { KubeError } from "../kube/api/KubeError.js"

export interface CallSite {
  readonly cluster: string
  readonly verb: string
  readonly resource: string
  readonly namespace?: string | undefined
  readonly name?: string | undefined
}

export type Bounded = <A>(call: Effect.Effect<A, KubeError>, where: CallSite) => Effect.Effect<A, KubeError>

/** `bounded(call, where)` with `requestTimeout` as the bound. */
export const boundedBy = (requestTimeout: Duration.Duration): Bounded => (call, where) =>
  call.pipe(
    Effect.timeoutOrElse({
      duration: requestTimeout,
      orElse: () =>
        Effect.fail(
          new KubeError({
            reason: "Timeout",
            cluster: where.cluster,
            verb: where.verb,
            resource: where.resource,
            namespace: where.namespace,
            name: where.name,
            detail: `no answer within ${Duration.format(requestTimeout)}`
          })
        )
    })
  )
