/**
 * Argo's `{{...}}` template substitution (util/template): simple tags `{{name}}` and expression
 * tags `{{=expr}}`.
 *
 * Strictness (Argo's `Replace(allowUnresolved)` / `ReplaceStrictAny(prefixes)`):
 * - `strict: false` (default, Argo's `allowUnresolved=true`): a simple tag whose name is not in the
 *   scope is left as-is; an expression that errors or yields nil is left as-is.
 * - `strict: true`: an unresolved simple tag is an error unless `allowUnresolved(name)` returns true.
 *   An expression referencing a missing variable is an error unless `allowUnresolved(variable)`
 *   is true for every missing one (then the tag is left as-is); an expression whose variables are
 *   all present must evaluate (errors and nil results are errors).
 *   `strict: true` without `allowUnresolved` is Argo's `Replace(..., allowUnresolved=false)`;
 *   `strict: true, allowUnresolved: allowUnresolvedExcept(["steps", "tasks"])` is
 *   `ReplaceStrictAny(..., ["steps", "tasks"])` as the controller uses it for steps/tasks and `when`.
 *
 * Errors caused by a missing variable carry `missingVariable` (Argo requeues on those).
 *
 * Each expression tag is evaluated within `limits` (default `defaultExpressionLimits`), and the
 * substituted text may not outgrow `limits.maxStringLength`. An exceeded limit is always an error,
 * in every mode: a tag left as written would only be evaluated again later.
 *
 * Substitution is one pass: what a tag inserts (a parameter's value, a pod's output, an
 * expression's result) is text, never scanned for tags again.
 *
 * Whatever the mode, expressions referencing a late-binding variable that is absent (`item`,
 * `retries`, `lastRetry.*`, `workflow.status`, `workflow.failures`) stay as-is when unresolved
 * tags are allowed, so they can be resolved later, and a present-but-nil value (an absent optional
 * output) in a simple tag is always an error.
 */
import type { ExpressionError, Scope } from "./contract.js"
import { expressionEnv, hasVarInEnv } from "./env.js"
import { EvalError, expressionError, isLimitError, type Result, toExpressionError } from "./errors.js"
import { evaluateRaw, parseCached } from "./evaluate.js"
import { referencedVariables } from "./expr/ast.js"
import { defaultExpressionLimits, type ExpressionLimits } from "./limits.js"
import { goJson } from "./values.js"

export interface SubstituteOptions {
  /** Fail on unresolved references (see the module documentation). Default false. */
  readonly strict?: boolean
  /** In strict mode, names that may nevertheless stay unresolved. */
  readonly allowUnresolved?: (name: string) => boolean
  /** Bounds on each expression tag and on the substituted text. Default `defaultExpressionLimits`. */
  readonly limits?: ExpressionLimits
  /**
   * The result will be substituted again: mark each `{` of inserted text with {@link LITERAL_MARK},
   * so that the next substitution copies it and cannot read a tag in it. Default false.
   */
  readonly markInserted?: boolean
}

/**
 * Precedes a `{` that came from data (see `markInserted`). A Unicode noncharacter: it never occurs
 * in text people write, and no substitution outputs it unless asked to mark.
 */
export const LITERAL_MARK = "\uFDD0"

const markBraces = (data: string): string => (data.includes("{") ? data.replaceAll("{", LITERAL_MARK + "{") : data)
const unmark = (text: string): string => (text.includes(LITERAL_MARK) ? text.replaceAll(LITERAL_MARK + "{", "{") : text)

/** Argo's internal placeholder values; expressions over them may fail without error. */
export const PLACEHOLDER_PREFIX = "__argo__internal__placeholder-"

const LATE_BINDING = new Set([
  "item",
  "retries",
  "lastRetry.exitCode",
  "lastRetry.status",
  "lastRetry.duration",
  "lastRetry.message",
  "workflow.status",
  "workflow.failures"
])

/**
 * A predicate for `allowUnresolved` that refuses names under the given prefixes (a full dot segment:
 * `tasks` matches `tasks.A...` but not `tasksA`), like Argo's strict prefixes. With
 * `allowArtifacts`, `....outputs.artifacts....` references stay allowed (resolved later by artifact logic).
 */
