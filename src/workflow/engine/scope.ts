/**
 * The engine's one door to the expression module (`../expressions`):
 * `{{...}}` substitution, `{{=expr}}` expressions and `when` conditions.
 *
 * The expression module is written separately; until it is present this
 * adapter falls back to a small built-in subset (plain `{{name}}` lookups and
 * govaluate-style `when` comparisons) so the engine and its tests run either
 * way. Nothing else in the engine may import the expression module directly.
 */
import type { Scope } from "../expressions/contract.js"

export type { Scope }

export type ExprResult<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly error: { readonly expression: string; readonly message: string } }

interface ExpressionsModule {
  readonly substitute: (text: string, scope: Scope, options?: { readonly strict?: boolean }) => ExprResult<string>
  readonly evaluate: (expr: string, scope: Scope) => ExprResult<unknown>
  readonly evaluateWhen: (cond: string, scope: Scope) => ExprResult<boolean>
}

// A computed specifier keeps the type checker from requiring the module to exist yet.
const expressionsPath = "../expressions/index.js"
const loaded: ExpressionsModule | undefined = await import(/* @vite-ignore */ expressionsPath).then(
  (m: Partial<ExpressionsModule>) =>
    typeof m.substitute === "function" && typeof m.evaluate === "function" && typeof m.evaluateWhen === "function"
      ? (m as ExpressionsModule)
      : undefined,
  () => undefined
)

/** Which implementation is in use: the expression module, or the built-in fallback. */
export const expressionsBackend: "expressions" | "fallback" = loaded === undefined ? "fallback" : "expressions"

const tagPattern = /\{\{(.*?)\}\}/gs

const ok = <A>(value: A): ExprResult<A> => ({ ok: true, value })
const err = (expression: string, message: string): ExprResult<never> => ({ ok: false, error: { expression, message } })

const stringify = (v: unknown): string =>
  typeof v === "string" ? v : v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v)

const fallbackSubstitute = (text: string, scope: Scope): ExprResult<string> => {
  let failure: ExprResult<string> | undefined
  const out = text.replace(tagPattern, (whole, inner: string) => {
    const key = inner.trim()
    if (key.startsWith("=")) {
      failure ??= err(whole, "expression tags need the expression module")
      return whole
    }
    if (scope.get(key) === undefined || scope.get(key) === null) {
      failure ??= err(whole, `failed to resolve ${whole}`)
      return whole
    }
    return stringify(scope.get(key))
  })
  return failure ?? ok(out)
}

/**
 * Substitute `{{...}}` tags. With `allowUnresolved`, tags that cannot be
 * resolved yet are left as written (Argo does this for template bodies whose
 * step references are only known later).
 */
export const substitute = (text: string, scope: Scope, allowUnresolved = false): ExprResult<string> => {
  if (!text.includes("{{")) return ok(text)
  // The expression module leaves unresolved tags alone unless asked to be strict.
  if (loaded !== undefined) return loaded.substitute(text, scope, { strict: !allowUnresolved })
  const sub = fallbackSubstitute
  const whole = sub(text, scope)
  if (whole.ok || !allowUnresolved) return whole
  // Resolve tag by tag, keeping the ones that fail.
  let out = ""
  let last = 0
  for (const m of text.matchAll(tagPattern)) {
    out += text.slice(last, m.index)
    const r = sub(m[0], scope)
    out += r.ok ? r.value : m[0]
    last = (m.index ?? 0) + m[0].length
  }
  return ok(out + text.slice(last))
}

/** Substitute every string inside a JSON value. */
export const substituteObject = <A>(value: A, scope: Scope, allowUnresolved = false): ExprResult<A> => {
  let failure: ExprResult<A> | undefined
  const walk = (v: unknown): unknown => {
    if (failure !== undefined) return v
    if (typeof v === "string") {
      const r = substitute(v, scope, allowUnresolved)
      if (!r.ok) {
        failure = r
        return v
      }
      return r.value
    }
    if (Array.isArray(v)) return v.map(walk)
    if (typeof v === "object" && v !== null) {
      const o: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(v)) o[k] = walk(x)
      return o
    }
    return v
  }
  const out = walk(value) as A
  return failure ?? ok(out)
}

/** Evaluate an expr-lang expression (valueFrom.expression, retryStrategy.expression). */
export const evaluate = (expr: string, scope: Scope): ExprResult<unknown> => {
  if (loaded !== undefined) return loaded.evaluate(expr, scope)
  // The fallback knows only a bare variable name.
  const key = expr.trim()
  if (scope.has(key)) return ok(scope.get(key))
  return err(expr, "expressions need the expression module")
}

/** Evaluate a `when` condition (govaluate syntax after substitution, or `{{=expr}}`). */
export const evaluateWhen = (cond: string, scope: Scope): ExprResult<boolean> => {
  if (loaded !== undefined) return loaded.evaluateWhen(cond, scope)
  const s = fallbackSubstitute(cond, scope)
  if (!s.ok) return s
  try {
    return ok(truthy(new Govaluate(s.value).parse()))
  } catch (e) {
    return err(cond, `invalid when expression '${s.value}': ${e instanceof Error ? e.message : String(e)}`)
  }
}

const truthy = (v: unknown): boolean => {
  if (typeof v === "boolean") return v
  throw new Error(`expected a boolean, got ${JSON.stringify(v)}`)
}

/** A small govaluate subset: comparisons, regex match, !, &&, ||, parentheses. */
class Govaluate {
  private readonly tokens: Array<string>
  private pos = 0
  constructor(text: string) {
    this.tokens = [...text.matchAll(/\s*(==|!=|=~|!~|<=|>=|&&|\|\||[()<>!]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s()<>!=&|~]+)/g)].map((m) => m[1])
  }
  parse(): unknown {
    const v = this.or()
    if (this.pos !== this.tokens.length) throw new Error(`unexpected '${this.tokens[this.pos]}'`)
    return v
  }
  private peek(): string | undefined {
    return this.tokens[this.pos]
  }
  private or(): unknown {
    let l = this.and()
    while (this.peek() === "||") {
      this.pos++
      const r = this.and()
      l = truthy(l) || truthy(r)
    }
    return l
  }
  private and(): unknown {
    let l = this.cmp()
    while (this.peek() === "&&") {
      this.pos++
      const r = this.cmp()
      l = truthy(l) && truthy(r)
    }
    return l
  }
  private cmp(): unknown {
    const l = this.unary()
    const op = this.peek()
    if (op === "==" || op === "!=" || op === "=~" || op === "!~" || op === "<" || op === ">" || op === "<=" || op === ">=") {
      this.pos++
      const r = this.unary()
      switch (op) {
        case "==":
          return String(l) === String(r)
        case "!=":
          return String(l) !== String(r)
        case "=~":
          return new RegExp(String(r)).test(String(l))
        case "!~":
          return !new RegExp(String(r)).test(String(l))
        default: {
          const a = Number(l)
          const b = Number(r)
          return op === "<" ? a < b : op === ">" ? a > b : op === "<=" ? a <= b : a >= b
        }
      }
    }
    return l
  }
  private unary(): unknown {
    const t = this.peek()
    if (t === "!") {
      this.pos++
      return !truthy(this.unary())
    }
    if (t === "(") {
      this.pos++
      const v = this.or()
      if (this.peek() !== ")") throw new Error("missing ')'")
      this.pos++
      return v
    }
    if (t === undefined) throw new Error("unexpected end")
    this.pos++
    if (t === "true") return true
    if (t === "false") return false
    if (/^["'].*["']$/s.test(t)) return t.slice(1, -1)
    return t
  }
}
