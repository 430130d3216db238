/**
 * Pod nodes: executing a container or script template (parallelism, the
 * workflow deadline, the template's `timeout` and `activeDeadlineSeconds`, also
 * on a running pod), requesting its pod as a
 * CreatePod action (the manifest comes from pod.ts), and folding what was
 * observed of pods and their task results into their nodes. Upstream's
 * `executeContainer`/`executeScript`, `podReconciliation` and
 * `assessNodeStatus` (workflow/controller/operator.go), and the deadline
 * handling of `failSuspendedAndPendingNodesAfterDeadlineOrShutdown`.
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import { parseDurationMs } from "../../util/goDuration.js"
import { isoSeconds } from "../../util/time.js"
import { isFulfilled, type NodeOutputs, type NodePhase, type Template } from "../model/Workflow.js"
import type { PodObservation } from "./contract.js"
import { podName as makePodName } from "./ids.js"
import { exportGlobalArtifacts, prepareArtifacts, reportsArtifacts } from "./artifacts.js"
import { inferFailedReason } from "./failedReason.js"
import { type ExecOpts, isFailure, type Mutable, type Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { includeScriptOutput } from "./outputs.js"
import { buildPod, PodSpecPatchError } from "./pod.js"
import { substitute } from "./scope.js"
import { podNotCreatedMessage, shouldExecute, shutdownStrategy } from "./shutdown.js"
import { isInvalidTarget, resolveTarget } from "./targeting.js"

/** Pod phases after which a pod never runs again. */
export const terminalPodPhases = new Set(["Succeeded", "Failed"])

export const isPodObservationTerminal = (o: PodObservation): boolean => terminalPodPhases.has(o.phase)

