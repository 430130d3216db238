/**
 * `spec.workflowTemplateRef`: a workflow that runs a (Cluster)WorkflowTemplate's
 * spec with its own merged over it. On the first operation the template's spec
 * is joined under the workflow's and stored in `status.storedWorkflowTemplateSpec`;
 * every later operation runs the stored spec, so a change of the template does
 * not reach a running workflow. Upstream's `setExecWorkflow` / `setStoredWfSpec`
 * (workflow/controller/operator.go) and `JoinWorkflowSpec` / `MergeTo`
 * (workflow/util/merge.go), whose strategic merge patch this follows: the
 * workflow's fields win, objects merge, lists with a merge key (templates,
 * parameters, volumes... by name) merge item by item, other lists are replaced.
 *
 * Pure: what it reads of the templates comes in as `EngineInput.templates`.
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import { isRecord } from "../../util/records.js"
import type { TemplateLookup } from "./contract.js"

/** The labels upstream's `setWfTemplateLabel` gives a workflow run from a (Cluster)WorkflowTemplate. */
export const labelWorkflowTemplate = "workflows.argoproj.io/workflow-template"
export const labelClusterWorkflowTemplate = "workflows.argoproj.io/cluster-workflow-template"

type Json = Record<string, unknown>

/** The merge key of each list the strategic merge patch merges item by item (`patchMergeKey` in workflow_types.go). */
const mergeKeys: Readonly<Record<string, string>> = {
  templates: "name",
  parameters: "name",
  artifacts: "name",
  tasks: "name",
  volumes: "name",
  initContainers: "name",
  sidecars: "name",
  imagePullSecrets: "name",
  tolerations: "key",
  hostAliases: "ip"
}

const absent = (v: unknown): boolean => v === undefined || v === null

/** A list merged by `key`: the target's items first (each merged over the patch's of the same key), then the patch's others. */
const mergeList = (patch: ReadonlyArray<unknown>, target: ReadonlyArray<unknown>, key: string): Array<unknown> => {
  const keyOf = (v: unknown): unknown => (isRecord(v) ? v[key] : undefined)
  const fromPatch = new Map<unknown, unknown>()
  for (const p of patch) if (keyOf(p) !== undefined) fromPatch.set(keyOf(p), p)
  const out: Array<unknown> = []
  const seen = new Set<unknown>()
  for (const t of target) {
    const k = keyOf(t)
    const p = k === undefined ? undefined : fromPatch.get(k)
    out.push(p === undefined ? t : merge(p, t))
    if (k !== undefined) seen.add(k)
  }
  for (const p of patch) if (!seen.has(keyOf(p))) out.push(p)
  return out
}

/** `target` merged over `patch`: the target's values win, objects merge, lists with a merge key merge by it. */
const merge = (patch: unknown, target: unknown): unknown => {
  if (absent(target)) return patch
  if (!isRecord(patch) || !isRecord(target)) return target
  const out: Json = { ...patch }
  for (const [k, t] of Object.entries(target)) {
    if (absent(t)) continue
    const p = patch[k]
    const key = mergeKeys[k]
    if (Array.isArray(p) && Array.isArray(t) && key !== undefined) out[k] = mergeList(p, t, key)
    else out[k] = merge(p, t)
  }
  return out
}

const byName = (list: unknown): Map<string, unknown> => {
  const m = new Map<string, unknown>()
  if (Array.isArray(list)) for (const p of list) if (isRecord(p) && typeof p.name === "string") m.set(p.name, p)
  return m
}

/**
 * Upstream's `JoinWorkflowSpec(wfSpec, wftSpec, nil)`: the workflow's spec merged
 * over the template's. `hooks` and `workflowMetadata.labelsFrom` join by key
 * without merging inside; `suspend` is the workflow's; an argument that has a
 * value is taken whole from the workflow, else from the template, so that a
 * `value` of one never sits beside a `default` of the other.
 */
