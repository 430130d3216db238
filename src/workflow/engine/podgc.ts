/**
 * Pod cleanup: for each completed pod, whether `spec.podGC` (strategy,
 * `labelSelector`, `deleteDelayDuration`) deletes it now, later (a requeue),
 * or only labels it completed. Upstream's `determinePodCleanupAction` and the
 * cleanup queue of workflow/controller/pod_cleanup.go.
 */
import { parseDurationMs } from "../../util/goDuration.js"
import { isFulfilled, isWorkflowCompleted, type WorkflowPhase } from "../model/Workflow.js"
import type { OperationState } from "./operation.js"
import { podLabels } from "./pod.js"
import { terminalPodPhases } from "./podNodes.js"

/** `determinePodCleanupAction` for a completed pod. */
export const podCleanupAction = (
  strategy: string,
  workflowPhase: WorkflowPhase,
  podPhase: string,
  selectorMatches: boolean
): "label" | "delete" | "none" => {
  if (!selectorMatches) return "label"
  if (strategy === "" || strategy === "OnPodNone") return "label"
  const done = isWorkflowCompleted(workflowPhase)
  if (strategy === "OnWorkflowCompletion" && done) return "delete"
  if (strategy === "OnWorkflowSuccess" && workflowPhase === "Succeeded") return "delete"
  if (strategy === "OnPodCompletion") return "delete"
  if (strategy === "OnPodSuccess" && podPhase === "Succeeded") return "delete"
  if (strategy === "OnPodSuccess" && podPhase === "Failed") return "label"
  if (done) return "label"
  return "none"
}

const matchesSelector = (
  selector: { readonly matchLabels?: Readonly<Record<string, string>>; readonly matchExpressions?: ReadonlyArray<unknown> } | undefined,
  labels: Readonly<Record<string, string>>
): boolean => {
  if (selector === undefined) return true
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const raw of selector.matchExpressions ?? []) {
    const e = raw as { key: string; operator: string; values?: ReadonlyArray<string> }
    const has = e.key in labels
    const val = labels[e.key]
    switch (e.operator) {
      case "In":
        if (!has || !(e.values ?? []).includes(val)) return false
        break
      case "NotIn":
        if (has && (e.values ?? []).includes(val)) return false
        break
      case "Exists":
        if (!has) return false
        break
      case "DoesNotExist":
        if (has) return false
        break
    }
  }
  return true
}

/** Label or delete every completed pod whose node is complete (or gone), as `spec.podGC` says for the workflow's phase. */
export const podGC = (op: OperationState, phase: WorkflowPhase): void => {
  const gc = op.wf.spec.podGC
  const strategy = gc?.strategy ?? ""
  const delay = parseDurationMs(gc?.deleteDelayDuration) ?? 0
  for (const obs of op.input.pods.values()) {
    if (!terminalPodPhases.has(obs.phase) || obs.deleted === true) continue
    const node = op.nodes[obs.nodeId]
    if (node !== undefined && !isFulfilled(node.phase)) continue
    // By templateRef too: a node called through a WorkflowTemplate has no templateName.
    const tmpl = node === undefined ? undefined : op.templateOfNode(node)
    const labels = tmpl === undefined ? undefined : podLabels(op.wf, op.config, tmpl, node?.nodeFlag?.hooked === true)
    const action = podCleanupAction(strategy, phase, obs.phase, labels === undefined || matchesSelector(gc?.labelSelector, labels))
    if (action === "label") {
      op.actions.push({ _tag: "LabelPodCompleted", nodeId: obs.nodeId, cluster: obs.cluster, namespace: obs.namespace, podName: obs.podName })
    } else if (action === "delete") {
      const finished = Date.parse(obs.finishedAt ?? node?.finishedAt ?? op.nowIso)
      if (op.now >= finished + delay) {
        op.actions.push({ _tag: "DeletePod", nodeId: obs.nodeId, cluster: obs.cluster, namespace: obs.namespace, podName: obs.podName })
      } else op.requeue(finished + delay)
    }
  }
}
