/**
 * `retryStrategy`: the Retry node and its attempts, the backoff (with
 * `maxDuration` and `cap`), `retryPolicy`, `limit` and `expression`, and the
 * workflow deadline cutting retries short. Upstream's retry branch of
 * `executeTemplate` and `processNodeRetries` (workflow/controller/operator.go);
 * `OnTransientError` uses the message patterns of `errors.IsTransientErr`
 * (util/errors/errors.go).
 */
import { humanizeMs, parseDurationMs } from "../../util/goDuration.js"
import { isoSeconds } from "../../util/time.js"
import { isFailedOrError, isFulfilled, type NodeStatus, type RetryStrategy, type Template } from "../model/Workflow.js"
import { podName as makePodName } from "./ids.js"
import { type ExecOpts, isFailure, type Node, type ResolvedArgs } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { evaluate } from "./scope.js"
import { shutdownStrategy, stoppedMessage } from "./shutdown.js"
import { processTemplate } from "./templates.js"

const durationSeconds = (n: NodeStatus): number => {
  const s = Date.parse(n.startedAt ?? "")
  const f = Date.parse(n.finishedAt ?? "")
  return Number.isFinite(s) && Number.isFinite(f) ? (f - s) / 1000 : 0
}

const transientPatterns = [/connection refused/i, /connection reset/i, /i\/o timeout/i, /TLS handshake timeout/i, /\bEOF\b/, /etcdserver: leader changed/i, /too many requests/i, /transient/i]
const isTransient = (message: string): boolean => transientPatterns.some((p) => p.test(message))

/** A template with a `retryStrategy`: the Retry node, running its current attempt or deciding on the next. */
export const executeWithRetries = (
  op: OperationState,
  nodeName: string,
  rawTmpl: Template,
  processed: Template,
  call: { readonly template: string; readonly args: ResolvedArgs },
  opts: ExecOpts
): Node | undefined => {
  const rs: RetryStrategy = processed.retryStrategy ?? {}
  let retryNode = op.byName(nodeName)
  if (retryNode === undefined) {
    if (op.parallelismBlocked(opts)) return undefined
    retryNode = op.initNode(nodeName, "Retry", "Running", {
      boundaryId: opts.boundaryId,
      templateName: rawTmpl.name,
      hooked: opts.hooked,
      inputs: processed.inputs?.parameters !== undefined ? { parameters: processed.inputs.parameters } : undefined
    })
  }
  const decision = processRetries(op, retryNode, rs)
  if (decision === "done" || decision === "wait") return retryNode

  const attempts = retryAttempts(op, retryNode)
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
    locals.set("pod.name", makePodName(op.wf.metadata.name, childName, rawTmpl.name ?? "", op.id(childName), op.podNameVersion()))
  }
  const again = processTemplate(op, rawTmpl, call.args, locals)
  if (isFailure(again)) return op.markPhase(retryNode, "Error", again.error)
  const { retryStrategy: _rs, ...attemptTmpl } = again
  const child = op.executeBody(childName, attemptTmpl as Template, { ...opts, hooked: false }, true)
  if (child === undefined) return retryNode
  op.addChild(nodeName, childName)
  if (isFulfilled(child.phase)) processRetries(op, retryNode, rs)
  return retryNode
}

/** The attempts of a Retry node (its children but exit hooks). */
const retryAttempts = (op: OperationState, retryNode: Node): Array<Node> => {
  return (retryNode.children ?? [])
    .map((c) => op.nodes[c])
    .filter((n): n is Node => n !== undefined && n.nodeFlag?.hooked !== true)
}

