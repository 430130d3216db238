/** Argo-compatible expressions: `{{...}}` substitution, expr-lang `{{=...}}` expressions and govaluate `when` conditions. */
export type { ExpressionError, Scope } from "./contract.js"
export { evaluate, evaluateBool, expandScope, expressionEnv, type Result } from "./expr.js"
export {
  allowUnresolvedExcept,
  formatExpressionResult,
  LITERAL_MARK,
  PLACEHOLDER_PREFIX,
  substitute,
  substituteObject,
  type SubstituteOptions
} from "./substitute.js"
export { evaluateWhen, evaluateGovaluate, parseGovaluate, type WhenOptions } from "./when.js"
export { formatGoDate } from "./godate.js"
export { parseExpr } from "./expr-parser.js"
export { referencedVariables } from "./expr.js"
