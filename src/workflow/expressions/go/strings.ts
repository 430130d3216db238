/**
 * The parts of Go's `strings` and `strconv` packages that expr-lang's builtins and Sprig are made
 * of, with Go's semantics (runes, not UTF-16 code units, where Go counts runes). A function that
 * builds a string or list charges the evaluation's {@link Budget} and refuses a result beyond its
 * bounds before building it. Every pattern here is linear-time: nothing user-written ever reaches a
 * JavaScript RegExp (see regexp.ts for user patterns).
 */
import type { Budget } from "../budget.js"

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

/** strings.Trim / TrimLeft / TrimRight with a cutset. */
export const trimChars = (s: string, chars: string, left: boolean, right: boolean): string => {
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

/** Go's strings.SplitN / SplitAfterN (n < 0: all), refusing more pieces than the bound before building them. */
export const goSplit = (s: string, sep: string, n: number, after: boolean, budget: Budget): string[] => {
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
