/**
 * The informer indexes the controller reads through (client-go's Indexer): a reconcile asks for
 * one workflow's pods and task results by index instead of walking every cache, so its cost does
 * not grow with the pods of other workflows (bench `controller.reconcileScale`).
 */
import type { KubeObject } from "../kube/api/Resources.js"
import { labelWorkflow } from "../util/argoKeys.js"
import { ownerOfPod, workflowKey } from "./observe.js"

/** Pods by their workflow's key (`namespace/name`), for pods this cluster's controller made. */
export const byWorkflow = "workflow"
/** Task results by the workflow name they are labelled with. */
export const byWorkflowName = "workflowName"
/** Workflows by name (task results name their workflow, not its namespace). */
export const byName = "name"

export const podsByWorkflow = (localCluster: string) => (pod: KubeObject): Array<string> => {
  const owner = ownerOfPod(pod, localCluster)
  return owner === undefined ? [] : [workflowKey(owner)]
}

export const taskResultsByWorkflowName = (result: KubeObject): Array<string> => {
  const name = result.metadata.labels?.[labelWorkflow]
  return name ? [name] : []
}

export const workflowsByName = (wf: KubeObject): Array<string> => wf.metadata.name ? [wf.metadata.name] : []
