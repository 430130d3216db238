/**
 * Bounds on one expression evaluation (`{{=...}}`, `when`, `valueFrom.expression`,
 * `retryStrategy.expression`, `labelsFrom`). Expressions come from users and run
 * on the controller's event loop, so each evaluation has a budget of steps and
 * a bound on what it may build; exceeding either is an ordinary expression
 * error naming the expression, never a frozen controller.
 *
 * The defaults are far beyond what any workflow upstream runs needs (upstream's
 * expr-lang has no such bounds, but the API object size limit of about 1.5 MiB
 * caps every value a workflow can carry), and the configmap's `limits.expression`
 * overrides them.
 */
export interface ExpressionLimits {
  /**
   * Evaluation steps per expression: every AST node visited, every element a builtin, Sprig
   * function or closure touches, every 16 characters of string work and every character a regular
   * expression reads (budget.ts). A million steps is about a tenth of a second.
   */
  readonly maxSteps: number
  /** Longest string an expression (or a `{{...}}` substitution) may build, in UTF-16 code units. */
  readonly maxStringLength: number
  /** Longest array or map an expression may build. */
  readonly maxCollectionLength: number
}

export const defaultExpressionLimits: ExpressionLimits = {
  maxSteps: 1_000_000,
  maxStringLength: 4 * 1024 * 1024,
  maxCollectionLength: 1_000_000
}
