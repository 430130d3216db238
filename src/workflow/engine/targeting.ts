/**
 * Where a template's pod runs. flotilla goes beyond upstream Argo: `cluster:`
 * and `namespace:` on a template choose the target, and when set on a steps
 * or DAG template they are inherited by every template it calls unless that
 * template sets its own (cluster and namespace are inherited separately).
 */
import type { Template, Workflow } from "../model/Workflow.js"

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
  const defaults = workflow.spec.templateDefaults as Partial<Template> | undefined
  return {
    cluster: nonEmpty(template.cluster) ?? inherited?.cluster ?? nonEmpty(defaults?.cluster) ?? localCluster,
    namespace: nonEmpty(template.namespace) ?? inherited?.namespace ?? nonEmpty(defaults?.namespace) ??
      workflow.metadata.namespace
  }
}

/** True iff the target is the workflow's own cluster and namespace (ownerReferences are possible). */
export const isLocalTarget = (target: Target, workflow: Pick<Workflow, "metadata">, localCluster: string): boolean =>
  target.cluster === localCluster && target.namespace === workflow.metadata.namespace

const callsOf = (t: Template): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const group of t.steps ?? []) {
    for (const s of group) {
      if (s.template !== undefined) out.push(s.template)
      if (s.onExit !== undefined) out.push(s.onExit)
      for (const h of Object.values(s.hooks ?? {})) if (h.template !== undefined) out.push(h.template)
    }
  }
  for (const task of t.dag?.tasks ?? []) {
    if (task.template !== undefined) out.push(task.template)
    if (task.onExit !== undefined) out.push(task.onExit)
    for (const h of Object.values(task.hooks ?? {})) if (h.template !== undefined) out.push(h.template)
  }
  return out
}

/**
 * True iff some pod template, after inheritance, targets another cluster or a
 * namespace other than the workflow's: the controller then holds a finalizer
 * so remote pods are cleaned up before the Workflow goes away.
 */
export const needsFinalizer = (workflow: Pick<Workflow, "metadata" | "spec">, localCluster: string): boolean => {
  const byName = new Map(workflow.spec.templates.map((t) => [t.name, t] as const))
  const seen = new Set<string>()
  const visit = (name: string | undefined, inherited: Placement | undefined): boolean => {
    const t = name === undefined ? undefined : byName.get(name)
    if (t === undefined) return false
    const key = `${t.name}\u0000${inherited?.cluster ?? ""}\u0000${inherited?.namespace ?? ""}`
    if (seen.has(key)) return false
    seen.add(key)
    if (t.container !== undefined || t.script !== undefined || t.resource !== undefined || t.containerSet !== undefined) {
      if (!isLocalTarget(targetOf(t, workflow, localCluster, inherited), workflow, localCluster)) return true
    }
    const down = inheritPlacement(t, inherited)
    return callsOf(t).some((c) => visit(c, down))
  }
  const roots = [workflow.spec.entrypoint, workflow.spec.onExit, ...Object.values(workflow.spec.hooks ?? {}).map((h) => h.template)]
  // Every template also counts on its own, reachable or not.
  return roots.some((r) => visit(r, undefined)) || workflow.spec.templates.some((t) => visit(t.name, undefined))
}
