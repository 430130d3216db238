/**
 * Tree-walking evaluator for expr-lang ASTs with Go runtime semantics (int vs float64, nil on
 * missing map keys, `cannot fetch` on nil, mismatched-type errors). Every node visited is charged to
 * the evaluation's budget. It knows nothing of Argo: the names an expression may use come in as
 * the {@link Env}.
 */
import type { Budget } from "../budget.js"
import { chargeArgs, chargeResult, chargeSort } from "../charge.js"
import { EvalError } from "../errors.js"
import { compileGoRegexp, matchString } from "../go/regexp.js"
import { ExprFunction, floatToInt, formatGoValue, goTypeName, isMap, isNumber, toFloat, toInt64 } from "../values.js"
import type { Node } from "./ast.js"
import { callValueBuiltin } from "./builtins.js"
import { arith, equal, less, opError } from "./operators.js"

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
          chargeArgs(this.budget, args)
          const result = fn.call(args, this.budget)
          chargeResult(this.budget, result)
          return result
        } catch (e) {
          if (e instanceof EvalError && e.position === undefined) throw e.at(node.pos, ` (calling ${fn.name})`)
          throw e
        }
      }
      case "builtin":
        return this.builtin(node, frame)
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

  /** A builtin call: the predicate builtins run their closure per element here, the others get their evaluated arguments. */
  private builtin(node: Extract<Node, { type: "builtin" }>, frame: Frame): unknown {
    const name = node.name
    const budget = this.budget
    const evalArg = (i: number) => this.eval(node.args[i], frame)
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
      this.eval(pred, { ...frame, pointer: item, index: BigInt(index), acc })
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
      chargeArgs(budget, args)
      const result = callValueBuiltin(name, args, budget)
      chargeResult(budget, result)
      return result
    } catch (e) {
      if (e instanceof EvalError && e.position === undefined) throw e.at(node.pos)
      throw e
    }
  }
}
