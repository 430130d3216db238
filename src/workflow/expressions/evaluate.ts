/**
 * `evaluate`: expr-lang expressions against an Argo scope, with Argo's environment
 * (util/expr/env): the flat scope expanded into nested maps, plus `asInt`, `asFloat`,
 * `jsonpath`, `toJson` and `sprig`.
 */
import { Budget } from "./budget.js"
import type { ExpressionError, Scope } from "./contract.js"
import { exprFloat, exprInt } from "./expr-builtins.js"
import { Evaluator } from "./expr-eval.js"
import { parseExpr, type Node } from "./expr-parser.js"
import { jsonPathFunction } from "./jsonpath.js"
import { defaultExpressionLimits, type ExpressionLimits } from "./limits.js"
import { sprigFunctions } from "./sprig.js"
import { EvalError, ExprFunction, fromScopeValue, goJson, isMap, toPlain } from "./values.js"

export type Result<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: ExpressionError }

export const expressionError = (expression: string, message: string): ExpressionError => ({
  _tag: "ExpressionError",
  expression,
  message
})

/** 1-based line:column of a 0-based offset. */
const lineCol = (src: string, pos: number): string => {
  const before = src.slice(0, pos)
  const line = before.split("\n").length
  const col = pos - (before.lastIndexOf("\n") + 1) + 1
  return `${line}:${col}`
}

