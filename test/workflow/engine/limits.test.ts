/**
 * The engine's limits (`EngineLimits`): each is enforced with an error that
 * names the limit and the field, a workflow beyond one ends in Error instead
 * of growing without bound, and `reconcile` never throws.
 */
import { assert, describe, it } from "@effect/vitest"
import { gunzipSync, gzipSync } from "node:zlib"
import { fnv32a, nodeId } from "../../../src/workflow/engine/ids.js"
import type { EngineLimitsInput } from "../../../src/workflow/engine/limits.js"
import { defaultEngineLimits } from "../../../src/workflow/engine/limits.js"
import { reconcile } from "../../../src/workflow/engine/reconcile.js"
import { readStatusNodes } from "../../../src/workflow/model/compressedNodes.js"
import { config, Sim, T0, workflow } from "./harness.js"

const container = { image: "busybox", command: ["true"] }
const leaf = { name: "leaf", container }

const withLimits = (wf: ReturnType<typeof workflow>, limits: EngineLimitsInput): Sim => {
  const sim = new Sim(wf)
  sim.cfg = { ...config, limits }
  return sim
}

const nodesOf = (status: Readonly<Record<string, unknown>>): Record<string, Record<string, any>> => {
  const r = readStatusNodes(status)
  if (!r.ok) throw new Error(r.error)
  return r.nodes as Record<string, Record<string, any>>
}

const byName = (status: Readonly<Record<string, unknown>>, name: string): Record<string, any> | undefined =>
  Object.values(nodesOf(status)).find((n) => n.name === name)

describe("limits.maxLoopItems", () => {
  const loop = (call: Record<string, unknown>, kind: "steps" | "dag" = "steps") =>
    workflow({
      entrypoint: "main",
      templates: [
        kind === "steps"
          ? { name: "main", steps: [[{ name: "s", template: "leaf", ...call }]] }
          : { name: "main", dag: { tasks: [{ name: "s", template: "leaf", ...call }] } },
        leaf
      ]
    })

  it("refuses withSequence.count 1e7 before expanding it: the step group errors naming the limit", () => {
    const sim = new Sim(loop({ withSequence: { count: "10000000" } }))
    const out = sim.tick()
    assert.strictEqual(out.actions.length, 0)
    assert.strictEqual(sim.node("wf[0]")!.phase, "Error")
    assert.strictEqual(sim.node("wf[0]")!.message, `withSequence.count 10000000 exceeds limits.maxLoopItems (${defaultEngineLimits.maxLoopItems})`)
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(Object.keys(sim.nodes()).length, 2)
  })

  it("counts withSequence start..end and withItems / withParam lengths against the configured limit", () => {
    const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
      [{ withSequence: { start: "5", end: "15" } }, "withSequence.end 15 (from start 5) gives 11 items, which exceeds limits.maxLoopItems (10)"],
      [{ withSequence: { start: "20", end: "0" } }, "withSequence.end 0 (from start 20) gives 21 items, which exceeds limits.maxLoopItems (10)"],
      [{ withSequence: { count: "11" } }, "withSequence.count 11 exceeds limits.maxLoopItems (10)"],
      [{ withItems: Array.from({ length: 11 }, (_, i) => i) }, "withItems has 11 items, which exceeds limits.maxLoopItems (10)"],
      [{ withParam: JSON.stringify(Array.from({ length: 12 }, (_, i) => `x${i}`)) }, "withParam has 12 items, which exceeds limits.maxLoopItems (10)"]
    ]
    for (const [call, message] of cases) {
      const sim = withLimits(loop(call), { maxLoopItems: 10 })
      const out = sim.tick()
      assert.strictEqual(sim.node("wf[0]")!.message, message)
      assert.strictEqual(out.actions.length, 0)
    }
    // At the limit the loop runs.
    const ok = withLimits(loop({ withSequence: { count: "10" } }), { maxLoopItems: 10 })
    assert.strictEqual(ok.runAll().status.phase, "Succeeded")
    assert.strictEqual(Object.keys(ok.nodes()).length, 12)
  })

  it("a DAG task's loop errors the task the same way", () => {
    const sim = withLimits(loop({ withSequence: { count: "50" } }, "dag"), { maxLoopItems: 10 })
    const out = sim.runAll()
    assert.strictEqual(sim.node("wf.s")!.phase, "Error")
    assert.strictEqual(sim.node("wf.s")!.message, "withSequence.count 50 exceeds limits.maxLoopItems (10)")
    assert.strictEqual(out.status.phase, "Error")
  })
})

