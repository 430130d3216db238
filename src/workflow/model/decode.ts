/**
 * Decoding of a stored Workflow object into the engine's model, with errors
 * that name the offending field by its path
 * (`spec.templates[2].steps[0][1].template: unknown template "foo"`).
 *
 * Decoding never throws: a workflow that does not decode ends in phase Error
 * with the message, like Argo's validation failures.
 */
import type { KubeObject } from "../../kube/Resources.js"
import { reservedFieldsOfSpec } from "./reserved.js"
import type { Template, Workflow } from "./Workflow.js"

export type DecodeResult = { readonly ok: true; readonly value: Workflow } | { readonly ok: false; readonly error: string }

class DecodeError {
  constructor(readonly path: string, readonly message: string) {}
}

const fail = (path: string, message: string): never => {
  throw new DecodeError(path, message)
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const expectRecord = (u: unknown, path: string): Record<string, unknown> =>
  isRecord(u) ? u : fail(path, `expected an object, got ${describe(u)}`)

const expectArray = (u: unknown, path: string): ReadonlyArray<unknown> =>
  Array.isArray(u) ? u : fail(path, `expected a list, got ${describe(u)}`)

const expectString = (u: unknown, path: string): string =>
  typeof u === "string" ? u : fail(path, `expected a string, got ${describe(u)}`)

const optional = <A>(o: Record<string, unknown>, key: string, path: string, f: (u: unknown, p: string) => A): A | undefined =>
  o[key] === undefined || o[key] === null ? undefined : f(o[key], `${path}.${key}`)

const describe = (u: unknown): string =>
  u === undefined ? "nothing" : u === null ? "null" : Array.isArray(u) ? "a list" : typeof u === "object" ? "an object" : `${typeof u} ${JSON.stringify(u)}`

const stringish = (u: unknown, path: string): string =>
  typeof u === "string" ? u : typeof u === "number" || typeof u === "boolean" ? String(u) : fail(path, `expected a string, got ${describe(u)}`)

const intOrString = (u: unknown, path: string): string | number =>
  typeof u === "number" || typeof u === "string" ? u : fail(path, `expected an integer or a string, got ${describe(u)}`)

const checkParameters = (u: unknown, path: string, requireValue: boolean): void => {
  const list = expectArray(u, path)
  const seen = new Set<string>()
  list.forEach((p, i) => {
    const pp = `${path}[${i}]`
    const o = expectRecord(p, pp)
    const name = expectString(o.name, `${pp}.name`)
    if (name === "") fail(`${pp}.name`, "must not be empty")
    if (seen.has(name)) fail(`${pp}.name`, `duplicate parameter "${name}"`)
    seen.add(name)
    optional(o, "value", pp, stringish)
    optional(o, "default", pp, stringish)
    optional(o, "enum", pp, (e, ep) => expectArray(e, ep).forEach((x, j) => stringish(x, `${ep}[${j}]`)))
    optional(o, "valueFrom", pp, expectRecord)
    if (requireValue && o.value === undefined && o.valueFrom === undefined) {
      fail(`${pp}.value`, `parameter "${name}" has no value`)
    }
  })
}

const templateKinds = ["container", "script", "steps", "dag", "suspend", "resource", "containerSet", "data", "http", "plugin"] as const

const checkCall = (o: Record<string, unknown>, path: string, names: ReadonlySet<string>): void => {
  expectString(o.name, `${path}.name`)
  const tmpl = optional(o, "template", path, expectString)
  if (tmpl !== undefined && !names.has(tmpl)) fail(`${path}.template`, `unknown template "${tmpl}"`)
  if (tmpl === undefined && o.templateRef === undefined && o.inline === undefined) {
    fail(`${path}.template`, "a template name is required")
  }
  if (o.templateRef !== undefined) fail(`${path}.templateRef`, "templateRef (WorkflowTemplate) is not supported yet")
  const args = optional(o, "arguments", path, expectRecord)
  if (args !== undefined) optional(args, "parameters", `${path}.arguments`, (u, p) => checkParameters(u, p, false))
  optional(o, "when", path, expectString)
  optional(o, "withItems", path, expectArray)
  optional(o, "withParam", path, expectString)
  const seq = optional(o, "withSequence", path, expectRecord)
  if (seq !== undefined) {
    for (const k of ["count", "start", "end"]) optional(seq, k, `${path}.withSequence`, intOrString)
    if (seq.count === undefined && seq.end === undefined) fail(`${path}.withSequence`, "either count or end is required")
  }
  const onExit = optional(o, "onExit", path, expectString)
  if (onExit !== undefined && !names.has(onExit)) fail(`${path}.onExit`, `unknown template "${onExit}"`)
  const hooks = optional(o, "hooks", path, expectRecord)
  if (hooks !== undefined) checkHooks(hooks, `${path}.hooks`, names)
}

const checkHooks = (hooks: Record<string, unknown>, path: string, names: ReadonlySet<string>): void => {
  for (const [k, v] of Object.entries(hooks)) {
    const h = expectRecord(v, `${path}.${k}`)
    const t = optional(h, "template", `${path}.${k}`, expectString)
    if (t !== undefined && !names.has(t)) fail(`${path}.${k}.template`, `unknown template "${t}"`)
  }
}

const checkTemplate = (
  t: Record<string, unknown>,
  path: string,
  names: ReadonlySet<string>,
  defaults?: Record<string, unknown>
): void => {
  const present = templateKinds.filter((k) => t[k] !== undefined && t[k] !== null)
  if (present.length === 0) {
    fail(path, `template "${String(t.name)}" must define one of ${templateKinds.join(", ")}`)
  }
  if (present.length > 1) fail(path, `template "${String(t.name)}" defines more than one of ${present.join(", ")}`)
  const inputs = optional(t, "inputs", path, expectRecord)
  if (inputs !== undefined) optional(inputs, "parameters", `${path}.inputs`, (u, p) => checkParameters(u, p, false))
  const outputs = optional(t, "outputs", path, expectRecord)
  if (outputs !== undefined) optional(outputs, "parameters", `${path}.outputs`, (u, p) => checkParameters(u, p, false))
  for (const k of ["container", "script"] as const) {
    const c = optional(t, k, path, expectRecord)
    if (c !== undefined) {
      // spec.templateDefaults.<kind>.image is merged under the template (as upstream's validator allows).
      const d = defaults?.[k]
      if (!(c.image === undefined && isRecord(d) && typeof d.image === "string")) expectString(c.image, `${path}.${k}.image`)
      optional(c, "command", `${path}.${k}`, (u, p) => expectArray(u, p).forEach((x, i) => expectString(x, `${p}[${i}]`)))
      optional(c, "args", `${path}.${k}`, (u, p) => expectArray(u, p).forEach((x, i) => stringish(x, `${p}[${i}]`)))
      if (k === "script") expectString(c.source, `${path}.script.source`)
    }
  }
  const steps = optional(t, "steps", path, expectArray)
  if (steps !== undefined) {
    steps.forEach((group, i) => {
      const gp = `${path}.steps[${i}]`
      // Argo also accepts `- steps: [...]` (ParallelSteps as an object).
      const list = isRecord(group) && Array.isArray(group.steps) ? group.steps : expectArray(group, gp)
      const seen = new Set<string>()
      list.forEach((s, j) => {
        const sp = `${gp}[${j}]`
        const o = expectRecord(s, sp)
        checkCall(o, sp, names)
        const n = o.name as string
        if (seen.has(n)) fail(`${sp}.name`, `duplicate step name "${n}"`)
        seen.add(n)
      })
    })
  }
  const dag = optional(t, "dag", path, expectRecord)
  if (dag !== undefined) {
    const tasks = expectArray(dag.tasks, `${path}.dag.tasks`)
    const taskNames = new Set<string>()
    tasks.forEach((task, i) => {
      const o = expectRecord(task, `${path}.dag.tasks[${i}]`)
      const n = expectString(o.name, `${path}.dag.tasks[${i}].name`)
      if (taskNames.has(n)) fail(`${path}.dag.tasks[${i}].name`, `duplicate task name "${n}"`)
      taskNames.add(n)
    })
    tasks.forEach((task, i) => {
      const tp = `${path}.dag.tasks[${i}]`
      const o = task as Record<string, unknown>
      checkCall(o, tp, names)
      if (o.dependencies !== undefined && o.depends !== undefined) {
        fail(tp, "cannot use both 'depends' and 'dependencies' in the same DAG template")
      }
      const deps = optional(o, "dependencies", tp, expectArray)
      deps?.forEach((d, j) => {
        const dn = expectString(d, `${tp}.dependencies[${j}]`)
        if (!taskNames.has(dn)) fail(`${tp}.dependencies[${j}]`, `unknown task "${dn}"`)
      })
      const depends = optional(o, "depends", tp, expectString)
      if (depends !== undefined) {
        for (const m of depends.matchAll(/[A-Za-z0-9_][A-Za-z0-9_.-]*/g)) {
          const word = m[0].replace(/\.(Succeeded|Failed|Errored|Skipped|Omitted|Daemoned|AnySucceeded|AllFailed)$/, "")
          if (!taskNames.has(word)) fail(`${tp}.depends`, `unknown task "${word}"`)
        }
      }
    })
    if (typeof dag.target === "string" && !dag.target.includes("{{")) {
      for (const tn of dag.target.split(" ").filter((x) => x !== "")) {
        if (!taskNames.has(tn)) fail(`${path}.dag.target`, `unknown task "${tn}"`)
      }
    }
  }
  const rs = optional(t, "retryStrategy", path, expectRecord)
  if (rs !== undefined) {
    optional(rs, "limit", `${path}.retryStrategy`, intOrString)
    const policy = optional(rs, "retryPolicy", `${path}.retryStrategy`, expectString)
    if (policy !== undefined && !["Always", "OnFailure", "OnError", "OnTransientError"].includes(policy)) {
      fail(`${path}.retryStrategy.retryPolicy`, `"${policy}" is not a valid RetryPolicy`)
    }
  }
  optional(t, "cluster", path, expectString)
  optional(t, "namespace", path, expectString)
}

/** Decode a stored Workflow object. */
export const decodeWorkflow = (obj: KubeObject): DecodeResult => {
  try {
    const meta = expectRecord(obj.metadata, "metadata")
    const name = expectString(meta.name, "metadata.name")
    const namespace = typeof meta.namespace === "string" ? meta.namespace : "default"
    const spec = expectRecord(obj.spec, "spec")
    const templates = expectArray(spec.templates, "spec.templates")
    const names = new Set<string>()
    templates.forEach((t, i) => {
      const o = expectRecord(t, `spec.templates[${i}]`)
      const n = expectString(o.name, `spec.templates[${i}].name`)
      if (names.has(n)) fail(`spec.templates[${i}].name`, `duplicate template name "${n}"`)
      names.add(n)
    })
    const templateDefaults = isRecord(spec.templateDefaults) ? spec.templateDefaults : undefined
    templates.forEach((t, i) => checkTemplate(t as Record<string, unknown>, `spec.templates[${i}]`, names, templateDefaults))
    const entrypoint = optional(spec, "entrypoint", "spec", expectString)
    if (entrypoint === undefined || entrypoint === "") fail("spec.entrypoint", "an entrypoint is required")
    else if (!names.has(entrypoint)) fail("spec.entrypoint", `unknown template "${entrypoint}"`)
    const args = optional(spec, "arguments", "spec", expectRecord)
    if (args !== undefined) optional(args, "parameters", "spec.arguments", (u, p) => checkParameters(u, p, false))
    const onExit = optional(spec, "onExit", "spec", expectString)
    if (onExit !== undefined && !names.has(onExit)) fail("spec.onExit", `unknown template "${onExit}"`)
    const hooks = optional(spec, "hooks", "spec", expectRecord)
    if (hooks !== undefined) checkHooks(hooks, "spec.hooks", names)
    optional(spec, "serviceAccountName", "spec", expectString)
    const podGC = optional(spec, "podGC", "spec", expectRecord)
    if (podGC !== undefined) {
      const s = optional(podGC, "strategy", "spec.podGC", expectString)
      if (s !== undefined && s !== "" && !["OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"].includes(s)) {
        fail("spec.podGC.strategy", `unknown strategy "${s}"`)
      }
    }
    const defaults = optional(spec, "templateDefaults", "spec", expectRecord)
    const reserved = reservedFieldsOfSpec(spec)
    if (reserved.length > 0) fail(reserved[0]!.path, reserved[0]!.message)
    // Steps written as `- steps: [...]` objects are normalised to plain lists.
    const normTemplates = templates.map((t) => normaliseTemplate(t as Template))
    return {
      ok: true,
      value: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        metadata: {
          name,
          namespace,
          uid: typeof meta.uid === "string" ? meta.uid : undefined,
          creationTimestamp: typeof meta.creationTimestamp === "string" ? meta.creationTimestamp : undefined,
          labels: meta.labels as Record<string, string> | undefined,
          annotations: meta.annotations as Record<string, string> | undefined
        },
        spec: { ...(spec as object), templates: normTemplates, templateDefaults: defaults } as Workflow["spec"],
        status: isRecord(obj.status) ? obj.status : undefined,
        raw: obj
      }
    }
  } catch (e) {
    if (e instanceof DecodeError) return { ok: false, error: `${e.path}: ${e.message}` }
    return { ok: false, error: `invalid workflow: ${String(e)}` }
  }
}

const normaliseTemplate = (t: Template): Template => {
  if (t.steps === undefined) return t
  const steps = (t.steps as ReadonlyArray<unknown>).map((g) =>
    isRecord(g) && Array.isArray(g.steps) ? g.steps : g
  ) as Template["steps"]
  return { ...t, steps }
}
