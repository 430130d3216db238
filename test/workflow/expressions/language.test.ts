/** expr-lang semantics, substitution modes and govaluate rules beyond the examples. */
import { describe, expect, it } from "vitest"
import { allowUnresolvedExcept, evaluate, evaluateWhen, substitute } from "../../../src/workflow/expressions/index.js"

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

describe("expr-lang: literals and operators", () => {
  it.each([
    ["1 + 2 * 3", 7],
    ["(1 + 2) * 3", 9],
    ["2 ** 3 ** 2", 512],
    ["-2 ** 2", -4],
    ["10 / 4", 2.5],
    ["7 % 3", 1],
    ["1 < 2 < 3", true],
    ["3 > 2 > 2", false],
    ["not true or true", true],
    ["not (true or true)", false],
    ["true || false && false", true],
    ["1 == 1.0", true],
    ["'1' == 1", false],
    ["nil == nil", true],
    ["'a' + 'b'", "ab"],
    ["\"double\" + 'single'", "doublesingle"],
    ["`raw\\n`", "raw\\n"],
    ["'a\\tb'", "a\tb"],
    ["0x10 + 1_000", 1016],
    ["1e3", 1000],
    ["[1, 2, 3][1]", 2],
    ["[1, 2, 3][-1]", 3],
    ["[1, 2, 3, 4][1:3]", [2, 3]],
    ["{a: 1, 'b-c': 2}['b-c']", 2],
    ["{a: {b: 'x'}}.a.b", "x"],
    ["2 in [1, 2]", true],
    ["'a' in {a: 1}", true],
    ["3 not in [1, 2]", true],
    ["'foobar' contains 'oba'", true],
    ["'foobar' startsWith 'foo' and 'foobar' endsWith 'bar'", true],
    ["'abc123' matches '^[a-z]+[0-9]+$'", true],
    ["'ABC' matches '(?i)abc'", true],
    ["'x' not matches 'y'", true],
    ["1..3", [1, 2, 3]],
    ["true ? 'yes' : 'no'", "yes"],
    ["false ? 'yes' : 1 + 1", 2],
    ["nil ?? 'd'", "d"],
    ["'v' ?? 'd'", "v"],
    ["{a: nil}.a?.b", null],
    ["let x = 2; x * 3", 6],
    ["if 1 > 2 { 'a' } else { 'b' }", "b"],
    ["'abc' | upper()", "ABC"],
    ["['b', 'a'] | sort() | join(',')", "a,b"]
  ])("%s", (expr, expected) => {
    expect(ev(expr)).toEqual(expected)
  })
})

describe("expr-lang: builtins", () => {
  it.each([
    ["len('héllo')", 5],
    ["len([1, 2])", 2],
    ["len({a: 1})", 1],
    ["all([1, 2], {# > 0})", true],
    ["any([1, 2], {# > 1})", true],
    ["none([1, 2], {# > 5})", true],
    ["one([1, 2], {# > 1})", true],
    ["filter([1, 2, 3], # % 2 == 1)", [1, 3]],
    ["map([1, 2], {# * 2})", [2, 4]],
    ["map([{n: 1}, {n: 2}], .n)", [1, 2]],
    ["map(['a', 'b'], #index)", [0, 1]],
    ["count([1, 2, 3], {# > 1})", 2],
    ["sum([1, 2, 3])", 6],
    ["first([4, 5])", 4],
    ["last([4, 5])", 5],
    ["keys({b: 1, a: 2})", ["b", "a"]],
    ["values({a: 2})", [2]],
    ["string(1.5)", "1.5"],
    ["string([1, 'a'])", "[1 a]"],
    ["int('42')", 42],
    ["int(3.9)", 3],
    ["float('2.5')", 2.5],
    ["asInt('7') + 1", 8],
    ["asFloat('1.5') * 2", 3],
    ["toJSON({b: 1, a: [true, nil]})", '{\n  "a": [\n    true,\n    null\n  ],\n  "b": 1\n}'],
    ["fromJSON('{\"a\": [1, 2]}').a[1]", 2],
    ["toJson({b: '<x>', a: 1})", '{"a":1,"b":"\\u003cx\\u003e"}'],
    ["trim('  x  ')", "x"],
    ["upper('a') + lower('B')", "Ab"],
    ["split('a,b,c', ',')", ["a", "b", "c"]],
    ["join(['a', 'b'], '-')", "a-b"],
    ["replace('aaa', 'a', 'b')", "bbb"],
    ["trimPrefix('foobar', 'foo')", "bar"],
    ["indexOf('hello', 'l')", 2],
    ["max(1, 5, 3)", 5],
    ["min([4, 2])", 2],
    ["abs(-3)", 3],
    ["reduce([1, 2, 3], #acc + #, 10)", 16],
    ["sortBy([{n: 2}, {n: 1}], .n)", [{ n: 1 }, { n: 2 }]],
    ["sort([3, 1, 2])", [1, 2, 3]],
    ["uniq([1, 1, 2])", [1, 2]],
    ["toBase64('hi')", "aGk="],
    ["fromBase64('aGk=')", "hi"],
    ["sprig.trim('  x ')", "x"],
    ["sprig.upper('a')", "A"],
    ["sprig.default('d', '')", "d"],
    ["sprig.default('d', 'v')", "v"],
    ["sprig.empty('')", true],
    ["sprig.int('12')", 12],
    ["sprig.add(1, '2', 3.9)", 6],
    ["sprig.b64enc('hi')", "aGk="],
    ["sprig.replace('a', 'b', 'aXa')", "bXb"],
    ["sprig.date('2006-01-02T15:04:05Z07:00', '2024-05-06T07:08:09Z')", "2024-05-06T07:08:09Z"],
    ["sprig.date('Jan 2, 2006 at 3:04pm (MST)', '2024-05-06T17:08:09Z')", "May 6, 2024 at 5:08pm (UTC)"],
    ["sprig.toJson({a: 1})", '{"a":1}'],
    ["jsonpath('{\"a\": {\"b\": [1, 2]}}', '$.a.b[1]')", 2],
    ["jsonpath('{\"a\": 1000000}', '$.a')", 1000000]
  ])("%s", (expr, expected) => {
    expect(ev(expr)).toEqual(expected)
  })
})

