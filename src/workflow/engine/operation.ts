/**
 * The state of one operation (one reconcile of one workflow) and its node
 * bookkeeping: the nodes being built (copied from the stored status, never
 * mutated in place), the actions collected, the globals, the work budget
 * (`limits.maxReconcileSteps`, `limits.maxNodes`), and the primitives every
 * part of the engine uses to create, find, link and mark nodes, resolve
 * templates (with `templateDefaults`) and enforce a boundary's
 * `parallelism`. Upstream's `wfOperationCtx` with `initializeNode`,
 * `markNodePhase`, `checkParallelism` and `getOutboundNodes`
 * (workflow/controller/operator.go).
 *
 * The template executors (steps.ts, dag.ts, retry.ts, podNodes.ts, ...) are
 * functions over this state; they reach one another through the abstract
 * `executeTemplate` / `executeBody`, implemented by reconcile.ts, so that no
 * executor imports the one that calls it (steps and DAGs recurse through
 * templates). Pure: no I/O, no clock (the time is `input.now`).
 */
import { annotationPodNameFormat } from "../../util/argoKeys.js"
import { isRecord } from "../../util/records.js"
import { isoSeconds } from "../../util/time.js"
import {
  type Artifact,
  isFulfilled,
  type NodeOutputs,
  type NodePhase,
  type NodeStatus,
  type NodeType,
  type Parameter,
  type Template,
  type TemplateCall,
  type Workflow
} from "../model/Workflow.js"
import type { TemplateRef } from "../model/schema/template.js"
import type { EngineAction, EngineConfig, EngineInput } from "./contract.js"
import { nodeId as makeNodeId } from "./ids.js"
import type { EngineLimits } from "./limits.js"
import { displayNameOf, type ExecOpts, type Failure, getOrCreate, type Node, type ResolvedArgs } from "./nodes.js"
import {
  baseOfRef,
  baseOfScope,
  localBase,
  scopeOf,
  storedKey,
  type TemplateBase,
  templateRefOf,
  TemplateResolver
} from "./templateRefs.js"
import { labelClusterWorkflowTemplate, labelWorkflowTemplate } from "./workflowTemplateRef.js"

/**
 * One template call being executed (upstream's `tmplCtx` passed down
 * `executeTemplate`): the nodes of the call itself (its node, a Retry node and
 * its attempts, all in the caller's boundary) are in the caller's template scope
 * and carry the call's `templateRef`; the nodes inside it (step groups, the
 * calls of its steps and tasks) are in the scope its template came from.
 */
interface CallFrame {
  readonly boundaryId: string | undefined
  readonly caller: TemplateBase
  readonly inner: TemplateBase
  readonly templateRef: TemplateRef | undefined
}

/**
 * Thrown from inside an operation when the workflow crosses one of its
 * limits; `run` turns it into the workflow's Error. Not an Error subclass:
 * it is control flow, and needs no stack trace.
 */
export class LimitExceeded {
  constructor(readonly message: string) {}
}

/** A node that holds one of its boundary's `parallelism` slots while it is not fulfilled. */
const countsForParallelism = (n: Node): boolean =>
  n.boundaryID !== undefined && !isFulfilled(n.phase) && n.type !== "StepGroup" && n.type !== "TaskGroup" && n.nodeFlag?.retried !== true

/** templateDefaults merged under a template (the template wins; objects merge). */
export const mergeDefaults = (defaults: Readonly<Record<string, unknown>>, tmpl: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...tmpl }
  for (const [k, v] of Object.entries(defaults)) {
    if (k === "name") continue
    if (!(k in tmpl) || tmpl[k] === undefined) {
      // Container defaults only apply to templates of that kind.
      if ((k === "container" || k === "script") && !(k in tmpl)) continue
      out[k] = v
    } else if (isRecord(v) && isRecord(tmpl[k])) out[k] = mergeDefaults(v, tmpl[k] as Record<string, unknown>)
  }
  return out
}

/**
 * One operation's state (`wfOperationCtx`). Fields are read and assigned by the
 * executor modules; those private here are the indexes only this class keeps.
 */
