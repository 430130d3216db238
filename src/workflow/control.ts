/**
 * What `flotilla suspend|resume|stop|terminate` (and `argo` of the same names)
 * do to a stored Workflow, as pure functions of the object: the controller
 * then acts on the changed spec and status (engine/shutdown.ts).
 *
 * Upstream's `util.SuspendWorkflow`, `util.ResumeWorkflow` and
 * `util.StopWorkflow`/`TerminateWorkflow` (workflow/util/util.go): suspend sets
 * `spec.suspend`; resume clears it and marks every active suspend node
 * Succeeded, its supplied output parameters taking their defaults; stop and
 * terminate set `spec.shutdown`. A completed workflow cannot be changed.
 */
import type { KubeObject } from "../kube/api/Resources.js"
import { isRecord } from "../util/records.js"
import { updateStatusNodes } from "./model/compressedNodes.js"
import { isWorkflowCompleted, type NodeStatus, type Parameter } from "./model/Workflow.js"

export type ControlAction = "suspend" | "resume" | "stop" | "terminate"

export type ControlResult =
  | { readonly ok: true; readonly workflow: KubeObject; readonly changed: boolean }
  | { readonly ok: false; readonly error: string }

const fail = (error: string): ControlResult => ({ ok: false, error })

const specOf = (wf: KubeObject): Record<string, unknown> => (isRecord(wf.spec) ? wf.spec : {})
const statusOf = (wf: KubeObject): Record<string, unknown> => (isRecord(wf.status) ? wf.status : {})

/** The workflow after `action`, or why it cannot be done. `nowIso` stamps resumed nodes' finishedAt. */
export const controlWorkflow = (wf: KubeObject, action: ControlAction, nowIso: string): ControlResult => {
  const name = wf.metadata.name ?? ""
  const phase = statusOf(wf)["phase"]
  if (isWorkflowCompleted(phase)) {
    return fail(action === "stop" || action === "terminate"
      ? `cannot shutdown a completed workflow: workflow ${name} is ${String(phase)}`
      : `cannot ${action} a completed workflow: workflow ${name} is ${String(phase)}`)
  }
  const spec = specOf(wf)
  switch (action) {
    case "suspend":
      return spec["suspend"] === true
        ? { ok: true, workflow: wf, changed: false }
        : { ok: true, workflow: { ...wf, spec: { ...spec, suspend: true } }, changed: true }
    case "stop":
    case "terminate": {
      const strategy = action === "stop" ? "Stop" : "Terminate"
      return spec["shutdown"] === strategy
        ? { ok: true, workflow: wf, changed: false }
        : { ok: true, workflow: { ...wf, spec: { ...spec, shutdown: strategy } }, changed: true }
    }
    case "resume":
      return resume(wf, nowIso)
  }
}

/** Templates by name, from the spec and from the templates stored for WorkflowTemplate references. */
const templateOutputs = (wf: KubeObject): Map<string, ReadonlyArray<Parameter>> => {
  const out = new Map<string, ReadonlyArray<Parameter>>()
  const add = (t: unknown) => {
    if (!isRecord(t) || typeof t["name"] !== "string") return
    const outputs = t["outputs"]
    const params = isRecord(outputs) && Array.isArray(outputs["parameters"]) ? outputs["parameters"] as ReadonlyArray<Parameter> : []
    if (!out.has(t["name"])) out.set(t["name"], params)
  }
  const templates = specOf(wf)["templates"]
  if (Array.isArray(templates)) templates.forEach(add)
  const stored = statusOf(wf)["storedTemplates"]
  if (isRecord(stored)) Object.values(stored).forEach(add)
  return out
}

const resume = (wf: KubeObject, nowIso: string): ControlResult => {
  const spec = specOf(wf)
  const status = statusOf(wf)
  const outputsOf = templateOutputs(wf)
  let problem: string | undefined
  let resumedNodes = 0
  const nextStatus = updateStatusNodes(status, (nodes) => {
    const next: Record<string, NodeStatus> = { ...nodes }
    for (const [id, node] of Object.entries(nodes)) {
      if (node.type !== "Suspend" || node.phase !== "Running") continue
      // The node's own supplied outputs (engine/suspend.ts, as upstream's addRawOutputFields); a node
      // written before it carried them: its template's, by name.
      const own = node.outputs?.parameters
      const declared = own !== undefined && own.length > 0 ? own : outputsOf.get(node.templateName ?? "") ?? []
      const parameters: Array<Parameter> = []
      for (const p of declared) {
        const fallback = p.valueFrom?.default ?? p.value
        if (p.valueFrom?.supplied !== undefined && fallback === undefined) {
          problem ??= `raw output parameter '${p.name}' has not been set and does not have a default value`
          continue
        }
        parameters.push(fallback === undefined ? { name: p.name } : { name: p.name, value: String(fallback) })
      }
      next[id] = {
        ...node,
        phase: "Succeeded",
        finishedAt: nowIso,
        ...(parameters.length > 0 ? { outputs: { ...(node.outputs ?? {}), parameters } } : {})
      }
      resumedNodes++
    }
    return next
  })
  if (problem !== undefined) return fail(problem)
  const { suspend: _suspend, ...rest } = spec
  const changed = spec["suspend"] !== undefined || resumedNodes > 0
  return { ok: true, workflow: { ...wf, spec: rest, status: nextStatus }, changed }
}
