/**
 * Steps templates: the step groups run in order, each group's steps (and
 * expanded loops) in parallel, `when`, `continueOn`, exit hooks, and the
 * outputs of one group visible to the next. Upstream's `executeSteps`,
 * `executeStepGroup` and `expandStepGroup` (workflow/controller/steps.go).
 */
import { isFailedOrError, isFulfilled, type Template, type TemplateCall } from "../model/Workflow.js"
import { applyFailFast, isUnsuccessfulChild } from "./failFast.js"
import { runCallLifecycleHooks, runOnExit } from "./hooks.js"
import { LayeredScope } from "./lazyScope.js"
import { expandLoop, isLoop } from "./loops.js"
import { continues, type ExecOpts, isFailure, type Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { addAggregateToScope, addNodeToScope, succeedWithOutputs } from "./outputs.js"
import { inheritPlacement, type Placement } from "./targeting.js"
import { resolveArgs, shouldExecute, substituteForMessage } from "./templates.js"

/** `executeSteps`: the Steps node, its groups in order; undefined while parallelism holds it back. */
export const executeSteps = (op: OperationState, nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined => {
  const node = op.compositeNode(nodeName, "Steps", tmpl, opts, retried)
  if (node === undefined) return undefined
  const placement = inheritPlacement(tmpl, opts.placement)
  const scope = op.stepScope()
  const groups = tmpl.steps ?? []
  const failFast = applyFailFast(op, node, tmpl, latestGroup(op, node, groups.length))
  if (failFast === "failed") {
    updateStepsOutbound(op, node, groups.length)
    return node
  }
  const halt = { on: failFast === "halt" }
  for (let i = 0; i < groups.length; i++) {
    op.spend()
    const sgName = `${nodeName}[${i}]`
    let sg = op.byName(sgName)
    if (sg === undefined) {
      sg = op.initNode(sgName, "StepGroup", "Running", { boundaryId: node.id, templateName: tmpl.name })
      if (i === 0) op.addChild(nodeName, sgName)
      else {
        const prev = op.byName(`${nodeName}[${i - 1}]`)
        if (prev !== undefined) {
          if ((prev.children ?? []).length === 0) op.addChild(prev.name, sgName)
          else {
            for (const c of prev.children ?? []) {
              for (const o of op.outboundNodes(c)) {
                const on = op.nodes[o]
                if (on !== undefined) op.addChild(on.name, sgName)
              }
            }
          }
        }
      }
    }
    const group = executeStepGroup(op, groups[i], sg, node.id, scope, placement, tmpl, opts.onExit, halt)
    if (!isFulfilled(group.phase)) return node
    if (isFailedOrError(group.phase)) {
      updateStepsOutbound(op, node, groups.length)
      return op.markPhase(node, "Failed", group.message ?? "")
    }
    // Outputs of every step of the group become visible to later groups.
    for (const step of groups[i]) {
      const childName = `${sgName}.${step.name}`
      const child = op.byName(childName)
      if (child !== undefined) {
        addNodeToScope(op, scope, "steps", step.name, child)
      } else {
        // A loop's items are children of the step group.
        const expanded = op.childNodes(sg).filter((n) =>
          n.boundaryID === node.id && n.name.startsWith(`${childName}(`) && n.type !== "Skipped"
        )
        if (expanded.length > 0) addAggregateToScope(op, scope, "steps", step.name, expanded)
        addNodeToScope(op, scope, "steps", step.name, group)
      }
    }
  }
  updateStepsOutbound(op, node, groups.length)
  return succeedWithOutputs(op, node, tmpl, scope)
}

/** The last step group of the Steps node so far (upstream's `findLeafNodeWithType(..., StepGroup)`). */
const latestGroup = (op: OperationState, node: Node, groupCount: number): Node | undefined => {
  for (let i = groupCount - 1; i >= 0; i--) {
    const sg = op.byName(`${node.name}[${i}]`)
    if (sg !== undefined) return sg
  }
  return undefined
}

const updateStepsOutbound = (op: OperationState, node: Node, groupCount: number): void => {
  for (let i = groupCount - 1; i >= 0; i--) {
    const sg = op.byName(`${node.name}[${i}]`)
    if (sg === undefined) continue
    node.outboundNodes = (sg.children ?? []).flatMap((c) => op.outboundNodes(c))
    return
  }
}

/**
 * `executeStepGroup`: one group's steps (loops expanded) run in parallel; complete once all are, with their exit hooks.
 * While `halt.on` (template-level failFast after a failure, see failFast.ts) no step that has not started starts.
 */
const executeStepGroup = (
  op: OperationState,
  steps: ReadonlyArray<TemplateCall>,
  sg: Node,
  boundaryId: string,
  scope: Map<string, unknown>,
  placement: Placement,
  parentTemplate: Template,
  onExit: boolean,
  halt: { on: boolean }
): Node => {
  if (isFulfilled(sg.phase)) return sg
  // Expand loops into concrete steps.
  const expanded: Array<{ step: TemplateCall; vars: ReadonlyMap<string, unknown>; origin: TemplateCall }> = []
  for (const step of steps) {
    if (!isLoop(step)) {
      expanded.push({ step, vars: new Map(), origin: step })
      continue
    }
    const loop = expandLoop(step, scope, op.limits.maxLoopItems, op.limits.expression)
    if (!loop.ok) return op.markPhase(sg, "Error", loop.error)
    op.spend(loop.items.length)
    for (const it of loop.items) expanded.push({ step: { ...step, name: it.name }, vars: it.vars, origin: step })
  }
  const stepOf = new Map<string, TemplateCall>()
  for (const { step, vars, origin } of expanded) {
    op.spend()
    const childName = `${sg.name}.${step.name}`
    stepOf.set(op.id(childName), origin)
    const existing = op.byName(childName)
    if (existing !== undefined && isFulfilled(existing.phase)) {
      op.addChild(sg.name, childName)
      continue
    }
    if (existing === undefined && halt.on) continue
    const local = vars.size === 0 ? scope : new LayeredScope(scope, vars)
    const proceed = shouldExecute(op, step.when, local)
    if (isFailure(proceed)) {
      op.errorNode(childName, proceed.error, { boundaryId, onExit })
      op.addChild(sg.name, childName)
      return op.markPhase(sg, "Error", proceed.error)
    }
    if (!proceed) {
      if (existing === undefined) {
        op.initNode(childName, "Skipped", "Skipped", {
          boundaryId,
          templateName: step.template,
          message: `when '${substituteForMessage(step.when ?? "", local, op.limits.expression)}' evaluated false`
        })
        op.addChild(sg.name, childName)
      }
      continue
    }
    const args = resolveArgs(op, step, local)
    if (isFailure(args)) {
      op.errorNode(childName, args.error, { boundaryId, onExit }, step.template)
      op.addChild(sg.name, childName)
      continue
    }
    const child = op.executeTemplate(childName, { template: step.template ?? "", args }, {
      boundaryId,
      onExit,
      placement,
      callName: origin.name,
      callKind: "step",
      parentTemplate
    })
    if (child !== undefined) op.addChild(sg.name, childName)
    if (child !== undefined && parentTemplate.failFast === true && isUnsuccessfulChild(child, boundaryId)) halt.on = true
  }

  // Complete when all children (and their exit hooks) are fulfilled.
  let completed = true
  for (const cid of sg.children ?? []) {
    const child = op.nodes[cid]
    if (child === undefined) continue
    // Lifecycle hooks (hooks.ts): a group waits for those that started, as upstream's executeStepGroup.
    const origin = stepOf.get(cid)
    const hooks = origin === undefined ? true : runCallLifecycleHooks(op, child, origin, boundaryId, placement, "steps", child.displayName, scope)
    if (isFailure(hooks)) return op.markPhase(sg, "Error", hooks.error)
    if (!hooks) return sg
    if (!isFulfilled(child.phase)) completed = false
    else {
      const step = stepOf.get(cid)
      if (step !== undefined && !runOnExit(op, child, { ...step, name: child.displayName }, boundaryId, placement, "steps", scope)) {
        completed = false
      }
    }
  }
  if (expanded.length > (sg.children ?? []).length) completed = false
  if (!completed) return sg
  for (const cid of sg.children ?? []) {
    const child = op.nodes[cid]
    if (child === undefined) continue
    const step = stepOf.get(cid)
    if (isFailedOrError(child.phase) && !continues(step, child.phase)) {
      return op.markPhase(sg, "Failed", `child '${cid}' failed`)
    }
  }
  return op.markPhase(sg, "Succeeded")
}
