/**
 * Custom Prometheus metrics (`metrics.prometheus` on templates and on the workflow spec), the
 * engine's half, as upstream's `computeMetrics` / `prepareMetricScope` (workflow/controller/operator.go,
 * steps.go): which metrics a reconcile emits and with what value. The controller records them
 * (observability/CustomMetrics.ts) once the status that records the change is stored, so a retried
 * reconcile does not count twice.
 *
 * When: a template's metrics when its node completes during this reconcile (and its realtime gauges
 * when the node first appears); a retry's attempt emits when it completes while its retry node goes
 * on. The workflow's metrics when it completes, its realtime gauges on every reconcile before.
 * Scope: the global variables, `duration` (seconds, `%f`), `status`, `inputs.parameters.*`,
 * `outputs.result`, `outputs.parameters.*`, `exitCode`, `retries`, `resourcesDuration.{cpu,memory}`.
 * A metric that cannot be emitted is upstream's `MetricsError` condition, never the workflow's failure.
 */
import { readStatusNodes } from "../model/compressedNodes.js"
import type { NodeStatus } from "../model/Workflow.js"
import type { MetricEmission } from "./contract.js"
import type { Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { evaluateWhen, substitute } from "./scope.js"

interface PrometheusSpec {
  readonly name?: unknown
  readonly help?: unknown
  readonly labels?: ReadonlyArray<{ readonly key?: unknown; readonly value?: unknown }>
  readonly when?: unknown
  readonly gauge?: { readonly value?: unknown; readonly realtime?: unknown; readonly operation?: unknown }
  readonly counter?: { readonly value?: unknown }
  readonly histogram?: { readonly value?: unknown; readonly buckets?: ReadonlyArray<unknown> }
}

const prometheusOf = (metrics: unknown): ReadonlyArray<PrometheusSpec> => {
  const list = (metrics as { prometheus?: unknown } | undefined)?.prometheus
  return Array.isArray(list) ? list as ReadonlyArray<PrometheusSpec> : []
}

const fulfilled = (phase: unknown) => phase === "Succeeded" || phase === "Failed" || phase === "Error" || phase === "Skipped" || phase === "Omitted"

/** Prometheus' legacy metric name check (upstream's IsValidMetricName). */
const validName = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** Go's strconv.ParseFloat, as far as metric values go. */
const parseFloat64 = (s: string): number | undefined => {
  const t = s.trim()
  if (t === "" || t !== s || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(Inf|inf|NaN)$/.test(t)) return undefined
  return Number(t.replace(/inf$/i, "Infinity"))
}

type Realtime = { readonly startedAt: number; readonly finishedAt?: number }

/**
 * One list of metrics in one scope (`computeMetrics`): the emissions, and the errors as upstream
 * words them. `realtime` gives the variables a realtime gauge may name.
 */
const compute = (
  op: OperationState,
  list: ReadonlyArray<PrometheusSpec>,
  scope: ReadonlyMap<string, unknown>,
  realtime: ReadonlyMap<string, Realtime>,
  realtimeOnly: boolean,
  out: Array<MetricEmission>,
  errors: Array<string>
): void => {
  const sub = (s: unknown): string | { error: string } => {
    const r = substitute(String(s ?? ""), scope, false, op.limits.expression)
    return r.ok ? r.value : { error: r.error.message }
  }
  for (const m of list) {
    const isRealtime = m.gauge?.realtime === true
    if (realtimeOnly && !isRealtime) continue
    const rawName = String(m.name ?? "")
    if (m.help === undefined || m.help === "") {
      errors.push(`metric '${rawName}' must contain a help string under 'help: ' field`)
      continue
    }
    const name = sub(m.name)
    const help = sub(m.help)
    const when = sub(m.when)
    const labels: Record<string, string> = {}
    let failed: string | undefined = typeof name === "object" ? name.error : typeof help === "object" ? help.error : typeof when === "object" ? when.error : undefined
    for (const l of m.labels ?? []) {
      const v = sub(l.value)
      if (typeof v === "object") failed ??= v.error
      else labels[String(l.key ?? "")] = v
    }
    if (failed !== undefined || typeof name === "object" || typeof help === "object" || typeof when === "object") {
      errors.push(`unable to substitute parameters for metric '${rawName}': ${failed}`)
      continue
    }
    if (when.trim() !== "") {
      const r = evaluateWhen(when, scope, op.limits.expression)
      if (!r.ok) {
        errors.push(`unable to compute 'when' clause for metric '${op.wf.metadata.name}': ${r.error.message}`)
        continue
      }
      if (!r.value) continue
    }
    const construct = (why: string) => errors.push(`could not construct metric '${name}': ${why}`)
    if (!validName.test(name)) {
      construct("metric name is invalid: names may only contain alphanumeric characters or '_'")
      continue
    }
    const badLabel = Object.keys(labels).find((k) => !validName.test(k))
    if (badLabel !== undefined) {
      construct(`metric label '${badLabel}' is invalid: keys may only contain alphanumeric characters or '_'`)
      continue
    }
    if (isRealtime) {
      const value = String(m.gauge?.value ?? "")
      if (!value.startsWith("{{") || !value.endsWith("}}")) {
        errors.push("real time metrics can only be used with metric variables")
        continue
      }
      const variable = value.slice(2, -2).trim()
      const rt = realtime.get(variable)
      if (rt === undefined) {
        errors.push(`'${variable}' is not available as a real time metric`)
        continue
      }
      out.push({ name, help, labels, kind: "gauge", realtime: rt })
      continue
    }
    const [kind, spec] = m.gauge !== undefined
      ? ["gauge", m.gauge] as const
      : m.counter !== undefined
      ? ["counter", m.counter] as const
      : m.histogram !== undefined
      ? ["histogram", m.histogram] as const
      : [undefined, undefined]
    if (kind === undefined) {
      construct("invalid metric spec")
      continue
    }
    const text = sub(spec.value)
    if (typeof text === "object") {
      errors.push(`unable to substitute parameters for metric '${name}': ${text.error}`)
      continue
    }
    const value = parseFloat64(text)
    if (value === undefined) {
      construct(`strconv.ParseFloat: parsing ${JSON.stringify(text)}: invalid syntax`)
      continue
    }
    const operation = kind === "gauge" ? String(m.gauge?.operation ?? "Set") : undefined
    const buckets = kind === "histogram" ? (m.histogram?.buckets ?? []).map(Number).filter(Number.isFinite).sort((a, b) => a - b) : undefined
    out.push({
      name,
      help,
      labels,
      kind,
      value,
      ...(operation === "Add" || operation === "Sub" ? { operation } : {}),
      ...(buckets !== undefined ? { buckets } : {})
    })
  }
}

const ms = (iso: unknown): number | undefined => {
  const t = Date.parse(String(iso ?? ""))
  return Number.isFinite(t) ? t : undefined
}

/** `prepareMetricScope`: the globals and the node's variables. */
const nodeScope = (op: OperationState, node: NodeStatus, realtime: Map<string, Realtime>): Map<string, unknown> => {
  const scope = new Map<string, unknown>(op.globals)
  const started = ms(node.startedAt) ?? op.now
  const finished = fulfilled(node.phase) ? ms(node.finishedAt) ?? op.now : undefined
  scope.set("duration", (((finished ?? op.now) - started) / 1000).toFixed(6))
  realtime.set("duration", finished === undefined ? { startedAt: started } : { startedAt: started, finishedAt: finished })
  scope.set("status", node.phase || "Pending")
  scope.set("resourcesDuration.cpu", "0")
  scope.set("resourcesDuration.memory", "0")
  if ((node.children?.length ?? 0) > 0) scope.set("retries", String(node.children!.length - 1))
  for (const p of node.inputs?.parameters ?? []) scope.set(`inputs.parameters.${p.name}`, p.value === undefined ? "" : String(p.value))
  const outputs = node.outputs
  if (outputs?.result !== undefined) scope.set("outputs.result", String(outputs.result))
  if (outputs?.exitCode !== undefined) scope.set("exitCode", String(outputs.exitCode))
  for (const p of outputs?.parameters ?? []) scope.set(`outputs.parameters.${p.name}`, p.value === undefined ? "" : String(p.value))
  return scope
}

/** The metrics this reconcile emits and the errors in emitting them. */
export const customMetrics = (
  op: OperationState,
  phase: string
): { readonly emit: ReadonlyArray<MetricEmission>; readonly errors: ReadonlyArray<string> } => {
  const out: Array<MetricEmission> = []
  const errors: Array<string> = []
  const stored = readStatusNodes(op.input.workflow["status"])
  const before: Readonly<Record<string, NodeStatus>> = stored.ok ? stored.nodes : {}
  const wfStarted = ms(op.status.startedAt) ?? op.now
  const wfRealtime = (): Map<string, Realtime> => {
    const finished = ms(op.status.finishedAt)
    return new Map([["workflow.duration", finished === undefined ? { startedAt: wfStarted } : { startedAt: wfStarted, finishedAt: finished }]])
  }

  for (const id in op.nodes) {
    const node: Node = op.nodes[id]
    if (node.type === "StepGroup" || node.type === "TaskGroup" || node.type === "Skipped") continue
    const prev = before[id]
    const done = fulfilled(node.phase) && node.phase !== "Skipped" && node.phase !== "Omitted"
    const isNew = prev === undefined
    const justDone = done && (prev === undefined || !fulfilled(prev.phase))
    if (!isNew && !justDone) continue
    const tmpl = op.templateOfNode(node)
    const list = prometheusOf(tmpl?.metrics)
    if (list.length === 0) continue
    // an attempt of a retry emits only while its retry node goes on (the retry node emits at its end)
    const retryParent = Object.values(op.nodes).find((n) => n.type === "Retry" && (n.children ?? []).includes(id))
    if (retryParent !== undefined && justDone && fulfilled(retryParent.phase)) continue
    const realtime = new Map<string, Realtime>(wfRealtime())
    const scope = nodeScope(op, node, realtime)
    if (isNew) compute(op, list, scope, realtime, true, out, errors)
    if (justDone) compute(op, list, scope, realtime, false, out, errors)
  }

  const wfMetrics = prometheusOf(op.wf.spec.metrics)
  if (wfMetrics.length > 0) {
    const inputPhase = String((op.input.workflow["status"] as { phase?: unknown } | undefined)?.phase ?? "")
    const wasDone = ["Succeeded", "Failed", "Error"].includes(inputPhase)
    const isDone = ["Succeeded", "Failed", "Error"].includes(phase)
    if (!wasDone) {
      const realtime = wfRealtime()
      const scope = new Map<string, unknown>(op.globals)
      scope.set("duration", "0")
      scope.set("status", "Pending")
      scope.set("resourcesDuration.cpu", "0")
      scope.set("resourcesDuration.memory", "0")
      if (isDone) {
        const finished = ms(op.status.finishedAt) ?? op.now
        scope.set("status", phase)
        scope.set("workflow.status", phase)
        scope.set("duration", ((finished - wfStarted) / 1000).toFixed(6))
        compute(op, wfMetrics, scope, realtime, false, out, errors)
      } else {
        compute(op, wfMetrics, scope, realtime, true, out, errors)
      }
    }
  }
  return { emit: out, errors }
}

/** Upstream's `MetricsError` condition (one, its message the last error), set in the status. */
export const recordMetricErrors = (op: OperationState, errors: ReadonlyArray<string>): void => {
  if (errors.length === 0) return
  const conditions = Array.isArray(op.status.conditions) ? [...op.status.conditions as Array<Record<string, unknown>>] : []
  const condition = { type: "MetricsError", status: "True", message: errors[errors.length - 1] }
  const i = conditions.findIndex((c) => c["type"] === "MetricsError")
  if (i >= 0) conditions[i] = condition
  else conditions.push(condition)
  op.status.conditions = conditions
}
