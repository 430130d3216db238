/**
 * Argo's `jsonpath(jsonString, path)` expression function. Upstream parses the string with
 * `json.Unmarshal` (numbers become float64) and queries it with github.com/evilmonkeyinc/jsonpath,
 * which returns the single value for a definite path (`$.a`, `$[0].value`) and a list for an
 * indefinite one (wildcards, filters, slices, unions, recursive descent). The query itself is
 * delegated to jsonpath-plus.
 *
 * The path comes from users, so jsonpath-plus never evaluates script here: filters (`[?(...)]`)
 * and script subscripts (`[(...)]`) go to the small evaluator below, which knows upstream's
 * operators (`== != < <= > >= =~ && || ! + - * / % **`, `@`/`$` selectors, literals) and nothing
 * else: no method calls (jsonpath-plus's own evaluator runs `@.name.match(/(a+)+$/)` with
 * JavaScript's backtracking RegExp, or `@.s.repeat(1e9)`), and `=~` is Go's regexp. Everything is
 * charged to the evaluation's budget: the document by its size, the path by what jsonpath-plus's
 * parser costs (quadratic in its length), every filter by its steps, the result by its length.
 */
import { JSONPath } from "jsonpath-plus"
import type { Budget } from "./budget.js"
import { EvalError, isLimitError } from "./errors.js"
import { compileGoRegexp, matchString } from "./go/regexp.js"
import { ExprFunction, goJsonParse, goTypeName, isMap } from "./values.js"

/** Whether a JSONPath selects at most one value. */
export const isDefinitePath = (path: string): boolean => {
  // Strip quoted strings so that characters inside bracket-quoted keys are not mistaken for operators.
  const bare = path.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g, "''")
  if (bare.includes("..") || bare.includes("*") || bare.includes("?(")) return false
  for (const m of bare.matchAll(/\[([^\]]*)\]/g)) if (m[1].includes(":") || m[1].includes(",")) return false
  return true
}

// ---------------------------------------------------------------------------------------------
// Filter and script expressions. jsonpath-plus hands over the expression with `@` rewritten to
// `_$_v` (and `@root`, `@parent`, `@property`, `@path` to `_$_root`, ...), and the values in a context.

type Tok =
  | { readonly k: "num"; readonly v: number }
  | { readonly k: "str"; readonly v: string }
  | { readonly k: "re"; readonly v: string }
  | { readonly k: "id"; readonly v: string }
  | { readonly k: "op"; readonly v: string }

type Ast =
  | { readonly t: "lit"; readonly v: unknown }
  | { readonly t: "var"; readonly name: string }
  | { readonly t: "get"; readonly of: Ast; readonly key: Ast }
  | { readonly t: "not" | "neg"; readonly of: Ast }
  | { readonly t: "bin"; readonly op: string; readonly l: Ast; readonly r: Ast }

const OPERATORS = ["===", "!==", "**", "==", "!=", "<=", ">=", "=~", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "(", ")", "[", "]", ".", ","]

const lexFilter = (src: string): Array<Tok> => {
  const out: Array<Tok> = []
  let i = 0
  while (i < src.length) {
    const c = src[i]
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++
    } else if (c === "'" || c === '"') {
      let j = i + 1
      let s = ""
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\\" && j + 1 < src.length) {
          j++
          s += src[j] === "n" ? "\n" : src[j] === "t" ? "\t" : src[j]
        } else s += src[j]
        j++
      }
      if (j >= src.length) throw new EvalError("unterminated string in filter")
      out.push({ k: "str", v: s })
      i = j + 1
    } else if (c >= "0" && c <= "9") {
      let j = i
      while (j < src.length && /[0-9.eE]/.test(src[j])) j++
      const v = Number(src.slice(i, j))
      if (Number.isNaN(v)) throw new EvalError(`invalid number ${src.slice(i, j)} in filter`)
      out.push({ k: "num", v })
      i = j
    } else if (c === "/" && out.length > 0 && out[out.length - 1].k === "op" && out[out.length - 1].v === "=~") {
      // A regular expression literal after =~ (`/pattern/i`): Go syntax, `i` as (?i).
      let j = i + 1
      let s = ""
      while (j < src.length && src[j] !== "/") {
        if (src[j] === "\\" && src[j + 1] === "/") j++
        else if (src[j] === "\\") s += src[j++]
        s += src[j]
        j++
      }
      if (j >= src.length) throw new EvalError("unterminated regular expression in filter")
      j++
      let flags = ""
      while (j < src.length && /[a-z]/.test(src[j])) flags += src[j++]
      const go = flags.replace(/[^ims]/g, "")
      out.push({ k: "re", v: go === "" ? s : `(?${go})${s}` })
      i = j
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i
      while (j < src.length && /[\w$]/.test(src[j])) j++
      out.push({ k: "id", v: src.slice(i, j) })
      i = j
    } else {
      const op = OPERATORS.find((o) => src.startsWith(o, i))
      if (op === undefined) throw new EvalError(`unexpected ${JSON.stringify(c)} in filter`)
      out.push({ k: "op", v: op })
      i += op.length
    }
  }
  return out
}