/** Error messages quote values; a huge one is cut rather than copied into the workflow's status. */
const MAX_MESSAGE = 2048
const clip = (message: string): string => (message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}... (${message.length - MAX_MESSAGE} more characters)` : message)

export const toExpressionError = (expression: string, e: unknown, what = "expression"): ExpressionError => {
  if (e instanceof EvalError) {
    const where = e.position === undefined ? "" : ` at position ${e.position + 1} (${lineCol(expression, e.position)})`
    return expressionError(expression, `failed to evaluate ${what} ${JSON.stringify(expression)}: ${clip(e.message)}${where}`)
  }
  if (e instanceof RangeError) return expressionError(expression, `failed to evaluate ${what} ${JSON.stringify(expression)}: ${e.message}`)
  throw e
}

/** Argo's `expand.Expand`: flat dotted keys to nested maps; a key that also has children (`item` and `item.os`) is dropped in favour of the children. */
export const expandScope = (scope: Scope): Record<string, unknown> => {
  const keys = [...scope.keys()].sort()
  const root: Record<string, unknown> = {}
  const parents = new Set<string>()
  for (const k of keys) {
    const parts = k.split(".")
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join("."))
  }
  for (const k of keys) {
    if (parents.has(k)) continue
    const parts = k.split(".")
    let node = root
    for (let i = 0; i < parts.length - 1; i++) {
      const existing = node[parts[i]]
      if (!isMap(existing)) node[parts[i]] = {}
      node = node[parts[i]] as Record<string, unknown>
    }
    node[parts[parts.length - 1]] = fromScopeValue(scope.get(k))
  }
  return root
}

const ARGO_FUNCTIONS: Record<string, unknown> = {
  asInt: new ExprFunction("asInt", (args) => {
    if (args.length !== 1) throw new EvalError(`asInt: expected 1 argument, got ${args.length}`)
    return exprInt(args[0])
  }),
  asFloat: new ExprFunction("asFloat", (args) => {
    if (args.length !== 1) throw new EvalError(`asFloat: expected 1 argument, got ${args.length}`)
    return exprFloat(args[0])
  }),
  jsonpath: jsonPathFunction,
  toJson: new ExprFunction("toJson", (args, budget) => {
    if (args.length !== 1) throw new EvalError(`toJson: expected 1 argument, got ${args.length}`)
    return goJson(args[0], undefined, budget)
  })
}

/** The expression environment Argo builds from a scope (`exprenv.GetFuncMap`). */
export const expressionEnv = (scope: Scope): Record<string, unknown> => ({
  ...expandScope(scope),
  ...ARGO_FUNCTIONS,
  sprig: sprigFunctions()
})

const parseCache = new Map<string, Node>()
export const parseCached = (expression: string): Node => {
  let node = parseCache.get(expression)
  if (node === undefined) {
    node = parseExpr(expression)
    if (parseCache.size > 2000) parseCache.clear()
    parseCache.set(expression, node)
  }
  return node
}

/** Evaluates and returns the raw value (ints as bigint), within a fresh budget of `limits`. Throws EvalError. */
export const evaluateRaw = (expression: string, env: Record<string, unknown>, limits: ExpressionLimits = defaultExpressionLimits): unknown => {
  const node = parseCached(expression)
  return new Evaluator({ root: env }, new Budget(limits)).run(node)
}

/**
 * Evaluates an expr-lang expression against the scope, as Argo does for `{{=...}}` tags and
 * `expression:` fields. Integers come back as JavaScript numbers, `nil` as `null`. The evaluation
 * stays within `limits` (steps, string and collection sizes): beyond them it is an expression error
 * naming the limit.
 */
export const evaluate = (expr: string, scope: Scope, limits: ExpressionLimits = defaultExpressionLimits): Result<unknown> => {
  try {
    return { ok: true, value: toPlain(evaluateRaw(expr, expressionEnv(scope), limits)) }
  } catch (e) {
    return { ok: false, error: toExpressionError(expr, e) }
  }
}

/** Evaluates an expression that must produce a boolean (Argo's `argoexpr.EvalBool`, used by e.g. `retryStrategy.expression`). */
export const evaluateBool = (expr: string, scope: Scope, limits: ExpressionLimits = defaultExpressionLimits): Result<boolean> => {
  const r = evaluate(expr, scope, limits)
  if (!r.ok) return r
  if (typeof r.value !== "boolean") {
    return { ok: false, error: expressionError(expr, `unable to cast expression result of ${JSON.stringify(expr)} to bool: got ${JSON.stringify(r.value)}`) }
  }
  return { ok: true, value: r.value }
}

// ---------------------------------------------------------------------------------------------
// Identifier analysis (Argo's missingVarsInEnv), used by `substitute` to decide whether an
// expression is "unresolved" (waits for later) or an error.

const memberPath = (node: Node): string | undefined => {
  const parts: string[] = []
  let cur: Node = node
  for (;;) {
    if (cur.type !== "member" || cur.optional || cur.property.type !== "string") return undefined
    parts.unshift(cur.property.value)
    if (cur.node.type === "ident") return [cur.node.name, ...parts].join(".")
    if (cur.node.type !== "member") return undefined
    cur = cur.node
  }
}

const children = (n: Node): Node[] => {
  switch (n.type) {
    case "array":
      return [...n.items]
    case "map":
      return n.pairs.flatMap(([k, v]) => [k, v])
    case "unary":
    case "chain":
    case "predicate":
      return [n.node]
    case "binary":
      return [n.left, n.right]
    case "member":
      return [n.node, n.property]
    case "slice":
      return [n.node, ...(n.from ? [n.from] : []), ...(n.to ? [n.to] : [])]
    case "call":
      return [n.callee, ...n.args]
    case "builtin":
      return [...n.args]
    case "conditional":
      return [n.cond, n.then, n.else]
    case "let":
      return [n.value, n.body]
    case "sequence":
      return [...n.nodes]
    default:
      return []
  }
}

const walk = (n: Node, f: (n: Node) => void): void => {
  f(n)
  for (const c of children(n)) walk(c, f)
}

/** The variable paths (`inputs.parameters.x`, `steps`, ...) an expression references, excluding member accesses guarded by `??` or `?.`. */
export const referencedVariables = (node: Node): string[] => {
  const guarded = new Set<Node>()
  walk(node, (n) => {
    if (n.type === "binary" && n.op === "??") walk(n.left, (m) => m.type === "member" && guarded.add(m))
    if (n.type === "member" && n.optional && n.node.type === "member") guarded.add(n.node)
  })
  const seen = new Set<string>()
  walk(node, (n) => {
    if (guarded.has(n)) return
    if (n.type === "ident") seen.add(n.name)
    if (n.type === "member") {
      const p = memberPath(n)
      if (p !== undefined) seen.add(p)
    }
  })
  return [...seen]
}

/** Argo's hasVarInEnv: whether a dotted path exists in the (nested) environment; a present nil leaf counts. */
export const hasVarInEnv = (env: Record<string, unknown>, path: string): boolean => {
  if (Object.prototype.hasOwnProperty.call(env, path)) return true
  let cur: unknown = env
  const parts = path.split(".")
  for (let i = 0; i < parts.length; i++) {
    if (cur === null || cur === undefined || !isMap(cur)) return false
    if (!Object.prototype.hasOwnProperty.call(cur, parts[i])) return false
    cur = cur[parts[i]]
  }
  return true
}
