/**
 * `evaluate`: expr-lang expressions against an Argo scope, in Argo's environment (env.ts), each
 * within a fresh budget of the expression limits. Parsed expressions are cached by their text.
 */
import { Budget } from "./budget.js"
import type { Scope } from "./contract.js"
import { expressionEnv } from "./env.js"
import { expressionError, type Result, toExpressionError } from "./errors.js"
import type { Node } from "./expr/ast.js"
import { Evaluator } from "./expr/evaluator.js"
import { parseExpr } from "./expr/parser.js"
import { defaultExpressionLimits, type ExpressionLimits } from "./limits.js"
import { toPlain } from "./values.js"

/** Parsed expressions by their text; cleared whole when it outgrows 2000 entries (expressions come from workflows, a bounded set). */
const parseCache = new Map<string, Node>()

/** Parses an expression, or returns its cached AST. Throws EvalError on a syntax error. */
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
