/**
 * Where a template's pod runs. flotilla goes beyond upstream Argo: `cluster:`
 * and `namespace:` on a template choose the target, and when set on a steps
 * or DAG template they are inherited by every template it calls unless that
 * template sets its own (cluster and namespace are inherited separately).
 */
import { validateDnsLabel, validateLabelValue } from "../../kube/api/Validation.js"
import type { TemplateRef } from "../model/schema/template.js"
import { inlineOf, type Template, type Workflow } from "../model/Workflow.js"
import type { TemplateLookup } from "./contract.js"
import { callsOf, localBase, storedKey, type TemplateBase, TemplateResolver } from "./templateRefs.js"

/** The controller's own cluster when the configmap names none (the name upstream's multi-cluster design gives it). */
export const inClusterName = "@in-cluster"

/**
 * The value of the `workflows.argoproj.io/cluster` label for the owner cluster `cluster`:
 * its name, except for `@in-cluster`, whose `@` no label value may hold.
 */
export const clusterLabelValue = (cluster: string): string => (cluster === inClusterName ? "in-cluster" : cluster)

export interface Placement {
  readonly cluster?: string
  readonly namespace?: string
}

export interface Target {
  readonly cluster: string
  readonly namespace: string
}

const nonEmpty = (s: unknown): string | undefined => (typeof s === "string" && s !== "" ? s : undefined)

/** The placement a template passes down to the templates it calls. */
export const inheritPlacement = (template: Template, inherited: Placement | undefined): Placement => ({
  cluster: nonEmpty(template.cluster) ?? inherited?.cluster,
  namespace: nonEmpty(template.namespace) ?? inherited?.namespace
})

/**
 * The target of a template: its own `cluster`/`namespace`, else the inherited
 * ones, else `templateDefaults`, else the local cluster and the workflow's namespace.
 */
export const targetOf = (
  template: Template,
  workflow: Pick<Workflow, "metadata" | "spec">,
  localCluster: string,
  inherited?: Placement
): Target => {
  const defaults = workflow.spec.templateDefaults
  return {
    cluster: nonEmpty(template.cluster) ?? inherited?.cluster ?? nonEmpty(defaults?.cluster) ?? localCluster,
    namespace: nonEmpty(template.namespace) ?? inherited?.namespace ?? nonEmpty(defaults?.namespace) ??
      workflow.metadata.namespace
  }
}

/**
 * Why `value` cannot be a template's `namespace:`, or undefined when it can: it
 * must be a string and a namespace name (an RFC 1123 label), since it goes
 * into the pod's metadata and the API path of the create.
 */
export const namespaceProblem = (value: unknown): string | undefined =>
  typeof value !== "string"
    ? `must be a string, got ${value === null ? "null" : Array.isArray(value) ? "a list" : typeof value}`
    : validateDnsLabel(value)

/**
 * Why `value` cannot be a template's `cluster:`, or undefined when it can: it
 * names a context of argo-kubeconfig and is written in labels and logs, so it
 * must be a non-empty label value (or `@in-cluster`, the controller's own
 * cluster, as the controller configuration allows).
 */
export const clusterProblem = (value: unknown): string | undefined => {
  if (typeof value !== "string") {
    return `must be a string, got ${value === null ? "null" : Array.isArray(value) ? "a list" : typeof value}`
  }
  if (value === inClusterName) return undefined
  if (value === "") return "must not be empty"
  return validateLabelValue(value)
}

/** A target that must not be used: which field, its value and why. */
export interface InvalidTarget {
  readonly _tag: "InvalidTarget"
  readonly field: "cluster" | "namespace"
  readonly value: unknown
  /** Says where the value came from, the value and why it is refused; fit for a node message. */
  readonly message: string
}

export const isInvalidTarget = (target: Target | InvalidTarget): target is InvalidTarget => "_tag" in target

/**
 * {@link targetOf}, with the final cluster and namespace (after substitution,
 * inheritance and `templateDefaults`) checked before anything is created there:
 * an invalid one is returned as an {@link InvalidTarget} naming the field, where
 * it came from and the value. A value set but not a string is invalid rather
 * than ignored. The local cluster (from the controller configuration) and the
 * workflow's own namespace are valid by construction.
 */
