/**
 * What `flotilla run` tells the user while a workflow waits to be resumed: a suspend node with no
 * `duration` that is Running (it waits for `flotilla resume`), or a workflow whose `spec.suspend`
 * is set. Each hint has a key, so that plain output prints it once per suspension (`newSuspendHints`).
 */
import type { KubeObject } from "../kube/api/Resources.js"
import { isRecord } from "../util/records.js"
import { statusNodes } from "../workflow/model/compressedNodes.js"
import { isWorkflowCompleted } from "../workflow/model/Workflow.js"

export interface SuspendHint {
  readonly key: string
  readonly text: string
}

const recordOf = (v: unknown): Record<string, unknown> => isRecord(v) ? v : {}

/** The workflow's own templates by name: its spec's, then those of the WorkflowTemplate it was made from (first wins). */
const localTemplates = (wf: KubeObject): Map<string, Record<string, unknown>> => {
  const out = new Map<string, Record<string, unknown>>()
  const add = (t: unknown) => {
    if (isRecord(t) && typeof t["name"] === "string" && !out.has(t["name"])) out.set(t["name"], t)
  }
  const spec = recordOf(wf["spec"])
  if (Array.isArray(spec["templates"])) spec["templates"].forEach(add)
  const fromTemplate = recordOf(recordOf(wf["status"])["storedWorkflowTemplateSpec"])["templates"]
  if (Array.isArray(fromTemplate)) fromTemplate.forEach(add)
  return out
}

/**
 * The template a node ran: by its `templateRef` (stored under `namespaced|cluster/<object>/<template>`),
 * or its `templateName` in its `templateScope` (the workflow's own, or a stored template of that
 * (Cluster)WorkflowTemplate), as the engine resolves it (workflow/engine/templateRefs.ts).
 */
const templateOfNode = (
  wf: KubeObject,
  local: Map<string, Record<string, unknown>>,
  node: Record<string, unknown>
): Record<string, unknown> | undefined => {
  const stored = recordOf(recordOf(wf["status"])["storedTemplates"])
  const storedAt = (key: string) => isRecord(stored[key]) ? stored[key] : undefined
  const ref = node["templateRef"]
  if (isRecord(ref) && typeof ref["name"] === "string" && typeof ref["template"] === "string") {
    return storedAt(`${ref["clusterScope"] === true ? "cluster" : "namespaced"}/${ref["name"]}/${ref["template"]}`)
  }
  if (typeof node["templateName"] !== "string") return undefined
  const scope = /^(namespaced|cluster)\/(.+)$/.exec(typeof node["templateScope"] === "string" ? node["templateScope"] : "")
  return scope === null ? local.get(node["templateName"]) : storedAt(`${scope[1]}/${scope[2]}/${node["templateName"]}`)
}

/** A suspend template with a `duration` resumes by itself: nothing to tell. */
const hasDuration = (template: Record<string, unknown> | undefined): boolean => {
  const suspend = template?.["suspend"]
  return isRecord(suspend) && suspend["duration"] !== undefined && suspend["duration"] !== null && suspend["duration"] !== ""
}

export const suspendHints = (wf: KubeObject): ReadonlyArray<SuspendHint> => {
  const status = isRecord(wf["status"]) ? wf["status"] : {}
  if (isWorkflowCompleted(status["phase"])) return []
  const name = wf.metadata.name ?? ""
  const key = `${wf.metadata.namespace ?? ""}/${name}`
  const resume = `run \`flotilla resume ${name}\` in another terminal`
  const hints: Array<SuspendHint> = []
  const spec = isRecord(wf["spec"]) ? wf["spec"] : {}
  if (spec["suspend"] === true) hints.push({ key: `${key}/spec.suspend`, text: `workflow ${name} is suspended (spec.suspend): ${resume}` })
  const local = localTemplates(wf)
  for (const [id, node] of Object.entries(statusNodes(wf["status"]))) {
    if (node.type !== "Suspend" || node.phase !== "Running") continue
    if (hasDuration(templateOfNode(wf, local, node as Record<string, unknown>))) continue
    hints.push({ key: `${key}/${id}`, text: `workflow ${name} is suspended at node ${node.displayName || node.name}: ${resume}` })
  }
  return hints
}

/**
 * Plain output's bookkeeping: the hints of `wf` not printed yet, recorded in `printed`. A hint
 * that no longer holds (the workflow was resumed) is forgotten, so that the next suspension of the
 * same workflow or node is told again.
 */
export const newSuspendHints = (printed: Set<string>, wf: KubeObject): ReadonlyArray<SuspendHint> => {
  const hints = suspendHints(wf)
  const current = new Set(hints.map((h) => h.key))
  const prefix = `${wf.metadata.namespace ?? ""}/${wf.metadata.name ?? ""}/`
  for (const key of printed) if (key.startsWith(prefix) && !current.has(key)) printed.delete(key)
  const fresh = hints.filter((h) => !printed.has(h.key))
  for (const h of fresh) printed.add(h.key)
  return fresh
}
