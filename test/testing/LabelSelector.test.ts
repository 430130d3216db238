import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as LabelSelector from "../../src/testing/LabelSelector.js"

const parse = (input: string): LabelSelector.LabelSelector => {
  const result = LabelSelector.parse(input)
  if (Result.isFailure(result)) throw new Error(`unexpected parse failure for ${input}: ${result.failure.detail}`)
  return result.success
}

const matches = (selector: string, labels: Record<string, string> | undefined) =>
  LabelSelector.matches(parse(selector), labels)

const parseError = (input: string): string => {
  const result = LabelSelector.parse(input)
  if (Result.isSuccess(result)) throw new Error(`expected ${input} to be rejected`)
  return result.failure.detail
}

describe("LabelSelector.parse", () => {
  it("parses every operator", () => {
    assert.deepStrictEqual(parse("a=b,c==d,e!=f,g,!h,i in (x, y),j notin (z),k>1,l<2"), [
      { key: "a", operator: "Equals", values: ["b"] },
      { key: "c", operator: "Equals", values: ["d"] },
      { key: "e", operator: "NotEquals", values: ["f"] },
      { key: "g", operator: "Exists", values: [] },
      { key: "h", operator: "DoesNotExist", values: [] },
      { key: "i", operator: "In", values: ["x", "y"] },
      { key: "j", operator: "NotIn", values: ["z"] },
      { key: "k", operator: "GreaterThan", values: ["1"] },
      { key: "l", operator: "LessThan", values: ["2"] }
    ])
  })

  it("ignores whitespace and accepts prefixed keys and empty values", () => {
    assert.deepStrictEqual(parse("  workflows.argoproj.io/workflow = wf-1 ,  app  "), [
      { key: "workflows.argoproj.io/workflow", operator: "Equals", values: ["wf-1"] },
      { key: "app", operator: "Exists", values: [] }
    ])
    assert.deepStrictEqual(parse("a="), [{ key: "a", operator: "Equals", values: [""] }])
    assert.deepStrictEqual(parse(""), [])
    assert.deepStrictEqual(parse("   "), [])
  })

  it("rejects malformed selectors", () => {
    assert.include(parseError("a in ()"), "can't be empty")
    assert.include(parseError("a in x"), "expected \"(\"")
    assert.include(parseError("a b"), "expected an operator")
    assert.include(parseError("a=b,"), "trailing")
    assert.include(parseError("=b"), "expected a label key")
    assert.include(parseError("a>x"), "integer")
    assert.include(parseError("a=b c"), "expected \",\"")
    assert.include(parseError("Bad Key!"), "expected")
    assert.include(parseError("-a=b"), "invalid label key")
    assert.include(parseError(`a=${"x".repeat(64)}`), "63")
    assert.include(parseError("a=b/c"), "invalid label value")
  })

  it("round-trips through format", () => {
    const selector = "a=b,c!=d,e,!f,g in (x,y),h notin (z),i>3"
    assert.strictEqual(LabelSelector.format(parse(selector)), selector)
  })
})

describe("LabelSelector.matches", () => {
  const labels = { app: "web", tier: "front", n: "5" }

  it("equality and inequality", () => {
    assert.isTrue(matches("app=web", labels))
    assert.isTrue(matches("app==web", labels))
    assert.isFalse(matches("app=db", labels))
    assert.isTrue(matches("app!=db", labels))
    assert.isFalse(matches("app!=web", labels))
    // != matches objects without the label, as on a real server
    assert.isTrue(matches("missing!=x", labels))
    assert.isFalse(matches("missing=x", labels))
  })

  it("existence", () => {
    assert.isTrue(matches("app", labels))
    assert.isFalse(matches("missing", labels))
    assert.isTrue(matches("!missing", labels))
    assert.isFalse(matches("!app", labels))
    assert.isTrue(matches("!app", undefined))
  })

  it("set-based", () => {
    assert.isTrue(matches("app in (db, web)", labels))
    assert.isFalse(matches("app in (db)", labels))
    assert.isTrue(matches("app notin (db)", labels))
    assert.isFalse(matches("app notin (web,db)", labels))
    assert.isTrue(matches("missing notin (web)", labels))
    assert.isFalse(matches("missing in (web)", labels))
  })

  it("numeric comparisons", () => {
    assert.isTrue(matches("n>4", labels))
    assert.isFalse(matches("n>5", labels))
    assert.isTrue(matches("n<6", labels))
    assert.isFalse(matches("app>1", labels))
    assert.isFalse(matches("missing<1", labels))
  })

  it("comma is AND; empty matches everything", () => {
    assert.isTrue(matches("app=web,tier=front", labels))
    assert.isFalse(matches("app=web,tier=back", labels))
    assert.isTrue(matches("", undefined))
  })
})

describe("field selectors and validation", () => {
  it("parses and matches field selectors", () => {
    const result = LabelSelector.parseFieldSelector("metadata.name=a,spec.nodeName!=,status.phase==Running")
    assert.isTrue(Result.isSuccess(result))
    const selector = Result.getOrThrow(result)
    assert.deepStrictEqual(selector, [
      { field: "metadata.name", operator: "Equals", value: "a" },
      { field: "spec.nodeName", operator: "NotEquals", value: "" },
      { field: "status.phase", operator: "Equals", value: "Running" }
    ])
    const values: Record<string, string> = { "metadata.name": "a", "spec.nodeName": "node-1", "status.phase": "Running" }
    assert.isTrue(LabelSelector.matchesFields(selector, (f) => values[f] ?? ""))
    assert.isFalse(LabelSelector.matchesFields(selector, (f) => (f === "spec.nodeName" ? "" : values[f] ?? "")))
    assert.isTrue(Result.isFailure(LabelSelector.parseFieldSelector("metadata.name")))
  })

  it("validates names, keys and values like the API server", () => {
    assert.isUndefined(LabelSelector.validateSubdomain("my-pod.v1"))
    assert.isDefined(LabelSelector.validateSubdomain("My_Pod"))
    assert.isDefined(LabelSelector.validateDnsLabel("a.b"))
    assert.isUndefined(LabelSelector.validateLabelKey("example.com/some_key"))
    assert.isDefined(LabelSelector.validateLabelKey("/x"))
    assert.isDefined(LabelSelector.validateLabelKey("a/b/c"))
    assert.isUndefined(LabelSelector.validateLabelValue(""))
    assert.isDefined(LabelSelector.validateLabelValue("-bad"))
  })
})
