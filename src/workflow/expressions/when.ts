/**
 * `when:` conditions. Argo first substitutes `{{...}}` tags (strictly for `steps.*`/`tasks.*`),
 * then evaluates the text with govaluate (github.com/Knetic/govaluate) after turning every
 * variable token into a string literal — so bare words compare as strings: `heads == heads`,
 * `Failed == Failed`. Numbers are float64, `true`/`false` are booleans, `'...'`/`"..."` are
 * strings (ISO dates in quotes become unix-second numbers), `=~`/`!~` are regex matches (Go's
 * regexp: RE2, linear time). Evaluation stays within the expression limits like any expression.
 */
import { Budget } from "./budget.js"
import type { Scope } from "./contract.js"
import { EvalError, expressionError, type Result } from "./errors.js"
import { compileGoRegexp, type GoRegexp, matchString } from "./go/regexp.js"
import { defaultExpressionLimits, type ExpressionLimits } from "./limits.js"
import { allowUnresolvedExcept, substitute, type SubstituteOptions } from "./substitute.js"
import { formatGoFloat } from "./values.js"

type Kind = "number" | "bool" | "string" | "accessor" | "op" | "open" | "close" | "sep"
interface Tok {
  readonly kind: Kind
  readonly value: string | number | boolean
  readonly pos: number
}

class GovalError extends Error {
  constructor(message: string, readonly pos?: number) {
    super(message)
  }
}

const SYMBOLS = new Set([
  "==", "!=", ">", ">=", "<", "<=", "=~", "!~", "&&", "||", "&", "|", "^", "<<", ">>", "+", "-", "*", "/", "%", "**",
  "!", "~", "?", ":", "??", ","
])

const isLetter = (c: string) => /\p{L}/u.test(c)
const isDigit = (c: string) => /\p{Nd}/u.test(c)
const isSpace = (c: string) => /\s/u.test(c)
const isSymbolChar = (c: string) => !(isDigit(c) || isLetter(c) || "()[]'\"".includes(c) || isSpace(c))

// Date layouts govaluate recognises in quoted strings (interpreted as UTC here).
const parseDate = (s: string): number | undefined => {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(s)
  if (!m) return undefined
  if (m[4] !== undefined && m[5] === undefined && m[8] === undefined) return undefined
  if (m[4] !== undefined && s[10] === " " && m[8] !== undefined) return undefined
  const [y, mo, d, h = "0", mi = "0", sec = "0", frac = ""] = m.slice(1)
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)) + (frac ? Math.round(Number(frac) * 1000) : 0)
  const z = m[8]
  if (z && z !== "Z") {
    const sign = z[0] === "-" ? -1 : 1
    const digits = z.slice(1).replace(":", "")
    t -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000
  }
  return Number.isNaN(t) ? undefined : t / 1000
}

const isValueKind = (k: Kind | undefined) => k === "number" || k === "bool" || k === "string" || k === "accessor" || k === "close"

