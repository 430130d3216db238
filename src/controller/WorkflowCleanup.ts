/**
 * The workflow finalizer's side: a workflow that may own pods outside its namespace (where no
 * owner reference reaches) holds a `FinalizerLease` until those pods are gone. Releasing it
 * deletes the workflow's own pods in every cluster (judged by `PodOwnership`: pods that merely
 * carry its labels are neither deleted nor waited for), waits until they are gone, deletes its
 * remote task results, then removes the finalizer.
 *
 * Never release while a cluster the workflow may have pods in is not watched live (or its cache
 * never filled): a pod created meanwhile would be missed and left behind.
 */
import { Context, Effect, Layer, Option, Schedule, Schema } from "effect"
import { ClusterPool } from "../kube/ClusterPool.js"
import { KubeClient } from "../kube/api/KubeClient.js"
import type { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { byWorkflowName } from "./CacheIndexes.js"
import { ClusterReadiness } from "./ClusterReadiness.js"
import { ControllerSettings, timingOf } from "./ControllerSettings.js"
import { Expectations } from "./Expectations.js"
import * as FinalizerLease from "./FinalizerLease.js"
import { Observation, type PodInCluster } from "./Observation.js"
import { parseWorkflowKey, type WorkflowRef, workflowKey } from "./observe.js"
import type { PodRecord } from "./PodIdentity.js"
import { PodOwnership } from "./PodOwnership.js"
import { boundedBy } from "./RequestTimeout.js"
import { WorkflowCache } from "./WorkflowCache.js"
import { WorkQueue } from "./WorkQueue.js"

/** The release cannot finish yet (clusters not watched, pods still terminating): it is tried again. */
export class CleanupPending extends Schema.TaggedError<CleanupPending>()("CleanupPending", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

export const isCompletedPhase = (phase: unknown): boolean => phase === "Succeeded" || phase === "Failed" || phase === "Error"
export const isCompleted = (wf: KubeObject): boolean => isCompletedPhase((wf["status"] as { phase?: unknown } | undefined)?.phase)
export const hasFinalizer = (wf: KubeObject): boolean => (wf.metadata.finalizers ?? []).includes(FinalizerLease.finalizerName)

export class WorkflowCleanup extends Context.Service<WorkflowCleanup, {
  /** Holds the finalizer lease of `key` (adding the finalizer); fails when the finalizer could not be added. */
  readonly hold: (key: string) => Effect.Effect<void, unknown>
  /** Ends the lease of `key`: its release (pods, task results, then the finalizer) runs in the lease's fibre. */
  readonly end: (key: string) => Effect.Effect<void>
  /**
   * For a completed workflow `wf` holding the finalizer: once its pods outside its own namespace
   * are gone and its clusters are watched live, deletes its remote task results and ends the
   * lease (else the key is looked at again after the cache wait while watches are down).
   */
  readonly releaseCompleted: (key: string, wf: KubeObject) => Effect.Effect<void>
}>()("flotilla/controller/WorkflowCleanup") {
  /** The leases run in fibres of the layer's scope; closing it keeps every finalizer for the next controller. */
  static readonly layer = Layer.effect(WorkflowCleanup, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const { options } = yield* ControllerSettings
  const timing = timingOf(options)
  const bounded = boundedBy(timing.requestTimeout)
  const local = yield* KubeClient
  const pool = yield* ClusterPool
  const workflows = yield* WorkflowCache
  const readiness = yield* ClusterReadiness
  const ownership = yield* PodOwnership
  const observation = yield* Observation
  const expectations = yield* Expectations
  const queue = yield* WorkQueue

  // Finalizer writes go through replace so a concurrent change is a Conflict, never a lost update.
  // With `cacheFirst`, the first try starts from the informer's copy (a workflow's first reconcile
  // reads the newest one: issue 14 counts a GET less per remote workflow); a Conflict, a copy
  // not cached yet or a cached copy that needs no write reads the stored one, as every later try does.
  const updateFinalizers = (
    key: string,
    change: (finalizers: ReadonlyArray<string>, current: KubeObject) => ReadonlyArray<string>,
    cacheFirst = false
  ) => {
    let tries = 0
    return Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const cached = cacheFirst && tries++ === 0 ? yield* workflows.get(ref.namespace, ref.name) : Option.none<KubeObject>()
      const same = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a.length === b.length && a.every((f, i) => f === b[i])
      let current = Option.isSome(cached) ? cached.value : yield* local.get("workflows", ref.namespace, ref.name)
      let before = current.metadata.finalizers ?? []
      let after = change(before, current)
      if (Option.isSome(cached) && same(after, before)) {
        // the cached copy is trusted only for a write (a stale one Conflicts): "nothing to do" is
        // checked on the stored copy (one the cache still shows with a finalizer since released)
        current = yield* local.get("workflows", ref.namespace, ref.name)
        before = current.metadata.finalizers ?? []
        after = change(before, current)
      }
      if (same(after, before)) return
      yield* local.replace("workflows", ref.namespace, {
        ...current,
        metadata: { ...current.metadata, finalizers: after }
      })
    }).pipe(
      Effect.retry({ while: (e) => e.reason === "Conflict", times: 5 })
    )
  }

  const leaseRetry = Schedule.min([
    Schedule.exponential(timing.leaseBackoff, 2),
    Schedule.spaced(timing.leaseBackoffMax)
  ]).pipe(Schedule.jittered)

  const deleteRemotePods = (key: string): Effect.Effect<void, CleanupPending | KubeError> =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const wf = yield* workflows.get(ref.namespace, ref.name)
      // Unreachable or never-synced clusters might hold pods we cannot see: do not release yet.
      if (Option.isSome(wf) && !(yield* readiness.cachesReady(wf.value))) {
        return yield* new CleanupPending({ detail: "waiting for cluster caches" })
      }
      if (Option.isSome(wf) && !(yield* readiness.watchesLive(wf.value))) {
        return yield* new CleanupPending({ detail: "waiting for cluster watches to reconnect" })
      }
      // Only the workflow's own pods: others that carry its labels are not its to delete, nor to wait for.
      const pending = Option.isSome(wf) ? yield* expectations.pendingRecords(wf.value.metadata.uid ?? "") : new Map<string, PodRecord>()
      const own = (listed: ReadonlyArray<PodInCluster>) =>
        listed.filter(({ view, pod }) => ownership.ownedBy(pod, view.name, ref, Option.getOrUndefined(wf), pending))
      const pods = own(yield* observation.podsOfWorkflow(ref))
      for (const { view, pod } of pods) {
        yield* bounded(
          view.client.delete("pods", pod.metadata.namespace, pod.metadata.name!, { uid: pod.metadata.uid! }),
          { cluster: view.name, verb: "delete", resource: "pods", namespace: pod.metadata.namespace, name: pod.metadata.name }
        ).pipe(
          Effect.catchTag("KubeError", (e) => e.reason === "NotFound" || e.reason === "Conflict" ? Effect.void : Effect.fail(e))
        )
      }
      const remaining = own(yield* observation.podsOfWorkflow(ref))
      if (remaining.length > 0) {
        return yield* new CleanupPending({ detail: `${remaining.length} pod(s) still terminating` })
      }
      yield* deleteTaskResults(ref)
    })

  const deleteTaskResults = (ref: WorkflowRef) =>
    Effect.gen(function*() {
      for (const view of yield* pool.all) {
        if (view.local) continue // local ones are owned by the Workflow and garbage-collected with it
        // Only results the workflow owns: a same-named workflow of another namespace may share this one.
        const uid = ownership.lastUid(workflowKey(ref))
        const results = yield* view.taskResults.byIndex(byWorkflowName, ref.name)
        for (const r of results) {
          if (!(r.metadata.name ?? "").startsWith(ref.name)) continue
          if (uid === undefined || !(r.metadata.ownerReferences ?? []).some((o) => o.kind === "Workflow" && o.uid === uid)) continue
          yield* bounded(
            view.client.delete("workflowtaskresults", r.metadata.namespace, r.metadata.name!),
            { cluster: view.name, verb: "delete", resource: "workflowtaskresults", namespace: r.metadata.namespace, name: r.metadata.name }
          ).pipe(
            Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.void : Effect.fail(e))
          )
        }
      }
    })

  const leases = yield* FinalizerLease.make({
    // A completed workflow never gets the finalizer (back): its pods are no longer created, and a
    // lease taken from a stale cache after the release must not undo the release.
    acquire: (key) =>
      updateFinalizers(key, (f, current) =>
        f.includes(FinalizerLease.finalizerName) || isCompleted(current) || current.metadata.deletionTimestamp
          ? f
          : [...f, FinalizerLease.finalizerName], true),
    release: (key) =>
      Effect.gen(function*() {
        yield* deleteRemotePods(key).pipe(
          Effect.tapError((e) => Effect.logWarning("holding finalizer").pipe(Effect.annotateLogs({ workflow: key, reason: e.message }))),
          Effect.retry(leaseRetry)
        )
        yield* updateFinalizers(key, (f) => f.filter((x) => x !== FinalizerLease.finalizerName)).pipe(
          Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.void : Effect.fail(e)),
          Effect.retry(leaseRetry)
        )
        yield* Effect.logInfo("finalizer released").pipe(Effect.annotateLogs({ workflow: key }))
      }).pipe(Effect.orDie)
  })

  const releaseCompleted = (key: string, wf: KubeObject) =>
    Effect.gen(function*() {
      if (!hasFinalizer(wf)) return
      const ref = parseWorkflowKey(key)
      const pendingRecords = yield* expectations.pendingRecords(wf.metadata.uid ?? "")
      const remaining = (yield* observation.podsOfWorkflow(ref)).filter(({ view, pod }) =>
        !(view.local && pod.metadata.namespace === ref.namespace) && ownership.ownedBy(pod, view.name, ref, wf, pendingRecords)
      )
      if (remaining.length > 0) return
      if (yield* readiness.watchesLive(wf)) {
        // losing this is fine: the lease's release deletes the task results again before it lets go
        yield* deleteTaskResults(ref).pipe(Effect.ignore)
        yield* leases.end(key)
      } else yield* queue.addAfter(key, timing.cacheWait)
    })

  return WorkflowCleanup.of({ hold: leases.hold, end: leases.end, releaseCompleted })
})