export abstract class OperationState {
  readonly nodes: Record<string, Node>
  readonly actions: Array<EngineAction> = []
  requeueAt: number | undefined
  readonly globals = new Map<string, unknown>()
  readonly nowIso: string
  readonly status: Record<string, unknown>
  readonly taskResultsCompletion: Record<string, boolean>
  private readonly templates: ReadonlyMap<string, Template>
  readonly config: EngineConfig
  readonly limits: EngineLimits
  readonly now: number
  workflowDeadline: number | undefined
  activePods = 0
  globalOutputs: Array<Parameter>
  /** `status.outputs.artifacts`: output artifacts exported by a `globalName` (artifacts.ts). */
  globalArtifacts: Array<Artifact>
  depth = 0
  /** `spec.workflowMetadata` labels set on the first operation (`updateWorkflowMetadata`). */
  metadataLabels: Record<string, string> = {}
  private nodeCount = 0
  /** Work units spent so far (`limits.maxReconcileSteps`); nothing is counted once the operation is aborted. */
  private spent = 0
  aborted = false
  // Indexes built once per reconcile, so that no step of a reconcile scans every node.
  private readonly ids = new Map<string, string>()
  private readonly childSets = new Map<string, Set<string>>()
  private readonly resolvedTemplates = new Map<string, Template | undefined>()
  /** Per boundary: its nodes that count against the boundary's parallelism and were active when last looked at. */
  private activeByBoundary: Map<string, Set<Node>> | undefined
  /** Per boundary: the ids of the nodes inside it (built on first use, then kept up to date by `initNode`). */
  private idsByBoundary: Map<string, Set<string>> | undefined
  /** The template calls being executed, innermost last; the first is the workflow itself. */
  private readonly frames: Array<CallFrame> = [{ boundaryId: undefined, caller: localBase, inner: localBase, templateRef: undefined }]
  readonly resolver: TemplateResolver
  /** Each steps or DAG template's calls by name, for the `templateRef` of a call (see `callOf`). */
  private readonly callsByTemplate = new WeakMap<Template, Map<string, TemplateCall>>()

  constructor(
    readonly wf: Workflow,
    readonly input: EngineInput,
    limits: EngineLimits,
    nodes: Readonly<Record<string, NodeStatus>>
  ) {
    this.config = input.config
    this.limits = limits
    this.now = input.now
    this.nowIso = isoSeconds(input.now)
    const prev = (wf.status ?? {}) as Record<string, unknown>
    this.status = { ...prev }
    // The stored nodes are never mutated: each is copied (its `children` too, the only array
    // changed in place), shallowly; every other change assigns a fresh value.
    this.nodes = {}
    for (const id in nodes) {
      const n = nodes[id] as Node
      const copy: Node = { ...n }
      if (n.children !== undefined) copy.children = [...n.children]
      this.nodes[id] = copy
      this.nodeCount++
    }
    this.taskResultsCompletion = { ...((prev.taskResultsCompletionStatus ?? {}) as Record<string, boolean>) }
    this.templates = new Map(wf.spec.templates.map((t) => [t.name, t] as const))
    this.resolver = new TemplateResolver(wf, input.templates)
    const wfRef = wf.spec.workflowTemplateRef
    if (wfRef !== undefined) this.metadataLabels[wfRef.clusterScope === true ? labelClusterWorkflowTemplate : labelWorkflowTemplate] = wfRef.name
    this.globalOutputs = [...(((prev.outputs as NodeOutputs | undefined)?.parameters) ?? [])]
    this.globalArtifacts = [...(((prev.outputs as NodeOutputs | undefined)?.artifacts) ?? [])]
  }

  /** Spend work units of this reconcile's budget (`limits.maxReconcileSteps`). */
  spend(units = 1): void {
    this.spent += units
    if (this.spent > this.limits.maxReconcileSteps && !this.aborted) {
      throw new LimitExceeded(
        `reconcile exceeded limits.maxReconcileSteps (${this.limits.maxReconcileSteps} work units): ` +
          `the workflow is too large to evaluate (${this.nodeCount} nodes)`
      )
    }
  }

  requeue(at: number): void {
    if (this.requeueAt === undefined || at < this.requeueAt) this.requeueAt = at
  }

