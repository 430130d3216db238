/**
 * One template: its type-specific fields (image, activeDeadlineSeconds,
 * parallelism, timeout, retryStrategy), its input and output parameters, its
 * placement (`cluster:`, `namespace:`), the references in all its fields, and
 * then its steps or DAG. Inline templates of steps and tasks come back here.
 */
import { isRecord } from "../../util/records.js"
import { clusterProblem, namespaceProblem } from "../engine/targeting.js"
import { field, kindOf, leafKinds, type LintContext, list, type Obj, paramNamePattern, present, type RefCtx, str } from "./context.js"
import { checkTemplateArtifacts } from "./artifacts.js"
import { dagScope, stepsScope } from "./calls.js"
import { lintDag } from "./dag.js"
import { checkEnum } from "./parameters.js"
import { checkExpressionField, scan } from "./references.js"
import { lintSteps } from "./steps.js"

export const lintTemplate = (cx: LintContext, t: Obj, path: string, extraInputs: ReadonlySet<string> = new Set()): void => {
  const name = str(t.name) ?? "(inline)"
  const kind = kindOf(t)
  const leaf = kind !== undefined && leafKinds.has(kind)
  checkPlacement(cx, t, path)

  const inputs = isRecord(t.inputs) ? t.inputs : {}
  const inputNames = new Set(extraInputs)
  list(inputs.parameters).forEach((p, i) => {
    const pp = `${path}.inputs.parameters[${i}]`
    if (!isRecord(p)) return
    const n = str(p.name)
    if (n === undefined || n === "") return
    if (!paramNamePattern.test(n)) cx.add(`${pp}.name`, `parameter name "${n}" is invalid: it must consist of alpha-numeric characters, '_' or '-'`)
    if (inputNames.has(n) && !extraInputs.has(n)) cx.add(`${pp}.name`, `duplicate parameter "${n}"`)
    inputNames.add(n)
    checkEnum(cx, p, pp, p.value ?? p.default)
  })
  const inputArtifacts = new Set<string>()
  for (const a of list(inputs.artifacts)) if (isRecord(a) && typeof a.name === "string") inputArtifacts.add(a.name)
  checkTemplateArtifacts(cx, t, path, kind)

  if (kind === "container" || kind === "script") {
    // A missing image is the Schema's (or, with templateDefaults, the decoder's); an empty one is caught here.
    const c = t[kind]
    const fromDefaults = isRecord(cx.defaults) && isRecord(cx.defaults[kind]) && str(cx.defaults[kind].image) !== undefined
    if (isRecord(c) && str(c.image) === "" && !fromDefaults) cx.add(`${path}.${kind}.image`, "an image is required")
  }
  if (!leaf && kind !== undefined && present(t.activeDeadlineSeconds)) {
    cx.add(`${path}.activeDeadlineSeconds`, "activeDeadlineSeconds is only valid for leaf templates")
  }
  if (leaf && present(t.parallelism)) cx.add(`${path}.parallelism`, "parallelism is only valid for steps and dag templates")
  if (present(t.timeout)) {
    if (!leaf && kind !== undefined) cx.add(`${path}.timeout`, `${kind} templates do not support timeout`)
    else if (/^\s*\d+\s*$/.test(String(t.timeout))) cx.add(`${path}.timeout`, `invalid duration "${String(t.timeout)}": a unit is required (e.g. "30s")`)
  }

  const base: RefCtx = { template: t, templateName: name, inputs: inputNames, inputArtifacts }
  const rs = t.retryStrategy
  if (isRecord(rs)) {
    if (present(rs.limit) && !/^\s*\d+\s*$/.test(String(rs.limit)) && !String(rs.limit).includes("{{")) {
      cx.add(`${path}.retryStrategy.limit`, `limit "${String(rs.limit)}" is not a non-negative integer`)
    }
    const e = str(rs.expression)
    if (e !== undefined && e !== "") checkExpressionField(cx, e, `${path}.retryStrategy.expression`, base)
  }

  // Outputs: value or valueFrom, of the kind the template type allows.
  const outputs = isRecord(t.outputs) ? t.outputs : {}
  const outNames = new Set<string>()
  list(outputs.parameters).forEach((p, i) => {
    const pp = `${path}.outputs.parameters[${i}]`
    if (!isRecord(p)) return
    const n = str(p.name) ?? ""
    outNames.add(n)
    if (present(p.value) && present(p.valueFrom)) cx.add(pp, `output parameter "${n}" has both value and valueFrom`)
    else if (!present(p.value) && !present(p.valueFrom)) cx.add(pp, `output parameter "${n}" has neither value nor valueFrom`)
    const vf = p.valueFrom
    if (isRecord(vf)) {
      const sources = ["path", "jqFilter", "jsonPath", "parameter", "expression", "supplied", "configMapKeyRef", "event"].filter((k) => present(vf[k]))
      if (sources.length === 0) cx.add(`${pp}.valueFrom`, `output parameter "${n}": valueFrom needs one of path, jqFilter, jsonPath, parameter, expression`)
      if ((kind === "steps" || kind === "dag") && !present(vf.parameter) && !present(vf.expression)) {
        cx.add(`${pp}.valueFrom`, `output parameter "${n}" of a ${kind} template needs valueFrom.parameter or valueFrom.expression`)
      }
      if ((kind === "container" || kind === "script") && present(vf.parameter)) {
        cx.add(`${pp}.valueFrom.parameter`, `output parameter "${n}" of a ${kind} template needs valueFrom.path`)
      }
    }
  })

  // References everywhere but in the steps/tasks (handled with their own scope).
  const stepsCtx = kind === "steps" ? stepsScope(cx, t) : undefined
  const tasksCtx = kind === "dag" ? dagScope(cx, t) : undefined
  const whole: RefCtx = {
    ...base,
    ...(stepsCtx ? { steps: { all: stepsCtx, visible: new Set(stepsCtx.keys()) } } : {}),
    ...(tasksCtx ? { tasks: { all: tasksCtx, visible: new Set(tasksCtx.keys()) } } : {})
  }
  for (const [k, v] of Object.entries(t)) {
    if (k === "name" || k === "steps" || k === "dag" || k === "retryStrategy") continue
    if (k === "outputs" && isRecord(v)) {
      scanOutputs(cx, v, `${path}.outputs`, whole)
      continue
    }
    scan(cx, v, field(path, k), whole)
  }
  if (isRecord(rs)) {
    for (const [k, v] of Object.entries(rs)) if (k !== "expression") scan(cx, v, `${path}.retryStrategy.${k}`, whole)
  }

  if (kind === "steps") lintSteps(cx, t, path, base, stepsCtx!)
  if (kind === "dag") lintDag(cx, t, path, base, tasksCtx!)
}

