/**
 * Decoding of a stored Workflow object into the engine's model, with errors
 * that name every offending field by its path
 * (`spec.templates[2].steps[0][1].template: unknown template "foo"`).
 *
 * Decoding never throws: a workflow that does not decode ends in phase Error
 * with the message, like Argo's validation failures.
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import { cachedByContent } from "./contentCache.js"
import { referenceProblems } from "./references.js"
import { checkAgainst, type SchemaProblem } from "./schema/issues.js"
import { WorkflowEnvelope, WorkflowSpec } from "./schema/workflow.js"
import type { Workflow } from "./Workflow.js"

/**
 * `error` is every problem as one line (`path: message; path: message`), as
 * a workflow's status message carries it; `problems` lists them one by one.
 */
export type DecodeResult =
  | { readonly ok: true; readonly value: Workflow }
  | { readonly ok: false; readonly error: string; readonly problems: ReadonlyArray<SchemaProblem> }

const checkEnvelope = checkAgainst(WorkflowEnvelope)
const checkSpec = checkAgainst(WorkflowSpec)

const failed = (problems: ReadonlyArray<SchemaProblem>): DecodeResult => ({
  ok: false,
  error: problems.map((p) => p.path === "" ? p.message : `${p.path}: ${p.message}`).join("; "),
  problems
})

type SpecResult =
  | { readonly ok: true; readonly spec: WorkflowSpec }
  | { readonly ok: false; readonly stage: "shape" | "references"; readonly problems: ReadonlyArray<SchemaProblem> }

/** The spec decoded once per content (a workflow is decoded at every reconcile; its spec almost never changes). */
const decodeSpec = cachedByContent((spec: unknown): SpecResult => {
  const checked = checkSpec(spec)
  const references = checked.ok ? referenceProblems(checked.value) : []
  const result: SpecResult = !checked.ok
    ? { ok: false, stage: "shape", problems: checked.problems.map((p) => ({ ...p, path: p.path === "" ? "spec" : `spec.${p.path}` })) }
    : references.length > 0
    ? { ok: false, stage: "references", problems: references }
    : { ok: true, spec: checked.value }
  return result
}, 4096)

/**
 * Decode a stored Workflow object: its shape against the Workflow Schema, then
 * (once the spec's shape is right) the references between its parts. Every
 * problem of the first stage that finds any is reported.
 */
export const decodeWorkflow = (obj: KubeObject): DecodeResult => {
  const envelope = checkEnvelope(obj)
  const spec = decodeSpec(obj.spec)
  if (!envelope.ok) {
    // The spec's shape problems too; its references only once everything else is right.
    return failed([...envelope.problems, ...(!spec.ok && spec.stage === "shape" ? spec.problems : [])])
  }
  if (!spec.ok) return failed(spec.problems)
  const { metadata, status } = envelope.value
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
      spec: spec.spec,
      status,
      raw: obj
    }
  }
}
