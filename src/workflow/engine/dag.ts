/**
 * DAG templates: tasks run once their dependencies (`dependencies` or
 * `depends`) allow, loops as task groups, `when`, exit hooks, `target`, and
 * the DAG's phase from its target tasks (`dag.failFast`; the template's
 * `failFast` is failFast.ts's). Upstream's
 * `executeDAG`, `executeDAGTask`, `buildLocalScopeFromTask` and
 * `assessDAGPhase` (workflow/controller/dag.go). Its 300 lines are one
 * concept: `runDagTask` alone is the body of upstream's `executeDAGTask`.
 */
import { type DagTask, isFailedOrError, isFulfilled, type NodePhase, type Template } from "../model/Workflow.js"
import { type DependencyState, dependsLogic, evaluateDepends, taskDependencies } from "./depends.js"
import { applyFailFast, isUnsuccessfulChild } from "./failFast.js"
import { exitHookDone, runCallLifecycleHooks, runOnExit } from "./hooks.js"
import { LayeredScope, TaskScope } from "./lazyScope.js"
import { expandLoop, isLoop } from "./loops.js"
import { continues, type ExecOpts, isFailure, type Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { addAggregateToScope, addNodeToScope, succeedWithOutputs } from "./outputs.js"
import { type Scope, substitute } from "./scope.js"
import { inheritPlacement, type Placement } from "./targeting.js"
import { resolveArgs, shouldExecute, substituteForMessage } from "./templates.js"

interface DagCtx {
  readonly node: Node
  readonly tmpl: Template
  readonly tasks: ReadonlyMap<string, DagTask>
  readonly visited: Set<string>
  /** `tasks.<name>.*` entries per task name (null: the task has no node), see `taskEntries`. */
  readonly entries: Map<string, Scope | null>
  readonly placement: Placement
  readonly onExit: boolean
  /** Template-level failFast after a failure (failFast.ts): no task that has not started starts. */
  readonly halt: { on: boolean }
}

/** `executeDAG`: the DAG node, its reachable tasks run, then its phase and (once Succeeded) its outputs; undefined while parallelism holds it back. */
export const executeDag = (op: OperationState, nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined => {
  const node = op.compositeNode(nodeName, "DAG", tmpl, opts, retried)
  if (node === undefined) return undefined
  const dag = tmpl.dag!
  const tasks = new Map(dag.tasks.map((t) => [t.name, t] as const))
  const ctx: DagCtx = {
    node,
    tmpl,
    tasks,
    visited: new Set(),
    entries: new Map(),
    placement: inheritPlacement(tmpl, opts.placement),
    onExit: opts.onExit,
    halt: { on: false }
  }
  let targets: ReadonlyArray<string>
  if (dag.target !== undefined && dag.target.trim() !== "") {
    const t = substitute(dag.target, op.globals, false, op.limits.expression)
    targets = (t.ok ? t.value : dag.target).split(" ").filter((x) => x !== "")
    const unknown = targets.find((x) => !tasks.has(x))
    if (unknown !== undefined) return op.markPhase(node, "Error", `target '${unknown}' is not a task of the DAG`)
  } else {
    const depended = new Set(dag.tasks.flatMap((t) => taskDependencies(t)))
    targets = dag.tasks.filter((t) => !depended.has(t.name)).map((t) => t.name)
  }
  const setOutbound = () => {
    node.outboundNodes = targets.flatMap((t) => {
      const tn = op.byName(`${nodeName}.${t}`)
      return tn === undefined ? [] : op.outboundNodes(tn.id)
    })
  }
  const failFast = applyFailFast(op, node, tmpl)
  if (failFast === "failed") {
    setOutbound()
    return node
  }
  ctx.halt.on = failFast === "halt"
  for (const t of targets) executeDagTask(op, ctx, t)
  // Upstream looks at the targets' hooks again once they ran, so a target that just finished starts its hooks before the DAG completes.
  for (const t of targets) {
    const tn = taskNode(op, ctx, t)
    const task = tasks.get(t)
    if (tn !== undefined && task !== undefined) taskHooksDone(op, ctx, task, tn)
  }

  const phase = assessDag(op, ctx, targets)
  if (phase === "Running") return node
  setOutbound()
  if (phase !== "Succeeded") return op.markPhase(node, phase)
  const scope = op.stepScope()
  for (const task of dag.tasks) {
    const tn = op.byName(`${nodeName}.${task.name}`)
    if (tn === undefined) continue
    if (tn.type === "TaskGroup") addAggregateToScope(op, scope, "tasks", task.name, op.childNodes(tn))
    addNodeToScope(op, scope, "tasks", task.name, tn)
  }
  return succeedWithOutputs(op, node, tmpl, scope)
}

const taskNode = (op: OperationState, ctx: DagCtx, name: string): Node | undefined => {
  return op.byName(`${ctx.node.name}.${name}`)
}

/** `buildLocalScopeFromTask`: the globals and every ancestor of the task (`GetTaskAncestry`), resolved on demand. */
const taskScope = (op: OperationState, ctx: DagCtx, task: DagTask): Scope => {
  return new TaskScope(
    op.stepScope(),
    taskDependencies(task),
    (name) => {
      op.spend()
      const t = ctx.tasks.get(name)
      return t === undefined ? [] : taskDependencies(t)
    },
    (name) => taskEntries(op, ctx, name),
    (name) => ctx.tasks.has(name)
  )
}

/**
 * The `tasks.<name>.*` entries of one task, built once per DAG visit: a task is
 * asked for only by its descendants, which run after it, so its node is final.
 */
const taskEntries = (op: OperationState, ctx: DagCtx, name: string): Scope | undefined => {
  const known = ctx.entries.get(name)
  if (known !== undefined) return known ?? undefined
  const dn = taskNode(op, ctx, name)
  let entries: Map<string, unknown> | undefined
  if (dn !== undefined) {
    entries = new Map()
    // A loop's items are children of its task group.
    if (dn.type === "TaskGroup") addAggregateToScope(op, entries, "tasks", name, op.childNodes(dn))
    addNodeToScope(op, entries, "tasks", name, dn)
  }
  ctx.entries.set(name, entries ?? null)
  return entries
}

/**
 * Execute a DAG task after its dependencies, each task once per reconcile
 * (`ctx.visited`), depth first like upstream's recursive `executeDAGTask`,
 * but on an explicit stack: a chain of thousands of tasks is data, not
 * call depth.
 */
const executeDagTask = (op: OperationState, ctx: DagCtx, target: string): void => {
  const stack: Array<{ readonly name: string; depsDone: boolean }> = [{ name: target, depsDone: false }]
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]
    if (!frame.depsDone) {
      if (ctx.visited.has(frame.name)) {
        stack.pop()
        continue
      }
      ctx.visited.add(frame.name)
      op.spend()
      const task = ctx.tasks.get(frame.name)
      const node = taskNode(op, ctx, frame.name)
      const deps = task === undefined ? [] : taskDependencies(task)
      if (deps.length > 0 && (node === undefined || (!isFulfilled(node.phase) && node.type !== "TaskGroup"))) {
        frame.depsDone = true
        for (let i = deps.length - 1; i >= 0; i--) if (!ctx.visited.has(deps[i])) stack.push({ name: deps[i], depsDone: false })
        continue
      }
    }
    stack.pop()
    runDagTask(op, ctx, frame.name)
  }
}

