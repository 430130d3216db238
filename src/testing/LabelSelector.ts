/**
 * Kubernetes label and field selectors, parsed and evaluated the way the API
 * server does (k8s.io/apimachinery/pkg/labels and pkg/fields), plus the label
 * key/value and object-name validations the server applies on writes.
 *
 * Label selector grammar (comma = AND, whitespace ignored):
 *   `a=b`  `a==b`  `a!=b`  `a`  `!a`  `a in (x,y)`  `a notin (x,y)`  `a>1`  `a<1`
 * `!=` and `notin` also match objects that do not have the label at all.
 */
import { Result, Schema } from "effect"
import { validateLabelKey, validateLabelValue } from "../kube/api/Validation.js"

export class LabelSelectorError extends Schema.TaggedError<LabelSelectorError>()("LabelSelectorError", {
  selector: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `unable to parse requirement: ${this.detail} (selector ${JSON.stringify(this.selector)})`
  }
}

export type Operator =
  | "Equals"
  | "NotEquals"
  | "In"
  | "NotIn"
  | "Exists"
  | "DoesNotExist"
  | "GreaterThan"
  | "LessThan"

export interface Requirement {
  readonly key: string
  readonly operator: Operator
  readonly values: ReadonlyArray<string>
}

/** An AND of requirements; the empty selector matches everything. */
export type LabelSelector = ReadonlyArray<Requirement>

export type Labels = Readonly<Record<string, string>> | undefined

// Validation (k8s.io/apimachinery/pkg/util/validation), shared with the controller
export { validateDnsLabel, validateLabelKey, validateLabelValue, validateSubdomain } from "../kube/api/Validation.js"

// ---------------------------------------------------------------------------
// Lexer

type Token =
  | { readonly _tag: "Identifier"; readonly value: string }
  | { readonly _tag: "Op"; readonly value: "=" | "==" | "!=" | "!" | ">" | "<" | "," | "(" | ")" }
  | { readonly _tag: "End" }

const special = new Set(["!", "=", ",", "(", ")", "<", ">", " ", "\t", "\n", "\r"])

const lex = (input: string): Array<Token> => {
  const tokens: Array<Token> = []
  let i = 0
  while (i < input.length) {
    const ch = input[i]
    if (ch === " " || ch === "\t" || ch === "\n" || ch === "\r") {
      i++
      continue
    }
    if (ch === "=") {
      if (input[i + 1] === "=") {
        tokens.push({ _tag: "Op", value: "==" })
        i += 2
      } else {
        tokens.push({ _tag: "Op", value: "=" })
        i++
      }
      continue
    }
    if (ch === "!") {
      if (input[i + 1] === "=") {
        tokens.push({ _tag: "Op", value: "!=" })
        i += 2
      } else {
        tokens.push({ _tag: "Op", value: "!" })
        i++
      }
      continue
    }
    if (ch === "," || ch === "(" || ch === ")" || ch === "<" || ch === ">") {
      tokens.push({ _tag: "Op", value: ch })
      i++
      continue
    }
    let j = i
    while (j < input.length && !special.has(input[j])) j++
    tokens.push({ _tag: "Identifier", value: input.slice(i, j) })
    i = j
  }
  tokens.push({ _tag: "End" })
  return tokens
}

// ---------------------------------------------------------------------------
// Parser

class ParseFailure {
  constructor(readonly detail: string) {}
}

const describe = (token: Token): string =>
  token._tag === "End" ? "end of string" : token._tag === "Identifier" ? `identifier "${token.value}"` : `"${token.value}"`

const parseTokens = (tokens: ReadonlyArray<Token>): LabelSelector => {
  let pos = 0
  const peek = (): Token => tokens[pos]
  const next = (): Token => tokens[pos++]
  const isOp = (token: Token, value: string) => token._tag === "Op" && token.value === value

  const key = (): string => {
    const token = next()
    if (token._tag !== "Identifier") throw new ParseFailure(`expected a label key, found ${describe(token)}`)
    const bad = validateLabelKey(token.value)
    if (bad !== undefined) throw new ParseFailure(`invalid label key "${token.value}": ${bad}`)
    return token.value
  }

  const checkValue = (value: string): string => {
    const bad = validateLabelValue(value)
    if (bad !== undefined) throw new ParseFailure(`invalid label value: "${value}": ${bad}`)
    return value
  }

  const valueSet = (operator: "in" | "notin"): Array<string> => {
    const open = next()
    if (!isOp(open, "(")) throw new ParseFailure(`expected "(" after '${operator}', found ${describe(open)}`)
    const values: Array<string> = []
    let expectValue = true
    for (;;) {
      const token = next()
      if (isOp(token, ")")) {
        if (expectValue && values.length > 0) values.push("")
        break
      }
      if (isOp(token, ",")) {
        if (expectValue) values.push("")
        expectValue = true
        continue
      }
      if (token._tag === "Identifier" && expectValue) {
        values.push(checkValue(token.value))
        expectValue = false
        continue
      }
      throw new ParseFailure(`unexpected ${describe(token)} in value set of '${operator}'`)
    }
    if (values.length === 0) throw new ParseFailure(`for 'in', 'notin' operators, values set can't be empty`)
    return values
  }

  const requirement = (): Requirement => {
    if (isOp(peek(), "!")) {
      next()
      return { key: key(), operator: "DoesNotExist", values: [] }
    }
    const k = key()
    const token = peek()
    if (token._tag === "End" || isOp(token, ",")) return { key: k, operator: "Exists", values: [] }
    next()
    if (token._tag === "Identifier") {
      if (token.value === "in") return { key: k, operator: "In", values: valueSet("in") }
      if (token.value === "notin") return { key: k, operator: "NotIn", values: valueSet("notin") }
      throw new ParseFailure(`expected an operator after key "${k}", found ${describe(token)}`)
    }
    switch (token.value) {
      case "=":
      case "==":
      case "!=": {
        const valueToken = peek()
        let value = ""
        if (valueToken._tag === "Identifier") {
          next()
          value = valueToken.value
        } else if (!(valueToken._tag === "End" || isOp(valueToken, ","))) {
          throw new ParseFailure(`expected a value after "${k}${token.value}", found ${describe(valueToken)}`)
        }
        return { key: k, operator: token.value === "!=" ? "NotEquals" : "Equals", values: [checkValue(value)] }
      }
      case ">":
      case "<": {
        const valueToken = next()
        if (valueToken._tag !== "Identifier" || !/^-?\d+$/.test(valueToken.value)) {
          throw new ParseFailure(`for 'Gt', 'Lt' operators, the value must be an integer, found ${describe(valueToken)}`)
        }
        return { key: k, operator: token.value === ">" ? "GreaterThan" : "LessThan", values: [valueToken.value] }
      }
      default:
        throw new ParseFailure(`expected an operator after key "${k}", found ${describe(token)}`)
    }
  }

  const requirements: Array<Requirement> = []
  if (peek()._tag === "End") return requirements
  for (;;) {
    requirements.push(requirement())
    const token = next()
    if (token._tag === "End") return requirements
    if (!isOp(token, ",")) throw new ParseFailure(`expected "," or end of string, found ${describe(token)}`)
    if (peek()._tag === "End") throw new ParseFailure("found a trailing ','")
  }
}