  id(name: string): string {
    let id = this.ids.get(name)
    if (id === undefined) {
      id = makeNodeId(this.wf.metadata.name, name)
      this.ids.set(name, id)
    }
    return id
  }

  byName(name: string): Node | undefined {
    return this.nodes[this.id(name)]
  }

  initNode(
    name: string,
    type: NodeType,
    phase: NodePhase,
    opts: { boundaryId?: string; templateName?: string; message?: string; hooked?: boolean; retried?: boolean; inputs?: Node["inputs"] }
  ): Node {
    this.spend()
    if (this.nodeCount >= this.limits.maxNodes) {
      throw new LimitExceeded(`status.nodes: node "${name}" would be node ${this.nodeCount + 1}, which exceeds limits.maxNodes (${this.limits.maxNodes})`)
    }
    const id = this.id(name)
    const node: Node = {
      id,
      name,
      displayName: displayNameOf(name),
      type,
      phase,
      startedAt: this.nowIso
    }
    const frame = this.frames[this.frames.length - 1]
    // The call's own nodes share its boundary; the nodes inside it have the call's node (or an attempt) as boundary.
    const own = (opts.boundaryId || undefined) === frame.boundaryId
    const templateRef = own ? frame.templateRef : undefined
    const base = own ? frame.caller : frame.inner
    if (templateRef !== undefined) node.templateRef = templateRef
    else if (opts.templateName !== undefined) node.templateName = opts.templateName
    if (opts.templateName !== undefined || templateRef !== undefined || base.scope !== "local") node.templateScope = scopeOf(base)
    if (opts.boundaryId !== undefined && opts.boundaryId !== "") node.boundaryID = opts.boundaryId
    if (opts.message !== undefined && opts.message !== "") node.message = opts.message
    if (opts.hooked === true || opts.retried === true) {
      node.nodeFlag = { ...(opts.hooked === true ? { hooked: true } : {}), ...(opts.retried === true ? { retried: true } : {}) }
    }
    if (opts.inputs !== undefined) node.inputs = opts.inputs
    if (isFulfilled(phase)) node.finishedAt = this.nowIso
    if (!(id in this.nodes)) this.nodeCount++
    this.nodes[id] = node
    if (this.activeByBoundary !== undefined && countsForParallelism(node)) {
      getOrCreate(this.activeByBoundary, node.boundaryID!, () => new Set()).add(node)
    }
    if (this.idsByBoundary !== undefined && node.boundaryID !== undefined) {
      getOrCreate(this.idsByBoundary, node.boundaryID, () => new Set()).add(id)
    }
    return node
  }

  /**
   * The nodes whose boundary is `boundaryId`, as they are now; one walk over every node per
   * reconcile (on first use), then only the boundary's own, whoever asks and however often.
   */
  nodesInBoundary(boundaryId: string): Array<Node> {
    if (this.idsByBoundary === undefined) {
      this.idsByBoundary = new Map()
      let count = 0
      for (const id in this.nodes) {
        count++
        const b = this.nodes[id].boundaryID
        if (b !== undefined) getOrCreate(this.idsByBoundary, b, () => new Set()).add(id)
      }
      this.spend(count)
    }
    const out: Array<Node> = []
    for (const id of this.idsByBoundary.get(boundaryId) ?? []) {
      const n = this.nodes[id]
      // a node created again under another boundary is filed under both: only its current one counts
      if (n !== undefined && n.boundaryID === boundaryId) out.push(n)
    }
    this.spend(out.length)
    return out
  }

  /** The node of a template call, as first created: its boundary, flags and declared inputs. */
  initCallNode(nodeName: string, type: NodeType, phase: NodePhase, tmpl: Template, opts: ExecOpts, retried: boolean): Node {
    return this.initNode(nodeName, type, phase, {
      boundaryId: opts.boundaryId,
      templateName: tmpl.name,
      hooked: opts.hooked,
      retried,
      inputs: tmpl.inputs?.parameters !== undefined ? { parameters: tmpl.inputs.parameters } : undefined
    })
  }

