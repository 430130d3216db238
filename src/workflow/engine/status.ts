/**
 * The workflow's status as a whole: closing it in a final phase, the
 * labels that go with a phase, the Error status for a workflow that cannot be
 * decoded or whose result cannot be stored, and keeping the stored status
 * within `limits.maxStatusBytes` by compressing its nodes. Upstream's
 * `markWorkflowPhase` / `markWorkflowError` (workflow/controller/operator.go)
 * and `packer.CompressWorkflowIfNeeded` (workflow/packer/packer.go).
 */
import { labelCompleted, labelPhase } from "../../util/argoKeys.js"
import { isoSeconds } from "../../util/time.js"
import { compressNodesJson } from "../model/compressedNodes.js"
import { isFulfilled, isWorkflowCompleted, type WorkflowPhase } from "../model/Workflow.js"
import type { EngineInput, EngineOutput } from "./contract.js"
import type { Mutable } from "./nodes.js"
import type { OperationState } from "./operation.js"

/** The status of a workflow that does not decode: Error with the reason, the rest as stored. */
export const decodeFailure = (input: EngineInput, message: string): EngineOutput => {
  const prev = (input.workflow.status ?? {}) as Record<string, unknown>
  const failed = workflowError(input, message)
  const status: Record<string, unknown> = { ...failed.status, progress: prev.progress ?? "0/0" }
  // Compressed nodes stay as stored (readers decode them when `nodes` is empty).
  if (typeof prev.compressedNodes !== "string" || prev.compressedNodes === "") status.nodes = prev.nodes ?? {}
  return { ...failed, status }
}

/**
 * The stored status, unchanged but for phase Error and the reason, and no
 * actions: upstream's `markWorkflowError` on the original object, used when
 * this reconcile's own result cannot be trusted or stored.
 */
export const workflowError = (input: EngineInput, message: string): EngineOutput => {
  const prev = (input.workflow.status ?? {}) as Record<string, unknown>
  const nowIso = isoSeconds(input.now)
  const status: Record<string, unknown> = {
    ...prev,
    phase: "Error",
    message,
    startedAt: prev.startedAt ?? nowIso,
    finishedAt: prev.finishedAt ?? nowIso
  }
  return { status, labels: { [labelPhase]: "Error", [labelCompleted]: "true" }, actions: [] }
}

/** Labels of the workflow for a status (exported for the controller). */
export const workflowLabels = (phase: WorkflowPhase): Record<string, string> => ({
  [labelPhase]: phase === "" ? "Running" : phase,
  [labelCompleted]: isWorkflowCompleted(phase) ? "true" : "false"
})

/** `markWorkflowPhase` to a final phase: the message, the times, and every unfinished node closed in Error. */
export const closeWorkflow = (op: OperationState, phase: WorkflowPhase, message: string): void => {
  op.status.phase = phase
  if (message !== "") op.status.message = message
  else delete op.status.message
  op.status.startedAt ??= op.nowIso
  op.status.finishedAt ??= op.nowIso
  // Nodes still running when the workflow ends (e.g. after an error) are closed like upstream.
  for (const id in op.nodes) {
    const n = op.nodes[id]
    if (!isFulfilled(n.phase)) {
      n.phase = "Error"
      n.message ??= "workflow shutdown"
      n.finishedAt ??= op.nowIso
    }
  }
}

/**
 * Keep the stored status within `limits.maxStatusBytes`, like upstream's
 * `packer.CompressWorkflowIfNeeded`: over the limit, `nodes` is written as
 * `compressedNodes` (gzip + base64 of its JSON); still over, the workflow
 * ends in Error with upstream's message, on the status as it was stored,
 * since this one cannot be (node status offload to a database is not
 * supported).
 */
export const pack = (op: OperationState, out: Mutable<EngineOutput>): EngineOutput => {
  const status = op.status
  delete status.nodes
  delete status.compressedNodes
  const max = op.limits.maxStatusBytes
  const rest = JSON.stringify(status)
  const nodesJson = JSON.stringify(op.nodes)
  // The JSON of the status with `"nodes":<nodes>` as its last key.
  const size = Buffer.byteLength(rest) + Buffer.byteLength(nodesJson) + '"nodes":'.length + (rest === "{}" ? 0 : 1)
  if (size <= max) {
    status.nodes = op.nodes
    return out
  }
  const compressed = compressNodesJson(nodesJson)
  const compressedSize = Buffer.byteLength(rest) + compressed.length + '"compressedNodes":"",'.length + (rest === "{}" ? -1 : 0)
  if (compressedSize <= max) {
    status.compressedNodes = compressed
    return out
  }
  return workflowError(
    op.input,
    `workflow is longer than maximum allowed size. compressed size ${compressedSize} > maxSize ${max} (limits.maxStatusBytes). ` +
      "Tried to offload but encountered error: offload node status is not supported"
  )
}
