/**
 * The workflow-wide variables of an operation: `workflow.*` (name,
 * parameters, labels, annotations, outputs of earlier reconciles, ...), the
 * labels of `spec.workflowMetadata`, and `workflow.failures`. Upstream's
 * `setGlobalParameters`, `updateWorkflowMetadata` and the failures list of
 * `runOnExitNode` (workflow/controller/operator.go).
 */
import type { Parameter } from "../model/Workflow.js"
import { configMapKeyRefOf, globalParameterFromConfigMap } from "./configMapParams.js"
import { podName as makePodName } from "./ids.js"
import type { OperationState } from "./operation.js"
import { evaluate } from "./scope.js"

/** A Parameter as Go's json.Marshal writes it (wfv1.Parameter field order, omitempty). */
const marshalParameter = (p: Parameter): Record<string, unknown> => {
  const out: Record<string, unknown> = { name: p.name }
  if (p.default !== undefined && p.default !== null) out.default = String(p.default)
  if (p.value !== undefined && p.value !== null) out.value = String(p.value)
  if (p.valueFrom !== undefined && p.valueFrom !== null) out.valueFrom = p.valueFrom
  if (p.globalName) out.globalName = p.globalName
  if (p.enum !== undefined && p.enum.length > 0) out.enum = p.enum.map(String)
  if (p.description) out.description = p.description
  return out
}

/** Kubernetes' IsValidLabelValue. */
const isValidLabelValue = (v: string): boolean =>
  v.length <= 63 && /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)

/** `setGlobalParameters`: the `workflow.*` variables; a message when a workflow argument has no usable value. */
export const setGlobals = (op: OperationState, startedMs: number): string | undefined => {
  const meta = op.wf.metadata
  const g = op.globals
  g.set("workflow.name", meta.name)
  g.set("workflow.namespace", meta.namespace)
  g.set("workflow.uid", meta.uid ?? "")
  g.set("workflow.mainEntrypoint", op.wf.spec.entrypoint ?? "")
  g.set("workflow.serviceAccountName", op.wf.spec.serviceAccountName ?? "")
  g.set("workflow.creationTimestamp", meta.creationTimestamp ?? String(op.status.startedAt))
  // a CronWorkflow's run (its scheduled-time annotation), as upstream's GlobalVarWorkflowCronScheduleTime
  const scheduledTime = meta.annotations?.["workflows.argoproj.io/scheduled-time"]
  if (scheduledTime !== undefined) g.set("workflow.scheduledTime", scheduledTime)
  g.set("workflow.priority", String(op.wf.spec.priority ?? 0))
  g.set("workflow.duration", String((op.now - startedMs) / 1000))
  g.set("workflow.status", String(op.status.phase ?? "Running"))
  for (const [k, v] of Object.entries(meta.labels ?? {})) g.set(`workflow.labels.${k}`, v)
  for (const [k, v] of Object.entries(meta.annotations ?? {})) g.set(`workflow.annotations.${k}`, v)
  for (const p of op.wf.spec.arguments?.parameters ?? []) {
    let raw: unknown = p.value ?? p.default
    // valueFrom.configMapKeyRef: the key of a ConfigMap in the workflow's namespace (configMapParams.ts)
    if (raw === undefined && configMapKeyRefOf(p) !== undefined) {
      const fromConfigMap = globalParameterFromConfigMap(op, p)
      if ("error" in fromConfigMap) return fromConfigMap.error
      raw = fromConfigMap.value
    }
    raw ??= p.valueFrom?.default
    if (raw === undefined) {
      if (p.valueFrom !== undefined) return `spec.arguments.parameters.${p.name}: valueFrom is not supported`
      return `spec.arguments.parameters.${p.name}: a value is required`
    }
    // A value given to the workflow is data: passed on as written, never substituted (README, compatibility notes).
    const value = String(raw)
    if (p.enum !== undefined && p.enum.length > 0 && !p.enum.map(String).includes(value)) {
      return `spec.arguments.parameters.${p.name}: value '${value}' is not in the enum [${p.enum.join(" ")}]`
    }
    g.set(`workflow.parameters.${p.name}`, value)
  }
  // Both are `json.Marshal(spec.arguments.parameters)`: the parameters as written (Go field order, empty
  // fields omitted, values as strings). A parameter named `json` takes precedence over the second.
  const all = JSON.stringify((op.wf.spec.arguments?.parameters ?? []).map(marshalParameter))
  g.set("workflow.parameters", all)
  if (!g.has("workflow.parameters.json")) g.set("workflow.parameters.json", all)
  for (const p of op.globalOutputs) g.set(`workflow.outputs.parameters.${p.name}`, p.value ?? "")
  return undefined
}

/**
 * `updateWorkflowMetadata`, run once while the workflow's phase is still
 * unknown: `spec.workflowMetadata.labels` and the string results of the
 * `labelsFrom` expressions (evaluated over the global parameters) become
 * labels of the Workflow and `workflow.labels.<name>` variables.
 * (`workflowMetadata.annotations` would need the controller to write
 * annotations; the engine contract carries labels only.)
 */
export const updateWorkflowMetadata = (op: OperationState): string | undefined => {
  const md = op.wf.spec["workflowMetadata"] as
    | { labels?: Record<string, unknown>; labelsFrom?: Record<string, { expression?: unknown }> }
    | undefined
  if (md === undefined || md === null) return undefined
  const set = (name: string, value: string, what: string): string | undefined => {
    if (!isValidLabelValue(value)) return `invalid label value "${value}" for label "${name}"${what}`
    op.metadataLabels[name] = value
    op.globals.set(`workflow.labels.${name}`, value)
    return undefined
  }
  for (const [name, value] of Object.entries(md.labels ?? {})) {
    const e = set(name, String(value), "")
    if (e !== undefined) return e
  }
  for (const [name, from] of Object.entries(md.labelsFrom ?? {})) {
    const expression = String(from?.expression ?? "")
    const r = evaluate(expression, op.globals, op.limits.expression)
    if (!r.ok) return `failed to evaluate label "${name}" expression "${expression}": ${r.error.message}`
    if (typeof r.value !== "string") {
      return `failed to evaluate label "${name}" expression "${expression}" evaluted to ${typeof r.value} but must be a string`
    }
    const e = set(name, r.value, ` and expression "${expression}"`)
    if (e !== undefined) return e
  }
  return undefined
}

/** `workflow.failures`: every Failed or Error node, as upstream's exit handler lists them. */
export const failures = (op: OperationState): ReadonlyArray<Record<string, unknown>> => {
  return Object.values(op.nodes)
    .filter((n) => n.phase === "Failed" || n.phase === "Error")
    .map((n) => ({
      displayName: n.displayName,
      message: n.message ?? "",
      templateName: n.templateName ?? "",
      phase: n.phase,
      podName: makePodName(op.wf.metadata.name, n.name, n.templateName ?? "", n.id, op.podNameVersion()),
      finishedAt: n.finishedAt ?? null
    }))
}
