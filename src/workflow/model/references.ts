/**
 * The rules of a Workflow that span more than one object, checked on a
 * workflow the Schema has decoded: every template a step, task, hook or exit
 * handler names exists; every task a DAG names is one of its tasks; a template
 * has an image unless templateDefaults gives one; no field the controller
 * reserves is set (`reserved.ts`).
 *
 * These are what the engine cannot run without; `flotilla lint` checks more
 * (variables, expressions, cycles) and words some of the same problems its
 * own way.
 */
import { reservedFieldsOfSpec } from "./reserved.js"
import type { SchemaProblem } from "./schema/issues.js"
import type { LifecycleHook } from "./schema/common.js"
import type { DAGTask, Template, WorkflowStep } from "./schema/template.js"
import type { WorkflowSpec } from "./schema/workflow.js"

const dependsSuffix = /\.(Succeeded|Failed|Errored|Skipped|Omitted|Daemoned|AnySucceeded|AllFailed)$/

/** Every cross-object problem of a decoded spec, each with its path. */
export const referenceProblems = (spec: WorkflowSpec): ReadonlyArray<SchemaProblem> => {
  const out: Array<SchemaProblem> = []
  const add = (path: string, message: string) => out.push({ path, message })
  const names = new Set(spec.templates.map((t) => t.name ?? ""))
  const known = (path: string, name: string | null | undefined) => {
    if (typeof name === "string" && !names.has(name)) add(path, `unknown template "${name}"`)
  }
  const hooks = (path: string, hs: Readonly<Record<string, LifecycleHook>> | null | undefined) => {
    for (const [k, h] of Object.entries(hs ?? {})) known(`${path}.${k}.template`, h.template)
  }
  const defaults = spec.templateDefaults

  const call = (c: WorkflowStep | DAGTask, path: string) => {
    known(`${path}.template`, c.template)
    known(`${path}.onExit`, c.onExit)
    hooks(`${path}.hooks`, c.hooks)
    if (c.inline != null) template(c.inline, `${path}.inline`)
  }

  const template = (t: Template, path: string): void => {
    for (const kind of ["container", "script"] as const) {
      const c = t[kind]
      // spec.templateDefaults.<kind>.image is merged under the template (as upstream's validator allows).
      if (c != null && c.image == null && typeof defaults?.[kind]?.image !== "string") {
        add(`${path}.${kind}.image`, "expected a string, got nothing")
      }
    }
    // Both forms of a step group (`- - step` and `- steps: [step]`) decode as a list.
    t.steps?.forEach((g, i) => g.forEach((s, j) => call(s, `${path}.steps[${i}][${j}]`)))
    const dag = t.dag
    if (dag == null) return
    const tasks = new Set(dag.tasks.map((task) => task.name))
    dag.tasks.forEach((task, i) => {
      const tp = `${path}.dag.tasks[${i}]`
      call(task, tp)
      if (task.dependencies != null && task.depends != null) {
        add(tp, "cannot use both 'depends' and 'dependencies' in the same DAG template")
      }
      task.dependencies?.forEach((d, j) => {
        if (!tasks.has(d)) add(`${tp}.dependencies[${j}]`, `unknown task "${d}"`)
      })
      for (const m of (task.depends ?? "").matchAll(/[A-Za-z0-9_][A-Za-z0-9_.-]*/g)) {
        const word = m[0].replace(dependsSuffix, "")
        if (!tasks.has(word)) add(`${tp}.depends`, `unknown task "${word}"`)
      }
    })
    if (typeof dag.target === "string" && !dag.target.includes("{{")) {
      for (const tn of dag.target.split(" ").filter((x) => x !== "")) {
        if (!tasks.has(tn)) add(`${path}.dag.target`, `unknown task "${tn}"`)
      }
    }
  }

  spec.templates.forEach((t, i) => template(t, `spec.templates[${i}]`))
  if (spec.entrypoint == null || spec.entrypoint === "") add("spec.entrypoint", "an entrypoint is required")
  else known("spec.entrypoint", spec.entrypoint)
  known("spec.onExit", spec.onExit)
  hooks("spec.hooks", spec.hooks)
  out.push(...reservedFieldsOfSpec(spec as unknown as Record<string, unknown>))
  return out
}
