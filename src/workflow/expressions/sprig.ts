/**
 * The Sprig (Masterminds/sprig v3 GenericFuncMap) functions available as `sprig.<fn>(...)` in Argo
 * expressions — the commonly used subset, with sprig's lenient conversions (cast.ToInt64 etc.).
 *
 * Deliberately absent: `env`/`expandenv` (Argo removes them), and anything reading the clock or
 * randomness (`now`, `randAlpha`, `uuidv4`, ...) since this module is pure.
 *
 * Regular expressions are Go's (RE2, linear time; see go/regexp.ts). Every function charges the
 * evaluation's budget for the work beyond touching its arguments and result, and checks a string or
 * list it builds against its bound before building it (`repeat`, `until`, `seq`, `indent`, `join`...).
 */
import { createHash } from "node:crypto"
import type { Budget } from "./budget.js"
import { chargeDecoded, chargeSort } from "./charge.js"
import { EvalError, isLimitError } from "./errors.js"
import { formatGoDate, parseRfc3339 } from "./go/date.js"
import { compileGoRegexp, findAllString, findString, type GoRegexp, matchString, quoteMeta, replaceAll, split as regexpSplit } from "./go/regexp.js"
import { countOf, goAtoi, goParseFloat, replaceAllLiteral, runeCount } from "./go/strings.js"
import { ExprFunction, floatToInt, formatGoValue, goJson, goTypeName, isMap, toInt64 } from "./values.js"

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
const strval = (v: unknown, b: Budget): string => (typeof v === "string" ? v : formatGoValue(v, b))

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

/** Joins strings once their total length is known to fit. */
const joined = (parts: ReadonlyArray<string>, sep: string, b: Budget): string => {
  b.string(parts.reduce((n, p) => n + p.length, 0) + Math.max(0, parts.length - 1) * sep.length)
  return parts.join(sep)
}

/** sprig's `untilStep`, its length computed (and checked) before it is built. */
const untilStep = (start: bigint, stop: bigint, step: bigint, b: Budget): Array<bigint> => {
  let count = 0n
  if (stop < start && step < 0n) count = (start - stop + (-step) - 1n) / -step
  else if (stop >= start && step > 0n) count = (stop - start + step - 1n) / step
  b.collection(Number(count))
  const out: Array<bigint> = []
  for (let i = 0n, v = start; i < count; i++, v += step) out.push(v)
  return out
}