/** The task's lifecycle hooks run (hooks.ts); an expression that fails errors the task's node. */
const taskHooksDone = (op: OperationState, ctx: DagCtx, task: DagTask, node: Node): boolean => {
  if (task.hooks === undefined) return true
  const r = runCallLifecycleHooks(op, node, task, ctx.node.id, ctx.placement, "tasks", task.name, () => taskScope(op, ctx, task))
  if (!isFailure(r)) return r
  op.markPhase(node, "Error", r.error)
  return false
}

/** One task whose dependencies were visited: `executeDAGTask` after its recursion. */
const runDagTask = (op: OperationState, ctx: DagCtx, taskName: string): void => {
  const task = ctx.tasks.get(taskName)
  if (task === undefined) return
  const nodeName = `${ctx.node.name}.${taskName}`
  let node = taskNode(op, ctx, taskName)
  // Lifecycle hooks (hooks.ts) of a running or finished task; until those that started are done, it waits.
  if (node !== undefined && (isFulfilled(node.phase) || node.phase === "Running") && !taskHooksDone(op, ctx, task, node)) return
  if (node !== undefined && isFulfilled(node.phase)) {
    if (node.phase !== "Skipped" && node.phase !== "Omitted") {
      runOnExit(op, node, task, ctx.node.id, ctx.placement, "tasks", () => taskScope(op, ctx, task))
    }
    return
  }
  // Halted by failFast: a task not yet begun is not begun (upstream does not even visit the DAG then).
  if (node === undefined && ctx.halt.on) return
  const deps = taskDependencies(task)
  const connect = (childName: string, group: Node | undefined): void => {
    if (group !== undefined) op.addChild(group.name, childName)
    else if (deps.length === 0) op.addChild(ctx.node.name, childName)
    else {
      for (const d of deps) {
        const dn = taskNode(op, ctx, d)
        if (dn === undefined) continue
        for (const o of op.outboundNodes(dn.id)) {
          const on = op.nodes[o]
          if (on !== undefined) op.addChild(on.name, childName)
        }
      }
    }
  }
  const group = node?.type === "TaskGroup" ? node : undefined

  if (deps.length > 0 && group === undefined) {
    const states = new Map<string, DependencyState>()
    for (const d of deps) {
      const dn = taskNode(op, ctx, d)
      if (dn === undefined || !isFulfilled(dn.phase)) return
      if (!exitHookDone(op, dn)) return
      states.set(d, {
        phase: dn.phase,
        continueOn: ctx.tasks.get(d)?.continueOn,
        childPhases: dn.type === "TaskGroup" ? (dn.children ?? []).map((c) => op.nodes[c]?.phase ?? "Pending") : undefined
      })
    }
    let execute: boolean
    try {
      execute = evaluateDepends(dependsLogic(task), states)
    } catch (e) {
      op.initNode(nodeName, "Skipped", "Error", { boundaryId: ctx.node.id, templateName: task.template, message: String(e instanceof Error ? e.message : e) })
      connect(nodeName, undefined)
      return
    }
    if (!execute) {
      if (node === undefined) {
        op.initNode(nodeName, "Skipped", "Omitted", { boundaryId: ctx.node.id, templateName: task.template, message: "omitted: depends condition not met" })
        connect(nodeName, undefined)
      }
      return
    }
  }

  const scope = taskScope(op, ctx, task)
  let expanded: Array<{ name: string; vars: ReadonlyMap<string, unknown> }>
  if (isLoop(task)) {
    const loop = expandLoop(task, scope, op.limits.maxLoopItems, op.limits.expression)
    if (!loop.ok) {
      if (node === undefined) {
        op.initNode(nodeName, "Skipped", "Error", { boundaryId: ctx.node.id, templateName: task.template, message: loop.error })
        connect(nodeName, undefined)
      }
      return
    }
    if (loop.items.length === 0) {
      if (node === undefined) {
        op.initNode(nodeName, "Skipped", "Skipped", { boundaryId: ctx.node.id, templateName: task.template, message: "Skipped, empty params" })
        connect(nodeName, undefined)
      }
      return
    }
    expanded = loop.items.map((it) => ({ name: it.name, vars: it.vars }))
    if (node === undefined) {
      connect(nodeName, undefined)
      node = op.initNode(nodeName, "TaskGroup", "Running", { boundaryId: ctx.node.id, templateName: task.template })
    }
  } else expanded = [{ name: taskName, vars: new Map() }]

  const taskGroup = node?.type === "TaskGroup" ? node : undefined
  op.spend(expanded.length)
  for (const e of expanded) {
    const childName = `${ctx.node.name}.${e.name}`
    let child = op.byName(childName)
    if (child === undefined && ctx.halt.on) continue
    const local = e.vars.size === 0 ? scope : new LayeredScope(scope, e.vars)
    if (child === undefined) {
      const proceed = shouldExecute(op, task.when, local)
      if (isFailure(proceed)) {
        connect(childName, taskGroup)
        op.initNode(childName, "Skipped", "Error", { boundaryId: ctx.node.id, templateName: task.template, message: proceed.error })
        continue
      }
      if (!proceed) {
        connect(childName, taskGroup)
        op.initNode(childName, "Skipped", "Skipped", {
          boundaryId: ctx.node.id,
          templateName: task.template,
          message: `when '${substituteForMessage(task.when ?? "", local, op.limits.expression)}' evaluated false`
        })
        continue
      }
    }
    if (child !== undefined && isFulfilled(child.phase)) continue
    const args = resolveArgs(op, task, local)
    if (isFailure(args)) {
      if (child === undefined) connect(childName, taskGroup)
      op.errorNode(childName, args.error, { boundaryId: ctx.node.id, onExit: ctx.onExit }, task.template)
      continue
    }
    const existed = child !== undefined
    child = op.executeTemplate(childName, { template: task.template ?? "", args }, {
      boundaryId: ctx.node.id,
      onExit: ctx.onExit,
      placement: ctx.placement,
      callName: task.name,
      callKind: "task",
      parentTemplate: ctx.tmpl
    })
    if (child !== undefined && !existed) connect(childName, taskGroup)
    if (child !== undefined && ctx.tmpl.failFast === true && isUnsuccessfulChild(child, ctx.node.id)) ctx.halt.on = true
    if (child !== undefined && isFulfilled(child.phase) && taskGroup === undefined) {
      runOnExit(op, child, task, ctx.node.id, ctx.placement, "tasks", scope)
    }
  }
  if (taskGroup !== undefined) {
    let groupPhase: NodePhase = "Succeeded"
    for (const e of expanded) {
      const c = op.byName(`${ctx.node.name}.${e.name}`)
      if (c === undefined || !isFulfilled(c.phase)) return
      if (isFailedOrError(c.phase)) groupPhase = c.phase
    }
    op.markPhase(taskGroup, groupPhase)
  }
}