const LEVELS: ReadonlyArray<ReadonlyArray<string>> = [["||"], ["&&"], ["==", "!=", "===", "!==", "<", "<=", ">", ">=", "=~"], ["+", "-"], ["*", "/", "%"]]

class FilterParser {
  private i = 0
  constructor(private readonly toks: ReadonlyArray<Tok>) {}

  parse(): Ast {
    const e = this.level(0)
    if (this.i < this.toks.length) throw new EvalError(`unexpected ${JSON.stringify(this.toks[this.i].v)} in filter`)
    return e
  }

  private isOp(v: string): boolean {
    const t = this.toks[this.i]
    return t !== undefined && t.k === "op" && t.v === v
  }

  private level(n: number): Ast {
    if (n >= LEVELS.length) return this.power()
    let l = this.level(n + 1)
    for (;;) {
      const t = this.toks[this.i]
      if (t === undefined || t.k !== "op" || !LEVELS[n].includes(t.v)) return l
      this.i++
      const r = t.v === "=~" && this.toks[this.i]?.k === "re" ? { t: "lit" as const, v: (this.toks[this.i++] as { v: string }).v } : this.level(n + 1)
      l = { t: "bin", op: t.v, l, r }
    }
  }

  private power(): Ast {
    const base = this.unary()
    if (!this.isOp("**")) return base
    this.i++
    return { t: "bin", op: "**", l: base, r: this.power() }
  }

  private unary(): Ast {
    if (this.isOp("!")) {
      this.i++
      return { t: "not", of: this.unary() }
    }
    if (this.isOp("-")) {
      this.i++
      return { t: "neg", of: this.unary() }
    }
    return this.postfix(this.primary())
  }

  private postfix(e: Ast): Ast {
    for (;;) {
      if (this.isOp(".")) {
        this.i++
        const name = this.toks[this.i++]
        if (name === undefined || name.k !== "id") throw new EvalError("expected a name after '.' in filter")
        e = { t: "get", of: e, key: { t: "lit", v: name.v } }
      } else if (this.isOp("[")) {
        this.i++
        const key = this.level(0)
        if (!this.isOp("]")) throw new EvalError("expected ']' in filter")
        this.i++
        e = { t: "get", of: e, key }
      } else if (this.isOp("(")) {
        throw new EvalError("function calls are not supported in filters")
      } else return e
    }
  }

  private primary(): Ast {
    const t = this.toks[this.i++]
    if (t === undefined) throw new EvalError("unexpected end of filter")
    switch (t.k) {
      case "num":
      case "str":
      case "re":
        return { t: "lit", v: t.v }
      case "id":
        if (t.v === "true" || t.v === "false") return { t: "lit", v: t.v === "true" }
        if (t.v === "null" || t.v === "nil") return { t: "lit", v: null }
        if (t.v === "undefined") return { t: "lit", v: undefined }
        return { t: "var", name: t.v === "$" ? "_$_root" : t.v }
      case "op":
        if (t.v === "(") {
          const e = this.level(0)
          if (!this.isOp(")")) throw new EvalError("expected ')' in filter")
          this.i++
          return e
        }
    }
    throw new EvalError(`unexpected ${JSON.stringify(t.v)} in filter`)
  }
}

const parsed = new Map<string, Ast>()

const member = (of: unknown, key: unknown): unknown => {
  if (Array.isArray(of) || typeof of === "string") {
    if (key === "length") return of.length
    if (typeof key === "number" && Number.isInteger(key) && key >= 0 && key < of.length) return of[key]
    return undefined
  }
  if (isMap(of) && typeof key === "string" && Object.prototype.hasOwnProperty.call(of, key)) return of[key]
  return undefined
}

const equal = (a: unknown, b: unknown): boolean => a === b || (a == null && b == null)

const truthy = (v: unknown): boolean => v !== undefined && v !== null && v !== false && v !== 0 && v !== "" && !Number.isNaN(v)