/** Go's `quote` in regexp.MustCompile's panic message. */
const goQuote = (s: string): string => (/^[^`\x00-\x08\x0a-\x1f\x7f]*$/.test(s) ? "`" + s + "`" : JSON.stringify(s))

/** `regexp.MustCompile`, as sprig's non-`must` functions call it: a bad pattern panics, an expression error upstream. */
const mustCompile = (re: unknown, b: Budget): GoRegexp => {
  const pattern = strval(re, b)
  try {
    return compileGoRegexp(pattern, b)
  } catch (e) {
    if (e instanceof EvalError && !e.limit) throw new EvalError(`regexp: Compile(${goQuote(pattern)}): ${e.message}`)
    throw e
  }
}

/** `regexp.Compile`, as the `must` functions call it: a bad pattern is their error. */
const compile = (re: unknown, b: Budget): GoRegexp => compileGoRegexp(strval(re, b), b)

/** `int` arguments (sprig takes `n int`): cast, clamped into a safe JavaScript number. */
const intArg = (v: unknown): number => {
  const n = castInt64(v)
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : n < BigInt(Number.MIN_SAFE_INTEGER) ? Number.MIN_SAFE_INTEGER : Number(n)
}

const indent = (n: unknown, s: unknown, b: Budget, lead: string): string => {
  const width = Math.max(0, intArg(n))
  const text = strval(s, b)
  const lines = countOf(text, "\n") + 1
  b.string(lead.length + text.length + lines * width)
  const pad = " ".repeat(width)
  return lead + pad + text.replaceAll("\n", () => "\n" + pad)
}

/** sprig's JSON encoders swallow marshalling errors (an empty string), but never an exceeded limit. */
const orEmpty = (f: () => string): string => {
  try {
    return f()
  } catch (e) {
    if (isLimitError(e)) throw e
    return ""
  }
}

/** The decoded value of `fromJson`, charged by its size. */
const decodeJson = (s: string, b: Budget): unknown => {
  b.scan(s.length)
  const v = JSON.parse(s) as unknown
  chargeDecoded(v, b)
  return v
}

type SprigFunction = (args: ReadonlyArray<unknown>, b: Budget) => unknown

const fns: Record<string, SprigFunction> = {
  // strings
  trim: ([s], b) => strval(s, b).trim(),
  trimAll: ([cut, s], b) => {
    const set = new Set(Array.from(strval(cut, b)))
    const cs = Array.from(strval(s, b))
    let a = 0
    let e = cs.length
    while (a < e && set.has(cs[a])) a++
    while (e > a && set.has(cs[e - 1])) e--
    return cs.slice(a, e).join("")
  },
  trimPrefix: ([p, s], b) => (strval(s, b).startsWith(strval(p, b)) ? strval(s, b).slice(strval(p, b).length) : strval(s, b)),
  trimSuffix: ([p, s], b) => (strval(p, b) !== "" && strval(s, b).endsWith(strval(p, b)) ? strval(s, b).slice(0, strval(s, b).length - strval(p, b).length) : strval(s, b)),
  upper: ([s], b) => strval(s, b).toUpperCase(),
  lower: ([s], b) => strval(s, b).toLowerCase(),
  title: ([s], b) => strval(s, b).replace(/(^|[^\p{L}\p{N}'])(\p{L})/gu, (_, x: string, y: string) => x + y.toUpperCase()),
  repeat: ([n, s], b) => {
    const text = strval(s, b)
    const count = Math.max(0, intArg(n))
    b.string(text.length * count)
    return text.repeat(count)
  },
  substr: ([start, end, s], b) => {
    const str = strval(s, b)
    const x = intArg(start)
    const y = intArg(end)
    if (x < 0) return str.slice(0, y)
    if (y < 0 || y > str.length) return str.slice(x)
    return str.slice(x, y)
  },
  trunc: ([n, s], b) => {
    const c = intArg(n)
    const str = strval(s, b)
    if (c < 0 && str.length + c > 0) return str.slice(str.length + c)
    if (c >= 0 && str.length > c) return str.slice(0, c)
    return str
  },
  contains: ([sub, s], b) => strval(s, b).includes(strval(sub, b)),
  hasPrefix: ([p, s], b) => strval(s, b).startsWith(strval(p, b)),
  hasSuffix: ([p, s], b) => strval(s, b).endsWith(strval(p, b)),
  replace: ([o, n, s], b) => replaceAllLiteral(strval(s, b), strval(o, b), strval(n, b), b),
  quote: (args, b) => joined(args.filter((a) => a !== null).map((a) => JSON.stringify(strval(a, b))), " ", b),
  squote: (args, b) => joined(args.filter((a) => a !== null).map((a) => `'${strval(a, b)}'`), " ", b),
  cat: (args, b) => joined(args.filter((a) => a !== null).map((a) => strval(a, b)), " ", b),
  indent: ([n, s], b) => indent(n, s, b, ""),
  nindent: ([n, s], b) => indent(n, s, b, "\n"),
  split: ([sep, s], b) => {
    const out: Record<string, unknown> = {}
    splitList(strval(s, b), strval(sep, b), b).forEach((p, i) => (out[`_${i}`] = p))
    return out
  },
  splitList: ([sep, s], b) => splitList(strval(s, b), strval(sep, b), b),
  join: ([sep, v], b) => joined(Array.isArray(v) ? v.map((x) => strval(x, b)) : [strval(v, b)], strval(sep, b), b),
  toString: (args: ReadonlyArray<unknown>, b: Budget) => strval(args[0], b),
  toStrings: ([v], b) => (Array.isArray(v) ? v.map((x) => strval(x, b)) : [strval(v, b)]),
  b64enc: ([s], b) => {
    const text = strval(s, b)
    b.string(4 * Math.ceil(Buffer.byteLength(text, "utf8") / 3))
    return Buffer.from(text, "utf8").toString("base64")
  },
  b64dec: ([s], b) => {
    const str = strval(s, b)
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(str) || str.length % 4 !== 0) return `illegal base64 data at input byte ${Math.max(0, str.search(/[^A-Za-z0-9+/=]/))}`
    return Buffer.from(str, "base64").toString("utf8")
  },
  sha1sum: ([s], b) => createHash("sha1").update(strval(s, b)).digest("hex"),
  sha256sum: ([s], b) => createHash("sha256").update(strval(s, b)).digest("hex"),
  adler32sum: ([s], b) => {
    let x = 1
    let y = 0
    for (const byte of Buffer.from(strval(s, b))) {
      x = (x + byte) % 65521
      y = (y + x) % 65521
    }
    return String((y * 65536 + x) >>> 0)
  },
  // regular expressions (Go's regexp; the non-`must` ones panic on a bad pattern, except regexMatch, which says false)
  regexMatch: ([re, s], b) => {
    let compiled: GoRegexp
    try {
      compiled = compile(re, b)
    } catch (e) {
      if (isLimitError(e)) throw e
      return false
    }
    return matchString(compiled, strval(s, b), b)
  },
  mustRegexMatch: ([re, s], b) => matchString(compile(re, b), strval(s, b), b),
  regexFind: ([re, s], b) => findString(mustCompile(re, b), strval(s, b), b),
  mustRegexFind: ([re, s], b) => findString(compile(re, b), strval(s, b), b),
  regexFindAll: ([re, s, n], b) => findAllString(mustCompile(re, b), strval(s, b), intArg(n), b),
  mustRegexFindAll: ([re, s, n], b) => findAllString(compile(re, b), strval(s, b), intArg(n), b),
  regexReplaceAll: ([re, s, repl], b) => replaceAll(mustCompile(re, b), strval(s, b), strval(repl, b), false, b),
  mustRegexReplaceAll: ([re, s, repl], b) => replaceAll(compile(re, b), strval(s, b), strval(repl, b), false, b),
  regexReplaceAllLiteral: ([re, s, repl], b) => replaceAll(mustCompile(re, b), strval(s, b), strval(repl, b), true, b),
  mustRegexReplaceAllLiteral: ([re, s, repl], b) => replaceAll(compile(re, b), strval(s, b), strval(repl, b), true, b),
  regexSplit: ([re, s, n], b) => regexpSplit(mustCompile(re, b), strval(s, b), intArg(n), b),
  mustRegexSplit: ([re, s, n], b) => regexpSplit(compile(re, b), strval(s, b), intArg(n), b),
  regexQuoteMeta: ([s], b) => quoteMeta(strval(s, b), b),
  // conversions
  atoi: ([s], b) => goAtoi(strval(s, b)) ?? 0n,
  int: ([v]) => castInt64(v),
  int64: ([v]) => castInt64(v),
  float64: ([v]) => castFloat64(v),
  toDecimal: ([v], b) => {
    const s = strval(v, b)
    return /^[+-]?[0-7]+$/.test(s) ? BigInt("0o" + s.replace(/^[+-]/, "")) * (s.startsWith("-") ? -1n : 1n) : 0n
  },
  // math (sprig's integer math goes through cast.ToInt64 and wraps around as int64 does)
  add: (args) => args.reduce<bigint>((a, x) => toInt64(a + castInt64(x)), 0n),
  add1: ([v]) => toInt64(castInt64(v) + 1n),
  sub: ([a, x]) => toInt64(castInt64(a) - castInt64(x)),
  mul: (args) => args.reduce<bigint>((a, x) => toInt64(a * castInt64(x)), 1n),
  div: ([a, x]) => {
    const d = castInt64(x)
    if (d === 0n) throw new EvalError("runtime error: integer divide by zero")
    return toInt64(castInt64(a) / d)
  },
  mod: ([a, x]) => {
    const d = castInt64(x)
    if (d === 0n) throw new EvalError("runtime error: integer divide by zero")
    return castInt64(a) % d
  },
  max: ([a, ...rest]) => rest.reduce<bigint>((m, x) => (castInt64(x) > m ? castInt64(x) : m), castInt64(a)),
  min: ([a, ...rest]) => rest.reduce<bigint>((m, x) => (castInt64(x) < m ? castInt64(x) : m), castInt64(a)),
  maxf: ([a, ...rest]) => rest.reduce<number>((m, x) => Math.max(m, castFloat64(x)), castFloat64(a)),
  minf: ([a, ...rest]) => rest.reduce<number>((m, x) => Math.min(m, castFloat64(x)), castFloat64(a)),
  addf: (args) => args.reduce<number>((a, x) => a + castFloat64(x), 0),
  subf: ([a, ...rest]) => rest.reduce<number>((m, x) => m - castFloat64(x), castFloat64(a)),
  mulf: (args) => args.reduce<number>((a, x) => a * castFloat64(x), 1),
  divf: ([a, ...rest]) => rest.reduce<number>((m, x) => m / castFloat64(x), castFloat64(a)),
  floor: ([v]) => Math.floor(castFloat64(v)),
  ceil: ([v]) => Math.ceil(castFloat64(v)),
  round: ([v, p]) => {
    const f = 10 ** intArg(p)
    const x = castFloat64(v) * f
    return (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5)) / f
  },
  until: ([n], b) => {
    const count = castInt64(n)
    return untilStep(0n, count, count < 0n ? -1n : 1n, b)
  },
  untilStep: ([start, stop, step], b) => untilStep(castInt64(start), castInt64(stop), castInt64(step), b),
  seq: (args, b) => {
    const n = args.map((a) => castInt64(a))
    let items: Array<bigint>
    if (n.length === 1) {
      const inc = n[0] < 1n ? -1n : 1n
      items = untilStep(1n, n[0] + inc, inc, b)
    } else if (n.length === 2) {
      const inc = n[1] < n[0] ? -1n : 1n
      items = untilStep(n[0], n[1] + inc, inc, b)
    } else if (n.length === 3) {
      const [start, step, end] = n
      const inc = end < start ? -1n : 1n
      if ((inc < 0n && step > 0n) || (inc > 0n && step < 0n)) return ""
      items = untilStep(start, end + inc, step, b)
    } else return ""
    return joined(items.map(String), " ", b)
  },
  // defaults & flow
  default: ([d, ...given]) => (given.length === 0 || sprigEmpty(given[0]) ? d : given[0]),
  empty: ([v]) => sprigEmpty(v),
  coalesce: (args) => args.find((a) => !sprigEmpty(a)) ?? null,
  all: (args) => args.every((a) => !sprigEmpty(a)),
  any: (args) => args.some((a) => !sprigEmpty(a)),
  ternary: ([a, x, cond]) => (cond === true ? a : x),
  fail: ([msg], b) => {
    throw new EvalError(strval(msg, b))
  },
  // JSON
  toJson: ([v], b) => orEmpty(() => goJson(v, undefined, b)),
  mustToJson: ([v], b) => goJson(v, undefined, b),
  toPrettyJson: ([v], b) => orEmpty(() => goJson(v, "  ", b)),
  toRawJson: ([v], b) => goJson(v, undefined, b).replace(/\\u003c/g, "<").replace(/\\u003e/g, ">").replace(/\\u0026/g, "&"),
  fromJson: ([s], b) => {
    const text = strval(s, b)
    try {
      return decodeJson(text, b)
    } catch (e) {
      if (isLimitError(e)) throw e
      return null
    }
  },
  mustFromJson: ([s], b) => {
    const text = strval(s, b)
    try {
      return decodeJson(text, b)
    } catch (e) {
      if (isLimitError(e)) throw e
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
  concat: (args, b) => {
    const lists = args.map(list)
    b.collection(lists.reduce((n, l) => n + l.length, 0))
    return lists.flatMap((l) => [...l])
  },
  reverse: ([v]) => [...list(v)].reverse(),
  uniq: ([v], b) => {
    const seen = new Set<string>()
    return list(v).filter((x) => {
      const key = goJson(x, undefined, b)
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
  },
  compact: ([v]) => list(v).filter((x) => !sprigEmpty(x)),
  has: ([x, v], b) => {
    const key = goJson(x, undefined, b)
    return list(v).some((y) => goJson(y, undefined, b) === key)
  },
  sortAlpha: ([v], b) => {
    const items = list(v).map((x) => strval(x, b))
    chargeSort(items.length, b)
    return items.sort()
  },
  dict: (args, b) => {
    const out: Record<string, unknown> = {}
    for (let i = 0; i < args.length; i += 2) out[strval(args[i], b)] = i + 1 < args.length ? args[i + 1] : ""
    return out
  },
  get: ([d, k], b) => (isMap(d) && Object.prototype.hasOwnProperty.call(d, strval(k, b)) ? d[strval(k, b)] : ""),
  hasKey: ([d, k], b) => isMap(d) && Object.prototype.hasOwnProperty.call(d, strval(k, b)),
  keys: (args, b) => {
    const all = args.flatMap((d) => (isMap(d) ? Object.keys(d) : []))
    b.collection(all.length)
    return all
  },
  values: ([d]) => (isMap(d) ? Object.values(d) : []),
  pluck: ([k, ...ds], b) => ds.filter((d) => isMap(d) && Object.prototype.hasOwnProperty.call(d, strval(k, b))).map((d) => (d as Record<string, unknown>)[strval(k, b)]),
  // dates (UTC; a string argument is parsed as RFC 3339 — see `date` below)
  date: ([layout, d], b) => formatDate(strval(layout, b), requireDate("date", d, b), b),
  dateInZone: ([layout, d, zone], b) => {
    if (strval(zone, b) !== "UTC" && strval(zone, b) !== "Local" && strval(zone, b) !== "") throw new EvalError(`time zone ${strval(zone, b)} is not supported (only UTC)`)
    return formatDate(strval(layout, b), requireDate("dateInZone", d, b), b)
  },
  htmlDate: ([d], b) => formatGoDate("2006-01-02", requireDate("htmlDate", d, b)),
  unixEpoch: ([d], b) => String(Math.floor(requireDate("unixEpoch", d, b).getTime() / 1000)),
  toDate: ([layout, s], b) => {
    if (strval(layout, b) !== "2006-01-02T15:04:05Z07:00") {
      throw new EvalError(`toDate only supports the RFC 3339 layout in flotilla`)
    }
    return parseRfc3339(strval(s, b)) ?? null
  },
  // encoding/misc
  kindOf: ([v]) => (v === null ? "invalid" : typeof v === "bigint" ? "int" : typeof v === "number" ? "float64" : typeof v === "string" ? "string" : typeof v === "boolean" ? "bool" : Array.isArray(v) ? "slice" : isMap(v) ? "map" : "struct"),
  typeOf: ([v]) => goTypeName(v),
  deepEqual: ([a, x], b) => goJson(a, undefined, b) === goJson(x, undefined, b),
  semverCompare: () => {
    throw new EvalError("semverCompare is not supported by flotilla")
  }
}

/** strings.Split, each piece counted before the list is built. */
const splitList = (s: string, sep: string, b: Budget): Array<string> => {
  b.scan(s.length)
  if (sep === "") {
    b.collection(runeCount(s))
    return Array.from(s)
  }
  b.collection(countOf(s, sep) + 1)
  return s.split(sep)
}

/** A Go layout scans in a few passes over the layout, and each element it prints is short. */
const formatDate = (layout: string, d: Date, b: Budget): string => {
  b.scan(layout.length * 8)
  return formatGoDate(layout, d)
}

const requireDate = (name: string, d: unknown, b: Budget): Date => {
  const date = toDate(d)
  // Sprig formats time.Now() for values that are not a time or a unix timestamp. Argo's variables are
  // strings, so `sprig.date('2006', workflow.creationTimestamp)` prints the current year upstream; this pure
  // module has no clock, so it parses RFC 3339 strings instead (the creation time, normally the same year).
  if (date === undefined) throw new EvalError(`${name}: cannot use ${goTypeName(d)} ${JSON.stringify(formatGoValue(d, b))} as a time (expected an RFC 3339 timestamp or unix seconds)`)
  return date
}

const wrapped: Record<string, ExprFunction> = Object.fromEntries(
  Object.entries(fns).map(([name, fn]) => [name, new ExprFunction(`sprig.${name}`, fn)])
)

/** The `sprig` object exposed to expressions. */
export const sprigFunctions = (): Record<string, unknown> => ({ ...wrapped })
