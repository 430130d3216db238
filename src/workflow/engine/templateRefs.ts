/**
 * Where a template call finds its template: the workflow's own templates, or
 * those of a WorkflowTemplate / ClusterWorkflowTemplate (`templateRef`), whose
 * own calls by name then resolve inside that template object (its "template
 * base"). Templates found in a (Cluster)WorkflowTemplate are stored in the
 * workflow's `status.storedTemplates` (keys `namespaced/<wftmpl>/<template>`,
 * `cluster/<cwftmpl>/<template>`) and read from there from then on, so that a
 * change of the template object does not reach a running workflow. Upstream's
 * `templateresolution.TemplateContext` (workflow/templateresolution/context.go)
 * and `Workflow.GetStoredTemplate` / `SetStoredTemplate` (workflow_types.go).
 *
 * Pure: the template objects come in as `EngineInput.templates`.
 */
import { isRecord } from "../../util/records.js"
import { cachedByContent } from "../model/contentCache.js"
import { checkAgainst } from "../model/schema/issues.js"
import { NamedTemplate, type TemplateRef } from "../model/schema/template.js"
import { decodeTemplateHolderSpec } from "../model/schema/workflowTemplate.js"
import type { Template, TemplateCall, Workflow } from "../model/Workflow.js"
import type { TemplateLookup } from "./contract.js"

/** Upstream's `ResourceScope`: where a template base lives. */
export type ResourceScope = "local" | "namespaced" | "cluster"

/** The object whose templates a call by name resolves in: the workflow itself, or a (Cluster)WorkflowTemplate. */
export interface TemplateBase {
  readonly scope: ResourceScope
  /** The (Cluster)WorkflowTemplate's name; "" for the workflow. */
  readonly name: string
}

export const localBase: TemplateBase = { scope: "local", name: "" }

export const baseOfRef = (ref: TemplateRef): TemplateBase => ({ scope: ref.clusterScope === true ? "cluster" : "namespaced", name: ref.name })

/** A node's `templateScope` (upstream's `GetTemplateScope`; flotilla writes the workflow's own as `local/`). */
export const scopeOf = (base: TemplateBase): string => base.scope === "local" ? "local/" : `${base.scope}/${base.name}`

/** The base a node's `templateScope` names. */
export const baseOfScope = (scope: string | undefined): TemplateBase => {
  const m = /^(namespaced|cluster)\/(.+)$/.exec(scope ?? "")
  return m === null ? localBase : { scope: m[1] as ResourceScope, name: m[2] }
}

/** The key of `status.storedTemplates` (upstream's `resolveTemplateReference`). */
export const storedKey = (base: TemplateBase, template: string): string => `${base.scope}/${base.name}/${template}`

/** A call's `templateRef`, if it has one. */
export const templateRefOf = (call: TemplateCall | undefined): TemplateRef | undefined =>
  call?.templateRef !== undefined && call.templateRef !== null ? call.templateRef : undefined

export type Resolved =
  | { readonly ok: true; readonly template: Template; readonly base: TemplateBase; readonly fetched: boolean }
  | { readonly ok: false; readonly error: string; readonly notFound: boolean }

const checkTemplate = checkAgainst(NamedTemplate)

/** Stored templates decoded once per content: the status is a fresh object at every reconcile, its stored templates seldom change. */
const decodeStored = cachedByContent((value: unknown): Template | undefined => {
  const checked = checkTemplate(value)
  return checked.ok ? checked.value : undefined
}, 2048)

/** Upstream's `addPodMetadata`: the template object's `spec.podMetadata` under the template's own metadata. */
const withPodMetadata = (t: Template, podMetadata: Template["metadata"]): Template => {
  if (podMetadata === undefined || podMetadata === null) return t
  const labels = { ...podMetadata.labels, ...t.metadata?.labels }
  const annotations = { ...podMetadata.annotations, ...t.metadata?.annotations }
  const metadata = {
    ...t.metadata,
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    ...(Object.keys(annotations).length > 0 ? { annotations } : {})
  }
  return { ...t, metadata }
}

/**
 * Finds templates for one workflow without storing anything: in the workflow's
 * own templates, in its stored templates, or in the (Cluster)WorkflowTemplates
 * of the lookup (the WorkflowTemplates of the workflow's namespace only).
 */