describe("limits.maxDepth", () => {
  const selfCalling = (calls: number) =>
    workflow({
      entrypoint: "loop",
      templates: [{ name: "loop", steps: [Array.from({ length: calls }, (_, i) => ({ name: `again${i}`, template: "loop" }))] }]
    })

  it("a template calling itself ends the workflow in Error with upstream's message, naming the limit", () => {
    const sim = new Sim(selfCalling(1))
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Error")
    const message = String(out.status.message)
    assert.match(message, /^Maximum recursion depth exceeded: template "loop" at depth 100 reaches limits\.maxDepth \(100\)\. See https:\/\/argo-workflows\.readthedocs\.io\/en\/latest\/scaling\/#maximum-recursion-depth$/)
    const deepest = Object.values(sim.nodes()).filter((n) => n.message === message)
    assert.strictEqual(deepest.length, 1)
    assert.strictEqual(deepest[0].phase, "Error")
    // Every level is one Steps node and one step group below the entrypoint.
    assert.strictEqual(Object.keys(sim.nodes()).length, 1 + 2 * 99)
    assert.strictEqual(out.actions.length, 0)
    // The next reconcile keeps it so.
    const again = sim.tick()
    assert.strictEqual(again.status.phase, "Error")
    assert.strictEqual(again.status.message, message)
  })

  it("calling itself twice per step (2^depth nodes unbounded) ends at the first level past the bound", () => {
    const sim = new Sim(selfCalling(2))
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Error")
    assert.match(String(out.status.message), /^Maximum recursion depth exceeded/)
    assert.isBelow(Object.keys(sim.nodes()).length, 300)
  })

  it("counts like upstream's TestMaxDepth: the entrypoint is depth 1, the bound errors when reached", () => {
    const dag = workflow({
      entrypoint: "diamond",
      templates: [
        {
          name: "diamond",
          dag: {
            tasks: [
              { name: "A", template: "leaf" },
              { name: "B", template: "leaf", dependencies: ["A"] },
              { name: "C", template: "leaf", dependencies: ["A"] },
              { name: "D", template: "leaf", dependencies: ["B", "C"] }
            ]
          }
        },
        leaf
      ]
    })
    const tooSmall = withLimits(dag, { maxDepth: 2 })
    const out = tooSmall.tick()
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(tooSmall.node("wf.A")!.phase, "Error")
    assert.match(tooSmall.node("wf.A")!.message, /Maximum recursion depth exceeded/)
    const enough = withLimits(dag, { maxDepth: 3 })
    assert.strictEqual(enough.runAll().status.phase, "Succeeded")
  })
})

describe("limits.maxNodes", () => {
  it("a workflow that would create more nodes ends in Error naming the limit, with no actions", () => {
    const wide = workflow({
      entrypoint: "main",
      templates: [{ name: "main", dag: { tasks: Array.from({ length: 200 }, (_, i) => ({ name: `t${i}`, template: "leaf" })) } }, leaf]
    })
    const sim = withLimits(wide, { maxNodes: 100 })
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(out.status.message, 'status.nodes: node "wf.t99" would be node 101, which exceeds limits.maxNodes (100)')
    assert.strictEqual(out.actions.length, 0)
    assert.strictEqual(Object.keys(sim.nodes()).length, 100)
    // The nodes it made are closed, none left running.
    assert.isTrue(Object.values(sim.nodes()).every((n) => n.phase === "Error"))
    assert.strictEqual(withLimits(wide, { maxNodes: 201 }).runAll().status.phase, "Succeeded")
  })
})

describe("limits.maxReconcileSteps", () => {
  const wide = workflow({
    entrypoint: "main",
    templates: [{ name: "main", dag: { tasks: Array.from({ length: 500 }, (_, i) => ({ name: `t${i}`, template: "leaf" })) } }, leaf]
  })

  it("a reconcile over budget returns the workflow's Error naming the limit, no actions, the same every time", () => {
    const run = () => reconcile({ workflow: wide, pods: new Map(), taskResults: new Map(), now: T0, config: { ...config, limits: { maxReconcileSteps: 1000 } } })
    const out = run()
    assert.strictEqual(out.status.phase, "Error")
    assert.match(String(out.status.message), /^reconcile exceeded limits\.maxReconcileSteps \(1000 work units\)/)
    assert.deepStrictEqual(out.actions, [])
    assert.strictEqual(out.requeueAfterMs, undefined)
    assert.deepStrictEqual(out.labels, { "workflows.argoproj.io/phase": "Error", "workflows.argoproj.io/completed": "true" })
    // Deterministic: no clock, the same input spends the same.
    assert.deepStrictEqual(run(), out)
    // With the default budget the same workflow runs.
    const sim = new Sim(wide)
    assert.strictEqual(sim.runAll().status.phase, "Succeeded")
  })
})

describe("reconcile never throws", () => {
  it("an exception inside the engine (here a corrupt stored status) ends the workflow in Error with the reason", () => {
    const wf = {
      ...workflow({ entrypoint: "leaf", templates: [leaf] }),
      status: { phase: "Running", startedAt: "2025-01-01T00:00:00Z", nodes: { wf: { id: "wf", name: "wf", type: "Pod", phase: "Running", children: 5 } } }
    }
    const out = reconcile({ workflow: wf, pods: new Map(), taskResults: new Map(), now: T0, config })
    assert.strictEqual(out.status.phase, "Error")
    assert.match(String(out.status.message), /^workflow engine failed: TypeError: /)
    assert.deepStrictEqual(out.actions, [])
    assert.deepStrictEqual(out.labels, { "workflows.argoproj.io/phase": "Error", "workflows.argoproj.io/completed": "true" })
    // The stored status is kept as it was (upstream's markWorkflowError on the original), and stays so.
    assert.deepStrictEqual((out.status as any).nodes, wf.status.nodes)
    const again = reconcile({ workflow: { ...wf, status: out.status }, pods: new Map(), taskResults: new Map(), now: T0 + 5000, config })
    assert.deepStrictEqual(again.status, out.status)
    assert.deepStrictEqual(again.actions, [])
  })
})

describe("limits.maxStatusBytes and status.compressedNodes", () => {
  const wide = (n: number) =>
    workflow({
      entrypoint: "main",
      templates: [{ name: "main", dag: { tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, template: "leaf" })) } }, leaf]
    })

  it("over the limit, nodes are stored as compressedNodes (gzip + base64 of their JSON) and read back", () => {
    const sim = withLimits(wide(100), { maxStatusBytes: 16 * 1024 })
    const first = sim.tick()
    const status = first.status as Record<string, any>
    assert.strictEqual(status.nodes, undefined)
    assert.isString(status.compressedNodes)
    assert.isAtMost(Buffer.byteLength(JSON.stringify(status)), 16 * 1024)
    const decoded = JSON.parse(gunzipSync(Buffer.from(status.compressedNodes, "base64")).toString("utf8"))
    assert.strictEqual(Object.keys(decoded).length, 101)
    assert.strictEqual(first.actions.length, 100)
    // The next reconciles read the compressed nodes: nothing is created twice, and the workflow completes.
    const created = sim.apply(first, "Running")
    const second = sim.tick()
    assert.strictEqual(second.actions.filter((a) => a._tag === "CreatePod").length, 0)
    assert.strictEqual(byName(second.status, "wf.t7")!.phase, "Running")
    for (const c of created) sim.finish(c.nodeId)
    const done = sim.tick()
    assert.strictEqual(done.status.phase, "Succeeded")
    assert.strictEqual(Object.keys(nodesOf(done.status)).length, 101)
    assert.strictEqual(done.status.progress, "100/100")
  })

  it("under the limit, nodes stay plain and a stale compressedNodes is dropped", () => {
    const sim = new Sim(wide(3))
    const first = sim.tick()
    assert.isObject((first.status as any).nodes)
    assert.strictEqual((first.status as any).compressedNodes, undefined)
    // Nodes present win over a compressedNodes left beside them, which is not written back.
    sim.wf = { ...sim.wf, status: { ...first.status, compressedNodes: gzipSync("{}").toString("base64") } }
    const out = sim.tick()
    assert.strictEqual(Object.keys((out.status as any).nodes).length, 4)
    assert.strictEqual((out.status as any).compressedNodes, undefined)
  })

  it("reads compressedNodes written by upstream (nodes absent): completed nodes are not run again", () => {
    const sim = new Sim(wide(2))
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    const { nodes, ...rest } = out.status as Record<string, any>
    const stored: Record<string, unknown> = { ...rest, phase: "Running", compressedNodes: gzipSync(JSON.stringify(nodes)).toString("base64") }
    delete stored.finishedAt
    const again = reconcile({ workflow: { ...sim.wf, status: stored }, pods: new Map(), taskResults: new Map(), now: T0, config })
    assert.deepStrictEqual(again.actions, [])
    assert.strictEqual(again.status.phase, "Succeeded")
    assert.deepStrictEqual(Object.keys((again.status as any).nodes).sort(), Object.keys(nodes).sort())
  })

  it("too large even compressed: Error with upstream's message on the status as stored, no actions", () => {
    const sim = withLimits(wide(400), { maxStatusBytes: 4 * 1024 })
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Error")
    assert.match(
      String(out.status.message),
      /^workflow is longer than maximum allowed size\. compressed size \d+ > maxSize 4096 \(limits\.maxStatusBytes\)\. Tried to offload but encountered error: offload node status is not supported$/
    )
    assert.deepStrictEqual(out.actions, [])
    assert.strictEqual((out.status as any).nodes, undefined)
    assert.strictEqual((out.status as any).compressedNodes, undefined)
  })

  it("a compressedNodes that does not decode ends the workflow in Error, the status kept as stored", () => {
    const wf = { ...wide(1), status: { phase: "Running", startedAt: "2025-01-01T00:00:00Z", compressedNodes: "H4sI////" } }
    const out = reconcile({ workflow: wf, pods: new Map(), taskResults: new Map(), now: T0, config })
    assert.strictEqual(out.status.phase, "Error")
    assert.match(String(out.status.message), /^status\.compressedNodes: failed to decompress/)
    assert.strictEqual((out.status as any).compressedNodes, "H4sI////")
    assert.deepStrictEqual(out.actions, [])
  })
})

