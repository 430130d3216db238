/**
 * What a reconcile sees of a workflow's pods and task results, read from the informer caches by
 * index (`CacheIndexes`), judged (`PodOwnership`: only the node's own pod is observed for it, the
 * rest is counted and logged once as ignored), and overlaid with what the caches do not show yet
 * (`Expectations`: pods created but not delivered, failed creates).
 *
 * Completed task results delivered by a watch are retained until their workflow is gone: argoexec
 * puts an owner reference to the Workflow on each, and where the Workflow kind exists but that
 * Workflow does not (a pod in another namespace of the workflow's own cluster, or a remote cluster
 * that runs Argo too), the garbage collector deletes the result milliseconds after it is written,
 * so a reconcile may find it gone.
 */
import { Context, Effect, Layer } from "effect"
import { ClusterPool, type ClusterView } from "../kube/ClusterPool.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { labelReportOutputsCompleted } from "../util/argoKeys.js"
import type { PodObservation, TaskResultObservation } from "../workflow/engine/contract.js"
import { byWorkflow, byWorkflowName } from "./CacheIndexes.js"
import { ControllerSettings } from "./ControllerSettings.js"
import { Expectations } from "./Expectations.js"
import { observePod, observeTaskResult, parseWorkflowKey, type WorkflowRef, workflowKey } from "./observe.js"
import { acceptsTaskResult, needsRecord, type PodRecord } from "./PodIdentity.js"
import { PodOwnership } from "./PodOwnership.js"

/** A pod as found in a cluster's cache. */
export interface PodInCluster {
  readonly view: ClusterView
  readonly pod: KubeObject
}

/** A node's own pod (as judged): the only pod ever deleted or labelled for it. */
export interface OwnPod {
  readonly cluster: string
  readonly namespace: string
  readonly name: string
  readonly uid: string
}

export interface Observed {
  /** The engine's view of the pods, by node id. */
  readonly pods: Map<string, PodObservation>
  readonly taskResults: Map<string, TaskResultObservation>
  readonly accepted: ReadonlyMap<string, OwnPod>
}