describe("scope: flat names become nested objects", () => {
  it("needs brackets for dashed names", () => {
    expect(ev("inputs.parameters['my-param']", { "inputs.parameters.my-param": "v" })).toBe("v")
    expect(evErr("inputs.parameters.my-param", { "inputs.parameters.my-param": "v" })).toContain("unknown name param")
  })
  it("prefers children over a conflicting parent key", () => {
    expect(ev("item.os", { item: '{"os":"linux"}', "item.os": "linux" })).toBe("linux")
  })
  it("a missing key of a map is nil; fetching from nil is an error", () => {
    expect(ev("inputs.parameters.missing", { "inputs.parameters.x": "1" })).toBe(null)
    expect(evErr("inputs.parameters.missing.deeper", { "inputs.parameters.x": "1" })).toContain("cannot fetch deeper from <nil>")
  })
  it("parameters are strings: arithmetic needs asInt", () => {
    expect(evErr("inputs.parameters.n + 1", { "inputs.parameters.n": "1" })).toContain("invalid operation: string + int")
    expect(ev("asInt(inputs.parameters.n) + 1", { "inputs.parameters.n": "1" })).toBe(2)
  })
})

describe("errors", () => {
  it("names the expression and the position of a syntax error", () => {
    const m = evErr("1 + * 2")
    expect(m).toContain('"1 + * 2"')
    expect(m).toContain("unexpected token Operator(\"*\")")
    expect(m).toContain("position 5 (1:5)")
  })
  it("unknown variable", () => {
    expect(evErr("foo + 1")).toMatch(/unknown name foo at position 1/)
  })
  it("wrong type", () => {
    expect(evErr("'a' < 1")).toContain("invalid operation: string < int")
    expect(evErr("1 and true")).toContain("invalid operation: and")
    expect(evErr("1.5 % 2")).toContain("invalid operation: float64 % int")
    expect(evErr("asInt('x')")).toContain("invalid operation: int(x)")
  })
  it("?? cannot be mixed with other operators without parentheses", () => {
    expect(evErr("nil ?? 1 + 2")).toContain("cannot be mixed")
    expect(ev("(nil ?? 1) + 2")).toBe(3)
  })
  it("unterminated strings and end of input", () => {
    expect(evErr("'abc")).toContain("literal not terminated")
    expect(evErr("(1 + 2")).toContain("unexpected end of expression")
  })
})