  /** The Steps or DAG node `nodeName`, created Running on first visit; undefined while parallelism holds it back. */
  compositeNode(nodeName: string, type: "Steps" | "DAG", tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined {
    const existing = this.byName(nodeName)
    if (existing !== undefined) return existing
    if (!retried && this.parallelismBlocked(opts)) return undefined
    return this.initCallNode(nodeName, type, "Running", tmpl, opts, retried)
  }

  markPhase(node: Node, phase: NodePhase, message?: string): Node {
    node.phase = phase
    if (message !== undefined) {
      if (message === "") delete node.message
      else node.message = message
    }
    if (isFulfilled(phase)) node.finishedAt ??= this.nowIso
    else delete node.finishedAt
    return node
  }

  errorNode(name: string, message: string, opts: ExecOpts, templateName?: string): Node {
    const existing = this.byName(name)
    if (existing !== undefined) return this.markPhase(existing, "Error", message)
    return this.initNode(name, "Skipped", "Error", { boundaryId: opts.boundaryId, message, templateName, hooked: opts.hooked })
  }

  addChild(parentName: string, childName: string): void {
    const parent = this.byName(parentName)
    if (parent === undefined) return
    const childId = this.id(childName)
    const known = getOrCreate(this.childSets, parent.id, () => new Set(parent.children))
    if (known.has(childId)) return
    known.add(childId)
    parent.children ??= []
    parent.children.push(childId)
  }

  outboundNodes(id: string): Array<string> {
    this.spend()
    const node = this.nodes[id]
    if (node === undefined) return []
    switch (node.type) {
      case "Skipped":
      case "Suspend":
      case "HTTP":
      case "Plugin":
        return [node.id]
      case "Pod":
      case "Container": {
        // A containerSet's pod ends where its containers' graph ends (containerSet.ts); hooks below it do not count.
        const inner = (node.children ?? []).filter((c) => {
          const child = this.nodes[c]
          return child?.type === "Container" && child.boundaryID === (node.type === "Pod" ? node.id : node.boundaryID)
        })
        if (inner.length === 0) return [node.id]
        return inner.flatMap((c) => this.outboundNodes(c))
      }
      case "TaskGroup":
        if ((node.children ?? []).length === 0) return [node.id]
        return (node.children ?? []).flatMap((c) => this.outboundNodes(c))
      case "Retry": {
        const c = node.children ?? []
        if (c.length > 0) return [c[c.length - 1]]
        return []
      }
      default:
        return (node.outboundNodes ?? []).flatMap((o) => this.outboundNodes(o))
    }
  }

  childNodes(node: Node): Array<Node> {
    this.spend((node.children ?? []).length)
    return (node.children ?? []).map((c) => this.nodes[c]).filter((n) => n !== undefined)
  }

  /**
   * Template `name` of the template base being executed (the workflow's own, or
   * the (Cluster)WorkflowTemplate the current call came from), with
   * `templateDefaults` merged under it; undefined when there is none.
   */
  resolveTemplate(name: string): Template | undefined {
    const r = this.resolveIn(this.frames[this.frames.length - 1].inner, name, false)
    return "error" in r ? undefined : r
  }

  /** What a call runs: its `templateRef`, or its template by name in the current template base. */
  resolveCall(call: { readonly template?: string | undefined; readonly templateRef?: TemplateRef | undefined }): Template | Failure {
    const ref = templateRefOf(call as TemplateCall)
    if (ref !== undefined) return this.resolveIn(baseOfRef(ref), ref.template, true)
    return this.resolveIn(this.frames[this.frames.length - 1].inner, call.template ?? "", false)
  }

  /** The template a node was executed with: by its `templateRef`, or its `templateName` in its `templateScope`. */
  templateOfNode(node: Node): Template | undefined {
    const ref = node.templateRef as TemplateRef | undefined
    const r = ref !== undefined
      ? this.resolveIn(baseOfRef(ref), ref.template, true)
      : node.templateName === undefined
      ? undefined
      : this.resolveIn(baseOfScope(node.templateScope), node.templateName, false)
    return r === undefined || "error" in r ? undefined : r
  }

  /**
   * Template `name` of `base`, merged under `templateDefaults` once per
   * reconcile; one found in a (Cluster)WorkflowTemplate is stored in
   * `status.storedTemplates` the first time.
   */
  private resolveIn(base: TemplateBase, name: string, byRef: boolean): Template | Failure {
    const key = base.scope === "local" ? name : `${byRef ? "ref:" : ""}${storedKey(base, name)}`
    const known = this.resolvedTemplates.get(key)
    if (known !== undefined || (base.scope === "local" && this.resolvedTemplates.has(key))) {
      return known ?? { error: `template ${name} not found` }
    }
    let t: Template | undefined
    if (base.scope === "local") t = this.templates.get(name)
    else {
      const found = this.resolver.find(base, name, byRef)
      if (!found.ok) return { error: found.error }
      t = found.template
      if (found.fetched) {
        const prev = this.status.storedTemplates
        this.status.storedTemplates = { ...(isRecord(prev) ? prev : {}), [storedKey(base, name)]: t }
      }
    }
    const defaults = this.wf.spec.templateDefaults
    const resolved = t === undefined || defaults === undefined ? t : (mergeDefaults(defaults, t) as Template)
    this.resolvedTemplates.set(key, resolved)
    return resolved ?? { error: `template ${name} not found` }
  }

  /**
   * The step or task a call of `executeTemplate` comes from, looked up in the
   * steps or DAG template that makes it (steps and tasks pass only a template
   * name; a `templateRef` call passes none).
   */
  callOf(opts: ExecOpts): TemplateCall | undefined {
    const parent = opts.parentTemplate
    if (parent === undefined || opts.callName === undefined) return undefined
    let calls = this.callsByTemplate.get(parent)
    if (calls === undefined) {
      calls = new Map()
      for (const group of parent.steps ?? []) for (const s of group) calls.set(`step/${s.name}`, s)
      for (const t of parent.dag?.tasks ?? []) calls.set(`task/${t.name}`, t)
      this.callsByTemplate.set(parent, calls)
    }
    return calls.get(`${opts.callKind}/${opts.callName}`)
  }

  /** Enter a template call made in `boundaryId` (with its `templateRef`, if any): see {@link CallFrame}. */
  enterCall(boundaryId: string | undefined, templateRef: TemplateRef | undefined): void {
    const caller = this.frames[this.frames.length - 1].inner
    this.frames.push({
      boundaryId: boundaryId || undefined,
      caller,
      inner: templateRef !== undefined ? baseOfRef(templateRef) : caller,
      templateRef
    })
  }

  leaveCall(): void {
    if (this.frames.length > 1) this.frames.pop()
  }

  podNameVersion(): "v1" | "v2" {
    const a = this.wf.metadata.annotations?.[annotationPodNameFormat]
    return a === "v1" || a === "v2" ? a : this.config.podNameVersion
  }

  parallelismBlocked(opts: ExecOpts): boolean {
    if (opts.boundaryId === undefined) return false
    const boundary = this.nodes[opts.boundaryId]
    const bt = boundary === undefined ? undefined : this.templateOfNode(boundary)
    const limit = bt?.parallelism
    if (typeof limit !== "number") return false
    if (this.activeByBoundary === undefined) {
      this.activeByBoundary = new Map()
      for (const id in this.nodes) {
        const n = this.nodes[id]
        if (countsForParallelism(n)) getOrCreate(this.activeByBoundary, n.boundaryID!, () => new Set()).add(n)
      }
    }
    const active = this.activeByBoundary.get(opts.boundaryId)
    if (active === undefined) return false
    // A node never becomes active again once fulfilled, so the set only shrinks to the active ones.
    for (const n of active) if (isFulfilled(n.phase) || this.nodes[n.id] !== n) active.delete(n)
    return active.size >= limit
  }

  stepScope(): Map<string, unknown> {
    return new Map(this.globals)
  }

  /** Execute a template call as node `nodeName` (reconcile.ts): what steps, DAG tasks and hooks call. */
  abstract executeTemplate(
    nodeName: string,
    call: { readonly template: string; readonly args: ResolvedArgs },
    opts: ExecOpts
  ): Node | undefined

  /** Execute a processed template's body by its type (reconcile.ts): what a retry attempt runs. */
  abstract executeBody(nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined
}
