/**
 * Decoding of a stored Workflow object into the engine's model, with errors
 * that name every offending field by its path
 * (`spec.templates[2].steps[0][1].template: unknown template "foo"`).
 *
 * Decoding never throws: a workflow that does not decode ends in phase Error
 * with the message, like Argo's validation failures.
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import { referenceProblems } from "./references.js"
import { checkAgainst, type SchemaProblem } from "./schema/issues.js"
import { Workflow as WorkflowSchema } from "./schema/workflow.js"
import type { Workflow } from "./Workflow.js"

/**
 * `error` is every problem as one line (`path: message; path: message`), as
 * a workflow's status message carries it; `problems` lists them one by one.
 */
export type DecodeResult =
  | { readonly ok: true; readonly value: Workflow }
  | { readonly ok: false; readonly error: string; readonly problems: ReadonlyArray<SchemaProblem> }

const checkWorkflow = checkAgainst(WorkflowSchema)

const failed = (problems: ReadonlyArray<SchemaProblem>): DecodeResult => ({
  ok: false,
  error: problems.map((p) => p.path === "" ? p.message : `${p.path}: ${p.message}`).join("; "),
  problems
})

/**
 * Decode a stored Workflow object: its shape against the Workflow Schema, then
 * (once the shape is right) the references between its parts. Every problem
 * of the first stage that finds any is reported.
 */
export const decodeWorkflow = (obj: KubeObject): DecodeResult => {
  const checked = checkWorkflow(obj)
  if (!checked.ok) return failed(checked.problems)
  const { metadata, spec, status } = checked.value
  const references = referenceProblems(spec)
  if (references.length > 0) return failed(references)
  return {
    ok: true,
    value: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: {
        name: metadata.name!,
        namespace: metadata.namespace ?? "default",
        uid: metadata.uid,
        creationTimestamp: metadata.creationTimestamp,
        labels: metadata.labels,
        annotations: metadata.annotations
      },
      spec,
      status,
      raw: obj
    }
  }
}