export const allowUnresolvedExcept =
  (prefixes: ReadonlyArray<string>, options: { readonly allowArtifacts?: boolean } = { allowArtifacts: true }) =>
  (name: string): boolean => {
    const strictName = prefixes.some((p) => name === p || name.startsWith(p + "."))
    if (!strictName) return true
    return options.allowArtifacts === true && name.includes(".outputs.artifacts.")
  }

const withMissing = (e: ExpressionError, name: string): ExpressionError => ({ ...e, missingVariable: name })

const hasPlaceholder = (scope: Scope): boolean => {
  for (const v of scope.values()) if (typeof v === "string" && v.startsWith(PLACEHOLDER_PREFIX)) return true
  return false
}

/** Formats an expression result the way Argo inserts it: strings raw, everything else as Go JSON. */
export const formatExpressionResult = (value: unknown): string => (typeof value === "string" ? value : goJson(value))

interface Ctx {
  readonly scope: Scope
  readonly strict: boolean
  readonly allowed: (name: string) => boolean
  readonly limits: ExpressionLimits
  readonly markInserted: boolean
  env?: Record<string, unknown>
  placeholder?: boolean
}

/** What a tag becomes: template text kept as written (`code`) followed by inserted text (`data`). */
type Replacement = { readonly ok: true; readonly code?: string; readonly data?: string } | { readonly ok: false; readonly error: ExpressionError }

const replaceSimple = (ctx: Ctx, text: string, tag: string): Replacement => {
  const name = tag.trim()
  if (ctx.scope.has(name)) {
    const v = ctx.scope.get(name)
    if (v === null || v === undefined) {
      return {
        ok: false,
        error: expressionError(text, `unable to substitute {{${tag}}}: output is an absent optional (skipped/omitted node with no default)`)
      }
    }
    return { ok: true, data: typeof v === "string" ? v : goJson(v) }
  }
  // `{{a{{b}}`: the first `}}` closes the inner tag; Argo resolves the inner one and keeps the rest.
  const nested = tag.lastIndexOf("{{")
  if (nested > 0) {
    const inner = tag.slice(nested + 2)
    if (ctx.scope.has(inner)) {
      const v = ctx.scope.get(inner)
      if (v === null || v === undefined) {
        return { ok: false, error: expressionError(text, `unable to substitute nested tag {{${tag}}}: ${JSON.stringify(inner)} is an absent optional`) }
      }
      if (typeof v === "string") return { ok: true, code: "{{" + tag.slice(0, nested), data: v }
    }
  }
  if (ctx.strict && !ctx.allowed(name)) {
    return { ok: false, error: withMissing(expressionError(text, `failed to resolve {{${tag}}}`), name) }
  }
  return { ok: true, code: `{{${tag}}}` }
}

const replaceExpression = (ctx: Ctx, text: string, tag: string): Replacement => {
  const expression = tag.slice(1)
  const unchanged: Replacement = { ok: true, code: `{{${tag}}}` }
  const env = (ctx.env ??= expressionEnv(ctx.scope))
  const allowFailure = (ctx.placeholder ??= hasPlaceholder(ctx.scope))
  let missing: string[]
  try {
    missing = referencedVariables(parseCached(expression)).filter((id) => !hasVarInEnv(env, id))
  } catch (e) {
    if (allowFailure) return unchanged
    return { ok: false, error: toExpressionError(expression, e) }
  }
  if (ctx.strict) {
    const refused = missing.find((id) => !ctx.allowed(id))
    if (refused !== undefined) {
      return { ok: false, error: withMissing(expressionError(expression, `failed to evaluate expression ${JSON.stringify(expression)}: ${refused} is missing`), refused) }
    }
  }
  const allowUnresolved = missing.length > 0 || !ctx.strict
  if (allowUnresolved && missing.some((id) => LATE_BINDING.has(id))) return unchanged
  let result: unknown
  try {
    result = evaluateRaw(expression, env, ctx.limits)
  } catch (e) {
    if (isLimitError(e)) return { ok: false, error: toExpressionError(expression, e) }
    if (allowUnresolved || allowFailure) return unchanged
    const err = toExpressionError(expression, e)
    return { ok: false, error: missing.length > 0 ? withMissing(err, missing[0]) : err }
  }
  if (result === null || result === undefined) {
    if (allowUnresolved || allowFailure) return unchanged
    return { ok: false, error: expressionError(expression, `failed to evaluate expression ${JSON.stringify(expression)}: the result is nil`) }
  }
  try {
    return { ok: true, data: formatExpressionResult(result) }
  } catch (e) {
    if (allowUnresolved) return unchanged
    return { ok: false, error: toExpressionError(expression, e instanceof EvalError ? e : new EvalError(String(e))) }
  }
}

