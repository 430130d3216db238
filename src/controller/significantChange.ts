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
 * Any difference there counts as significant: a false positive costs one reconcile, a false
 * negative a lost decision. Whoever makes the controller read another field of a cached pod's
 * status outside `observePod` must add it here too.
 *
 * A task result is all outputs, progress and labels (the completion label upstream waits for):
 * only an update that changes nothing but its resourceVersion or managed fields is skipped.
 *
 * Adds and deletes are never judged here: they always queue their workflow.
 */
import type { KubeObject } from "../kube/api/Resources.js"
import { labelCompleted } from "../util/argoKeys.js"
import { sameJson } from "../util/json.js"
import { observePod } from "./observe.js"

type Json = Readonly<Record<string, unknown>>

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

const noneSkipped = (_key: string): boolean => false

/** `a` and `b` have the same fields (as JSON), leaving out those `skip` names. */
const sameFields = (a: Json, b: Json, skip: (key: string) => boolean): boolean => {
  for (const key in a) {
    if (!skip(key) && !sameJson(a[key], b[key])) return false
  }
  for (const key in b) {
    if (!(key in a) && b[key] !== undefined && !skip(key)) return false
  }
  return true
}

/** What every write changes, and what the controller never reads. */
const unreadMetadata = (key: string): boolean => key === "resourceVersion" || key === "managedFields"
const unreadPodLabel = (key: string): boolean => key === labelCompleted

const sameMetadata = (a: KubeObject, b: KubeObject, skipLabel: (key: string) => boolean): boolean => {
  const ma = a.metadata as Json
  const mb = b.metadata as Json
  if (!sameFields(ma, mb, (key) => key === "labels" || unreadMetadata(key))) return false
  return sameFields((ma["labels"] ?? {}) as Json, (mb["labels"] ?? {}) as Json, skipLabel)
}

const statusOf = (pod: KubeObject): Json => (isObject(pod["status"]) ? pod["status"] : {})

/** Whether `next` differs from `previous` (the same pod) in anything the controller reads. */
export const significantPodChange = (previous: KubeObject, next: KubeObject): boolean => {
  if (!sameMetadata(previous, next, unreadPodLabel) || !sameJson(previous["spec"], next["spec"])) return true
  const before = statusOf(previous)
  const after = statusOf(next)
  if (before["phase"] !== after["phase"] || !sameJson(before["reason"], after["reason"]) || !sameJson(before["message"], after["message"])) return true
  // the cluster is the same on both sides of an update: left out
  return !sameJson(observePod(previous, ""), observePod(next, ""))
}

/** Whether `next` differs from `previous` (the same task result) in anything but its version. */
export const significantTaskResultChange = (previous: KubeObject, next: KubeObject): boolean =>
  !sameMetadata(previous, next, noneSkipped) || !sameFields(previous as Json, next as Json, (key) => key === "metadata")

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