const lex = (src: string): Tok[] => {
  const out: Tok[] = []
  let i = 0
  while (i < src.length) {
    const c = src[i]
    const pos = i
    if (isSpace(c)) {
      i++
      continue
    }
    if (isDigit(c)) {
      let j = i
      if (c === "0" && (src[i + 1] === "x" || src[i + 1] === "X")) {
        j += 2
        while (j < src.length && /[0-9a-fA-F]/.test(src[j])) j++
        out.push({ kind: "number", value: parseInt(src.slice(i + 2, j), 16), pos })
      } else {
        while (j < src.length && (isDigit(src[j]) || src[j] === ".")) j++
        const text = src.slice(i, j)
        if (!/^\d+(\.\d*)?$/.test(text)) throw new GovalError(`Unable to parse numeric value '${text}' to float64`, pos)
        out.push({ kind: "number", value: Number(text), pos })
      }
      i = j
      continue
    }
    if (c === "'" || c === '"') {
      let j = i + 1
      let text = ""
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\\" && j + 1 < src.length) j++
        text += src[j]
        j++
      }
      if (j >= src.length) throw new GovalError("Unclosed string literal", pos)
      const date = parseDate(text)
      out.push(date === undefined ? { kind: "string", value: text, pos } : { kind: "number", value: date, pos })
      i = j + 1
      continue
    }
    if (c === "[") {
      const j = src.indexOf("]", i + 1)
      if (j < 0) throw new GovalError("Unclosed parameter bracket", pos)
      // an escaped variable name; Argo turns variables into strings
      out.push({ kind: "string", value: src.slice(i + 1, j), pos })
      i = j + 1
      continue
    }
    if (c === "(" || c === ")") {
      out.push({ kind: c === "(" ? "open" : "close", value: c, pos })
      i++
      continue
    }
    if (isLetter(c)) {
      let j = i
      while (j < src.length && (isLetter(src[j]) || isDigit(src[j]) || src[j] === "_" || src[j] === ".")) j++
      const word = src.slice(i, j)
      i = j
      if (word === "true" || word === "false") out.push({ kind: "bool", value: word === "true", pos })
      else if (word === "in" || word === "IN") out.push({ kind: "op", value: "in", pos })
      else if (word.indexOf(".") > 0) {
        if (word.endsWith(".")) throw new GovalError(`Hanging accessor on token '${word}'`, pos)
        out.push({ kind: "accessor", value: word, pos })
      } else out.push({ kind: "string", value: word, pos }) // a variable, which Argo turns into a string
      continue
    }
    let j = i
    while (j < src.length && isSymbolChar(src[j])) j++
    const sym = src.slice(i, j)
    if (!SYMBOLS.has(sym)) throw new GovalError(`Invalid token: '${sym}'`, pos)
    out.push({ kind: sym === "," ? "sep" : "op", value: sym, pos })
    i = j
  }
  return out
}

type Ast =
  | { readonly t: "lit"; readonly value: unknown; readonly pos: number }
  | { readonly t: "accessor"; readonly name: string; readonly pos: number }
  | { readonly t: "list"; readonly items: Ast[]; readonly pos: number }
  | { readonly t: "prefix"; readonly op: string; readonly node: Ast; readonly pos: number }
  | { readonly t: "bin"; readonly op: string; readonly left: Ast; readonly right: Ast; readonly pos: number }

// Lowest to highest precedence.
const LEVELS: ReadonlyArray<ReadonlyArray<string>> = [
  ["?", ":", "??"],
  ["||"],
  ["&&"],
  ["==", "!=", ">", ">=", "<", "<=", "=~", "!~", "in"],
  ["&", "|", "^"],
  ["<<", ">>"],
  ["+", "-"],
  ["*", "/", "%"],
  ["**"]
]

class GovalParser {
  private i = 0
  constructor(private readonly toks: Tok[], private readonly srcLength: number) {}
  private peek(): Tok | undefined {
    return this.toks[this.i]
  }
  parse(): Ast {
    if (this.toks.length === 0) throw new GovalError("Unexpected end of expression", 0)
    const node = this.parseSeparated()
    const t = this.peek()
    if (t) throw new GovalError(t.kind === "close" ? "Unbalanced parenthesis" : `Cannot transition token types: unexpected '${String(t.value)}'`, t.pos)
    return node
  }
  private parseSeparated(): Ast {
    const first = this.parseLevel(0)
    if (this.peek()?.kind !== "sep") return first
    const items = [first]
    while (this.peek()?.kind === "sep") {
      this.i++
      items.push(this.parseLevel(0))
    }
    return { t: "list", items, pos: first.pos }
  }
  private parseLevel(level: number): Ast {
    if (level >= LEVELS.length) return this.parsePrefix()
    let left = this.parseLevel(level + 1)
    for (;;) {
      const t = this.peek()
      if (!t || t.kind !== "op" || !LEVELS[level].includes(String(t.value))) return left
      this.i++
      const right = this.parseLevel(level + 1)
      left = { t: "bin", op: String(t.value), left, right, pos: t.pos }
    }
  }
  private parsePrefix(): Ast {
    const t = this.peek()
    if (t && t.kind === "op" && (t.value === "-" || t.value === "!" || t.value === "~")) {
      this.i++
      return { t: "prefix", op: String(t.value), node: this.parsePrefix(), pos: t.pos }
    }
    return this.parseValue()
  }
  private parseValue(): Ast {
    const t = this.peek()
    if (!t) throw new GovalError("Unexpected end of expression", this.srcLength)
    this.i++
    switch (t.kind) {
      case "number":
      case "bool":
      case "string":
        if ((isValueKind(this.peek()?.kind) && this.peek()?.kind !== "close") || this.peek()?.kind === "open") {
          const n = this.peek()!
          throw new GovalError(`Cannot transition token types from ${t.kind.toUpperCase()} [${String(t.value)}] to ${n.kind.toUpperCase()} [${String(n.value)}]`, n.pos)
        }
        return { t: "lit", value: t.value, pos: t.pos }
      case "accessor":
        return { t: "accessor", name: String(t.value), pos: t.pos }
      case "open": {
        const inner = this.parseSeparated()
        const close = this.peek()
        if (!close || close.kind !== "close") throw new GovalError("Unbalanced parenthesis", close?.pos ?? this.srcLength)
        this.i++
        return inner
      }
      default:
        throw new GovalError(`Unexpected token '${String(t.value)}'`, t.pos)
    }
  }
}

