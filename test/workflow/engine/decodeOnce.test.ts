/**
 * The engine decodes a stored workflow once per object (src/workflow/engine/decodeOnce.ts): the
 * controller hands it the same copy round after round. That is only sound while neither the
 * object nor its decoded value is changed by a round: each round on the same copy decides the same.
 */
import { assert, describe, it } from "@effect/vitest"
import { decodeOnce } from "../../../src/workflow/engine/decodeOnce.js"
import { reconcile } from "../../../src/workflow/engine/reconcile.js"
import { config, Sim, T0, workflow } from "./harness.js"

const steps = () =>
  workflow({
    entrypoint: "main",
    templates: [
      { name: "main", steps: [[{ name: "a", template: "c" }], [{ name: "b", template: "c" }]] },
      { name: "c", container: { image: "busybox", command: ["true"] } }
    ]
  })

describe("decodeOnce", () => {
  it("decodes an object once; an equal object of its own is decoded anew, to the same value", () => {
    const wf = steps()
    const first = decodeOnce(wf)
    assert.strictEqual(decodeOnce(wf), first)
    const other = decodeOnce(structuredClone(wf))
    assert.notStrictEqual(other, first)
    assert.deepStrictEqual(other.ok && other.value.spec, first.ok && first.value.spec)
  })

  it("a completed workflow's decode is not kept (thousands stay in the informer): decoded anew each time", () => {
    for (const phase of ["Succeeded", "Failed", "Error"]) {
      const done = { ...steps(), status: { phase } }
      const first = decodeOnce(done)
      assert.isTrue(first.ok)
      assert.notStrictEqual(decodeOnce(done), first, phase)
    }
    const running = { ...steps(), status: { phase: "Running" } }
    assert.strictEqual(decodeOnce(running), decodeOnce(running))
  })

  it("rounds on the same stored copy decide the same and leave the copy as it was", () => {
    const sim = new Sim(steps())
    sim.tick()
    sim.apply(sim.last, "Running")
    sim.tick()
    // the copy as stored after two rounds, its first pod running
    const stored = sim.wf
    const before = JSON.stringify(stored)
    const input = { workflow: stored, pods: sim.pods, taskResults: sim.taskResults, now: T0 + 5_000, config }
    const once = reconcile(input)
    const twice = reconcile(input)
    assert.deepStrictEqual(twice, once)
    assert.strictEqual(JSON.stringify(stored), before)
    // and the same as a fresh copy's round
    assert.deepStrictEqual(reconcile({ ...input, workflow: structuredClone(stored) }), once)
  })
})