describe("user data never sets the engine's call depth", () => {
  it("a depends expression nested thousands deep is an invalid depends, not a stack overflow", () => {
    const depth = 20_000
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", dag: { tasks: [{ name: "A", template: "leaf" }, { name: "B", template: "leaf", depends: `${"(".repeat(depth)}A${")".repeat(depth)}` }] } },
        leaf
      ]
    }))
    const out = sim.runAll()
    assert.strictEqual(sim.node("wf.B")!.phase, "Error")
    assert.match(sim.node("wf.B")!.message, /nested more than 200 levels deep$/)
    assert.strictEqual(out.status.phase, "Error")
  })
})

describe("node IDs", () => {
  it("fnv32a hashes the UTF-8 bytes, as TextEncoder writes them (lone surrogates as U+FFFD)", () => {
    const reference = (s: string): number => {
      let h = 0x811c9dc5
      for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0
      return h >>> 0
    }
    for (const s of ["", "wf", "wf[0].hello(0:a)", "héllo", "日本語", "😀x", "a\ud800b", "\udc00", "x\ud83d", "ÿ\u07ff\u0800\uffff"]) {
      assert.strictEqual(fnv32a(s), reference(s), JSON.stringify(s))
    }
    assert.strictEqual(nodeId("hello-world", "hello-world.A"), `hello-world-${reference("hello-world.A")}`)
  })
})
