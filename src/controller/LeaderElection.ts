/**
 * Leader election on a coordination.k8s.io Lease, like Argo's controller
 * (lease `workflow-controller`, or `workflow-controller-<instanceID>`, in the
 * system namespace; 15s lease, 10s renew deadline, 5s retry period). Only the
 * leader runs the controller; a leader that cannot renew within the deadline
 * stops it (closing its scope) before another replica can take over, so two
 * controllers never act on the same workflows.
 */
import { Clock, Duration, Effect, Exit, Option, Schedule, Scope } from "effect"
import type { KubeClientShape } from "../kube/KubeClient.js"
import type { KubeError } from "../kube/KubeError.js"
import type { KubeObject } from "../kube/Resources.js"

export interface LeaderElectionOptions {
  readonly namespace: string
  readonly name: string
  readonly identity: string
  readonly leaseDuration?: Duration.Input
  readonly renewDeadline?: Duration.Input
  readonly retryPeriod?: Duration.Input
}

export const leaseName = (instanceId: string | undefined): string =>
  instanceId ? `workflow-controller-${instanceId}` : "workflow-controller"

const micro = (ms: number): string => new Date(ms).toISOString().replace("Z", "000Z")

interface LeaseSpec {
  readonly holderIdentity?: string
  readonly leaseDurationSeconds?: number
  readonly renewTime?: string
  readonly acquireTime?: string
  readonly leaseTransitions?: number
}

/**
 * One attempt to become or stay leader. Succeeds with true when we hold the
 * lease after it; false when someone else holds a live lease.
 */
export const tryAcquireOrRenew = (
  client: KubeClientShape,
  options: LeaderElectionOptions
): Effect.Effect<boolean, KubeError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const durationS = Math.round(Duration.toSeconds(Duration.fromInputUnsafe(options.leaseDuration ?? "15 seconds")))
    const existing = yield* client.get("leases", options.namespace, options.name).pipe(
      Effect.map(Option.some),
      Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none<KubeObject>()) : Effect.fail(e))
    )
    if (Option.isNone(existing)) {
      const created = yield* client.create("leases", options.namespace, {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: options.name, namespace: options.namespace },
        spec: {
          holderIdentity: options.identity,
          leaseDurationSeconds: durationS,
          acquireTime: micro(now),
          renewTime: micro(now),
          leaseTransitions: 0
        }
      }).pipe(Effect.as(true), Effect.catchTag("KubeError", (e) => e.reason === "AlreadyExists" ? Effect.succeed(false) : Effect.fail(e)))
      return created
    }
    const lease = existing.value
    const spec = (lease["spec"] ?? {}) as LeaseSpec
    const renewed = spec.renewTime ? Date.parse(spec.renewTime) : 0
    const expires = renewed + (spec.leaseDurationSeconds ?? durationS) * 1000
    const mine = spec.holderIdentity === options.identity
    if (!mine && spec.holderIdentity && now < expires) return false
    const next: LeaseSpec = {
      holderIdentity: options.identity,
      leaseDurationSeconds: durationS,
      renewTime: micro(now),
      acquireTime: mine && spec.acquireTime ? spec.acquireTime : micro(now),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1)
    }
    // replace is guarded by resourceVersion: of two candidates racing, one gets Conflict.
    return yield* client.replace("leases", options.namespace, { ...lease, spec: next }).pipe(
      Effect.as(true),
      Effect.catchTag("KubeError", (e) => e.reason === "Conflict" ? Effect.succeed(false) : Effect.fail(e))
    )
  })

/**
 * Campaigns until leader, then runs `lead` in a scope while renewing. Returns
 * (after closing that scope) when leadership is lost; callers usually exit.
 */
export const run = <E, R>(
  client: KubeClientShape,
  options: LeaderElectionOptions,
  lead: Effect.Effect<unknown, E, R | Scope.Scope>
): Effect.Effect<void, E, Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const retry = Duration.fromInputUnsafe(options.retryPeriod ?? "5 seconds")
    const deadlineMs = Duration.toMillis(Duration.fromInputUnsafe(options.renewDeadline ?? "10 seconds"))
    // Campaign.
    yield* tryAcquireOrRenew(client, options).pipe(
      Effect.catch(() => Effect.succeed(false)),
      Effect.repeat({ until: (leader) => leader, schedule: Schedule.spaced(retry) })
    )
    yield* Effect.logInfo("became leader").pipe(Effect.annotateLogs({ lease: options.name, identity: options.identity }))
    const scope = yield* Scope.make()
    const renewLoop = Effect.gen(function*() {
      let lastRenew = yield* Clock.currentTimeMillis
      while (true) {
        yield* Effect.sleep(retry)
        const ok = yield* tryAcquireOrRenew(client, options).pipe(Effect.catch(() => Effect.succeed(false)))
        const now = yield* Clock.currentTimeMillis
        if (ok) lastRenew = now
        else if (now - lastRenew >= deadlineMs) return
      }
    })
    const outcome = yield* Effect.raceFirst(
      lead.pipe(Scope.provide(scope), Effect.andThen(Effect.never)),
      renewLoop
    ).pipe(Effect.exit)
    yield* Scope.close(scope, Exit.void)
    yield* Effect.logWarning("lost leadership").pipe(Effect.annotateLogs({ lease: options.name, identity: options.identity }))
    if (Exit.isFailure(outcome)) return yield* Effect.failCause(outcome.cause)
  })
