/**
 * Exit hooks: the workflow's (`spec.onExit` or `spec.hooks.exit`) and a step's
 * or task's (`onExit` or `hooks.exit`), run once the node they follow is
 * complete, as a child `<node>.onExit` node. Upstream's `runOnExitNode`
 * (workflow/controller/exit_handler.go) and `GetExitHook`.
 */
import { isFulfilled, type TemplateCall } from "../model/Workflow.js"
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

export const exitHookDone = (op: OperationState, node: Node): boolean => {
  const hook = op.byName(`${node.name}.onExit`)
  return hook === undefined || isFulfilled(hook.phase)
}
