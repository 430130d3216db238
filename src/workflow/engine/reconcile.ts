/**
 * The pure workflow engine: given a Workflow as stored, what was observed of
 * its pods and task results, and the time, compute the next status and the
 * actions that bring the clusters in line. It follows upstream's operator
 * (`operator.go`, `steps.go`, `dag.go`) closely so status is what `argo get`
 * expects, and never performs I/O or reads a clock.
 *
 * Idempotent by construction: everything is derived from the stored status
 * and the observations; a node that completed is never executed again, and a
 * pod is (re-)requested only while its node waits for one.
 */
import type { KubeObject } from "../../kube/Resources.js"
import { annotationPodNameFormat, labelCompleted, labelPhase } from "../../util/argoKeys.js"
import { humanizeMs, parseDurationMs } from "../../util/goDuration.js"
import { isRecord } from "../../util/records.js"
import { isoSeconds } from "../../util/time.js"
import { compressNodesJson, readStatusNodes } from "../model/compressedNodes.js"
import { decodeWorkflow } from "../model/decode.js"
import {
  type Arguments,
  type DagTask,
  isFailedOrError,
  isFulfilled,
  isWorkflowCompleted,
  type NodeOutputs,
  type NodePhase,
  type NodeStatus,
  type NodeType,
  type Parameter,
  type RetryStrategy,
  type Template,
  type TemplateCall,
  templateTypeOf,
  type Workflow,
  type WorkflowPhase
} from "../model/Workflow.js"
import type { EngineAction, EngineConfig, EngineInput, EngineOutput, PodObservation } from "./contract.js"
import { dependsLogic, type DependencyState, evaluateDepends, taskDependencies } from "./depends.js"
import { nodeId as makeNodeId, podName as makePodName } from "./ids.js"
import { type EngineLimits, resolveLimits } from "./limits.js"
import { expandLoop, isLoop, loopIndexOf } from "./loops.js"
import { buildPod, podLabels, PodSpecPatchError } from "./pod.js"
import { evaluate, evaluateWhen, type Scope, substitute, substituteTemplate } from "./scope.js"
import { inheritPlacement, isInvalidTarget, type Placement, resolveTarget } from "./targeting.js"

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
type Node = Mutable<NodeStatus> & { children?: Array<string>; outboundNodes?: Array<string> }


interface ExecOpts {
  readonly boundaryId?: string
  readonly onExit: boolean
  readonly hooked?: boolean
  readonly placement?: Placement
  /** The step or task name, for `steps.name` / `tasks.name`. */
  readonly callName?: string
  readonly callKind?: "step" | "task"
  /** The template of the enclosing steps/DAG (for includeScriptOutput). */
  readonly parentTemplate?: Template
}

/** Arguments after substitution; `undefined` marks a parameter that could not be resolved. */
type ResolvedArgs = ReadonlyMap<string, string | undefined>

type Failure = { readonly error: string }
const isFailure = (u: unknown): u is Failure => typeof u === "object" && u !== null && "error" in u && !("name" in u)

const terminalPodPhases = new Set(["Succeeded", "Failed"])

/**
 * One reconcile of one workflow. Never throws: whatever goes wrong inside the
 * engine (a bug, a stack overflow on hostile input, a limit) becomes this
 * workflow's Error with the reason (upstream's `operate` recovers panics into
 * `markWorkflowError` the same way), so a single bad workflow cannot make the
 * controller retry it forever.
 */
export const reconcile = (input: EngineInput): EngineOutput => {
  const limits = resolveLimits(input.config.limits)
  try {
    const decoded = decodeWorkflow(input.workflow)
    if (!decoded.ok) return decodeFailure(input, decoded.error)
    const nodes = readStatusNodes(decoded.value.status, maxDecodedNodeBytes(limits))
    if (!nodes.ok) return workflowError(input, nodes.error)
    return new Operation(decoded.value, input, limits, nodes.nodes).run()
  } catch (e) {
    return workflowError(input, `workflow engine failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`)
  }
}

/**
 * Decoded node JSON a stored `compressedNodes` may expand to: node JSON
 * compresses 10-30 times, so a status the engine compressed to fit
 * `maxStatusBytes` is far below this; a larger one was not written by us.
 */
const maxDecodedNodeBytes = (limits: EngineLimits): number => limits.maxStatusBytes * 100

const decodeFailure = (input: EngineInput, message: string): EngineOutput => {
  const prev = (input.workflow.status ?? {}) as Record<string, unknown>
  const nowIso = isoSeconds(input.now)
  const status: Record<string, unknown> = {
    ...prev,
    phase: "Error",
    message,
    startedAt: prev.startedAt ?? nowIso,
    finishedAt: prev.finishedAt ?? nowIso,
    progress: prev.progress ?? "0/0"
  }
  // Compressed nodes stay as stored (readers decode them when `nodes` is empty).
  if (typeof prev.compressedNodes !== "string" || prev.compressedNodes === "") status.nodes = prev.nodes ?? {}
  return { status, labels: { [labelPhase]: "Error", [labelCompleted]: "true" }, actions: [] }
}

/**
 * The stored status, unchanged but for phase Error and the reason, and no
 * actions: upstream's `markWorkflowError` on the original object, used when
 * this reconcile's own result cannot be trusted or stored.
 */
const workflowError = (input: EngineInput, message: string): EngineOutput => {
  const prev = (input.workflow.status ?? {}) as Record<string, unknown>
  const nowIso = isoSeconds(input.now)
  const status: Record<string, unknown> = {
    ...prev,
    phase: "Error",
    message,
    startedAt: prev.startedAt ?? nowIso,
    finishedAt: prev.finishedAt ?? nowIso
  }
  return { status, labels: { [labelPhase]: "Error", [labelCompleted]: "true" }, actions: [] }
}

/**
 * Thrown from inside an operation when the workflow crosses one of its
 * limits; `run` turns it into the workflow's Error. Not an Error subclass:
 * it is control flow, and needs no stack trace.
 */
class LimitExceeded {
  constructor(readonly message: string) {}
}

class Operation {
  private readonly nodes: Record<string, Node>
  private readonly actions: Array<EngineAction> = []
  private requeueAt: number | undefined
  private readonly globals = new Map<string, unknown>()
  private readonly nowIso: string
  private readonly status: Record<string, unknown>
  private readonly taskResultsCompletion: Record<string, boolean>
  private readonly templates: ReadonlyMap<string, Template>
  private readonly config: EngineConfig
  private readonly limits: EngineLimits
  private readonly now: number
  private workflowDeadline: number | undefined
  private activePods = 0
  private globalOutputs: Array<Parameter>
  private depth = 0
  /** `spec.workflowMetadata` labels set on the first operation (`updateWorkflowMetadata`). */
  private metadataLabels: Record<string, string> = {}
  private nodeCount = 0
  /** Work units spent so far (`limits.maxReconcileSteps`); nothing is counted once the operation is aborted. */
  private spent = 0
  private aborted = false
  // Indexes built once per reconcile, so that no step of a reconcile scans every node.
  private readonly ids = new Map<string, string>()
  private readonly childSets = new Map<string, Set<string>>()
  private readonly resolvedTemplates = new Map<string, Template | undefined>()
  /** Per boundary: its nodes that count against the boundary's parallelism and were active when last looked at. */
  private activeByBoundary: Map<string, Set<Node>> | undefined

  constructor(
    private readonly wf: Workflow,
    private readonly input: EngineInput,
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
    this.globalOutputs = [...(((prev.outputs as NodeOutputs | undefined)?.parameters) ?? [])]
  }

  // ---------------------------------------------------------------- driver

  run(): EngineOutput {
    try {
      return this.execute()
    } catch (e) {
      if (e instanceof LimitExceeded) return this.abort(e.message)
      throw e
    }
  }

  /**
   * A limit was crossed: the workflow ends in Error with the reason, as far
   * as it got (so the node that crossed it shows), every unfinished node closed,
   * and no actions, since nothing more should run for it.
   */
  private abort(message: string): EngineOutput {
    this.aborted = true
    this.actions.length = 0
    this.requeueAt = undefined
    this.closeWorkflow("Error", message)
    return this.output("Error")
  }

  /** Spend work units of this reconcile's budget (`limits.maxReconcileSteps`). */
  private spend(units = 1): void {
    this.spent += units
    if (this.spent > this.limits.maxReconcileSteps && !this.aborted) {
      throw new LimitExceeded(
        `reconcile exceeded limits.maxReconcileSteps (${this.limits.maxReconcileSteps} work units): ` +
          `the workflow is too large to evaluate (${this.nodeCount} nodes)`
      )
    }
  }

  private execute(): EngineOutput {
    const phase = (this.status.phase ?? "") as WorkflowPhase
    if (isWorkflowCompleted(phase)) {
      this.podGC(phase)
      return this.output(phase)
    }
    if (phase === "" || phase === "Pending") {
      this.status.phase = "Running"
      this.status.startedAt ??= this.nowIso
    }
    const startedMs = Date.parse(String(this.status.startedAt))
    if (typeof this.wf.spec.activeDeadlineSeconds === "number") {
      this.workflowDeadline = startedMs + this.wf.spec.activeDeadlineSeconds * 1000
      if (this.now < this.workflowDeadline) this.requeue(this.workflowDeadline)
    }
    const argsError = this.setGlobals(startedMs)
    if (argsError !== undefined) return this.finish("Error", argsError)
    if (phase === "") {
      const metadataError = this.updateWorkflowMetadata()
      if (metadataError !== undefined) return this.finish("Error", metadataError)
    }

    this.reconcilePods()
    if (this.workflowDeadline !== undefined && this.now >= this.workflowDeadline) this.failAfterDeadline()
    this.activePods = Object.values(this.nodes).filter((n) => n.type === "Pod" && (n.phase === "Pending" || n.phase === "Running")).length

    const entry = this.executeTemplate(
      this.wf.metadata.name,
      { template: this.wf.spec.entrypoint ?? "", args: this.argMap(this.wf.spec.arguments) },
      { onExit: false }
    )
    if (entry === undefined || !isFulfilled(entry.phase)) return this.output("Running")

    const wfStatus: WorkflowPhase = entry.phase === "Failed" ? "Failed" : entry.phase === "Error" ? "Error" : "Succeeded"
    this.globals.set("workflow.status", wfStatus)
    this.globals.set("workflow.failures", JSON.stringify(this.failures()))

    // `spec.GetExitHook(spec.arguments)`: spec.onExit gets the workflow's arguments; a `hooks.exit`
    // hook gets its own arguments, or the workflow's when it has none.
    let onExitNode: Node | undefined
    const exitHook = this.wf.spec.onExit !== undefined && this.wf.spec.onExit !== ""
      ? { template: this.wf.spec.onExit, arguments: this.wf.spec.arguments }
      : this.wf.spec.hooks?.exit?.template !== undefined
      ? {
        template: this.wf.spec.hooks.exit.template,
        arguments: (this.wf.spec.hooks.exit.arguments?.parameters ?? []).length > 0 ? this.wf.spec.hooks.exit.arguments : this.wf.spec.arguments
      }
      : undefined
    if (exitHook !== undefined) {
      const exitName = `${this.wf.metadata.name}.onExit`
      const args = this.resolveArgs({ name: exitName, template: exitHook.template, arguments: exitHook.arguments }, this.globals)
      onExitNode = isFailure(args)
        ? this.errorNode(exitName, args.error, { onExit: true, hooked: true }, exitHook.template)
        : this.executeTemplate(exitName, { template: exitHook.template, args }, { onExit: true, hooked: true })
      if (onExitNode === undefined || !isFulfilled(onExitNode.phase)) return this.output("Running")
    }
    if (wfStatus === "Succeeded" && onExitNode !== undefined && isFailedOrError(onExitNode.phase)) {
      return this.finish(onExitNode.phase === "Failed" ? "Failed" : "Error", onExitNode.message ?? "")
    }
    return this.finish(wfStatus, wfStatus === "Succeeded" ? "" : (entry.message ?? ""))
  }

