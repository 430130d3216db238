/**
 * What `flotilla run` tells the user while a workflow waits to be resumed: a suspend node with no
 * `duration` that is Running (it waits for `flotilla resume`), or a workflow whose `spec.suspend`
 * is set. Each hint has a key, so that plain output prints it once per suspension.
 */
import type { KubeObject } from "../kube/api/Resources.js"
import { isRecord } from "../util/records.js"
import { statusNodes } from "../workflow/model/compressedNodes.js"
import { isWorkflowCompleted } from "../workflow/model/Workflow.js"

export interface SuspendHint {
  readonly key: string
  readonly text: string
}

/** The templates of the spec and those stored for references, by name (first wins). */
const templatesByName = (wf: KubeObject): Map<string, Record<string, unknown>> => {
  const out = new Map<string, Record<string, unknown>>()
  const add = (t: unknown) => {
    if (isRecord(t) && typeof t["name"] === "string" && !out.has(t["name"])) out.set(t["name"], t)
  }
  const spec = isRecord(wf["spec"]) ? wf["spec"] : {}
  if (Array.isArray(spec["templates"])) spec["templates"].forEach(add)
  const status = isRecord(wf["status"]) ? wf["status"] : {}
  if (isRecord(status["storedTemplates"])) Object.values(status["storedTemplates"]).forEach(add)
  return out
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
  const templates = templatesByName(wf)
  for (const [id, node] of Object.entries(statusNodes(wf["status"]))) {
    if (node.type !== "Suspend" || node.phase !== "Running") continue
    const ref = isRecord(node["templateRef"]) && typeof node["templateRef"]["template"] === "string" ? node["templateRef"]["template"] : undefined
    if (hasDuration(templates.get(node.templateName ?? ref ?? ""))) continue
    hints.push({ key: `${key}/${id}`, text: `workflow ${name} is suspended at node ${node.displayName || node.name}: ${resume}` })
  }
  return hints
}
