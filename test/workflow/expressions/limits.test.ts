/**
 * Every evaluation stays within its `ExpressionLimits`: steps, and the size of any string, list or
 * map it builds, refused before it is built. Exceeding a bound is an ordinary expression error
 * whose message names the limit and the expression, in every API and every substitution mode.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  evaluate,
  evaluateBool,
  evaluateGovaluate,
  evaluateWhen,
  substitute,
  substituteObject
} from "../../../src/workflow/expressions/index.js"
import { defaultExpressionLimits, type ExpressionLimits } from "../../../src/workflow/expressions/limits.js"

const scope = (entries: Record<string, unknown> = {}) => new Map(Object.entries(entries))
const evErr = (text: string, limits?: ExpressionLimits, s: Record<string, unknown> = {}) => {
  const r = evaluate(text, scope(s), limits)
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value).slice(0, 200)}`)
  return r.error.message
}
const ev = (text: string, limits?: ExpressionLimits, s: Record<string, unknown> = {}) => {
  const r = evaluate(text, scope(s), limits)
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

const STEPS = "(limits.expression.maxSteps)"
const STRING = "(limits.expression.maxStringLength)"
const COLLECTION = "(limits.expression.maxCollectionLength)"

describe("default limits: what the security probe ran is refused, promptly and without allocating it", () => {
  it.each([
    ["len(sprig.until(100000000))", "expression builds a list or map of 100000000 elements, more than 1000000 " + COLLECTION],
    ["sprig.untilStep(0, 100000000, 1)", COLLECTION],
    ["len(sprig.repeat(500000000, 'x'))", "expression builds a string of 500000000 characters, more than 4194304 " + STRING],
    ["repeat('x', 100000000)", STRING],
    ["len(1..100000000)", COLLECTION],
    ["sprig.seq(100000000)", COLLECTION],
    ["len(map(1..1000, map(1..1000, map(1..1000, 1))))", "expression exceeds 1000000 evaluation steps " + STEPS],
    ["len(filter(1..1000, len(filter(1..1000, len(filter(1..1000, true)) > 0)) > 0))", STEPS],
    ["let s = sprig.repeat(1000000, 'x'); let d = s + s; let q = d + d; len(q + q)", STRING],
    ["len(join(map(1..5000, sprig.repeat(1000, 'x')), ','))", STRING],
    ["len(sprig.join(',', map(1..5000, sprig.repeat(1000, 'x'))))", STRING],
    ["len(toJson(map(1..2000, sprig.repeat(2500, '<'))))", STRING],
    ["len(sprig.toJson(map(1..2000, sprig.repeat(2500, 'x'))))", STRING],
    ["len(toJSON(map(1..2000, sprig.repeat(2500, 'x'))))", STRING],
    ["len(string(map(1..2000, sprig.repeat(2500, 'x'))))", STRING],
    ["len(replace(sprig.repeat(1000000, 'a'), 'a', 'aaaaa'))", STRING],
    ["len(sprig.replace('a', 'aaaaa', sprig.repeat(1000000, 'a')))", STRING],
    ["len(sprig.indent(100000, sprig.repeat(1000, '\\n')))", STRING],
    ["len(sprig.b64enc(sprig.repeat(4000000, 'x')))", STRING],
    ["len(split(sprig.repeat(2000000, 'x'), ''))", COLLECTION],
    ["len(sprig.splitList(',', sprig.repeat(2000000, ',')))", COLLECTION],
    ["len(uniq(1..100000))", STEPS],
    ["len(sprig.uniq(map(1..300000, # % 7)))", STEPS],
    ["len(sprig.regexReplaceAll('', sprig.repeat(100000, 'x'), sprig.repeat(100, 'y')))", STRING],
    ["reduce(1..2000, sprig.append(#acc, #), [])[0]", STEPS],
    ["len(sprig.regexFind(sprig.repeat(1000, 'x{1000}|'), 'x'))", STEPS],
    // jsonpath-plus parses a path in time quadratic in its length.
    ["jsonpath('{}', '$' + sprig.repeat(100000, '.a'))", STEPS]
  ])("%s", (expr, message) => {
    const msg = evErr(expr)
    assert.include(msg, message)
    assert.include(msg, `failed to evaluate expression ${JSON.stringify(expr)}`)
  })

  it.each([
    ["len(concat(1..600, 1..600))", COLLECTION],
    ["len(sprig.concat(1..600, 1..600))", COLLECTION],
    ["len(flatten(map(1..20, 1..60)))", COLLECTION],
    ["len(sprig.regexFindAll('', sprig.repeat(1500, 'x'), -1))", COLLECTION],
    ["len(fromJSON('[' + sprig.repeat(1001, '0,') + '0]'))", COLLECTION],
    ["len(sprig.fromJson('[' + sprig.repeat(1001, '0,') + '0]'))", COLLECTION]
  ])("%s (within the step budget, against a list bound of 1000)", (expr, message) => {
    const limits = { ...defaultExpressionLimits, maxCollectionLength: 1000 }
    assert.include(evErr(expr, limits), message)
  })

  it("bit shifts by huge counts do not build huge integers (Go shifts everything out)", () => {
    assert.strictEqual(ev("bitshl(1, 1000000000)"), 0)
    assert.strictEqual(ev("bitshr(-8, 1000000000)"), -1)
    assert.strictEqual(ev("bitshl(3, 2)"), 12)
    assert.include(evErr("bitshl(1, -1)"), "negative shift amount")
    assert.deepStrictEqual(evaluateGovaluate("(1 << 1000000000) == 0"), { ok: true, value: true })
  })

  it("sprig's integer math wraps around like Go's int64 instead of growing", () => {
    assert.strictEqual(ev("string(sprig.mul(9223372036854775807, 2))"), "-2")
    assert.strictEqual(ev("string(sprig.add(9223372036854775807, 1))"), "-9223372036854775808")
  })

  it("trim does not backtrack over inner runs of spaces", () => {
    assert.strictEqual(ev(`len(trim('a' + sprig.repeat(200000, ' ') + 'b'))`), 200002)
  })

  it("everyday expressions fit the defaults", () => {
    assert.strictEqual(ev("len(sprig.until(1000))"), 1000)
    assert.strictEqual(ev("len(sprig.repeat(4000000, 'x'))"), 4000000)
    assert.strictEqual(ev("sum(map(1..10000, # * 2))"), 100010000)
    assert.strictEqual(ev("sprig.seq(1, 2, 7)"), "1 3 5 7")
    assert.deepStrictEqual(ev("sprig.until(-3)"), [0, -1, -2])
    assert.strictEqual(ev("len(sprig.regexSplit('\\n', sprig.repeat(2000, 'a line of text\\n'), -1))"), 2001)
  })
})

describe("limits are passed through every API", () => {
  const tiny: ExpressionLimits = { maxSteps: 100, maxStringLength: 10, maxCollectionLength: 5 }

  it("evaluate(expr, scope, limits)", () => {
    assert.include(evErr("len(map(1..50, # + 1))", { ...tiny, maxCollectionLength: 50 }), "expression exceeds 100 evaluation steps " + STEPS)
    assert.include(evErr("1..6", tiny), "more than 5 " + COLLECTION)
    assert.include(evErr("'abcdef' + 'ghijk'", tiny), "more than 10 " + STRING)
    assert.include(evErr("sprig.repeat(11, 'x')", tiny), "more than 10 " + STRING)
    assert.strictEqual(ev("1 + 2", tiny), 3)
    // The same expression within the defaults.
    assert.strictEqual(ev("len(map(1..50, # + 1))"), 50)
  })

  it("jsonpath filters are charged per candidate and node", () => {
    const doc = JSON.stringify(Array.from({ length: 20 }, (_, i) => i))
    assert.include(evErr(`jsonpath(doc, '$[?(@ > 0 && @ < 100 && @ != 7)]')`, { ...tiny, maxCollectionLength: 100 }, { doc }), STEPS)
    assert.deepStrictEqual(ev(`jsonpath(doc, '$[?(@ > 17)]')`, undefined, { doc }), [18, 19])
  })

  it("evaluateBool", () => {
    const r = evaluateBool("len(1..6) > 0", scope(), tiny)
    assert.isFalse(r.ok)
    if (!r.ok) assert.include(r.error.message, COLLECTION)
  })

  it("substitute: an exceeded limit is an error even where a failing expression would be left as written", () => {
    for (const strict of [false, true]) {
      const r = substitute("x={{=sprig.repeat(11, 'x')}}", scope(), { strict, limits: tiny })
      assert.isFalse(r.ok)
      if (!r.ok) {
        assert.include(r.error.message, STRING)
        assert.strictEqual(r.error.expression, "sprig.repeat(11, 'x')")
      }
    }
    // An ordinary failure in non-strict mode still leaves the tag as written.
    assert.deepStrictEqual(substitute("{{=1+'a'}}", scope(), { limits: tiny }), { ok: true, value: "{{=1+'a'}}" })
    assert.deepStrictEqual(substitute("{{=sprig.repeat(3, 'x')}}", scope(), { limits: tiny }), { ok: true, value: "xxx" })
  })

  it("substitute: the substituted text is bounded too", () => {
    const big = "x".repeat(6)
    const r = substitute("{{a}}{{a}}", scope({ a: big }), { limits: tiny })
    assert.isFalse(r.ok)
    if (!r.ok) assert.include(r.error.message, "substitution builds a string of 12 characters, more than 10 " + STRING)
    assert.deepStrictEqual(substitute("{{a}}", scope({ a: big }), { limits: tiny }), { ok: true, value: big })
  })

  it("substituteObject", () => {
    const r = substituteObject({ args: ["{{=len(1..6)}}"] }, scope(), { limits: tiny })
    assert.isFalse(r.ok)
    if (!r.ok) assert.include(r.error.message, COLLECTION)
  })

  it("evaluateWhen: expression tags and the govaluate evaluation", () => {
    const tag = evaluateWhen("{{=len(1..6)}} > 1", scope(), { limits: tiny })
    assert.isFalse(tag.ok)
    if (!tag.ok) assert.include(tag.error.message, COLLECTION)
    const goval = evaluateWhen("'abcdef' + 'ghijk' == 'x'", scope(), { limits: tiny })
    assert.isFalse(goval.ok)
    if (!goval.ok) assert.include(goval.error.message, STRING)
    // Limits alone keep the default strictness: steps.* must resolve.
    const strict = evaluateWhen("{{steps.a.outputs.result}} == x", scope(), { limits: defaultExpressionLimits })
    assert.isFalse(strict.ok)
    assert.deepStrictEqual(evaluateWhen("a == a", scope(), { limits: tiny }), { ok: true, value: true })
  })

  it("evaluateGovaluate", () => {
    const steps = evaluateGovaluate(Array.from({ length: 60 }, () => "1 == 1").join(" && "), tiny)
    assert.isFalse(steps.ok)
    if (!steps.ok) assert.include(steps.error.message, STEPS)
  })

  it("the same evaluation spends the same steps whatever ran before it (regex compile cache)", () => {
    const limits = { ...defaultExpressionLimits, maxSteps: 2000 }
    const expr = "sprig.regexMatch('[a-z]{50}', s)"
    const first = evaluate(expr, scope({ s: "x" }), limits)
    const second = evaluate(expr, scope({ s: "x" }), limits)
    assert.deepStrictEqual(first, second)
  })
})