const run = (e: Ast, context: Readonly<Record<string, unknown>>, budget: Budget): unknown => {
  budget.step()
  switch (e.t) {
    case "lit":
      return e.v
    case "var":
      if (!Object.prototype.hasOwnProperty.call(context, e.name)) throw new EvalError(`unknown name ${e.name} in filter`)
      return context[e.name]
    case "get":
      return member(run(e.of, context, budget), run(e.key, context, budget))
    case "not":
      return !truthy(run(e.of, context, budget))
    case "neg": {
      const v = run(e.of, context, budget)
      return typeof v === "number" ? -v : undefined
    }
    case "bin": {
      const l = run(e.l, context, budget)
      if (e.op === "&&") return truthy(l) ? run(e.r, context, budget) : l
      if (e.op === "||") return truthy(l) ? l : run(e.r, context, budget)
      const r = run(e.r, context, budget)
      switch (e.op) {
        case "==":
        case "===":
          return equal(l, r)
        case "!=":
        case "!==":
          return !equal(l, r)
        case "<":
        case "<=":
        case ">":
        case ">=":
          if (!((typeof l === "number" && typeof r === "number") || (typeof l === "string" && typeof r === "string"))) return false
          return e.op === "<" ? l < r : e.op === "<=" ? l <= r : e.op === ">" ? l > r : l >= r
        case "=~":
          if (typeof l !== "string" || typeof r !== "string") return false
          return matchString(compileGoRegexp(r, budget), l, budget)
        case "+":
          if (typeof l === "string" || typeof r === "string") {
            const a = typeof l === "string" ? l : String(l)
            const b = typeof r === "string" ? r : String(r)
            budget.string(a.length + b.length)
            return a + b
          }
      }
      if (typeof l !== "number" || typeof r !== "number") return undefined
      switch (e.op) {
        case "+":
          return l + r
        case "-":
          return l - r
        case "*":
          return l * r
        case "/":
          return l / r
        case "%":
          return l % r
        default:
          return l ** r
      }
    }
  }
}

/** The query running now (queries are synchronous), so that cached filters charge the right budget. */
let running: { readonly budget: Budget; limit?: unknown } | undefined

/** jsonpath-plus's `eval` callback: one filter or script expression against one candidate. */
const evalFilter = (code: string, context: object): unknown => {
  const query = running
  if (query === undefined) throw new EvalError("jsonpath: a filter outside a query")
  try {
    let ast = parsed.get(code)
    if (ast === undefined) {
      query.budget.scan(code.length)
      ast = new FilterParser(lexFilter(code)).parse()
      if (parsed.size >= 500) parsed.clear()
      parsed.set(code, ast)
    }
    return run(ast, context as Record<string, unknown>, query.budget)
  } catch (e) {
    if (isLimitError(e)) query.limit = e
    throw e
  }
}

/** jsonpath-plus keeps every path and script it has seen; forget them now and then. */
let queries = 0
const jsonPathCache = JSONPath as unknown as { cache: Record<string, unknown> }

/** Charges a decoded document: each node a step, and with recursive descent each node by its depth (the path copies jsonpath-plus makes). */
const chargeDocument = (v: unknown, recursive: boolean, budget: Budget, depth = 1): void => {
  budget.step(recursive ? depth : 1)
  if (Array.isArray(v)) for (const x of v) chargeDocument(x, recursive, budget, depth + 1)
  else if (isMap(v)) for (const x of Object.values(v)) chargeDocument(x, recursive, budget, depth + 1)
}

export const jsonPathQuery = (jsonText: unknown, path: unknown, budget: Budget): unknown => {
  if (typeof jsonText !== "string") throw new EvalError(`jsonpath: cannot use ${goTypeName(jsonText)} as argument (type string)`)
  if (typeof path !== "string") throw new EvalError(`jsonpath: cannot use ${goTypeName(path)} as path (type string)`)
  budget.scan(jsonText.length)
  const json = goJsonParse(jsonText)
  if (!path.startsWith("$")) throw new EvalError(`jsonpath: invalid path ${JSON.stringify(path)}: must start with '$'`)
  chargeDocument(json, path.includes(".."), budget)
  // jsonpath-plus splits a path with regular expressions that rescan the rest of the path at each
  // separator: measured quadratic (a 20,000-character path takes 170 ms, ten times that 17 s).
  budget.step(Math.ceil((path.length * path.length) / 128) + path.length)
  let results: unknown[]
  const query: { readonly budget: Budget; limit?: unknown } = { budget }
  running = query
  try {
    results = JSONPath({ path, json: json as object, wrap: true, eval: evalFilter }) as unknown[]
  } catch (e) {
    if (query.limit !== undefined) throw query.limit
    if (isLimitError(e)) throw e
    throw new EvalError(`jsonpath: invalid path ${JSON.stringify(path)}: ${(e as Error).message}`)
  } finally {
    running = undefined
    if (++queries % 500 === 0) jsonPathCache.cache = {}
  }
  if (!Array.isArray(results)) results = []
  budget.collection(results.length)
  if (isDefinitePath(path)) {
    if (results.length === 0) throw new EvalError(`jsonpath: ${JSON.stringify(path)} not found`)
    return results[0] ?? null
  }
  return results
}

export const jsonPathFunction = new ExprFunction("jsonpath", (args, budget) => {
  if (args.length !== 2) throw new EvalError(`jsonpath: expected 2 arguments, got ${args.length}`)
  return jsonPathQuery(args[0], args[1], budget)
})
