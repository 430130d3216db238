/**
 * Leader election on a coordination.k8s.io Lease, like Argo's controller
 * (lease `workflow-controller`, or `workflow-controller-<instanceID>`, in the
 * system namespace; 15s lease, 10s renew deadline, 5s retry period). Only the
 * leader runs the controller; a leader that cannot renew within the deadline
 * stops it (closing its scope) before another replica can take over, so two
 * controllers never act on the same workflows.
 *
 * As client-go's leaderelection, a replica never compares the timestamps
 * written in the Lease with its own clock (clock skew between nodes would
 * decide who leads): it remembers the record it last saw and the local time
 * it first saw it, and takes the lease over only when the record has not
 * changed for `leaseDuration` of its own time. The holder, for its part,
 * gives up after `renewDeadline` (shorter) of its own time without a renewal.
 * What this tolerates is a difference in clock rates, not in clock values.
 */
import { Clock, Duration, Effect, Exit, Option, Ref, Schedule, Scope } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"

export interface LeaderElectionOptions {
  readonly namespace: string
  readonly name: string
  readonly identity: string
  readonly leaseDuration?: Duration.Input
  readonly renewDeadline?: Duration.Input
  readonly retryPeriod?: Duration.Input
}

/** Argo's (and client-go's usual) timings, used for options left out. */
export const defaultTimings = {
  leaseDuration: Duration.seconds(15),
  renewDeadline: Duration.seconds(10),
  retryPeriod: Duration.seconds(5)
} as const

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

/** What this replica last saw in the Lease, and when by its own clock (client-go's observedRecord and observedTime). */
export interface Observation {
  readonly holderIdentity: string | undefined
  /** The record's own `leaseDurationSeconds` (the holder's promise), else ours. */
  readonly leaseDurationMs: number
  /** Local time (Clock) at which this record was first seen. */
  readonly observedAt: number
  /** Holder, renew and acquire times, transitions and duration: any change to these is a sign of life. */
  readonly record: string
}

/** One replica's side of the election: the attempts share what it last observed. */
export interface Elector {
  /**
   * One attempt to become or stay leader. Succeeds with true when we hold the
   * lease after it; false when someone else holds a lease whose record changed
   * less than its lease duration ago by our clock.
   */
  readonly tryAcquireOrRenew: Effect.Effect<boolean, KubeError>
  /** The last record seen (None before the first successful read or write). */
  readonly observation: Effect.Effect<Option.Option<Observation>>
}

const specOf = (lease: KubeObject): LeaseSpec => (lease["spec"] ?? {}) as LeaseSpec

const recordOf = (spec: LeaseSpec): string =>
  JSON.stringify([spec.holderIdentity ?? "", spec.renewTime ?? "", spec.acquireTime ?? "", spec.leaseTransitions ?? 0, spec.leaseDurationSeconds ?? null])

export const makeElector = (client: KubeClientShape, options: LeaderElectionOptions): Effect.Effect<Elector> =>
  Effect.gen(function*() {
    const durationS = Math.round(Duration.toSeconds(Duration.fromInputUnsafe(options.leaseDuration ?? defaultTimings.leaseDuration)))
    const observed = yield* Ref.make(Option.none<Observation>())
    /** Keeps the time of the first sighting while the record stays the same. */
    const observe = (spec: LeaseSpec, now: number): Effect.Effect<Observation> =>
      Ref.modify(observed, (previous) => {
        const record = recordOf(spec)
        if (Option.isSome(previous) && previous.value.record === record) return [previous.value, previous]
        const next: Observation = {
          holderIdentity: spec.holderIdentity,
          leaseDurationMs: (spec.leaseDurationSeconds ?? durationS) * 1000,
          observedAt: now,
          record
        }
        return [next, Option.some(next)]
      })
    const tryAcquireOrRenew = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const existing = yield* client.get("leases", options.namespace, options.name).pipe(
        Effect.map(Option.some),
        Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none<KubeObject>()) : Effect.fail(e))
      )
      if (Option.isNone(existing)) {
        return yield* client.create("leases", options.namespace, {
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
        }).pipe(
          Effect.tap((created) => observe(specOf(created), now)),
          Effect.as(true),
          Effect.catchTag("KubeError", (e) => e.reason === "AlreadyExists" ? Effect.succeed(false) : Effect.fail(e))
        )
      }
      const lease = existing.value
      const spec = specOf(lease)
      // Read after the answer (as client-go): a slow request must not make the record look older than it is.
      const seenAt = yield* Clock.currentTimeMillis
      const observation = yield* observe(spec, seenAt)
      const mine = spec.holderIdentity === options.identity
      // The Lease's own timestamps are the holder's clock, not ours: only how long the record has stood still counts.
      if (!mine && spec.holderIdentity && seenAt < observation.observedAt + observation.leaseDurationMs) return false
      const next: LeaseSpec = {
        holderIdentity: options.identity,
        leaseDurationSeconds: durationS,
        renewTime: micro(now),
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : micro(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1)
      }
      // replace is guarded by resourceVersion: of two candidates racing, one gets Conflict.
      return yield* client.replace("leases", options.namespace, { ...lease, spec: next }).pipe(
        Effect.tap((written) => observe(specOf(written), now)),
        Effect.as(true),
        Effect.catchTag("KubeError", (e) => e.reason === "Conflict" ? Effect.succeed(false) : Effect.fail(e))
      )
    })
    return { tryAcquireOrRenew, observation: Ref.get(observed) }
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
    const retry = Duration.fromInputUnsafe(options.retryPeriod ?? defaultTimings.retryPeriod)
    const deadlineMs = Duration.toMillis(Duration.fromInputUnsafe(options.renewDeadline ?? defaultTimings.renewDeadline))
    const elector = yield* makeElector(client, options)
    // Campaign.
    yield* elector.tryAcquireOrRenew.pipe(
      Effect.catch(() => Effect.succeed(false)),
      Effect.repeat({ until: (leader) => leader, schedule: Schedule.spaced(retry) })
    )
    yield* Effect.logInfo("became leader").pipe(Effect.annotateLogs({ lease: options.name, identity: options.identity }))
    const scope = yield* Scope.make()
    const renewLoop = Effect.gen(function*() {
      let lastRenew = yield* Clock.currentTimeMillis
      while (true) {
        yield* Effect.sleep(retry)
        const ok = yield* elector.tryAcquireOrRenew.pipe(Effect.catch(() => Effect.succeed(false)))
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
