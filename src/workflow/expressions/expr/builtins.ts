/**
 * expr-lang's builtin functions (`len`, `filter`, `map`, `toJSON`, `int`, `split`, ...), with Go semantics.
 * `now()` is not available: this module never reads the clock.
 */
import type { Budget } from "./budget.js"
import type { Evaluator, Frame } from "./expr-eval.js"
import { equal, less } from "./expr-eval.js"
import type { Node } from "./expr-parser.js"
import {
  EvalError,
  floatToInt,
  formatGoValue,
  goJson,
  goJsonParse,
  goTypeName,
  isMap,
  isNumber,
  toFloat
} from "./values.js"

/** Go's strconv.Atoi: optional sign, decimal digits only. */
export const goAtoi = (s: string): bigint | undefined => {
  if (!/^[+-]?\d+$/.test(s)) return undefined
  const v = BigInt(s)
  return v > 9223372036854775807n || v < -9223372036854775808n ? undefined : v
}

/** Go's strconv.ParseFloat(s, 64). (Each pattern here is unambiguous, so it matches in linear time.) */
export const goParseFloat = (s: string): number | undefined => {
  const t = s.replace(/_/g, "")
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith("-") ? -Infinity : Infinity
  if (/^nan$/i.test(t)) return NaN
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t)
  if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(t)) return Number(BigInt(t.replace(/^[+-]/, ""))) * (t.startsWith("-") ? -1 : 1)
  return undefined
}

/** expr-lang's `int(x)` (also Argo's `asInt`). */
export const exprInt = (x: unknown): bigint => {
  if (typeof x === "bigint") return x
  if (typeof x === "number") return floatToInt(x)
  if (typeof x === "string") {
    const v = goAtoi(x)
    if (v === undefined) throw new EvalError(`invalid operation: int(${x})`)
    return v
  }
  if (typeof x === "boolean") throw new EvalError(`invalid operation: int(bool)`)
  throw new EvalError(`invalid operation: int(${goTypeName(x)})`)
}

/** expr-lang's `float(x)` (also Argo's `asFloat`). */
export const exprFloat = (x: unknown): number => {
  if (typeof x === "bigint") return Number(x)
  if (typeof x === "number") return x
  if (typeof x === "string") {
    const v = goParseFloat(x)
    if (v === undefined) throw new EvalError(`invalid operation: float(${x})`)
    return v
  }
  throw new EvalError(`invalid operation: float(${goTypeName(x)})`)
}

const arity = (name: string, args: ReadonlyArray<unknown>, min: number, max = min) => {
  if (args.length < min) throw new EvalError(`not enough arguments to call ${name}`)
  if (args.length > max) throw new EvalError(`too many arguments to call ${name}`)
}

const str = (name: string, v: unknown): string => {
  if (typeof v !== "string") throw new EvalError(`cannot use ${goTypeName(v)} as argument (type string) to call ${name}`)
  return v
}
const arr = (name: string, v: unknown): ReadonlyArray<unknown> => {
  if (!Array.isArray(v)) throw new EvalError(`cannot use ${goTypeName(v)} as argument (type []interface {}) to call ${name}`)
  return v
}
const num = (name: string, v: unknown): bigint | number => {
  if (!isNumber(v)) throw new EvalError(`invalid argument for ${name} (type ${goTypeName(v)})`)
  return v
}

const trimChars = (s: string, chars: string, left: boolean, right: boolean): string => {
  const set = new Set(Array.from(chars))
  const cs = Array.from(s)
  let a = 0
  let b = cs.length
  if (left) while (a < b && set.has(cs[a])) a++
  if (right) while (b > a && set.has(cs[b - 1])) b--
  return cs.slice(a, b).join("")
}

const isSpace = (c: string): boolean => /^[\s\u0085]$/u.test(c)

/** strings.TrimSpace, by scanning from both ends (`/\s+$/` backtracks quadratically over inner runs of spaces). */
export const trimSpace = (s: string): string => {
  let a = 0
  let b = s.length
  while (a < b && isSpace(s[a])) a++
  while (b > a && isSpace(s[b - 1])) b--
  return s.slice(a, b)
}

/** Code points in a string (Go's rune count). */
export const runeCount = (s: string): number => {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0xdc00 || c > 0xdfff || i === 0 || s.charCodeAt(i - 1) < 0xd800 || s.charCodeAt(i - 1) > 0xdbff) n++
  }
  return n
}

