/**
 * Tree-walking evaluator for expr-lang ASTs with Go runtime semantics (int vs float64,
 * nil on missing map keys, `cannot fetch` on nil, mismatched-type errors).
 */
import { callBuiltin } from "./expr-builtins.js"
import type { Node } from "./expr-parser.js"
import {
  EvalError,
  ExprFunction,
  floatToInt,
  formatGoValue,
  goTypeName,
  isMap,
  isNumber,
  toFloat,
  toInt64
} from "./values.js"

export interface Frame {
  readonly pointer?: unknown
  readonly index?: bigint
  readonly acc?: unknown
  readonly vars: ReadonlyMap<string, unknown>
}

export interface Env {
  /** Top-level names (the expanded scope plus Argo's functions). */
  readonly root: Readonly<Record<string, unknown>>
}

const opError = (op: string, a: unknown, b: unknown, pos: number): EvalError =>
  new EvalError(`invalid operation: ${goTypeName(a)} ${op} ${goTypeName(b)}`, pos)

/** Go expr's runtime.Equal. */
export const equal = (a: unknown, b: unknown): boolean => {
  if (isNumber(a) && isNumber(b)) {
    if (typeof a === "bigint" && typeof b === "bigint") return a === b
    return toFloat(a) === toFloat(b)
  }
  if (a === null || b === null) return a === b
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  if (isMap(a) && isMap(b)) return deepEqual(a, b)
  return a === b
}

/** reflect.DeepEqual (ints and floats are different types there). */
const deepEqual = (a: unknown, b: unknown): boolean => {
  if (typeof a !== typeof b) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  }
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]))
  }
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  return a === b
}

export const less = (op: string, a: unknown, b: unknown, pos: number): boolean => {
  let c: number
  if (isNumber(a) && isNumber(b)) {
    if (typeof a === "bigint" && typeof b === "bigint") c = a < b ? -1 : a > b ? 1 : 0
    else {
      const x = toFloat(a)
      const y = toFloat(b)
      c = x < y ? -1 : x > y ? 1 : x === y ? 0 : NaN
    }
  } else if (typeof a === "string" && typeof b === "string") c = a < b ? -1 : a > b ? 1 : 0
  else if (a instanceof Date && b instanceof Date) c = a.getTime() - b.getTime()
  else throw opError(op, a, b, pos)
  switch (op) {
    case "<":
      return c < 0
    case ">":
      return c > 0
    case "<=":
      return c <= 0
    default:
      return c >= 0
  }
}

const arith = (op: string, a: unknown, b: unknown, pos: number): unknown => {
  if (isNumber(a) && isNumber(b)) {
    const ints = typeof a === "bigint" && typeof b === "bigint"
    switch (op) {
      case "+":
        return ints ? toInt64(a + b) : toFloat(a) + toFloat(b)
      case "-":
        return ints ? toInt64(a - b) : toFloat(a) - toFloat(b)
      case "*":
        return ints ? toInt64(a * b) : toFloat(a) * toFloat(b)
      case "/":
        return toFloat(a) / toFloat(b)
      case "%":
        if (!ints) throw opError(op, a, b, pos)
        if (b === 0n) throw new EvalError("integer divide by zero", pos)
        return a % b
      case "**":
      case "^":
        return Math.pow(toFloat(a), toFloat(b))
    }
  }
  if (op === "+" && typeof a === "string" && typeof b === "string") return a + b
  throw opError(op, a, b, pos)
}

const toBool = (v: unknown, op: string, pos: number): boolean => {
  if (typeof v !== "boolean") throw new EvalError(`invalid operation: ${op} (mismatched type ${goTypeName(v)})`, pos)
  return v
}

