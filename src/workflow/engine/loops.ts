/**
 * Loop expansion for steps and DAG tasks: `withItems`, `withParam` (a JSON
 * list) and `withSequence`, with Argo's node names `<name>(<i>:<item>)`.
 *
 * A loop wider than `limits.maxLoopItems` is refused before a single item is
 * built: the width is known from the list's length or the sequence's bounds,
 * so a `withSequence` of 1e7 never allocates 1e7 items.
 */
import type { Json, Sequence, TemplateCall } from "../model/Workflow.js"
import { defaultExpressionLimits, type ExpressionLimits } from "../expressions/limits.js"
import { type Scope, substitute } from "./scope.js"

export interface LoopItem {
  readonly index: number
  /** The name of the expanded step/task: `<name>(<i>:<desc>)`. */
  readonly name: string
  /** The variables the item brings into scope: `item`, `item.<key>`. */
  readonly vars: ReadonlyMap<string, unknown>
}

export type LoopResult = { readonly ok: true; readonly items: ReadonlyArray<LoopItem> } | { readonly ok: false; readonly error: string }

export const isLoop = (call: TemplateCall): boolean =>
  call.withItems !== undefined || call.withParam !== undefined || call.withSequence !== undefined

const goString = (v: unknown): string =>
  typeof v === "string" ? v : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)

/** `generateNodeName`: parentheses are stripped from the item description. */
export const loopNodeName = (name: string, index: number, desc: string): string =>
  `${name}(${index}:${desc.replace(/[()]/g, "")})`

const itemOf = (name: string, index: number, item: unknown): LoopItem | string => {
  const vars = new Map<string, unknown>()
  if (typeof item === "string" || typeof item === "number" || typeof item === "boolean") {
    vars.set("item", String(item))
    return { index, name: loopNodeName(name, index, String(item)), vars }
  }
  if (Array.isArray(item)) {
    vars.set("item", JSON.stringify(item))
    return { index, name: loopNodeName(name, index, JSON.stringify(item)), vars }
  }
  if (typeof item === "object" && item !== null) {
    const entries = Object.entries(item as Record<string, unknown>)
    for (const [k, v] of entries) vars.set(`item.${k}`, goString(v))
    vars.set("item", JSON.stringify(item))
    const desc = entries.map(([k, v]) => `${k}:${goString(v)}`).sort().join(",")
    return { index, name: loopNodeName(name, index, desc), vars }
  }
  return `withItems[${index}] expected string, number, list, or map. received: ${JSON.stringify(item)}`
}

const sprintfInt = (format: string, n: number): string =>
  format.replace(/%(0?)(\d*)([dsxXo])/, (_m, zero: string, width: string, verb: string) => {
    let s = verb === "x" ? n.toString(16) : verb === "X" ? n.toString(16).toUpperCase() : verb === "o" ? n.toString(8) : String(n)
    const w = width === "" ? 0 : Number(width)
    if (s.length < w) s = (zero === "0" ? "0" : " ").repeat(w - s.length) + s
    return s
  })

const toInt = (v: string | number | undefined, field: string, scope: Scope, limits: ExpressionLimits): number | string => {
  if (v === undefined) return 0
  const text = typeof v === "number" ? String(v) : substitute(v, scope, false, limits)
  const s = typeof text === "string" ? text : text.ok ? text.value : undefined
  if (s === undefined) return `withSequence.${field}: ${(text as { error: { message: string } }).error.message}`
  const n = Number(s.trim())
  if (!Number.isInteger(n)) return `withSequence.${field}: "${s}" is not an integer`
  return n
}

/** `expandSequence`; `maxItems` bounds the width, checked from the bounds before any item exists. */
export const expandSequence = (
  seq: Sequence,
  scope: Scope,
  maxItems = Infinity,
  limits: ExpressionLimits = defaultExpressionLimits
): ReadonlyArray<string> | string => {
  const start = toInt(seq.start, "start", scope, limits)
  if (typeof start === "string") return start
  let end: number
  if (seq.end !== undefined) {
    const e = toInt(seq.end, "end", scope, limits)
    if (typeof e === "string") return e
    end = e
    const width = Math.abs(end - start) + 1
    if (width > maxItems) {
      return `withSequence.end ${end} (from start ${start}) gives ${width} items, which exceeds limits.maxLoopItems (${maxItems})`
    }
  } else if (seq.count !== undefined) {
    const c = toInt(seq.count, "count", scope, limits)
    if (typeof c === "string") return c
    if (c === 0) return []
    // Upstream's `end = start + count - 1` also runs a negative count (downwards, |count|+2 items).
    if (Math.abs(c) > maxItems) return `withSequence.count ${c} exceeds limits.maxLoopItems (${maxItems})`
    end = start + c - 1
    const width = Math.abs(end - start) + 1
    if (width > maxItems) return `withSequence.count ${c} gives ${width} items, which exceeds limits.maxLoopItems (${maxItems})`
  } else return "neither end nor count was specified in withSequence"
  const format = seq.format !== undefined && seq.format !== "" ? seq.format : "%d"
  const out: Array<string> = []
  if (start <= end) for (let i = start; i <= end; i++) out.push(sprintfInt(format, i))
  else for (let i = start; i >= end; i--) out.push(sprintfInt(format, i))
  return out
}

/**
 * Expand a call's loop into items, resolving withParam / withSequence against
 * the scope; a loop of more than `maxItems` items is an error naming
 * `limits.maxLoopItems` and the field.
 */
export const expandLoop = (
  call: TemplateCall,
  scope: Scope,
  maxItems = Infinity,
  limits: ExpressionLimits = defaultExpressionLimits
): LoopResult => {
  let raw: ReadonlyArray<unknown>
  if (call.withItems !== undefined) {
    raw = call.withItems as ReadonlyArray<Json>
    if (raw.length > maxItems) return { ok: false, error: `withItems has ${raw.length} items, which exceeds limits.maxLoopItems (${maxItems})` }
  } else if (call.withParam !== undefined) {
    const s = substitute(call.withParam, scope, false, limits)
    if (!s.ok) return { ok: false, error: s.error.message }
    let parsed: unknown
    try {
      parsed = JSON.parse(s.value)
    } catch {
      return { ok: false, error: `withParam value could not be parsed as a JSON list: ${s.value}` }
    }
    if (!Array.isArray(parsed)) return { ok: false, error: `withParam value could not be parsed as a JSON list: ${s.value}` }
    if (parsed.length > maxItems) return { ok: false, error: `withParam has ${parsed.length} items, which exceeds limits.maxLoopItems (${maxItems})` }
    raw = parsed
  } else if (call.withSequence !== undefined) {
    const seq = expandSequence(call.withSequence, scope, maxItems, limits)
    if (typeof seq === "string") return { ok: false, error: seq }
    raw = seq
  } else return { ok: true, items: [] }
  const items: Array<LoopItem> = []
  for (let i = 0; i < raw.length; i++) {
    const it = itemOf(call.name, i, raw[i])
    if (typeof it === "string") return { ok: false, error: it }
    items.push(it)
  }
  return { ok: true, items }
}

/** The loop index recovered from an expanded node name (`name(3:x)` -> 3). */
export const loopIndexOf = (nodeName: string): number => {
  const m = /\((\d+)(?::[^()]*)?\)$/.exec(nodeName) ?? /\((\d+):/.exec(nodeName)
  return m === null ? -1 : Number(m[1])
}
