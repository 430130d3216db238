/**
 * Creates the pods the engine asks for, in parallel (bounded), and says what became of each to
 * `Expectations`: created (expected until its watch delivers it, its record kept until stored),
 * waiting (a transient failure: the node's message says why, and the create is tried again), or
 * failed for good (the node fails with `CreateFailed`).
 *
 * Never create a pod outside the workflow's own cluster and namespace with the controller's
 * identity: there it is made with the user's credentials (`UserClients`, from the workflow's
 * service account), so a workflow can do no more elsewhere than its author may.
 *
 * A transient failure waits at most `createTimeout`, except a full ResourceQuota, which waits
 * until the workflow ends as upstream's does. A 401 or 403 counts as transient while the cluster
 * is settling (down, or back from an outage less than `refusalGrace` ago): an API server that
 * just restarted refuses what users may do until its RBAC cache has synced.
 *
 * Names are deterministic, so a create may find its name taken (`nameTaken`): the node's own pod
 * is adopted, an impostor claiming the node is replaced, and another workflow's pod is never
 * touched.
 */
import { Clock, Context, Duration, Effect, Layer, Schema } from "effect"
import { type ClusterNotAvailable, ClusterPool, type ClusterView } from "../kube/ClusterPool.js"
import { KubeClient, type KubeClientShape } from "../kube/api/KubeClient.js"
import { isTransient, type KubeError, quotaExceeded, refused } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { UserClients } from "../kube/UserClients.js"
import { annotationNodeId } from "../util/argoKeys.js"
import type { EngineAction } from "../workflow/engine/contract.js"
import { ControllerSettings, expectationTtlMs, timingOf } from "./ControllerSettings.js"
import { Expectations } from "./Expectations.js"
import { ownerOfPod, workflowKey } from "./observe.js"
import { needsRecord, type PodRecord } from "./PodIdentity.js"
import { PodOwnership } from "./PodOwnership.js"
import { boundedBy } from "./RequestTimeout.js"
import { WorkQueue } from "./WorkQueue.js"

export type CreatePodAction = Extract<EngineAction, { _tag: "CreatePod" }>

