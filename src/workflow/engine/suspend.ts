/**
 * Suspend nodes: waiting until resumed, or until `suspend.duration` has
 * passed, then succeeding with the output parameters' defaults. Upstream's
 * `executeSuspend` (workflow/controller/operator.go).
 */
import { parseDurationMs } from "../../util/goDuration.js"
import { isFulfilled, type Parameter, type Template } from "../model/Workflow.js"
import type { ExecOpts, Node } from "./nodes.js"
import type { OperationState } from "./operation.js"

/**
 * `executeSuspend`: the node waits (Running) until resumed; with
 * `suspend.duration` (seconds, or a Go duration) it resumes by itself once
 * that long has passed since it started, its output parameters taking
 * their `valueFrom.default`, as upstream's `OverrideOutputParametersWithDefault`.
 * A duration that does not parse errors the node rather than waiting for ever.
 */
export const executeSuspend = (op: OperationState, nodeName: string, tmpl: Template, opts: ExecOpts): Node => {
  let node = op.byName(nodeName)
  if (node === undefined) {
    node = op.initNode(nodeName, "Suspend", "Running", { boundaryId: opts.boundaryId, templateName: tmpl.name, hooked: opts.hooked })
    const supplied = suppliedOutputs(tmpl)
    if (supplied.length > 0) node.outputs = { parameters: supplied }
  }
  if (isFulfilled(node.phase)) return node
  const duration = tmpl.suspend?.duration
  if (duration === undefined || duration === "") return node
  const ms = parseDurationMs(duration)
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
    return op.markPhase(node, "Error", `suspend.duration: invalid duration ${JSON.stringify(duration)}`)
  }
  const resumeAt = Date.parse(node.startedAt ?? op.nowIso) + ms
  if (op.now < resumeAt) {
    op.requeue(resumeAt)
    return node
  }
  const declared = tmpl.outputs?.parameters ?? []
  if (declared.length > 0) {
    const parameters = declared.map((p) => {
      const fallback = p.valueFrom?.default ?? p.value
      return fallback === undefined ? { name: p.name } : { name: p.name, value: fallback }
    })
    node.outputs = { ...(node.outputs ?? {}), parameters }
  }
  return op.markPhase(node, "Succeeded", "")
}

/**
 * Upstream's `addRawOutputFields`: a suspend node carries, from its start, the
 * output parameters to be supplied on resume (`valueFrom.supplied`), each with
 * its default (or the input parameter of the same name's), so that whoever
 * resumes it (`flotilla resume`, `argo resume`) reads them from the node, not
 * from a template looked up by name.
 */
const suppliedOutputs = (tmpl: Template): Array<Parameter> =>
  (tmpl.outputs?.parameters ?? []).filter((p) => p.valueFrom?.supplied !== undefined).map((p) => {
    if (p.valueFrom?.default !== undefined) return p
    // The template arrives processed: an input's default is already its value.
    const input = (tmpl.inputs?.parameters ?? []).find((i) => i.name === p.name)
    const fromInput = input?.default ?? input?.value
    return fromInput === undefined ? p : { ...p, valueFrom: { ...p.valueFrom, default: fromInput } }
  })