export const joinWorkflowSpec = (wfSpec: Json, wftSpec: Json): Json => {
  const { hooks: patchHooks, ...patch } = wftSpec
  const patchMetadata = isRecord(patch.workflowMetadata) ? patch.workflowMetadata : undefined
  const patchLabelsFrom = patchMetadata?.labelsFrom
  if (patchMetadata !== undefined) {
    const { labelsFrom: _l, ...rest } = patchMetadata
    patch.workflowMetadata = rest
  }
  const joined = merge(patch, wfSpec) as Json
  if (isRecord(patchHooks)) joined.hooks = { ...patchHooks, ...(isRecord(wfSpec.hooks) ? wfSpec.hooks : {}) }
  if (isRecord(patchLabelsFrom)) {
    const md = isRecord(joined.workflowMetadata) ? joined.workflowMetadata : {}
    joined.workflowMetadata = { ...md, labelsFrom: { ...patchLabelsFrom, ...(isRecord(md.labelsFrom) ? md.labelsFrom : {}) } }
  }
  if (absent(wfSpec.suspend)) delete joined.suspend
  else joined.suspend = wfSpec.suspend
  const args = isRecord(joined.arguments) ? joined.arguments : undefined
  if (args !== undefined && Array.isArray(args.parameters)) {
    const own = byName(isRecord(wfSpec.arguments) ? wfSpec.arguments.parameters : undefined)
    const theirs = byName(isRecord(wftSpec.arguments) ? wftSpec.arguments.parameters : undefined)
    const hasValue = (p: unknown) => isRecord(p) && (!absent(p.value) || !absent(p.valueFrom))
    joined.arguments = {
      ...args,
      parameters: args.parameters.map((p) => {
        if (!hasValue(p) || !isRecord(p)) return p
        const name = String(p.name)
        return own.get(name) ?? theirs.get(name) ?? p
      })
    }
  }
  return joined
}

/** The workflow as the engine runs it: its own, or with the referenced template's spec joined under its spec. */
export type ExecWorkflow =
  | { readonly ok: true; readonly workflow: KubeObject }
  | { readonly ok: false; readonly error: string }

/**
 * `setExecWorkflow` for a workflow with `spec.workflowTemplateRef`: the stored
 * joined spec, joined again when the workflow's `entrypoint`, `suspend` or
 * `shutdown` changed since (`needsStoredWfSpecUpdate`); on the first operation
 * the template's spec from `templates`, and a missing template is upstream's
 * NotFound. The returned object carries the stored spec in its status and the
 * template's label; a workflow without the reference is returned as it is.
 */
export const execWorkflow = (workflow: KubeObject, templates: TemplateLookup | undefined): ExecWorkflow => {
  const spec = (isRecord(workflow.spec) ? workflow.spec : {}) as Json
  const ref = spec.workflowTemplateRef
  if (!isRecord(ref)) return { ok: true, workflow }
  const name = typeof ref.name === "string" ? ref.name : ""
  const clusterScope = ref.clusterScope === true
  if (Array.isArray(spec.templates) && spec.templates.length > 0) {
    return { ok: false, error: "invalid spec: Templates is invalid field in spec if workflow referred WorkflowTemplate reference" }
  }
  const status = (isRecord(workflow.status) ? workflow.status : {}) as Json
  let stored = isRecord(status.storedWorkflowTemplateSpec) ? status.storedWorkflowTemplateSpec : undefined
  if (stored === undefined) {
    const holder = clusterScope
      ? templates?.clusterWorkflowTemplates.get(name)
      : templates?.workflowTemplates.get(`${workflow.metadata.namespace ?? "default"}/${name}`)
    if (holder === undefined) {
      return { ok: false, error: `${clusterScope ? "clusterworkflowtemplates" : "workflowtemplates"}.argoproj.io "${name}" not found` }
    }
    stored = joinWorkflowSpec(spec, (isRecord(holder.spec) ? holder.spec : {}) as Json)
  } else if (
    (!absent(spec.entrypoint) && spec.entrypoint !== "" && (absent(stored.entrypoint) || stored.entrypoint === "")) ||
    (spec.suspend ?? undefined) !== (stored.suspend ?? undefined) ||
    (spec.shutdown ?? undefined) !== (stored.shutdown ?? undefined)
  ) {
    stored = joinWorkflowSpec(spec, stored)
  }
  const label = clusterScope ? labelClusterWorkflowTemplate : labelWorkflowTemplate
  return {
    ok: true,
    workflow: {
      ...workflow,
      metadata: { ...workflow.metadata, labels: { ...workflow.metadata.labels, [label]: name } },
      spec: stored,
      status: { ...status, storedWorkflowTemplateSpec: stored }
    }
  }
}
