/**
 * A resource template's `successCondition` / `failureCondition`, as
 * `argoexec resource` evaluates them: Kubernetes label-selector syntax
 * (`labels.Parse`: `=`, `==`, `!=`, `in`, `notin`, `>`, `<`, `key`, `!key`,
 * comma for AND) whose keys are gjson paths into the resource's JSON
 * (`status.succeeded > 2`, `status.phase in (Failed, Error)`). Pure; the
 * messages are upstream's.
 */

export type Operator = "=" | "==" | "!=" | "in" | "notin" | "exists" | "!" | ">" | "<"

export interface Requirement {
  readonly key: string
  readonly operator: Operator
  readonly values: ReadonlyArray<string>
}

/** A qualified name (label key): an optional DNS prefix and `/`, then 63 characters at most. */
const namePart = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const prefixPart = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const valuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

const keyProblem = (key: string): string | undefined => {
  const slash = key.lastIndexOf("/")
  const name = slash >= 0 ? key.slice(slash + 1) : key
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined
  if (prefix !== undefined && (prefix === "" || prefix.length > 253 || !prefixPart.test(prefix))) {
    return `key: Invalid value: "${key}": prefix part must be a lowercase RFC 1123 subdomain`
  }
  if (name.length === 0 || name.length > 63 || !namePart.test(name)) {
    return `key: Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.', ` +
      `and must start and end with an alphanumeric character (63 characters at most)`
  }
  return undefined
}

const valueProblem = (value: string): string | undefined =>
  value.length > 63 || !valuePattern.test(value)
    ? `values[0]: Invalid value: "${value}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', ` +
      `and must start and end with an alphanumeric character`
    : undefined

type Token = { readonly kind: "id"; readonly text: string } | { readonly kind: "op"; readonly text: string }

const tokenize = (s: string): Array<Token> => {
  const out: Array<Token> = []
  let i = 0
  while (i < s.length) {
    const c = s[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    const two = s.slice(i, i + 2)
    if (two === "==" || two === "!=") {
      out.push({ kind: "op", text: two })
      i += 2
      continue
    }
    if ("=!<>(),".includes(c)) {
      out.push({ kind: "op", text: c })
      i++
      continue
    }
    let j = i
    while (j < s.length && !/\s/.test(s[j]!) && !"=!<>(),".includes(s[j]!)) j++
    out.push({ kind: "id", text: s.slice(i, j) })
    i = j
  }
  return out
}

/** Parses a selector as `labels.Parse` does (requirements sorted by key), or says why it cannot. */
export const parseConditions = (selector: string): ReadonlyArray<Requirement> | { readonly error: string } => {
  const tokens = tokenize(selector)
  const reqs: Array<Requirement> = []
  let i = 0
  const peek = () => tokens[i]
  const fail = (why: string) => ({ error: why })
  while (i < tokens.length) {
    let negated = false
    if (peek()?.kind === "op" && peek()!.text === "!") {
      negated = true
      i++
    }
    const keyTok = peek()
    if (keyTok === undefined || keyTok.kind !== "id") return fail(`found '${keyTok?.text ?? ""}', expected: identifier`)
    const key = keyTok.text
    i++
    const kp = keyProblem(key)
    if (kp !== undefined) return fail(kp)
    const next = peek()
    if (negated) {
      if (next !== undefined && !(next.kind === "op" && next.text === ",")) return fail(`found '${next.text}', expected: ',' or 'end of string'`)
      reqs.push({ key, operator: "!", values: [] })
    } else if (next === undefined || (next.kind === "op" && next.text === ",")) {
      reqs.push({ key, operator: "exists", values: [] })
    } else {
      let op: Operator
      if (next.kind === "op" && ["=", "==", "!=", ">", "<"].includes(next.text)) op = next.text as Operator
      else if (next.kind === "id" && (next.text === "in" || next.text === "notin")) op = next.text
      else return fail(`found '${next.text}', expected: '=', '!=', '==', 'in', notin'`)
      i++
      const values: Array<string> = []
      if (op === "in" || op === "notin") {
        if (!(peek()?.kind === "op" && peek()!.text === "(")) return fail(`found '${peek()?.text ?? ""}', expected: '('`)
        i++
        while (true) {
          const t = peek()
          if (t === undefined) return fail("found '', expected: ',', ')' or identifier")
          if (t.kind === "id") {
            values.push(t.text)
            i++
          } else if (t.text === ")") {
            i++
            break
          } else if (t.text === ",") {
            i++
          } else return fail(`found '${t.text}', expected: ',', ')' or identifier`)
        }
      } else {
        const v = peek()
        if (v !== undefined && v.kind === "id") {
          values.push(v.text)
          i++
        } else values.push("")
      }
      for (const v of values) {
        const vp = valueProblem(v)
        if (vp !== undefined) return fail(vp)
      }
      if ((op === ">" || op === "<") && !/^-?\d+$/.test(values[0] ?? "")) {
        return fail(`values[0]: Invalid value: "${values[0] ?? ""}": for 'Gt', 'Lt' operators, the value must be an integer`)
      }
      reqs.push({ key, operator: op, values })
    }
    const sep = peek()
    if (sep !== undefined) {
      if (!(sep.kind === "op" && sep.text === ",")) return fail(`found '${sep.text}', expected: ',' or 'end of string'`)
      i++
    }
  }
  return [...reqs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

/** How `Requirement.String()` prints a requirement (upstream's messages quote it). */
export const requirementString = (r: Requirement): string => {
  switch (r.operator) {
    case "exists":
      return r.key
    case "!":
      return `!${r.key}`
    case "in":
    case "notin":
      return `${r.key} ${r.operator} (${[...r.values].sort().join(",")})`
    default:
      return `${r.key}${r.operator}${r.values[0] ?? ""}`
  }
}

/** gjson's path walk (dots, `\.` escapes, array indexes, `#` for a length) into a decoded document. */
export const gjsonGet = (doc: unknown, path: string): unknown => {
  const parts: Array<string> = []
  let cur = ""
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!
    if (c === "\\" && i + 1 < path.length) {
      cur += path[++i]
    } else if (c === ".") {
      parts.push(cur)
      cur = ""
    } else cur += c
  }
  parts.push(cur)
  let v: unknown = doc
  for (const p of parts) {
    if (Array.isArray(v)) {
      if (p === "#") v = v.length
      else if (/^\d+$/.test(p)) v = v[Number(p)]
      else return undefined
    } else if (typeof v === "object" && v !== null) {
      v = Object.prototype.hasOwnProperty.call(v, p) ? (v as Record<string, unknown>)[p] : undefined
    } else return undefined
    if (v === undefined) return undefined
  }
  return v
}

/** gjson's `Result.String()`: strings as they are, other values as their JSON, nothing as "". */
const gjsonString = (v: unknown): string =>
  v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v)

/** `Requirement.Matches` over the resource's JSON, as argoexec's gjsonLabels. */
export const matches = (r: Requirement, doc: unknown): boolean => {
  const found = gjsonGet(doc, r.key)
  const has = found !== undefined
  const value = gjsonString(found)
  switch (r.operator) {
    case "=":
    case "==":
    case "in":
      return has && r.values.includes(value)
    case "!=":
    case "notin":
      return !has || !r.values.includes(value)
    case "exists":
      return has
    case "!":
      return !has
    case ">":
    case "<": {
      if (!has || !/^[+-]?\d+$/.test(value)) return false
      const n = BigInt(value)
      const limit = BigInt(r.values[0]!)
      return r.operator === ">" ? n > limit : n < limit
    }
  }
}
