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
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import { decodeWorkflow, type DecodeResult } from "../model/decode.js"

const decoded = new WeakMap<KubeObject, DecodeResult>()

/** `decodeWorkflow(object)`, computed once per object. */
export const decodeOnce = (object: KubeObject): DecodeResult => {
  let result = decoded.get(object)
  if (result === undefined) {
    result = decodeWorkflow(object)
    decoded.set(object, result)
  }
  return result
}