describe("substitute", () => {
  it("allows whitespace inside simple tags", () => {
    expect(substitute("{{ inputs.parameters.m }}", scope({ "inputs.parameters.m": "x" }))).toEqual({ ok: true, value: "x" })
  })
  it("JSON-encodes non-string scope values", () => {
    expect(substitute("{{a}}/{{b}}", scope({ a: 1, b: { c: true } }))).toEqual({ ok: true, value: '1/{"c":true}' })
  })
  it("leaves unresolved tags unless strict", () => {
    expect(substitute("x {{steps.a.outputs.result}}", scope())).toEqual({ ok: true, value: "x {{steps.a.outputs.result}}" })
    const r = substitute("x {{steps.a.outputs.result}}", scope(), { strict: true })
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.message).toBe("failed to resolve {{steps.a.outputs.result}}")
      expect(r.error.missingVariable).toBe("steps.a.outputs.result")
    }
  })
  it("strict with prefixes only fails for those prefixes", () => {
    const options = { strict: true, allowUnresolved: allowUnresolvedExcept(["steps", "tasks"]) }
    expect(substitute("{{workflow.outputs.x}}", scope(), options)).toEqual({ ok: true, value: "{{workflow.outputs.x}}" })
    expect(substitute("{{tasks.A.outputs.parameters.x}}", scope(), options).ok).toBe(false)
    expect(substitute("{{tasksA}}", scope(), options).ok).toBe(true)
    expect(substitute("{{steps.a.outputs.artifacts.art}}", scope(), options)).toEqual({ ok: true, value: "{{steps.a.outputs.artifacts.art}}" })
  })
  it("expressions with missing variables are left as-is when allowed, errors when strict", () => {
    expect(substitute("{{=inputs.parameters.x}}", scope())).toEqual({ ok: true, value: "{{=inputs.parameters.x}}" })
    const r = substitute("{{=tasks.A.outputs.result}}", scope(), { strict: true })
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.message).toContain("tasks.A.outputs.result is missing")
  })
  it("strict expressions whose variables exist must evaluate", () => {
    const r = substitute("{{=asInt(inputs.parameters.x)}}", scope({ "inputs.parameters.x": "nope" }), { strict: true })
    expect(r.ok).toBe(false)
    expect(substitute("{{=asInt(inputs.parameters.x)}}", scope({ "inputs.parameters.x": "nope" }))).toEqual({ ok: true, value: "{{=asInt(inputs.parameters.x)}}" })
  })
  it("syntax errors in expression tags are always errors", () => {
    const r = substitute("{{=1 +}}", scope())
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.message).toContain("unexpected end of expression")
  })
  it("formats expression results like Argo (strings raw, others as Go JSON)", () => {
    const s = scope()
    expect(substitute("{{=1.0}}|{{=10 / 4}}|{{=true}}|{{=[1, 'a']}}|{{=fromJSON('{\"b\":1,\"a\":\"<\"}')}}", s)).toEqual({
      ok: true,
      value: '1|2.5|true|[1,"a"]|{"a":"\\u003c","b":1}'
    })
  })
  it("an expression tag ends at the first }}", () => {
    // `{{={b: {c: 1}}}` closes at the first `}}`, leaving a broken expression, as upstream.
    expect(substitute("{{={b: {c: 1}}}", scope()).ok).toBe(false)
  })
  it("unterminated tags are an error", () => {
    expect(substitute("echo {{inputs.parameters.x", scope()).ok).toBe(false)
  })
  it("retries and workflow.status wait when absent", () => {
    expect(substitute("{{=sprig.int(retries) + 1}}", scope())).toEqual({ ok: true, value: "{{=sprig.int(retries) + 1}}" })
    expect(substitute("{{=sprig.int(retries) + 1}}", scope({ retries: "2" }))).toEqual({ ok: true, value: "3" })
    expect(substitute("{{=workflow.status == 'Succeeded'}}", scope({ "workflow.name": "w" }))).toEqual({ ok: true, value: "{{=workflow.status == 'Succeeded'}}" })
    expect(substitute("{{=workflow.status == 'Succeeded'}}", scope({ "workflow.status": "Succeeded" }))).toEqual({ ok: true, value: "true" })
  })
  it("passes multi-line text through", () => {
    expect(substitute("a\n{{x}}\nb", scope({ x: "1\n2" }))).toEqual({ ok: true, value: "a\n1\n2\nb" })
  })
})

describe("when (govaluate)", () => {
  const w = (text: string, s: Record<string, unknown> = {}) => {
    const r = evaluateWhen(text, scope(s))
    if (!r.ok) throw new Error(r.error.message)
    return r.value
  }
  const wErr = (text: string, s: Record<string, unknown> = {}) => {
    const r = evaluateWhen(text, scope(s))
    if (r.ok) throw new Error(`expected an error, got ${r.value}`)
    return r.error.message
  }
  it.each([
    ["heads == heads", true],
    ["tails == heads", false],
    ["heads != tails", true],
    ["3 < 5", true],
    ["10 > 9", true],
    ["'10' > '9'", false],
    ["2 == 2.0", true],
    ["'2' == 2", false],
    ["true", true],
    ["!false", true],
    ["!(1 > 2) && (2 > 1)", true],
    ["true || false && false", true],
    ['"abc" =~ "^a.c$"', true],
    ["abc !~ b", false],
    ["1 + 2 * 3 == 7", true],
    ["'a' + 1 == 'a1'", true],
    ["Succeeded in (Failed, Succeeded)", true],
    ["'2024-01-02' > '2024-01-01'", true],
    ["[my-name] == 'my-name'", true]
  ])("%s -> %s", (text, expected) => {
    expect(w(text)).toBe(expected)
  })
  it("substitutes numeric step results", () => {
    expect(w("{{steps.x.outputs.result}} < 5", { "steps.x.outputs.result": "3" })).toBe(true)
    expect(w("{{steps.x.outputs.result}} < 5", { "steps.x.outputs.result": "7.5" })).toBe(false)
  })
  it("errors", () => {
    expect(wErr("hello world == x")).toContain("Cannot transition token types")
    expect(wErr("a < 1")).toContain("cannot be used with the comparator '<'")
    expect(wErr("1 && true")).toContain("it is not a bool")
    expect(wErr("1")).toContain("Expected boolean evaluation")
    expect(wErr("a === b")).toContain("Invalid token: '==='")
    expect(wErr("(a == b")).toContain("Unbalanced parenthesis")
    expect(wErr("a.b == c")).toContain("No parameter 'a' found")
  })
  it("an empty condition is true", () => {
    expect(w("")).toBe(true)
  })
})