  private finish(phase: WorkflowPhase, message: string): EngineOutput {
    this.closeWorkflow(phase, message)
    this.podGC(phase)
    return this.output(phase)
  }

  private closeWorkflow(phase: WorkflowPhase, message: string): void {
    this.status.phase = phase
    if (message !== "") this.status.message = message
    else delete this.status.message
    this.status.startedAt ??= this.nowIso
    this.status.finishedAt ??= this.nowIso
    // Nodes still running when the workflow ends (e.g. after an error) are closed like upstream.
    for (const id in this.nodes) {
      const n = this.nodes[id]
      if (!isFulfilled(n.phase)) {
        n.phase = "Error"
        n.message ??= "workflow shutdown"
        n.finishedAt ??= this.nowIso
      }
    }
  }

  private output(phase: WorkflowPhase): EngineOutput {
    // Like upstream's pod cleanup queue, OnPodCompletion/OnPodSuccess (and labelling) act on pods as
    // soon as their node is complete, not only once the workflow is (completed phases GC in `finish`/`run`).
    if (!isWorkflowCompleted(phase)) this.podGC(phase === "" ? "Running" : phase)
    const nodes = this.nodes
    this.status.progress = updateProgress(nodes, this.limits.maxReconcileSteps)
    if (Object.keys(this.taskResultsCompletion).length > 0) this.status.taskResultsCompletionStatus = this.taskResultsCompletion
    if (this.globalOutputs.length > 0) this.status.outputs = { parameters: this.globalOutputs }
    const completed = isWorkflowCompleted(phase)
    const out: Mutable<EngineOutput> = {
      status: this.status,
      labels: {
        ...this.metadataLabels,
        [labelPhase]: phase === "" ? "Running" : phase,
        [labelCompleted]: completed ? "true" : "false"
      },
      actions: this.actions
    }
    if (this.requeueAt !== undefined) out.requeueAfterMs = Math.max(0, this.requeueAt - this.now)
    return this.pack(out)
  }

  /**
   * Keep the stored status within `limits.maxStatusBytes`, like upstream's
   * `packer.CompressWorkflowIfNeeded`: over the limit, `nodes` is written as
   * `compressedNodes` (gzip + base64 of its JSON); still over, the workflow
   * ends in Error with upstream's message, on the status as it was stored,
   * since this one cannot be (node status offload to a database is not
   * supported).
   */
  private pack(out: Mutable<EngineOutput>): EngineOutput {
    const status = this.status
    delete status.nodes
    delete status.compressedNodes
    const max = this.limits.maxStatusBytes
    const rest = JSON.stringify(status)
    const nodesJson = JSON.stringify(this.nodes)
    // The JSON of the status with `"nodes":<nodes>` as its last key.
    const size = Buffer.byteLength(rest) + Buffer.byteLength(nodesJson) + '"nodes":'.length + (rest === "{}" ? 0 : 1)
    if (size <= max) {
      status.nodes = this.nodes
      return out
    }
    const compressed = compressNodesJson(nodesJson)
    const compressedSize = Buffer.byteLength(rest) + compressed.length + '"compressedNodes":"",'.length + (rest === "{}" ? -1 : 0)
    if (compressedSize <= max) {
      status.compressedNodes = compressed
      return out
    }
    return workflowError(
      this.input,
      `workflow is longer than maximum allowed size. compressed size ${compressedSize} > maxSize ${max} (limits.maxStatusBytes). ` +
        "Tried to offload but encountered error: offload node status is not supported"
    )
  }

  private requeue(at: number): void {
    if (this.requeueAt === undefined || at < this.requeueAt) this.requeueAt = at
  }

  // ---------------------------------------------------------------- globals

  private setGlobals(startedMs: number): string | undefined {
    const meta = this.wf.metadata
    const g = this.globals
    g.set("workflow.name", meta.name)
    g.set("workflow.namespace", meta.namespace)
    g.set("workflow.uid", meta.uid ?? "")
    g.set("workflow.mainEntrypoint", this.wf.spec.entrypoint ?? "")
    g.set("workflow.serviceAccountName", this.wf.spec.serviceAccountName ?? "")
    g.set("workflow.creationTimestamp", meta.creationTimestamp ?? String(this.status.startedAt))
    g.set("workflow.priority", String(this.wf.spec.priority ?? 0))
    g.set("workflow.duration", String((this.now - startedMs) / 1000))
    g.set("workflow.status", String(this.status.phase ?? "Running"))
    for (const [k, v] of Object.entries(meta.labels ?? {})) g.set(`workflow.labels.${k}`, v)
    for (const [k, v] of Object.entries(meta.annotations ?? {})) g.set(`workflow.annotations.${k}`, v)
    for (const p of this.wf.spec.arguments?.parameters ?? []) {
      const raw = p.value ?? p.default ?? p.valueFrom?.default
      if (raw === undefined) {
        if (p.valueFrom !== undefined) return `spec.arguments.parameters.${p.name}: valueFrom is not supported`
        return `spec.arguments.parameters.${p.name}: a value is required`
      }
      // A value given to the workflow is data: passed on as written, never substituted (README, compatibility notes).
      const value = String(raw)
      if (p.enum !== undefined && p.enum.length > 0 && !p.enum.map(String).includes(value)) {
        return `spec.arguments.parameters.${p.name}: value '${value}' is not in the enum [${p.enum.join(" ")}]`
      }
      g.set(`workflow.parameters.${p.name}`, value)
    }
    // Both are `json.Marshal(spec.arguments.parameters)`: the parameters as written (Go field order, empty
    // fields omitted, values as strings). A parameter named `json` takes precedence over the second.
    const all = JSON.stringify((this.wf.spec.arguments?.parameters ?? []).map(marshalParameter))
    g.set("workflow.parameters", all)
    if (!g.has("workflow.parameters.json")) g.set("workflow.parameters.json", all)
    for (const p of this.globalOutputs) g.set(`workflow.outputs.parameters.${p.name}`, p.value ?? "")
    return undefined
  }

  /**
   * `updateWorkflowMetadata`, run once while the workflow's phase is still
   * unknown: `spec.workflowMetadata.labels` and the string results of the
   * `labelsFrom` expressions (evaluated over the global parameters) become
   * labels of the Workflow and `workflow.labels.<name>` variables.
   * (`workflowMetadata.annotations` would need the controller to write
   * annotations; the engine contract carries labels only.)
   */
  private updateWorkflowMetadata(): string | undefined {
    const md = this.wf.spec["workflowMetadata"] as
      | { labels?: Record<string, unknown>; labelsFrom?: Record<string, { expression?: unknown }> }
      | undefined
    if (md === undefined || md === null) return undefined
    const set = (name: string, value: string, what: string): string | undefined => {
      if (!isValidLabelValue(value)) return `invalid label value "${value}" for label "${name}"${what}`
      this.metadataLabels[name] = value
      this.globals.set(`workflow.labels.${name}`, value)
      return undefined
    }
    for (const [name, value] of Object.entries(md.labels ?? {})) {
      const e = set(name, String(value), "")
      if (e !== undefined) return e
    }
    for (const [name, from] of Object.entries(md.labelsFrom ?? {})) {
      const expression = String(from?.expression ?? "")
      const r = evaluate(expression, this.globals, this.limits.expression)
      if (!r.ok) return `failed to evaluate label "${name}" expression "${expression}": ${r.error.message}`
      if (typeof r.value !== "string") {
        return `failed to evaluate label "${name}" expression "${expression}" evaluted to ${typeof r.value} but must be a string`
      }
      const e = set(name, r.value, ` and expression "${expression}"`)
      if (e !== undefined) return e
    }
    return undefined
  }

  private failures(): ReadonlyArray<Record<string, unknown>> {
    return Object.values(this.nodes)
      .filter((n) => n.phase === "Failed" || n.phase === "Error")
      .map((n) => ({
        displayName: n.displayName,
        message: n.message ?? "",
        templateName: n.templateName ?? "",
        phase: n.phase,
        podName: makePodName(this.wf.metadata.name, n.name, n.templateName ?? "", n.id, this.podNameVersion()),
        finishedAt: n.finishedAt ?? null
      }))
  }

  private podNameVersion(): "v1" | "v2" {
    const a = this.wf.metadata.annotations?.[annotationPodNameFormat]
    return a === "v1" || a === "v2" ? a : this.config.podNameVersion
  }

  // ---------------------------------------------------------------- nodes

  private id(name: string): string {
    let id = this.ids.get(name)
    if (id === undefined) {
      id = makeNodeId(this.wf.metadata.name, name)
      this.ids.set(name, id)
    }
    return id
  }

  private byName(name: string): Node | undefined {
    return this.nodes[this.id(name)]
  }

  private initNode(
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
    if (opts.templateName !== undefined) node.templateName = opts.templateName
    if (opts.templateName !== undefined) node.templateScope = "local/"
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
    return node
  }

  /** The node of a template call, as first created: its boundary, flags and declared inputs. */
  private initCallNode(nodeName: string, type: NodeType, phase: NodePhase, tmpl: Template, opts: ExecOpts, retried: boolean): Node {
    return this.initNode(nodeName, type, phase, {
      boundaryId: opts.boundaryId,
      templateName: tmpl.name,
      hooked: opts.hooked,
      retried,
      inputs: tmpl.inputs?.parameters !== undefined ? { parameters: tmpl.inputs.parameters } : undefined
    })
  }

