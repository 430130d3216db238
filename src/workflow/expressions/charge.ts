/**
 * What touching a value of the value model (values.ts) costs, charged to an evaluation's
 * {@link Budget}: the arguments of a call and the value it returns, a decoded JSON document, a sort,
 * a flattening. The budget itself only counts steps and sizes; this is where a value's size is
 * read. Shared by the expr-lang evaluator, its builtins and Sprig.
 */
import { type Budget, CHARS_PER_STEP } from "./budget.js"
import { isMap } from "./values.js"

/**
 * Checks and charges a value a function returned: strings and collections within their bounds
 * (for results whose size is a small multiple of inputs already paid for), one step per element.
 */
export const chargeResult = (budget: Budget, v: unknown): void => {
  if (typeof v === "string") budget.string(v.length)
  else if (Array.isArray(v)) budget.collection(v.length)
  else if (isMap(v)) budget.collection(Object.keys(v).length)
  else budget.step()
}

/** Charges touching the top level of the arguments of a call: one step per element, string work per character. */
export const chargeArgs = (budget: Budget, args: ReadonlyArray<unknown>): void => {
  let n = 1
  for (const a of args) {
    if (typeof a === "string") n += Math.ceil(a.length / CHARS_PER_STEP)
    else if (Array.isArray(a)) n += a.length
    else if (isMap(a)) n += Object.keys(a).length
    else n += 1
  }
  budget.step(n)
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
