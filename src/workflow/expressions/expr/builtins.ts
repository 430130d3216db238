/**
 * expr-lang's builtin functions on plain values (`len`, `toJSON`, `int`, `split`, `sort`, ...), with
 * Go semantics. The builtins taking a predicate (`filter`, `map`, `all`, `reduce`...) evaluate
 * closures, so they live in the evaluator. `now()`, `date()` and friends are refused: this module
 * never reads the clock.
 *
 * The caller charges touching the arguments and the result; each builtin charges the work beyond
 * that, and checks what it builds against the limits before building it.
 */
import type { Budget } from "../budget.js"
import { chargeDecoded, chargeSort, flatten } from "../charge.js"
import { EvalError } from "../errors.js"
import { goAtoi, goParseFloat, goSplit, replaceAllLiteral, runeCount, trimChars, trimSpace } from "../go/strings.js"
import { floatToInt, formatGoValue, goJson, goJsonParse, goTypeName, isMap, isNumber, toFloat } from "../values.js"
import { equal, less } from "./operators.js"

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
