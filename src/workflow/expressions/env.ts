/**
 * The environment Argo gives an expression (util/expr/env): the flat scope expanded into nested
 * maps, plus `asInt`, `asFloat`, `jsonpath`, `toJson` and the `sprig` functions. Where expr-lang
 * (expr/) meets Argo: nothing in expr/ knows these names.
 */
import type { Scope } from "./contract.js"
import { EvalError } from "./errors.js"
import { exprFloat, exprInt } from "./expr/builtins.js"
import { jsonPathFunction } from "./jsonpath.js"
import { sprigFunctions } from "./sprig.js"
import { ExprFunction, fromScopeValue, goJson, isMap } from "./values.js"

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
