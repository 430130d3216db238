/**
 * DAG task dependencies: `dependencies` lists and enhanced `depends`
 * expressions (`A && (B.Failed || !C.Skipped)`), evaluated over the phases of
 * the dependency nodes like upstream's `dag.go` / `ancestry.go`.
 */
import type { DagTask, NodePhase } from "../model/Workflow.js"

const suffixes = ["Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed"] as const
type Suffix = (typeof suffixes)[number]

const tokenPattern = /\s*(&&|\|\||[()!]|[A-Za-z0-9_][A-Za-z0-9_.-]*)/g

const splitRef = (word: string): { readonly task: string; readonly suffix?: Suffix } => {
  const dot = word.lastIndexOf(".")
  if (dot > 0) {
    const s = word.slice(dot + 1)
    if ((suffixes as ReadonlyArray<string>).includes(s)) return { task: word.slice(0, dot), suffix: s as Suffix }
  }
  return { task: word }
}

/** Parsed once per task object: the engine asks for a task's dependencies many times per reconcile. */
const dependenciesOf = new WeakMap<DagTask, ReadonlyArray<string>>()

/** The names of the tasks a task depends on, in first-mention order. */
export const taskDependencies = (task: DagTask): ReadonlyArray<string> => {
  const known = dependenciesOf.get(task)
  if (known !== undefined) return known
  const out = parseDependencies(task)
  dependenciesOf.set(task, out)
  return out
}

const parseDependencies = (task: DagTask): ReadonlyArray<string> => {
  if (task.dependencies !== undefined) return [...new Set(task.dependencies)]
  if (task.depends === undefined || task.depends.trim() === "") return []
  const out = new Set<string>()
  for (const m of task.depends.matchAll(tokenPattern)) {
    const t = m[1]
    if (t === "&&" || t === "||" || t === "(" || t === ")" || t === "!") continue
    out.add(splitRef(t).task)
  }
  return [...out]
}

/** The depends logic of a task (`dependencies` are converted to an `&&` of bare names). */
export const dependsLogic = (task: DagTask): string =>
  task.dependencies !== undefined ? task.dependencies.join(" && ") : (task.depends ?? "")

export interface DependencyState {
  readonly phase: NodePhase
  /** Phases of expanded children (TaskGroup), for AnySucceeded / AllFailed. */
  readonly childPhases?: ReadonlyArray<NodePhase>
  /** The dependency task's continueOn, which widens a bare reference. */
  readonly continueOn?: { readonly failed?: boolean; readonly error?: boolean }
}

const test = (state: DependencyState | undefined, suffix: Suffix | undefined): boolean => {
  if (state === undefined) return false
  const p = state.phase
  switch (suffix) {
    case undefined:
      // A bare name means the task "completed successfully" (ancestry.go expandDependency).
      return p === "Succeeded" || p === "Skipped" || (state.continueOn?.failed === true && p === "Failed") ||
        (state.continueOn?.error === true && p === "Error")
    case "Succeeded":
      return p === "Succeeded"
    case "Failed":
      return p === "Failed"
    case "Errored":
      return p === "Error"
    case "Skipped":
      return p === "Skipped"
    case "Omitted":
      return p === "Omitted"
    case "Daemoned":
      return false
    case "AnySucceeded":
      return (state.childPhases ?? []).some((c) => c === "Succeeded")
    case "AllFailed": {
      const c = state.childPhases ?? []
      return c.length > 0 && c.every((x) => x === "Failed" || x === "Error")
    }
  }
}

/**
 * Nesting of parentheses and `!` a depends expression may have: the parser
 * recurses per level, and the expression comes from the user, so a deeper one
 * is a malformed expression rather than a stack overflow.
 */
const maxDependsNesting = 200

/** Evaluate the depends logic; throws on a malformed expression. */
export const evaluateDepends = (logic: string, states: ReadonlyMap<string, DependencyState>): boolean => {
  if (logic.trim() === "") return true
  const tokens = [...logic.matchAll(tokenPattern)].map((m) => m[1])
  const consumed = [...logic.matchAll(tokenPattern)].reduce((n, m) => n + m[0].length, 0)
  if (consumed !== logic.length && logic.slice(consumed).trim() !== "") throw new Error(`invalid depends '${logic}'`)
  let pos = 0
  const or = (): boolean => {
    let v = and()
    while (tokens[pos] === "||") {
      pos++
      const r = and()
      v = v || r
    }
    return v
  }
  const and = (): boolean => {
    let v = unary()
    while (tokens[pos] === "&&") {
      pos++
      const r = unary()
      v = v && r
    }
    return v
  }
  let nesting = 0
  const nested = <A>(f: () => A): A => {
    if (++nesting > maxDependsNesting) throw new Error(`invalid depends '${logic}': nested more than ${maxDependsNesting} levels deep`)
    try {
      return f()
    } finally {
      nesting--
    }
  }
  const unary = (): boolean => {
    const t = tokens[pos++]
    if (t === "!") return nested(() => !unary())
    if (t === "(") {
      const v = nested(or)
      if (tokens[pos++] !== ")") throw new Error(`invalid depends '${logic}': missing ')'`)
      return v
    }
    if (t === undefined || t === ")" || t === "&&" || t === "||") throw new Error(`invalid depends '${logic}'`)
    const ref = splitRef(t)
    return test(states.get(ref.task), ref.suffix)
  }
  const v = or()
  if (pos !== tokens.length) throw new Error(`invalid depends '${logic}'`)
  return v
}
