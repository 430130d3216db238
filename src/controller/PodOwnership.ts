/**
 * Whose a pod is. Labels say which workflow a pod claims, but anyone who may create or patch a
 * pod can write labels: the controller acts on (deletes, labels, waits for, adopts) only the pods
 * it can show are a workflow's own, by the node's record in the status (`PodIdentity`), an owner
 * reference to the workflow's uid, or this controller's proof (`PodProof`, an HMAC over the pod
 * under a key kept in a secret). Pods of a previous version (no proofs then) made for a node that
 * had already started when this controller came up pass as legacy.
 *
 * Also remembers the uid each workflow key last had (the one record of it: the Reconciler reads it
 * too), so pods and task results of a workflow that is gone can still be told apart from those of
 * a same-named successor, and a workflow re-created under its name is noticed.
 */
import { Clock, Context, Effect, Layer, Option } from "effect"
import { KubeClient } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { annotationNodeId } from "../util/argoKeys.js"
import { executorEnvOf } from "../workflow/engine/pod.js"
import { ControllerSettings, timingOf } from "./ControllerSettings.js"
import { type WorkflowRef, workflowKey } from "./observe.js"
import { judgePod, type PodRecord, type PodVerdict, recordedPod, storedNodes } from "./PodIdentity.js"
import * as PodProof from "./PodProof.js"

export class PodOwnership extends Context.Service<PodOwnership, {
  /** The proof key; undefined when the controller may not keep one (then labels decide, as before proofs). */
  readonly proofKey: PodProof.PodProofKey | undefined
  /** `judgePod` for workflow `wf`, with this controller's proofs and its start time for legacy pods. */
  readonly judge: (pod: KubeObject, cluster: string, wf: KubeObject, record: (nodeId: string) => PodRecord | undefined) => PodVerdict
  /**
   * Whether the controller may delete `pod` (or wait for it) for a workflow: when the workflow is
   * known, the pod must be its node's pod (`judgePod`); when it is gone, the pod must carry the
   * controller's proof for the workflow's last known uid, or sit in its namespace controlled by it.
   * `pending`: records of pods created whose status write is still to come (`Expectations.pendingRecords`).
   */
  readonly ownedBy: (
    pod: KubeObject,
    cluster: string,
    ref: WorkflowRef,
    wf: KubeObject | undefined,
    pending: ReadonlyMap<string, PodRecord>
  ) => boolean
  /**
   * Whether a pod of this cluster's controller, seen in `cluster`, is an orphan the sweep may
   * delete: its workflow (`current`, as cached by its labels' name) no longer exists.
   */
  readonly orphan: (pod: KubeObject, cluster: string, current: Option.Option<KubeObject>) => boolean
  /** `pod` as it is to be created, with the proof for `fields` when there is a key. */
  readonly prove: (pod: KubeObject, fields: PodProof.ProofFields) => KubeObject
  /** Notes the uid a workflow key has now. */
  readonly rememberUid: (key: string, uid: string) => Effect.Effect<void>
  /** The uid the key last had, if the controller saw it. */
  readonly lastUid: (key: string) => string | undefined
  readonly forgetUid: (key: string) => Effect.Effect<void>
}>()("flotilla/controller/PodOwnership") {
  /** Reads (or makes) the proof key; the layer's build time counts as the controller's start. */
  static readonly layer = Layer.effect(PodOwnership, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const { config, options } = yield* ControllerSettings
  const local = yield* KubeClient
  const proofKey = Option.getOrUndefined(yield* PodProof.loadKey(local, timingOf(options).systemNamespace))
  /** When this controller started: pods without a proof created before it may be a previous version's (see `judgePod`). */
  const startedAt = yield* Clock.currentTimeMillis
  // Which uid a key last had, so the per-node tables can be cleared when the workflow is gone.
  const uidByKey = new Map<string, string>()

  const proven = (wf: KubeObject) => (pod: KubeObject, cluster: string, nodeId: string) =>
    proofKey !== undefined && proofKey.verify(pod, cluster, wf.metadata.uid ?? "", nodeId)
  const legacy = (wf: KubeObject) => (pod: KubeObject, nodeId: string) => {
    if (pod.metadata.annotations?.[PodProof.proofAnnotation] !== undefined) return false
    const created = Date.parse(pod.metadata.creationTimestamp ?? "")
    const node = storedNodes(wf)[nodeId]
    const nodeStarted = Date.parse(String(node?.["startedAt"] ?? ""))
    // made by a controller before this one (proofs did not exist), for a node already started then
    return Number.isFinite(created) && created < startedAt && Number.isFinite(nodeStarted) && created >= nodeStarted - 1000 &&
      !(wf.metadata.uid !== undefined && pod.metadata.annotations?.[annotationNodeId] !== nodeId)
  }
  const judge = (pod: KubeObject, cluster: string, wf: KubeObject, record: (nodeId: string) => PodRecord | undefined) =>
    judgePod(pod, cluster, wf, config.cluster, record, proven(wf), legacy(wf))

  const ownedBy = (
    pod: KubeObject,
    cluster: string,
    ref: WorkflowRef,
    wf: KubeObject | undefined,
    pending: ReadonlyMap<string, PodRecord>
  ): boolean => {
    if (wf !== undefined) {
      const stored = storedNodes(wf)
      const record = (nodeId: string) => pending.get(nodeId) ?? recordedPod(stored, nodeId)
      return judge(pod, cluster, wf, record)._tag === "Accepted"
    }
    if (proofKey === undefined) return true
    const uid = uidByKey.get(workflowKey(ref))
    if (uid === undefined) return false
    const nodeId = pod.metadata.annotations?.[annotationNodeId] ?? ""
    if (proofKey.verify(pod, cluster, uid, nodeId)) return true
    return cluster === config.cluster && pod.metadata.namespace === ref.namespace &&
      (pod.metadata.ownerReferences ?? []).some((o) => o.kind === "Workflow" && o.uid === uid && o.controller === true)
  }

  const orphan = (pod: KubeObject, cluster: string, current: Option.Option<KubeObject>): boolean => {
    if (proofKey === undefined) return Option.isNone(current)
    // Labels can be written by anyone who may patch a pod: only a pod this controller made
    // (its proof, for the workflow uid its executor environment names, which cannot change)
    // is swept, once no workflow of that uid exists.
    // (a pod's spec cannot change after its creation)
    const uid = executorEnvOf(pod)["ARGO_WORKFLOW_UID"]
    const nodeId = pod.metadata.annotations?.[annotationNodeId] ?? ""
    if (uid === undefined || !proofKey.verify(pod, cluster, uid, nodeId)) return false
    return !(Option.isSome(current) && current.value.metadata.uid === uid)
  }

  return PodOwnership.of({
    proofKey,
    judge,
    ownedBy,
    orphan,
    prove: (pod, fields) => proofKey === undefined ? pod : PodProof.withProof(pod, proofKey.sign(fields, pod)),
    rememberUid: (key, uid) => Effect.sync(() => void uidByKey.set(key, uid)),
    lastUid: (key) => uidByKey.get(key),
    forgetUid: (key) => Effect.sync(() => void uidByKey.delete(key))
  })
})
