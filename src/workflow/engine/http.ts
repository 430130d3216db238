/**
 * http templates: a node of type `HTTP` whose request the controller makes
 * (src/controller/HttpTemplates.ts) and whose response the engine judges, as
 * upstream's agent does (workflow/executor/agent.go `executeHTTPTemplate`):
 * `outputs.result` is the body; without `successCondition` a 2xx status
 * succeeds ("received non-2xx response code: N" otherwise); with one, the
 * expression over `request.*` and `response.statusCode|body|headers` decides
 * ("successCondition '...' evaluated false"). A request that could not be
 * made fails the node with its reason.
 *
 * Upstream runs the request in an agent pod; flotilla asks its controller
 * (see HttpTemplates.ts for why). The engine stays pure: it lists the
 * requests still waiting (`EngineOutput.httpRequests`), and reads the
 * responses from `EngineInput.httpResults`. A controller that gives no
 * `httpResults` runs no http templates: the node errors "not supported"
 * rather than wait forever.
 */
import type { Template } from "../model/Workflow.js"
import { isFulfilled } from "../model/Workflow.js"
import type { HttpRequest, HttpResult } from "./contract.js"
import type { ExecOpts, Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { evaluate } from "./scope.js"

const pending = new WeakMap<OperationState, Array<HttpRequest>>()

/** The http requests this operation is waiting for. */
export const httpRequestsOf = (op: OperationState): ReadonlyArray<HttpRequest> => pending.get(op) ?? []

/** The HTTP node of an http template; undefined while parallelism holds it back. */
export const executeHttp = (op: OperationState, nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined => {
  let node = op.byName(nodeName)
  if (node === undefined) {
    if (!retried && op.parallelismBlocked(opts)) return undefined
    node = op.initCallNode(nodeName, "HTTP", "Pending", tmpl, opts, retried)
  }
  if (isFulfilled(node.phase)) return node
  const results = op.input.httpResults
  if (results === undefined) {
    return op.markPhase(node, "Error", `template '${tmpl.name ?? "(inline)"}': http templates are not supported by this controller`)
  }
  const http = tmpl.http!
  const result = results.get(node.id)
  if (result === undefined) {
    const request = requestOf(op, node, tmpl)
    if (typeof request === "string") return op.markPhase(node, "Error", request)
    let list = pending.get(op)
    if (list === undefined) pending.set(op, list = [])
    list.push(request)
    return node
  }
  return judge(op, node, http, result)
}

const requestOf = (op: OperationState, node: Node, tmpl: Template): HttpRequest | string => {
  const http = tmpl.http!
  const headers: Array<HttpRequest["headers"][number]> = []
  for (const h of http.headers ?? []) {
    const ref = (h.valueFrom as { secretKeyRef?: { name?: unknown; key?: unknown } } | undefined)?.secretKeyRef
    if (ref !== undefined) {
      if (typeof ref.name !== "string" || typeof ref.key !== "string") return `http.headers.${h.name}.valueFrom.secretKeyRef: name and key are required`
      headers.push({ name: h.name, secretKeyRef: { name: ref.name, key: ref.key } })
    } else if (h.valueFrom !== undefined) return `http.headers.${h.name}.valueFrom: only secretKeyRef is supported`
    else headers.push({ name: h.name, value: h.value ?? "" })
  }
  if (http.bodyFrom !== undefined && http.bodyFrom.bytes !== undefined) {
    // bodyFrom.bytes is base64 in JSON ([]byte), as upstream's API has it.
    const body = Buffer.from(http.bodyFrom.bytes, "base64").toString("utf8")
    return { ...base(op, node, http), headers, body }
  }
  return { ...base(op, node, http), headers, ...(http.body !== undefined ? { body: http.body } : {}) }
}

const base = (op: OperationState, node: Node, http: NonNullable<Template["http"]>) => ({
  nodeId: node.id,
  namespace: op.wf.metadata.namespace,
  method: http.method === undefined || http.method === "" ? "GET" : http.method,
  url: http.url,
  ...(http.timeoutSeconds !== undefined ? { timeoutSeconds: http.timeoutSeconds } : {}),
  ...(http.insecureSkipVerify === true ? { insecureSkipVerify: true } : {})
})

const judge = (op: OperationState, node: Node, http: NonNullable<Template["http"]>, result: HttpResult): Node => {
  if (result._tag === "Failure") return op.markPhase(node, "Failed", result.message)
  node.outputs = { ...(node.outputs ?? {}), result: result.body }
  const condition = http.successCondition
  if (condition === undefined || condition.trim() === "") {
    if (result.statusCode >= 200 && result.statusCode < 300) return op.markPhase(node, "Succeeded", "")
    return op.markPhase(node, "Failed", `received non-2xx response code: ${result.statusCode}`)
  }
  const scope = new Map<string, unknown>([
    ["request.method", http.method ?? "GET"],
    ["request.url", http.url],
    ["request.body", http.body ?? ""],
    ["response.statusCode", result.statusCode],
    ["response.body", result.body],
    ["response.headers", result.headers]
  ])
  const r = evaluate(condition, scope, op.limits.expression)
  if (!r.ok) return op.markPhase(node, "Error", `unable to evaluate expression '${condition}': ${r.error.message}`)
  if (typeof r.value !== "boolean") return op.markPhase(node, "Error", `unable to cast expression result '${String(r.value)}' to bool`)
  return r.value ? op.markPhase(node, "Succeeded", "") : op.markPhase(node, "Failed", `successCondition '${condition}' evaluated false`)
}
