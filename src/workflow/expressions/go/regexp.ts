/**
 * Go's `regexp` package for expressions: every pattern a user writes (expr's `matches`, govaluate's
 * `=~`/`!~`, Sprig's `regex*` functions) is RE2 syntax, compiled by re2js and matched in time
 * linear in the input, as upstream's Go regexp does. JavaScript's backtracking `RegExp` must never
 * see a user's pattern: `^(a+)+$` against forty `a`s and a `!` would hold the controller's event
 * loop for hours.
 *
 * Go semantics kept: RE2 syntax and its errors (`error parsing regexp: ...`; lookarounds and
 * backreferences are errors), leftmost-first matching, `FindAll`'s rule that an empty match right
 * after a match is skipped, `ReplaceAllString`'s `$1`/`${1}`/`${name}` expansion, `Split`.
 * Offsets are UTF-16 code units here (bytes in Go); they only ever slice the same string.
 *
 * Every operation charges the evaluation's {@link Budget}: compiling by the size of program the
 * pattern may expand to (estimated before compiling, so `x{1000}` repeated a thousand times is
 * refused, not compiled), matching by every character the engine reads (counted as it reads them,
 * so a search is stopped the moment the budget runs out), and what it builds by its size. Counting
 * reads matters: a search may read far past the match it reports (a higher-priority alternative
 * still alive, as in `x*y|x`), which makes the `All` functions quadratic in the worst case, in Go
 * as here; such a loop is charged what it really reads and stopped, instead of running for minutes.
 */
import { RE2JS } from "re2js"
import type { Budget } from "../budget.js"
import { EvalError } from "../errors.js"

type RE2 = ReturnType<RE2JS["re2"]>

export interface GoRegexp {
  readonly pattern: string
  readonly re2: RE2
  /** Instructions in the compiled program. */
  readonly program: number
  /** Capture groups, the whole match included. */
  readonly groups: number
  /** Group index by name. */
  readonly names: Readonly<Record<string, number>>
}

/** Steps one compiled instruction costs to build (measured: about ten AST node visits). */
const STEPS_PER_INSTRUCTION = 10
/** Go refuses counted repetitions beyond 1000. */
const MAX_REPEAT = 1000

/**
 * An upper estimate of the instructions a pattern compiles to, from its text alone: each atom is
 * one instruction, a group its contents plus two, and a counted repetition `{n}`/`{n,m}`/`{n,}`
 * multiplies its atom by its largest count. Linear in the pattern.
 */
export const estimateProgram = (p: string): number => {
  const groups: Array<number> = [0]
  let last = 0
  const add = (n: number) => {
    last = n
    groups[groups.length - 1] += n
  }
  const digits = (i: number): number => {
    while (i < p.length && p[i] >= "0" && p[i] <= "9") i++
    return i
  }
  for (let i = 0; i < p.length; i++) {
    const c = p[i]
    if (c === "\\") {
      const n = p[i + 1]
      if (n === "Q") {
        const e = p.indexOf("\\E", i + 2)
        const stop = e < 0 ? p.length : e
        add(Math.max(1, stop - i - 2))
        i = e < 0 ? p.length : e + 1
      } else {
        if ((n === "p" || n === "P" || n === "x") && p[i + 2] === "{") {
          const e = p.indexOf("}", i + 3)
          i = e < 0 ? p.length : e
        } else i++
        add(1)
      }
    } else if (c === "[") {
      let j = i + 1
      if (p[j] === "^") j++
      if (p[j] === "]") j++
      while (j < p.length && p[j] !== "]") {
        if (p[j] === "\\") j++
        else if (p[j] === "[" && p[j + 1] === ":") {
          const e = p.indexOf(":]", j + 2)
          if (e >= 0) j = e + 1
        }
        j++
      }
      i = j
      add(1)
    } else if (c === "(") groups.push(0)
    else if (c === ")") {
      const inner = groups.length > 1 ? groups.pop()! : 0
      add(inner + 2)
    } else if (c === "{" && p[i + 1] >= "0" && p[i + 1] <= "9") {
      const a = digits(i + 1)
      let count = Number(p.slice(i + 1, a))
      let e = a
      if (p[a] === ",") {
        e = digits(a + 1)
        count = e > a + 1 ? Math.max(count, Number(p.slice(a + 1, e))) : count + 1
      }
      if (p[e] !== "}") {
        add(1)
        continue
      }
      const factor = Math.min(Math.max(count, 1), MAX_REPEAT)
      groups[groups.length - 1] += last * (factor - 1)
      last *= factor
      i = e
    } else if (c === "|") {
      add(1)
      last = 0
    } else add(1)
  }
  return groups.reduce((a, b) => a + b, 0) + 2
}

const cache = new Map<string, GoRegexp | string>()
const CACHE_ENTRIES = 500
const CACHE_MAX_PROGRAM = 20_000

/**
 * Go's `regexp.Compile`. Charges the estimated program before compiling (on a cache hit too, so
 * that an evaluation costs the same whatever ran before it). Throws Go's parse errors.
 */
