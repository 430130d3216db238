/**
 * The engine's one door to the expression module (`../expressions`):
 * `{{...}}` substitution, `{{=expr}}` expressions and `when` conditions.
 * Nothing else in the engine may import the expression module directly.
 *
 * Every call takes the workflow's expression limits (`limits.expression` of
 * the configmap; `defaultExpressionLimits` when absent): an expression beyond
 * them is an ordinary expression error naming the limit.
 *
 * Data is never code: a parameter's value or a pod's output is substituted as
 * text once, never evaluated again. Argo substitutes a steps or DAG template
 * twice (its inputs when the template is called, `steps.*`/`tasks.*` when each
 * call runs); `substituteTemplate` marks what the first pass inserts into the
 * fields the second pass reads, so the second pass copies it literally.
 */
import type { Scope } from "../expressions/contract.js"
import * as expressions from "../expressions/index.js"
import { defaultExpressionLimits, type ExpressionLimits } from "../expressions/limits.js"

export type { Scope }

export type ExprResult<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly error: { readonly expression: string; readonly message: string } }

const ok = <A>(value: A): ExprResult<A> => ({ ok: true, value })

/**
 * Substitute `{{...}}` tags. With `allowUnresolved`, tags that cannot be
 * resolved yet are left as written (Argo does this for template bodies whose
 * step references are only known later); otherwise an unresolved tag is an error.
 */
export const substitute = (
  text: string,
  scope: Scope,
  allowUnresolved = false,
  limits: ExpressionLimits = defaultExpressionLimits
): ExprResult<string> => {
  if (!text.includes("{{") && !text.includes(expressions.LITERAL_MARK)) return ok(text)
  return expressions.substitute(text, scope, { strict: !allowUnresolved, limits })
}

/**
 * The fields of a template body that the engine substitutes again once its
 * steps or tasks run (`*` is any key or index): call arguments (`resolveArgs`),
 * `when`, `withParam` and `withSequence` (loops.ts), `dag.target`, and a steps
 * or DAG template's own outputs. What the first pass inserts there is marked.
 */
const SUBSTITUTED_AGAIN: ReadonlyArray<ReadonlyArray<string>> = [
  ...[["steps", "*", "*"], ["dag", "tasks", "*"]].flatMap((call) => [
    [...call, "arguments", "parameters", "*", "value"],
    [...call, "hooks", "*", "arguments", "parameters", "*", "value"],
    [...call, "when"],
    [...call, "withParam"],
    [...call, "withSequence", "count"],
    [...call, "withSequence", "start"],
    [...call, "withSequence", "end"]
  ]),
  ["dag", "target"],
  ["outputs", "parameters", "*", "value"],
  ["outputs", "parameters", "*", "valueFrom", "parameter"]
]

const substitutedAgain = (path: ReadonlyArray<string>, composite: boolean): boolean =>
  SUBSTITUTED_AGAIN.some((p) => p.length === path.length && (composite || p[0] !== "outputs") && p.every((k, i) => k === "*" || k === path[i]))

/**
 * Substitute every string of a template body (`common.ProcessArgs`), leaving
 * tags that cannot be resolved yet as written. Object keys are kept.
 */
export const substituteTemplate = <A>(body: A, scope: Scope, limits: ExpressionLimits = defaultExpressionLimits): ExprResult<A> => {
  const composite = typeof body === "object" && body !== null && ("steps" in body || "dag" in body)
  let failure: ExprResult<A> | undefined
  const walk = (v: unknown, path: ReadonlyArray<string>): unknown => {
    if (failure !== undefined) return v
    if (typeof v === "string") {
      if (!v.includes("{{") && !v.includes(expressions.LITERAL_MARK)) return v
      const r = expressions.substitute(v, scope, { strict: false, limits, markInserted: substitutedAgain(path, composite) })
      if (!r.ok) {
        failure = r
        return v
      }
      return r.value
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, String(i)]))
    if (typeof v === "object" && v !== null) {
      const o: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(v)) o[k] = walk(x, [...path, k])
      return o
    }
    return v
  }
  const out = walk(body, []) as A
  return failure ?? ok(out)
}

/** Evaluate an expr-lang expression (valueFrom.expression, retryStrategy.expression, labelsFrom). */
export const evaluate = (expr: string, scope: Scope, limits: ExpressionLimits = defaultExpressionLimits): ExprResult<unknown> =>
  expressions.evaluate(expr, scope, limits)

/** Evaluate a `when` condition (govaluate syntax after substitution, or `{{=expr}}`). */
export const evaluateWhen = (cond: string, scope: Scope, limits: ExpressionLimits = defaultExpressionLimits): ExprResult<boolean> =>
  expressions.evaluateWhen(cond, scope, { limits })