/** Occurrences of a non-empty `sep` in `s`, non-overlapping, at most `max`. */
export const countOf = (s: string, sep: string, max = Infinity): number => {
  let n = 0
  for (let i = s.indexOf(sep); i >= 0 && n < max; i = s.indexOf(sep, i + sep.length)) n++
  return n
}

/** Go's strings.Split with a count (n < 0: all), refusing more pieces than the bound before building them. */
const goSplit = (s: string, sep: string, n: number, after: boolean, budget: Budget): string[] => {
  if (n === 0) return []
  budget.scan(s.length)
  if (sep === "") {
    const runes = runeCount(s)
    budget.collection(n > 0 ? Math.min(n, runes) : runes)
    const cs = Array.from(s)
    if (n > 0 && cs.length > n) return [...cs.slice(0, n - 1), cs.slice(n - 1).join("")]
    return cs
  }
  const pieces = countOf(s, sep, n < 0 ? Infinity : n - 1) + 1
  budget.collection(pieces)
  const out: string[] = []
  let rest = s
  while (n < 0 || out.length < n - 1) {
    const i = rest.indexOf(sep)
    if (i < 0) break
    out.push(after ? rest.slice(0, i + sep.length) : rest.slice(0, i))
    rest = rest.slice(i + sep.length)
  }
  out.push(rest)
  return out
}

/** Every leaf of nested lists, each visited charged; refused once more leaves than the bound. */
export const flatten = (v: ReadonlyArray<unknown>, budget: Budget): unknown[] => {
  const out: unknown[] = []
  const go = (xs: ReadonlyArray<unknown>) => {
    for (const x of xs) {
      if (Array.isArray(x)) {
        budget.step()
        go(x)
      } else {
        budget.element(out.length + 1)
        out.push(x)
      }
    }
  }
  go(v)
  return out
}

/** Charges sorting `n` items (n log n comparisons). */
export const chargeSort = (n: number, budget: Budget): void => {
  budget.step(n <= 1 ? 1 : Math.ceil(n * Math.log2(n)))
}

/** Walks a decoded JSON value: each element costs a step, each list or map is checked against the bound. */
export const chargeDecoded = (v: unknown, budget: Budget): void => {
  budget.step()
  if (Array.isArray(v)) {
    budget.element(v.length)
    for (const x of v) chargeDecoded(x, budget)
  } else if (isMap(v)) {
    const values = Object.values(v)
    budget.element(values.length)
    for (const x of values) chargeDecoded(x, budget)
  }
}

/** `strings.Replace(s, old, new, -1)`: the result's length is known before it is built. */
export const replaceAllLiteral = (s: string, old: string, rep: string, budget: Budget): string => {
  budget.scan(s.length)
  if (old === "") {
    const runes = runeCount(s)
    budget.string(s.length + (runes + 1) * rep.length)
    let out = rep
    for (const c of s) out += c + rep
    return out
  }
  const count = countOf(s, old)
  budget.string(s.length + count * (rep.length - old.length))
  return s.replaceAll(old, () => rep)
}

const minMax = (name: "min" | "max", args: ReadonlyArray<unknown>, budget: Budget): unknown => {
  const items = args.length === 1 && Array.isArray(args[0]) ? flatten(args[0], budget) : flatten(args, budget)
  if (items.length === 0) {
    if (args.length === 0) throw new EvalError(`not enough arguments to call ${name}`)
    return null
  }
  let best: unknown = undefined
  for (const x of items) {
    num(name, x)
    if (best === undefined || (name === "min" ? less("<", x, best, 0) : less(">", x, best, 0))) best = x
  }
  return best
}

const sortValues = (items: unknown[], desc: boolean, budget: Budget): unknown[] => {
  chargeSort(items.length, budget)
  return items.sort((a, b) => {
    const c = less("<", a, b, 0) ? -1 : less(">", a, b, 0) ? 1 : 0
    return desc ? -c : c
  })
}