export class TemplateResolver {
  private readonly local: ReadonlyMap<string, Template>
  private readonly stored: Readonly<Record<string, unknown>>

  constructor(readonly wf: Pick<Workflow, "metadata" | "spec" | "status">, readonly lookup: TemplateLookup | undefined) {
    this.local = new Map(wf.spec.templates.map((t) => [t.name, t] as const))
    const st = wf.status?.storedTemplates
    this.stored = isRecord(st) ? st : {}
  }

  /**
   * Template `name` of `base`; `byRef` when a `templateRef` names it (the
   * messages differ, as upstream's `GetTemplateFromRef` / `GetTemplateByName`).
   */
  find(base: TemplateBase, name: string, byRef: boolean): Resolved {
    if (base.scope === "local") {
      const t = this.local.get(name)
      return t === undefined ? { ok: false, error: `template ${name} not found`, notFound: true } : { ok: true, template: t, base, fetched: false }
    }
    const key = storedKey(base, name)
    if (key in this.stored) {
      const t = decodeStored(this.stored[key])
      if (t !== undefined) return { ok: true, template: t, base, fetched: false }
    }
    const holder = base.scope === "cluster"
      ? this.lookup?.clusterWorkflowTemplates.get(base.name)
      : this.lookup?.workflowTemplates.get(`${this.wf.metadata.namespace}/${base.name}`)
    const kind = base.scope === "cluster" ? "cluster workflow template" : "workflow template"
    if (holder === undefined) return { ok: false, error: `${kind} ${base.name} not found`, notFound: true }
    const decoded = decodeTemplateHolderSpec(holder)
    if (!decoded.ok) return { ok: false, error: `${kind} ${base.name} is invalid: ${decoded.error}`, notFound: false }
    const t = decoded.spec.templates.find((x) => x.name === name)
    if (t === undefined) {
      return { ok: false, error: byRef ? `template ${name} not found in ${kind} ${base.name}` : `template ${name} not found`, notFound: true }
    }
    return { ok: true, template: withPodMetadata(t, decoded.spec.podMetadata), base, fetched: true }
  }

  /** What a call runs: its `templateRef` (in that template object) or its template by name in `base`. */
  findCall(base: TemplateBase, call: { readonly template?: string | undefined; readonly templateRef?: TemplateRef | undefined }): Resolved {
    if (call.templateRef !== undefined) return this.find(baseOfRef(call.templateRef), call.templateRef.template, true)
    return this.find(base, call.template ?? "", false)
  }
}

/** The calls of a template: steps, DAG tasks, their exit handlers and hooks. */
export const callsOf = (t: Template): ReadonlyArray<{ readonly template?: string; readonly templateRef?: TemplateRef }> => {
  const out: Array<{ readonly template?: string; readonly templateRef?: TemplateRef }> = []
  const add = (c: TemplateCall) => {
    if (c.template !== undefined || templateRefOf(c) !== undefined) out.push({ template: c.template, templateRef: templateRefOf(c) })
    if (c.onExit !== undefined) out.push({ template: c.onExit })
    for (const h of Object.values(c.hooks ?? {})) {
      if (h.template !== undefined) out.push({ template: h.template })
      else if (isRecord(h.templateRef)) out.push({ templateRef: h.templateRef as TemplateRef })
    }
  }
  for (const group of t.steps ?? []) for (const s of group) add(s)
  for (const task of t.dag?.tasks ?? []) add(task)
  return out
}

/**
 * Upstream's validation of the references before the first operation
 * (`validateTemplateHolder`): every `templateRef` reachable from the
 * workflow's templates, and the calls by name inside the templates they
 * reach, must resolve. A reference that still holds a `{{...}}` is resolved
 * only when it runs. Returns the workflow's message, or undefined.
 */
