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
import type { KubeObject } from "../../kube/Resources.js"
import { isRecord } from "../../util/records.js"
import { evaluateDepends, taskDependencies } from "../engine/depends.js"
import { clusterProblem, namespaceProblem } from "../engine/targeting.js"
import { parseExpr, parseGovaluate, referencedVariables } from "../expressions/index.js"
import { decodeWorkflow } from "../model/decode.js"
import { reservedFieldsOfSpec } from "../model/reserved.js"
import { kindsOf } from "../model/schema.js"
import type { DagTask } from "../model/Workflow.js"

export interface LintIssue {
  readonly path: string
  readonly message: string
}

type Obj = Record<string, unknown>

const str = (u: unknown): string | undefined => (typeof u === "string" ? u : undefined)
const list = (u: unknown): ReadonlyArray<unknown> => (Array.isArray(u) ? u : [])
const present = (u: unknown): boolean => u !== undefined && u !== null

/** `a.b`, or `a["x/y"]` for keys that are not plain identifiers (as the Schema's problems write them). */
const field = (path: string, key: string): string =>
  /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? (path === "" ? key : `${path}.${key}`) : `${path}[${JSON.stringify(key)}]`

const leafKinds = new Set(["container", "script", "resource", "containerSet", "data", "http", "plugin", "suspend"])
const noResultKinds = new Set(["steps", "dag", "suspend"])
const depSuffixes = ["Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed"]

/** Upstream's `workflowFieldNameFmt` (templates, steps, tasks). */
const fieldNamePattern = /^[a-zA-Z0-9][-a-zA-Z0-9]*$/
/** Upstream's `paramOrArtifactNameRegex`. */
const paramNamePattern = /^[-a-zA-Z0-9_]+$/
/** Names whose references are checked; anything else in `{{...}}` is left alone, like upstream. */
const checkedRoots = new Set(["inputs", "steps", "tasks", "item", "workflow", "retries", "lastRetry"])

const kindOf = (t: Obj): string | undefined => kindsOf(t)[0]

/** What a step/task reference can see of the step or task it names. */
interface CallInfo {
  readonly name: string
  /** The called template (when it is a local one that exists). */
  readonly callee?: Obj
  readonly loop: boolean
}

/** Where a string sits, which decides the variables it may use. */
interface RefCtx {
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

class Linter {
  readonly issues: Array<LintIssue> = []
  private readonly seen = new Set<string>()
  private templates = new Map<string, Obj>()
  private workflowParams = new Set<string>()
  private globalOutputs = new Set<string>()
  private anyGlobalOutput = false
  private defaults: Obj | undefined

  add(path: string, message: string): void {
    const key = `${path}\u0000${message}`
    if (this.seen.has(key)) return
    this.seen.add(key)
    this.issues.push({ path, message })
  }

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
    if (this.defaults !== undefined) this.checkPlacement(this.defaults, "spec.templateDefaults")
    for (const v of reservedFieldsOfSpec(spec)) this.add(v.path, v.message)
    this.collectTemplates(spec.templates)
    this.collectGlobals(spec)

    // Workflow arguments: each needs a value (flotilla has no submit-time parameters).
    const args = isRecord(spec.arguments) ? spec.arguments : {}
    list(args.parameters).forEach((p, i) => this.checkParameter(p, `spec.arguments.parameters[${i}]`, "workflow parameter", true))

    const entry = str(spec.entrypoint)
    if (entry === undefined || entry === "") this.add("spec.entrypoint", "an entrypoint is required")
    else if (!this.templates.has(entry)) this.add("spec.entrypoint", `unknown template "${entry}"`)
    else this.checkRequiredInputs(entry, args, "spec.arguments.parameters", `entrypoint template "${entry}"`)

    const onExit = str(spec.onExit)
    if (onExit !== undefined && onExit !== "") {
      if (!this.templates.has(onExit)) this.add("spec.onExit", `unknown template "${onExit}"`)
      else this.checkRequiredInputs(onExit, args, "spec.arguments.parameters", `exit handler template "${onExit}"`)
    }
    if (isRecord(spec.hooks)) this.checkHooks(spec.hooks, "spec.hooks", undefined)

