/**
 * expr-lang's builtin functions (`len`, `filter`, `map`, `toJSON`, `int`, `split`, ...), with Go semantics.
 * `now()` is not available: this module never reads the clock.
 */
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

/** Go's strconv.ParseFloat(s, 64). */
export const goParseFloat = (s: string): number | undefined => {
  const t = s.replace(/_/g, "")
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith("-") ? -Infinity : Infinity
  if (/^nan$/i.test(t)) return NaN
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t)
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

/** Go's strings.Split with a count (n < 0: all). */
const goSplit = (s: string, sep: string, n: number, after: boolean): string[] => {
  if (n === 0) return []
  if (sep === "") {
    const cs = Array.from(s)
    if (n > 0 && cs.length > n) return [...cs.slice(0, n - 1), cs.slice(n - 1).join("")]
    return cs
  }
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

const flatten = (v: ReadonlyArray<unknown>): unknown[] => v.flatMap((x) => (Array.isArray(x) ? flatten(x) : [x]))

const minMax = (name: "min" | "max", args: ReadonlyArray<unknown>): unknown => {
  const items = args.length === 1 && Array.isArray(args[0]) ? flatten(args[0]) : flatten(args)
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

const sortValues = (items: unknown[], desc: boolean): unknown[] =>
  items.sort((a, b) => {
    const c = less("<", a, b, 0) ? -1 : less(">", a, b, 0) ? 1 : 0
    return desc ? -c : c
  })

export const callBuiltin = (ev: Evaluator, node: Extract<Node, { type: "builtin" }>, frame: Frame): unknown => {
  const name = node.name
  const evalArg = (i: number) => ev.eval(node.args[i], frame)
  const predicateOver = (collection: unknown) => {
    const items = Array.isArray(collection) ? collection : isMap(collection) ? Object.values(collection) : undefined
    if (items === undefined) throw new EvalError(`cannot iterate over ${goTypeName(collection)}`, node.pos)
    return items
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
            return BigInt(pred ? items.filter(test).length : items.filter((x) => truthy(x, node.pos)).length)
          case "sum": {
            let total: unknown = 0n
            items.forEach((x, i) => {
              const v = pred ? run(pred, x, i) : x
              total = isNumber(total) && isNumber(v) ? (typeof total === "bigint" && typeof v === "bigint" ? total + v : toFloat(total) + toFloat(v)) : (() => { throw new EvalError(`invalid operation: sum of ${goTypeName(v)}`, node.pos) })()
            })
            return total
          }
          case "groupBy": {
            const out: Record<string, unknown[]> = {}
            items.forEach((x, i) => {
              const k = formatGoValue(run(pred, x, i))
              ;(out[k] ??= []).push(x)
            })
            return out
          }
          case "sortBy": {
            const order = node.args[2] ? evalArg(2) : "asc"
            const keyed = items.map((x, i) => [run(pred, x, i), x] as const)
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
    return callValueBuiltin(name, args)
  } catch (e) {
    if (e instanceof EvalError && e.position === undefined) throw new EvalError(e.message, node.pos)
    throw e
  }
}

/** Builtins that take plain values. */
export const callValueBuiltin = (name: string, args: ReadonlyArray<unknown>): unknown => {
  switch (name) {
    case "len": {
      arity(name, args, 1)
      const v = args[0]
      if (typeof v === "string") return BigInt(Array.from(v).length)
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
      return formatGoValue(args[0])
    case "trim":
    case "trimPrefix":
    case "trimSuffix": {
      arity(name, args, 1, 2)
      const s = str(name, args[0])
      if (name === "trim") return args.length === 2 ? trimChars(s, str(name, args[1]), true, true) : s.replace(/^[\s\u0085]+|[\s\u0085]+$/gu, "")
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
      return goSplit(str(name, args[0]), str(name, args[1]), n, name === "splitAfter")
    }
    case "replace": {
      arity(name, args, 3)
      const s = str(name, args[0])
      const old = str(name, args[1])
      const rep = str(name, args[2])
      if (old === "") return Array.from(s).reduce((acc, c) => acc + c + rep, rep)
      return s.split(old).join(rep)
    }
    case "repeat": {
      arity(name, args, 2)
      const n = Number(exprInt(args[1]))
      if (n < 0) throw new EvalError("strings: negative Repeat count")
      return str(name, args[0]).repeat(n)
    }
    case "join": {
      arity(name, args, 1, 2)
      const items = arr(name, args[0]).map((x) => str(name, x))
      return items.join(args.length === 2 ? str(name, args[1]) : "")
    }
    case "indexOf":
    case "lastIndexOf": {
      arity(name, args, 2)
      const s = str(name, args[0])
      const sub = str(name, args[1])
      const i = name === "indexOf" ? s.indexOf(sub) : s.lastIndexOf(sub)
      return BigInt(i < 0 ? -1 : Array.from(s.slice(0, i)).length)
    }
    case "hasPrefix":
      arity(name, args, 2)
      return str(name, args[0]).startsWith(str(name, args[1]))
    case "hasSuffix":
      arity(name, args, 2)
      return str(name, args[0]).endsWith(str(name, args[1]))
    case "max":
    case "min":
      return minMax(name, args)
    case "mean":
    case "median": {
      const items = flatten(args).map((x) => toFloat(num(name, x)))
      if (items.length === 0) return 0
      if (name === "mean") return items.reduce((a, b) => a + b, 0) / items.length
      items.sort((a, b) => a - b)
      const m = Math.floor(items.length / 2)
      return items.length % 2 ? items[m] : (items[m - 1] + items[m]) / 2
    }
    case "toJSON":
      arity(name, args, 1)
      return goJson(args[0], "  ")
    case "fromJSON":
      arity(name, args, 1)
      return goJsonParse(str(name, args[0]))
    case "toBase64":
      arity(name, args, 1)
      return Buffer.from(str(name, args[0]), "utf8").toString("base64")
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
        if (!Array.isArray(p) || p.length !== 2) throw new EvalError(`invalid pair ${formatGoValue(p)}`)
        out[typeof p[0] === "string" ? p[0] : formatGoValue(p[0])] = p[1]
      }
      return out
    }
    case "reverse":
      arity(name, args, 1)
      return [...arr(name, args[0])].reverse()
    case "uniq": {
      arity(name, args, 1)
      const out: unknown[] = []
      for (const x of arr(name, args[0])) if (!out.some((y) => equal(x, y))) out.push(x)
      return out
    }
    case "concat":
      return args.flatMap((a) => [...arr(name, a)])
    case "flatten":
      arity(name, args, 1)
      return flatten(arr(name, args[0]))
    case "sort": {
      arity(name, args, 1, 2)
      const order = args.length === 2 ? str(name, args[1]) : "asc"
      return sortValues([...arr(name, args[0])], order === "desc")
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
        case "bitshl":
          return BigInt.asIntN(64, a << b)
        case "bitshr":
          return a >> b
        default:
          return BigInt.asIntN(64, BigInt.asUintN(64, a) >> b)
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
