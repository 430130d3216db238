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

/** A function callable from an expression (`asInt(...)`, `sprig.date(...)`, ...). */
export class ExprFunction {
  constructor(
    readonly name: string,
    readonly call: (args: ReadonlyArray<unknown>) => unknown
  ) {}
}

/** Thrown inside the evaluator; converted to an ExpressionError at the boundary. */
export class EvalError extends Error {
  constructor(message: string, readonly position?: number) {
    super(message)
  }
}

export const isInt = (v: unknown): v is bigint => typeof v === "bigint"
export const isFloat = (v: unknown): v is number => typeof v === "number"
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

/** Imports a value produced by `JSON.parse`: numbers stay float64, as Go's `json.Unmarshal` into `any` does. */
export const fromJsonValue = (v: unknown): unknown => (v === undefined ? null : v)

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

/** Go's `fmt.Sprintf("%v", v)`. */
export const formatGoValue = (v: unknown): string => {
  if (v === null || v === undefined) return "<nil>"
  if (typeof v === "string") return v
  if (typeof v === "boolean") return v ? "true" : "false"
  if (typeof v === "bigint") return v.toString()
  if (typeof v === "number") return formatGoFloat(v)
  if (Array.isArray(v)) return `[${v.map(formatGoValue).join(" ")}]`
  if (v instanceof Date) return formatGoTime(v)
  if (v instanceof ExprFunction) return `func ${v.name}`
  if (isMap(v)) {
    const keys = Object.keys(v).sort()
    return `map[${keys.map((k) => `${k}:${formatGoValue(v[k])}`).join(" ")}]`
  }
  return String(v)
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

/**
 * Go's `json.Marshal` (sorted map keys, HTML-safe escaping), or `json.MarshalIndent(v, "", indent)` when `indent` is given.
 * Throws EvalError for values JSON cannot encode.
 */
export const goJson = (v: unknown, indent?: string, depth = 0): string => {
  const nl = indent === undefined ? "" : "\n" + indent.repeat(depth + 1)
  const end = indent === undefined ? "" : "\n" + indent.repeat(depth)
  const colon = indent === undefined ? ":" : ": "
  if (v === null || v === undefined) return "null"
  if (typeof v === "string") return jsonEscapeString(v)
  if (typeof v === "boolean") return v ? "true" : "false"
  if (typeof v === "bigint") return v.toString()
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new EvalError(`json: unsupported value: ${formatGoFloat(v)}`)
    return formatGoFloat(v, "json")
  }
  if (v instanceof Date) return jsonEscapeString(rfc3339Nano(v))
  if (v instanceof ExprFunction) throw new EvalError(`json: unsupported type: func`)
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]"
    return `[${nl}${v.map((x) => goJson(x, indent, depth + 1)).join("," + nl)}${end}]`
  }
  if (isMap(v)) {
    const keys = Object.keys(v).sort()
    if (keys.length === 0) return "{}"
    return `{${nl}${keys.map((k) => `${jsonEscapeString(k)}${colon}${goJson(v[k], indent, depth + 1)}`).join("," + nl)}${end}}`
  }
  throw new EvalError(`json: unsupported type: ${typeof v}`)
}

/** Go's `json.Unmarshal` into `any`: numbers become float64. */
export const goJsonParse = (s: string): unknown => {
  try {
    return JSON.parse(s) as unknown
  } catch (e) {
    throw new EvalError(`invalid JSON: ${(e as Error).message}`)
  }
}