export const compileGoRegexp = (pattern: string, budget: Budget): GoRegexp => {
  budget.scan(pattern.length)
  budget.step(estimateProgram(pattern) * STEPS_PER_INSTRUCTION)
  const hit = cache.get(pattern)
  if (typeof hit === "string") throw new EvalError(hit)
  if (hit !== undefined) return hit
  let compiled: GoRegexp | string
  try {
    const re = RE2JS.compile(pattern)
    const re2 = re.re2()
    compiled = { pattern, re2, program: re.programSize(), groups: re.groupCount() + 1, names: re.namedGroups() }
  } catch (e) {
    compiled = e instanceof Error ? e.message : String(e)
    if (!compiled.startsWith("error parsing regexp")) compiled = `error parsing regexp: ${compiled}`
  }
  if (typeof compiled === "string" || compiled.program <= CACHE_MAX_PROGRAM) {
    if (cache.size >= CACHE_ENTRIES) cache.clear()
    cache.set(pattern, compiled)
  }
  if (typeof compiled === "string") throw new EvalError(compiled)
  return compiled
}

/** Steps one search costs besides the characters it reads (setting up the engine: about a microsecond). */
const STEPS_PER_SEARCH = 8
/** Reads counted before they are charged, so that counting costs little. */
const READ_BATCH = 256

/**
 * The subject text as re2js reads it: re2js accepts a `String` object and reads characters through
 * `charCodeAt`, so each read costs a step here (about what the slowest engine, the NFA, spends per
 * character and instruction group). A search that runs out of budget stops at that read.
 */
class Metered extends String {
  private reads = 0

  constructor(
    private readonly text: string,
    private readonly budget: Budget
  ) {
    super(text)
  }

  override charCodeAt(index: number): number {
    if (++this.reads >= READ_BATCH) this.settle()
    return this.text.charCodeAt(index)
  }

  /** Charges the reads counted so far. */
  settle(): void {
    const n = this.reads
    this.reads = 0
    this.budget.step(n)
  }
}

const UNANCHORED = 0

/**
 * One leftmost-first search of `s` from `pos` (context before `pos` visible to `^`, `\b`): group
 * offsets, -1 for unset, or undefined. With `groups` 0 only whether there is a match (the DFA).
 */
const search = (re: GoRegexp, s: Metered, pos: number, groups: number): Array<number> | undefined => {
  let found: boolean
  let offsets: Array<number> | null
  try {
    ;[found, offsets] = re.re2.matchWithGroup(s, pos, s.length, UNANCHORED, groups) as [boolean, Array<number> | null]
  } catch (e) {
    // A search stopped half-way may leave the engine's caches mid-update: compile afresh next time.
    cache.delete(re.pattern)
    throw e
  } finally {
    s.settle()
  }
  if (!found) return undefined
  const out = new Array<number>(Math.max(1, groups) * 2).fill(-1)
  if (offsets !== null) for (let i = 0; i < Math.min(out.length, offsets.length); i++) out[i] = offsets[i]
  return out
}

/** The subject of one operation: handing it over costs its length, each search a few steps. */
const subject = (s: string, budget: Budget): Metered => {
  budget.scan(s.length)
  return new Metered(s, budget)
}

/** Width of the character at `pos` (a surrogate pair is one character), 1 past the end. */
const width = (s: string, pos: number): number => {
  const c = s.charCodeAt(pos)
  if (c >= 0xd800 && c <= 0xdbff && pos + 1 < s.length) {
    const d = s.charCodeAt(pos + 1)
    if (d >= 0xdc00 && d <= 0xdfff) return 2
  }
  return 1
}

/** `regexp.MatchString`. */
export const matchString = (re: GoRegexp, s: string, budget: Budget): boolean => {
  budget.step(STEPS_PER_SEARCH)
  return search(re, subject(s, budget), 0, 0) !== undefined
}

/** `(*Regexp).FindString`: the leftmost match, "" when none. */
export const findString = (re: GoRegexp, s: string, budget: Budget): string => {
  budget.step(STEPS_PER_SEARCH)
  const m = search(re, subject(s, budget), 0, 1)
  return m === undefined ? "" : s.slice(m[0], m[1])
}

/**
 * Go's `allMatches`: successive non-overlapping matches, at most `n` (all when n < 0); an empty
 * match right after the previous match is skipped. `deliver` gets each match's group offsets.
 */
const allMatches = (re: GoRegexp, text: string, n: number, groups: number, budget: Budget, deliver: (m: Array<number>) => void): void => {
  const s = subject(text, budget)
  const end = text.length
  if (n < 0) n = end + 1
  let pos = 0
  let i = 0
  let prevMatchEnd = -1
  while (i < n && pos <= end) {
    budget.step(STEPS_PER_SEARCH)
    const m = search(re, s, pos, groups)
    if (m === undefined) break
    let accept = true
    if (m[1] === pos) {
      if (m[0] === prevMatchEnd) accept = false
      pos += pos < end ? width(text, pos) : 1
    } else pos = m[1]
    prevMatchEnd = m[1]
    if (accept) {
      deliver(m)
      i++
    }
  }
}