const regexCache = new Map<string, RegExp>()
/** Compiles a Go RE2 pattern as a JavaScript RegExp (leading inline flags like `(?i)` become RegExp flags). */
export const goRegExp = (pattern: string, pos = 0): RegExp => {
  const cached = regexCache.get(pattern)
  if (cached) return cached
  let flags = "u"
  let body = pattern
  const m = /^\(\?([imsU]+)\)/.exec(body)
  if (m) {
    body = body.slice(m[0].length)
    for (const f of m[1]) if (f !== "U" && !flags.includes(f)) flags += f
  }
  body = body.replace(/\\A/g, "^").replace(/\\z/g, "$").replace(/\(\?P</g, "(?<")
  try {
    const r = new RegExp(body, flags)
    regexCache.set(pattern, r)
    return r
  } catch (e) {
    throw new EvalError(`error parsing regexp: ${(e as Error).message}`, pos)
  }
}

export const fetch = (from: unknown, key: unknown, pos: number): unknown => {
  if (from === null || from === undefined) throw new EvalError(`cannot fetch ${formatGoValue(key)} from <nil>`, pos)
  if (Array.isArray(from) || typeof from === "string") {
    if (!isNumber(key)) throw new EvalError(`cannot fetch ${formatGoValue(key)} from ${goTypeName(from)}`, pos)
    let i = Number(typeof key === "bigint" ? key : floatToInt(key))
    const chars = typeof from === "string" ? Array.from(from) : from
    if (i < 0) i += chars.length
    if (i < 0 || i >= chars.length) throw new EvalError(`index out of range: ${i} (array length is ${chars.length})`, pos)
    return chars[i]
  }
  if (isMap(from)) {
    if (typeof key !== "string") throw new EvalError(`cannot fetch ${formatGoValue(key)} from ${goTypeName(from)}`, pos)
    return Object.prototype.hasOwnProperty.call(from, key) ? from[key] ?? null : null
  }
  throw new EvalError(`cannot fetch ${formatGoValue(key)} from ${goTypeName(from)}`, pos)
}

const sliceOf = (v: unknown, from: unknown, to: unknown, pos: number): unknown => {
  if (!Array.isArray(v) && typeof v !== "string") throw new EvalError(`cannot slice ${goTypeName(v)}`, pos)
  const items = typeof v === "string" ? Array.from(v) : v
  const n = items.length
  const idx = (x: unknown, dflt: number): number => {
    if (x === undefined) return dflt
    if (!isNumber(x)) throw new EvalError(`invalid slice index of type ${goTypeName(x)}`, pos)
    let i = Number(typeof x === "bigint" ? x : floatToInt(x))
    if (i < 0) i += n
    return Math.min(Math.max(i, 0), n)
  }
  let a = idx(from, 0)
  const b = idx(to, n)
  if (a > b) a = b
  const out = items.slice(a, b)
  return typeof v === "string" ? out.join("") : out
}

/** Thrown to signal an optional chain (`?.`) hit nil. */
class ChainNil {}

export class Evaluator {
  constructor(private readonly env: Env) {}

  run(node: Node): unknown {
    return this.eval(node, { vars: new Map() })
  }

  eval(node: Node, frame: Frame): unknown {
    switch (node.type) {
      case "nil":
        return null
      case "bool":
      case "int":
      case "float":
      case "string":
        return node.value
      case "ident": {
        if (frame.vars.has(node.name)) return frame.vars.get(node.name)
        if (Object.prototype.hasOwnProperty.call(this.env.root, node.name)) return this.env.root[node.name] ?? null
        throw new EvalError(`unknown name ${node.name}`, node.pos)
      }
      case "pointer": {
        if (node.name === "") return frame.pointer
        if (node.name === "index") return frame.index ?? null
        if (node.name === "acc") return frame.acc ?? null
        throw new EvalError(`unknown pointer #${node.name}`, node.pos)
      }
      case "array":
        return node.items.map((n) => this.eval(n, frame))
      case "map": {
        const out: Record<string, unknown> = {}
        for (const [k, v] of node.pairs) {
          const key = this.eval(k, frame)
          out[typeof key === "string" ? key : formatGoValue(key)] = this.eval(v, frame)
        }
        return out
      }
      case "unary": {
        const v = this.eval(node.node, frame)
        switch (node.op) {
          case "not":
          case "!":
            return !toBool(v, node.op, node.pos)
          case "-":
            if (typeof v === "bigint") return toInt64(-v)
            if (typeof v === "number") return -v
            throw new EvalError(`invalid operation: -${goTypeName(v)}`, node.pos)
          default:
            if (isNumber(v)) return v
            throw new EvalError(`invalid operation: +${goTypeName(v)}`, node.pos)
        }
      }
      case "binary":
        return this.binary(node, frame)
      case "chain":
        try {
          return this.eval(node.node, frame)
        } catch (e) {
          if (e instanceof ChainNil) return null
          throw e
        }
      case "member": {
        const from = this.eval(node.node, frame)
        if (node.optional && (from === null || from === undefined)) throw new ChainNil()
        return fetch(from, this.eval(node.property, frame), node.pos)
      }
      case "slice":
        return sliceOf(
          this.eval(node.node, frame),
          node.from ? this.eval(node.from, frame) : undefined,
          node.to ? this.eval(node.to, frame) : undefined,
          node.pos
        )
      case "call": {
        const fn = this.eval(node.callee, frame)
        const args = node.args.map((a) => this.eval(a, frame))
        if (!(fn instanceof ExprFunction)) {
          const name = node.callee.type === "ident" ? node.callee.name : node.callee.type === "member" && node.callee.property.type === "string" ? node.callee.property.value : "value"
          if (fn === null) throw new EvalError(`${name} is not a function (it is nil)`, node.pos)
          throw new EvalError(`${name} is not a function (it is ${goTypeName(fn)})`, node.pos)
        }
        try {
          return fn.call(args)
        } catch (e) {
          if (e instanceof EvalError && e.position === undefined) throw new EvalError(`${e.message} (calling ${fn.name})`, node.pos)
          throw e
        }
      }
      case "builtin":
        return callBuiltin(this, node, frame)
      case "predicate":
        return this.eval(node.node, frame)
      case "conditional": {
        const c = this.eval(node.cond, frame)
        if (typeof c !== "boolean") throw new EvalError(`non-bool expression (type ${goTypeName(c)}) used as condition`, node.cond.pos)
        return c ? this.eval(node.then, frame) : this.eval(node.else, frame)
      }
      case "let": {
        const value = this.eval(node.value, frame)
        const vars = new Map(frame.vars)
        vars.set(node.name, value)
        return this.eval(node.body, { ...frame, vars })
      }
      case "sequence": {
        let last: unknown = null
        for (const n of node.nodes) last = this.eval(n, frame)
        return last
      }
    }
  }

  private binary(node: Extract<Node, { type: "binary" }>, frame: Frame): unknown {
    const { op, pos } = node
    switch (op) {
      case "and":
      case "&&": {
        const l = toBool(this.eval(node.left, frame), op, pos)
        return l ? toBool(this.eval(node.right, frame), op, pos) : false
      }
      case "or":
      case "||": {
        const l = toBool(this.eval(node.left, frame), op, pos)
        return l ? true : toBool(this.eval(node.right, frame), op, pos)
      }
      case "??": {
        const l = this.eval(node.left, frame)
        return l !== null && l !== undefined ? l : this.eval(node.right, frame)
      }
    }
    const a = this.eval(node.left, frame)
    const b = this.eval(node.right, frame)
    switch (op) {
      case "==":
        return equal(a, b)
      case "!=":
        return !equal(a, b)
      case "<":
      case ">":
      case "<=":
      case ">=":
        return less(op, a, b, pos)
      case "in":
        if (Array.isArray(b)) return b.some((x) => equal(a, x))
        if (isMap(b)) {
          if (typeof a !== "string" && a !== null) throw opError(op, a, b, pos)
          return typeof a === "string" && Object.prototype.hasOwnProperty.call(b, a)
        }
        if (b === null) throw new EvalError(`cannot use <nil> as ${op} operand`, pos)
        throw opError(op, a, b, pos)
      case "matches":
        if (typeof a !== "string" || typeof b !== "string") throw opError(op, a, b, pos)
        return goRegExp(b, pos).test(a)
      case "contains":
        if (typeof a !== "string" || typeof b !== "string") throw opError(op, a, b, pos)
        return a.includes(b)
      case "startsWith":
        if (typeof a !== "string" || typeof b !== "string") throw opError(op, a, b, pos)
        return a.startsWith(b)
      case "endsWith":
        if (typeof a !== "string" || typeof b !== "string") throw opError(op, a, b, pos)
        return a.endsWith(b)
      case "..": {
        if (typeof a !== "bigint" || typeof b !== "bigint") throw opError(op, a, b, pos)
        const out: bigint[] = []
        for (let i = a; i <= b; i++) out.push(i)
        return out
      }
      default:
        return arith(op, a, b, pos)
    }
  }
}
