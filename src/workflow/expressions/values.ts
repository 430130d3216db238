/**
 * The value model shared by the expr-lang evaluator, and Go-compatible formatting.
 *
 * expr-lang runs on Go values, and Argo prints results with Go's `encoding/json`
 * and `fmt`; to reproduce its output exactly, we keep Go's int/float distinction:
 *
 * - `nil`              -> `null`
 * - `bool`             -> `boolean`
 * - `int` (int64)      -> `bigint`
 * - `float64`          -> `number`
 * - `string`           -> `string`
 * - `[]any`            -> `Array`
 * - `map[string]any`   -> plain object
 * - `time.Time`        -> `Date`
 * - functions          -> {@link ExprFunction}
 */
import type { Budget } from "./budget.js"
import { EvalError } from "./errors.js"

/**
 * A function callable from an expression (`asInt(...)`, `sprig.date(...)`, ...). It charges the
 * evaluation's budget for the work it does beyond touching its arguments and result (which the
 * evaluator charges), and checks what it builds before building it.
 */
export class ExprFunction {
  constructor(
    readonly name: string,
    readonly call: (args: ReadonlyArray<unknown>, budget: Budget) => unknown
  ) {}
}

export const isNumber = (v: unknown): v is bigint | number => typeof v === "bigint" || typeof v === "number"
export const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof ExprFunction)

/** Go's int64 wrap-around. */
export const toInt64 = (v: bigint): bigint => BigInt.asIntN(64, v)

/** Go's `int(f)` conversion of a float64 (truncation toward zero). */
export const floatToInt = (f: number): bigint => {
  if (!Number.isFinite(f)) return -9223372036854775808n
  return toInt64(BigInt(Math.trunc(f)))
}

export const toFloat = (v: bigint | number): number => (typeof v === "bigint" ? Number(v) : v)

/** The Go type name of a value, as expr-lang error messages print it (`%T`). */
export const goTypeName = (v: unknown): string => {
  if (v === null || v === undefined) return "<nil>"
  if (typeof v === "boolean") return "bool"
  if (typeof v === "bigint") return "int"
  if (typeof v === "number") return "float64"
  if (typeof v === "string") return "string"
  if (Array.isArray(v)) return "[]interface {}"
  if (v instanceof Date) return "time.Time"
  if (v instanceof ExprFunction) return "func"
  return "map[string]interface {}"
}

/** Imports a JavaScript value (from the scope or JSON) into the value model: integral numbers from the scope become ints. */
export const fromScopeValue = (v: unknown): unknown => {
  if (v === undefined || v === null) return null
  if (typeof v === "number") return Number.isSafeInteger(v) ? BigInt(v) : v
  if (Array.isArray(v)) return v.map(fromScopeValue)
  if (isMap(v)) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = fromScopeValue(x)
    return out
  }
  return v
}

/** Exports a value to plain JavaScript: ints become numbers (or strings if not safely representable). */
export const toPlain = (v: unknown): unknown => {
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()
  }
  if (Array.isArray(v)) return v.map(toPlain)
  if (isMap(v)) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = toPlain(x)
    return out
  }
  return v
}