export const callBuiltin = (ev: Evaluator, node: Extract<Node, { type: "builtin" }>, frame: Frame): unknown => {
  const name = node.name
  const budget = ev.budget
  const evalArg = (i: number) => ev.eval(node.args[i], frame)
  const predicateOver = (collection: unknown) => {
    if (Array.isArray(collection)) return collection
    if (isMap(collection)) {
      const values = Object.values(collection)
      budget.step(values.length)
      return values
    }
    throw new EvalError(`cannot iterate over ${goTypeName(collection)}`, node.pos)
  }
  const run = (pred: Node, item: unknown, index: number, acc?: unknown) =>
    ev.eval(pred, { ...frame, pointer: item, index: BigInt(index), acc })
  const truthy = (v: unknown, pos: number) => {
    if (typeof v !== "boolean") throw new EvalError(`predicate should return boolean (got ${goTypeName(v)})`, pos)
    return v
  }
  try {
    switch (name) {
      case "all":
      case "any":
      case "none":
      case "one":
      case "filter":
      case "map":
      case "find":
      case "findIndex":
      case "findLast":
      case "findLastIndex":
      case "count":
      case "sum":
      case "groupBy":
      case "sortBy":
      case "reduce": {
        const items = predicateOver(evalArg(0))
        const pred = node.args[1]
        const test = (x: unknown, i: number) => truthy(run(pred, x, i), pred.pos)
        switch (name) {
          case "all":
            return items.every(test)
          case "any":
            return items.some(test)
          case "none":
            return !items.some(test)
          case "one":
            return items.filter(test).length === 1
          case "filter":
            return items.filter(test)
          case "map":
            return items.map((x, i) => run(pred, x, i))
          case "find":
            return items.find(test) ?? null
          case "findIndex":
            return BigInt(items.findIndex(test))
          case "findLast": {
            for (let i = items.length - 1; i >= 0; i--) if (test(items[i], i)) return items[i]
            return null
          }
          case "findLastIndex": {
            for (let i = items.length - 1; i >= 0; i--) if (test(items[i], i)) return BigInt(i)
            return -1n
          }
          case "count":
            return BigInt(pred ? items.filter(test).length : items.filter((x) => { budget.step(); return truthy(x, node.pos) }).length)
          case "sum": {
            let total: unknown = 0n
            items.forEach((x, i) => {
              const v = pred ? run(pred, x, i) : x
              budget.step()
              total = isNumber(total) && isNumber(v) ? (typeof total === "bigint" && typeof v === "bigint" ? total + v : toFloat(total) + toFloat(v)) : (() => { throw new EvalError(`invalid operation: sum of ${goTypeName(v)}`, node.pos) })()
            })
            return total
          }
          case "groupBy": {
            const out: Record<string, unknown[]> = {}
            items.forEach((x, i) => {
              const k = formatGoValue(run(pred, x, i), budget)
              ;(out[k] ??= []).push(x)
            })
            return out
          }
          case "sortBy": {
            const order = node.args[2] ? evalArg(2) : "asc"
            const keyed = items.map((x, i) => [run(pred, x, i), x] as const)
            chargeSort(keyed.length, budget)
            keyed.sort((a, b) => (less("<", a[0], b[0], node.pos) ? -1 : less(">", a[0], b[0], node.pos) ? 1 : 0) * (order === "desc" ? -1 : 1))
            return keyed.map(([, x]) => x)
          }
          case "reduce": {
            let acc: unknown
            let start = 0
            if (node.args[2]) acc = evalArg(2)
            else {
              if (items.length === 0) throw new EvalError("reduce of empty array with no initial value", node.pos)
              acc = items[0]
              start = 1
            }
            for (let i = start; i < items.length; i++) acc = run(pred, items[i], i, acc)
            return acc
          }
        }
        break
      }
    }
    const args = node.args.map((_, i) => evalArg(i))
    budget.args(args)
    const result = callValueBuiltin(name, args, budget)
    budget.result(result)
    return result
  } catch (e) {
    if (e instanceof EvalError && e.position === undefined) throw e.at(node.pos)
    throw e
  }
}

/**
 * Builtins that take plain values. The caller charges touching the arguments and the result; what
 * is charged here is the work beyond that, and what is built is checked before it is built.
 */
