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
import { labelCompleted, labelPhase } from "../../util/argoKeys.js"
import { readStatusNodes } from "../model/compressedNodes.js"
import type { TemplateRef } from "../model/schema/template.js"
import { isFailedOrError, isFulfilled, isWorkflowCompleted, type Template, templateTypeOf, type WorkflowPhase } from "../model/Workflow.js"
import type { EngineInput, EngineOutput } from "./contract.js"
import { executeContainerSet, reconcileContainerSets } from "./containerSet.js"
import { executeDag } from "./dag.js"
import { decodeOnce } from "./decodeOnce.js"
import { configMapsNeeded, controllerConfigMapsNeeded } from "./configMapParams.js"
import { customMetrics, recordMetricErrors } from "./metrics.js"
import { failures, setGlobals, updateWorkflowMetadata } from "./globals.js"
import { executeHttp, httpRequestsOf } from "./http.js"
import { runWorkflowExitHook, runWorkflowLifecycleHooks, workflowExitHook } from "./hooks.js"
import { podName as makePodName } from "./ids.js"
import { inlineTemplate } from "./inline.js"
import { type EngineLimits, resolveLimits } from "./limits.js"
import { type ExecOpts, isFailure, type Mutable, type Node, type ResolvedArgs } from "./nodes.js"
import { LimitExceeded, OperationState } from "./operation.js"
import { podGC } from "./podgc.js"
import { executePod, failAfterDeadline, reconcilePods } from "./podNodes.js"
import { updateProgress } from "./progress.js"
import { executeResource } from "./resource.js"
import { executeWithRetries } from "./retry.js"
import { closeWorkflow, decodeFailure, pack, workflowError } from "./status.js"
import { executeSteps } from "./steps.js"
import { applyShutdown, isSuspended, shouldExecute, shutdownStrategy, stoppedMessage } from "./shutdown.js"
import { executeSuspend } from "./suspend.js"
import { guardTemplate, syncRequests, workflowLock } from "./sync.js"
import { referenceError, templateRefOf } from "./templateRefs.js"
import { argMap, processTemplate } from "./templates.js"
import { artifactGCPlan } from "./artifactGC.js"
import { execWorkflow } from "./workflowTemplateRef.js"

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
    // spec.workflowTemplateRef: the engine runs the joined spec (upstream's execWf).
    const exec = execWorkflow(input.workflow, input.templates)
    if (!exec.ok) return workflowError(input, exec.error)
    // the same stored copy comes back round after round: decoded once (decodeOnce.ts)
    const decoded = decodeOnce(exec.workflow)
    if (!decoded.ok) return decodeFailure(input, decoded.error)
    const nodes = readStatusNodes(decoded.value.status, maxDecodedNodeBytes(limits))
    if (!nodes.ok) return workflowError(input, nodes.error)
    return new Operation(decoded.value, { ...input, workflow: exec.workflow }, limits, nodes.nodes).run()
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

