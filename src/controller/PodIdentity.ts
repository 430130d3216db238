/**
 * Which pod is a node's pod. Labels and annotations say whose a pod claims
 * to be, and anyone who may create or edit pods in a watched namespace
 * (remote ones included) can write them; so the controller reads a pod for
 * a node's status or outputs only when it is the pod the controller created
 * for that node:
 *
 *  - its UID is the one the create returned, recorded in the node's status
 *    (`podUID`, with the `cluster` and `namespace` it was created in), so the
 *    proof survives a restart; or
 *  - it sits in the workflow's own cluster and namespace and is controlled by
 *    the workflow (an ownerReference with the workflow's UID: only someone
 *    who may create pods in that namespace could forge it, the workflow's own
 *    tenant); or
 *  - no record exists yet (the controller stopped between the create and the
 *    status write) and the pod carries the controller's proof for this
 *    workflow, node, place and name (`PodProof`): it is adopted and recorded;
 *  - or, once, on upgrade: a pod without any proof, made before this
 *    controller started, for a node that had started then (a previous
 *    version's pod, from before records and proofs): adopted and recorded.
 *
 * Everything else is ignored for status and outputs (and counted). A
 * WorkflowTaskResult is read only for an accepted pod's node, from that pod's
 * cluster and namespace, and only when it is owned by the workflow's UID.
 *
 * Pure: no I/O.
 */
import type { KubeObject } from "../kube/api/Resources.js"
import { annotationNodeId, labelWorkflow } from "../util/argoKeys.js"
import { statusNodes, updateStatusNodes } from "../workflow/model/compressedNodes.js"

/** Where a node's pod was created and the UID the API server gave it. */
export interface PodRecord {
  readonly uid: string
  readonly cluster: string
  readonly namespace: string
}

/** Status fields of a node that hold its `PodRecord`. */
export const podRecordFields = { uid: "podUID", cluster: "cluster", namespace: "namespace" } as const

type StoredNodes = Readonly<Record<string, Readonly<Record<string, unknown>>>>
const decoded = new WeakMap<KubeObject, StoredNodes>()

/**
 * A workflow's stored nodes (`status.nodes`, or `compressedNodes` decoded), to look records up in;
 * decoded once per workflow object however many pods are judged against it.
 */
export const storedNodes = (wf: KubeObject): StoredNodes => {
  let nodes = decoded.get(wf)
  if (nodes === undefined) decoded.set(wf, nodes = statusNodes(wf["status"]) as StoredNodes)
  return nodes
}

/** The pod record stored for a node, if any (`nodes` from `storedNodes`). */
export const recordedPod = (nodes: Readonly<Record<string, Readonly<Record<string, unknown>>>>, nodeId: string): PodRecord | undefined => {
  const node = nodes[nodeId]
  const uid = node?.[podRecordFields.uid]
  const cluster = node?.[podRecordFields.cluster]
  const namespace = node?.[podRecordFields.namespace]
  return typeof uid === "string" && typeof cluster === "string" && typeof namespace === "string"
    ? { uid, cluster, namespace }
    : undefined
}

/**
 * The status with each record written into its node (nodes the status lacks
 * are skipped), in whichever form the status keeps its nodes (`nodes`, or
 * `compressedNodes` once it is large).
 */
export const withPodRecords = (
  status: Readonly<Record<string, unknown>>,
  records: ReadonlyMap<string, PodRecord>
): Record<string, unknown> => {
  if (records.size === 0) return { ...status }
  return updateStatusNodes(status, (nodes) => {
    const next: Record<string, Record<string, unknown>> = { ...nodes }
    for (const [nodeId, record] of records) {
      const node = next[nodeId]
      if (node === undefined || node[podRecordFields.uid] === record.uid) continue
      next[nodeId] = {
        ...node,
        [podRecordFields.uid]: record.uid,
        [podRecordFields.cluster]: record.cluster,
        [podRecordFields.namespace]: record.namespace
      }
    }
    return next as typeof nodes
  })
}

