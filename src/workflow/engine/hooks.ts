/**
 * Hooks. Exit hooks: the workflow's (`spec.onExit` or `spec.hooks.exit`) and a
 * step's or task's (`onExit` or `hooks.exit`), run once the node they follow is
 * complete, as a child `<node>.onExit` node. Upstream's `runOnExitNode`
 * (workflow/controller/exit_handler.go) and `GetExitHook`.
 *
 * Lifecycle hooks: every other entry of `spec.hooks` and of a step's or task's
 * `hooks`, run as `<node>.hooks.<name>` (flag `hooked`) from the first
 * reconcile its `expression` holds, then carried on whether it still holds or
 * not; the step group, task dependants and the workflow wait for the hooks
 * that started. Upstream's `executeWfLifeCycleHook` / `executeTmplLifeCycleHook`
 * (workflow/controller/hooks.go) and `CheckAllHooksFullfilled`.
 */
import { type Arguments, isFulfilled, type LifecycleHook, type TemplateCall, type Workflow } from "../model/Workflow.js"
import type { TemplateRef } from "../model/schema/common.js"
import { type Failure, isFailure, type Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { addNodeToScope } from "./outputs.js"
import { evaluate, type Scope } from "./scope.js"
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
  const hook: LifecycleHook | undefined = call.onExit !== undefined ? { template: call.onExit } : call.hooks?.exit
  if (hook === undefined || (hook.template === undefined && hook.templateRef === undefined)) return true
  const local = new Map(typeof scope === "function" ? scope() : scope)
  addNodeToScope(op, local, prefix, call.name, parent)
  const args = resolveArgs(op, { name: call.name, template: hook.template, templateRef: hook.templateRef, arguments: hook.arguments }, local)
  const name = `${parent.name}.onExit`
  const node = isFailure(args)
    ? op.errorNode(name, args.error, { boundaryId, onExit: true, hooked: true })
    : op.executeTemplate(name, { template: hook.template ?? "", args }, { boundaryId, onExit: true, hooked: true, placement, templateRef: hook.templateRef })
  if (node !== undefined) op.addChild(parent.name, name)
  return node !== undefined && isFulfilled(node.phase)
}

/** Whether the node's exit hook and the lifecycle hooks it started are complete (a dependant waits for them). */
export const exitHookDone = (op: OperationState, node: Node): boolean => {
  const hook = op.byName(`${node.name}.onExit`)
  if (hook !== undefined && !isFulfilled(hook.phase)) return false
  // Upstream's CheckAllHooksFullfilled: every hooked child.
  for (const c of node.children ?? []) {
    const child = op.nodes[c]
    if (child?.nodeFlag?.hooked === true && !isFulfilled(child.phase)) return false
  }
  return true
}

/** The hook names of `hooks` other than `exit`, in a stable order (upstream ranges over a Go map). */
const lifecycleHookNames = (hooks: Readonly<Record<string, LifecycleHook>> | undefined): Array<string> =>
  Object.keys(hooks ?? {}).filter((k) => k !== "exit").sort()

/** Hook nodes already executed in this operation: a DAG looks at a target's hooks twice per reconcile, a hook runs once. */
const executedHooks = new WeakMap<OperationState, Set<string>>()

/** `argoexpr.EvalBool`: the hook's expression against the scope; an error names the hook. */
const hookFires = (op: OperationState, hookNodeName: string, hook: LifecycleHook, scope: Scope): boolean | Failure => {
  if (hook.expression === undefined || hook.expression.trim() === "") return { error: `Expression required for hook ${hookNodeName}` }
  const r = evaluate(hook.expression, scope, op.limits.expression)
  if (!r.ok) return { error: `unable to evaluate expression '${hook.expression}': ${r.error.message}` }
  if (typeof r.value !== "boolean") return { error: `unable to cast expression result '${String(r.value)}' to bool` }
  return r.value
}

/**
 * Run hook `hookName` as `<parent>.hooks.<hookName>` when its expression holds
 * (or it started before); the hook node, undefined when it has not started (or
 * parallelism holds it back), or a Failure for its expression.
 */
