/**
 * Big but honest workflows run to completion under the default limits: long
 * DAG and steps chains (no recursion whose depth is the data's), thousands of
 * independent tasks, a 10,000-item loop. No timing assertions here: speed is
 * `npm run bench`'s business; these fail by overflowing the stack, running
 * out of time or memory, or ending in the wrong phase.
 */
import { assert, describe, it } from "@effect/vitest"
import type { EngineOutput } from "../../../src/workflow/engine/contract.js"
import { defaultEngineLimits } from "../../../src/workflow/engine/limits.js"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { readStatusNodes } from "../../../src/workflow/model/compressedNodes.js"
import { Sim, workflow } from "./harness.js"

const leaf = { name: "leaf", container: { image: "busybox", command: ["true"] } }

const nodesOf = (out: EngineOutput): Record<string, Record<string, any>> => {
  const r = readStatusNodes(out.status)
  if (!r.ok) throw new Error(r.error)
  return r.nodes as Record<string, Record<string, any>>
}

const dagChain = (n: number) =>
  workflow({
    entrypoint: "main",
    templates: [
      { name: "main", dag: { tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, template: "leaf", ...(i > 0 ? { dependencies: [`t${i - 1}`] } : {}) })) } },
      leaf
    ]
  })

/** Every pod of these nodes has already run: their observations are in before the engine asks for them. */
const preComplete = (sim: Sim, nodeNames: ReadonlyArray<string>): void => {
  for (const name of nodeNames) {
    const id = nodeId("wf", name)
    sim.pods.set(id, { nodeId: id, podName: id, cluster: "main", namespace: "argo", phase: "Running" })
    sim.finish(id)
  }
}

/** One round: every pod asked for is created and succeeds. */
const runRound = (sim: Sim): EngineOutput => {
  const out = sim.tick()
  for (const c of sim.apply(out, "Running")) sim.finish(c.nodeId)
  return out
}

describe("large workflows complete under the default limits", () => {
  it("a 5,000-task DAG chain: no stack overflow, one task at a time, all of it in one pass once its pods have run", () => {
    const n = 5000
    const sim = new Sim(dagChain(n))
    const first = sim.tick()
    assert.strictEqual(first.status.phase, "Running")
    assert.deepStrictEqual(sim.creates(first).map((c) => c.nodeId), [nodeId("wf", "wf.t0")])
    // Every pod has run by the next look (the worst case for one reconcile: the whole chain advances at once).
    preComplete(sim, Array.from({ length: n }, (_, i) => `wf.t${i}`))
    const done = sim.tick()
    assert.strictEqual(done.status.phase, "Succeeded")
    const nodes = nodesOf(done)
    assert.strictEqual(Object.keys(nodes).length, n + 1)
    assert.strictEqual(done.status.progress, `${n}/${n}`)
    assert.strictEqual(nodes[nodeId("wf", "wf.t0")].progress, "1/1")
    // Each task is the child of the one before; the DAG's outbound node is the last.
    assert.deepStrictEqual(nodes[nodeId("wf", "wf.t41")].children, [nodeId("wf", "wf.t42")])
    assert.deepStrictEqual(nodes.wf.outboundNodes, [nodeId("wf", `wf.t${n - 1}`)])
    // 5,000 nodes are over 1 MiB of JSON: they are stored compressed, within the limit.
    assert.isString((done.status as any).compressedNodes)
    assert.isAtMost(Buffer.byteLength(JSON.stringify(done.status)), defaultEngineLimits.maxStatusBytes)
  })

  it("a 300-task DAG chain run one pod per reconcile", () => {
    const sim = new Sim(dagChain(300))
    const out = sim.runAll(undefined, 400)
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(Object.keys(nodesOf(out)).length, 301)
    assert.strictEqual(out.status.progress, "300/300")
  })

  it("5,000 independent DAG tasks: all started in one reconcile, finished in the next", () => {
    const n = 5000
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", dag: { tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, template: "leaf" })) } }, leaf]
    }))
    const first = runRound(sim)
    assert.strictEqual(sim.creates(first).length, n)
    const done = sim.tick()
    assert.strictEqual(done.status.phase, "Succeeded")
    assert.strictEqual(Object.keys(nodesOf(done)).length, n + 1)
    assert.strictEqual(done.status.progress, `${n}/${n}`)
    assert.strictEqual(nodesOf(done).wf.children.length, n)
    // About 2.4 MB of node JSON: stored compressed, within the status limit.
    assert.isString((done.status as any).compressedNodes)
    assert.isAtMost(Buffer.byteLength(JSON.stringify(done.status)), defaultEngineLimits.maxStatusBytes)
  })

  it("a 10,000-item withItems loop, its results aggregated for the next step", () => {
    const n = 10_000
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "fan", template: "leaf", withItems: Array.from({ length: n }, (_, i) => `item-${i}`) }],
            [{ name: "count", template: "sum", arguments: { parameters: [{ name: "results", value: "{{steps.fan.outputs.result}}" }] } }]
          ]
        },
        leaf,
        { name: "sum", inputs: { parameters: [{ name: "results" }] }, container: { image: "busybox", command: ["true"] } }
      ]
    }))
    const first = sim.tick()
    const fan = sim.apply(first, "Running")
    assert.strictEqual(fan.length, n)
    fan.forEach((c, i) => sim.finish(c.nodeId, true, { result: String(i) }))
    const second = sim.tick()
    const count = sim.apply(second, "Running")
    assert.strictEqual(count.length, 1)
    const counted = Object.values(nodesOf(second)).find((node) => node.name === "wf[1].count")!
    assert.deepStrictEqual(JSON.parse(counted.inputs.parameters[0].value), Array.from({ length: n }, (_, i) => i))
    sim.finish(count[0].nodeId)
    const done = sim.tick()
    assert.strictEqual(done.status.phase, "Succeeded")
    // wf, its two step groups, the 10,000 items and the step after them.
    assert.strictEqual(Object.keys(nodesOf(done)).length, n + 4)
    assert.strictEqual(done.status.progress, `${n + 1}/${n + 1}`)
  })

  it("a steps chain of 5,000 groups in one pass: every group's progress sums everything after it", () => {
    const n = 5000
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: Array.from({ length: n }, (_, i) => [{ name: `s${i}`, template: "leaf" }]) }, leaf]
    }))
    preComplete(sim, Array.from({ length: n }, (_, i) => `wf[${i}].s${i}`))
    const done = sim.tick()
    assert.strictEqual(done.status.phase, "Succeeded")
    const nodes = nodesOf(done)
    assert.strictEqual(Object.keys(nodes).length, 2 * n + 1)
    assert.strictEqual(nodes.wf.progress, `${n}/${n}`)
    assert.strictEqual(nodes[nodeId("wf", "wf[0]")].progress, `${n}/${n}`)
    assert.strictEqual(nodes[nodeId("wf", `wf[${n - 10}]`)].progress, "10/10")
  })
})
