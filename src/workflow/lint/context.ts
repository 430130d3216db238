/**
 * What every lint rule shares: the issue type, the shared state of one lint
 * run (`LintContext`: issues found so far, the templates by name, the
 * workflow's parameters and global outputs), the small readers of untyped
 * workflow JSON, and the scope (`RefCtx`) that decides which `{{...}}`
 * variables a string may use where it sits.
 *
 * The rule modules (templates, calls, steps, dag, parameters, references) are
 * functions of a `LintContext`; `lintTemplate` is abstract here so that the
 * step and task rules can lint an inline template without importing the
 * template rules that call them (no import cycle). Pure: no effects.
 */
import { isRecord } from "../../util/records.js"
import { kindsOf } from "../model/schema.js"

export interface LintIssue {
  readonly path: string
  readonly message: string
}

export type Obj = Record<string, unknown>

export const str = (u: unknown): string | undefined => (typeof u === "string" ? u : undefined)
export const list = (u: unknown): ReadonlyArray<unknown> => (Array.isArray(u) ? u : [])
export const present = (u: unknown): boolean => u !== undefined && u !== null

/** `a.b`, or `a["x/y"]` for keys that are not plain identifiers (as the Schema's problems write them). */
export const field = (path: string, key: string): string =>
  /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? (path === "" ? key : `${path}.${key}`) : `${path}[${JSON.stringify(key)}]`

export const leafKinds = new Set(["container", "script", "resource", "containerSet", "data", "http", "plugin", "suspend"])
export const noResultKinds = new Set(["steps", "dag", "suspend"])
export const depSuffixes = ["Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed"]

/** Upstream's `workflowFieldNameFmt` (templates, steps, tasks). */
export const fieldNamePattern = /^[a-zA-Z0-9][-a-zA-Z0-9]*$/
/** Upstream's `paramOrArtifactNameRegex`. */
export const paramNamePattern = /^[-a-zA-Z0-9_]+$/
/** Names whose references are checked; anything else in `{{...}}` is left alone, like upstream. */
export const checkedRoots = new Set(["inputs", "steps", "tasks", "item", "workflow", "retries", "lastRetry"])

export const kindOf = (t: Obj): string | undefined => kindsOf(t)[0]

/** What a step/task reference can see of the step or task it names. */
export interface CallInfo {
  readonly name: string
  /** The called template (when it is a local one that exists). */
  readonly callee?: Obj
  readonly loop: boolean
}

/** Where a string sits, which decides the variables it may use. */
export interface RefCtx {
  readonly template: Obj
  readonly templateName: string
  readonly inputs: ReadonlySet<string>
  readonly inputArtifacts: ReadonlySet<string>
  /** Steps template: every step, and those visible here (earlier groups). */
  readonly steps?: { readonly all: ReadonlyMap<string, CallInfo>; readonly visible: ReadonlySet<string>; readonly where?: string }
  /** DAG template: every task, and those visible here (ancestors). */
  readonly tasks?: { readonly all: ReadonlyMap<string, CallInfo>; readonly visible: ReadonlySet<string>; readonly where?: string }
  /** `item` in a loop: "any" (withParam/withSequence/scalars), or the keys of map items. */
  readonly item?: "any" | ReadonlySet<string>
}

/** The state of one lint run, shared by every rule. */
export abstract class LintContext {
  readonly issues: Array<LintIssue> = []
  private readonly seen = new Set<string>()
  readonly templates = new Map<string, Obj>()
  readonly workflowParams = new Set<string>()
  readonly globalOutputs = new Set<string>()
  anyGlobalOutput = false
  defaults: Obj | undefined

  /** Records an issue once (the same message on the same field is reported once). */
  add(path: string, message: string): void {
    const key = `${path}\u0000${message}`
    if (this.seen.has(key)) return
    this.seen.add(key)
    this.issues.push({ path, message })
  }

  /** Lints a template (a named one, or an inline one of a step or task). */
  abstract lintTemplate(t: Obj, path: string, extraInputs?: ReadonlySet<string>): void
}

export interface CallAt {
  readonly call: Obj
}

export const callsOf = (t: Obj, kind: string): ReadonlyArray<CallAt> => {
  if (kind === "steps") {
    return list(t.steps).flatMap((g) => {
      const steps = isRecord(g) && Array.isArray(g.steps) ? g.steps : Array.isArray(g) ? g : []
      return steps.filter(isRecord).map((call) => ({ call }))
    })
  }
  const dag = t.dag
  return isRecord(dag) ? list(dag.tasks).filter(isRecord).map((call) => ({ call })) : []
}

export const itemScope = (call: Obj): RefCtx["item"] => {
  if (present(call.withParam) || present(call.withSequence)) return "any"
  if (!Array.isArray(call.withItems)) return undefined
  const keys = new Set<string>()
  for (const it of call.withItems) {
    if (!isRecord(it)) return "any"
    for (const k of Object.keys(it)) keys.add(k)
  }
  return keys
}

export const withVisible = (ctx: RefCtx, kind: "steps" | "tasks", name: string | undefined): RefCtx => {
  const scope = kind === "steps" ? ctx.steps : ctx.tasks
  if (scope === undefined || name === undefined) return ctx
  const visible = new Set(scope.visible)
  visible.add(name)
  return { ...ctx, [kind]: { ...scope, visible } }
}
