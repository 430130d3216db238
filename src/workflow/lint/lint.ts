/**
 * `flotilla lint`: static checks of a Workflow, without running it, in the
 * spirit of upstream's validator (`workflow/validate/validate.go`): every
 * issue names the offending field by its path
 * (`spec.templates[1].dag.tasks[2].dependencies[0]`).
 *
 * Pure: a workflow object in, a list of issues out. The shape of the workflow
 * (types, required fields, one type per template, enums) is the Workflow
 * Schema's (`model/schema`): its problems come from the decoder, each added
 * unless an issue here already names the same field. What is left here are
 * the rules between parts: references to templates, tasks, steps, parameters
 * and variables, expressions, cycles, reserved keys (`model/reserved.ts`).
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import { isRecord } from "../../util/records.js"
import { decodeWorkflow } from "../model/decode.js"
import { reservedFieldsOfSpec } from "../model/reserved.js"
import { checkHooks } from "./calls.js"
import { callsOf, field, fieldNamePattern, LintContext, type LintIssue, list, type Obj, str } from "./context.js"
import { checkParameter, checkRequiredInputs } from "./parameters.js"
import { checkExpressionField } from "./references.js"
import { checkPlacement, lintTemplate } from "./templates.js"

import { checkWorkflowArtifacts } from "./artifacts.js"
export type { LintIssue } from "./context.js"

/**
 * One lint run: the workflow-level rules (metadata, entrypoint, exit handler,
 * hooks, workflow arguments and metadata, the templates by name and the
 * global outputs), then every template, then the decoder's problems. The rules
 * themselves live in the modules beside this one, by concept: `templates.ts`,
 * `calls.ts`, `steps.ts`, `dag.ts`, `parameters.ts`, `references.ts`.
 */
class Linter extends LintContext {
  run(obj: KubeObject): void {
    const meta = (obj as { metadata?: unknown }).metadata
    if (!isRecord(meta)) this.add("metadata", "metadata is required")
    else if (str(meta.name) === undefined && str(meta.generateName) === undefined) {
      this.add("metadata.name", "metadata.name or metadata.generateName is required")
    } else if ((str(meta.name) ?? "").length > 63) {
      this.add("metadata.name", `workflow name "${String(meta.name)}" must not be more than 63 characters long`)
    }
    const spec = (obj as { spec?: unknown }).spec
    if (!isRecord(spec)) {
      this.add("spec", "spec is required")
      return this.addDecodeError(obj)
    }
    if (!Array.isArray(spec.templates)) {
      this.add("spec.templates", "a list of templates is required")
      return this.addDecodeError(obj)
    }
    this.defaults = isRecord(spec.templateDefaults) ? spec.templateDefaults : undefined
    if (this.defaults !== undefined) checkPlacement(this, this.defaults, "spec.templateDefaults")
    for (const v of reservedFieldsOfSpec(spec)) this.add(v.path, v.message)
    this.collectTemplates(spec.templates)
    this.collectGlobals(spec)

    // Workflow arguments: each needs a value (flotilla has no submit-time parameters).
    const args = isRecord(spec.arguments) ? spec.arguments : {}
    list(args.parameters).forEach((p, i) => checkParameter(this, p, `spec.arguments.parameters[${i}]`, "workflow parameter", true))
    checkWorkflowArtifacts(this, spec)

    const entry = str(spec.entrypoint)
    if (entry === undefined || entry === "") this.add("spec.entrypoint", "an entrypoint is required")
    else if (!this.templates.has(entry)) this.add("spec.entrypoint", `unknown template "${entry}"`)
    else checkRequiredInputs(this, entry, args, "spec.arguments.parameters", `entrypoint template "${entry}"`)

    const onExit = str(spec.onExit)
    if (onExit !== undefined && onExit !== "") {
      if (!this.templates.has(onExit)) this.add("spec.onExit", `unknown template "${onExit}"`)
      else checkRequiredInputs(this, onExit, args, "spec.arguments.parameters", `exit handler template "${onExit}"`)
    }
    if (isRecord(spec.hooks)) checkHooks(this, spec.hooks, "spec.hooks", undefined)

    const wm = spec.workflowMetadata
    if (isRecord(wm) && isRecord(wm.labelsFrom)) {
      for (const [k, v] of Object.entries(wm.labelsFrom)) {
        const e = isRecord(v) ? str(v.expression) : undefined
        if (e !== undefined) checkExpressionField(this, e, `${field("spec.workflowMetadata.labelsFrom", k)}.expression`, undefined)
      }
    }

    list(spec.templates).forEach((t, i) => {
      if (isRecord(t)) this.lintTemplate(t, `spec.templates[${i}]`)
    })
    this.addDecodeError(obj)
  }

  /** The decoder's problems (the Schema's, then its references), unless an issue already names that field. */
  private addDecodeError(obj: KubeObject): void {
    const meta = isRecord(obj.metadata) ? obj.metadata : {}
    const named = str(meta.name) === undefined && str(meta.generateName) !== undefined
      ? { ...obj, metadata: { ...meta, name: `${String(meta.generateName)}lint` } } as KubeObject
      : obj
    const decoded = decodeWorkflow(named)
    if (decoded.ok) return
    const own = this.issues.map((i) => i.path)
    for (const { path, message } of decoded.problems) {
      const covered = own.some((p) => p === path || (p !== "" && (path.startsWith(p + ".") || path.startsWith(p + "["))))
      if (!covered) this.add(path, message)
    }
  }

  // ------------------------------------------------------------------ globals

  private collectTemplates(templates: ReadonlyArray<unknown>): void {
    templates.forEach((t, i) => {
      const p = `spec.templates[${i}]`
      if (!isRecord(t)) return this.add(p, "a template must be an object")
      const name = str(t.name)
      if (name === undefined || name === "") return this.add(`${p}.name`, "a template name is required")
      if (!fieldNamePattern.test(name) || name.length > 128) {
        this.add(`${p}.name`, `template name "${name}" is invalid: it must consist of alpha-numeric characters or '-', and start with an alpha-numeric character`)
      }
      if (this.templates.has(name)) return this.add(`${p}.name`, `duplicate template name "${name}"`)
      this.templates.set(name, t)
    })
  }

  private collectGlobals(spec: Obj): void {
    const args = isRecord(spec.arguments) ? spec.arguments : {}
    for (const p of list(args.parameters)) if (isRecord(p) && typeof p.name === "string") this.workflowParams.add(p.name)
    const visit = (t: Obj): void => {
      const outs = isRecord(t.outputs) ? t.outputs : {}
      for (const p of list(outs.parameters)) {
        const g = isRecord(p) ? str(p.globalName) : undefined
        if (g === undefined || g === "") continue
        if (g.includes("{{")) this.anyGlobalOutput = true
        else this.globalOutputs.add(g)
      }
      for (const kind of ["steps", "dag"]) {
        for (const call of callsOf(t, kind)) if (isRecord(call.call.inline)) visit(call.call.inline)
      }
    }
    for (const t of this.templates.values()) visit(t)
  }

  lintTemplate(t: Obj, path: string, extraInputs: ReadonlySet<string> = new Set()): void {
    lintTemplate(this, t, path, extraInputs)
  }
}

/** Lint a Workflow object: every issue found, each with the path of its field. */
export const lintWorkflow = (obj: KubeObject): ReadonlyArray<LintIssue> => {
  const linter = new Linter()
  linter.run(obj)
  return linter.issues
}