/** `assessDAGPhase`: BFS from the DAG's children, omitted tasks inherit their branch's phase. */
const assessDag = (op: OperationState, ctx: DagCtx, targets: ReadonlyArray<string>): NodePhase => {
  const targetPhases = new Map<string, NodePhase | "">()
  for (const t of targets) targetPhases.set(op.id(`${ctx.node.name}.${t}`), "")
  const queue: Array<{ id: string; phase: NodePhase }> = (ctx.node.children ?? []).map((id) => ({ id, phase: "Succeeded" }))
  const seen = new Set<string>()
  for (let head = 0; head < queue.length; head++) {
    const cur = queue[head]
    op.spend()
    const key = `${cur.id}/${cur.phase}`
    if (seen.has(key)) continue
    seen.add(key)
    const node = op.nodes[cur.id]
    if (node === undefined) return "Running"
    let branch = cur.phase
    if (!isFulfilled(node.phase)) return "Running"
    if (node.phase !== "Skipped" && node.phase !== "Omitted") branch = node.phase
    const prev = targetPhases.get(node.id)
    if (prev !== undefined && !isFailedOrError(prev || undefined)) targetPhases.set(node.id, branch)
    const next = node.type === "Retry"
      ? (node.children ?? []).flatMap((c) => op.nodes[c]?.nodeFlag?.hooked ? [c] : (op.nodes[c]?.children ?? []))
      : (node.children ?? [])
    for (const c of next) queue.push({ id: c, phase: branch })
  }
  // `dag.failFast` only (default true); the template's own `failFast` is failFast.ts's.
  const failFast = ctx.tmpl.dag?.failFast ?? true
  let result: NodePhase = "Succeeded"
  for (const t of targets) {
    const p = targetPhases.get(op.id(`${ctx.node.name}.${t}`))
    if (p === undefined || p === "") {
      result = "Running"
      if (!failFast) break
    } else if (isFailedOrError(p)) {
      if (continues(ctx.tasks.get(t), p)) continue
      result = p
      if (failFast) break
    }
  }
  return result
}
