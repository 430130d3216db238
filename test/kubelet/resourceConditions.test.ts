/**
 * Resource templates' success/failure conditions (kubelet/resourceConditions.ts) as argoexec
 * evaluates them: label-selector syntax over gjson paths, printed as Requirement.String().
 */
import { assert, describe, it } from "@effect/vitest"
import { kubectlJsonPath } from "../../src/kubelet/resourceAction.js"
import { matches, parseConditions, requirementString } from "../../src/kubelet/resourceConditions.js"

const parse = (s: string) => {
  const r = parseConditions(s)
  if ("error" in r) throw new Error(r.error)
  return r
}
const all = (s: string, doc: unknown) => parse(s).every((r) => matches(r, doc))

describe("resource conditions", () => {
  const job = { status: { succeeded: 3, failed: 0, phase: "Running", conditions: [{ type: "Complete", status: "True" }] } }

  it("compare numbers, strings, sets and presence as upstream's examples write them", () => {
    assert.isTrue(all("status.succeeded > 2", job))
    assert.isFalse(all("status.failed > 1", job))
    assert.isTrue(all("status.phase in (Running, Pending)", job))
    assert.isFalse(all("status.phase == Succeeded", job))
    assert.isTrue(all("status.phase != Succeeded", job))
    assert.isTrue(all("status.conditions.0.type=Complete,status.succeeded", job))
    assert.isTrue(all("!status.missing", job))
    // A missing field matches only the negative operators.
    assert.isFalse(all("status.missing < 5", job))
    assert.isTrue(all("status.missing notin (a)", job))
  })

  it("print requirements as Requirement.String() and sort them by key", () => {
    assert.deepStrictEqual(parse("status.phase in (Failed, Error), metadata.name == x").map(requirementString), [
      "metadata.name==x",
      "status.phase in (Error,Failed)"
    ])
  })

  it("refuse what labels.Parse refuses", () => {
    assert.property(parseConditions("status.succeeded > two"), "error")
    assert.property(parseConditions("status.phase in Failed"), "error")
  })
})

describe("kubectl jsonpath output", () => {
  const cm = { metadata: { name: "cm-1", labels: { a: "b" } }, data: { n: "1" }, items: [1, 2] }
  it("prints strings raw, other values as JSON, a missing key as nothing", () => {
    assert.strictEqual(kubectlJsonPath(cm, "{.metadata.name}"), "cm-1")
    assert.strictEqual(kubectlJsonPath(cm, "{.metadata.labels}"), "{\"a\":\"b\"}")
    assert.strictEqual(kubectlJsonPath(cm, "name={.metadata.name}"), "name=cm-1")
    assert.strictEqual(kubectlJsonPath(cm, "{.metadata.missing}"), "")
  })
})
