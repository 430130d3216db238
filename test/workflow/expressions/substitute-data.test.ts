/**
 * Substitution is one pass: inserted text is never scanned for tags again, and with
 * `markInserted` it stays text through a second substitution of the result too.
 */
import { assert, describe, it } from "@effect/vitest"
import { LITERAL_MARK, substitute } from "../../../src/workflow/expressions/index.js"

const scope = (entries: Record<string, unknown>) => new Map(Object.entries(entries))
const value = (r: ReturnType<typeof substitute>) => {
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

describe("inserted text is data", () => {
  const s = scope({ data: "{{workflow.name}} {{=sprig.repeat(3, 'x')}}", brace: "{", "workflow.name": "wf" })

  it("one pass: a value containing tags is inserted as written", () => {
    assert.strictEqual(value(substitute("[{{data}}]", s)), "[{{workflow.name}} {{=sprig.repeat(3, 'x')}}]")
    assert.strictEqual(value(substitute("[{{=data}}]", s)), "[{{workflow.name}} {{=sprig.repeat(3, 'x')}}]")
    assert.strictEqual(value(substitute("{{data}}", s, { strict: true })), "{{workflow.name}} {{=sprig.repeat(3, 'x')}}")
  })

  it("markInserted: a second substitution copies the inserted text literally, and unresolved tags still resolve", () => {
    const first = value(substitute("{{data}} | {{brace}}{workflow.name}} | {{steps.a.outputs.result}}", s, { markInserted: true }))
    assert.include(first, LITERAL_MARK)
    const second = value(substitute(first, scope({ "workflow.name": "wf", "steps.a.outputs.result": "A" }), { strict: true }))
    assert.strictEqual(second, "{{workflow.name}} {{=sprig.repeat(3, 'x')}} | {{workflow.name}} | A")
  })

  it("without markInserted no mark is written", () => {
    assert.notInclude(value(substitute("{{data}}{{brace}}", s)), LITERAL_MARK)
  })
})
