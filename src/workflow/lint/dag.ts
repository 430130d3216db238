/**
 * DAG templates: task names (unique; no leading digit with dependencies),
 * `depends` expressions and `dependencies` lists (known tasks, not both),
 * cycles, `target`, items-based conditions only on looping tasks, and each
 * task's scope: `tasks.<name>` may only name a task it depends on.
 */
import { isRecord } from "../../util/records.js"
import { evaluateDepends, taskDependencies } from "../engine/depends.js"
import type { DagTask } from "../model/Workflow.js"
import { type CallInfo, depSuffixes, type LintContext, list, type Obj, present, type RefCtx, str } from "./context.js"
import { checkCall } from "./calls.js"
import { scan } from "./references.js"

export const lintDag = (cx: LintContext, t: Obj, path: string, base: RefCtx, all: ReadonlyMap<string, CallInfo>): void => {
  const dag = t.dag as Obj
  const tasks = list(dag.tasks)
  if (tasks.length === 0) cx.add(`${path}.dag.tasks`, "a DAG must have at least one task")
  const byName = new Map<string, { task: Obj; index: number }>()
  tasks.forEach((task, i) => {
    if (!isRecord(task)) return
    const n = str(task.name)
    if (n === undefined) return
    if (byName.has(n)) cx.add(`${path}.dag.tasks[${i}].name`, `duplicate task name "${n}"`)
    else byName.set(n, { task, index: i })
  })
  const usingDepends = [...byName.values()].some(({ task }) => present(task.depends))
  const deps = new Map<string, ReadonlyArray<string>>()
  for (const [n, { task, index }] of byName) {
    const tp = `${path}.dag.tasks[${index}]`
    if ((usingDepends || present(task.dependencies)) && /^[0-9]/.test(n)) {
      cx.add(`${tp}.name`, `task name "${n}" cannot begin with a digit when using 'depends' or 'dependencies'`)
    }
    if (present(task.depends) && present(task.dependencies)) {
      cx.add(tp, "cannot use both 'depends' and 'dependencies' in the same task")
    } else if (usingDepends && present(task.dependencies)) {
      cx.add(`${tp}.dependencies`, "cannot use both 'depends' and 'dependencies' in the same DAG template")
    }
    if (usingDepends && present(task.continueOn)) {
      cx.add(`${tp}.continueOn`, "cannot use 'continueOn' when using 'depends'; use 'dep-task.Failed'/'dep-task.Errored' instead")
    }
    if (present(task.dependencies)) {
      list(task.dependencies).forEach((d, j) => {
        if (typeof d !== "string") return cx.add(`${tp}.dependencies[${j}]`, "a dependency must be a task name")
        if (!byName.has(d)) cx.add(`${tp}.dependencies[${j}]`, `unknown task "${d}"`)
        else if (d === n) cx.add(`${tp}.dependencies[${j}]`, `task "${n}" depends on itself`)
      })
    }
    const depends = str(task.depends)
    if (depends !== undefined) checkDepends(cx, depends, `${tp}.depends`, byName)
    deps.set(n, typeof task.dependencies === "object" || typeof task.depends === "string" ? safeDeps(task) : [])
  }
  checkCycles(cx, path, byName, deps)

  if (typeof dag.target === "string" && !dag.target.includes("{{")) {
    for (const tn of dag.target.split(" ").filter((x) => x !== "")) {
      if (!byName.has(tn)) cx.add(`${path}.dag.target`, `target "${tn}" is not a task of the DAG`)
    }
  }
  if (dag.target !== undefined) scan(cx, dag.target, `${path}.dag.target`, { ...base, tasks: { all, visible: new Set(all.keys()) } })

  for (const [n, { task, index }] of byName) {
    const tp = `${path}.dag.tasks[${index}]`
    const ancestors = ancestry(n, deps)
    const ctx: RefCtx = { ...base, tasks: { all, visible: ancestors, where: n } }
    checkCall(cx, task, tp, ctx, { kind: "tasks", name: n })
    // Items-based conditions need a loop on the dependency.
    const depends = str(task.depends) ?? ""
    for (const m of depends.matchAll(/([A-Za-z0-9_][A-Za-z0-9_.-]*)\.(AnySucceeded|AllFailed)\b/g)) {
      const dep = byName.get(m[1])
      if (dep !== undefined && !present(dep.task.withItems) && !present(dep.task.withParam) && !present(dep.task.withSequence)) {
        cx.add(`${tp}.depends`, `dependency "${m[1]}" uses an items-based condition (.${m[2]}) but has no withItems, withParam or withSequence`)
      }
    }
  }
}

export const checkDepends = (cx: LintContext, depends: string, path: string, tasks: ReadonlyMap<string, unknown>): void => {
  try {
    evaluateDepends(depends, new Map())
  } catch (e) {
    cx.add(path, `invalid depends expression: ${e instanceof Error ? e.message : String(e)}`)
    return
  }
  for (const m of depends.matchAll(/[A-Za-z0-9_][A-Za-z0-9_.-]*/g)) {
    const word = m[0]
    const dot = word.lastIndexOf(".")
    const task = dot > 0 && depSuffixes.includes(word.slice(dot + 1)) ? word.slice(0, dot) : word
    if (!tasks.has(task)) {
      cx.add(path, dot > 0 && !tasks.has(word) && tasks.has(word.slice(0, dot))
        ? `unknown result "${word.slice(dot + 1)}" of task "${word.slice(0, dot)}": use one of ${depSuffixes.join(", ")}`
        : `unknown task "${task}"`)
    }
  }
}

export const checkCycles = (cx: LintContext, path: string, byName: ReadonlyMap<string, { task: Obj; index: number }>, deps: ReadonlyMap<string, ReadonlyArray<string>>): void => {
  const done = new Set<string>()
  const reported = new Set<string>()
  const visit = (n: string, stack: Array<string>): void => {
    if (done.has(n)) return
    const at = stack.indexOf(n)
    if (at >= 0) {
      const cycle = [...stack.slice(at), n]
      const key = [...cycle.slice(0, -1)].sort().join(",")
      if (reported.has(key)) return
      reported.add(key)
      const first = byName.get(cycle[0])!
      const fieldName = present(first.task.depends) ? "depends" : "dependencies"
      cx.add(`${path}.dag.tasks[${first.index}].${fieldName}`, `dependency cycle detected: ${cycle.join(" -> ")}`)
      return
    }
    stack.push(n)
    for (const d of deps.get(n) ?? []) if (byName.has(d)) visit(d, stack)
    stack.pop()
    done.add(n)
  }
  for (const n of byName.keys()) visit(n, [])
}

const safeDeps = (task: Obj): ReadonlyArray<string> => {
  try {
    return taskDependencies(task as unknown as DagTask).filter((d) => typeof d === "string")
  } catch {
    return []
  }
}

/** Every task `name` transitively depends on. */
const ancestry = (name: string, deps: ReadonlyMap<string, ReadonlyArray<string>>): Set<string> => {
  const out = new Set<string>()
  const stack = [...(deps.get(name) ?? [])]
  while (stack.length > 0) {
    const d = stack.pop()!
    if (out.has(d)) continue
    out.add(d)
    stack.push(...(deps.get(d) ?? []))
  }
  return out
}