const substituteWith = (ctx: Ctx, text: string): Result<string> => {
  let out = ""
  let i = 0
  const append = (piece: string): Result<string> | undefined => {
    if (out.length + piece.length > ctx.limits.maxStringLength) {
      const message = `substitution builds a string of ${out.length + piece.length} characters, more than ${ctx.limits.maxStringLength} (limits.expression.maxStringLength)`
      return { ok: false, error: expressionError(text.length > 200 ? `${text.slice(0, 200)}...` : text, message) }
    }
    out += piece
    return undefined
  }
  for (;;) {
    const start = text.indexOf("{{", i)
    if (start < 0) break
    if (start > i && text[start - 1] === LITERAL_MARK) {
      // The first brace came from data: copy it, and look for a tag from the second one on.
      const literal = append(unmark(text.slice(i, start + 1)))
      if (literal !== undefined) return literal
      i = start + 1
      continue
    }
    const end = text.indexOf("}}", start + 2)
    if (end < 0) {
      return { ok: false, error: expressionError(text, `cannot find end tag "}}" in the template starting from ${JSON.stringify(text.slice(start))}`) }
    }
    const before = append(unmark(text.slice(i, start)))
    if (before !== undefined) return before
    const tag = text.slice(start + 2, end)
    const r = tag.startsWith("=") ? replaceExpression(ctx, text, tag) : replaceSimple(ctx, text, tag)
    if (!r.ok) return r
    const inserted = append((r.code ?? "") + (r.data === undefined ? "" : ctx.markInserted ? markBraces(r.data) : r.data))
    if (inserted !== undefined) return inserted
    i = end + 2
  }
  return append(unmark(text.slice(i))) ?? { ok: true, value: out }
}

const context = (scope: Scope, options?: SubstituteOptions): Ctx => ({
  scope,
  strict: options?.strict === true,
  allowed: options?.allowUnresolved ?? (() => false),
  limits: options?.limits ?? defaultExpressionLimits,
  markInserted: options?.markInserted === true
})

/**
 * Replaces every `{{name}}` and `{{=expression}}` tag in `text`. Simple tags take the scope's string
 * value (other values are JSON-encoded); expression results are inserted raw when strings, as
 * Go-style JSON otherwise (`[43]`, `{"a":1}`, `35.8`).
 */
export const substitute = (text: string, scope: Scope, options?: SubstituteOptions): Result<string> =>
  substituteWith(context(scope, options), text)

/** Substitutes every string (and object key) of a JSON-like value, e.g. a whole template. */
export const substituteObject = (value: unknown, scope: Scope, options?: SubstituteOptions): Result<unknown> => {
  const ctx = context(scope, options)
  const go = (v: unknown): unknown => {
    if (typeof v === "string") {
      if (!v.includes("{{") && !v.includes(LITERAL_MARK)) return v
      const r = substituteWith(ctx, v)
      if (!r.ok) throw new SubstitutionFailure(r.error)
      return r.value
    }
    if (Array.isArray(v)) return v.map(go)
    if (typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
      const out: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(v)) out[go(k) as string] = go(x)
      return out
    }
    return v
  }
  try {
    return { ok: true, value: go(value) }
  } catch (e) {
    if (e instanceof SubstitutionFailure) return { ok: false, error: e.error }
    throw e
  }
}

class SubstitutionFailure {
  constructor(readonly error: ExpressionError) {}
}