/**
 * True when a pod created in `cluster`/`namespace` needs a record: pods in
 * the workflow's own cluster and namespace are proven by their ownerReference.
 */
export const needsRecord = (wf: KubeObject, localCluster: string, cluster: string, namespace: string): boolean =>
  !(cluster === localCluster && namespace === wf.metadata.namespace)

const controlledByWorkflow = (pod: KubeObject, wf: KubeObject): boolean =>
  wf.metadata.uid !== undefined && wf.metadata.uid !== "" &&
  (pod.metadata.ownerReferences ?? []).some((o) =>
    o.kind === "Workflow" && o.apiVersion.startsWith("argoproj.io/") && o.uid === wf.metadata.uid && o.controller === true
  )

export type PodVerdict =
  | { readonly _tag: "Accepted"; readonly nodeId: string; readonly unrecorded?: boolean }
  | { readonly _tag: "Ignored"; readonly reason: string }

/**
 * Whether `pod`, seen in `cluster`, is the pod the controller created for
 * the node it names. `record` is the node's record (from the status, or
 * from a create this controller made whose record is not stored yet).
 */
export const judgePod = (
  pod: KubeObject,
  cluster: string,
  wf: KubeObject,
  localCluster: string,
  record: (nodeId: string) => PodRecord | undefined,
  proven: (pod: KubeObject, cluster: string, nodeId: string) => boolean = () => false,
  legacy: (pod: KubeObject, nodeId: string) => boolean = () => false
): PodVerdict => {
  const nodeId = pod.metadata.annotations?.[annotationNodeId]
  if (nodeId === undefined || nodeId === "") return { _tag: "Ignored", reason: "names no node" }
  const known = record(nodeId)
  if (known !== undefined) {
    if (known.uid === pod.metadata.uid && known.cluster === cluster && known.namespace === pod.metadata.namespace) {
      return { _tag: "Accepted", nodeId }
    }
    return {
      _tag: "Ignored",
      reason: `node ${nodeId}'s pod is ${known.cluster}/${known.namespace} uid ${known.uid}, not ${cluster}/${pod.metadata.namespace} uid ${pod.metadata.uid}`
    }
  }
  if (cluster === localCluster && pod.metadata.namespace === wf.metadata.namespace && controlledByWorkflow(pod, wf)) {
    return { _tag: "Accepted", nodeId }
  }
  if (proven(pod, cluster, nodeId)) return { _tag: "Accepted", nodeId, unrecorded: true }
  if (legacy(pod, nodeId)) return { _tag: "Accepted", nodeId, unrecorded: true }
  return {
    _tag: "Ignored",
    reason: cluster === localCluster && pod.metadata.namespace === wf.metadata.namespace
      ? "not controlled by the workflow (no ownerReference to its UID)"
      : `no record of a pod created for node ${nodeId}`
  }
}

/**
 * Whether a WorkflowTaskResult seen in `cluster` is the one for an accepted
 * pod: named after the node, in that pod's cluster and namespace, labelled
 * with the workflow and owned by its UID (argoexec sets ARGO_WORKFLOW_UID as owner).
 */
export const acceptsTaskResult = (
  result: KubeObject,
  cluster: string,
  wf: KubeObject,
  podOf: (nodeId: string) => { readonly cluster: string; readonly namespace: string } | undefined
): boolean => {
  const nodeId = result.metadata.name
  if (nodeId === undefined) return false
  const pod = podOf(nodeId)
  if (pod === undefined || pod.cluster !== cluster || pod.namespace !== result.metadata.namespace) return false
  if (result.metadata.labels?.[labelWorkflow] !== wf.metadata.name) return false
  return wf.metadata.uid !== undefined &&
    (result.metadata.ownerReferences ?? []).some((o) => o.kind === "Workflow" && o.uid === wf.metadata.uid)
}