export const resolveTarget = (
  template: Template,
  workflow: Pick<Workflow, "metadata" | "spec">,
  localCluster: string,
  inherited?: Placement
): Target | InvalidTarget => {
  const defaults = workflow.spec.templateDefaults
  const pick = (field: "cluster" | "namespace"): { readonly value: string; readonly from: string } | undefined => {
    const fromDefaults = defaults?.[field]
    const own = template[field]
    if (isGiven(own)) {
      // The engine merges templateDefaults under each template, so the same value may have come from there.
      const from = own === fromDefaults ? `template "${template.name}" or spec.templateDefaults` : `template "${template.name}"`
      return { value: own, from }
    }
    if (inherited?.[field] !== undefined) return { value: inherited[field], from: `a steps or DAG template calling "${template.name}"` }
    if (isGiven(fromDefaults)) return { value: fromDefaults, from: "spec.templateDefaults" }
    return undefined
  }
  const invalid = (field: "cluster" | "namespace", picked: { readonly value: string; readonly from: string }, problem: string): InvalidTarget => ({
    _tag: "InvalidTarget",
    field,
    value: picked.value,
    message: `invalid ${field} ${describeValue(picked.value)} (${field} of ${picked.from}): ${problem}`
  })
  const cluster = pick("cluster")
  if (cluster !== undefined && cluster.value !== localCluster) {
    const problem = clusterProblem(cluster.value)
    if (problem !== undefined) return invalid("cluster", cluster, problem)
  }
  const namespace = pick("namespace")
  if (namespace !== undefined && namespace.value !== workflow.metadata.namespace) {
    const problem = namespaceProblem(namespace.value)
    if (problem !== undefined) return invalid("namespace", namespace, problem)
  }
  return {
    cluster: cluster?.value ?? localCluster,
    namespace: namespace?.value ?? workflow.metadata.namespace
  }
}

/** Set at all: absent, null and "" mean "not set" (as {@link targetOf} reads them). */
const isGiven = <A>(value: A | null | undefined): value is A => value !== undefined && value !== null && value !== ""

/** The value for a message: quoted, cut to 100 characters, control characters escaped. */
const describeValue = (value: unknown): string => {
  if (typeof value !== "string") return value === null ? "null" : Array.isArray(value) ? "(a list)" : `(a ${typeof value})`
  const shown = value.length > 100 ? `${value.slice(0, 100)}…` : value
  return JSON.stringify(shown)
}

/** True iff the target is the workflow's own cluster and namespace (ownerReferences are possible). */
export const isLocalTarget = (target: Target, workflow: Pick<Workflow, "metadata">, localCluster: string): boolean =>
  target.cluster === localCluster && target.namespace === workflow.metadata.namespace

/**
 * True iff some pod template, after inheritance, targets another cluster or a
 * namespace other than the workflow's: the controller then holds a finalizer
 * so remote pods are cleaned up before the Workflow goes away. Templates called
 * by `templateRef` count, found as the engine finds them (`templates`, or the
 * workflow's stored templates).
 */
export const needsFinalizer = (
  workflow: Pick<Workflow, "metadata" | "spec" | "status">,
  localCluster: string,
  templates?: TemplateLookup
): boolean => {
  const resolver = new TemplateResolver(workflow, templates)
  const seen = new Set<string>()
  const visit = (base: TemplateBase, call: { readonly template?: string; readonly templateRef?: TemplateRef }, inherited: Placement | undefined): boolean => {
    if (call.template === undefined && call.templateRef === undefined) return false
    const found = resolver.findCall(base, call)
    if (!found.ok) return false
    const t = found.template
    const key = `${storedKey(found.base, t.name ?? "")}\u0000${inherited?.cluster ?? ""}\u0000${inherited?.namespace ?? ""}`
    if (seen.has(key)) return false
    seen.add(key)
    return visitTemplate(found.base, t, inherited)
  }
  // A template, named or inline (inline.ts: in the base of the template that holds it).
  const visitTemplate = (base: TemplateBase, t: Template, inherited: Placement | undefined): boolean => {
    if (t.container !== undefined || t.script !== undefined || t.resource !== undefined || t.containerSet !== undefined || t.data !== undefined) {
      if (!isLocalTarget(targetOf(t, workflow, localCluster, inherited), workflow, localCluster)) return true
    }
    const down = inheritPlacement(t, inherited)
    const inlines = [...(t.steps ?? []).flat(), ...(t.dag?.tasks ?? [])].flatMap((c) => {
      const i = inlineOf(c)
      return i === undefined ? [] : [i]
    })
    return callsOf(t).some((c) => visit(base, c, down)) || inlines.some((i) => visitTemplate(base, i, down))
  }
  const roots = [workflow.spec.entrypoint, workflow.spec.onExit, ...Object.values(workflow.spec.hooks ?? {}).map((h) => h.template)]
  const hookRefs = Object.values(workflow.spec.hooks ?? {}).flatMap((h) => h.templateRef !== undefined ? [h.templateRef] : [])
  // Every template also counts on its own, reachable or not.
  return roots.some((r) => visit(localBase, { template: r }, undefined)) ||
    hookRefs.some((templateRef) => visit(localBase, { templateRef }, undefined)) ||
    workflow.spec.templates.some((t) => visit(localBase, { template: t.name }, undefined))
}