const show = (v: unknown): string => (typeof v === "number" ? formatGoFloat(v) : Array.isArray(v) ? `[${v.map(show).join(" ")}]` : v === null ? "<nil>" : String(v))

const typeError = (v: unknown, op: string, what: string, expected: string) =>
  new GovalError(`Value '${show(v)}' cannot be used with the ${what} '${op}', it is not a ${expected}`)

const evalAst = (n: Ast, budget: Budget): unknown => {
  budget.step()
  const evalAst_ = (m: Ast) => evalAst(m, budget)
  switch (n.t) {
    case "lit":
      return n.value
    case "accessor":
      throw new GovalError(`No parameter '${n.name.split(".")[0]}' found.`, n.pos)
    case "list":
      return n.items.map(evalAst_)
    case "prefix": {
      const v = evalAst_(n.node)
      if (n.op === "-") {
        if (typeof v !== "number") throw typeError(v, "-", "modifier", "number")
        return -v
      }
      if (n.op === "!") {
        if (typeof v !== "boolean") throw typeError(v, "!", "modifier", "bool")
        return !v
      }
      if (typeof v !== "number") throw typeError(v, "~", "modifier", "number")
      return Number(~BigInt.asIntN(64, BigInt(Math.trunc(v))))
    }
    case "bin": {
      const op = n.op
      if (op === "&&" || op === "||") {
        const l = evalAst_(n.left)
        if (typeof l !== "boolean") throw typeError(l, op, "logical operator", "bool")
        if (op === "&&" && !l) return false
        if (op === "||" && l) return true
        const r = evalAst_(n.right)
        if (typeof r !== "boolean") throw typeError(r, op, "logical operator", "bool")
        return r
      }
      const l = evalAst_(n.left)
      if (op === "?") return l === true ? evalAst_(n.right) : l === false ? null : (() => { throw typeError(l, op, "ternary operator", "bool") })()
      if (op === ":" || op === "??") return l !== null && l !== undefined ? l : evalAst_(n.right)
      const r = evalAst_(n.right)
      switch (op) {
        case "==":
          return deepEq(l, r)
        case "!=":
          return !deepEq(l, r)
        case ">":
        case ">=":
        case "<":
        case "<=": {
          if (!((typeof l === "number" && typeof r === "number") || (typeof l === "string" && typeof r === "string"))) {
            throw typeError(typeof l === "number" || typeof l === "string" ? r : l, op, "comparator", "number")
          }
          return op === ">" ? l > r : op === ">=" ? l >= r : op === "<" ? l < r : l <= r
        }
        case "=~":
        case "!~": {
          if (typeof l !== "string") throw typeError(l, op, "comparator", "string")
          if (typeof r !== "string") throw typeError(r, op, "comparator", "string")
          let re: GoRegexp
          try {
            re = compileGoRegexp(r, budget)
          } catch (e) {
            if (e instanceof EvalError && e.limit) throw e
            throw new GovalError(`Unable to compile regexp pattern '${r}': ${(e as Error).message}`, n.pos)
          }
          return op === "=~" ? matchString(re, l, budget) : !matchString(re, l, budget)
        }
        case "in": {
          if (!Array.isArray(r)) throw typeError(r, op, "comparator", "array")
          return r.some((x) => {
            budget.step()
            return deepEq(l, x)
          })
        }
        case "+":
          if (typeof l === "string" || typeof r === "string") {
            const joined = [show(l), show(r)]
            budget.string(joined[0].length + joined[1].length)
            return joined[0] + joined[1]
          }
          if (typeof l === "number" && typeof r === "number") return l + r
          throw typeError(typeof l === "number" ? r : l, op, "modifier", "number")
      }
      if (typeof l !== "number") throw typeError(l, op, "modifier", "number")
      if (typeof r !== "number") throw typeError(r, op, "modifier", "number")
      const li = () => BigInt.asIntN(64, BigInt(Math.trunc(l)))
      const ri = () => BigInt.asIntN(64, BigInt(Math.trunc(r)))
      switch (op) {
        case "-":
          return l - r
        case "*":
          return l * r
        case "/":
          return l / r
        case "%":
          return l % r
        case "**":
          return Math.pow(l, r)
        case "&":
          return Number(li() & ri())
        case "|":
          return Number(li() | ri())
        case "^":
          return Number(li() ^ ri())
        // Shift counts are unsigned in Go; 64 or more shifts everything out (without building a huge integer first).
        case "<<": {
          const count = BigInt.asUintN(64, ri())
          return count >= 64n ? 0 : Number(BigInt.asIntN(64, li() << count))
        }
        default: {
          const count = BigInt.asUintN(64, ri())
          return count >= 64n ? (li() < 0n ? -1 : 0) : Number(li() >> count)
        }
      }
    }
  }
}