/**
 * flotilla's `cluster:` (an argo-kubeconfig context, written in labels: a
 * label value) and `namespace:` (an RFC 1123 label), as the engine checks
 * them before creating a pod. Values that are not strings are the decoder's
 * to report; values with `{{...}}` are known only after substitution.
 */
export const checkPlacement = (cx: LintContext, t: Obj, path: string): void => {
  for (const [key, problemOf] of [["cluster", clusterProblem], ["namespace", namespaceProblem]] as const) {
    const value = str(t[key])
    if (value === undefined || value === "" || value.includes("{{")) continue
    const problem = problemOf(value)
    if (problem !== undefined) cx.add(`${path}.${key}`, `invalid ${key} ${JSON.stringify(value)}: ${problem}`)
  }
}

export const scanOutputs = (cx: LintContext, outputs: Obj, path: string, ctx: RefCtx): void => {
  for (const [k, v] of Object.entries(outputs)) {
    if (k !== "parameters") {
      scan(cx, v, field(path, k), ctx)
      continue
    }
    list(v).forEach((p, i) => {
      const pp = `${path}.parameters[${i}]`
      if (!isRecord(p)) return
      for (const [pk, pv] of Object.entries(p)) {
        if (pk === "valueFrom" && isRecord(pv)) {
          for (const [vk, vv] of Object.entries(pv)) {
            if (vk === "expression" && typeof vv === "string") checkExpressionField(cx, vv, `${pp}.valueFrom.expression`, ctx)
            else scan(cx, vv, `${pp}.valueFrom.${vk}`, ctx)
          }
        } else scan(cx, pv, field(pp, pk), ctx)
      }
    })
  }
}

