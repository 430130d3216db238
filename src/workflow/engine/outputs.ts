/**
 * Outputs of nodes and what later steps and tasks see of them: the
 * `steps.<name>.*` / `tasks.<name>.*` scope entries of a node (and the
 * aggregated outputs of a loop), a Steps/DAG template's own outputs with
 * their `globalName` exports, and whether a pod must report its stdout as
 * `outputs.result`. Upstream's `buildLocalScope`/`addOutputsToLocalScope`,
 * `processAggregateNodeOutputs`, `getTemplateOutputsFromScope` and
 * `includeScriptOutput`/`hasOutputResultRef` (workflow/controller/operator.go,
 * steps.go).
 */
import type { NodeOutputs, Parameter, Template } from "../model/Workflow.js"
import { addArtifactsToScope, exportGlobalArtifacts, templateOutputArtifacts } from "./artifacts.js"
import { loopIndexOf } from "./loops.js"
import { type ExecOpts, type Failure, getOrCreate, isFailure, type Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { evaluate, type Scope, substitute } from "./scope.js"

const resultReferencesOf = new WeakMap<Template, ReadonlySet<string>>()

/**
 * The step or task names whose result a steps/DAG template mentions, as
 * upstream's `hasOutputResultRef` finds them in the template's JSON:
 * `<prefix>.<name>.outputs.result` or `<prefix>['<name>'].outputs.result`,
 * `<prefix>` being `steps` or `tasks` after the template's kind. Found once per
 * template object (upstream serialises the parent once per child, which is
 * quadratic in a large DAG).
 */
const resultReferences = (parent: Template): ReadonlySet<string> => {
  const known = resultReferencesOf.get(parent)
  if (known !== undefined) return known
  const prefix = parent.dag !== undefined ? "tasks" : parent.steps !== undefined ? "steps" : ""
  const text = JSON.stringify(parent)
  const names = new Set<string>()
  // A name has no dot (`getStepOrDAGTaskName` keeps what follows the last one): the text
  // between the dot before `.outputs.result` and it, when `<prefix>` precedes that dot.
  const suffix = ".outputs.result"
  for (let i = text.indexOf(suffix); i >= 0; i = text.indexOf(suffix, i + 1)) {
    const dot = text.lastIndexOf(".", i - 1)
    if (dot >= prefix.length && text.slice(dot - prefix.length, dot) === prefix) names.add(text.slice(dot + 1, i))
  }
  for (const m of text.matchAll(new RegExp(`${prefix}\\[['"]([^'"]*)['"]\\]\\.outputs.result`, "g"))) names.add(m[1])
  resultReferencesOf.set(parent, names)
  return names
}

const parseJsonOr = (s: string): unknown => {
  try {
    return JSON.parse(s)
  } catch {
    return s
  }
}

/**
 * `getStepOrDAGTaskName`: the step or task a node stands for, without the
 * trailing loop/retry/step-group suffixes (`(0:1)`, `(0)`, `[0]`) and the
 * parent's name: `wf[1].fanout(0:1)(0)` -> `fanout`.
 */
export const stepOrTaskName = (nodeName: string): string => {
  let end = nodeName.length
  let opener = ""
  for (let i = nodeName.length - 1; i >= 0; i--) {
    const c = nodeName[i]
    if (opener !== "") {
      if (c === opener) opener = ""
      continue
    }
    if (c === ")") opener = "("
    else if (c === "]") opener = "["
    else {
      end = i + 1
      break
    }
  }
  const base = nodeName.slice(0, end)
  const dot = base.lastIndexOf(".")
  return dot >= 0 ? base.slice(dot + 1) : base
}

/**
 * `woc.includeScriptOutput`: stdout becomes `outputs.result` only when the
 * template of the enclosing boundary (the steps/DAG that called this node)
 * references `steps.<name>.outputs.result` / `tasks.<name>.outputs.result`
 * (or the `['<name>']` form) — for script and container templates alike. A
 * node with no boundary (the entrypoint itself) never includes it.
 */
export const includeScriptOutput = (op: OperationState, nodeName: string, opts: ExecOpts): boolean => {
  if (opts.boundaryId === undefined || opts.parentTemplate === undefined) return false
  return resultReferences(opts.parentTemplate).has(stepOrTaskName(nodeName))
}

/** The `<prefix>.<name>.*` entries of a completed step or task (id, status, times, IP, exit code, outputs). */
export const addNodeToScope = (op: OperationState, scope: Map<string, unknown>, prefix: "steps" | "tasks", name: string, node: Node): void => {
  const k = `${prefix}.${name}`
  scope.set(`${k}.id`, node.id)
  scope.set(`${k}.status`, node.phase)
  scope.set(`${k}.startedAt`, node.startedAt ?? "")
  scope.set(`${k}.finishedAt`, node.finishedAt ?? "")
  if (node.hostNodeName !== undefined) scope.set(`${k}.hostNodeName`, node.hostNodeName)
  if (node.podIP !== undefined) scope.set(`${k}.ip`, node.podIP)
  const outs = node.outputs
  if (outs?.exitCode !== undefined) scope.set(`${k}.exitCode`, outs.exitCode)
  if (outs?.result !== undefined) scope.set(`${k}.outputs.result`, outs.result)
  for (const p of outs?.parameters ?? []) {
    if (p.value !== undefined) scope.set(`${k}.outputs.parameters.${p.name}`, p.value)
  }
  addArtifactsToScope(scope, k, node)
  if (node.phase === "Skipped" || node.phase === "Omitted") {
    // A skipped producer's declared output defaults stand in for its outputs (found by templateRef too).
    for (const p of op.templateOfNode(node)?.outputs?.parameters ?? []) {
      const key = `${k}.outputs.parameters.${p.name}`
      // Without a default the output is an absent optional (nil), so `??` can pick a fallback.
      if (!scope.has(key)) scope.set(key, p.valueFrom?.default !== undefined ? String(p.valueFrom.default) : null)
    }
  }
}

/** A loop's aggregated `<prefix>.<name>.outputs.result` / `.outputs.parameters` (`processAggregateNodeOutputs`). */
export const addAggregateToScope = (op: OperationState, scope: Map<string, unknown>, prefix: "steps" | "tasks", name: string, children: ReadonlyArray<Node>): void => {
  op.spend(children.length)
  const sorted = children
    .filter((n) => n.nodeFlag?.hooked !== true && n.nodeFlag?.retried !== true)
    .map((n) => ({ n, index: loopIndexOf(n.name) }))
    .sort((a, b) => a.index - b.index)
    .map(({ n }) => n)
  const params: Array<Record<string, string>> = []
  const byName = new Map<string, Array<string>>()
  const results: Array<unknown> = []
  for (const n of sorted) {
    if (n.outputs === undefined || n.phase !== "Succeeded") continue
    if ((n.outputs.parameters ?? []).length > 0) {
      const m: Record<string, string> = {}
      for (const p of n.outputs.parameters ?? []) {
        m[p.name] = p.value ?? ""
        getOrCreate(byName, p.name, () => []).push(p.value ?? "")
      }
      params.push(m)
    }
    if (n.outputs.result !== undefined) results.push(parseJsonOr(n.outputs.result))
  }
  const k = `${prefix}.${name}`
  scope.set(`${k}.outputs.result`, JSON.stringify(results))
  scope.set(`${k}.outputs.parameters`, JSON.stringify(params))
  for (const [p, values] of byName) {
    const parsed = values.map((v) => parseJsonOr(v))
    const structured = parsed.every((v) => typeof v === "object" && v !== null)
    scope.set(`${k}.outputs.parameters.${p}`, JSON.stringify(structured ? parsed : values))
  }
}

/** A Steps/DAG template's `outputs.parameters`, resolved against the scope of its children (`getTemplateOutputsFromScope`). */
const templateOutputs = (op: OperationState, tmpl: Template, scope: Scope): NodeOutputs | Failure | undefined => {
  const params = tmpl.outputs?.parameters ?? []
  const artifacts = templateOutputArtifacts(op, tmpl, scope)
  if (isFailure(artifacts)) return artifacts
  if (params.length === 0) return artifacts === undefined ? undefined : { artifacts }
  const out: Array<Parameter> = []
  for (const p of params) {
    const vf = p.valueFrom
    let value: string | undefined
    if (vf?.parameter !== undefined) {
      const r = substitute(vf.parameter, scope, false, op.limits.expression)
      if (r.ok) value = r.value
      else if (vf.default === undefined) return { error: r.error.message }
    } else if (vf?.expression !== undefined) {
      const r = evaluate(vf.expression, scope, op.limits.expression)
      if (r.ok && r.value !== undefined && r.value !== null) value = typeof r.value === "string" ? r.value : JSON.stringify(r.value)
      else if (vf.default === undefined) return { error: r.ok ? `expression '${vf.expression}' evaluated to nil` : r.error.message }
    } else if (p.value !== undefined) {
      const r = substitute(String(p.value), scope, true, op.limits.expression)
      value = r.ok ? r.value : String(p.value)
    }
    if (value === undefined) value = vf?.default
    out.push({ name: p.name, ...(value !== undefined ? { value } : {}), ...(p.globalName ? { globalName: p.globalName } : {}) })
  }
  return { parameters: out, ...(artifacts !== undefined ? { artifacts } : {}) }
}

/** A Steps/DAG node whose children all succeeded: Succeeded with the template's outputs, or Error when they cannot be resolved. */
export const succeedWithOutputs = (op: OperationState, node: Node, tmpl: Template, scope: Scope): Node => {
  const outputs = templateOutputs(op, tmpl, scope)
  if (isFailure(outputs)) return op.markPhase(node, "Error", outputs.error)
  if (outputs !== undefined) {
    node.outputs = outputs
    exportGlobals(op, outputs)
    exportGlobalArtifacts(op, outputs.artifacts)
  }
  return op.markPhase(node, "Succeeded")
}

/** Outputs with a `globalName` become `workflow.outputs.parameters.<globalName>` and `status.outputs`. */
const exportGlobals = (op: OperationState, outputs: NodeOutputs | undefined): void => {
  for (const p of outputs?.parameters ?? []) {
    if (p.globalName === undefined || p.value === undefined) continue
    op.globals.set(`workflow.outputs.parameters.${p.globalName}`, p.value)
    const i = op.globalOutputs.findIndex((g) => g.name === p.globalName)
    const entry = { name: p.globalName, value: p.value }
    if (i >= 0) op.globalOutputs[i] = entry
    else op.globalOutputs.push(entry)
  }
}