    const wm = spec.workflowMetadata
    if (isRecord(wm) && isRecord(wm.labelsFrom)) {
      for (const [k, v] of Object.entries(wm.labelsFrom)) {
        const e = isRecord(v) ? str(v.expression) : undefined
        if (e !== undefined) this.checkExpressionField(e, `${field("spec.workflowMetadata.labelsFrom", k)}.expression`, undefined)
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

  // ------------------------------------------------------------------ templates

  private lintTemplate(t: Obj, path: string, extraInputs: ReadonlySet<string> = new Set()): void {
    const name = str(t.name) ?? "(inline)"
    const kind = kindOf(t)
    const leaf = kind !== undefined && leafKinds.has(kind)
    this.checkPlacement(t, path)

    const inputs = isRecord(t.inputs) ? t.inputs : {}
    const inputNames = new Set(extraInputs)
    list(inputs.parameters).forEach((p, i) => {
      const pp = `${path}.inputs.parameters[${i}]`
      if (!isRecord(p)) return
      const n = str(p.name)
      if (n === undefined || n === "") return
      if (!paramNamePattern.test(n)) this.add(`${pp}.name`, `parameter name "${n}" is invalid: it must consist of alpha-numeric characters, '_' or '-'`)
      if (inputNames.has(n) && !extraInputs.has(n)) this.add(`${pp}.name`, `duplicate parameter "${n}"`)
      inputNames.add(n)
      this.checkEnum(p, pp, p.value ?? p.default)
    })
    const inputArtifacts = new Set<string>()
    for (const a of list(inputs.artifacts)) if (isRecord(a) && typeof a.name === "string") inputArtifacts.add(a.name)

    if (kind === "container" || kind === "script") {
      // A missing image is the Schema's (or, with templateDefaults, the decoder's); an empty one is caught here.
      const c = t[kind]
      const fromDefaults = isRecord(this.defaults) && isRecord(this.defaults[kind]) && str(this.defaults[kind].image) !== undefined
      if (isRecord(c) && str(c.image) === "" && !fromDefaults) this.add(`${path}.${kind}.image`, "an image is required")
    }
    if (!leaf && kind !== undefined && present(t.activeDeadlineSeconds)) {
      this.add(`${path}.activeDeadlineSeconds`, "activeDeadlineSeconds is only valid for leaf templates")
    }
    if (leaf && present(t.parallelism)) this.add(`${path}.parallelism`, "parallelism is only valid for steps and dag templates")
    if (present(t.timeout)) {
      if (!leaf && kind !== undefined) this.add(`${path}.timeout`, `${kind} templates do not support timeout`)
      else if (/^\s*\d+\s*$/.test(String(t.timeout))) this.add(`${path}.timeout`, `invalid duration "${String(t.timeout)}": a unit is required (e.g. "30s")`)
    }

    const base: RefCtx = { template: t, templateName: name, inputs: inputNames, inputArtifacts }
    const rs = t.retryStrategy
    if (isRecord(rs)) {
      if (present(rs.limit) && !/^\s*\d+\s*$/.test(String(rs.limit)) && !String(rs.limit).includes("{{")) {
        this.add(`${path}.retryStrategy.limit`, `limit "${String(rs.limit)}" is not a non-negative integer`)
      }
      const e = str(rs.expression)
      if (e !== undefined && e !== "") this.checkExpressionField(e, `${path}.retryStrategy.expression`, base)
    }

    // Outputs: value or valueFrom, of the kind the template type allows.
    const outputs = isRecord(t.outputs) ? t.outputs : {}
    const outNames = new Set<string>()
    list(outputs.parameters).forEach((p, i) => {
      const pp = `${path}.outputs.parameters[${i}]`
      if (!isRecord(p)) return
      const n = str(p.name) ?? ""
      outNames.add(n)
      if (present(p.value) && present(p.valueFrom)) this.add(pp, `output parameter "${n}" has both value and valueFrom`)
      else if (!present(p.value) && !present(p.valueFrom)) this.add(pp, `output parameter "${n}" has neither value nor valueFrom`)
      const vf = p.valueFrom
      if (isRecord(vf)) {
        const sources = ["path", "jqFilter", "jsonPath", "parameter", "expression", "supplied", "configMapKeyRef", "event"].filter((k) => present(vf[k]))
        if (sources.length === 0) this.add(`${pp}.valueFrom`, `output parameter "${n}": valueFrom needs one of path, jqFilter, jsonPath, parameter, expression`)
        if ((kind === "steps" || kind === "dag") && !present(vf.parameter) && !present(vf.expression)) {
          this.add(`${pp}.valueFrom`, `output parameter "${n}" of a ${kind} template needs valueFrom.parameter or valueFrom.expression`)
        }
        if ((kind === "container" || kind === "script") && present(vf.parameter)) {
          this.add(`${pp}.valueFrom.parameter`, `output parameter "${n}" of a ${kind} template needs valueFrom.path`)
        }
      }
    })

    // References everywhere but in the steps/tasks (handled with their own scope).
    const stepsCtx = kind === "steps" ? this.stepsScope(t) : undefined
    const tasksCtx = kind === "dag" ? this.dagScope(t) : undefined
    const whole: RefCtx = {
      ...base,
      ...(stepsCtx ? { steps: { all: stepsCtx, visible: new Set(stepsCtx.keys()) } } : {}),
      ...(tasksCtx ? { tasks: { all: tasksCtx, visible: new Set(tasksCtx.keys()) } } : {})
    }
    for (const [k, v] of Object.entries(t)) {
      if (k === "name" || k === "steps" || k === "dag" || k === "retryStrategy") continue
      if (k === "outputs" && isRecord(v)) {
        this.scanOutputs(v, `${path}.outputs`, whole)
        continue
      }
      this.scan(v, field(path, k), whole)
    }
    if (isRecord(rs)) {
      for (const [k, v] of Object.entries(rs)) if (k !== "expression") this.scan(v, `${path}.retryStrategy.${k}`, whole)
    }

    if (kind === "steps") this.lintSteps(t, path, base, stepsCtx!)
    if (kind === "dag") this.lintDag(t, path, base, tasksCtx!)
  }

  /**
   * flotilla's `cluster:` (an argo-kubeconfig context, written in labels: a
   * label value) and `namespace:` (an RFC 1123 label), as the engine checks
   * them before creating a pod. Values that are not strings are the decoder's
   * to report; values with `{{...}}` are known only after substitution.
   */
  private checkPlacement(t: Obj, path: string): void {
    for (const [key, problemOf] of [["cluster", clusterProblem], ["namespace", namespaceProblem]] as const) {
      const value = str(t[key])
      if (value === undefined || value === "" || value.includes("{{")) continue
      const problem = problemOf(value)
      if (problem !== undefined) this.add(`${path}.${key}`, `invalid ${key} ${JSON.stringify(value)}: ${problem}`)
    }
  }

  private scanOutputs(outputs: Obj, path: string, ctx: RefCtx): void {
    for (const [k, v] of Object.entries(outputs)) {
      if (k !== "parameters") {
        this.scan(v, field(path, k), ctx)
        continue
      }
      list(v).forEach((p, i) => {
        const pp = `${path}.parameters[${i}]`
        if (!isRecord(p)) return
        for (const [pk, pv] of Object.entries(p)) {
          if (pk === "valueFrom" && isRecord(pv)) {
            for (const [vk, vv] of Object.entries(pv)) {
              if (vk === "expression" && typeof vv === "string") this.checkExpressionField(vv, `${pp}.valueFrom.expression`, ctx)
              else this.scan(vv, `${pp}.valueFrom.${vk}`, ctx)
            }
          } else this.scan(pv, field(pp, pk), ctx)
        }
      })
    }
  }

  // ------------------------------------------------------------------ calls

  private callInfo(call: Obj, name: string): CallInfo {
    const t = str(call.template)
    const callee = isRecord(call.inline) ? call.inline : t === undefined ? undefined : this.templates.get(t)
    return { name, callee, loop: present(call.withItems) || present(call.withParam) || present(call.withSequence) }
  }

  private stepsScope(t: Obj): Map<string, CallInfo> {
    const m = new Map<string, CallInfo>()
    for (const { call } of callsOf(t, "steps")) {
      const n = str(call.name)
      if (n !== undefined && !m.has(n)) m.set(n, this.callInfo(call, n))
    }
    return m
  }

  private dagScope(t: Obj): Map<string, CallInfo> {
    const m = new Map<string, CallInfo>()
    for (const { call } of callsOf(t, "dag")) {
      const n = str(call.name)
      if (n !== undefined && !m.has(n)) m.set(n, this.callInfo(call, n))
    }
    return m
  }

  /** Checks common to steps and tasks: the template called, its arguments, loops, hooks. */
  private checkCall(call: Obj, path: string, ctx: RefCtx, self: { kind: "steps" | "tasks"; name: string }): void {
    const name = str(call.name)
    if (name === "") this.add(`${path}.name`, "a name is required")
    else if (name !== undefined && (!fieldNamePattern.test(name) || name.length > 128)) {
      this.add(`${path}.name`, `name "${name}" is invalid: it must consist of alpha-numeric characters or '-', and start with an alpha-numeric character`)
    }
    const tmpl = str(call.template)
    if (tmpl !== undefined && !this.templates.has(tmpl)) this.add(`${path}.template`, `unknown template "${tmpl}"`)
    const args = isRecord(call.arguments) ? call.arguments : {}
    list(args.parameters).forEach((p, i) => this.checkParameter(p, `${path}.arguments.parameters[${i}]`, "argument", false))
    if (tmpl !== undefined && this.templates.has(tmpl)) {
      this.checkRequiredInputs(tmpl, args, `${path}.arguments.parameters`, `template "${tmpl}"`)
    }
    if (isRecord(call.inline)) {
      this.checkRequiredInputs(call.inline, args, `${path}.arguments.parameters`, "the inline template")
      this.lintTemplate(call.inline, `${path}.inline`)
    }
    const loops = ["withItems", "withParam", "withSequence"].filter((k) => present(call[k]))
    if (loops.length > 1) this.add(path, `only one of withItems, withParam, withSequence can be specified (got ${loops.join(", ")})`)
    if (present(call.withParam) && str(call.withParam) !== undefined && !String(call.withParam).includes("{{")) {
      try {
        if (!Array.isArray(JSON.parse(String(call.withParam)))) throw new Error()
      } catch {
        this.add(`${path}.withParam`, `withParam "${String(call.withParam)}" is neither a JSON list nor a {{...}} reference`)
      }
    }
    const onExit = str(call.onExit)
    if (onExit !== undefined && !this.templates.has(onExit)) this.add(`${path}.onExit`, `unknown template "${onExit}"`)
    if (onExit !== undefined && this.templates.has(onExit)) {
      this.checkRequiredInputs(onExit, {}, `${path}.onExit`, `exit handler template "${onExit}"`)
    }

    // Variables: the call sees its scope (plus `item` in a loop); its hooks also see itself.
    const item = itemScope(call)
    const local: RefCtx = { ...ctx, ...(item !== undefined ? { item } : {}) }
    for (const [k, v] of Object.entries(call)) {
      if (k === "name" || k === "inline" || k === "hooks" || k === "depends" || k === "dependencies" || k === "template" || k === "onExit") continue
      if (k === "when" && typeof v === "string") {
        this.checkWhen(v, `${path}.when`, local)
        continue
      }
      this.scan(v, field(path, k), local)
    }
    if (isRecord(call.hooks)) {
      const withSelf = withVisible(ctx, self.kind, name)
      this.checkHooks(call.hooks, `${path}.hooks`, withSelf)
    }
  }

  private checkHooks(hooks: Obj, path: string, ctx: RefCtx | undefined): void {
    for (const [k, h] of Object.entries(hooks)) {
      const hp = field(path, k)
      if (!isRecord(h)) continue
      const t = str(h.template)
      if (t === undefined) {
        if (!isRecord(h.templateRef)) this.add(`${hp}.template`, "a template name is required")
      } else if (!this.templates.has(t)) this.add(`${hp}.template`, `unknown template "${t}"`)
      else this.checkRequiredInputs(t, isRecord(h.arguments) ? h.arguments : {}, `${hp}.arguments.parameters`, `template "${t}"`)
      const e = str(h.expression)
      if (k !== "exit" && (e === undefined || e === "")) this.add(`${hp}.expression`, `hook "${k}" needs an expression (only the "exit" hook may omit it)`)
      if (e !== undefined && e !== "") this.checkExpressionField(e, `${hp}.expression`, ctx)
      const args = isRecord(h.arguments) ? h.arguments : {}
      list(args.parameters).forEach((p, i) => this.checkParameter(p, `${hp}.arguments.parameters[${i}]`, "argument", false))
      if (ctx !== undefined) this.scan(h.arguments, `${hp}.arguments`, ctx)
    }
  }

  /** Every input parameter of the callee without value or default must be passed. */
  private checkRequiredInputs(callee: string | Obj, args: Obj, path: string, what: string): void {
    const t = typeof callee === "string" ? this.templates.get(callee) : callee
    if (t === undefined) return
    const passed = new Set<string>()
    for (const p of list(args.parameters)) if (isRecord(p) && typeof p.name === "string") passed.add(p.name)
    const inputs = isRecord(t.inputs) ? t.inputs : {}
    for (const p of list(inputs.parameters)) {
      if (!isRecord(p) || typeof p.name !== "string") continue
      if (present(p.value) || present(p.default) || present(p.valueFrom)) continue
      if (!passed.has(p.name)) this.add(path, `${what} requires input parameter "${p.name}", which is not passed`)
    }
  }

  private checkParameter(p: unknown, path: string, what: string, workflow: boolean): void {
    if (!isRecord(p)) return
    const n = str(p.name)
    if (n === undefined || n === "") return
    if (workflow) {
      if (!present(p.value) && !present(p.default) && !(isRecord(p.valueFrom) && present(p.valueFrom.default))) {
        this.add(`${path}.value`, `${what} "${n}" has no value`)
      }
    } else if (!present(p.value) && !present(p.valueFrom)) {
      this.add(`${path}.value`, `${what} "${n}" has no value`)
    }
    this.checkEnum(p, path, p.value ?? p.default)
  }

  private checkEnum(p: Obj, path: string, value: unknown): void {
    if (!Array.isArray(p.enum)) return
    if (p.enum.length === 0) return this.add(`${path}.enum`, "enum should contain at least one value")
    if (present(value) && !String(value).includes("{{") && !p.enum.map(String).includes(String(value))) {
      this.add(`${path}.value`, `value "${String(value)}" is not in the enum [${p.enum.map(String).join(" ")}]`)
    }
  }

  // ------------------------------------------------------------------ steps

  private lintSteps(t: Obj, path: string, base: RefCtx, all: ReadonlyMap<string, CallInfo>): void {
    const groups = list(t.steps)
    const names = new Map<string, string>()
    const earlier = new Set<string>()
    groups.forEach((g, i) => {
      const gp = `${path}.steps[${i}]`
      const steps = isRecord(g) && Array.isArray(g.steps) ? g.steps : Array.isArray(g) ? g : undefined
      if (steps === undefined) return
      const groupNames: Array<string> = []
      steps.forEach((s, j) => {
        const sp = `${gp}[${j}]`
        if (!isRecord(s)) return
        const n = str(s.name)
        if (n !== undefined) {
          const prev = names.get(n)
          if (prev !== undefined) this.add(`${sp}.name`, `duplicate step name "${n}" (also ${prev})`)
          else names.set(n, sp)
          groupNames.push(n)
        }
        const ctx: RefCtx = { ...base, steps: { all, visible: new Set(earlier), where: n } }
        this.checkCall(s, sp, ctx, { kind: "steps", name: n ?? "" })
      })
      for (const n of groupNames) earlier.add(n)
    })
  }

  // ------------------------------------------------------------------ DAG

  private lintDag(t: Obj, path: string, base: RefCtx, all: ReadonlyMap<string, CallInfo>): void {
    const dag = t.dag as Obj
    const tasks = list(dag.tasks)
    if (tasks.length === 0) this.add(`${path}.dag.tasks`, "a DAG must have at least one task")
    const byName = new Map<string, { task: Obj; index: number }>()
    tasks.forEach((task, i) => {
      if (!isRecord(task)) return
      const n = str(task.name)
      if (n === undefined) return
      if (byName.has(n)) this.add(`${path}.dag.tasks[${i}].name`, `duplicate task name "${n}"`)
      else byName.set(n, { task, index: i })
    })
    const usingDepends = [...byName.values()].some(({ task }) => present(task.depends))
    const deps = new Map<string, ReadonlyArray<string>>()
    for (const [n, { task, index }] of byName) {
      const tp = `${path}.dag.tasks[${index}]`
      if ((usingDepends || present(task.dependencies)) && /^[0-9]/.test(n)) {
        this.add(`${tp}.name`, `task name "${n}" cannot begin with a digit when using 'depends' or 'dependencies'`)
      }
      if (present(task.depends) && present(task.dependencies)) {
        this.add(tp, "cannot use both 'depends' and 'dependencies' in the same task")
      } else if (usingDepends && present(task.dependencies)) {
        this.add(`${tp}.dependencies`, "cannot use both 'depends' and 'dependencies' in the same DAG template")
      }
      if (usingDepends && present(task.continueOn)) {
        this.add(`${tp}.continueOn`, "cannot use 'continueOn' when using 'depends'; use 'dep-task.Failed'/'dep-task.Errored' instead")
      }
      if (present(task.dependencies)) {
        list(task.dependencies).forEach((d, j) => {
          if (typeof d !== "string") return this.add(`${tp}.dependencies[${j}]`, "a dependency must be a task name")
          if (!byName.has(d)) this.add(`${tp}.dependencies[${j}]`, `unknown task "${d}"`)
          else if (d === n) this.add(`${tp}.dependencies[${j}]`, `task "${n}" depends on itself`)
        })
      }
      const depends = str(task.depends)
      if (depends !== undefined) this.checkDepends(depends, `${tp}.depends`, byName)
      deps.set(n, typeof task.dependencies === "object" || typeof task.depends === "string" ? safeDeps(task) : [])
    }
    this.checkCycles(path, byName, deps)

    if (typeof dag.target === "string" && !dag.target.includes("{{")) {
      for (const tn of dag.target.split(" ").filter((x) => x !== "")) {
        if (!byName.has(tn)) this.add(`${path}.dag.target`, `target "${tn}" is not a task of the DAG`)
      }
    }
    if (dag.target !== undefined) this.scan(dag.target, `${path}.dag.target`, { ...base, tasks: { all, visible: new Set(all.keys()) } })

    for (const [n, { task, index }] of byName) {
      const tp = `${path}.dag.tasks[${index}]`
      const ancestors = ancestry(n, deps)
      const ctx: RefCtx = { ...base, tasks: { all, visible: ancestors, where: n } }
      this.checkCall(task, tp, ctx, { kind: "tasks", name: n })
      // Items-based conditions need a loop on the dependency.
      const depends = str(task.depends) ?? ""
      for (const m of depends.matchAll(/([A-Za-z0-9_][A-Za-z0-9_.-]*)\.(AnySucceeded|AllFailed)\b/g)) {
        const dep = byName.get(m[1])
        if (dep !== undefined && !present(dep.task.withItems) && !present(dep.task.withParam) && !present(dep.task.withSequence)) {
          this.add(`${tp}.depends`, `dependency "${m[1]}" uses an items-based condition (.${m[2]}) but has no withItems, withParam or withSequence`)
        }
      }
    }
  }

  private checkDepends(depends: string, path: string, tasks: ReadonlyMap<string, unknown>): void {
    try {
      evaluateDepends(depends, new Map())
    } catch (e) {
      this.add(path, `invalid depends expression: ${e instanceof Error ? e.message : String(e)}`)
      return
    }
    for (const m of depends.matchAll(/[A-Za-z0-9_][A-Za-z0-9_.-]*/g)) {
      const word = m[0]
      const dot = word.lastIndexOf(".")
      const task = dot > 0 && depSuffixes.includes(word.slice(dot + 1)) ? word.slice(0, dot) : word
      if (!tasks.has(task)) {
        this.add(path, dot > 0 && !tasks.has(word) && tasks.has(word.slice(0, dot))
          ? `unknown result "${word.slice(dot + 1)}" of task "${word.slice(0, dot)}": use one of ${depSuffixes.join(", ")}`
          : `unknown task "${task}"`)
      }
    }
  }

  private checkCycles(path: string, byName: ReadonlyMap<string, { task: Obj; index: number }>, deps: ReadonlyMap<string, ReadonlyArray<string>>): void {
    const done = new Set<string>()
    const reported = new Set<string>()
    const visit = (n: string, stack: Array<string>): void => {
      if (done.has(n)) return
      const at = stack.indexOf(n)
      if (at >= 0) {
        const cycle = [...stack.slice(at), n]
        const key = [...cycle.slice(0, -1)].sort().join(",")
        if (reported.has(key)) return
        reported.add(key)
        const first = byName.get(cycle[0])!
        const fieldName = present(first.task.depends) ? "depends" : "dependencies"
        this.add(`${path}.dag.tasks[${first.index}].${fieldName}`, `dependency cycle detected: ${cycle.join(" -> ")}`)
        return
      }
      stack.push(n)
      for (const d of deps.get(n) ?? []) if (byName.has(d)) visit(d, stack)
      stack.pop()
      done.add(n)
    }
    for (const n of byName.keys()) visit(n, [])
  }

  // ------------------------------------------------------------------ strings, tags and expressions

  /** Walk a value; check every `{{...}}` tag in its strings. */
  private scan(value: unknown, path: string, ctx: RefCtx | undefined): void {
    if (typeof value === "string") return this.checkTags(value, path, ctx)
    if (Array.isArray(value)) return value.forEach((v, i) => this.scan(v, `${path}[${i}]`, ctx))
    if (isRecord(value)) for (const [k, v] of Object.entries(value)) this.scan(v, field(path, k), ctx)
  }

  private checkTags(text: string, path: string, ctx: RefCtx | undefined): void {
    let i = 0
    for (;;) {
      const start = text.indexOf("{{", i)
      if (start < 0) return
      const end = text.indexOf("}}", start + 2)
      if (end < 0) return this.add(path, `unterminated tag: cannot find "}}" after ${JSON.stringify(text.slice(start, start + 40))}`)
      const tag = text.slice(start + 2, end)
      if (tag.startsWith("=")) this.checkExpressionField(tag.slice(1), path, ctx, "{{=...}}")
      else {
        const name = tag.trim()
        if (/^[A-Za-z_][A-Za-z0-9_.\-]*$/.test(name)) this.checkRef(name, path, ctx)
      }
      i = end + 2
    }
  }

  private checkExpressionField(expression: string, path: string, ctx: RefCtx | undefined, what = "expression"): void {
    let refs: Array<string>
    try {
      refs = referencedVariables(parseExpr(expression))
    } catch (e) {
      this.add(path, `invalid ${what} ${JSON.stringify(expression)}: ${e instanceof Error ? e.message : String(e)}`)
      return
    }
    // Only the longest reference of a member chain matters (`a.b.c`, not also `a.b` and `a`).
    const longest = refs.filter((r) => !refs.some((o) => o !== r && o.startsWith(r + ".")))
    for (const r of longest) this.checkRef(r, path, ctx)
  }

  private checkWhen(when: string, path: string, ctx: RefCtx): void {
    this.checkTags(when, path, ctx)
    // Tags are substituted before govaluate sees the text; a word stands in for each.
    const replaced = when.replace(/\{\{[\s\S]*?\}\}/g, "placeholder")
    if (replaced.includes("{{")) return
    const error = parseGovaluate(replaced.trim())
    if (error !== undefined) this.add(path, `invalid when expression ${JSON.stringify(when)}: ${error}`)
  }

  private checkRef(name: string, path: string, ctx: RefCtx | undefined): void {
    const seg = name.split(".")
    const root = seg[0]
    if (!checkedRoots.has(root)) return
    switch (root) {
      case "inputs": {
        if (ctx === undefined) return
        if (seg[1] === "parameters" && seg.length >= 3) {
          const p = seg.slice(2).join(".")
          if (!ctx.inputs.has(p)) this.add(path, `{{inputs.parameters.${p}}}: template "${ctx.templateName}" has no input parameter "${p}"`)
        } else if (seg[1] === "artifacts" && seg.length >= 3) {
          if (!ctx.inputArtifacts.has(seg[2])) this.add(path, `{{inputs.artifacts.${seg[2]}}}: template "${ctx.templateName}" has no input artifact "${seg[2]}"`)
        }
        return
      }
      case "steps":
      case "tasks": {
        if (seg.length < 2 || seg[1] === "name") return
        const scope = root === "steps" ? ctx?.steps : ctx?.tasks
        const what = root === "steps" ? "step" : "task"
        if (scope === undefined) {
          this.add(path, `{{${name}}}: "${root}.*" can only be used in a ${root === "steps" ? "steps" : "dag"} template`)
          return
        }
        const target = seg[1]
        const info = scope.all.get(target)
        if (info === undefined) {
          this.add(path, `{{${name}}}: unknown ${what} "${target}"`)
          return
        }
        if (!scope.visible.has(target)) {
          this.add(path, root === "steps"
            ? target === scope.where
              ? `{{${name}}}: step "${target}" cannot reference itself`
              : `{{${name}}}: step "${target}" is not in an earlier step group than "${scope.where ?? ""}"`
            : target === scope.where
            ? `{{${name}}}: task "${target}" cannot reference itself`
            : `{{${name}}}: task "${target}" is not a dependency of "${scope.where ?? ""}" (add it to depends/dependencies)`)
          return
        }
        const callee = info.callee
        if (callee === undefined) return
        if (seg[2] === "outputs" && seg[3] === "parameters" && seg.length >= 5) {
          const p = seg.slice(4).join(".")
          const declared = list((isRecord(callee.outputs) ? callee.outputs : {}).parameters).some((o) => isRecord(o) && o.name === p)
          if (!declared) this.add(path, `{{${name}}}: template "${String(callee.name ?? "(inline)")}" has no output parameter "${p}"`)
        } else if (seg[2] === "outputs" && seg[3] === "result" && seg.length === 4) {
          const k = kindOf(callee)
          if (k !== undefined && noResultKinds.has(k) && !info.loop) {
            this.add(path, `{{${name}}}: template "${String(callee.name ?? "(inline)")}" is a ${k} template and has no outputs.result`)
          }
        }
        return
      }
      case "item": {
        if (ctx === undefined) return
        if (ctx.item === undefined) {
          this.add(path, `{{${name}}}: "item" is only defined in a step or task with withItems, withParam or withSequence`)
          return
        }
        if (ctx.item !== "any" && seg.length >= 2 && !ctx.item.has(seg[1])) {
          this.add(path, `{{${name}}}: no item of withItems has the key "${seg[1]}"`)
        }
        return
      }
      case "workflow": {
        if (seg[1] === "parameters" && seg.length >= 3 && !(seg.length === 3 && seg[2] === "json")) {
          const p = seg.slice(2).join(".")
          if (!this.workflowParams.has(p)) this.add(path, `{{${name}}}: "${p}" is not a parameter in spec.arguments.parameters`)
        } else if (seg[1] === "outputs" && seg[2] === "parameters" && seg.length >= 4 && !this.anyGlobalOutput) {
          const p = seg.slice(3).join(".")
          if (!this.globalOutputs.has(p)) this.add(path, `{{${name}}}: no output parameter has globalName "${p}"`)
        }
        return
      }
      case "retries":
      case "lastRetry": {
        if (ctx === undefined) return
        if (!present(ctx.template.retryStrategy)) this.add(path, `{{${name}}}: "${root}" is only defined in a template with a retryStrategy`)
        return
      }
    }
  }
}

interface CallAt {
  readonly call: Obj
}

const callsOf = (t: Obj, kind: string): ReadonlyArray<CallAt> => {
  if (kind === "steps") {
    return list(t.steps).flatMap((g) => {
      const steps = isRecord(g) && Array.isArray(g.steps) ? g.steps : Array.isArray(g) ? g : []
      return steps.filter(isRecord).map((call) => ({ call }))
    })
  }
  const dag = t.dag
  return isRecord(dag) ? list(dag.tasks).filter(isRecord).map((call) => ({ call })) : []
}

const itemScope = (call: Obj): RefCtx["item"] => {
  if (present(call.withParam) || present(call.withSequence)) return "any"
  if (!Array.isArray(call.withItems)) return undefined
  const keys = new Set<string>()
  for (const it of call.withItems) {
    if (!isRecord(it)) return "any"
    for (const k of Object.keys(it)) keys.add(k)
  }
  return keys
}

const withVisible = (ctx: RefCtx, kind: "steps" | "tasks", name: string | undefined): RefCtx => {
  const scope = kind === "steps" ? ctx.steps : ctx.tasks
  if (scope === undefined || name === undefined) return ctx
  const visible = new Set(scope.visible)
  visible.add(name)
  return { ...ctx, [kind]: { ...scope, visible } }
}

const safeDeps = (task: Obj): ReadonlyArray<string> => {
  try {
    return taskDependencies(task as unknown as DagTask).filter((d) => typeof d === "string")
  } catch {
    return []
  }
}

/** Every task `name` transitively depends on. */
const ancestry = (name: string, deps: ReadonlyMap<string, ReadonlyArray<string>>): Set<string> => {
  const out = new Set<string>()
  const stack = [...(deps.get(name) ?? [])]
  while (stack.length > 0) {
    const d = stack.pop()!
    if (out.has(d)) continue
    out.add(d)
    stack.push(...(deps.get(d) ?? []))
  }
  return out
}


/** Lint a Workflow object: every issue found, each with the path of its field. */
export const lintWorkflow = (obj: KubeObject): ReadonlyArray<LintIssue> => {
  const linter = new Linter()
  linter.run(obj)
  return linter.issues
}