export const callValueBuiltin = (name: string, args: ReadonlyArray<unknown>, budget: Budget): unknown => {
  switch (name) {
    case "len": {
      arity(name, args, 1)
      const v = args[0]
      if (typeof v === "string") return BigInt(runeCount(v))
      if (Array.isArray(v)) return BigInt(v.length)
      if (isMap(v)) return BigInt(Object.keys(v).length)
      throw new EvalError(`invalid argument for len (type ${goTypeName(v)})`)
    }
    case "type": {
      arity(name, args, 1)
      const v = args[0]
      if (v === null) return "nil"
      if (typeof v === "boolean") return "bool"
      if (typeof v === "bigint") return "int"
      if (typeof v === "number") return "float"
      if (typeof v === "string") return "string"
      if (Array.isArray(v)) return "array"
      if (v instanceof Date) return "time.Time"
      if (isMap(v)) return "map"
      return "func"
    }
    case "abs": {
      arity(name, args, 1)
      const v = num(name, args[0])
      return typeof v === "bigint" ? (v < 0n ? -v : v) : Math.abs(v)
    }
    case "ceil":
    case "floor":
    case "round": {
      arity(name, args, 1)
      const v = num(name, args[0])
      if (typeof v === "bigint") return Number(v)
      if (name === "round") return v < 0 ? -Math.round(-v) : Math.round(v) // Go rounds half away from zero
      return name === "ceil" ? Math.ceil(v) : Math.floor(v)
    }
    case "int":
      arity(name, args, 1)
      return exprInt(args[0])
    case "float":
      arity(name, args, 1)
      return exprFloat(args[0])
    case "string":
      arity(name, args, 1)
      return formatGoValue(args[0], budget)
    case "trim":
    case "trimPrefix":
    case "trimSuffix": {
      arity(name, args, 1, 2)
      const s = str(name, args[0])
      if (name === "trim") return args.length === 2 ? trimChars(s, str(name, args[1]), true, true) : trimSpace(s)
      const affix = args.length === 2 ? str(name, args[1]) : " "
      if (name === "trimPrefix") return s.startsWith(affix) ? s.slice(affix.length) : s
      return affix !== "" && s.endsWith(affix) ? s.slice(0, s.length - affix.length) : s
    }
    case "upper":
      arity(name, args, 1)
      return str(name, args[0]).toUpperCase()
    case "lower":
      arity(name, args, 1)
      return str(name, args[0]).toLowerCase()
    case "split":
    case "splitAfter": {
      arity(name, args, 2, 3)
      const n = args.length === 3 ? Number(exprInt(args[2])) : -1
      return goSplit(str(name, args[0]), str(name, args[1]), n, name === "splitAfter", budget)
    }
    case "replace": {
      arity(name, args, 3)
      return replaceAllLiteral(str(name, args[0]), str(name, args[1]), str(name, args[2]), budget)
    }
    case "repeat": {
      arity(name, args, 2)
      const s = str(name, args[0])
      const n = Number(exprInt(args[1]))
      if (n < 0) throw new EvalError("strings: negative Repeat count")
      budget.string(s.length * n)
      return s.repeat(n)
    }
    case "join": {
      arity(name, args, 1, 2)
      const items = arr(name, args[0]).map((x) => str(name, x))
      const sep = args.length === 2 ? str(name, args[1]) : ""
      budget.string(items.reduce((n, x) => n + x.length, 0) + Math.max(0, items.length - 1) * sep.length)
      return items.join(sep)
    }
    case "indexOf":
    case "lastIndexOf": {
      arity(name, args, 2)
      const s = str(name, args[0])
      const sub = str(name, args[1])
      const i = name === "indexOf" ? s.indexOf(sub) : s.lastIndexOf(sub)
      return BigInt(i < 0 ? -1 : runeCount(s.slice(0, i)))
    }
    case "hasPrefix":
      arity(name, args, 2)
      return str(name, args[0]).startsWith(str(name, args[1]))
    case "hasSuffix":
      arity(name, args, 2)
      return str(name, args[0]).endsWith(str(name, args[1]))
    case "max":
    case "min":
      return minMax(name, args, budget)
    case "mean":
    case "median": {
      const items = flatten(args, budget).map((x) => toFloat(num(name, x)))
      if (items.length === 0) return 0
      if (name === "mean") return items.reduce((a, b) => a + b, 0) / items.length
      chargeSort(items.length, budget)
      items.sort((a, b) => a - b)
      const m = Math.floor(items.length / 2)
      return items.length % 2 ? items[m] : (items[m - 1] + items[m]) / 2
    }
    case "toJSON":
      arity(name, args, 1)
      return goJson(args[0], "  ", budget)
    case "fromJSON": {
      arity(name, args, 1)
      const s = str(name, args[0])
      budget.scan(s.length)
      const v = goJsonParse(s)
      chargeDecoded(v, budget)
      return v
    }
    case "toBase64": {
      arity(name, args, 1)
      const s = str(name, args[0])
      budget.string(4 * Math.ceil(Buffer.byteLength(s, "utf8") / 3))
      return Buffer.from(s, "utf8").toString("base64")
    }
    case "fromBase64": {
      arity(name, args, 1)
      const s = str(name, args[0])
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new EvalError(`illegal base64 data`)
      return Buffer.from(s, "base64").toString("utf8")
    }
    case "first":
    case "last": {
      arity(name, args, 1)
      const v = args[0]
      if (!Array.isArray(v)) throw new EvalError(`cannot get ${name} from ${goTypeName(v)}`)
      if (v.length === 0) return null
      return name === "first" ? v[0] : v[v.length - 1]
    }
    case "get": {
      arity(name, args, 2)
      const [from, key] = args
      if (Array.isArray(from) && isNumber(key)) {
        let i = Number(typeof key === "bigint" ? key : floatToInt(key))
        if (i < 0) i += from.length
        return i >= 0 && i < from.length ? from[i] : null
      }
      if (isMap(from) && typeof key === "string") return Object.prototype.hasOwnProperty.call(from, key) ? from[key] : null
      return null
    }
    case "take": {
      arity(name, args, 2)
      const n = Number(exprInt(args[1]))
      return arr(name, args[0]).slice(0, Math.max(n, 0))
    }
    case "keys":
    case "values":
    case "toPairs": {
      arity(name, args, 1)
      const m = args[0]
      if (!isMap(m)) throw new EvalError(`cannot get ${name} from ${goTypeName(m)}`)
      if (name === "keys") return Object.keys(m)
      if (name === "values") return Object.values(m)
      return Object.entries(m).map(([k, v]) => [k, v])
    }
    case "fromPairs": {
      arity(name, args, 1)
      const out: Record<string, unknown> = {}
      for (const p of arr(name, args[0])) {
        if (!Array.isArray(p) || p.length !== 2) throw new EvalError(`invalid pair ${formatGoValue(p, budget)}`)
        out[typeof p[0] === "string" ? p[0] : formatGoValue(p[0], budget)] = p[1]
      }
      return out
    }
    case "reverse":
      arity(name, args, 1)
      return [...arr(name, args[0])].reverse()
    case "uniq": {
      arity(name, args, 1)
      const out: unknown[] = []
      for (const x of arr(name, args[0])) if (!out.some((y) => equal(x, y, budget))) out.push(x)
      return out
    }
    case "concat": {
      const lists = args.map((a) => arr(name, a))
      budget.collection(lists.reduce((n, l) => n + l.length, 0))
      return lists.flatMap((l) => [...l])
    }
    case "flatten":
      arity(name, args, 1)
      return flatten(arr(name, args[0]), budget)
    case "sort": {
      arity(name, args, 1, 2)
      const order = args.length === 2 ? str(name, args[1]) : "asc"
      return sortValues([...arr(name, args[0])], order === "desc", budget)
    }
    case "bitnot":
      arity(name, args, 1)
      return ~exprIntStrict(name, args[0])
    case "bitand":
    case "bitor":
    case "bitxor":
    case "bitnand":
    case "bitshl":
    case "bitshr":
    case "bitushr": {
      arity(name, args, 2)
      const a = exprIntStrict(name, args[0])
      const b = exprIntStrict(name, args[1])
      switch (name) {
        case "bitand":
          return a & b
        case "bitor":
          return a | b
        case "bitxor":
          return a ^ b
        case "bitnand":
          return a & ~b
      }
      // Go's shifts of an int64: a negative count panics, a count of 64 or more shifts everything
      // out (computed here without building a b-bit integer first).
      if (b < 0n) throw new EvalError("runtime error: negative shift amount")
      switch (name) {
        case "bitshl":
          return b >= 64n ? 0n : BigInt.asIntN(64, a << b)
        case "bitshr":
          return b >= 64n ? (a < 0n ? -1n : 0n) : a >> b
        default:
          return b >= 64n ? 0n : BigInt.asIntN(64, BigInt.asUintN(64, a) >> b)
      }
    }
    case "now":
    case "duration":
    case "date":
    case "timezone":
      throw new EvalError(`${name}() is not supported by flotilla's expression evaluator (no clock or time zone access)`)
  }
  throw new EvalError(`unknown builtin ${name}`)
}

const exprIntStrict = (name: string, v: unknown): bigint => {
  if (typeof v !== "bigint") throw new EvalError(`invalid argument for ${name} (type ${goTypeName(v)})`)
  return v
}