/** Parses a label selector. The empty (or all-whitespace) string is the match-everything selector. */
export const parse = (input: string): Result.Result<LabelSelector, LabelSelectorError> => {
  try {
    return Result.succeed(parseTokens(lex(input)))
  } catch (error) {
    if (error instanceof ParseFailure) {
      return Result.fail(new LabelSelectorError({ selector: input, detail: error.detail }))
    }
    throw error
  }
}

const matchesRequirement = (requirement: Requirement, labels: Labels): boolean => {
  const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, requirement.key)
  const value = has ? labels![requirement.key] : undefined
  switch (requirement.operator) {
    case "Exists":
      return has
    case "DoesNotExist":
      return !has
    case "Equals":
    case "In":
      return has && requirement.values.includes(value!)
    case "NotEquals":
    case "NotIn":
      return !has || !requirement.values.includes(value!)
    case "GreaterThan":
    case "LessThan": {
      if (!has || !/^-?\d+$/.test(value!)) return false
      const actual = Number(value)
      const bound = Number(requirement.values[0])
      return requirement.operator === "GreaterThan" ? actual > bound : actual < bound
    }
  }
}

/** Whether `labels` satisfy every requirement of `selector`. */
export const matches = (selector: LabelSelector, labels: Labels): boolean =>
  selector.every((requirement) => matchesRequirement(requirement, labels))

/** Renders a selector back into the canonical string syntax. */
export const format = (selector: LabelSelector): string =>
  selector.map((r) => {
    switch (r.operator) {
      case "Exists":
        return r.key
      case "DoesNotExist":
        return `!${r.key}`
      case "Equals":
        return `${r.key}=${r.values[0]}`
      case "NotEquals":
        return `${r.key}!=${r.values[0]}`
      case "In":
        return `${r.key} in (${r.values.join(",")})`
      case "NotIn":
        return `${r.key} notin (${r.values.join(",")})`
      case "GreaterThan":
        return `${r.key}>${r.values[0]}`
      case "LessThan":
        return `${r.key}<${r.values[0]}`
    }
  }).join(",")

// ---------------------------------------------------------------------------
// Field selectors

export interface FieldRequirement {
  readonly field: string
  readonly operator: "Equals" | "NotEquals"
  readonly value: string
}

export type FieldSelector = ReadonlyArray<FieldRequirement>

/**
 * Parses a field selector (`f=v`, `f==v`, `f!=v`, comma = AND). Which fields a
 * resource supports is checked by the caller, as the server does per resource.
 * Backslash escapes (`\,` `\=` `\\`) are honoured in values.
 */
export const parseFieldSelector = (input: string): Result.Result<FieldSelector, LabelSelectorError> => {
  const requirements: Array<FieldRequirement> = []
  if (input.trim() === "") return Result.succeed(requirements)
  // Split on unescaped commas.
  const parts: Array<string> = []
  let current = ""
  for (let i = 0; i < input.length; i++) {
    const ch = input[i]
    if (ch === "\\" && i + 1 < input.length) {
      current += ch + input[i + 1]
      i++
    } else if (ch === ",") {
      parts.push(current)
      current = ""
    } else {
      current += ch
    }
  }
  parts.push(current)
  for (const part of parts) {
    const match = /^([^=!]*?)\s*(==|!=|=)\s*(.*)$/.exec(part.trim())
    if (match === null || match[1].trim() === "") {
      return Result.fail(
        new LabelSelectorError({ selector: input, detail: `invalid selector: '${part}'; can't understand '${part}'` })
      )
    }
    const value = match[3].replace(/\\(.)/g, "$1")
    requirements.push({ field: match[1].trim(), operator: match[2] === "!=" ? "NotEquals" : "Equals", value })
  }
  return Result.succeed(requirements)
}

/** Whether the field values (missing fields read as "") satisfy the selector. */
export const matchesFields = (selector: FieldSelector, fieldValue: (field: string) => string): boolean =>
  selector.every((r) => (fieldValue(r.field) === r.value) === (r.operator === "Equals"))
