/**
 * Which pod and task result updates can change what a reconcile decides, as upstream's
 * `significantPodChange` (v4.0.5 workflow/controller/controller.go) keeps a pod update from
 * queueing its workflow when nothing the operator reads changed. A kubelet writes a pod's status
 * several times on its way to Running (conditions, readiness, container ids, restart counts) and
 * the controller's own `completed` label patch comes back as one more update: each woke a full
 * reconcile of the workflow, which then decided nothing new.
 *
 * Rather than a list of status fields (which would go stale as `observe.ts` learns to read more),
 * an update is compared on what the controller reads of a pod:
 *  - the engine's observation of it (`observePod`: phase, messages, reasons, times, exit codes,
 *    container states, host node, pod IP, deletion);
 *  - its status `phase`, `reason` and `message` as such (an artifact GC pod is read by phase and
 *    has no node id, so no observation);
 *  - all of its metadata but `resourceVersion`, `managedFields` and the `completed` label (read
 *    only so as not to patch it twice; a change the controller's own patch makes): labels,
 *    annotations (node id, proof, workflow namespace), owner references, finalizers, uid, deletion
 *    timestamp, whatever else;
 *  - all of its spec as the cache keeps it (`slimPod`): node name, containers, deadlines.
 * Any difference there, or anything the comparison cannot tell apart, counts as significant:
 * a false positive costs one reconcile, a false negative a lost decision.
 *
 * A task result is all outputs, progress and labels (the completion label upstream waits for):
 * only an update that changes nothing but its resourceVersion or managed fields is skipped.
 *
 * Adds and deletes are never judged here: they always queue their workflow.
 */
import type { KubeObject } from "../kube/api/Resources.js"
import { labelCompleted } from "../util/argoKeys.js"
import { observePod } from "./observe.js"

/** The metadata without what every write changes and what the controller never reads. */
const readMetadata = (object: KubeObject, dropLabels: ReadonlyArray<string>): Record<string, unknown> => {
  const { resourceVersion: _rv, managedFields: _mf, ...rest } = object.metadata as Record<string, unknown>
  const labels = rest["labels"] as Readonly<Record<string, string>> | undefined
  if (labels === undefined || !dropLabels.some((l) => l in labels)) return rest
  const kept: Record<string, string> = {}
  for (const [k, v] of Object.entries(labels)) if (!dropLabels.includes(k)) kept[k] = v
  return { ...rest, labels: kept }
}

const podDroppedLabels: ReadonlyArray<string> = [labelCompleted]

/** What the controller reads of a pod, as one comparable value. */
export const podReadView = (pod: KubeObject): unknown => {
  const status = (pod["status"] ?? {}) as { readonly phase?: unknown; readonly reason?: unknown; readonly message?: unknown }
  return {
    metadata: readMetadata(pod, podDroppedLabels),
    spec: pod["spec"],
    phase: status.phase,
    reason: status.reason,
    message: status.message,
    // the cluster is the same on both sides of an update: left out
    observation: observePod(pod, "")
  }
}

/** Whether `next` differs from `previous` (the same pod) in anything the controller reads. */
export const significantPodChange = (previous: KubeObject, next: KubeObject): boolean =>
  JSON.stringify(podReadView(previous)) !== JSON.stringify(podReadView(next))

/** A task result but its resourceVersion and managed fields. */
const taskResultReadView = (result: KubeObject): unknown => ({ ...result, metadata: readMetadata(result, []) })

/** Whether `next` differs from `previous` (the same task result) in anything but its version. */
export const significantTaskResultChange = (previous: KubeObject, next: KubeObject): boolean =>
  JSON.stringify(taskResultReadView(previous)) !== JSON.stringify(taskResultReadView(next))

/**
 * Whether a pool change may need its workflow reconciled: every add and delete, and each update
 * that changes something the controller reads.
 */
export const significantChange = (change: {
  readonly kind: string
  readonly type: "upsert" | "delete"
  readonly object: KubeObject
  readonly previous?: KubeObject
}): boolean => {
  if (change.type === "delete" || change.previous === undefined) return true
  return change.kind === "pods"
    ? significantPodChange(change.previous, change.object)
    : significantTaskResultChange(change.previous, change.object)
}