/** `processNodeRetries`: "done" (retry node fulfilled), "wait" (backoff) or "continue". */
const processRetries = (op: OperationState, node: Node, rs: RetryStrategy): "done" | "wait" | "continue" => {
  if (isFulfilled(node.phase)) return "done"
  const attempts = retryAttempts(op, node)
  const last = attempts[attempts.length - 1]
  if (last === undefined || !isFulfilled(last.phase)) return "continue"
  if (!isFailedOrError(last.phase)) {
    if (last.outputs !== undefined) node.outputs = structuredClone(last.outputs)
    else delete node.outputs
    op.markPhase(node, last.phase === "Skipped" ? "Skipped" : "Succeeded", "")
    return "done"
  }
  const stopping = shutdownStrategy(op)
  if (stopping !== undefined) {
    op.markPhase(node, last.phase, stoppedMessage(stopping))
    return "done"
  }
  if (op.workflowDeadline !== undefined && op.now >= op.workflowDeadline) {
    op.markPhase(node, last.phase, `retry exceeded workflow deadline ${isoSeconds(op.workflowDeadline)}`)
    return "done"
  }
  const limit = rs.limit === undefined ? undefined : Number(rs.limit)
  if (rs.backoff !== undefined) {
    let maxDeadline: number | undefined
    const maxDuration = parseDurationMs(rs.backoff.maxDuration)
    if (maxDuration !== undefined && attempts.length > 0) {
      maxDeadline = Date.parse(attempts[0].startedAt ?? op.nowIso) + maxDuration
      if (op.now > maxDeadline) {
        op.markPhase(node, last.phase, "Max duration limit exceeded")
        return "done"
      }
    }
    const base = parseDurationMs(rs.backoff.duration)
    if (base === undefined) {
      op.markPhase(node, "Error", "no base duration specified for retryStrategy")
      return "done"
    }
    let wait = base
    const factor = rs.backoff.factor === undefined ? undefined : Number(rs.backoff.factor)
    if (factor !== undefined && factor > 0) wait = base * Math.pow(factor, attempts.length - 1)
    const cap = parseDurationMs(rs.backoff.cap)
    if (cap !== undefined && wait > cap) wait = cap
    const waitUntil = Date.parse(last.finishedAt ?? op.nowIso) + wait
    if (maxDeadline !== undefined && waitUntil > maxDeadline) {
      op.markPhase(node, last.phase, "Backoff would exceed max duration limit")
      return "done"
    }
    if (op.now < waitUntil && limit !== undefined && attempts.length <= limit) {
      op.requeue(waitUntil)
      op.markPhase(node, node.phase, `Backoff for ${humanizeMs(wait)}`)
      return "wait"
    }
    op.markPhase(node, node.phase, "")
  }
  const policy = rs.retryPolicy ?? "OnFailure"
  let onFailed = false
  let onError = false
  if (policy === "Always") onFailed = onError = true
  else if (policy === "OnError") onError = true
  else if (policy === "OnFailure") onFailed = true
  else if (policy === "OnTransientError" && isTransient(last.message ?? "")) onFailed = onError = true
  if ((last.phase === "Failed" && !onFailed) || (last.phase === "Error" && !onError)) {
    op.markPhase(node, last.phase, last.message ?? "")
    return "done"
  }
  if (limit !== undefined && attempts.length > limit) {
    op.markPhase(node, last.phase, "No more retries left")
    return "done"
  }
  if (rs.expression !== undefined && rs.expression !== "") {
    const scope = new Map<string, unknown>([
      ...op.globals,
      ["retries", String(attempts.length - 1)],
      ["lastRetry.exitCode", last.outputs?.exitCode ?? "-1"],
      ["lastRetry.status", last.phase],
      ["lastRetry.duration", String(durationSeconds(last))],
      ["lastRetry.message", last.message ?? ""]
    ])
    const r = evaluate(rs.expression, scope, op.limits.expression)
    if (!r.ok) {
      op.markPhase(node, "Error", r.error.message)
      return "done"
    }
    if (r.value !== true && r.value !== "true") {
      op.markPhase(node, last.phase, "retryStrategy.expression evaluated to false")
      return "done"
    }
  }
  return "continue"
}
