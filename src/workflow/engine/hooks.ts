/**
 * Exit hooks: the workflow's (`spec.onExit` or `spec.hooks.exit`) and a step's
 * or task's (`onExit` or `hooks.exit`), run once the node they follow is
 * complete, as a child `<node>.onExit` node. Upstream's `runOnExitNode`
 * (workflow/controller/exit_handler.go) and `GetExitHook`.
 */
import { type Arguments, isFulfilled, type TemplateCall, type Workflow } from "../model/Workflow.js"
import { isFailure, type Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { addNodeToScope } from "./outputs.js"
import type { Scope } from "./scope.js"
import type { Placement } from "./targeting.js"
import { resolveArgs } from "./templates.js"

/**
 * Run `<node>.onExit` for a completed step/task; true when the hook (if any) is fulfilled.
 * `scope` may be given as a function: building a task's scope costs its ancestry, and most tasks have no hook.
 */
export const runOnExit = (
  op: OperationState,
  parent: Node,
  call: TemplateCall,
  boundaryId: string,
  placement: Placement,
  prefix: "steps" | "tasks",
  scope: Scope | (() => Scope)
): boolean => {
  const hook = call.onExit !== undefined ? { template: call.onExit, arguments: undefined } : call.hooks?.exit
  if (hook?.template === undefined) return true
  const local = new Map(typeof scope === "function" ? scope() : scope)
  addNodeToScope(op, local, prefix, call.name, parent)
  const args = resolveArgs(op, { name: call.name, template: hook.template, arguments: hook.arguments }, local)
  const name = `${parent.name}.onExit`
  const node = isFailure(args)
    ? op.errorNode(name, args.error, { boundaryId, onExit: true, hooked: true })
    : op.executeTemplate(name, { template: hook.template, args }, { boundaryId, onExit: true, hooked: true, placement })
  if (node !== undefined) op.addChild(parent.name, name)
  return node !== undefined && isFulfilled(node.phase)
}

/** Whether the node's own exit hook, if it has one, is complete (a dependant waits for it). */
export const exitHookDone = (op: OperationState, node: Node): boolean => {
  const hook = op.byName(`${node.name}.onExit`)
  return hook === undefined || isFulfilled(hook.phase)
}

/** The workflow's exit hook: its template and the arguments it is called with. */
export interface WorkflowExitHook {
  readonly template: string
  readonly arguments: Arguments | undefined
}

/**
 * `spec.GetExitHook(spec.arguments)`: spec.onExit gets the workflow's arguments; a `hooks.exit`
 * hook gets its own arguments, or the workflow's when it has none.
 */
export const workflowExitHook = (wf: Workflow): WorkflowExitHook | undefined =>
  wf.spec.onExit !== undefined && wf.spec.onExit !== ""
    ? { template: wf.spec.onExit, arguments: wf.spec.arguments }
    : wf.spec.hooks?.exit?.template !== undefined
    ? {
      template: wf.spec.hooks.exit.template,
      arguments: (wf.spec.hooks.exit.arguments?.parameters ?? []).length > 0 ? wf.spec.hooks.exit.arguments : wf.spec.arguments
    }
    : undefined

/** Run the workflow's exit hook as `<workflow>.onExit`, its arguments resolved against the globals; undefined while held back. */
export const runWorkflowExitHook = (op: OperationState, hook: WorkflowExitHook): Node | undefined => {
  const exitName = `${op.wf.metadata.name}.onExit`
  const args = resolveArgs(op, { name: exitName, template: hook.template, arguments: hook.arguments }, op.globals)
  return isFailure(args)
    ? op.errorNode(exitName, args.error, { onExit: true, hooked: true }, hook.template)
    : op.executeTemplate(exitName, { template: hook.template, args }, { onExit: true, hooked: true })
}