const deepEq = (a: unknown, b: unknown): boolean => {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEq(x, b[i]))
  return a === b
}

/**
 * Evaluates an already-substituted `when` string with govaluate semantics (Argo's `shouldExecute`),
 * within `limits`. An empty condition is true.
 */
export const evaluateGovaluate = (condition: string, limits: ExpressionLimits = defaultExpressionLimits): Result<boolean> => {
  if (condition === "") return { ok: true, value: true }
  try {
    const ast = new GovalParser(lex(condition), condition.length).parse()
    const result = evalAst(ast, new Budget(limits))
    if (typeof result !== "boolean") {
      return { ok: false, error: expressionError(condition, `Expected boolean evaluation for '${condition}'. Got ${show(result)}`) }
    }
    return { ok: true, value: result }
  } catch (e) {
    if (e instanceof GovalError) {
      const where = e.pos === undefined ? "" : ` at position ${e.pos + 1}`
      const hint = e.message.startsWith("Invalid token") ? ` (hint: try wrapping the affected expression in quotes ("))` : ""
      return { ok: false, error: expressionError(condition, `Invalid 'when' expression '${condition}': ${e.message}${where}${hint}`) }
    }
    if ((e instanceof EvalError && e.limit) || e instanceof RangeError) {
      return { ok: false, error: expressionError(condition, `Invalid 'when' expression '${condition}': ${e.message}`) }
    }
    throw e
  }
}

/**
 * Parses a `when` condition (after substitution) without evaluating it: `undefined` when it is
 * well-formed govaluate, otherwise the parse error (for linting).
 */
export const parseGovaluate = (condition: string): string | undefined => {
  if (condition === "") return undefined
  try {
    new GovalParser(lex(condition), condition.length).parse()
    return undefined
  } catch (e) {
    if (e instanceof GovalError) return e.pos === undefined ? e.message : `${e.message} at position ${e.pos + 1}`
    throw e
  }
}

export type WhenOptions = SubstituteOptions

/**
 * Argo's `when`: substitute `{{...}}` / `{{=...}}` tags, then evaluate with govaluate.
 * By default substitution is strict for `steps.*` and `tasks.*` references (as the controller does);
 * options with `strict` or `allowUnresolved` change that. `limits` (default
 * `defaultExpressionLimits`) bound each expression tag and the govaluate evaluation.
 */
export const evaluateWhen = (condition: string, scope: Scope, options?: WhenOptions): Result<boolean> => {
  const limits = options?.limits ?? defaultExpressionLimits
  const strictness =
    options?.strict === undefined && options?.allowUnresolved === undefined
      ? { strict: true, allowUnresolved: allowUnresolvedExcept(["steps", "tasks"]) }
      : { strict: options.strict, allowUnresolved: options.allowUnresolved }
  const substituted = substitute(condition, scope, { ...strictness, limits })
  if (!substituted.ok) return substituted
  const r = evaluateGovaluate(substituted.value, limits)
  if (!r.ok && substituted.value !== condition) {
    return { ok: false, error: { ...r.error, expression: condition, message: `${r.error.message} (from ${JSON.stringify(condition)})` } }
  }
  return r
}