/** A container or script template's Pod node; undefined while parallelism holds it back. */
export const executePod = (op: OperationState, nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined => {
  let node = op.byName(nodeName)
  const id = op.id(nodeName)
  if (node === undefined) {
    if (op.workflowDeadline !== undefined && op.now >= op.workflowDeadline && !opts.onExit) {
      return op.initNode(nodeName, "Pod", "Failed", {
        boundaryId: opts.boundaryId,
        templateName: tmpl.name,
        message: "Step exceeded its deadline",
        hooked: opts.hooked,
        retried
      })
    }
    const wfLimit = op.wf.spec.parallelism
    if (typeof wfLimit === "number" && op.activePods >= wfLimit) return undefined
    if (!retried && op.parallelismBlocked(opts)) return undefined
    node = op.initCallNode(nodeName, "Pod", "Pending", tmpl, opts, retried)
    op.activePods++
    if (expectsTaskResult(op, nodeName, tmpl, opts)) op.taskResultsCompletion[id] = false
    const obs = op.input.pods.get(id)
    if (obs !== undefined) assessPod(op, node, obs)
  }
  if (isFulfilled(node.phase)) return node

  const obs = op.input.pods.get(id)
  const timedOut = checkPodDeadlines(op, node, tmpl, obs)
  if (timedOut !== undefined) return timedOut
  if (obs === undefined && node.phase === "Pending") {
    // Upstream's shutdown guard in createWorkflowPod: no pod is made once the workflow is stopping.
    const stopping = shutdownStrategy(op)
    if (stopping !== undefined && !shouldExecute(op, opts.onExit)) return op.markPhase(node, "Failed", podNotCreatedMessage(stopping))
    createPod(op, node, tmpl, opts)
  }
  return node
}

/** The kubelet's words for a pod killed at its `activeDeadlineSeconds` (pod status `reason: DeadlineExceeded`). */
export const podDeadlineMessage = "Pod was active on the node longer than the specified deadline"

/** The template's `timeout` as an instant: counted from the node's start, as upstream's `checkTemplateTimeouts`. */
const timeoutDeadline = (node: Node, tmpl: Template): number | undefined => {
  const ms = parseDurationMs(tmpl.timeout)
  if (ms === undefined || node.startedAt === undefined) return undefined
  return Date.parse(node.startedAt) + ms
}

/**
 * The template's `timeout` and `activeDeadlineSeconds`, enforced by the controller:
 * - a node still Pending past its `timeout` fails with "timeout" and its pod is deleted
 *   (upstream's `checkTemplateTimeouts`);
 * - a pod still running `deadlineGraceMs` past either deadline fails, and is deleted, as the kubelet
 *   would have failed it (upstream leaves that to the kubelet, which enforces the pod's
 *   `activeDeadlineSeconds`; a kubelet that lags, or one that does not enforce it, must not let the
 *   node succeed). The grace lets a kubelet that does enforce it report first, with its container
 *   states and exit code, so the node's outputs do not depend on who won a race.
 *   `activeDeadlineSeconds` counts from the pod's start (`status.startTime`), as the kubelet does.
 * Before the deadline the workflow is requeued for it. Returns the node when it failed here.
 */
const checkPodDeadlines = (op: OperationState, node: Node, tmpl: Template, obs: PodObservation | undefined): Node | undefined => {
  // A pod that finished in time (its node maybe still waiting for outputs) is past any deadline's reach.
  if (obs !== undefined && isPodObservationTerminal(obs)) return undefined
  const timeoutAt = timeoutDeadline(node, tmpl)
  if (timeoutAt !== undefined && node.phase === "Pending" && op.now >= timeoutAt) {
    deletePodOf(op, node)
    return failForDeadline(op, node, "timeout")
  }
  const ads = tmpl.activeDeadlineSeconds === undefined ? undefined : Number(tmpl.activeDeadlineSeconds)
  const podStart = obs?.startedAt ?? (node.phase === "Running" ? node.startedAt : undefined)
  const adsAt = ads !== undefined && Number.isFinite(ads) && podStart !== undefined ? Date.parse(podStart) + ads * 1000 : undefined
  const candidates = [timeoutAt, adsAt].filter((t): t is number => t !== undefined && Number.isFinite(t))
  if (candidates.length === 0) return undefined
  const at = Math.min(...candidates) + deadlineGraceMs
  if (op.now < at) {
    // A node still Pending is woken at its timeout (above), a running one after the grace.
    op.requeue(timeoutAt !== undefined && node.phase === "Pending" ? Math.min(timeoutAt, at) : at)
    return undefined
  }
  if (node.phase !== "Running" && obs?.startedAt === undefined) return undefined
  deletePodOf(op, node)
  return failForDeadline(op, node, podDeadlineMessage)
}

/** How long after a running pod's deadline the controller waits for the kubelet's own report before failing the node itself. */
export const deadlineGraceMs = 10_000

const failForDeadline = (op: OperationState, node: Node, message: string): Node => {
  // Its wait container is gone or going: no task result will complete.
  if (op.taskResultsCompletion[node.id] === false) op.taskResultsCompletion[node.id] = true
  return op.markPhase(node, "Failed", message)
}

const expectsTaskResult = (op: OperationState, nodeName: string, tmpl: Template, opts: ExecOpts): boolean => {
  return (tmpl.outputs?.parameters ?? []).length > 0 || tmpl.script !== undefined || tmpl.data !== undefined || includeScriptOutput(op, nodeName, opts) ||
    (tmpl.resource === undefined && reportsArtifacts(op, tmpl))
}

/** Request the node's pod (a CreatePod action) where its template targets, or error the node when it cannot be built. */
const createPod = (op: OperationState, node: Node, template: Template, opts: ExecOpts): void => {
  let tmpl = template
  const target = resolveTarget(tmpl, op.wf, op.config.localCluster, opts.placement)
  // An invalid cluster or namespace (after substitution) fails the node: no pod is ever requested there.
  if (isInvalidTarget(target)) return void op.markPhase(node, "Error", target.message)
  const name = makePodName(op.wf.metadata.name, node.name, tmpl.name ?? "", node.id, op.podNameVersion())
  // The archive location and artifacts for the executor (artifacts.ts); while the repository's
  // ConfigMap is read the node stays Pending (this run's output is provisional).
  const prepared = prepareArtifacts(op, tmpl, name)
  if (prepared === "pending") return
  if (isFailure(prepared)) return void op.markPhase(node, "Error", prepared.error)
  tmpl = prepared
  // The pod's activeDeadlineSeconds, which the kubelet enforces: the template's, bounded by what is
  // left of the workflow's deadline (not for exit handlers) and of the template's `timeout`, as
  // upstream's pod builder. Upstream lets a `timeout` replace a smaller template value; here the
  // smaller one wins, so the pod never outlives either bound.
  let activeDeadlineSeconds: number | undefined
  const tmplAds = tmpl.activeDeadlineSeconds === undefined ? undefined : Number(tmpl.activeDeadlineSeconds)
  if (tmplAds !== undefined && Number.isFinite(tmplAds)) activeDeadlineSeconds = tmplAds
  if (op.workflowDeadline !== undefined && !opts.onExit) {
    const remaining = Math.trunc((op.workflowDeadline - op.now) / 1000)
    activeDeadlineSeconds = Math.min(activeDeadlineSeconds ?? Infinity, remaining)
  }
  const timeoutAt = timeoutDeadline(node, tmpl)
  if (timeoutAt !== undefined) {
    const left = Math.trunc((timeoutAt - op.now) / 1000)
    // Upstream refuses to make a pod with a second or less to live.
    if (left <= 1) return void op.markPhase(node, "Error", `${node.name} exceeded its deadline`)
    activeDeadlineSeconds = Math.min(activeDeadlineSeconds ?? Infinity, left)
  }
  const podGC = op.wf.spec.podGC
  // spec.podSpecPatch gets the workflow's global variables, as upstream substitutes the spec.
  const wfPatch = op.wf.spec.podSpecPatch
  let workflowPodSpecPatch: string | undefined
  if (typeof wfPatch === "string" && wfPatch.includes("{{")) {
    const r = substitute(wfPatch, op.globals, false, op.limits.expression)
    if (!r.ok) return void op.markPhase(node, "Error", `spec.podSpecPatch: ${r.error.message}`)
    workflowPodSpecPatch = r.value
  }
  let pod: KubeObject
  try {
    pod = buildPod({
      workflow: op.wf,
      config: op.config,
      nodeId: node.id,
      nodeName: node.name,
      podName: name,
      template: tmpl,
      target,
      onExit: opts.onExit,
      includeScriptOutput: includeScriptOutput(op, node.name, opts),
      activeDeadlineSeconds,
      podGCAnnotation: podGC === undefined ? undefined : `${podGC.strategy || "OnPodNone"}/${podGC.deleteDelayDuration ?? "0s"}`,
      deadline: op.workflowDeadline === undefined ? undefined : isoSeconds(op.workflowDeadline),
      ...(workflowPodSpecPatch !== undefined ? { workflowPodSpecPatch } : {})
    })
  } catch (e) {
    if (e instanceof PodSpecPatchError) return void op.markPhase(node, "Error", e.message)
    throw e
  }
  op.actions.push({ _tag: "CreatePod", nodeId: node.id, cluster: target.cluster, namespace: target.namespace, pod })
}

const deletePodOf = (op: OperationState, node: Node): void => {
  const obs = op.input.pods.get(node.id)
  if (obs === undefined) return
  op.actions.push({ _tag: "DeletePod", nodeId: node.id, cluster: obs.cluster, namespace: obs.namespace, podName: obs.podName })
}

/** Fold every observed pod into its node before executing (`podReconciliation`). */
export const reconcilePods = (op: OperationState): void => {
  for (const id in op.nodes) {
    op.spend()
    const node = op.nodes[id]
    if (node.type !== "Pod") continue
    const obs = op.input.pods.get(node.id)
    if (isFulfilled(node.phase)) continue
    if (obs !== undefined) assessPod(op, node, obs)
    else if (node.phase === "Running") op.markPhase(node, "Error", "pod deleted")
  }
}

/** `assessNodeStatus`: what was observed of a node's pod and task result, folded into the node. */
const assessPod = (op: OperationState, node: Node, obs: PodObservation): void => {
  if (isFulfilled(node.phase)) return
  if (obs.hostNodeName !== undefined) node.hostNodeName = obs.hostNodeName
  if (obs.podIP !== undefined) node.podIP = obs.podIP
  if (obs.exitCode !== undefined) node.outputs = { ...(node.outputs ?? {}), exitCode: String(obs.exitCode) }
  const tr = op.input.taskResults.get(node.id)
  if (tr !== undefined) {
    const outs: Mutable<NodeOutputs> = { ...(node.outputs ?? {}) }
    if (tr.outputs?.parameters !== undefined) outs.parameters = tr.outputs.parameters.map((p) => ({ ...p }))
    if (tr.outputs?.result !== undefined) outs.result = tr.outputs.result
    if (tr.outputs?.artifacts !== undefined) outs.artifacts = tr.outputs.artifacts
    if (tr.outputs?.exitCode !== undefined && outs.exitCode === undefined) outs.exitCode = tr.outputs.exitCode
    if (Object.keys(outs).length > 0) node.outputs = outs
    if (tr.progress !== undefined) node.progress = tr.progress
    if (tr.completed && node.id in op.taskResultsCompletion) op.taskResultsCompletion[node.id] = true
  }
  const synced = op.taskResultsCompletion[node.id] !== false
  if (obs.deleted === true && !terminalPodPhases.has(obs.phase)) {
    op.markPhase(node, "Error", "pod deleted")
    node.finishedAt = obs.finishedAt ?? op.nowIso
    return
  }
  switch (obs.phase) {
    case "Pending":
      op.markPhase(node, "Pending", obs.message ?? obs.reason ?? "")
      break
    case "Running":
      op.markPhase(node, "Running", "")
      break
    case "Succeeded":
      if (!synced) {
        // Outputs are reported by the wait container; complete once they are in.
        op.markPhase(node, "Running", "")
        break
      }
      op.markPhase(node, "Succeeded", "")
      node.finishedAt = obs.finishedAt ?? op.nowIso
      // its output artifacts with a globalName become the workflow's (`addOutputsToGlobalScope`)
      exportGlobalArtifacts(op, node.outputs?.artifacts)
      break
    case "Failed": {
      // Upstream's `inferFailedReason` (failedReason.ts) from the pod's message and containers' states, init
      // containers first. Without them (not observed), the pod's message explains it, or its deadline, exit
      // code or reason.
      const tmpl = obs.failedStatuses !== undefined ? op.templateOfNode(node) : undefined
      const inferred = obs.failedStatuses !== undefined
        ? inferFailedReason(obs, obs.failedStatuses, tmpl?.containerSet !== undefined
          ? (tmpl.containerSet.containers ?? []).map((c) => c.name === undefined || c.name === "" ? "main" : c.name)
          : ["main"])
        : undefined
      if (inferred?.phase === "Succeeded") {
        // main and wait both ended with 0 (a sidecar killed by argoexec failed the pod): as the Succeeded case.
        if (!synced) {
          op.markPhase(node, "Running", "")
          break
        }
        op.markPhase(node, "Succeeded", "")
        node.finishedAt = obs.finishedAt ?? op.nowIso
        exportGlobalArtifacts(op, node.outputs?.artifacts)
        break
      }
      const message = inferred !== undefined
        ? inferred.message
        : obs.message !== undefined && obs.message !== ""
        ? obs.message
        : obs.reason === "DeadlineExceeded"
        ? podDeadlineMessage
        : obs.exitCode !== undefined
        ? `Error (exit code ${obs.exitCode})`
        : obs.reason ?? "pod failed"
      const phase: NodePhase = inferred !== undefined
        ? inferred.phase
        : obs.exitCode === undefined && obs.reason !== undefined && obs.reason !== "DeadlineExceeded" && obs.reason !== "Evicted"
        ? "Error"
        : "Failed"
      op.markPhase(node, phase, message)
      node.finishedAt = obs.finishedAt ?? op.nowIso
      if (op.taskResultsCompletion[node.id] === false) op.taskResultsCompletion[node.id] = true
      break
    }
    default:
      break
  }
}

/** Past `spec.activeDeadlineSeconds`: every unfinished pod node (not an exit hook's) fails and its pod is deleted. */
export const failAfterDeadline = (op: OperationState): void => {
  for (const node of Object.values(op.nodes)) {
    if (node.type !== "Pod" || isFulfilled(node.phase) || node.nodeFlag?.hooked === true) continue
    // A started pod carries what was left of the workflow's deadline as its activeDeadlineSeconds:
    // its kubelet ends it then and reports its container states and exit code. As for a template's
    // deadlines (checkPodDeadlines), the controller fails it itself only `deadlineGraceMs` later,
    // so the node's outputs do not depend on who won a race; a pod not started fails at once.
    const obs = op.input.pods.get(node.id)
    if (obs !== undefined && isPodObservationTerminal(obs)) continue
    const started = obs?.startedAt !== undefined || node.phase === "Running"
    if (started && op.workflowDeadline !== undefined && op.now < op.workflowDeadline + deadlineGraceMs) {
      op.requeue(op.workflowDeadline + deadlineGraceMs)
      continue
    }
    deletePodOf(op, node)
    op.markPhase(node, "Failed", "Step exceeded its deadline")
  }
}
