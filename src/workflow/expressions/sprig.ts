/**
 * The Sprig (Masterminds/sprig v3 GenericFuncMap) functions available as `sprig.<fn>(...)` in Argo
 * expressions — the commonly used subset, with sprig's lenient conversions (cast.ToInt64 etc.).
 *
 * Deliberately absent: `env`/`expandenv` (Argo removes them), and anything reading the clock or
 * randomness (`now`, `randAlpha`, `uuidv4`, ...) since this module is pure.
 */
import { createHash } from "node:crypto"
import { goAtoi, goParseFloat } from "./expr-builtins.js"
import { goRegExp } from "./expr-eval.js"
import { formatGoDate, parseRfc3339 } from "./godate.js"
import { EvalError, ExprFunction, floatToInt, formatGoValue, goJson, goTypeName, isMap, isNumber } from "./values.js"

/** cast.ToInt64 (errors become 0). */
export const castInt64 = (v: unknown): bigint => {
  if (typeof v === "bigint") return v
  if (typeof v === "number") return floatToInt(v)
  if (typeof v === "boolean") return v ? 1n : 0n
  if (typeof v === "string") {
    let s = v
    // cast trims a trailing ".0..." before parsing
    if (/^[+-]?\d+\.0*$/.test(s)) s = s.slice(0, s.indexOf("."))
    if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(s) || /^[+-]?0[0-7]+$/.test(s) || /^[+-]?0[bB][01]+$/.test(s) || /^[+-]?0[oO][0-7]+$/.test(s)) {
      const neg = s.startsWith("-")
      const body = s.replace(/^[+-]/, "")
      const val = /^0[0-7]+$/.test(body) ? BigInt("0o" + body.slice(1)) : BigInt(body)
      return neg ? -val : val
    }
    return goAtoi(s) ?? 0n
  }
  return 0n
}

/** cast.ToFloat64 (errors become 0). */
export const castFloat64 = (v: unknown): number => {
  if (typeof v === "bigint") return Number(v)
  if (typeof v === "number") return v
  if (typeof v === "boolean") return v ? 1 : 0
  if (typeof v === "string") return goParseFloat(v) ?? 0
  return 0
}

/** sprig's `strval`/`toString`. */
const strval = (v: unknown): string => (typeof v === "string" ? v : formatGoValue(v))

/** sprig's `empty`: zero values are empty. */
export const sprigEmpty = (v: unknown): boolean => {
  if (v === null || v === undefined) return true
  if (typeof v === "string") return v.length === 0
  if (typeof v === "boolean") return !v
  if (typeof v === "bigint") return v === 0n
  if (typeof v === "number") return v === 0
  if (Array.isArray(v)) return v.length === 0
  if (isMap(v)) return Object.keys(v).length === 0
  return false
}

const toDate = (v: unknown): Date | undefined => {
  if (v instanceof Date) return v
  if (typeof v === "bigint") return new Date(Number(v) * 1000)
  if (typeof v === "string") return parseRfc3339(v)
  return undefined
}

const list = (v: unknown): unknown[] => {
  if (Array.isArray(v)) return v
  throw new EvalError(`Cannot find first on type ${goTypeName(v)}`)
}

