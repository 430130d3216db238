/**
 * How an expression fails. Inside the languages a failure is a thrown {@link EvalError} (with the
 * 0-based offset it happened at, when known); at the module's boundary it becomes an
 * {@link ExpressionError} value naming the expression, and every public function returns a
 * {@link Result} instead of throwing.
 *
 * This module imports nothing at runtime, so every other module of the expression language may
 * depend on it.
 */
import type { ExpressionError } from "./contract.js"

/**
 * Thrown inside the evaluator; converted to an ExpressionError at the boundary. `limit` marks an
 * exceeded `ExpressionLimits` bound: that error is never swallowed (see budget.ts).
 */
export class EvalError extends Error {
  constructor(message: string, readonly position?: number, readonly limit = false) {
    super(message)
  }

  /** The same error at a position, with `suffix` appended to the message. */
  at(position: number | undefined, suffix = ""): EvalError {
    return new EvalError(this.message + suffix, position, this.limit)
  }
}

/** Whether `e` is an exceeded expression limit (which every catch must rethrow). */
export const isLimitError = (e: unknown): boolean => e instanceof EvalError && e.limit

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

/**
 * The ExpressionError for what an evaluation of `expression` threw: an {@link EvalError}, or a
 * RangeError (a stack or string overflow inside the engine). Anything else is a bug and is rethrown.
 */
export const toExpressionError = (expression: string, e: unknown, what = "expression"): ExpressionError => {
  if (e instanceof EvalError) {
    const where = e.position === undefined ? "" : ` at position ${e.position + 1} (${lineCol(expression, e.position)})`
    return expressionError(expression, `failed to evaluate ${what} ${JSON.stringify(expression)}: ${clip(e.message)}${where}`)
  }
  if (e instanceof RangeError) return expressionError(expression, `failed to evaluate ${what} ${JSON.stringify(expression)}: ${e.message}`)
  throw e
}