  /** The Steps or DAG node `nodeName`, created Running on first visit; undefined while parallelism holds it back. */
  private compositeNode(nodeName: string, type: "Steps" | "DAG", tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined {
    const existing = this.byName(nodeName)
    if (existing !== undefined) return existing
    if (!retried && this.parallelismBlocked(opts)) return undefined
    return this.initCallNode(nodeName, type, "Running", tmpl, opts, retried)
  }

  private markPhase(node: Node, phase: NodePhase, message?: string): Node {
    node.phase = phase
    if (message !== undefined) {
      if (message === "") delete node.message
      else node.message = message
    }
    if (isFulfilled(phase)) node.finishedAt ??= this.nowIso
    else delete node.finishedAt
    return node
  }

  private errorNode(name: string, message: string, opts: ExecOpts, templateName?: string): Node {
    const existing = this.byName(name)
    if (existing !== undefined) return this.markPhase(existing, "Error", message)
    return this.initNode(name, "Skipped", "Error", { boundaryId: opts.boundaryId, message, templateName, hooked: opts.hooked })
  }

  private addChild(parentName: string, childName: string): void {
    const parent = this.byName(parentName)
    if (parent === undefined) return
    const childId = this.id(childName)
    const known = getOrCreate(this.childSets, parent.id, () => new Set(parent.children))
    if (known.has(childId)) return
    known.add(childId)
    parent.children ??= []
    parent.children.push(childId)
  }

  private outboundNodes(id: string): Array<string> {
    this.spend()
    const node = this.nodes[id]
    if (node === undefined) return []
    switch (node.type) {
      case "Skipped":
      case "Suspend":
      case "HTTP":
      case "Plugin":
      case "Pod":
        return [node.id]
      case "TaskGroup":
      case "Container":
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

  // ---------------------------------------------------------------- templates

  /** The template with `templateDefaults` merged under it, merged once per reconcile. */
  private resolveTemplate(name: string): Template | undefined {
    if (this.resolvedTemplates.has(name)) return this.resolvedTemplates.get(name)
    const t = this.templates.get(name)
    const defaults = this.wf.spec.templateDefaults
    const resolved = t === undefined || defaults === undefined ? t : (mergeDefaults(defaults, t) as Template)
    this.resolvedTemplates.set(name, resolved)
    return resolved
  }

  private argMap(args: Arguments | undefined): ResolvedArgs {
    const m = new Map<string, string | undefined>()
    for (const p of args?.parameters ?? []) {
      if (p.value !== undefined) m.set(p.name, String(p.value))
    }
    return m
  }

  /** Bind arguments to inputs and substitute the template (`common.ProcessArgs`). */
  private processTemplate(tmpl: Template, args: ResolvedArgs, locals: ReadonlyMap<string, unknown>): Template | Failure {
    // Substitution walks the whole template: a DAG's or steps' size is its calls.
    this.spend(1 + (tmpl.dag?.tasks.length ?? 0) + (tmpl.steps?.length ?? 0))
    const scope = new Map<string, unknown>([...this.globals, ...locals])
    const inputs: Array<Parameter> = []
    for (const p of tmpl.inputs?.parameters ?? []) {
      let value: string | undefined = p.value !== undefined ? String(p.value) : p.default !== undefined ? String(p.default) : undefined
      const supplied = args.get(p.name)
      if (supplied !== undefined) value = supplied
      if (value === undefined) {
        return { error: `inputs.parameters.${p.name} was not supplied` }
      }
      // An argument is data, substituted where the caller wrote it; only the template's own value or default is substituted here.
      const s = supplied === undefined ? substitute(value, scope, true, this.limits.expression) : undefined
      if (s?.ok) value = s.value
      if (p.enum !== undefined && p.enum.length > 0 && !p.enum.map(String).includes(value)) {
        return { error: `inputs.parameters.${p.name}: value '${value}' is not in the enum [${p.enum.join(" ")}]` }
      }
      const { default: _d, enum: _e, ...rest } = p
      inputs.push({ ...rest, value })
      scope.set(`inputs.parameters.${p.name}`, value)
    }
    scope.set("inputs.parameters", JSON.stringify(inputs.map((p) => ({ name: p.name, value: p.value }))))
    const { inputs: _inputs, ...body } = tmpl
    const sub = substituteTemplate(body, scope, this.limits.expression)
    if (!sub.ok) return { error: sub.error.message }
    const out: Template = { ...sub.value, name: tmpl.name } as Template
    if (tmpl.inputs !== undefined) {
      return { ...out, inputs: { ...tmpl.inputs, parameters: tmpl.inputs.parameters === undefined ? undefined : inputs } }
    }
    return out
  }

  // ---------------------------------------------------------------- executeTemplate

  private executeTemplate(
    nodeName: string,
    call: { readonly template: string; readonly args: ResolvedArgs },
    opts: ExecOpts
  ): Node | undefined {
    const existing = this.byName(nodeName)
    if (existing !== undefined && isFulfilled(existing.phase)) return existing
    this.spend()
    if (this.depth + 1 >= this.limits.maxDepth) this.maxDepthExceeded(nodeName, call.template, opts)
    const tmpl = this.resolveTemplate(call.template)
    if (tmpl === undefined) return this.errorNode(nodeName, `template ${call.template} not found`, opts, call.template)

    const locals = new Map<string, unknown>([["node.name", nodeName]])
    if (opts.callKind === "task" && opts.callName !== undefined) locals.set("tasks.name", opts.callName)
    if (opts.callKind === "step" && opts.callName !== undefined) locals.set("steps.name", opts.callName)
    const isPod = tmpl.container !== undefined || tmpl.script !== undefined
    if (isPod && tmpl.retryStrategy === undefined) {
      locals.set("pod.name", makePodName(this.wf.metadata.name, nodeName, tmpl.name, this.id(nodeName), this.podNameVersion()))
    }
    const processed = this.processTemplate(tmpl, call.args, locals)
    if (isFailure(processed)) return this.errorNode(nodeName, processed.error, opts, tmpl.name)

    this.depth++
    try {
      if (processed.retryStrategy !== undefined) return this.executeWithRetries(nodeName, tmpl, processed, call, opts)
      return this.executeBody(nodeName, processed, opts, false)
    } finally {
      this.depth--
    }
  }

  /**
   * Upstream's `ErrMaxDepthExceeded` (`currentStackDepth >= maxStackDepth`,
   * counting the entrypoint as 1): the node errors with its message. Upstream
   * then carries on with the node's siblings; here the workflow ends in Error
   * at once, because a template that calls itself more than once per level
   * would otherwise grow exponentially below the bound within one reconcile.
   */
  private maxDepthExceeded(nodeName: string, template: string, opts: ExecOpts): never {
    const message = `Maximum recursion depth exceeded: template "${template}" at depth ${this.depth + 1} reaches ` +
      `limits.maxDepth (${this.limits.maxDepth}). See https://argo-workflows.readthedocs.io/en/latest/scaling/#maximum-recursion-depth`
    this.errorNode(nodeName, message, opts, template)
    throw new LimitExceeded(message)
  }

  private executeBody(nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined {
    switch (templateTypeOf(tmpl)) {
      case "Container":
      case "Script":
        return this.executePod(nodeName, tmpl, opts, retried)
      case "Steps":
        return this.executeSteps(nodeName, tmpl, opts, retried)
      case "DAG":
        return this.executeDag(nodeName, tmpl, opts, retried)
      case "Suspend":
        return this.executeSuspend(nodeName, tmpl, opts)
      default:
        return this.errorNode(nodeName, `template '${tmpl.name}' of type ${templateTypeOf(tmpl) ?? "unknown"} is not supported`, opts, tmpl.name)
    }
  }

  /**
   * `executeSuspend`: the node waits (Running) until resumed; with
   * `suspend.duration` (seconds, or a Go duration) it resumes by itself once
   * that long has passed since it started, its output parameters taking
   * their `valueFrom.default`, as upstream's `OverrideOutputParametersWithDefault`.
   * A duration that does not parse errors the node rather than waiting for ever.
   */
  private executeSuspend(nodeName: string, tmpl: Template, opts: ExecOpts): Node {
    const node = this.byName(nodeName) ??
      this.initNode(nodeName, "Suspend", "Running", { boundaryId: opts.boundaryId, templateName: tmpl.name, hooked: opts.hooked })
    if (isFulfilled(node.phase)) return node
    const suspend = (tmpl.suspend ?? {}) as { duration?: unknown }
    const duration = suspend.duration
    if (duration === undefined || duration === null || duration === "") return node
    const ms = typeof duration === "string" || typeof duration === "number" ? parseDurationMs(duration) : undefined
    if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
      return this.markPhase(node, "Error", `suspend.duration: invalid duration ${JSON.stringify(duration)}`)
    }
    const resumeAt = Date.parse(node.startedAt ?? this.nowIso) + ms
    if (this.now < resumeAt) {
      this.requeue(resumeAt)
      return node
    }
    const declared = tmpl.outputs?.parameters ?? []
    if (declared.length > 0) {
      const parameters = declared.map((p) => {
        const fallback = (p.valueFrom as { default?: unknown } | undefined)?.default ?? p.value
        return fallback === undefined ? { name: p.name } : { name: p.name, value: String(fallback) }
      })
      node.outputs = { ...(node.outputs ?? {}), parameters }
    }
    return this.markPhase(node, "Succeeded", "")
  }

  // ---------------------------------------------------------------- retries

  private executeWithRetries(
    nodeName: string,
    rawTmpl: Template,
    processed: Template,
    call: { readonly template: string; readonly args: ResolvedArgs },
    opts: ExecOpts
  ): Node | undefined {
    const rs = processed.retryStrategy as RetryStrategy
    let retryNode = this.byName(nodeName)
    if (retryNode === undefined) {
      if (this.parallelismBlocked(opts)) return undefined
      retryNode = this.initNode(nodeName, "Retry", "Running", {
        boundaryId: opts.boundaryId,
        templateName: rawTmpl.name,
        hooked: opts.hooked,
        inputs: processed.inputs?.parameters !== undefined ? { parameters: processed.inputs.parameters } : undefined
      })
    }
    const decision = this.processRetries(retryNode, rs)
    if (decision === "done" || decision === "wait") return retryNode

    const attempts = this.retryAttempts(retryNode)
    const last = attempts[attempts.length - 1]
    let childName: string
    let retryNum: number
    if (last !== undefined && !isFulfilled(last.phase)) {
      childName = last.name
      retryNum = attempts.length - 1
    } else {
      retryNum = attempts.length
      childName = `${nodeName}(${retryNum})`
    }
    const locals = new Map<string, unknown>([
      ["node.name", childName],
      ["retries", String(retryNum)],
      ["lastRetry.exitCode", last?.outputs?.exitCode ?? "0"],
      ["lastRetry.status", last?.phase ?? ""],
      ["lastRetry.duration", last === undefined ? "0" : String(durationSeconds(last))],
      ["lastRetry.message", last?.message ?? ""]
    ])
    if (opts.callKind === "task" && opts.callName !== undefined) locals.set("tasks.name", opts.callName)
    if (opts.callKind === "step" && opts.callName !== undefined) locals.set("steps.name", opts.callName)
    if (rawTmpl.container !== undefined || rawTmpl.script !== undefined) {
      locals.set("pod.name", makePodName(this.wf.metadata.name, childName, rawTmpl.name, this.id(childName), this.podNameVersion()))
    }
    const again = this.processTemplate(rawTmpl, call.args, locals)
    if (isFailure(again)) return this.markPhase(retryNode, "Error", again.error)
    const { retryStrategy: _rs, ...attemptTmpl } = again
    const child = this.executeBody(childName, attemptTmpl as Template, { ...opts, hooked: false }, true)
    if (child === undefined) return retryNode
    this.addChild(nodeName, childName)
    if (isFulfilled(child.phase)) this.processRetries(retryNode, rs)
    return retryNode
  }

  private retryAttempts(retryNode: Node): Array<Node> {
    return (retryNode.children ?? [])
      .map((c) => this.nodes[c])
      .filter((n): n is Node => n !== undefined && n.nodeFlag?.hooked !== true)
  }

  /** `processNodeRetries`: "done" (retry node fulfilled), "wait" (backoff) or "continue". */
  private processRetries(node: Node, rs: RetryStrategy): "done" | "wait" | "continue" {
    if (isFulfilled(node.phase)) return "done"
    const attempts = this.retryAttempts(node)
    const last = attempts[attempts.length - 1]
    if (last === undefined || !isFulfilled(last.phase)) return "continue"
    if (!isFailedOrError(last.phase)) {
      if (last.outputs !== undefined) node.outputs = structuredClone(last.outputs)
      else delete node.outputs
      this.markPhase(node, last.phase === "Skipped" ? "Skipped" : "Succeeded", "")
      return "done"
    }
    if (this.workflowDeadline !== undefined && this.now >= this.workflowDeadline) {
      this.markPhase(node, last.phase, `retry exceeded workflow deadline ${isoSeconds(this.workflowDeadline)}`)
      return "done"
    }
    const limit = rs.limit === undefined ? undefined : Number(rs.limit)
    if (rs.backoff !== undefined) {
      let maxDeadline: number | undefined
      const maxDuration = parseDurationMs(rs.backoff.maxDuration)
      if (maxDuration !== undefined && attempts.length > 0) {
        maxDeadline = Date.parse(attempts[0].startedAt ?? this.nowIso) + maxDuration
        if (this.now > maxDeadline) {
          this.markPhase(node, last.phase, "Max duration limit exceeded")
          return "done"
        }
      }
      const base = parseDurationMs(rs.backoff.duration)
      if (base === undefined) {
        this.markPhase(node, "Error", "no base duration specified for retryStrategy")
        return "done"
      }
      let wait = base
      const factor = rs.backoff.factor === undefined ? undefined : Number(rs.backoff.factor)
      if (factor !== undefined && factor > 0) wait = base * Math.pow(factor, attempts.length - 1)
      const cap = parseDurationMs(rs.backoff.cap)
      if (cap !== undefined && wait > cap) wait = cap
      const waitUntil = Date.parse(last.finishedAt ?? this.nowIso) + wait
      if (maxDeadline !== undefined && waitUntil > maxDeadline) {
        this.markPhase(node, last.phase, "Backoff would exceed max duration limit")
        return "done"
      }
      if (this.now < waitUntil && limit !== undefined && attempts.length <= limit) {
        this.requeue(waitUntil)
        this.markPhase(node, node.phase, `Backoff for ${humanizeMs(wait)}`)
        return "wait"
      }
      this.markPhase(node, node.phase, "")
    }
    const policy = rs.retryPolicy ?? "OnFailure"
    let onFailed = false
    let onError = false
    if (policy === "Always") onFailed = onError = true
    else if (policy === "OnError") onError = true
    else if (policy === "OnFailure") onFailed = true
    else if (policy === "OnTransientError" && isTransient(last.message ?? "")) onFailed = onError = true
    if ((last.phase === "Failed" && !onFailed) || (last.phase === "Error" && !onError)) {
      this.markPhase(node, last.phase, last.message ?? "")
      return "done"
    }
    if (limit !== undefined && attempts.length > limit) {
      this.markPhase(node, last.phase, "No more retries left")
      return "done"
    }
    if (rs.expression !== undefined && rs.expression !== "") {
      const scope = new Map<string, unknown>([
        ...this.globals,
        ["retries", String(attempts.length - 1)],
        ["lastRetry.exitCode", last.outputs?.exitCode ?? "-1"],
        ["lastRetry.status", last.phase],
        ["lastRetry.duration", String(durationSeconds(last))],
        ["lastRetry.message", last.message ?? ""]
      ])
      const r = evaluate(rs.expression, scope, this.limits.expression)
      if (!r.ok) {
        this.markPhase(node, "Error", r.error.message)
        return "done"
      }
      if (r.value !== true && r.value !== "true") {
        this.markPhase(node, last.phase, "retryStrategy.expression evaluated to false")
        return "done"
      }
    }
    return "continue"
  }

  // ---------------------------------------------------------------- parallelism

  private parallelismBlocked(opts: ExecOpts): boolean {
    if (opts.boundaryId === undefined) return false
    const boundary = this.nodes[opts.boundaryId]
    const bt = boundary?.templateName === undefined ? undefined : this.resolveTemplate(boundary.templateName)
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

  // ---------------------------------------------------------------- pods

  private executePod(nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined {
    let node = this.byName(nodeName)
    const id = this.id(nodeName)
    if (node === undefined) {
      if (this.workflowDeadline !== undefined && this.now >= this.workflowDeadline && !opts.onExit) {
        return this.initNode(nodeName, "Pod", "Failed", {
          boundaryId: opts.boundaryId,
          templateName: tmpl.name,
          message: "Step exceeded its deadline",
          hooked: opts.hooked,
          retried
        })
      }
      const wfLimit = this.wf.spec.parallelism
      if (typeof wfLimit === "number" && this.activePods >= wfLimit) return undefined
      if (!retried && this.parallelismBlocked(opts)) return undefined
      node = this.initCallNode(nodeName, "Pod", "Pending", tmpl, opts, retried)
      this.activePods++
      if (this.expectsTaskResult(nodeName, tmpl, opts)) this.taskResultsCompletion[id] = false
      const obs = this.input.pods.get(id)
      if (obs !== undefined) this.assessPod(node, obs)
    }
    if (isFulfilled(node.phase)) return node

    // Template timeout: a pod still pending past its deadline fails.
    const timeoutMs = parseDurationMs(tmpl.timeout)
    if (timeoutMs !== undefined) {
      const deadline = Date.parse(node.startedAt ?? this.nowIso) + timeoutMs
      if (node.phase === "Pending" && this.now > deadline) {
        this.deletePodOf(node)
        return this.markPhase(node, "Failed", "timeout")
      }
      if (this.now < deadline) this.requeue(deadline)
    }

    const obs = this.input.pods.get(id)
    if (obs === undefined && node.phase === "Pending") this.createPod(node, tmpl, opts)
    return node
  }

  private expectsTaskResult(nodeName: string, tmpl: Template, opts: ExecOpts): boolean {
    return (tmpl.outputs?.parameters ?? []).length > 0 || tmpl.script !== undefined || this.includeScriptOutput(nodeName, opts)
  }

  /**
   * `woc.includeScriptOutput`: stdout becomes `outputs.result` only when the
   * template of the enclosing boundary (the steps/DAG that called this node)
   * references `steps.<name>.outputs.result` / `tasks.<name>.outputs.result`
   * (or the `['<name>']` form) — for script and container templates alike. A
   * node with no boundary (the entrypoint itself) never includes it.
   */
  private includeScriptOutput(nodeName: string, opts: ExecOpts): boolean {
    if (opts.boundaryId === undefined || opts.parentTemplate === undefined) return false
    return resultReferences(opts.parentTemplate).has(stepOrTaskName(nodeName))
  }

  private createPod(node: Node, tmpl: Template, opts: ExecOpts): void {
    const target = resolveTarget(tmpl, this.wf, this.config.localCluster, opts.placement)
    // An invalid cluster or namespace (after substitution) fails the node: no pod is ever requested there.
    if (isInvalidTarget(target)) return void this.markPhase(node, "Error", target.message)
    const name = makePodName(this.wf.metadata.name, node.name, tmpl.name, node.id, this.podNameVersion())
    let activeDeadlineSeconds: number | undefined
    const tmplAds = tmpl.activeDeadlineSeconds === undefined ? undefined : Number(tmpl.activeDeadlineSeconds)
    const timeoutMs = parseDurationMs(tmpl.timeout)
    if (tmplAds !== undefined && Number.isFinite(tmplAds)) activeDeadlineSeconds = tmplAds
    if (timeoutMs !== undefined) activeDeadlineSeconds = Math.min(activeDeadlineSeconds ?? Infinity, Math.ceil(timeoutMs / 1000))
    if (this.workflowDeadline !== undefined && !opts.onExit) {
      const remaining = Math.floor((this.workflowDeadline - this.now) / 1000)
      activeDeadlineSeconds = Math.min(activeDeadlineSeconds ?? Infinity, remaining)
    }
    const podGC = this.wf.spec.podGC
    // spec.podSpecPatch gets the workflow's global variables, as upstream substitutes the spec.
    const wfPatch = this.wf.spec.podSpecPatch
    let workflowPodSpecPatch: string | undefined
    if (typeof wfPatch === "string" && wfPatch.includes("{{")) {
      const r = substitute(wfPatch, this.globals, false, this.limits.expression)
      if (!r.ok) return void this.markPhase(node, "Error", `spec.podSpecPatch: ${r.error.message}`)
      workflowPodSpecPatch = r.value
    }
    let pod: KubeObject
    try {
      pod = buildPod({
        workflow: this.wf,
        config: this.config,
        nodeId: node.id,
        nodeName: node.name,
        podName: name,
        template: tmpl,
        target,
        onExit: opts.onExit,
        includeScriptOutput: this.includeScriptOutput(node.name, opts),
        activeDeadlineSeconds,
        podGCAnnotation: podGC === undefined ? undefined : `${podGC.strategy || "OnPodNone"}/${podGC.deleteDelayDuration ?? "0s"}`,
        deadline: this.workflowDeadline === undefined ? undefined : isoSeconds(this.workflowDeadline),
        ...(workflowPodSpecPatch !== undefined ? { workflowPodSpecPatch } : {})
      })
    } catch (e) {
      if (e instanceof PodSpecPatchError) return void this.markPhase(node, "Error", e.message)
      throw e
    }
    this.actions.push({ _tag: "CreatePod", nodeId: node.id, cluster: target.cluster, namespace: target.namespace, pod })
  }

  private deletePodOf(node: Node): void {
    const obs = this.input.pods.get(node.id)
    if (obs === undefined) return
    this.actions.push({ _tag: "DeletePod", nodeId: node.id, cluster: obs.cluster, namespace: obs.namespace, podName: obs.podName })
  }

  /** Fold every observed pod into its node before executing (`podReconciliation`). */
  private reconcilePods(): void {
    for (const id in this.nodes) {
      this.spend()
      const node = this.nodes[id]
      if (node.type !== "Pod") continue
      const obs = this.input.pods.get(node.id)
      if (isFulfilled(node.phase)) continue
      if (obs !== undefined) this.assessPod(node, obs)
      else if (node.phase === "Running") this.markPhase(node, "Error", "pod deleted")
    }
  }

  private assessPod(node: Node, obs: PodObservation): void {
    if (isFulfilled(node.phase)) return
    if (obs.hostNodeName !== undefined) node.hostNodeName = obs.hostNodeName
    if (obs.podIP !== undefined) node.podIP = obs.podIP
    if (obs.exitCode !== undefined) node.outputs = { ...(node.outputs ?? {}), exitCode: String(obs.exitCode) }
    const tr = this.input.taskResults.get(node.id)
    if (tr !== undefined) {
      const outs: Mutable<NodeOutputs> = { ...(node.outputs ?? {}) }
      if (tr.outputs?.parameters !== undefined) outs.parameters = tr.outputs.parameters.map((p) => ({ ...p }))
      if (tr.outputs?.result !== undefined) outs.result = tr.outputs.result
      if (tr.outputs?.artifacts !== undefined) outs.artifacts = tr.outputs.artifacts
      if (tr.outputs?.exitCode !== undefined && outs.exitCode === undefined) outs.exitCode = tr.outputs.exitCode
      if (Object.keys(outs).length > 0) node.outputs = outs
      if (tr.progress !== undefined) node.progress = tr.progress
      if (tr.completed && node.id in this.taskResultsCompletion) this.taskResultsCompletion[node.id] = true
    }
    const synced = this.taskResultsCompletion[node.id] !== false
    if (obs.deleted === true && !terminalPodPhases.has(obs.phase)) {
      this.markPhase(node, "Error", "pod deleted")
      node.finishedAt = obs.finishedAt ?? this.nowIso
      return
    }
    switch (obs.phase) {
      case "Pending":
        this.markPhase(node, "Pending", obs.message ?? obs.reason ?? "")
        break
      case "Running":
        this.markPhase(node, "Running", "")
        break
      case "Succeeded":
        if (!synced) {
          // Outputs are reported by the wait container; complete once they are in.
          this.markPhase(node, "Running", "")
          break
        }
        this.markPhase(node, "Succeeded", "")
        node.finishedAt = obs.finishedAt ?? this.nowIso
        break
      case "Failed": {
        const message = obs.message !== undefined && obs.message !== ""
          ? obs.message
          : obs.exitCode !== undefined
          ? `Error (exit code ${obs.exitCode})`
          : obs.reason ?? "pod failed"
        const phase: NodePhase = obs.exitCode === undefined && obs.reason !== undefined && obs.reason !== "DeadlineExceeded" &&
            obs.reason !== "Evicted"
          ? "Error"
          : "Failed"
        this.markPhase(node, phase, message)
        node.finishedAt = obs.finishedAt ?? this.nowIso
        if (this.taskResultsCompletion[node.id] === false) this.taskResultsCompletion[node.id] = true
        break
      }
      default:
        break
    }
  }

  private failAfterDeadline(): void {
    for (const node of Object.values(this.nodes)) {
      if (node.type !== "Pod" || isFulfilled(node.phase) || node.nodeFlag?.hooked === true) continue
      this.deletePodOf(node)
      this.markPhase(node, "Failed", "Step exceeded its deadline")
    }
  }

  // ---------------------------------------------------------------- scope of steps / tasks

  private addNodeToScope(scope: Map<string, unknown>, prefix: "steps" | "tasks", name: string, node: Node): void {
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
    if ((node.phase === "Skipped" || node.phase === "Omitted") && node.templateName !== undefined) {
      // A skipped producer's declared output defaults stand in for its outputs.
      for (const p of this.resolveTemplate(node.templateName)?.outputs?.parameters ?? []) {
        const key = `${k}.outputs.parameters.${p.name}`
        // Without a default the output is an absent optional (nil), so `??` can pick a fallback.
        if (!scope.has(key)) scope.set(key, p.valueFrom?.default !== undefined ? String(p.valueFrom.default) : null)
      }
    }
  }

  private addAggregateToScope(scope: Map<string, unknown>, prefix: "steps" | "tasks", name: string, children: ReadonlyArray<Node>): void {
    this.spend(children.length)
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

  /** Resolve a call's arguments against the scope; unresolvable parameters become `undefined`. */
  private resolveArgs(call: TemplateCall, scope: Scope): ResolvedArgs | Failure {
    const out = new Map<string, string | undefined>()
    let firstError: string | undefined
    for (const p of call.arguments?.parameters ?? []) {
      if (p.value === undefined) {
        if (p.valueFrom !== undefined) return { error: `arguments.parameters.${p.name}: valueFrom is not supported in arguments` }
        continue
      }
      const r = substitute(String(p.value), scope, false, this.limits.expression)
      if (r.ok) out.set(p.name, r.value)
      else {
        out.set(p.name, undefined)
        firstError ??= r.error.message
      }
    }
    // Unresolved arguments fall back to the callee's input defaults; without one they are an error.
    const callee = call.template === undefined ? undefined : this.resolveTemplate(call.template)
    for (const [name, v] of out) {
      if (v !== undefined) continue
      const input = callee?.inputs?.parameters?.find((ip) => ip.name === name)
      if (input?.default === undefined && input?.value === undefined) return { error: firstError ?? `failed to resolve arguments.parameters.${name}` }
    }
    return out
  }

  /** Evaluate a `when` against the scope: true, false, or an error message. */
  private shouldExecute(when: string | undefined, scope: Scope): boolean | Failure {
    if (when === undefined || when.trim() === "") return true
    const r = evaluateWhen(when, scope, this.limits.expression)
    if (!r.ok) return { error: r.error.message }
    return r.value
  }

  private templateOutputs(tmpl: Template, scope: Scope): NodeOutputs | Failure | undefined {
    const params = tmpl.outputs?.parameters
    if (params === undefined || params.length === 0) return undefined
    const out: Array<Parameter> = []
    for (const p of params) {
      const vf = p.valueFrom
      let value: string | undefined
      if (vf?.parameter !== undefined) {
        const r = substitute(vf.parameter, scope, false, this.limits.expression)
        if (r.ok) value = r.value
        else if (vf.default === undefined) return { error: r.error.message }
      } else if (vf?.expression !== undefined) {
        const r = evaluate(vf.expression, scope, this.limits.expression)
        if (r.ok && r.value !== undefined && r.value !== null) value = typeof r.value === "string" ? r.value : JSON.stringify(r.value)
        else if (vf.default === undefined) return { error: r.ok ? `expression '${vf.expression}' evaluated to nil` : r.error.message }
      } else if (p.value !== undefined) {
        const r = substitute(String(p.value), scope, true, this.limits.expression)
        value = r.ok ? r.value : String(p.value)
      }
      if (value === undefined) value = vf?.default
      out.push({ name: p.name, ...(value !== undefined ? { value } : {}), ...(p.globalName ? { globalName: p.globalName } : {}) })
    }
    return { parameters: out }
  }

  /** A Steps/DAG node whose children all succeeded: Succeeded with the template's outputs, or Error when they cannot be resolved. */
  private succeedWithOutputs(node: Node, tmpl: Template, scope: Scope): Node {
    const outputs = this.templateOutputs(tmpl, scope)
    if (isFailure(outputs)) return this.markPhase(node, "Error", outputs.error)
    if (outputs !== undefined) {
      node.outputs = outputs
      this.exportGlobals(outputs)
    }
    return this.markPhase(node, "Succeeded")
  }

  private exportGlobals(outputs: NodeOutputs | undefined): void {
    for (const p of outputs?.parameters ?? []) {
      if (p.globalName === undefined || p.value === undefined) continue
      this.globals.set(`workflow.outputs.parameters.${p.globalName}`, p.value)
      const i = this.globalOutputs.findIndex((g) => g.name === p.globalName)
      const entry = { name: p.globalName, value: p.value }
      if (i >= 0) this.globalOutputs[i] = entry
      else this.globalOutputs.push(entry)
    }
  }

  private stepScope(): Map<string, unknown> {
    return new Map(this.globals)
  }

  private childNodes(node: Node): Array<Node> {
    this.spend((node.children ?? []).length)
    return (node.children ?? []).map((c) => this.nodes[c]).filter((n) => n !== undefined)
  }

  // ---------------------------------------------------------------- exit hooks of steps / tasks

  /**
   * Run `<node>.onExit` for a completed step/task; true when the hook (if any) is fulfilled.
   * `scope` may be given as a function: building a task's scope costs its ancestry, and most tasks have no hook.
   */
  private runOnExit(
    parent: Node,
    call: TemplateCall,
    boundaryId: string,
    placement: Placement,
    prefix: "steps" | "tasks",
    scope: Scope | (() => Scope)
  ): boolean {
    const hook = call.onExit !== undefined ? { template: call.onExit, arguments: undefined } : call.hooks?.exit
    if (hook?.template === undefined) return true
    const local = new Map(typeof scope === "function" ? scope() : scope)
    this.addNodeToScope(local, prefix, call.name, parent)
    const args = this.resolveArgs({ name: call.name, template: hook.template, arguments: hook.arguments }, local)
    const name = `${parent.name}.onExit`
    const node = isFailure(args)
      ? this.errorNode(name, args.error, { boundaryId, onExit: true, hooked: true })
      : this.executeTemplate(name, { template: hook.template, args }, { boundaryId, onExit: true, hooked: true, placement })
    if (node !== undefined) this.addChild(parent.name, name)
    return node !== undefined && isFulfilled(node.phase)
  }

  // ---------------------------------------------------------------- steps

  private executeSteps(nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined {
    const node = this.compositeNode(nodeName, "Steps", tmpl, opts, retried)
    if (node === undefined) return undefined
    const placement = inheritPlacement(tmpl, opts.placement)
    const scope = this.stepScope()
    const groups = tmpl.steps ?? []
    for (let i = 0; i < groups.length; i++) {
      this.spend()
      const sgName = `${nodeName}[${i}]`
      let sg = this.byName(sgName)
      if (sg === undefined) {
        sg = this.initNode(sgName, "StepGroup", "Running", { boundaryId: node.id, templateName: tmpl.name })
        if (i === 0) this.addChild(nodeName, sgName)
        else {
          const prev = this.byName(`${nodeName}[${i - 1}]`)
          if (prev !== undefined) {
            if ((prev.children ?? []).length === 0) this.addChild(prev.name, sgName)
            else {
              for (const c of prev.children ?? []) {
                for (const o of this.outboundNodes(c)) {
                  const on = this.nodes[o]
                  if (on !== undefined) this.addChild(on.name, sgName)
                }
              }
            }
          }
        }
      }
      const group = this.executeStepGroup(groups[i], sg, node.id, scope, placement, tmpl, opts.onExit)
      if (!isFulfilled(group.phase)) return node
      if (isFailedOrError(group.phase)) {
        this.updateStepsOutbound(node, groups.length)
        return this.markPhase(node, "Failed", group.message ?? "")
      }
      // Outputs of every step of the group become visible to later groups.
      for (const step of groups[i]) {
        const childName = `${sgName}.${step.name}`
        const child = this.byName(childName)
        if (child !== undefined) {
          this.addNodeToScope(scope, "steps", step.name, child)
        } else {
          // A loop's items are children of the step group.
          const expanded = this.childNodes(sg).filter((n) =>
            n.boundaryID === node.id && n.name.startsWith(`${childName}(`) && n.type !== "Skipped"
          )
          if (expanded.length > 0) this.addAggregateToScope(scope, "steps", step.name, expanded)
          this.addNodeToScope(scope, "steps", step.name, group)
        }
      }
    }
    this.updateStepsOutbound(node, groups.length)
    return this.succeedWithOutputs(node, tmpl, scope)
  }

  private updateStepsOutbound(node: Node, groupCount: number): void {
    for (let i = groupCount - 1; i >= 0; i--) {
      const sg = this.byName(`${node.name}[${i}]`)
      if (sg === undefined) continue
      node.outboundNodes = (sg.children ?? []).flatMap((c) => this.outboundNodes(c))
      return
    }
  }

  private executeStepGroup(
    steps: ReadonlyArray<TemplateCall>,
    sg: Node,
    boundaryId: string,
    scope: Map<string, unknown>,
    placement: Placement,
    parentTemplate: Template,
    onExit: boolean
  ): Node {
    if (isFulfilled(sg.phase)) return sg
    // Expand loops into concrete steps.
    const expanded: Array<{ step: TemplateCall; vars: ReadonlyMap<string, unknown>; origin: TemplateCall }> = []
    for (const step of steps) {
      if (!isLoop(step)) {
        expanded.push({ step, vars: new Map(), origin: step })
        continue
      }
      const loop = expandLoop(step, scope, this.limits.maxLoopItems, this.limits.expression)
      if (!loop.ok) return this.markPhase(sg, "Error", loop.error)
      this.spend(loop.items.length)
      for (const it of loop.items) expanded.push({ step: { ...step, name: it.name }, vars: it.vars, origin: step })
    }
    const stepOf = new Map<string, TemplateCall>()
    for (const { step, vars, origin } of expanded) {
      this.spend()
      const childName = `${sg.name}.${step.name}`
      stepOf.set(this.id(childName), origin)
      const existing = this.byName(childName)
      if (existing !== undefined && isFulfilled(existing.phase)) {
        this.addChild(sg.name, childName)
        continue
      }
      const local = vars.size === 0 ? scope : new LayeredScope(scope, vars)
      const proceed = this.shouldExecute(step.when, local)
      if (isFailure(proceed)) {
        this.errorNode(childName, proceed.error, { boundaryId, onExit })
        this.addChild(sg.name, childName)
        return this.markPhase(sg, "Error", proceed.error)
      }
      if (!proceed) {
        if (existing === undefined) {
          this.initNode(childName, "Skipped", "Skipped", {
            boundaryId,
            templateName: step.template,
            message: `when '${substituteForMessage(step.when ?? "", local, this.limits.expression)}' evaluated false`
          })
          this.addChild(sg.name, childName)
        }
        continue
      }
      const args = this.resolveArgs(step, local)
      if (isFailure(args)) {
        this.errorNode(childName, args.error, { boundaryId, onExit }, step.template)
        this.addChild(sg.name, childName)
        continue
      }
      const child = this.executeTemplate(childName, { template: step.template ?? "", args }, {
        boundaryId,
        onExit,
        placement,
        callName: origin.name,
        callKind: "step",
        parentTemplate
      })
      if (child !== undefined) this.addChild(sg.name, childName)
    }

    // Complete when all children (and their exit hooks) are fulfilled.
    let completed = true
    for (const cid of sg.children ?? []) {
      const child = this.nodes[cid]
      if (child === undefined) continue
      if (!isFulfilled(child.phase)) completed = false
      else {
        const step = stepOf.get(cid)
        if (step !== undefined && !this.runOnExit(child, { ...step, name: child.displayName }, boundaryId, placement, "steps", scope)) {
          completed = false
        }
      }
    }
    if (expanded.length > (sg.children ?? []).length) completed = false
    if (!completed) return sg
    for (const cid of sg.children ?? []) {
      const child = this.nodes[cid]
      if (child === undefined) continue
      const step = stepOf.get(cid)
      if (isFailedOrError(child.phase) && !continues(step, child.phase)) {
        return this.markPhase(sg, "Failed", `child '${cid}' failed`)
      }
    }
    return this.markPhase(sg, "Succeeded")
  }

  // ---------------------------------------------------------------- DAG

  private executeDag(nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined {
    const node = this.compositeNode(nodeName, "DAG", tmpl, opts, retried)
    if (node === undefined) return undefined
    const dag = tmpl.dag!
    const tasks = new Map(dag.tasks.map((t) => [t.name, t] as const))
    const ctx: DagCtx = {
      node,
      tmpl,
      tasks,
      visited: new Set(),
      entries: new Map(),
      placement: inheritPlacement(tmpl, opts.placement),
      onExit: opts.onExit
    }
    let targets: ReadonlyArray<string>
    if (dag.target !== undefined && dag.target.trim() !== "") {
      const t = substitute(dag.target, this.globals, false, this.limits.expression)
      targets = (t.ok ? t.value : dag.target).split(" ").filter((x) => x !== "")
      const unknown = targets.find((x) => !tasks.has(x))
      if (unknown !== undefined) return this.markPhase(node, "Error", `target '${unknown}' is not a task of the DAG`)
    } else {
      const depended = new Set(dag.tasks.flatMap((t) => taskDependencies(t)))
      targets = dag.tasks.filter((t) => !depended.has(t.name)).map((t) => t.name)
    }
    for (const t of targets) this.executeDagTask(ctx, t)

    const phase = this.assessDag(ctx, targets)
    if (phase === "Running") return node
    node.outboundNodes = targets.flatMap((t) => {
      const tn = this.byName(`${nodeName}.${t}`)
      return tn === undefined ? [] : this.outboundNodes(tn.id)
    })
    if (phase !== "Succeeded") return this.markPhase(node, phase)
    const scope = this.stepScope()
    for (const task of dag.tasks) {
      const tn = this.byName(`${nodeName}.${task.name}`)
      if (tn === undefined) continue
      if (tn.type === "TaskGroup") this.addAggregateToScope(scope, "tasks", task.name, this.childNodes(tn))
      this.addNodeToScope(scope, "tasks", task.name, tn)
    }
    return this.succeedWithOutputs(node, tmpl, scope)
  }

  private taskNode(ctx: DagCtx, name: string): Node | undefined {
    return this.byName(`${ctx.node.name}.${name}`)
  }

  /** `buildLocalScopeFromTask`: the globals and every ancestor of the task (`GetTaskAncestry`), resolved on demand. */
  private taskScope(ctx: DagCtx, task: DagTask): Scope {
    return new TaskScope(
      this.stepScope(),
      taskDependencies(task),
      (name) => {
        this.spend()
        const t = ctx.tasks.get(name)
        return t === undefined ? [] : taskDependencies(t)
      },
      (name) => this.taskEntries(ctx, name),
      (name) => ctx.tasks.has(name)
    )
  }

  /**
   * The `tasks.<name>.*` entries of one task, built once per DAG visit: a task is
   * asked for only by its descendants, which run after it, so its node is final.
   */
  private taskEntries(ctx: DagCtx, name: string): Scope | undefined {
    const known = ctx.entries.get(name)
    if (known !== undefined) return known ?? undefined
    const dn = this.taskNode(ctx, name)
    let entries: Map<string, unknown> | undefined
    if (dn !== undefined) {
      entries = new Map()
      // A loop's items are children of its task group.
      if (dn.type === "TaskGroup") this.addAggregateToScope(entries, "tasks", name, this.childNodes(dn))
      this.addNodeToScope(entries, "tasks", name, dn)
    }
    ctx.entries.set(name, entries ?? null)
    return entries
  }

  /**
   * Execute a DAG task after its dependencies, each task once per reconcile
   * (`ctx.visited`), depth first like upstream's recursive `executeDAGTask`,
   * but on an explicit stack: a chain of thousands of tasks is data, not
   * call depth.
   */
  private executeDagTask(ctx: DagCtx, target: string): void {
    const stack: Array<{ readonly name: string; depsDone: boolean }> = [{ name: target, depsDone: false }]
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]
      if (!frame.depsDone) {
        if (ctx.visited.has(frame.name)) {
          stack.pop()
          continue
        }
        ctx.visited.add(frame.name)
        this.spend()
        const task = ctx.tasks.get(frame.name)
        const node = this.taskNode(ctx, frame.name)
        const deps = task === undefined ? [] : taskDependencies(task)
        if (deps.length > 0 && (node === undefined || (!isFulfilled(node.phase) && node.type !== "TaskGroup"))) {
          frame.depsDone = true
          for (let i = deps.length - 1; i >= 0; i--) if (!ctx.visited.has(deps[i])) stack.push({ name: deps[i], depsDone: false })
          continue
        }
      }
      stack.pop()
      this.runDagTask(ctx, frame.name)
    }
  }

  /** One task whose dependencies were visited: `executeDAGTask` after its recursion. */
  private runDagTask(ctx: DagCtx, taskName: string): void {
    const task = ctx.tasks.get(taskName)
    if (task === undefined) return
    const nodeName = `${ctx.node.name}.${taskName}`
    let node = this.taskNode(ctx, taskName)
    if (node !== undefined && isFulfilled(node.phase)) {
      if (node.phase !== "Skipped" && node.phase !== "Omitted") {
        this.runOnExit(node, task, ctx.node.id, ctx.placement, "tasks", () => this.taskScope(ctx, task))
      }
      return
    }
    const deps = taskDependencies(task)
    const connect = (childName: string, group: Node | undefined): void => {
      if (group !== undefined) this.addChild(group.name, childName)
      else if (deps.length === 0) this.addChild(ctx.node.name, childName)
      else {
        for (const d of deps) {
          const dn = this.taskNode(ctx, d)
          if (dn === undefined) continue
          for (const o of this.outboundNodes(dn.id)) {
            const on = this.nodes[o]
            if (on !== undefined) this.addChild(on.name, childName)
          }
        }
      }
    }
    const group = node?.type === "TaskGroup" ? node : undefined

    if (deps.length > 0 && group === undefined) {
      const states = new Map<string, DependencyState>()
      for (const d of deps) {
        const dn = this.taskNode(ctx, d)
        if (dn === undefined || !isFulfilled(dn.phase)) return
        if (!this.exitHookDone(dn)) return
        states.set(d, {
          phase: dn.phase,
          continueOn: ctx.tasks.get(d)?.continueOn,
          childPhases: dn.type === "TaskGroup" ? (dn.children ?? []).map((c) => this.nodes[c]?.phase ?? "Pending") : undefined
        })
      }
      let execute: boolean
      try {
        execute = evaluateDepends(dependsLogic(task), states)
      } catch (e) {
        this.initNode(nodeName, "Skipped", "Error", { boundaryId: ctx.node.id, templateName: task.template, message: String(e instanceof Error ? e.message : e) })
        connect(nodeName, undefined)
        return
      }
      if (!execute) {
        if (node === undefined) {
          this.initNode(nodeName, "Skipped", "Omitted", { boundaryId: ctx.node.id, templateName: task.template, message: "omitted: depends condition not met" })
          connect(nodeName, undefined)
        }
        return
      }
    }

    const scope = this.taskScope(ctx, task)
    let expanded: Array<{ name: string; vars: ReadonlyMap<string, unknown> }>
    if (isLoop(task)) {
      const loop = expandLoop(task, scope, this.limits.maxLoopItems, this.limits.expression)
      if (!loop.ok) {
        if (node === undefined) {
          this.initNode(nodeName, "Skipped", "Error", { boundaryId: ctx.node.id, templateName: task.template, message: loop.error })
          connect(nodeName, undefined)
        }
        return
      }
      if (loop.items.length === 0) {
        if (node === undefined) {
          this.initNode(nodeName, "Skipped", "Skipped", { boundaryId: ctx.node.id, templateName: task.template, message: "Skipped, empty params" })
          connect(nodeName, undefined)
        }
        return
      }
      expanded = loop.items.map((it) => ({ name: it.name, vars: it.vars }))
      if (node === undefined) {
        connect(nodeName, undefined)
        node = this.initNode(nodeName, "TaskGroup", "Running", { boundaryId: ctx.node.id, templateName: task.template })
      }
    } else expanded = [{ name: taskName, vars: new Map() }]

    const taskGroup = node?.type === "TaskGroup" ? node : undefined
    this.spend(expanded.length)
    for (const e of expanded) {
      const childName = `${ctx.node.name}.${e.name}`
      let child = this.byName(childName)
      const local = e.vars.size === 0 ? scope : new LayeredScope(scope, e.vars)
      if (child === undefined) {
        const proceed = this.shouldExecute(task.when, local)
        if (isFailure(proceed)) {
          connect(childName, taskGroup)
          this.initNode(childName, "Skipped", "Error", { boundaryId: ctx.node.id, templateName: task.template, message: proceed.error })
          continue
        }
        if (!proceed) {
          connect(childName, taskGroup)
          this.initNode(childName, "Skipped", "Skipped", {
            boundaryId: ctx.node.id,
            templateName: task.template,
            message: `when '${substituteForMessage(task.when ?? "", local, this.limits.expression)}' evaluated false`
          })
          continue
        }
      }
      if (child !== undefined && isFulfilled(child.phase)) continue
      const args = this.resolveArgs(task, local)
      if (isFailure(args)) {
        if (child === undefined) connect(childName, taskGroup)
        this.errorNode(childName, args.error, { boundaryId: ctx.node.id, onExit: ctx.onExit }, task.template)
        continue
      }
      const existed = child !== undefined
      child = this.executeTemplate(childName, { template: task.template ?? "", args }, {
        boundaryId: ctx.node.id,
        onExit: ctx.onExit,
        placement: ctx.placement,
        callName: task.name,
        callKind: "task",
        parentTemplate: ctx.tmpl
      })
      if (child !== undefined && !existed) connect(childName, taskGroup)
      if (child !== undefined && isFulfilled(child.phase) && taskGroup === undefined) {
        this.runOnExit(child, task, ctx.node.id, ctx.placement, "tasks", scope)
      }
    }
    if (taskGroup !== undefined) {
      let groupPhase: NodePhase = "Succeeded"
      for (const e of expanded) {
        const c = this.byName(`${ctx.node.name}.${e.name}`)
        if (c === undefined || !isFulfilled(c.phase)) return
        if (isFailedOrError(c.phase)) groupPhase = c.phase
      }
      this.markPhase(taskGroup, groupPhase)
    }
  }

  private exitHookDone(node: Node): boolean {
    const hook = this.byName(`${node.name}.onExit`)
    return hook === undefined || isFulfilled(hook.phase)
  }

  /** `assessDAGPhase`: BFS from the DAG's children, omitted tasks inherit their branch's phase. */
  private assessDag(ctx: DagCtx, targets: ReadonlyArray<string>): NodePhase {
    const targetPhases = new Map<string, NodePhase | "">()
    for (const t of targets) targetPhases.set(this.id(`${ctx.node.name}.${t}`), "")
    const queue: Array<{ id: string; phase: NodePhase }> = (ctx.node.children ?? []).map((id) => ({ id, phase: "Succeeded" }))
    const seen = new Set<string>()
    for (let head = 0; head < queue.length; head++) {
      const cur = queue[head]
      this.spend()
      const key = `${cur.id}/${cur.phase}`
      if (seen.has(key)) continue
      seen.add(key)
      const node = this.nodes[cur.id]
      if (node === undefined) return "Running"
      let branch = cur.phase
      if (!isFulfilled(node.phase)) return "Running"
      if (node.phase !== "Skipped" && node.phase !== "Omitted") branch = node.phase
      const prev = targetPhases.get(node.id)
      if (prev !== undefined && !isFailedOrError(prev || undefined)) targetPhases.set(node.id, branch)
      const next = node.type === "Retry"
        ? (node.children ?? []).flatMap((c) => this.nodes[c]?.nodeFlag?.hooked ? [c] : (this.nodes[c]?.children ?? []))
        : (node.children ?? [])
      for (const c of next) queue.push({ id: c, phase: branch })
    }
    const failFast = ctx.tmpl.dag?.failFast ?? ctx.tmpl.failFast ?? true
    let result: NodePhase = "Succeeded"
    for (const t of targets) {
      const p = targetPhases.get(this.id(`${ctx.node.name}.${t}`))
      if (p === undefined || p === "") {
        result = "Running"
        if (!failFast) break
      } else if (isFailedOrError(p)) {
        if (continues(ctx.tasks.get(t), p)) continue
        result = p
        if (failFast) break
      }
    }
    return result
  }

  // ---------------------------------------------------------------- pod GC

  private podGC(phase: WorkflowPhase): void {
    const gc = this.wf.spec.podGC
    const strategy = gc?.strategy ?? ""
    const delay = parseDurationMs(gc?.deleteDelayDuration) ?? 0
    for (const obs of this.input.pods.values()) {
      if (!terminalPodPhases.has(obs.phase) || obs.deleted === true) continue
      const node = this.nodes[obs.nodeId]
      if (node !== undefined && !isFulfilled(node.phase)) continue
      const tmpl = node?.templateName === undefined ? undefined : this.resolveTemplate(node.templateName)
      const labels = tmpl === undefined ? undefined : podLabels(this.wf, this.config, tmpl, node?.nodeFlag?.hooked === true)
      const action = podCleanupAction(strategy, phase, obs.phase, labels === undefined || matchesSelector(gc?.labelSelector, labels))
      if (action === "label") {
        this.actions.push({ _tag: "LabelPodCompleted", nodeId: obs.nodeId, cluster: obs.cluster, namespace: obs.namespace, podName: obs.podName })
      } else if (action === "delete") {
        const finished = Date.parse(obs.finishedAt ?? node?.finishedAt ?? this.nowIso)
        if (this.now >= finished + delay) {
          this.actions.push({ _tag: "DeletePod", nodeId: obs.nodeId, cluster: obs.cluster, namespace: obs.namespace, podName: obs.podName })
        } else this.requeue(finished + delay)
      }
    }
  }
}

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

/** A node that holds one of its boundary's `parallelism` slots while it is not fulfilled. */
const countsForParallelism = (n: Node): boolean =>
  n.boundaryID !== undefined && !isFulfilled(n.phase) && n.type !== "StepGroup" && n.type !== "TaskGroup" && n.nodeFlag?.retried !== true

const getOrCreate = <K, V>(map: Map<K, V>, key: K, make: () => V): V => {
  let v = map.get(key)
  if (v === undefined) {
    v = make()
    map.set(key, v)
  }
  return v
}

interface DagCtx {
  readonly node: Node
  readonly tmpl: Template
  readonly tasks: ReadonlyMap<string, DagTask>
  readonly visited: Set<string>
  /** `tasks.<name>.*` entries per task name (null: the task has no node), see `taskEntries`. */
  readonly entries: Map<string, Scope | null>
  readonly placement: Placement
  readonly onExit: boolean
}

/** `determinePodCleanupAction` for a completed pod. */
export const podCleanupAction = (
  strategy: string,
  workflowPhase: WorkflowPhase,
  podPhase: string,
  selectorMatches: boolean
): "label" | "delete" | "none" => {
  if (!selectorMatches) return "label"
  if (strategy === "" || strategy === "OnPodNone") return "label"
  const done = isWorkflowCompleted(workflowPhase)
  if (strategy === "OnWorkflowCompletion" && done) return "delete"
  if (strategy === "OnWorkflowSuccess" && workflowPhase === "Succeeded") return "delete"
  if (strategy === "OnPodCompletion") return "delete"
  if (strategy === "OnPodSuccess" && podPhase === "Succeeded") return "delete"
  if (strategy === "OnPodSuccess" && podPhase === "Failed") return "label"
  if (done) return "label"
  return "none"
}

const matchesSelector = (
  selector: { readonly matchLabels?: Readonly<Record<string, string>>; readonly matchExpressions?: ReadonlyArray<unknown> } | undefined,
  labels: Readonly<Record<string, string>>
): boolean => {
  if (selector === undefined) return true
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const raw of selector.matchExpressions ?? []) {
    const e = raw as { key: string; operator: string; values?: ReadonlyArray<string> }
    const has = e.key in labels
    const val = labels[e.key]
    switch (e.operator) {
      case "In":
        if (!has || !(e.values ?? []).includes(val)) return false
        break
      case "NotIn":
        if (has && (e.values ?? []).includes(val)) return false
        break
      case "Exists":
        if (!has) return false
        break
      case "DoesNotExist":
        if (has) return false
        break
    }
  }
  return true
}

const continues = (call: TemplateCall | undefined, phase: NodePhase): boolean =>
  (phase === "Failed" && call?.continueOn?.failed === true) || (phase === "Error" && call?.continueOn?.error === true)


/**
 * A loop item's variables over its step's or task's scope, without copying
 * the scope per item (a scope carries every earlier step or ancestor task, a
 * loop may have thousands of items). Flattened only if a reader iterates it.
 */
/**
 * A scope answering lookups itself and flattening only for a reader that
 * iterates: subclasses give `get`, `has` and `all` (the flattened map).
 */
abstract class LazyScope implements ReadonlyMap<string, unknown> {
  abstract get(key: string): unknown
  abstract has(key: string): boolean
  protected abstract all(): Map<string, unknown>
  get size(): number {
    return this.all().size
  }
  forEach(f: (value: unknown, key: string, map: ReadonlyMap<string, unknown>) => void, thisArg?: unknown): void {
    this.all().forEach((v, k) => f.call(thisArg, v, k, this))
  }
  entries() {
    return this.all().entries()
  }
  keys() {
    return this.all().keys()
  }
  values() {
    return this.all().values()
  }
  [Symbol.iterator]() {
    return this.all()[Symbol.iterator]()
  }
}

class LayeredScope extends LazyScope {
  private flat: Map<string, unknown> | undefined
  constructor(private readonly base: Scope, private readonly top: Scope) {
    super()
  }
  get(key: string): unknown {
    return this.top.has(key) ? this.top.get(key) : this.base.get(key)
  }
  has(key: string): boolean {
    return this.top.has(key) || this.base.has(key)
  }
  protected all(): Map<string, unknown> {
    this.flat ??= new Map([...this.base, ...this.top])
    return this.flat
  }
}

/**
 * A DAG task's scope: the workflow's globals and the `tasks.<name>.*` entries
 * of every ancestor task (upstream's `buildLocalScopeFromTask`). A lookup walks
 * the ancestry only until it meets the task it names, so in a chain of
 * thousands of tasks each costs what it references rather than its whole
 * ancestry; a reader that iterates (an expression tag sees the scope whole)
 * gets it flattened once.
 */
class TaskScope extends LazyScope {
  private readonly ancestors = new Set<string>()
  private readonly pending: Array<string>
  private flat: Map<string, unknown> | undefined

  constructor(
    private readonly globals: Scope,
    dependencies: ReadonlyArray<string>,
    private readonly dependenciesOf: (task: string) => ReadonlyArray<string>,
    private readonly entriesOf: (task: string) => Scope | undefined,
    private readonly isTask: (name: string) => boolean
  ) {
    super()
    this.pending = [...dependencies]
  }

  get(key: string): unknown {
    if (this.flat !== undefined) return this.flat.get(key)
    if (this.globals.has(key)) return this.globals.get(key)
    return this.entriesFor(key)?.get(key)
  }
  has(key: string): boolean {
    if (this.flat !== undefined) return this.flat.has(key)
    return this.globals.has(key) || (this.entriesFor(key)?.has(key) ?? false)
  }

  /** The entries of the ancestor that `tasks.<name>.<field>` names (a name may hold dots: every split is tried). */
  private entriesFor(key: string): Scope | undefined {
    const prefix = "tasks."
    if (!key.startsWith(prefix)) return undefined
    for (let dot = key.indexOf(".", prefix.length); dot > 0; dot = key.indexOf(".", dot + 1)) {
      const name = key.slice(prefix.length, dot)
      if (!this.isTask(name) || !this.isAncestor(name)) continue
      const entries = this.entriesOf(name)
      if (entries?.has(key) === true) return entries
    }
    return undefined
  }

  /** Depth-first through the dependencies, resumed where the last lookup stopped. */
  private isAncestor(name: string | undefined): boolean {
    while ((name === undefined || !this.ancestors.has(name)) && this.pending.length > 0) {
      const d = this.pending.pop()!
      if (this.ancestors.has(d)) continue
      this.ancestors.add(d)
      for (const dd of this.dependenciesOf(d)) if (!this.ancestors.has(dd)) this.pending.push(dd)
    }
    return name !== undefined && this.ancestors.has(name)
  }

  protected all(): Map<string, unknown> {
    if (this.flat === undefined) {
      this.isAncestor(undefined)
      const flat = new Map(this.globals)
      for (const a of this.ancestors) for (const [k, v] of this.entriesOf(a) ?? []) flat.set(k, v)
      this.flat = flat
    }
    return this.flat
  }
}

const substituteForMessage = (text: string, scope: Scope, limits: EngineLimits["expression"]): string => {
  const r = substitute(text, scope, true, limits)
  return r.ok ? r.value : text
}

const displayNameOf = (name: string): string => {
  // The display name is the last segment of the node name: `wf[0].step(1:x)` -> `step(1:x)`, `wf[0]` -> `[0]`.
  let depth = 0
  for (let i = name.length - 1; i >= 0; i--) {
    const c = name[i]
    if (c === ")") depth++
    else if (c === "(") depth--
    else if (depth === 0 && c === ".") return name.slice(i + 1)
    else if (depth === 0 && c === "[" && i > 0) return name.slice(i)
  }
  return name
}

const durationSeconds = (n: NodeStatus): number => {
  const s = Date.parse(n.startedAt ?? "")
  const f = Date.parse(n.finishedAt ?? "")
  return Number.isFinite(s) && Number.isFinite(f) ? (f - s) / 1000 : 0
}

const parseJsonOr = (s: string): unknown => {
  try {
    return JSON.parse(s)
  } catch {
    return s
  }
}

type Progress = readonly [number, number]
const parseProgress = (p: unknown): Progress | undefined => {
  const m = typeof p === "string" ? /^(\d+)\/(\d+)$/.exec(p) : null
  if (m === null) return undefined
  const [n, d] = [Number(m[1]), Number(m[2])]
  // Progress.IsValid: 0 <= N <= M and M > 0.
  return d > 0 && n <= d ? [n, d] : undefined
}
const executableTypes = new Set<string>(["Pod", "HTTP", "Plugin", "Container", "Suspend"])

/**
 * `progress.UpdateProgress`: every executable node (Pod, Container, Suspend,
 * ...) has a progress, "0/1" by default (or what its task result reported),
 * complete once Succeeded/Skipped/Omitted; other nodes sum their executable
 * descendants; the workflow's progress is the sum over executable nodes.
 *
 * Upstream sums each non-executable node's descendants with a fresh walk,
 * which is quadratic in a long chain (every step group reaches every later
 * one). Here the walk stops at any node that dominates everything below it
 * (every path into its descendants goes through it: a step group, a task of a
 * chain), whose sum comes from its subtree of the dominator tree, summed once.
 * The sums are the same. `budget` bounds the walks that remain (pathological
 * graphs, or a corrupt status with cycles, walked upstream's way); past it,
 * non-executable nodes keep the progress they had.
 */
const updateProgress = (nodes: Record<string, Node>, budget: number): string => {
  const ids = Object.keys(nodes)
  const n = ids.length
  const index = new Map<string, number>()
  for (let i = 0; i < n; i++) index.set(ids[i], i)
  const ownN = new Float64Array(n)
  const ownD = new Float64Array(n)
  let total: [number, number] = [0, 0]
  for (let i = 0; i < n; i++) {
    const node = nodes[ids[i]]
    if (!executableTypes.has(node.type)) continue
    let p = parseProgress(node.progress)
    if (node.progress === undefined || node.progress === "") {
      p = [0, 1]
      node.progress = "0/1"
    }
    if (p === undefined) continue
    if (node.phase === "Succeeded" || node.phase === "Skipped" || node.phase === "Omitted") {
      p = [p[1], p[1]]
      node.progress = `${p[1]}/${p[1]}`
    }
    ownN[i] = p[0]
    ownD[i] = p[1]
    total = [total[0] + p[0], total[1] + p[1]]
  }

  // The children graph, by index; children that do not exist are ignored (as upstream does).
  const kids: Array<Array<number>> = new Array(n)
  const preds: Array<Array<number>> = Array.from({ length: n }, () => [])
  const indegree = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    kids[i] = []
    for (const c of nodes[ids[i]].children ?? []) {
      const j = index.get(c)
      if (j === undefined) continue
      kids[i].push(j)
      preds[j].push(i)
      indegree[j]++
    }
  }
  // Topological order (Kahn); a cycle leaves nodes out of it.
  const order: Array<number> = []
  for (let i = 0; i < n; i++) if (indegree[i] === 0) order.push(i)
  for (let h = 0; h < order.length; h++) for (const c of kids[order[h]]) if (--indegree[c] === 0) order.push(c)
  const acyclic = order.length === n

  // Immediate dominators under a virtual root above every node without parents, one pass in
  // topological order (Cooper, Harvey and Kennedy's intersection; a dominator comes earlier).
  const root = -1
  const idom = new Int32Array(n).fill(root)
  const depth = new Int32Array(n)
  const closed = new Uint8Array(n)
  const sumN = new Float64Array(ownN)
  const sumD = new Float64Array(ownD)
  if (acyclic) {
    const pos = new Int32Array(n)
    order.forEach((v, k) => (pos[v] = k))
    const at = (v: number): number => (v === root ? -1 : pos[v])
    for (const v of order) {
      let d = preds[v].length === 0 ? root : preds[v][0]
      for (let k = 1; k < preds[v].length && d !== root; k++) {
        let a = preds[v][k]
        while (a !== d) {
          while (at(a) > at(d)) a = idom[a]
          while (at(d) > at(a)) d = idom[d]
          if (--budget < 0) return `${total[0]}/${total[1]}`
        }
      }
      idom[v] = d
      depth[v] = (d === root ? 0 : depth[d]) + 1
    }
    // A node is closed when no edge leaves its dominator subtree: an edge x -> y leaves the
    // subtree of every dominator of x deeper than y's immediate dominator.
    const low = new Float64Array(n).fill(Infinity)
    for (let i = 0; i < n; i++) for (const c of kids[i]) low[i] = Math.min(low[i], idom[c] === root ? 0 : depth[idom[c]])
    for (let k = n - 1; k >= 0; k--) {
      const v = order[k]
      if (low[v] >= depth[v]) closed[v] = 1
      const d = idom[v]
      if (d === root) continue
      low[d] = Math.min(low[d], low[v])
      sumN[d] += sumN[v]
      sumD[d] += sumD[v]
    }
  }

  const seen = new Int32Array(n).fill(-1)
  for (let i = 0; i < n; i++) {
    const node = nodes[ids[i]]
    if (executableTypes.has(node.type)) continue
    let pn = 0
    let pd = 0
    if (closed[i] === 1) {
      pn = sumN[i] - ownN[i]
      pd = sumD[i] - ownD[i]
    } else {
      const stack = [...kids[i]]
      while (stack.length > 0) {
        const c = stack.pop()!
        if (seen[c] === i) continue
        seen[c] = i
        if (--budget < 0) return `${total[0]}/${total[1]}`
        if (closed[c] === 1) {
          pn += sumN[c]
          pd += sumD[c]
        } else {
          pn += ownN[c]
          pd += ownD[c]
          for (const g of kids[c]) stack.push(g)
        }
      }
    }
    if (pd > 0) node.progress = `${pn}/${pd}`
  }
  return `${total[0]}/${total[1]}`
}

/** A Parameter as Go's json.Marshal writes it (wfv1.Parameter field order, omitempty). */
const marshalParameter = (p: Parameter): Record<string, unknown> => {
  const out: Record<string, unknown> = { name: p.name }
  if (p.default !== undefined && p.default !== null) out.default = String(p.default)
  if (p.value !== undefined && p.value !== null) out.value = String(p.value)
  if (p.valueFrom !== undefined && p.valueFrom !== null) out.valueFrom = p.valueFrom
  if (p.globalName) out.globalName = p.globalName
  if (p.enum !== undefined && p.enum.length > 0) out.enum = p.enum.map(String)
  if (p.description) out.description = p.description
  return out
}

/** Kubernetes' IsValidLabelValue. */
const isValidLabelValue = (v: string): boolean =>
  v.length <= 63 && /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)

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

const transientPatterns = [/connection refused/i, /connection reset/i, /i\/o timeout/i, /TLS handshake timeout/i, /\bEOF\b/, /etcdserver: leader changed/i, /too many requests/i, /transient/i]
const isTransient = (message: string): boolean => transientPatterns.some((p) => p.test(message))

/** templateDefaults merged under a template (the template wins; objects merge). */
const mergeDefaults = (defaults: Readonly<Record<string, unknown>>, tmpl: Readonly<Record<string, unknown>>): Record<string, unknown> => {
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

export { isPodObservationTerminal }
const isPodObservationTerminal = (o: PodObservation): boolean => terminalPodPhases.has(o.phase)

/** Labels of the workflow for a status (exported for the controller). */
export const workflowLabels = (phase: WorkflowPhase): Record<string, string> => ({
  [labelPhase]: phase === "" ? "Running" : phase,
  [labelCompleted]: isWorkflowCompleted(phase) ? "true" : "false"
})

