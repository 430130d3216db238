/**
 * Stopping and suspending a workflow from outside: `spec.shutdown` (`Stop`,
 * `Terminate`: what `flotilla stop|terminate` and `argo stop|terminate` set)
 * and `spec.suspend` (`flotilla suspend|resume`). Upstream's
 * `ShutdownStrategy.ShouldExecute`, `applyExecutionControl`
 * (workflow/controller/exec_control.go) and
 * `failNodesWithoutCreatedPodsAfterDeadlineOrShutdown` (operator.go).
 *
 * `Terminate` stops everything, exit handlers included; `Stop` stops
 * everything but the exit handlers, which then run. Pods that should not run
 * are deleted (upstream signals their containers; either way they end), and
 * their nodes fail with upstream's messages.
 */
import { isFulfilled } from "../model/Workflow.js"
import type { Node } from "./nodes.js"
import type { OperationState } from "./operation.js"

export type ShutdownStrategy = "Stop" | "Terminate"

/** `spec.shutdown` when it asks for one (upstream: any other value is not accepted by validation; here it is ignored). */
export const shutdownStrategy = (op: OperationState): ShutdownStrategy | undefined => {
  const s = op.wf.spec.shutdown
  return s === "Stop" || s === "Terminate" ? s : undefined
}

/** Upstream's `ShouldExecute`: may a node (inside an exit handler or not) still run? */
export const shouldExecute = (op: OperationState, partOfExitHandler: boolean): boolean => {
  const s = shutdownStrategy(op)
  return s === undefined || (s === "Stop" && partOfExitHandler)
}

/** The workflow's message when it ends failed under a shutdown. */
export const stoppedMessage = (strategy: ShutdownStrategy): string => `Stopped with strategy '${strategy}'`

/** The message of a pod node failed by a shutdown: upstream's `applyExecutionControl` (two spaces included). */
export const podShutdownMessage = (strategy: ShutdownStrategy): string => `workflow shutdown with strategy:  ${strategy}`

/** The message of a pod node whose pod was never made because of a shutdown (upstream's `createWorkflowPod` guard). */
export const podNotCreatedMessage = (strategy: ShutdownStrategy): string => `workflow shutdown with strategy: ${strategy}`

/** Upstream's `IsPartOfExitHandler`: the node or one of its boundaries is an `.onExit` node. */
export const isPartOfExitHandler = (op: OperationState, node: Node): boolean => {
  const seen = new Set<string>()
  let current: Node | undefined = node
  while (current !== undefined && !seen.has(current.id)) {
    if (current.name.endsWith(".onExit")) return true
    seen.add(current.id)
    current = current.boundaryID === undefined ? undefined : op.nodes[current.boundaryID]
  }
  return false
}

/**
 * Apply `spec.shutdown` to the nodes already in the status: pods that should
 * not run are deleted and their nodes fail; active suspend nodes fail; a
 * retry node whose attempts are all done fails. Runs after the pods were
 * folded into their nodes and before anything new is executed.
 */
export const applyShutdown = (op: OperationState): void => {
  const strategy = shutdownStrategy(op)
  if (strategy === undefined) return
  for (const node of Object.values(op.nodes)) {
    op.spend()
    if (isFulfilled(node.phase) || shouldExecute(op, isPartOfExitHandler(op, node))) continue
    if (node.type === "Pod") {
      const obs = op.input.pods.get(node.id)
      if (obs !== undefined && (obs.phase === "Pending" || obs.phase === "Running")) {
        op.actions.push({ _tag: "DeletePod", nodeId: node.id, cluster: obs.cluster, namespace: obs.namespace, podName: obs.podName })
      }
      if (op.taskResultsCompletion[node.id] === false) op.taskResultsCompletion[node.id] = true
      op.markPhase(node, "Failed", podShutdownMessage(strategy))
    } else if (node.type === "Suspend") {
      op.markPhase(node, "Failed", stoppedMessage(strategy))
    } else if (node.type === "Retry" && (node.children ?? []).every((c) => isFulfilled(op.nodes[c]?.phase))) {
      op.markPhase(node, "Failed", stoppedMessage(strategy))
    }
  }
}

/** `spec.suspend: true`: nothing new is executed (running pods go on), as upstream's `ShouldSuspend`. */
export const isSuspended = (op: OperationState): boolean => op.wf.spec.suspend === true