export class Observation extends Context.Service<Observation, {
  /** Every cached pod, in any cluster, that claims the workflow by its labels (by index). */
  readonly podsOfWorkflow: (ref: WorkflowRef) => Effect.Effect<ReadonlyArray<PodInCluster>>
  /**
   * The engine's observations of workflow `wf` (key `key`, uid `wfUid`) at `now`; `record` gives
   * each node's pod record. Records pods found unrecorded (made just before a restart).
   */
  readonly observe: (
    key: string,
    wf: KubeObject,
    record: (nodeId: string) => PodRecord | undefined,
    now: number
  ) => Effect.Effect<Observed>
  /** Keeps a completed task result seen in `cluster` (its owner is an existing workflow). */
  readonly retainReported: (cluster: string, result: KubeObject) => Effect.Effect<void>
  /** The workflow of that uid is gone: drop its retained results. */
  readonly forgetReported: (uid: string) => Effect.Effect<void>
  /** Pods and task results that claimed a workflow's node but were not the ones made for it. */
  readonly ignored: Effect.Effect<{ readonly pods: number; readonly taskResults: number }>
}>()("flotilla/controller/Observation") {
  static readonly layer = Layer.effect(Observation, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const { config } = yield* ControllerSettings
  const pool = yield* ClusterPool
  const ownership = yield* PodOwnership
  const expectations = yield* Expectations

  /** Objects already counted (and logged) as ignored, by uid; bounded. */
  const ignoredSeen = new Set<string>()
  const ignoredCounts = { pods: 0, taskResults: 0 }
  const noteIgnored = (kind: "pods" | "taskResults", key: string, cluster: string, object: KubeObject, reason: string) =>
    Effect.suspend(() => {
      const id = `${kind}/${object.metadata.uid ?? `${cluster}/${object.metadata.namespace}/${object.metadata.name}`}`
      if (ignoredSeen.has(id)) return Effect.void
      // bounded, oldest first out (a Set iterates in insertion order)
      if (ignoredSeen.size >= 10_000) ignoredSeen.delete(ignoredSeen.values().next().value!)
      ignoredSeen.add(id)
      ignoredCounts[kind]++
      return Effect.logWarning(kind === "pods" ? "ignoring a pod that is not the node's" : "ignoring a task result that is not the node's").pipe(
        Effect.annotateLogs({ workflow: key, cluster, namespace: object.metadata.namespace ?? "", name: object.metadata.name ?? "", reason })
      )
    })

  const podsOfWorkflow = (ref: WorkflowRef) =>
    Effect.gen(function*() {
      const views = yield* pool.all
      const out: Array<PodInCluster> = []
      for (const view of views) {
        for (const pod of yield* view.pods.byIndex(byWorkflow, workflowKey(ref))) out.push({ view, pod })
      }
      return out
    })

  /** Completed task results as last seen, by the uid of the workflow they name as owner, then `cluster/namespace/name`. */
  const reportedResults = new Map<string, Map<string, KubeObject>>()
  const retainReported = (cluster: string, result: KubeObject) =>
    Effect.sync(() => {
      const uid = result.metadata.ownerReferences?.find((o) => o.kind === "Workflow")?.uid
      if (uid === undefined || result.metadata.labels?.[labelReportOutputsCompleted] !== "true") return
      let byKey = reportedResults.get(uid)
      if (byKey === undefined) reportedResults.set(uid, byKey = new Map())
      byKey.set(`${cluster}/${result.metadata.namespace}/${result.metadata.name}`, result)
    })

  const observe = (key: string, wf: KubeObject, recordOf: (nodeId: string) => PodRecord | undefined, now: number) =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const wfUid = wf.metadata.uid ?? ""
      const observed = yield* podsOfWorkflow(ref)
      const accepted = new Map<string, OwnPod>()
      const seen = new Map<string, PodObservation>()
      const locations = new Set<string>()
      for (const { view, pod } of observed) {
        const verdict = ownership.judge(pod, view.name, wf, recordOf)
        if (verdict._tag === "Ignored") {
          yield* noteIgnored("pods", key, view.name, pod, verdict.reason)
          continue
        }
        accepted.set(verdict.nodeId, { cluster: view.name, namespace: pod.metadata.namespace ?? "", name: pod.metadata.name ?? "", uid: pod.metadata.uid ?? "" })
        if (verdict.unrecorded === true && pod.metadata.uid && needsRecord(wf, config.cluster, view.name, pod.metadata.namespace ?? "")) {
          // Created just before a restart (or by a previous version), before its record was stored: record it now.
          yield* expectations.record(wfUid, verdict.nodeId, { uid: pod.metadata.uid, cluster: view.name, namespace: pod.metadata.namespace! })
        }
        const obs = observePod(pod, view.name)
        if (obs) {
          seen.set(obs.nodeId, obs)
          locations.add(`${view.name}/${obs.namespace}`)
        }
      }
      // failed creates, and pods created but not delivered by their watch yet
      const pods = yield* expectations.overlay(wfUid, seen, now)
      const taskResults = new Map<string, TaskResultObservation>()
      const podOf = (nodeId: string) => pods.get(nodeId)
      // Results named after a node, sitting where its pod runs, that the workflow does not own.
      const foreignResults = new Map<string, string>()
      for (const view of yield* pool.all) {
        const results = (yield* view.taskResults.byIndex(byWorkflowName, ref.name)).filter((r) =>
          locations.has(`${view.name}/${r.metadata.namespace}`)
        )
        for (const r of results) {
          if (!pods.has(r.metadata.name ?? "")) continue
          if (!acceptsTaskResult(r, view.name, wf, podOf)) {
            yield* noteIgnored("taskResults", key, view.name, r, "not in the node's pod's cluster and namespace, or not owned by the workflow's UID")
            const pod = podOf(r.metadata.name!)
            if (pod?.cluster === view.name && pod.namespace === r.metadata.namespace) {
              foreignResults.set(r.metadata.name!, `${view.name}/${r.metadata.namespace}/${r.metadata.name}`)
            }
            continue
          }
          const obs = observeTaskResult(r)
          if (obs) taskResults.set(obs.nodeId, obs)
        }
      }
      for (const [resultKey, r] of reportedResults.get(wfUid) ?? []) {
        const obs = observeTaskResult(r)
        const cluster = resultKey.slice(0, resultKey.indexOf("/"))
        if (obs && !taskResults.get(obs.nodeId)?.completed && acceptsTaskResult(r, cluster, wf, podOf)) taskResults.set(obs.nodeId, obs)
      }
      // The executor patches a result that already exists, so one written first by someone else
      // (a co-tenant of a shared namespace) would keep the node waiting for ever: once its pod is
      // done, the node fails and says why. Its outputs are never read.
      for (const [nodeId, where] of foreignResults) {
        const pod = pods.get(nodeId)
        if (pod === undefined || taskResults.get(nodeId)?.completed || (pod.phase !== "Succeeded" && pod.phase !== "Failed")) continue
        pods.set(nodeId, {
          ...pod,
          phase: "Failed",
          message: `task result ${where} is not this workflow's (not owned by its UID): its outputs are not read`
        })
      }
      return { pods, taskResults, accepted } satisfies Observed
    })

  return Observation.of({
    podsOfWorkflow,
    observe,
    retainReported,
    forgetReported: (uid) => Effect.sync(() => void reportedResults.delete(uid)),
    ignored: Effect.sync(() => ({ ...ignoredCounts }))
  })
})
