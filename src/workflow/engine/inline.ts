/**
 * Inline templates: a step or DAG task that carries its template (`inline:`)
 * instead of naming one. Upstream resolves such a call to the template it
 * holds (`TemplateReferenceHolder.GetTemplate`), merges `templateDefaults`
 * under it like any other, and records no `templateName` on its nodes; the
 * pod name is `util.GeneratePodName` with the inline template's own name,
 * usually none, so `<workflow>-<hash>`.
 *
 * An inline template belongs to the template base of the template that holds
 * it: the named templates its own steps call are looked up there, which is
 * what the frame of the call gives (no `templateRef`, so the base is kept).
 * Never stored in `status.storedTemplates`: upstream stores inline templates
 * only for (Cluster)WorkflowTemplates, and flotilla re-reads them from the
 * stored template that holds them.
 */
import type { Template, TemplateCall } from "../model/Workflow.js"
import { inlineOf } from "../model/Workflow.js"
import type { ExecOpts } from "./nodes.js"
import { mergeDefaults, type OperationState } from "./operation.js"


/** The inline template of the call `opts` describes, with `templateDefaults` merged under it. */
export const inlineTemplate = (op: OperationState, opts: ExecOpts): Template | undefined => {
  const inline = inlineOf(op.callOf(opts))
  if (inline === undefined) return undefined
  const defaults = op.wf.spec.templateDefaults
  return defaults === undefined ? inline : (mergeDefaults(defaults, inline) as Template)
}