/** Go's `strconv.FormatFloat(f, 'g', -1, 64)` as used by `fmt`'s `%v`: shortest digits, exponent form when exp < -4 or exp >= 6 (`1e+06`). */
export const formatGoFloat = (f: number, mode: "%v" | "json" = "%v"): string => {
  if (Number.isNaN(f)) return "NaN"
  if (f === Infinity) return "+Inf"
  if (f === -Infinity) return "-Inf"
  if (f === 0) return Object.is(f, -0) ? "-0" : "0"
  if (mode === "json") {
    // encoding/json: 'f' format unless 1e-6 > |f| or |f| >= 1e21, like JavaScript.
    return JSON.stringify(f)
  }
  const [mantissa, e] = f.toExponential().split("e")
  const exponent = Number(e)
  if (exponent < -4 || exponent >= 6) {
    const sign = exponent < 0 ? "-" : "+"
    const digits = String(Math.abs(exponent)).padStart(2, "0")
    return `${mantissa}e${sign}${digits}`
  }
  // Within that range JavaScript prints the same shortest digits without an exponent.
  return String(f)
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0")

/** Go's `time.Time.String()`-like RFC 3339 rendering used when printing dates (UTC). */
export const formatGoTime = (d: Date): string =>
  `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000 UTC`

/**
 * Builds a string piece by piece, refusing it before it outgrows `limits.expression.maxStringLength`
 * and charging each piece (formatting walks every element of a value, so its cost is its size).
 */
class Writer {
  private readonly parts: Array<string> = []
  private length = 0

  constructor(private readonly budget: Budget | undefined) {}

  push(s: string): void {
    this.length += s.length
    this.budget?.extend(this.length, s.length)
    this.parts.push(s)
  }

  /** Refuses (without charging) when `n` more code units would not fit. */
  reserve(n: number): void {
    this.budget?.extend(this.length + n, 0)
  }

  /** One element visited. */
  visit(): void {
    this.budget?.step()
  }

  done(): string {
    return this.parts.join("")
  }
}

const writeGoValue = (w: Writer, v: unknown): void => {
  w.visit()
  if (Array.isArray(v)) {
    w.push("[")
    v.forEach((x, i) => {
      if (i > 0) w.push(" ")
      writeGoValue(w, x)
    })
    w.push("]")
  } else if (isMap(v)) {
    const keys = Object.keys(v).sort()
    w.push("map[")
    keys.forEach((k, i) => {
      w.push(i > 0 ? ` ${k}:` : `${k}:`)
      writeGoValue(w, v[k])
    })
    w.push("]")
  } else if (v === null || v === undefined) w.push("<nil>")
  else if (typeof v === "string") w.push(v)
  else if (typeof v === "boolean") w.push(v ? "true" : "false")
  else if (typeof v === "bigint") w.push(v.toString())
  else if (typeof v === "number") w.push(formatGoFloat(v))
  else if (v instanceof Date) w.push(formatGoTime(v))
  else if (v instanceof ExprFunction) w.push(`func ${v.name}`)
  else w.push(String(v))
}

/** Go's `fmt.Sprintf("%v", v)`; with a budget, charged and bounded by it. */
export const formatGoValue = (v: unknown, budget?: Budget): string => {
  if (typeof v === "string") return v
  const w = new Writer(budget)
  writeGoValue(w, v)
  return w.done()
}

const jsonEscapeString = (s: string): string => {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    switch (ch) {
      case '"':
        out += '\\"'
        break
      case "\\":
        out += "\\\\"
        break
      case "\n":
        out += "\\n"
        break
      case "\r":
        out += "\\r"
        break
      case "\t":
        out += "\\t"
        break
      case "<":
      case ">":
      case "&":
      case "\u2028":
      case "\u2029":
        out += `\\u${c.toString(16).padStart(4, "0")}`
        break
      default:
        out += c < 0x20 ? `\\u${c.toString(16).padStart(4, "0")}` : ch
    }
  }
  return out + '"'
}

const rfc3339Nano = (d: Date): string => {
  const iso = d.toISOString() // always UTC, millisecond precision
  return iso.replace(/\.000Z$/, "Z").replace(/(\.\d*?)0+Z$/, "$1Z")
}

const writeJson = (w: Writer, v: unknown, indent: string | undefined, depth: number): void => {
  w.visit()
  const nl = indent === undefined ? "" : "\n" + indent.repeat(depth + 1)
  const end = indent === undefined ? "" : "\n" + indent.repeat(depth)
  if (v === null || v === undefined) w.push("null")
  else if (typeof v === "string") {
    // Quoted, the string is at least 2 longer: refuse before escaping what cannot fit.
    w.reserve(v.length + 2)
    w.push(jsonEscapeString(v))
  } else if (typeof v === "boolean") w.push(v ? "true" : "false")
  else if (typeof v === "bigint") w.push(v.toString())
  else if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new EvalError(`json: unsupported value: ${formatGoFloat(v)}`)
    w.push(formatGoFloat(v, "json"))
  } else if (v instanceof Date) w.push(jsonEscapeString(rfc3339Nano(v)))
  else if (v instanceof ExprFunction) throw new EvalError(`json: unsupported type: func`)
  else if (Array.isArray(v)) {
    if (v.length === 0) return w.push("[]")
    w.push("[")
    v.forEach((x, i) => {
      w.push(i > 0 ? "," + nl : nl)
      writeJson(w, x, indent, depth + 1)
    })
    w.push(end + "]")
  } else if (isMap(v)) {
    const keys = Object.keys(v).sort()
    if (keys.length === 0) return w.push("{}")
    const colon = indent === undefined ? ":" : ": "
    w.push("{")
    keys.forEach((k, i) => {
      w.push((i > 0 ? "," + nl : nl) + jsonEscapeString(k) + colon)
      writeJson(w, v[k], indent, depth + 1)
    })
    w.push(end + "}")
  } else throw new EvalError(`json: unsupported type: ${typeof v}`)
}

/**
 * Go's `json.Marshal` (sorted map keys, HTML-safe escaping), or `json.MarshalIndent(v, "", indent)` when `indent` is given;
 * with a budget, charged and bounded by it. Throws EvalError for values JSON cannot encode.
 */
export const goJson = (v: unknown, indent?: string, budget?: Budget): string => {
  const w = new Writer(budget)
  writeJson(w, v, indent, 0)
  return w.done()
}

/** Go's `json.Unmarshal` into `any`: numbers become float64. */
export const goJsonParse = (s: string): unknown => {
  try {
    return JSON.parse(s) as unknown
  } catch (e) {
    throw new EvalError(`invalid JSON: ${(e as Error).message}`)
  }
}
