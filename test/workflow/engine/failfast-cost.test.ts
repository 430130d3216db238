/**
 * What template-level `failFast` costs a reconcile, counted in the engine's own work units
 * (`limits.maxReconcileSteps`), never timed: each failFast steps node looks at its own children
 * only. A loop of 2,000 items whose template is itself a failFast steps template has ~6,000 nodes
 * and 2,000 failFast nodes; looking at every node for each of them would cost some 12 million
 * units, far over the linear budget these reconciles are held to.
 */
import { assert, describe, it } from "@effect/vitest"
import type { EngineOutput } from "../../../src/workflow/engine/contract.js"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { readStatusNodes } from "../../../src/workflow/model/compressedNodes.js"
import { config, Sim, workflow } from "./harness.js"

const n = 2000
/** A budget linear in the workflow's size: ~70 units a loop item. */
const linearBudget = 70 * n

const failFastLoop = () =>
  workflow({
    entrypoint: "main",
    templates: [
      { name: "main", failFast: true, steps: [[{ name: "fan", template: "item", withItems: Array.from({ length: n }, (_, i) => `i${i}`) }]] },
      { name: "item", failFast: true, steps: [[{ name: "run", template: "leaf" }]] },
      { name: "leaf", container: { image: "busybox", command: ["true"] } }
    ]
  })

/** A node of the status by name (the status is compressed at this size). */
const nodeOf = (out: EngineOutput, name: string): Record<string, any> | undefined => {
  const r = readStatusNodes(out.status)
  if (!r.ok) throw new Error(r.error)
  return (r.nodes as Record<string, Record<string, any>>)[nodeId("wf", name)]
}

describe("template-level failFast costs a reconcile linear work", () => {
  it("a 2,000-item loop of failFast templates reconciles within a budget linear in its size, first and steady, and after a failure", () => {
    const sim = new Sim(failFastLoop())
    sim.cfg = { ...config, limits: { maxReconcileSteps: linearBudget } }
    const first = sim.tick()
    assert.strictEqual(first.status.phase, "Running", String(first.status.message))
    const created = sim.apply(first, "Running")
    assert.strictEqual(created.length, n)
    // the steady state: every node there, every pod running
    const steady = sim.tick()
    assert.strictEqual(steady.status.phase, "Running", String(steady.status.message))
    // one item fails: its own failFast node fails, the loop's waits for the others (halt), all within the budget
    sim.finish(nodeId("wf", "wf[0].fan(0:i0)[0].run"), false)
    const failed = sim.tick()
    assert.strictEqual(failed.status.phase, "Running", String(failed.status.message))
    assert.strictEqual(nodeOf(failed, "wf[0].fan(0:i0)")!.phase, "Failed")
    assert.strictEqual(nodeOf(failed, "wf[0].fan(0:i0)")!.message, "template has failed or errored children and failFast enabled")
    for (let i = 1; i < n; i++) sim.finish(nodeId("wf", `wf[0].fan(${i}:i${i})[0].run`))
    const done = sim.tick()
    assert.strictEqual(done.status.phase, "Failed")
  })
})
