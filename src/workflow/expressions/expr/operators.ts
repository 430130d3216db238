/**
 * expr-lang's operators on values of the value model (values.ts) with Go runtime semantics:
 * equality (`runtime.Equal`, and `reflect.DeepEqual` for nested values), ordering and arithmetic
 * (int64 vs float64). Used by the evaluator and by the builtins that compare (`sort`, `uniq`,
 * `min`...), so neither has to import the other.
 */
import type { Budget } from "../budget.js"
import { EvalError } from "../errors.js"
import { goTypeName, isMap, isNumber, toFloat, toInt64 } from "../values.js"

/** Go's `invalid operation` error for operands of types the operator does not take. */
export const opError = (op: string, a: unknown, b: unknown, pos: number): EvalError =>
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

/** Go expr's ordering of numbers (int and float compare by value), strings and times; `op` is `<`, `>`, `<=` or `>=`. */
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

/** Arithmetic with Go's int64 wrap-around, float64 division and `%` only on ints. */
export const arith = (op: string, a: unknown, b: unknown, pos: number): unknown => {
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