const runLifecycleHook = (
  op: OperationState,
  parentName: string,
  hookName: string,
  hook: LifecycleHook,
  exprScope: Scope,
  argScope: () => Scope,
  opts: { readonly boundaryId?: string; readonly placement?: Placement; readonly caller: string }
): { readonly node: Node | undefined; readonly started: boolean } | Failure => {
  const name = `${parentName}.hooks.${hookName}`
  const existing = op.byName(name)
  const fires = hookFires(op, name, hook, exprScope)
  if (isFailure(fires)) return fires
  if (!fires && existing === undefined) return { node: undefined, started: false }
  let done = executedHooks.get(op)
  if (done === undefined) executedHooks.set(op, done = new Set())
  if (done.has(name)) return { node: existing, started: true }
  done.add(name)
  const execOpts = { boundaryId: opts.boundaryId, onExit: false, hooked: true, placement: opts.placement }
  let node: Node | undefined
  if ((hook.template === undefined || hook.template === "") && hook.templateRef === undefined) {
    node = op.errorNode(name, `hooks.${hookName}: a template name is required`, execOpts)
  } else {
    const args = resolveArgs(op, { name: opts.caller, template: hook.template, templateRef: hook.templateRef, arguments: hook.arguments }, argScope())
    node = isFailure(args)
      ? op.errorNode(name, args.error, execOpts, hook.template)
      : op.executeTemplate(name, { template: hook.template ?? "", args }, { ...execOpts, templateRef: hook.templateRef })
  }
  if (node !== undefined) op.addChild(parentName, name)
  return { node, started: true }
}

/**
 * A step's or task's lifecycle hooks (not its exit hook), with `<prefix>.<key>.status`
 * set to the node's phase: true once every hook that started is fulfilled, or the
 * Failure of an expression (the caller errors its node, as upstream's `markNodeError`).
 */
export const runCallLifecycleHooks = (
  op: OperationState,
  parent: Node,
  call: TemplateCall,
  boundaryId: string,
  placement: Placement,
  prefix: "steps" | "tasks",
  key: string,
  scope: Scope | (() => Scope)
): boolean | Failure => {
  const names = lifecycleHookNames(call.hooks)
  if (names.length === 0) return true
  const local = new Map(typeof scope === "function" ? scope() : scope)
  local.set(`${prefix}.${key}.status`, parent.phase)
  const argScope = () => {
    const withOutputs = new Map(local)
    addNodeToScope(op, withOutputs, prefix, call.name, parent)
    return withOutputs
  }
  let complete = true
  for (const hookName of names) {
    const r = runLifecycleHook(op, parent.name, hookName, call.hooks![hookName], local, argScope, { boundaryId, placement, caller: call.name })
    if (isFailure(r)) return r
    if (r.started && (r.node === undefined || !isFulfilled(r.node.phase))) complete = false
  }
  return complete
}

/**
 * The workflow's lifecycle hooks (`spec.hooks` but `exit`), against the globals
 * (`workflow.status` is the workflow's phase): true once every hook that started
 * is fulfilled. Hook nodes are children of the workflow's node.
 */
export const runWorkflowLifecycleHooks = (op: OperationState): boolean | Failure => {
  const hooks = op.wf.spec.hooks
  const names = lifecycleHookNames(hooks)
  let complete = true
  for (const hookName of names) {
    const r = runLifecycleHook(op, op.wf.metadata.name, hookName, hooks![hookName], op.globals, () => op.globals, { caller: op.wf.metadata.name })
    if (isFailure(r)) return r
    if (r.started && (r.node === undefined || !isFulfilled(r.node.phase))) complete = false
  }
  return complete
}

/** The workflow's exit hook: its template and the arguments it is called with. */
export interface WorkflowExitHook {
  readonly template: string
  readonly templateRef?: TemplateRef
  readonly arguments: Arguments | undefined
}

/**
 * `spec.GetExitHook(spec.arguments)`: spec.onExit gets the workflow's arguments; a `hooks.exit`
 * hook gets its own arguments, or the workflow's when it has none.
 */
export const workflowExitHook = (wf: Workflow): WorkflowExitHook | undefined =>
  wf.spec.onExit !== undefined && wf.spec.onExit !== ""
    ? { template: wf.spec.onExit, arguments: wf.spec.arguments }
    : wf.spec.hooks?.exit?.template !== undefined || wf.spec.hooks?.exit?.templateRef !== undefined
    ? {
      template: wf.spec.hooks.exit.template ?? "",
      ...(wf.spec.hooks.exit.templateRef !== undefined ? { templateRef: wf.spec.hooks.exit.templateRef } : {}),
      arguments: (wf.spec.hooks.exit.arguments?.parameters ?? []).length > 0 ? wf.spec.hooks.exit.arguments : wf.spec.arguments
    }
    : undefined

/** Run the workflow's exit hook as `<workflow>.onExit`, its arguments resolved against the globals; undefined while held back. */
export const runWorkflowExitHook = (op: OperationState, hook: WorkflowExitHook): Node | undefined => {
  const exitName = `${op.wf.metadata.name}.onExit`
  const call = { name: exitName, template: hook.template === "" ? undefined : hook.template, templateRef: hook.templateRef, arguments: hook.arguments }
  const args = resolveArgs(op, call, op.globals)
  return isFailure(args)
    ? op.errorNode(exitName, args.error, { onExit: true, hooked: true }, hook.template)
    : op.executeTemplate(exitName, { template: hook.template, args }, { onExit: true, hooked: true, templateRef: hook.templateRef })
}