export class CreateFailure extends Schema.TaggedError<CreateFailure>()("CreateFailure", {
  transient: Schema.Boolean,
  /** Retried until it works or the workflow ends, not only for `createTimeout` (a full ResourceQuota, as upstream). */
  untilDeadline: Schema.optionalKey(Schema.Boolean),
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

export class PodCreator extends Context.Service<PodCreator, {
  /** Creates one pod; its record (uid, where) when the API server gave a uid. */
  readonly createPod: (
    wf: KubeObject,
    action: CreatePodAction,
    record: (nodeId: string) => PodRecord | undefined
  ) => Effect.Effect<PodRecord | undefined, CreateFailure>
  /**
   * Creates the pods of `actions` for workflow `wf` (key `key`) and notes each outcome in
   * `Expectations`, queueing the key again as each outcome needs. Returns the delay before the
   * creates that wait for their cluster are tried again, if any.
   */
  readonly createAll: (
    key: string,
    wf: KubeObject,
    actions: ReadonlyArray<CreatePodAction>,
    record: (nodeId: string) => PodRecord | undefined,
    now: number
  ) => Effect.Effect<number | undefined>
}>()("flotilla/controller/PodCreator") {
  static readonly layer = Layer.effect(PodCreator, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const { config, options } = yield* ControllerSettings
  const timing = timingOf(options)
  const bounded = boundedBy(timing.requestTimeout)
  const local = yield* KubeClient
  const pool = yield* ClusterPool
  const users = yield* UserClients
  const ownership = yield* PodOwnership
  const expectations = yield* Expectations
  const queue = yield* WorkQueue

  /**
   * True while a cluster's connection is down or came back from an outage less than `refusalGrace`
   * ago: its API server may have restarted and not yet synced its RBAC cache.
   */
  const settling = (cluster: string) =>
    Effect.gen(function*() {
      const state = (yield* pool.states).get(cluster)
      if (state === undefined) return false
      if (state._tag !== "Connected") return state._tag !== "Failed"
      if (!state.afterOutage) return false
      return (yield* Clock.currentTimeMillis) - state.since < timing.refusalGraceMs
    })

  /** A failed pod create, classified: worth trying again (for how long), or final. */
  const createFailed = (cluster: string, e: KubeError) =>
    Effect.gen(function*() {
      if (quotaExceeded(e)) return new CreateFailure({ transient: true, untilDeadline: true, detail: e.detail })
      const transient = isTransient(e) || (refused(e) && (yield* settling(cluster)))
      return new CreateFailure({ transient, detail: e.message })
    })

  const createPod = (
    wf: KubeObject,
    action: CreatePodAction,
    record: (nodeId: string) => PodRecord | undefined
  ) =>
    Effect.gen(function*() {
      const wfNamespace = wf.metadata.namespace!
      const sameNamespace = action.cluster === config.cluster && action.namespace === wfNamespace
      const view = yield* pool.get(action.cluster).pipe(
        Effect.mapError((e: ClusterNotAvailable) => new CreateFailure({ transient: false, detail: e.message }))
      )
      let client: KubeClientShape
      if (sameNamespace) {
        client = local
      } else {
        const serviceAccountName = ((wf["spec"] as { serviceAccountName?: string } | undefined)?.serviceAccountName) || "default"
        // held (not closed for being idle or rotated) until this create is done
        client = yield* users.acquire({
          workflowNamespace: wfNamespace,
          workflowName: wf.metadata.name!,
          serviceAccountName,
          cluster: action.cluster,
          namespace: action.namespace,
          system: view.spec,
          allowInsecureSkipTlsVerify: config.allowInsecureSkipTlsVerify
        }).pipe(Effect.mapError((e) => new CreateFailure({ transient: e.transient === true, detail: e.message })))
      }
      const podName = action.pod.metadata.name ?? ""
      const pod = ownership.prove(action.pod, {
        workflowUid: wf.metadata.uid ?? "",
        nodeId: action.nodeId,
        cluster: action.cluster,
        namespace: action.namespace,
        podName
      })
      return yield* bounded(
        client.create("pods", action.namespace, pod),
        { cluster: action.cluster, verb: "create", resource: "pods", namespace: action.namespace, name: podName }
      ).pipe(
        Effect.map((pod): PodRecord | undefined =>
          pod.metadata.uid ? { uid: pod.metadata.uid, cluster: action.cluster, namespace: action.namespace } : undefined
        ),
        Effect.catchTag("KubeError", (e: KubeError) =>
          e.reason === "AlreadyExists"
            ? nameTaken(wf, action, view, record)
            : Effect.flatMap(createFailed(action.cluster, e), Effect.fail))
      )
    }).pipe(Effect.scoped)

  /**
   * The create found a pod of that name (names are deterministic). If it is the node's recorded
   * pod, the watch has not shown it yet: wait. If it claims this workflow's node but is not the
   * recorded one (a crash between create and status write, or a pod someone else made to pose as
   * ours), it is deleted and the node's pod made again. A pod of another workflow is never
   * touched: the node fails, naming the pod that holds the name.
   */
  const nameTaken = (
    wf: KubeObject,
    action: CreatePodAction,
    view: ClusterView,
    record: (nodeId: string) => PodRecord | undefined
  ) =>
    Effect.gen(function*() {
      const podName = action.pod.metadata.name ?? ""
      const where = `${action.cluster}/${action.namespace}/${podName}`
      // The holder may carry none of our labels (the watch would not show it): ask for it by name.
      const listed = yield* bounded(
        view.client.list("pods", action.namespace, { fieldSelector: `metadata.name=${podName}` }),
        { cluster: action.cluster, verb: "list", resource: "pods", namespace: action.namespace, name: podName }
      ).pipe(Effect.mapError((e) => new CreateFailure({ transient: isTransient(e), detail: e.message })))
      const cached = listed.items.find((p) => p.metadata.name === podName)
      if (cached === undefined) {
        return yield* new CreateFailure({ transient: true, detail: `pod ${where} exists but could not be listed yet` })
      }
      const verdict = ownership.judge(cached, action.cluster, wf, record)
      if (verdict._tag === "Accepted" && verdict.nodeId === action.nodeId) {
        // The node's own pod (recorded, controlled by the workflow, or carrying the proof): adopt it.
        return { uid: cached.metadata.uid!, cluster: action.cluster, namespace: action.namespace }
      }
      const owner = ownerOfPod(cached, config.cluster)
      const claimsNode = owner !== undefined && owner.name === wf.metadata.name && owner.namespace === wf.metadata.namespace &&
        cached.metadata.annotations?.[annotationNodeId] === action.nodeId
      if (!claimsNode) {
        return yield* new CreateFailure({
          transient: false,
          detail: `pod name ${where} is taken by a pod that is not this node's (${
            owner === undefined ? "not made by this controller" : `it belongs to workflow ${workflowKey(owner)}`
          })`
        })
      }
      yield* Effect.logWarning("replacing a pod this controller has no record of creating").pipe(
        Effect.annotateLogs({ workflow: workflowKey({ namespace: wf.metadata.namespace!, name: wf.metadata.name! }), pod: where, uid: cached.metadata.uid ?? "" })
      )
      yield* bounded(
        view.client.delete("pods", action.namespace, podName, { uid: cached.metadata.uid! }),
        { cluster: action.cluster, verb: "delete", resource: "pods", namespace: action.namespace, name: podName }
      ).pipe(Effect.catchTag("KubeError", (e) => e.reason === "NotFound" || e.reason === "Conflict" ? Effect.void : Effect.fail(new CreateFailure({ transient: isTransient(e), detail: e.message }))))
      return yield* new CreateFailure({ transient: true, detail: `replacing pod ${where}: it is not the pod created for this node` })
    })

  const createAll = (
    key: string,
    wf: KubeObject,
    actions: ReadonlyArray<CreatePodAction>,
    recordOf: (nodeId: string) => PodRecord | undefined,
    now: number
  ) =>
    Effect.gen(function*() {
      const wfUid = wf.metadata.uid ?? ""
      let retryCreates: number | undefined
      let failedNow = false
      const createOne = (action: CreatePodAction) =>
        createPod(wf, action, recordOf).pipe(
          Effect.tap((record) =>
            Effect.gen(function*() {
              yield* expectations.created(
                wfUid,
                action.nodeId,
                {
                  nodeId: action.nodeId,
                  podName: action.pod.metadata.name ?? "",
                  cluster: action.cluster,
                  namespace: action.namespace,
                  phase: "Pending"
                },
                record !== undefined && needsRecord(wf, config.cluster, action.cluster, action.namespace) ? record : undefined,
                now
              )
              // if the pod never shows up (deleted before it was seen), look again once the expectation lapsed
              yield* queue.addAfter(key, Duration.millis(expectationTtlMs + 1000))
            })
          ),
          Effect.catchTag("CreateFailure", (failure) =>
            Effect.gen(function*() {
              const quota = failure.untilDeadline === true
              // (time spent waiting for quota does not count against a cluster's createTimeout)
              const since = yield* expectations.waiting(
                wfUid,
                action.nodeId,
                now,
                // A full quota is not the cluster's fault: its message is shown as upstream shows it.
                quota ? failure.detail : `waiting for cluster: ${failure.detail}`,
                quota ? "quota" : "cluster"
              )
              if (failure.transient && (quota || now - since < timing.createTimeoutMs)) {
                retryCreates = Duration.toMillis(timing.retry)
                yield* Effect.logWarning(quota ? "pod creation waiting for quota" : "pod creation waiting for cluster").pipe(
                  Effect.annotateLogs({ workflow: key, cluster: action.cluster, error: failure.detail })
                )
                return
              }
              failedNow = true
              yield* expectations.failed(wfUid, action.nodeId, {
                nodeId: action.nodeId,
                podName: action.pod.metadata.name ?? "",
                cluster: action.cluster,
                namespace: action.namespace,
                phase: "Failed",
                reason: "CreateFailed",
                message: failure.detail
              })
              yield* Effect.logError("pod creation failed").pipe(
                Effect.annotateLogs({ workflow: key, cluster: action.cluster, namespace: action.namespace, error: failure.detail })
              )
            }))
        )
      // This round's budget: creates left for the next round are asked for again by the engine
      // (no pod, no expectation), after this round's status is written.
      const deadline = (yield* Clock.currentTimeMillis) + timing.createRoundMs
      let started = 0
      let deferred = 0
      // Creates that never failed go first: a node waiting for a hung cluster (each try lasting a
      // request timeout) must not spend every round's budget ahead of nodes bound elsewhere.
      const waiting = yield* expectations.waitingOf(wfUid)
      const ordered = waiting.size === 0
        ? actions
        : [...actions.filter((a) => !waiting.has(a.nodeId)), ...actions.filter((a) => waiting.has(a.nodeId))]
      yield* Effect.forEach(
        ordered,
        (action) =>
          Effect.gen(function*() {
            if (started >= timing.maxCreatesPerRound || (yield* Clock.currentTimeMillis) >= deadline) {
              deferred++
              return false
            }
            started++
            return true
          }).pipe(Effect.flatMap((go) => go ? createOne(action) : Effect.void)),
        { concurrency: 8, discard: true }
      )
      if (deferred > 0) {
        yield* Effect.logInfo("pod creation goes on next round").pipe(Effect.annotateLogs({ workflow: key, created: started, left: deferred }))
        yield* queue.add(key)
      }
      if (failedNow) {
        // Fold the failures into the status right away.
        yield* queue.add(key)
      }
      return retryCreates
    })

  return PodCreator.of({ createPod, createAll })
})
