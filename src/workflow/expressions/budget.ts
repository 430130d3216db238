/**
 * The running account of one expression evaluation against its {@link ExpressionLimits}.
 *
 * Every AST node visited costs a step, and so does every element a builtin, a Sprig function or a
 * closure touches; string work costs a step per {@link CHARS_PER_STEP} code units. A string, list
 * or map is checked against its bound before it is built, so an expression asking for a billion
 * elements is refused without allocating them. Exceeding a bound throws an {@link EvalError}
 * marked `limit`, which no caller may swallow: it always surfaces as an expression error naming
 * the limit, never as a tag left unresolved.
 *
 * Deterministic by construction (no clock): the same expression over the same scope spends the
 * same steps, whatever ran before it.
 *
 * The budget knows sizes, not values: what touching a value of the value model costs (a call's
 * arguments, a function's result, a decoded document) is in charge.ts, beside the value model.
 */
import { defaultExpressionLimits, type ExpressionLimits } from "./limits.js"
import { EvalError } from "./errors.js"

/**
 * Code units of string work that cost one step. A step is about one AST node visit (tens of
 * nanoseconds); scanning or copying 16 characters natively costs about the same.
 */
export const CHARS_PER_STEP = 16

export const limitError = (message: string): EvalError => new EvalError(message, undefined, true)

export class Budget {
  private used = 0

  constructor(readonly limits: ExpressionLimits = defaultExpressionLimits) {}

  /** Charges `n` steps. */
  step(n = 1): void {
    this.used += n
    if (this.used > this.limits.maxSteps) {
      throw limitError(`expression exceeds ${this.limits.maxSteps} evaluation steps (limits.expression.maxSteps)`)
    }
  }

  /** Charges reading or writing `chars` code units of string. */
  scan(chars: number): void {
    this.step(Math.ceil(chars / CHARS_PER_STEP))
  }

  /** Refuses a string of `length` code units beyond the bound, before it is built; charges building it. */
  string(length: number): void {
    if (length > this.limits.maxStringLength) {
      throw limitError(`expression builds a string of ${length} characters, more than ${this.limits.maxStringLength} (limits.expression.maxStringLength)`)
    }
    this.scan(length)
  }

  /** Refuses growing a string to `total` code units beyond the bound; charges the `added` ones. */
  extend(total: number, added: number): void {
    if (total > this.limits.maxStringLength) {
      throw limitError(`expression builds a string of more than ${this.limits.maxStringLength} characters (limits.expression.maxStringLength)`)
    }
    this.scan(added)
  }

  /** Refuses a list or map of `length` elements beyond the bound, before it is built; charges building it. */
  collection(length: number): void {
    if (length > this.limits.maxCollectionLength) {
      throw limitError(`expression builds a list or map of ${length} elements, more than ${this.limits.maxCollectionLength} (limits.expression.maxCollectionLength)`)
    }
    this.step(length)
  }

  /** Refuses growing a list or map to `length` elements beyond the bound; charges the one added. */
  element(length: number): void {
    if (length > this.limits.maxCollectionLength) {
      throw limitError(`expression builds a list or map of more than ${this.limits.maxCollectionLength} elements (limits.expression.maxCollectionLength)`)
    }
    this.step()
  }
}