const fns: Record<string, (args: ReadonlyArray<unknown>) => unknown> = {
  // strings
  trim: ([s]) => strval(s).trim(),
  trimAll: ([cut, s]) => {
    const set = new Set(Array.from(strval(cut)))
    const cs = Array.from(strval(s))
    let a = 0
    let b = cs.length
    while (a < b && set.has(cs[a])) a++
    while (b > a && set.has(cs[b - 1])) b--
    return cs.slice(a, b).join("")
  },
  trimPrefix: ([p, s]) => (strval(s).startsWith(strval(p)) ? strval(s).slice(strval(p).length) : strval(s)),
  trimSuffix: ([p, s]) => (strval(p) !== "" && strval(s).endsWith(strval(p)) ? strval(s).slice(0, strval(s).length - strval(p).length) : strval(s)),
  upper: ([s]) => strval(s).toUpperCase(),
  lower: ([s]) => strval(s).toLowerCase(),
  title: ([s]) => strval(s).replace(/(^|[^\p{L}\p{N}'])(\p{L})/gu, (_, a: string, b: string) => a + b.toUpperCase()),
  repeat: ([n, s]) => strval(s).repeat(Math.max(0, Number(castInt64(n)))),
  substr: ([start, end, s]) => {
    const str = strval(s)
    const a = Number(castInt64(start))
    const b = Number(castInt64(end))
    if (a < 0) return str.slice(0, b)
    if (b < 0 || b > str.length) return str.slice(a)
    return str.slice(a, b)
  },
  trunc: ([n, s]) => {
    const c = Number(castInt64(n))
    const str = strval(s)
    if (c < 0 && str.length + c > 0) return str.slice(str.length + c)
    if (c >= 0 && str.length > c) return str.slice(0, c)
    return str
  },
  contains: ([sub, s]) => strval(s).includes(strval(sub)),
  hasPrefix: ([p, s]) => strval(s).startsWith(strval(p)),
  hasSuffix: ([p, s]) => strval(s).endsWith(strval(p)),
  replace: ([o, n, s]) => strval(s).split(strval(o)).join(strval(n)),
  quote: (args) => args.filter((a) => a !== null).map((a) => JSON.stringify(strval(a))).join(" "),
  squote: (args) => args.filter((a) => a !== null).map((a) => `'${strval(a)}'`).join(" "),
  cat: (args) => args.filter((a) => a !== null).map(strval).join(" "),
  indent: ([n, s]) => {
    const pad = " ".repeat(Number(castInt64(n)))
    return pad + strval(s).replace(/\n/g, "\n" + pad)
  },
  nindent: ([n, s]) => {
    const pad = " ".repeat(Number(castInt64(n)))
    return "\n" + pad + strval(s).replace(/\n/g, "\n" + pad)
  },
  split: ([sep, s]) => {
    const out: Record<string, unknown> = {}
    strval(s).split(strval(sep)).forEach((p, i) => (out[`_${i}`] = p))
    return out
  },
  splitList: ([sep, s]) => strval(s).split(strval(sep)),
  join: ([sep, v]) => (Array.isArray(v) ? v.map(strval) : [strval(v)]).join(strval(sep)),
  toString: (args: ReadonlyArray<unknown>) => strval(args[0]),
  toStrings: ([v]) => (Array.isArray(v) ? v.map(strval) : [strval(v)]),
  b64enc: ([s]) => Buffer.from(strval(s), "utf8").toString("base64"),
  b64dec: ([s]) => {
    const str = strval(s)
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(str) || str.length % 4 !== 0) return `illegal base64 data at input byte ${Math.max(0, str.search(/[^A-Za-z0-9+/=]/))}`
    return Buffer.from(str, "base64").toString("utf8")
  },
  sha1sum: ([s]) => createHash("sha1").update(strval(s)).digest("hex"),
  sha256sum: ([s]) => createHash("sha256").update(strval(s)).digest("hex"),
  adler32sum: ([s]) => {
    let a = 1
    let b = 0
    for (const byte of Buffer.from(strval(s))) {
      a = (a + byte) % 65521
      b = (b + a) % 65521
    }
    return String((b * 65536 + a) >>> 0)
  },
  regexMatch: ([re, s]) => goRegExp(strval(re)).test(strval(s)),
  regexFind: ([re, s]) => goRegExp(strval(re)).exec(strval(s))?.[0] ?? "",
  regexFindAll: ([re, s, n]) => {
    const all = Array.from(strval(s).matchAll(new RegExp(goRegExp(strval(re)).source, "gu")), (m) => m[0])
    const c = Number(castInt64(n))
    return c < 0 ? all : all.slice(0, c)
  },
  regexReplaceAll: ([re, s, repl]) =>
    strval(s).replace(new RegExp(goRegExp(strval(re)).source, "gu"), strval(repl).replace(/\$\{?(\w+)\}?/g, (_m, g: string) => (/^\d+$/.test(g) ? `$${g}` : `$<${g}>`))),
  regexReplaceAllLiteral: ([re, s, repl]) => strval(s).replace(new RegExp(goRegExp(strval(re)).source, "gu"), () => strval(repl)),
  regexSplit: ([re, s, n]) => {
    const parts = strval(s).split(new RegExp(goRegExp(strval(re)).source, "u"))
    const c = Number(castInt64(n))
    return c < 0 ? parts : parts.slice(0, c)
  },
  // conversions
  atoi: ([s]) => goAtoi(strval(s)) ?? 0n,
  int: ([v]) => castInt64(v),
  int64: ([v]) => castInt64(v),
  float64: ([v]) => castFloat64(v),
  toDecimal: ([v]) => {
    const s = strval(v)
    return /^[+-]?[0-7]+$/.test(s) ? BigInt("0o" + s.replace(/^[+-]/, "")) * (s.startsWith("-") ? -1n : 1n) : 0n
  },
  // math (sprig's integer math goes through cast.ToInt64)
  add: (args) => args.reduce<bigint>((a, b) => a + castInt64(b), 0n),
  add1: ([v]) => castInt64(v) + 1n,
  sub: ([a, b]) => castInt64(a) - castInt64(b),
  mul: (args) => args.reduce<bigint>((a, b) => a * castInt64(b), 1n),
  div: ([a, b]) => {
    const d = castInt64(b)
    if (d === 0n) throw new EvalError("runtime error: integer divide by zero")
    return castInt64(a) / d
  },
  mod: ([a, b]) => {
    const d = castInt64(b)
    if (d === 0n) throw new EvalError("runtime error: integer divide by zero")
    return castInt64(a) % d
  },
  max: ([a, ...rest]) => rest.reduce<bigint>((m, x) => (castInt64(x) > m ? castInt64(x) : m), castInt64(a)),
  min: ([a, ...rest]) => rest.reduce<bigint>((m, x) => (castInt64(x) < m ? castInt64(x) : m), castInt64(a)),
  maxf: ([a, ...rest]) => rest.reduce<number>((m, x) => Math.max(m, castFloat64(x)), castFloat64(a)),
  minf: ([a, ...rest]) => rest.reduce<number>((m, x) => Math.min(m, castFloat64(x)), castFloat64(a)),
  addf: (args) => args.reduce<number>((a, b) => a + castFloat64(b), 0),
  subf: ([a, ...rest]) => rest.reduce<number>((m, x) => m - castFloat64(x), castFloat64(a)),
  mulf: (args) => args.reduce<number>((a, b) => a * castFloat64(b), 1),
  divf: ([a, ...rest]) => rest.reduce<number>((m, x) => m / castFloat64(x), castFloat64(a)),
  floor: ([v]) => Math.floor(castFloat64(v)),
  ceil: ([v]) => Math.ceil(castFloat64(v)),
  round: ([v, p]) => {
    const f = 10 ** Number(castInt64(p))
    const x = castFloat64(v) * f
    return (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5)) / f
  },
  until: ([n]) => Array.from({ length: Math.max(0, Number(castInt64(n))) }, (_, i) => BigInt(i)),
  untilStep: ([start, stop, step]) => {
    const out: bigint[] = []
    const a = castInt64(start)
    const b = castInt64(stop)
    const s = castInt64(step)
    if (s === 0n) return out
    for (let i = a; s > 0n ? i < b : i > b; i += s) out.push(i)
    return out
  },
  seq: (args) => {
    const n = args.map((a) => Number(castInt64(a)))
    const [start, step, end] = n.length === 1 ? [1, 1, n[0]] : n.length === 2 ? [n[0], n[0] <= n[1] ? 1 : -1, n[1]] : [n[0], n[1], n[2]]
    const out: number[] = []
    if (step === 0) return ""
    for (let i = start; step > 0 ? i <= end : i >= end; i += step) out.push(i)
    return out.join(" ")
  },
  // defaults & flow
  default: ([d, ...given]) => (given.length === 0 || sprigEmpty(given[0]) ? d : given[0]),
  empty: ([v]) => sprigEmpty(v),
  coalesce: (args) => args.find((a) => !sprigEmpty(a)) ?? null,
  all: (args) => args.every((a) => !sprigEmpty(a)),
  any: (args) => args.some((a) => !sprigEmpty(a)),
  ternary: ([a, b, cond]) => (cond === true ? a : b),
  fail: ([msg]) => {
    throw new EvalError(strval(msg))
  },
  // JSON
  toJson: ([v]) => {
    try {
      return goJson(v)
    } catch {
      return ""
    }
  },
  mustToJson: ([v]) => goJson(v),
  toPrettyJson: ([v]) => {
    try {
      return goJson(v, "  ")
    } catch {
      return ""
    }
  },
  toRawJson: ([v]) => goJson(v).replace(/\\u003c/g, "<").replace(/\\u003e/g, ">").replace(/\\u0026/g, "&"),
  fromJson: ([s]) => {
    try {
      return JSON.parse(strval(s)) as unknown
    } catch {
      return null
    }
  },
  mustFromJson: ([s]) => {
    try {
      return JSON.parse(strval(s)) as unknown
    } catch (e) {
      throw new EvalError((e as Error).message)
    }
  },
  // lists & dicts
  list: (args) => [...args],
  first: ([v]) => (list(v).length ? list(v)[0] : null),
  last: ([v]) => (list(v).length ? list(v)[list(v).length - 1] : null),
  rest: ([v]) => list(v).slice(1),
  initial: ([v]) => list(v).slice(0, -1),
  append: ([v, x]) => [...list(v), x],
  prepend: ([v, x]) => [x, ...list(v)],
  concat: (args) => args.flatMap((a) => list(a)),
  reverse: ([v]) => [...list(v)].reverse(),
  uniq: ([v]) => list(v).filter((x, i, a) => a.findIndex((y) => goJson(y) === goJson(x)) === i),
  compact: ([v]) => list(v).filter((x) => !sprigEmpty(x)),
  has: ([x, v]) => list(v).some((y) => goJson(y) === goJson(x)),
  sortAlpha: ([v]) => list(v).map(strval).sort(),
  dict: (args) => {
    const out: Record<string, unknown> = {}
    for (let i = 0; i < args.length; i += 2) out[strval(args[i])] = i + 1 < args.length ? args[i + 1] : ""
    return out
  },
  get: ([d, k]) => (isMap(d) && Object.prototype.hasOwnProperty.call(d, strval(k)) ? d[strval(k)] : ""),
  hasKey: ([d, k]) => isMap(d) && Object.prototype.hasOwnProperty.call(d, strval(k)),
  keys: (args) => args.flatMap((d) => (isMap(d) ? Object.keys(d) : [])),
  values: ([d]) => (isMap(d) ? Object.values(d) : []),
  pluck: ([k, ...ds]) => ds.filter((d) => isMap(d) && Object.prototype.hasOwnProperty.call(d, strval(k))).map((d) => (d as Record<string, unknown>)[strval(k)]),
  // dates (UTC; a string argument is parsed as RFC 3339 — see `date` below)
  date: ([layout, d]) => formatGoDate(strval(layout), requireDate("date", d)),
  dateInZone: ([layout, d, zone]) => {
    if (strval(zone) !== "UTC" && strval(zone) !== "Local" && strval(zone) !== "") throw new EvalError(`time zone ${strval(zone)} is not supported (only UTC)`)
    return formatGoDate(strval(layout), requireDate("dateInZone", d))
  },
  htmlDate: ([d]) => formatGoDate("2006-01-02", requireDate("htmlDate", d)),
  unixEpoch: ([d]) => String(Math.floor(requireDate("unixEpoch", d).getTime() / 1000)),
  toDate: ([layout, s]) => {
    if (strval(layout) !== "2006-01-02T15:04:05Z07:00") {
      throw new EvalError(`toDate only supports the RFC 3339 layout in flotilla`)
    }
    return parseRfc3339(strval(s)) ?? null
  },
  // encoding/misc
  kindOf: ([v]) => (v === null ? "invalid" : typeof v === "bigint" ? "int" : typeof v === "number" ? "float64" : typeof v === "string" ? "string" : typeof v === "boolean" ? "bool" : Array.isArray(v) ? "slice" : isMap(v) ? "map" : "struct"),
  typeOf: ([v]) => goTypeName(v),
  deepEqual: ([a, b]) => goJson(a) === goJson(b),
  semverCompare: () => {
    throw new EvalError("semverCompare is not supported by flotilla")
  }
}

const requireDate = (name: string, d: unknown): Date => {
  const date = toDate(d)
  // Sprig formats time.Now() for values that are not a time or a unix timestamp. Argo's variables are
  // strings, so `sprig.date('2006', workflow.creationTimestamp)` prints the current year upstream; this pure
  // module has no clock, so it parses RFC 3339 strings instead (the creation time, normally the same year).
  if (date === undefined) throw new EvalError(`${name}: cannot use ${goTypeName(d)} ${JSON.stringify(formatGoValue(d))} as a time (expected an RFC 3339 timestamp or unix seconds)`)
  return date
}

const wrapped: Record<string, ExprFunction> = Object.fromEntries(
  Object.entries(fns).map(([name, fn]) => [name, new ExprFunction(`sprig.${name}`, fn)])
)

/** The `sprig` object exposed to expressions. */
export const sprigFunctions = (): Record<string, unknown> => ({ ...wrapped })

void isNumber
