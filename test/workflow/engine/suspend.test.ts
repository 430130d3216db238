/**
 * `suspend: {duration}` resumes by itself (issue 10: it never resumed), as
 * upstream's executeSuspend: after the duration since the node started, with
 * its output parameters' defaults; a bad duration errors instead of hanging.
 */
import { assert, describe, it } from "@effect/vitest"
import { Sim, T0, workflow } from "./harness.js"

const suspendThenEcho = (duration: unknown) =>
  workflow({
    entrypoint: "main",
    templates: [
      {
        name: "main",
        steps: [
          [{ name: "wait", template: "wait" }],
          [{ name: "after", template: "echo", arguments: { parameters: [{ name: "m", value: "{{steps.wait.outputs.parameters.answer}}" }] } }]
        ]
      },
      {
        name: "wait",
        suspend: { duration },
        outputs: { parameters: [{ name: "answer", valueFrom: { supplied: {}, default: "42" } }] }
      },
      { name: "echo", inputs: { parameters: [{ name: "m" }] }, container: { image: "busybox", command: ["echo", "{{inputs.parameters.m}}"] } }
    ]
  })

describe("suspend with a duration", () => {
  it("waits, asks to be woken at the deadline, then resumes with the outputs' defaults", () => {
    const sim = new Sim(suspendThenEcho("3s"))
    const first = sim.tick()
    assert.strictEqual(sim.node("wf[0].wait")?.phase, "Running")
    assert.strictEqual(first.requeueAfterMs, 3000)
    assert.lengthOf(sim.creates(first), 0)

    sim.now = T0 + 2000
    const early = sim.tick()
    assert.strictEqual(sim.node("wf[0].wait")?.phase, "Running")
    assert.strictEqual(early.requeueAfterMs, 1000)

    sim.now = T0 + 3000
    const resumed = sim.tick()
    assert.strictEqual(sim.node("wf[0].wait")?.phase, "Succeeded")
    assert.deepStrictEqual(sim.node("wf[0].wait")?.outputs?.parameters, [{ name: "answer", value: "42" }])
    const [create] = sim.creates(resumed)
    assert.deepStrictEqual((create!.pod.spec as any).containers.find((c: any) => c.name === "main").args ?? [], [])
    assert.include(JSON.stringify(create!.pod), "\"echo\",\"42\"")
  })

  it("a bare number is seconds", () => {
    const sim = new Sim(suspendThenEcho(5))
    assert.strictEqual(sim.tick().requeueAfterMs, 5000)
  })

  it("a duration that does not parse errors the node instead of waiting for ever", () => {
    const sim = new Sim(suspendThenEcho("soon"))
    const out = sim.tick()
    assert.strictEqual(sim.node("wf[0].wait")?.phase, "Error")
    assert.strictEqual(sim.node("wf[0].wait")?.message, "suspend.duration: invalid duration \"soon\"")
    assert.notStrictEqual(out.status["phase"], "Running", "the workflow ends")
  })

  it("without a duration it stays suspended (until resumed)", () => {
    const sim = new Sim(suspendThenEcho(undefined))
    const out = sim.tick()
    assert.strictEqual(sim.node("wf[0].wait")?.phase, "Running")
    assert.isUndefined(out.requeueAfterMs)
  })
})
