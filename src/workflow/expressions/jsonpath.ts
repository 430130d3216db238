/**
 * Argo's `jsonpath(jsonString, path)` expression function. Upstream parses the string with
 * `json.Unmarshal` (numbers become float64) and queries it with github.com/evilmonkeyinc/jsonpath,
 * which returns the single value for a definite path (`$.a`, `$[0].value`) and a list for an
 * indefinite one (wildcards, filters, slices, unions, recursive descent). The query itself is
 * delegated to jsonpath-plus.
 */
import { JSONPath } from "jsonpath-plus"
import { EvalError, ExprFunction, goJsonParse, goTypeName } from "./values.js"

/** Whether a JSONPath selects at most one value. */
export const isDefinitePath = (path: string): boolean => {
  // Strip quoted strings so that characters inside bracket-quoted keys are not mistaken for operators.
  const bare = path.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g, "''")
  if (bare.includes("..") || bare.includes("*") || bare.includes("?(")) return false
  for (const m of bare.matchAll(/\[([^\]]*)\]/g)) if (m[1].includes(":") || m[1].includes(",")) return false
  return true
}

export const jsonPathQuery = (jsonText: unknown, path: unknown): unknown => {
  if (typeof jsonText !== "string") throw new EvalError(`jsonpath: cannot use ${goTypeName(jsonText)} as argument (type string)`)
  if (typeof path !== "string") throw new EvalError(`jsonpath: cannot use ${goTypeName(path)} as path (type string)`)
  const json = goJsonParse(jsonText)
  if (!path.startsWith("$")) throw new EvalError(`jsonpath: invalid path ${JSON.stringify(path)}: must start with '$'`)
  let results: unknown[]
  try {
    results = JSONPath({ path, json: json as object, wrap: true, eval: "safe" }) as unknown[]
  } catch (e) {
    throw new EvalError(`jsonpath: invalid path ${JSON.stringify(path)}: ${(e as Error).message}`)
  }
  if (!Array.isArray(results)) results = []
  if (isDefinitePath(path)) {
    if (results.length === 0) throw new EvalError(`jsonpath: ${JSON.stringify(path)} not found`)
    return results[0] ?? null
  }
  return results
}

export const jsonPathFunction = new ExprFunction("jsonpath", (args) => {
  if (args.length !== 2) throw new EvalError(`jsonpath: expected 2 arguments, got ${args.length}`)
  return jsonPathQuery(args[0], args[1])
})
