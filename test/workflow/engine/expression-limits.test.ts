/**
 * The configmap's `limits.expression` reaches every expression the engine evaluates (through
 * scope.ts): template substitution, `when`, output `valueFrom.expression`, `retryStrategy.expression`,
 * `labelsFrom` and `dag.target`. An expression beyond them fails its node with a message naming the limit.
 */
import { assert, describe, it } from "@effect/vitest"
import { config, Sim, workflow } from "./harness.js"

const HEAVY = "len(map(1..1000, # + 1))"
const STEPS = "expression exceeds 300 evaluation steps (limits.expression.maxSteps)"

const limited = (spec: Record<string, unknown>): Sim => {
  const sim = new Sim(workflow(spec))
  sim.cfg = { ...config, limits: { expression: { maxSteps: 300 } } }
  return sim
}

const errorOf = (sim: Sim, node: string) => {
  const n = sim.node(node)
  assert.isDefined(n, `node ${node}`)
  return n!
}

describe("limits.expression reaches the engine's expressions", () => {
  it("a template's {{=...}} fails the node; the same workflow runs within the default limits", () => {
    const spec = {
      entrypoint: "main",
      templates: [{ name: "main", container: { image: "busybox", command: ["echo"], args: [`{{=${HEAVY}}}`] } }]
    }
    const sim = limited(spec)
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(errorOf(sim, "wf").phase, "Error")
    assert.include(errorOf(sim, "wf").message, STEPS)

    const roomy = new Sim(workflow(spec))
    assert.strictEqual(roomy.runAll().status.phase, "Succeeded")
  })

  it("a `when` condition", () => {
    const sim = limited({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "a", template: "c", when: `{{=${HEAVY} > 0}}` }]] },
        { name: "c", container: { image: "busybox", command: ["true"] } }
      ]
    })
    sim.runAll()
    // The steps template's expressions are evaluated when it is called (Argo's ProcessArgs).
    assert.include(errorOf(sim, "wf").message, STEPS)
  })

  it("a loop's withParam and withSequence whose expressions run when the loop expands", () => {
    for (const loop of [
      { withParam: `{{=len(steps.a.id) > 0 ? toJson(map(1..1000, # + 1)) : '[]'}}` },
      { withSequence: { count: `{{=len(steps.a.id) > 0 ? ${HEAVY} : 0}}` } }
    ]) {
      const sim = limited({
        entrypoint: "main",
        templates: [
          { name: "main", steps: [[{ name: "a", template: "c" }], [{ name: "b", template: "c", ...loop }]] },
          { name: "c", container: { image: "busybox", command: ["true"] } }
        ]
      })
      sim.runAll()
      assert.notStrictEqual((sim.wf.status as Record<string, unknown> | undefined)?.["phase"], "Succeeded", JSON.stringify(loop))
      assert.include(JSON.stringify(sim.nodes()), STEPS, JSON.stringify(loop))
    }
  })

  it("a `when` whose expression can only run once the step's references resolve", () => {
    const sim = limited({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "a", template: "c" }], [{ name: "b", template: "c", when: `{{=len(steps.a.id) < ${HEAVY}}}` }]] },
        { name: "c", container: { image: "busybox", command: ["true"] } }
      ]
    })
    sim.runAll()
    assert.include(errorOf(sim, "wf[1].b").message, STEPS)
  })

  it("a step's arguments", () => {
    const sim = limited({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "a", template: "c", arguments: { parameters: [{ name: "x", value: "1" }] } }],
            [{ name: "b", template: "c", arguments: { parameters: [{ name: "x", value: `{{=len(steps.a.id) + ${HEAVY}}}` }] } }]
          ]
        },
        { name: "c", inputs: { parameters: [{ name: "x" }] }, container: { image: "busybox", command: ["echo", "{{inputs.parameters.x}}"] } }
      ]
    })
    sim.runAll()
    assert.include(errorOf(sim, "wf[1].b").message, STEPS)
  })

  it("an output's valueFrom.expression", () => {
    const sim = limited({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [[{ name: "a", template: "c" }]],
          outputs: { parameters: [{ name: "o", valueFrom: { expression: HEAVY } }] }
        },
        { name: "c", container: { image: "busybox", command: ["true"] } }
      ]
    })
    sim.runAll()
    assert.include(errorOf(sim, "wf").message, STEPS)
  })

  it("retryStrategy.expression", () => {
    const sim = limited({
      entrypoint: "main",
      templates: [{ name: "main", retryStrategy: { limit: 2, expression: `${HEAVY} > 0` }, container: { image: "busybox", command: ["false"] } }]
    })
    sim.runAll(() => ({ ok: false }))
    assert.include(errorOf(sim, "wf").message, STEPS)
  })

  it("workflowMetadata.labelsFrom", () => {
    const sim = limited({
      entrypoint: "main",
      workflowMetadata: { labelsFrom: { size: { expression: `string(${HEAVY})` } } },
      templates: [{ name: "main", container: { image: "busybox", command: ["true"] } }]
    })
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Error")
    assert.include(String(out.status.message), STEPS)
  })
})
