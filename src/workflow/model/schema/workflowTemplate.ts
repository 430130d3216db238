/**
 * The WorkflowTemplate (`argoproj.io/v1alpha1` `WorkflowTemplate`, namespaced)
 * and ClusterWorkflowTemplate objects as Schemas: metadata and a WorkflowSpec,
 * as upstream's `WorkflowTemplate` / `ClusterWorkflowTemplate` have them. A
 * workflow calls their templates with `templateRef` and runs a whole spec with
 * `spec.workflowTemplateRef`.
 */
import { Schema } from "effect"
import type { KubeObject } from "../../../kube/api/Resources.js"
import { ObjectMeta, open, opt } from "./common.js"
import { checkAgainst, type SchemaProblem } from "./issues.js"
import { WorkflowSpec } from "./workflow.js"

const templateObjectFields = {
  apiVersion: opt(Schema.String),
  metadata: ObjectMeta.check(Schema.makeFilter((m) =>
    typeof m.name === "string" && m.name !== "" ? undefined : { path: ["name"], issue: "a name is required" }
  )),
  spec: WorkflowSpec
}

export const WorkflowTemplate = open({ ...templateObjectFields, kind: Schema.Literal("WorkflowTemplate") })
export type WorkflowTemplate = typeof WorkflowTemplate.Type

export const ClusterWorkflowTemplate = open({ ...templateObjectFields, kind: Schema.Literal("ClusterWorkflowTemplate") })
export type ClusterWorkflowTemplate = typeof ClusterWorkflowTemplate.Type

/** Either kind: what `templateRef` and `workflowTemplateRef` read. */
export type TemplateHolder = WorkflowTemplate | ClusterWorkflowTemplate

const checkSpec = checkAgainst(WorkflowSpec)

export type DecodedTemplateHolder =
  | { readonly ok: true; readonly spec: WorkflowSpec }
  | { readonly ok: false; readonly error: string; readonly problems: ReadonlyArray<SchemaProblem> }

/**
 * Decoded specs by object: informers and the CLI hand out the same object
 * until it changes, so each version of a WorkflowTemplate is decoded once.
 */
const decodedSpecs = new WeakMap<KubeObject, DecodedTemplateHolder>()

/** The spec of a stored (Cluster)WorkflowTemplate, decoded; problems are named by path (`spec.templates[0]...`). */
export const decodeTemplateHolderSpec = (obj: KubeObject): DecodedTemplateHolder => {
  const cached = decodedSpecs.get(obj)
  if (cached !== undefined) return cached
  const checked = checkSpec(obj.spec)
  const result: DecodedTemplateHolder = checked.ok
    ? { ok: true, spec: checked.value }
    : {
      ok: false,
      problems: checked.problems.map((p) => ({ ...p, path: p.path === "" ? "spec" : `spec.${p.path}` })),
      error: checked.problems.map((p) => `spec${p.path === "" ? "" : `.${p.path}`}: ${p.message}`).join("; ")
    }
  decodedSpecs.set(obj, result)
  return result
}