/** `(*Regexp).FindAllString`. */
export const findAllString = (re: GoRegexp, s: string, n: number, budget: Budget): Array<string> => {
  const out: Array<string> = []
  allMatches(re, s, n, 1, budget, (m) => {
    budget.element(out.length + 1)
    budget.scan(m[1] - m[0])
    out.push(s.slice(m[0], m[1]))
  })
  return out
}

/** `(*Regexp).Split`. */
export const split = (re: GoRegexp, s: string, n: number, budget: Budget): Array<string> => {
  if (n === 0) return []
  if (re.pattern.length > 0 && s.length === 0) return [""]
  const matches: Array<readonly [number, number]> = []
  allMatches(re, s, n, 1, budget, (m) => {
    budget.element(matches.length + 1)
    matches.push([m[0], m[1]])
  })
  const out: Array<string> = []
  let beg = 0
  let end = 0
  for (const [a, b] of matches) {
    if (n > 0 && out.length === n - 1) break
    end = a
    if (b !== 0) out.push(s.slice(beg, end))
    beg = b
  }
  if (end !== s.length) out.push(s.slice(beg))
  budget.scan(s.length)
  return out
}

const isNameChar = (c: string): boolean => /^[\p{L}\p{Nd}_]$/u.test(c)

/**
 * Go's `extract`: a leading `name` or `{name}` after a `$`. The name is a group number when it is
 * all digits without a leading zero.
 */
const extract = (t: string, from: number): { readonly name: string; readonly num: number; readonly next: number } | undefined => {
  let i = from
  const brace = t[i] === "{"
  if (brace) i++
  const start = i
  while (i < t.length) {
    const ch = String.fromCodePoint(t.codePointAt(i)!)
    if (!isNameChar(ch)) break
    i += ch.length
  }
  if (i === start) return undefined
  const name = t.slice(start, i)
  if (brace) {
    if (t[i] !== "}") return undefined
    i++
  }
  let num = /^[0-9]+$/.test(name) && name.length <= 9 ? Number(name) : -1
  if (name[0] === "0" && name.length > 1) num = -1
  return { name, num, next: i }
}

/** Go's `(*Regexp).expand`: the replacement template with `$n`, `${n}`, `$name`, `${name}` and `$$`. */
const expand = (re: GoRegexp, template: string, s: string, m: ReadonlyArray<number>, push: (text: string) => void): void => {
  let i = 0
  while (i < template.length) {
    const d = template.indexOf("$", i)
    if (d < 0) break
    push(template.slice(i, d))
    i = d + 1
    if (template[i] === "$") {
      push("$")
      i++
      continue
    }
    const x = extract(template, i)
    if (x === undefined) {
      push("$")
      continue
    }
    i = x.next
    const group = x.num >= 0 ? x.num : (re.names[x.name] ?? -1)
    if (group >= 0 && 2 * group + 1 < m.length && m[2 * group] >= 0) push(s.slice(m[2 * group], m[2 * group + 1]))
  }
  push(template.slice(i))
}

/**
 * `(*Regexp).ReplaceAllString` (`$` expansion) or `ReplaceAllLiteralString`. The result is refused
 * as soon as it outgrows the string bound, however many matches are left.
 */
export const replaceAll = (re: GoRegexp, s: string, repl: string, literal: boolean, budget: Budget): string => {
  const parts: Array<string> = []
  let length = 0
  const push = (text: string) => {
    length += text.length
    budget.extend(length, text.length)
    parts.push(text)
  }
  const groups = literal ? 1 : re.groups
  const metered = subject(s, budget)
  let lastMatchEnd = 0
  let searchPos = 0
  const end = s.length
  while (searchPos <= end) {
    budget.step(STEPS_PER_SEARCH)
    const a = search(re, metered, searchPos, groups)
    if (a === undefined) break
    push(s.slice(lastMatchEnd, a[0]))
    // No replacement for an empty match right after another match (it would replace twice).
    if (a[1] > lastMatchEnd || a[0] === 0) {
      budget.step()
      if (literal) push(repl)
      else expand(re, repl, s, a, push)
    }
    lastMatchEnd = a[1]
    const w = searchPos < end ? width(s, searchPos) : 0
    if (searchPos + w > a[1]) searchPos += w
    else if (searchPos + 1 > a[1]) searchPos++
    else searchPos = a[1]
  }
  push(s.slice(lastMatchEnd))
  return parts.join("")
}

/** The characters `regexp.QuoteMeta` escapes. */
const META = "\\.+*?()|[]{}^$"

/** `regexp.QuoteMeta`. */
export const quoteMeta = (s: string, budget: Budget): string => {
  let special = 0
  for (let i = 0; i < s.length; i++) if (META.includes(s[i])) special++
  budget.string(s.length + special)
  let out = ""
  for (let i = 0; i < s.length; i++) out += META.includes(s[i]) ? "\\" + s[i] : s[i]
  return out
}
