/**
 * A stored Workflow decoded once per object: the controller hands the engine the same copy (its
 * informer's, or the one its last write returned) through every round its pods' events bring,
 * and runs the engine up to four times a round when it needs locks, caches or ConfigMaps read;
 * the Schema decode of the whole object (its status with every node) was a good part of each.
 *
 * Kept by object identity in a WeakMap, so a copy's decode lives exactly as long as the copy.
 * That relies on what the engine already relies on: a stored object is never mutated after it is
 * handed over (the engine copies what it changes, `OperationState`), and neither is the decoded
 * value, which is shared by every reader of that object. An object built anew (a joined
 * `workflowTemplateRef` spec, a status without the cache wait's message) is decoded anew.
 *
 * A completed workflow's decode is not kept: the informer holds every completed workflow for as
 * long as it exists (thousands of them), and its decode would double what each costs (issue 14:
 * RSS with 5,000 workflows tracked), while a completed workflow is reconciled only now and then
 * (its pods' clean-up, artifact GC, a TTL), where decoding again is cheap.
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import { decodeWorkflow, type DecodeResult } from "../model/decode.js"

const decoded = new WeakMap<KubeObject, DecodeResult>()

const completedPhases: ReadonlySet<unknown> = new Set(["Succeeded", "Failed", "Error"])

const isCompleted = (object: KubeObject): boolean => {
  const status = object["status"] as { readonly phase?: unknown } | undefined
  return status !== null && typeof status === "object" && completedPhases.has(status.phase)
}

/** `decodeWorkflow(object)`, computed once per object while the workflow runs. */
export const decodeOnce = (object: KubeObject): DecodeResult => {
  if (isCompleted(object)) return decodeWorkflow(object)
  let result = decoded.get(object)
  if (result === undefined) {
    result = decodeWorkflow(object)
    decoded.set(object, result)
  }
  return result
}
