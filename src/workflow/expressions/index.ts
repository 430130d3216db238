/**
 * Argo-compatible expressions: `{{...}}` substitution, expr-lang `{{=...}}` expressions and
 * govaluate `when` conditions. The module's public surface; everything else in this folder is
 * internal to it.
 *
 * Layout (each module's header says more):
 * - contract.ts, limits.ts, errors.ts: the types callers see and how failures are reported.
 * - substitute.ts (`{{...}}`), when.ts (govaluate), evaluate.ts + env.ts (expr-lang in Argo's
 *   environment: the scope, `asInt`, `jsonpath`, `sprig`...).
 * - expr/: the expr-lang language itself, knowing nothing of Argo: lexer, ast, parser, evaluator,
 *   operators, builtins.
 * - values.ts (Go's value model and formatting), budget.ts + charge.ts (the evaluation limits),
 *   go/ (Go's strings, regexp and time layouts), sprig.ts, jsonpath.ts.
 */
export type { ExpressionError, Scope } from "./contract.js"
export type { Result } from "./errors.js"
export { evaluate, evaluateBool } from "./evaluate.js"
export { expandScope, expressionEnv } from "./env.js"
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
export { formatGoDate } from "./go/date.js"
export { parseExpr } from "./expr/parser.js"
export { referencedVariables } from "./expr/ast.js"
