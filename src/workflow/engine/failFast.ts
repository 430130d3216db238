/**
 * Template-level `failFast: true` on a steps or DAG template, as upstream's
 * `checkParallelism` applies it (workflow/controller/operator.go): once a
 * child of the template's node (a Pod, Steps or DAG node with that node as its
 * boundary) has failed or errored, no further child starts; once none of its
 * pods is still pending or running, the node fails with upstream's message
 * (and, for steps, so does its latest step group).
 *
 * Not to be confused with `dag.failFast` (default true), which only decides
 * when a DAG's phase is assessed (`assessDag` in dag.ts).
 */
import { isFailedOrError, type Template } from "../model/Workflow.js"
import type { Node } from "./nodes.js"
import type { OperationState } from "./operation.js"

/** Upstream's message on the node (and the step group) that failFast stopped. */
export const failFastMessage = "template has failed or errored children and failFast enabled"

const countedTypes: ReadonlySet<string> = new Set(["Pod", "Steps", "DAG"])

/** A child that trips failFast: upstream's `getUnsuccessfulChildrenCounter`. */
export const isUnsuccessfulChild = (n: Node, boundaryId: string): boolean =>
  n.boundaryID === boundaryId && countedTypes.has(n.type) && isFailedOrError(n.phase)

export type FailFast =
  /** Not enabled, or no child has failed: carry on. */
  | "none"
  /** A child failed while pods of the node still run: start nothing new, wait for them. */
  | "halt"
  /** The node has just been failed. */
  | "failed"

/**
 * Where `failFast` leaves the steps or DAG node `node` of template `tmpl`; fails
 * it (and `leafGroup`, the steps' latest step group) when nothing of it runs any more.
 *
 * Upstream counts only pods that exist; a pod requested but not yet seen is
 * counted here as well, so the node never fails under a pod about to start.
 */
export const applyFailFast = (op: OperationState, node: Node, tmpl: Template, leafGroup?: Node): FailFast => {
  if (tmpl.failFast !== true) return "none"
  let unsuccessful = false
  let active = false
  // The node's own children only (an index of the reconcile), not every node of the workflow:
  // a loop of failFast templates would otherwise cost its size squared.
  for (const n of op.nodesInBoundary(node.id)) {
    if (isUnsuccessfulChild(n, node.id)) unsuccessful = true
    else if (n.type === "Pod" && (n.phase === "Pending" || n.phase === "Running")) active = true
  }
  if (!unsuccessful) return "none"
  if (active) return "halt"
  if (leafGroup !== undefined) op.markPhase(leafGroup, "Failed", failFastMessage)
  op.markPhase(node, "Failed", failFastMessage)
  return "failed"
}
