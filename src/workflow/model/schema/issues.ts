/**
 * Schema issues as flotilla reports them: one `{ path, message }` per problem,
 * every problem (not just the first), the path written as a user reads it in
 * YAML (`spec.templates[2].container.image`, `metadata.labels["a/b"]`) and the
 * message in the decoder's words (`expected a string, got number 5`).
 *
 * Messages describe the offending value by its type and a short excerpt, so a
 * huge or secret value is never echoed whole.
 */
import { Result, Schema, SchemaAST, SchemaIssue } from "effect"

export interface SchemaProblem {
  readonly path: string
  readonly message: string
}

/** `a.b`, `a[0]`, or `a["x/y"]` for keys that are not plain identifiers. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((acc, key) => {
    if (typeof key === "number") return `${acc}[${key}]`
    const k = String(key)
    return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) ? (acc === "" ? k : `${acc}.${k}`) : `${acc}[${JSON.stringify(k)}]`
  }, "")

/** A value as a message names it: its type, and for scalars an excerpt. */
export const describeValue = (u: unknown): string => {
  if (u === undefined) return "nothing"
  if (u === null) return "null"
  if (Array.isArray(u)) return "a list"
  if (typeof u === "object") return "an object"
  const json = JSON.stringify(u) ?? String(u)
  return `${typeof u} ${json.length > 60 ? `${json.slice(0, 57)}..."` : json}`
}

/** Every member refused the value for its type (not for a check it failed after). */
const isTypeMismatch = (issue: SchemaIssue.Issue): boolean =>
  issue._tag === "InvalidType" || (issue._tag === "AnyOf" && issue.issues.every(isTypeMismatch))

/** What a schema node expects, in words. */
const expected = (ast: SchemaAST.AST): string => {
  const annotated = ast.annotations?.["expected"]
  if (typeof annotated === "string") return annotated
  switch (ast._tag) {
    case "String":
      return "a string"
    case "Number":
      return "a number"
    case "Boolean":
      return "a boolean"
    case "Arrays":
      return "a list"
    case "Objects":
      return "an object"
    case "Literal":
      return JSON.stringify(ast.literal)
    case "Null":
      return "null"
    case "Suspend":
      return expected(ast.thunk())
    case "Union": {
      const members = ast.types.filter((t) => t._tag !== "Null" && t._tag !== "Undefined").map(expected)
      return [...new Set(members)].join(" or ")
    }
    default:
      return "a valid value"
  }
}

/** The schema of `key` in a struct node (for a missing key: what was expected there). */
const fieldType = (ast: SchemaAST.AST | undefined, key: PropertyKey | undefined): SchemaAST.AST | undefined => {
  if (ast === undefined || ast._tag !== "Objects") return undefined
  return ast.propertySignatures.find((p) => p.name === key)?.type
}

const collect = (issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>, parent: SchemaAST.AST | undefined, out: Array<SchemaProblem>): void => {
  const at = formatPath(path)
  switch (issue._tag) {
    case "Pointer":
      return collect(issue.issue, [...path, ...issue.path], issue.path.length > 0 ? parent : parent, out)
    case "Composite":
      return issue.issues.forEach((i) => collect(i, path, issue.ast, out))
    case "AnyOf":
      // A value of a type no member takes: say what the union wants, not what each member said.
      if (issue.issues.length > 0 && !issue.issues.every(isTypeMismatch)) return issue.issues.forEach((i) => collect(i, path, issue.ast, out))
      out.push({ path: at, message: `expected ${expected(issue.ast)}, got ${describeValue(SchemaIssue.hasInput(issue) ? issue.input : undefined)}` })
      return
    case "Filter": {
      const inner = issue.issue
      const wanted = issue.filter.annotations?.["expected"]
      if (inner._tag === "InvalidValue" && typeof inner.annotations?.["message"] !== "string" && typeof wanted === "string") {
        out.push({ path: at, message: `expected ${wanted}, got ${describeValue(SchemaIssue.hasInput(issue) ? issue.input : undefined)}` })
        return
      }
      return collect(inner, path, parent, out)
    }
    case "Encoding":
      return collect(issue.issue, path, parent, out)
    case "InvalidType":
      out.push({ path: at, message: `expected ${expected(issue.ast)}, got ${describeValue(SchemaIssue.hasInput(issue) ? issue.input : undefined)}` })
      return
    case "MissingKey": {
      const type = fieldType(parent, path[path.length - 1])
      out.push({ path: at, message: type === undefined ? "is required" : `expected ${expected(type)}, got nothing` })
      return
    }
    case "InvalidValue": {
      const message = issue.annotations?.["message"]
      out.push({ path: at, message: typeof message === "string" ? message : SchemaIssue.defaultLeafHook(issue) })
      return
    }
    default:
      out.push({ path: at, message: SchemaIssue.defaultLeafHook(issue as SchemaIssue.Leaf) })
  }
}

/** Every problem an issue tree holds, in document order of the schema's fields. */
export const problemsOf = (issue: SchemaIssue.Issue): ReadonlyArray<SchemaProblem> => {
  const out: Array<SchemaProblem> = []
  collect(issue, [], undefined, out)
  const seen = new Set<string>()
  return out.filter((p) => {
    const key = `${p.path}\u0000${p.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

export type Checked<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly problems: ReadonlyArray<SchemaProblem> }

/** Decode `input` with `schema`, reporting all problems, never throwing. */
export const checkAgainst = <S extends Schema.ConstraintDecoder<unknown>>(schema: S) => {
  const decode = Schema.decodeUnknownResult(schema, { errors: "all", onExcessProperty: "ignore", reportInput: true })
  return (input: unknown): Checked<S["Type"]> => {
    const result = decode(input)
    return Result.isSuccess(result) ? { ok: true, value: result.success } : { ok: false, problems: problemsOf(result.failure.issue) }
  }
}
