/**
 * Regular expressions from users are Go's (RE2): linear-time matching, Go's syntax and errors,
 * Go's `FindAll`/`ReplaceAll`/`Split` semantics. A backtracking engine would never return from the
 * catastrophic cases below (the test would time out, holding the event loop).
 */
import { assert, describe, it } from "@effect/vitest"
import { evaluate, evaluateGovaluate, evaluateWhen } from "../../../src/workflow/expressions/index.js"

const scope = (entries: Record<string, unknown> = {}) => new Map(Object.entries(entries))
const ev = (text: string, s: Record<string, unknown> = {}) => {
  const r = evaluate(text, scope(s))
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}
const evErr = (text: string, s: Record<string, unknown> = {}) => {
  const r = evaluate(text, scope(s))
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value)}`)
  return r.error.message
}

/** Exponential for a backtracking engine: (a+)+ can split forty a's in 2^39 ways before failing at the `!`. */
const EVIL = "^(a+)+$"
const SUBJECT = "a".repeat(40) + "!"

describe("RE2: catastrophic patterns return promptly", () => {
  it("expr's `matches` operator", () => {
    assert.strictEqual(ev(`s matches '${EVIL}'`, { s: SUBJECT }), false)
    assert.strictEqual(ev(`s not matches '${EVIL}'`, { s: SUBJECT }), true)
  })

  it("sprig's regex functions", () => {
    const s = { s: SUBJECT }
    assert.strictEqual(ev(`sprig.regexMatch('${EVIL}', s)`, s), false)
    assert.strictEqual(ev(`sprig.mustRegexMatch('${EVIL}', s)`, s), false)
    assert.strictEqual(ev(`sprig.regexFind('(a+)+!$', s)`, s), SUBJECT)
    assert.strictEqual(ev(`sprig.regexFind('${EVIL}', s)`, s), "")
    assert.deepStrictEqual(ev(`sprig.regexFindAll('${EVIL}', s, -1)`, s), [])
    assert.strictEqual(ev(`sprig.regexReplaceAll('${EVIL}', s, 'x')`, s), SUBJECT)
    assert.strictEqual(ev(`sprig.regexReplaceAllLiteral('${EVIL}', s, 'x')`, s), SUBJECT)
    assert.deepStrictEqual(ev(`sprig.regexSplit('(a+)+$', s, -1)`, s), [SUBJECT])
  })

  it("govaluate's =~ and !~ in `when`", () => {
    const w = evaluateWhen(`'{{inputs.parameters.s}}' =~ '${EVIL}'`, scope({ "inputs.parameters.s": SUBJECT }))
    assert.deepStrictEqual(w, { ok: true, value: false })
    assert.deepStrictEqual(evaluateGovaluate(`'${SUBJECT}' !~ '${EVIL}'`), { ok: true, value: true })
  })

  it("jsonpath filters: `=~` is Go's regexp, and JavaScript's (`.match(/.../)`, any method call) is not available", () => {
    const s = { doc: JSON.stringify([{ name: SUBJECT }, { name: "Jai" }]) }
    assert.deepStrictEqual(ev(`jsonpath(doc, '$[?(@.name =~ "${EVIL}")].name')`, s), [])
    assert.deepStrictEqual(ev(`jsonpath(doc, '$[?(@.name =~ "^J")].name')`, s), ["Jai"])
    assert.deepStrictEqual(ev(`jsonpath(doc, '$[?(@.name =~ /^j/i)].name')`, s), ["Jai"])
    assert.include(evErr(`jsonpath(doc, '$[?(@.name.match(/${EVIL}/))]')`, s), "jsonpath: invalid path")
    assert.include(evErr(`jsonpath(doc, '$[?(@.name.repeat(1000000000))]')`, s), "function calls are not supported in filters")
    assert.include(evErr(`jsonpath(doc, '$[?(@.name =~ "(?=J)")]')`, s), "error parsing regexp")
  })

  it("a search reading far past its match (`x*y|x`, quadratic in Go too) is stopped by the step budget", () => {
    const msg = evErr("len(sprig.regexFindAll('x*y|x', sprig.repeat(20000, 'x'), -1))")
    assert.include(msg, "limits.expression.maxSteps")
  })
})

describe("RE2: Go syntax", () => {
  it.each([
    ["sprig.regexFind('[[:alpha:]]+', '12abc3')", "abc"],
    ["sprig.regexFind('[[:digit:][:upper:]]+', 'abC12d')", "C12"],
    ["sprig.regexFind('\\\\pL+', '12éa!')", "éa"],
    ["sprig.regexFind('\\\\p{Greek}+', 'abc αβγ')", "αβγ"],
    ["sprig.regexFind('\\\\Qa.b\\\\E', 'axb a.b')", "a.b"],
    ["sprig.regexFind('(?U)a+', 'aaa')", "a"],
    ["sprig.regexFind('a(?i)b', 'aB')", "aB"],
    ["sprig.regexFind('(?i:A)b', 'ab aB')", "ab"],
    ["sprig.regexFind('(?s)a.b', 'a\\nb')", "a\nb"],
    ["sprig.regexFind('a.b', 'a\\nb')", ""],
    ["sprig.regexMatch('\\\\Aab\\\\z', 'ab')", true],
    ["sprig.regexMatch('ab\\\\z', 'ab\\n')", false],
    ["sprig.regexMatch('ab$', 'ab\\n')", false],
    ["sprig.regexMatch('(?m)ab$', 'ab\\ncd')", true],
    ["sprig.regexMatch('x{2,3}', 'xx')", true],
    ["sprig.regexReplaceAll('(?P<first>\\\\w+) (?P<last>\\\\w+)', 'Ada Lovelace', '${last}, ${first}')", "Lovelace, Ada"],
    ["sprig.regexReplaceAll('(?<first>\\\\w+) (?<last>\\\\w+)', 'Ada Lovelace', '$last $first')", "Lovelace Ada"],
    ["'ABC' matches '(?i)^abc$'", true],
    ["'a\\nb' matches '^b'", false],
    ["'a\\nb' matches '(?m)^b'", true]
  ])("%s", (expr, expected) => {
    assert.deepStrictEqual(ev(expr), expected)
  })

  it("govaluate =~ takes Go syntax", () => {
    assert.deepStrictEqual(evaluateGovaluate(`'abc' =~ '^[[:alpha:]]+$'`), { ok: true, value: true })
    assert.deepStrictEqual(evaluateGovaluate(`'ABC' =~ '(?i)^abc$'`), { ok: true, value: true })
    assert.deepStrictEqual(evaluateGovaluate(`'ab' =~ 'x{1,2}|(?P<n>b)'`), { ok: true, value: true })
  })
})

describe("RE2: JavaScript-only syntax is an error, as in Go", () => {
  it.each([
    ["'x' matches '(?=x)'", "invalid or unsupported Perl syntax: `(?=`"],
    ["'x' matches '(?!y)x'", "invalid or unsupported Perl syntax: `(?!`"],
    ["'ax' matches '(?<=a)x'", "invalid named capture: `(?<=a)x`"],
    ["'aa' matches '(a)\\\\1'", "invalid escape sequence: `\\1`"],
    ["sprig.regexFind('(a)\\\\1', 'aa')", "regexp: Compile(`(a)\\1`): error parsing regexp: invalid escape sequence: `\\1`"],
    ["sprig.regexFindAll('(?=x)', 'x', -1)", "error parsing regexp"],
    ["sprig.regexReplaceAll('x(?!y)', 'x', 'z')", "error parsing regexp"],
    ["sprig.regexSplit('(?=,)', 'a,b', -1)", "error parsing regexp"],
    ["sprig.mustRegexMatch('(?=x)', 'x')", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"],
    ["sprig.regexFind('x{1001}', 'x')", "invalid repeat count: `{1001}`"]
  ])("%s", (expr, message) => {
    assert.include(evErr(expr), message)
  })

  it("sprig.regexMatch ignores a bad pattern (Go's regexp.MatchString error is dropped): false", () => {
    assert.strictEqual(ev("sprig.regexMatch('(?=x)', 'x')"), false)
    assert.strictEqual(ev("sprig.regexMatch('x{1001}', 'x')"), false)
  })

  it("govaluate: a pattern Go rejects is an error", () => {
    const r = evaluateGovaluate(`'x' =~ '(?=x)'`)
    assert.isFalse(r.ok)
    if (!r.ok) assert.include(r.error.message, "Unable to compile regexp pattern '(?=x)'")
  })
})

describe("RE2: Go's FindAll, ReplaceAll, Split and QuoteMeta", () => {
  it.each([
    // Sprig's documented examples.
    ["sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"],
    ["sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '$1W')", "---"],
    ["sprig.regexReplaceAllLiteral('a(x*)b', '-ab-axxb-', '${1}')", "-${1}-${1}-"],
    ["sprig.regexFindAll('[2,4,6,8]', '123456789', -1)", ["2", "4", "6", "8"]],
    ["sprig.regexFindAll('[2,4,6,8]', '123456789', 3)", ["2", "4", "6"]],
    ["sprig.regexFind('[a-zA-Z][1-9]', 'abcd1234')", "d1"],
    ["sprig.regexSplit('z+', 'pizza', -1)", ["pi", "a"]],
    ["sprig.regexSplit('z+', 'pizza', 1)", ["pizza"]],
    ["sprig.regexQuoteMeta('1.2.3')", "1\\.2\\.3"],
    // Go's rules for empty matches.
    ["sprig.regexFindAll('a*', 'baaac', -1)", ["", "aaa", ""]],
    ["sprig.regexReplaceAll('a*', 'baaac', 'X')", "XbXcX"],
    ["sprig.regexSplit('a*', 'abaabaccadaaae', 5)", ["", "b", "b", "c", "cadaaae"]],
    ["sprig.regexSplit('', 'abc', -1)", ["a", "b", "c"]],
    ["sprig.regexSplit('x', '', -1)", [""]],
    ["sprig.regexSplit('x', 'axb', 0)", []],
    // Expansion: $$, unknown groups expand to nothing, a malformed reference stays literal.
    ["sprig.regexReplaceAll('(b)', 'abc', '[$$1]')", "a[$1]c"],
    ["sprig.regexReplaceAll('(b)', 'abc', '[$2]')", "a[]c"],
    ["sprig.regexReplaceAll('(b)', 'abc', '[${1]')", "a[${1]c"],
    ["sprig.regexReplaceAll('(b)', 'abc', '[$]')", "a[$]c"],
    ["sprig.regexReplaceAll('(?P<x>b)', 'abc', '${x}${x}')", "abbc"],
    ["sprig.regexReplaceAllLiteral('b', 'abc', '$0')", "a$0c"],
    ["sprig.regexFindAll('.', 'a😀b', -1)", ["a", "😀", "b"]],
    ["sprig.regexReplaceAll('', '😀', '-')", "-😀-"]
  ])("%s", (expr, expected) => {
    assert.deepStrictEqual(ev(expr), expected)
  })
})
