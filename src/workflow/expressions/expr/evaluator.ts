/**
 * Tree-walking evaluator for expr-lang ASTs with Go runtime semantics (int vs float64,
 * nil on missing map keys, `cannot fetch` on nil, mismatched-type errors).
 */
import type { Budget } from "./budget.js"
import { callBuiltin } from "./expr-builtins.js"
import type { Node } from "./expr-parser.js"
import { compileGoRegexp, matchString } from "./goregexp.js"
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

/** Go expr's runtime.Equal; with a budget, each element compared costs a step. */
export const equal = (a: unknown, b: unknown, budget?: Budget): boolean => {
  budget?.step()
  if (isNumber(a) && isNumber(b)) {
    if (typeof a === "bigint" && typeof b === "bigint") return a === b
    return toFloat(a) === toFloat(b)
  }
  if (a === null || b === null) return a === b
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i], budget))
  if (isMap(a) && isMap(b)) return deepEqual(a, b, budget)
  if (typeof a === "string" && typeof b === "string") budget?.scan(Math.min(a.length, b.length))
  return a === b
}

/** reflect.DeepEqual (ints and floats are different types there). */
const deepEqual = (a: unknown, b: unknown, budget: Budget | undefined): boolean => {
  budget?.step()
  if (typeof a !== typeof b) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i], budget))
  }
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k], budget))
  }
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  if (typeof a === "string" && typeof b === "string") budget?.scan(Math.min(a.length, b.length))
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

/** Charges splitting a string into its characters (indexing and slicing strings count code points, as Go's runes). */
const chars = (s: string, budget: Budget | undefined): Array<string> => {
  budget?.scan(s.length)
  return Array.from(s)
}

export const fetch = (from: unknown, key: unknown, pos: number, budget?: Budget): unknown => {
  if (from === null || from === undefined) throw new EvalError(`cannot fetch ${formatGoValue(key)} from <nil>`, pos)
  if (Array.isArray(from) || typeof from === "string") {
    if (!isNumber(key)) throw new EvalError(`cannot fetch ${formatGoValue(key)} from ${goTypeName(from)}`, pos)
    let i = Number(typeof key === "bigint" ? key : floatToInt(key))
    const items = typeof from === "string" ? chars(from, budget) : from
    if (i < 0) i += items.length
    if (i < 0 || i >= items.length) throw new EvalError(`index out of range: ${i} (array length is ${items.length})`, pos)
    return items[i]
  }
  if (isMap(from)) {
    if (typeof key !== "string") throw new EvalError(`cannot fetch ${formatGoValue(key)} from ${goTypeName(from)}`, pos)
    return Object.prototype.hasOwnProperty.call(from, key) ? from[key] ?? null : null
  }
  throw new EvalError(`cannot fetch ${formatGoValue(key)} from ${goTypeName(from)}`, pos)
}

const sliceOf = (v: unknown, from: unknown, to: unknown, pos: number, budget: Budget): unknown => {
  if (!Array.isArray(v) && typeof v !== "string") throw new EvalError(`cannot slice ${goTypeName(v)}`, pos)
  const items = typeof v === "string" ? chars(v, budget) : v
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
  budget.collection(b - a)
  const out = items.slice(a, b)
  return typeof v === "string" ? out.join("") : out
}

/** Thrown to signal an optional chain (`?.`) hit nil. */
class ChainNil {}

export class Evaluator {
  constructor(
    private readonly env: Env,
    readonly budget: Budget
  ) {}

  run(node: Node): unknown {
    return this.eval(node, { vars: new Map() })
  }

  eval(node: Node, frame: Frame): unknown {
    this.budget.step()
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
        this.budget.collection(node.items.length)
        return node.items.map((n) => this.eval(n, frame))
      case "map": {
        this.budget.collection(node.pairs.length)
        const out: Record<string, unknown> = {}
        for (const [k, v] of node.pairs) {
          const key = this.eval(k, frame)
          out[typeof key === "string" ? key : formatGoValue(key, this.budget)] = this.eval(v, frame)
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
        return fetch(from, this.eval(node.property, frame), node.pos, this.budget)
      }
      case "slice":
        return sliceOf(
          this.eval(node.node, frame),
          node.from ? this.eval(node.from, frame) : undefined,
          node.to ? this.eval(node.to, frame) : undefined,
          node.pos,
          this.budget
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
          this.budget.args(args)
          const result = fn.call(args, this.budget)
          this.budget.result(result)
          return result
        } catch (e) {
          if (e instanceof EvalError && e.position === undefined) throw e.at(node.pos, ` (calling ${fn.name})`)
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
        this.budget.step(frame.vars.size)
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
    const budget = this.budget
    try {
      switch (op) {
        case "==":
          return equal(a, b, budget)
        case "!=":
          return !equal(a, b, budget)
        case "<":
        case ">":
        case "<=":
        case ">=":
          if (typeof a === "string" && typeof b === "string") budget.scan(Math.min(a.length, b.length))
          return less(op, a, b, pos)
        case "in":
          if (Array.isArray(b)) return b.some((x) => equal(a, x, budget))
          if (isMap(b)) {
            if (typeof a !== "string" && a !== null) throw opError(op, a, b, pos)
            return typeof a === "string" && Object.prototype.hasOwnProperty.call(b, a)
          }
          if (b === null) throw new EvalError(`cannot use <nil> as ${op} operand`, pos)
          throw opError(op, a, b, pos)
        case "matches":
          if (typeof a !== "string" || typeof b !== "string") throw opError(op, a, b, pos)
          return matchString(compileGoRegexp(b, budget), a, budget)
        case "contains":
          if (typeof a !== "string" || typeof b !== "string") throw opError(op, a, b, pos)
          budget.scan(a.length + b.length)
          return a.includes(b)
        case "startsWith":
          if (typeof a !== "string" || typeof b !== "string") throw opError(op, a, b, pos)
          budget.scan(b.length)
          return a.startsWith(b)
        case "endsWith":
          if (typeof a !== "string" || typeof b !== "string") throw opError(op, a, b, pos)
          budget.scan(b.length)
          return a.endsWith(b)
        case "..": {
          if (typeof a !== "bigint" || typeof b !== "bigint") throw opError(op, a, b, pos)
          if (b >= a) budget.collection(Number(b - a + 1n))
          const out: bigint[] = []
          for (let i = a; i <= b; i++) out.push(i)
          return out
        }
        case "+":
          if (typeof a === "string" && typeof b === "string") budget.string(a.length + b.length)
          return arith(op, a, b, pos)
        default:
          return arith(op, a, b, pos)
      }
    } catch (e) {
      if (e instanceof EvalError && e.position === undefined) throw e.at(pos)
      throw e
    }
  }
}