export const referenceError = (resolver: TemplateResolver): string | undefined => {
  const seen = new Set<string>()
  const visit = (base: TemplateBase, t: Template): string | undefined => {
    for (const call of callsOf(t)) {
      const ref = call.templateRef
      if (ref !== undefined && (ref.name.includes("{{") || ref.template.includes("{{"))) continue
      if (ref === undefined && (base.scope === "local" || (call.template ?? "").includes("{{"))) continue
      const target = ref !== undefined ? baseOfRef(ref) : base
      const name = ref !== undefined ? ref.template : call.template ?? ""
      const key = storedKey(target, name)
      if (seen.has(key)) continue
      seen.add(key)
      const found = resolver.find(target, name, ref !== undefined)
      if (!found.ok) {
        if (!found.notFound) return `invalid spec: ${found.error}`
        return ref !== undefined
          ? `invalid spec: template reference ${ref.name}.${ref.template} not found`
          : `invalid spec: template name '${name}' undefined`
      }
      const e = visit(target, found.template)
      if (e !== undefined) return e
    }
    return undefined
  }
  for (const t of resolver.wf.spec.templates) {
    const e = visit(localBase, t)
    if (e !== undefined) return e
  }
  return undefined
}

/** A (Cluster)WorkflowTemplate a spec names, by `templateRef` or `workflowTemplateRef`. */
export interface HolderRef {
  readonly clusterScope: boolean
  readonly name: string
}

const holderRefsCache = new WeakMap<object, ReadonlyArray<HolderRef>>()

/**
 * Every (Cluster)WorkflowTemplate named anywhere in `spec` (a workflow's or a
 * template object's, as stored): what the controller looks up for the engine,
 * following the templates it finds to the ones they name. Kept per object, so
 * a spec that has not changed is walked once.
 */
export const holderRefsIn = (spec: unknown): ReadonlyArray<HolderRef> => {
  if (typeof spec !== "object" || spec === null) return []
  const cached = holderRefsCache.get(spec)
  if (cached !== undefined) return cached
  const found = new Map<string, HolderRef>()
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x)
      return
    }
    if (!isRecord(v)) return
    for (const [k, x] of Object.entries(v)) {
      if ((k === "templateRef" || k === "workflowTemplateRef") && isRecord(x) && typeof x.name === "string" && x.name !== "") {
        const ref = { clusterScope: x.clusterScope === true, name: x.name }
        found.set(`${ref.clusterScope}/${ref.name}`, ref)
      } else if (typeof x === "object" && x !== null) walk(x)
    }
  }
  walk(spec)
  const refs = [...found.values()]
  holderRefsCache.set(spec, refs)
  return refs
}

/** A reference that does not resolve, by the path of the field that makes it (for lint). */
export interface ReferenceProblem {
  readonly path: string
  readonly message: string
}

/**
 * The `templateRef`s of a workflow's own steps and tasks (as stored, not
 * decoded) that name no template of the given template objects, each at its
 * field's path, then what `referenceError` finds further in. What `flotilla
 * lint` reports; the engine fails such a workflow on its first operation.
 */
export const referenceProblems = (
  workflow: Pick<Workflow, "metadata" | "spec" | "status">,
  rawSpec: unknown,
  lookup: TemplateLookup | undefined
): ReadonlyArray<ReferenceProblem> => {
  const resolver = new TemplateResolver(workflow, lookup)
  const problems: Array<ReferenceProblem> = []
  const check = (path: string, call: unknown) => {
    if (!isRecord(call) || !isRecord(call.templateRef)) return
    const { name, template, clusterScope } = call.templateRef
    if (typeof name !== "string" || typeof template !== "string" || name.includes("{{") || template.includes("{{")) return
    const found = resolver.find(baseOfRef({ name, template, clusterScope: clusterScope === true }), template, true)
    if (!found.ok) {
      problems.push({
        path: `${path}.templateRef`,
        message: found.notFound ? `template reference ${name}.${template} not found: ${found.error}` : found.error
      })
    }
  }
  const templates = isRecord(rawSpec) && Array.isArray(rawSpec.templates) ? rawSpec.templates : []
  templates.forEach((t, i) => {
    if (!isRecord(t)) return
    const p = `spec.templates[${i}]`
    if (Array.isArray(t.steps)) {
      t.steps.forEach((g, j) => {
        const steps = Array.isArray(g) ? g : isRecord(g) && Array.isArray(g.steps) ? g.steps : []
        steps.forEach((s, k) => check(`${p}.steps[${j}][${k}]`, s))
      })
    }
    if (isRecord(t.dag) && Array.isArray(t.dag.tasks)) t.dag.tasks.forEach((task, j) => check(`${p}.dag.tasks[${j}]`, task))
  })
  if (problems.length > 0) return problems
  const deeper = referenceError(resolver)
  return deeper === undefined ? [] : [{ path: "spec", message: deeper.replace(/^invalid spec: /, "") }]
}