/** An operation: the state of operation.ts with the driver and the template dispatch. */
class Operation extends OperationState {
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
    closeWorkflow(this, "Error", message)
    return this.output("Error")
  }

  private execute(): EngineOutput {
    const phase = (this.status.phase ?? "") as WorkflowPhase
    if (isWorkflowCompleted(phase)) {
      podGC(this, phase)
      return this.output(phase)
    }
    const stopping = shutdownStrategy(this)
    // Upstream: a workflow terminated before it started fails at once.
    if ((phase === "" || phase === "Pending") && stopping === "Terminate") {
      this.status.startedAt ??= this.nowIso
      return this.finish("Failed", stoppedMessage(stopping))
    }
    // spec.synchronization: a workflow waiting for its lock stays Pending (sync.ts)
    const lockWait = workflowLock(this)
    if (lockWait !== undefined) return lockWait.failed !== undefined ? this.finish("Failed", lockWait.failed) : this.output("Pending")
    if (phase === "" || phase === "Pending") {
      this.status.phase = "Running"
      this.status.startedAt ??= this.nowIso
    }
    const startedMs = Date.parse(String(this.status.startedAt))
    if (typeof this.wf.spec.activeDeadlineSeconds === "number") {
      this.workflowDeadline = startedMs + this.wf.spec.activeDeadlineSeconds * 1000
      if (this.now < this.workflowDeadline) this.requeue(this.workflowDeadline)
    }
    const argsError = setGlobals(this, startedMs)
    if (argsError !== undefined) return this.finish("Error", argsError)
    if (phase === "") {
      // Upstream validates the references to (Cluster)WorkflowTemplates once, before anything runs.
      const refError = referenceError(this.resolver)
      if (refError !== undefined) return this.finish("Failed", refError)
      const metadataError = updateWorkflowMetadata(this)
      if (metadataError !== undefined) return this.finish("Error", metadataError)
    }

    reconcilePods(this)
    reconcileContainerSets(this)
    if (this.workflowDeadline !== undefined && this.now >= this.workflowDeadline) failAfterDeadline(this)
    applyShutdown(this)
    // Suspended: running pods go on and are observed, nothing new starts (upstream's ShouldSuspend).
    if (isSuspended(this)) return this.output("Running")
    this.activePods = Object.values(this.nodes).filter((n) => n.type === "Pod" && (n.phase === "Pending" || n.phase === "Running")).length

    const entry = this.executeTemplate(
      this.wf.metadata.name,
      { template: this.wf.spec.entrypoint ?? "", args: argMap(this.wf.spec.arguments, this.globals) },
      { onExit: false }
    )
    // spec.hooks other than exit (hooks.ts): the workflow waits for those that started.
    const hooks = runWorkflowLifecycleHooks(this)
    if (isFailure(hooks) && entry !== undefined) this.markPhase(entry, "Error", hooks.error)
    if (hooks === false) return this.output("Running")
    if (entry === undefined || !isFulfilled(entry.phase)) return this.output("Running")

    const wfStatus: WorkflowPhase = entry.phase === "Failed" ? "Failed" : entry.phase === "Error" ? "Error" : "Succeeded"
    this.globals.set("workflow.status", wfStatus)
    this.globals.set("workflow.failures", JSON.stringify(failures(this)))

    let onExitNode: Node | undefined
    const exitHook = workflowExitHook(this.wf)
    // Under Terminate the exit handler does not start (one already started is stopped by applyShutdown).
    if (exitHook !== undefined && (this.byName(`${this.wf.metadata.name}.onExit`) !== undefined || shouldExecute(this, true))) {
      onExitNode = runWorkflowExitHook(this, exitHook)
      if (onExitNode === undefined || !isFulfilled(onExitNode.phase)) return this.output("Running")
    }
    if (wfStatus === "Succeeded" && onExitNode !== undefined && isFailedOrError(onExitNode.phase)) {
      return this.finish(onExitNode.phase === "Failed" ? "Failed" : "Error", onExitNode.message ?? "")
    }
    const message = wfStatus === "Succeeded" ? "" : stopping !== undefined ? stoppedMessage(stopping) : (entry.message ?? "")
    return this.finish(wfStatus, message)
  }

  private finish(phase: WorkflowPhase, message: string): EngineOutput {
    closeWorkflow(this, phase, message)
    podGC(this, phase)
    return this.output(phase)
  }

  private output(phase: WorkflowPhase): EngineOutput {
    // Like upstream's pod cleanup queue, OnPodCompletion/OnPodSuccess (and labelling) act on pods as
    // soon as their node is complete, not only once the workflow is (completed phases GC in `finish`/`run`).
    if (!isWorkflowCompleted(phase)) podGC(this, phase === "" ? "Running" : phase)
    const nodes = this.nodes
    this.status.progress = updateProgress(nodes, this.limits.maxReconcileSteps)
    if (Object.keys(this.taskResultsCompletion).length > 0) this.status.taskResultsCompletionStatus = this.taskResultsCompletion
    if (this.globalOutputs.length > 0 || this.globalArtifacts.length > 0) {
      this.status.outputs = {
        ...(this.globalOutputs.length > 0 ? { parameters: this.globalOutputs } : {}),
        ...(this.globalArtifacts.length > 0 ? { artifacts: this.globalArtifacts } : {})
      }
    }
    const completed = isWorkflowCompleted(phase)
    // templates' and the workflow's custom metrics (metrics.ts)
    const metrics = customMetrics(this, phase)
    recordMetricErrors(this, metrics.errors)
    // locks released and cache entries stored (sync.ts, memoize.ts)
    const requests = syncRequests(this, completed)
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
    const httpRequests = httpRequestsOf(this)
    if (httpRequests.length > 0) out.httpRequests = httpRequests
    const needConfigMaps = configMapsNeeded(this)
    if (needConfigMaps.length > 0) out.needConfigMaps = needConfigMaps
    const needControllerConfigMaps = controllerConfigMapsNeeded(this)
    if (needControllerConfigMaps.length > 0) out.needControllerConfigMaps = needControllerConfigMaps
    if (metrics.emit.length > 0) out.metrics = metrics.emit
    const gc = artifactGCPlan(this.wf, this.status, nodes, { completed, deleting: this.input.workflow.metadata.deletionTimestamp !== undefined }, this.input.pods)
    if (gc !== undefined) out.artifactGC = gc
    return pack(this, { ...out, ...requests })
  }

  override executeTemplate(
    nodeName: string,
    call: { readonly template: string; readonly args: ResolvedArgs },
    opts: ExecOpts
  ): Node | undefined {
    const existing = this.byName(nodeName)
    if (existing !== undefined && isFulfilled(existing.phase)) return existing
    this.spend()
    // A step or task that calls a templateRef passes no template name: its call says what it runs.
    const templateRef = call.template === "" ? (opts.templateRef ?? templateRefOf(this.callOf(opts))) : undefined
    // Or it carries its template inline (inline.ts).
    const inline = call.template === "" && templateRef === undefined ? inlineTemplate(this, opts) : undefined
    this.enterCall(opts.boundaryId, templateRef)
    try {
      return this.executeCall(nodeName, call, templateRef, opts, inline)
    } finally {
      this.leaveCall()
    }
  }

  private executeCall(
    nodeName: string,
    call: { readonly template: string; readonly args: ResolvedArgs },
    templateRef: TemplateRef | undefined,
    opts: ExecOpts,
    inline: Template | undefined
  ): Node | undefined {
    const callName = templateRef !== undefined ? `${templateRef.name}/${templateRef.template}` : inline !== undefined ? "(inline)" : call.template
    if (this.depth + 1 >= this.limits.maxDepth) this.maxDepthExceeded(nodeName, callName, opts)
    const tmpl = inline ?? this.resolveCall({ template: call.template, templateRef })
    if (isFailure(tmpl)) return this.errorNode(nodeName, tmpl.error, opts, templateRef !== undefined ? undefined : call.template)

    const locals = new Map<string, unknown>([["node.name", nodeName]])
    if (opts.callKind === "task" && opts.callName !== undefined) locals.set("tasks.name", opts.callName)
    if (opts.callKind === "step" && opts.callName !== undefined) locals.set("steps.name", opts.callName)
    const isPod = tmpl.container !== undefined || tmpl.script !== undefined || tmpl.containerSet !== undefined || tmpl.resource !== undefined ||
      tmpl.data !== undefined
    if (isPod && tmpl.retryStrategy === undefined) {
      locals.set("pod.name", makePodName(this.wf.metadata.name, nodeName, tmpl.name ?? "", this.id(nodeName), this.podNameVersion()))
    }
    const processed = processTemplate(this, tmpl, call.args, locals)
    if (isFailure(processed)) return this.errorNode(nodeName, processed.error, opts, tmpl.name)

    this.depth++
    try {
      // synchronization and memoize wrap the template's execution (sync.ts)
      return guardTemplate(this, nodeName, processed, opts, () =>
        processed.retryStrategy !== undefined
          ? executeWithRetries(this, nodeName, tmpl, processed, call, opts)
          : this.executeBody(nodeName, processed, opts, false))
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

  override executeBody(nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined {
    switch (templateTypeOf(tmpl)) {
      case "Container":
      case "Script":
        return executePod(this, nodeName, tmpl, opts, retried)
      case "Steps":
        return executeSteps(this, nodeName, tmpl, opts, retried)
      case "DAG":
        return executeDag(this, nodeName, tmpl, opts, retried)
      case "Suspend":
        return executeSuspend(this, nodeName, tmpl, opts)
      case "HTTP":
        return executeHttp(this, nodeName, tmpl, opts, retried)
      case "ContainerSet":
        return executeContainerSet(this, nodeName, tmpl, opts, retried)
      case "Data":
        // Upstream's executeData: a pod whose main is the executor (`argoexec data`), its result the node's.
        return executePod(this, nodeName, tmpl, opts, retried)
      case "Resource":
        return executeResource(this, nodeName, tmpl, opts, retried)
      default:
        return this.errorNode(nodeName, `template '${tmpl.name}' of type ${templateTypeOf(tmpl) ?? "unknown"} is not supported`, opts, tmpl.name)
    }
  }
}
