/** Fewer Workflow writes (issue 14): no write for a change of key order, placement-only changes held back briefly. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Expectations } from "../../src/controller/Expectations.js"
import { onlyPlacementChanged, placementHoldMs, StatusWriter } from "../../src/controller/StatusWriter.js"
import { sameJson } from "../../src/util/json.js"
import { WorkQueue } from "../../src/controller/WorkQueue.js"
import { KubeClient } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { fakeClient } from "./services.js"

const workflow = (status: Record<string, unknown>, labels: Record<string, string> = { team: "a" }): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "wf", namespace: "ns", uid: "uid-1", resourceVersion: "5", labels },
  status
})

const harness = () => {
  const writes: Array<KubeObject> = []
  const client = fakeClient({
    replace: (_kind, _namespace, object) =>
      Effect.sync(() => {
        writes.push(object)
        return { ...object, metadata: { ...object.metadata, resourceVersion: "6" } }
      })
  })
  const layer = StatusWriter.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(Layer.succeed(KubeClient, client), Expectations.layer(), WorkQueue.layer()))
  )
  return { writes, layer }
}

const pending = (extra: Record<string, unknown> = {}) => ({
  phase: "Running",
  progress: "0/1",
  nodes: { n1: { id: "n1", type: "Pod", phase: "Pending", ...extra } }
})

describe("StatusWriter: fewer writes", () => {
  it("sameJson: by value, whatever the order of keys; undefined members count as absent", () => {
    assert.isTrue(sameJson({ a: 1, b: { c: [1, { d: 2, e: 3 }] } }, { b: { c: [1, { e: 3, d: 2 }] }, a: 1 }))
    assert.isTrue(sameJson({ a: 1, u: undefined }, { a: 1 }))
    assert.isFalse(sameJson({ a: 1 }, { a: 1, b: 2 }))
    assert.isFalse(sameJson({ a: [1, 2] }, { a: [2, 1] }))
    assert.isFalse(sameJson({ a: null }, { a: {} }))
    assert.isFalse(sameJson([], {}))
  })

  it("onlyPlacementChanged: where a Pending pod landed, nothing else", () => {
    assert.isTrue(onlyPlacementChanged(pending(), pending({ hostNodeName: "node-1", podIP: "10.0.0.1", message: "ContainerCreating" })))
    // a phase change, a node more, a record, a workflow-level change: all written at once
    // the pod Running: progress only, too
    assert.isTrue(onlyPlacementChanged(pending(), { ...pending(), nodes: { n1: { id: "n1", type: "Pod", phase: "Running", hostNodeName: "node-1" } } }))
    // a node done, failed, daemoned, back to Pending, with outputs: written at once
    const running = (extra: Record<string, unknown> = {}) => ({ ...pending(), nodes: { n1: { id: "n1", type: "Pod", phase: "Running", ...extra } } })
    assert.isFalse(onlyPlacementChanged(pending(), { ...pending(), nodes: { n1: { id: "n1", type: "Pod", phase: "Succeeded" } } }))
    assert.isFalse(onlyPlacementChanged(running(), { ...pending(), nodes: { n1: { id: "n1", type: "Pod", phase: "Failed", message: "x" } } }))
    assert.isFalse(onlyPlacementChanged(running(), pending()))
    assert.isFalse(onlyPlacementChanged(pending(), running({ daemoned: true })))
    assert.isFalse(onlyPlacementChanged(running(), running({ outputs: { exitCode: "0" } })))
    assert.isTrue(onlyPlacementChanged(running(), running({ podIP: "10.0.0.2" })))
    assert.isFalse(onlyPlacementChanged(pending(), { ...pending(), nodes: { ...pending().nodes, n2: { id: "n2", phase: "Pending" } } }))
    assert.isFalse(onlyPlacementChanged(pending(), pending({ podUID: "u-1" })))
    assert.isFalse(onlyPlacementChanged(pending(), { ...pending({ hostNodeName: "node-1" }), progress: "1/1" }))
    assert.isFalse(onlyPlacementChanged({ phase: "Running", compressedNodes: "x" }, { phase: "Running", compressedNodes: "y" }))
  })

  it.effect("writes nothing when the stored status differs only in the order of its keys", () => {
    const { writes, layer } = harness()
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const stored = { nodes: { n1: { phase: "Pending", id: "n1", type: "Pod" } }, progress: "0/1", phase: "Running" }
      const result = yield* writer.write("ns/wf", workflow(stored, { b: "2", a: "1" }), { status: pending(), labels: { a: "1" } }, 0)
      assert.strictEqual(result._tag, "Stored")
      assert.strictEqual(writes.length, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("holds a placement-only change back for the next change to carry, and writes it once the hold is over", () => {
    const { writes, layer } = harness()
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const queue = yield* WorkQueue
      const wf = workflow(pending())
      const placed = pending({ hostNodeName: "node-1" })
      const held = yield* writer.write("ns/wf", wf, { status: placed, labels: {} }, 0)
      assert.strictEqual(held._tag, "Stored")
      assert.strictEqual(writes.length, 0)
      // the key comes back when the hold is over
      assert.strictEqual(yield* queue.delayed, 1)
      yield* writer.write("ns/wf", wf, { status: placed, labels: {} }, placementHoldMs - 1)
      assert.strictEqual(writes.length, 0)
      yield* writer.write("ns/wf", wf, { status: placed, labels: {} }, placementHoldMs)
      assert.strictEqual(writes.length, 1)
      assert.strictEqual((writes[0]!["status"] as { nodes: Record<string, { hostNodeName?: string }> }).nodes["n1"]!.hostNodeName, "node-1")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a real change is written at once, with the placement and the pod's start held back", () => {
    const { writes, layer } = harness()
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const wf = workflow(pending())
      yield* writer.write("ns/wf", wf, { status: pending({ hostNodeName: "node-1" }), labels: {} }, 0)
      assert.strictEqual(writes.length, 0)
      const running = { ...pending(), nodes: { n1: { id: "n1", type: "Pod", phase: "Running", hostNodeName: "node-1" } } }
      yield* writer.write("ns/wf", wf, { status: running, labels: {} }, 10)
      assert.strictEqual(writes.length, 0)
      const done = { ...pending(), progress: "1/1", nodes: { n1: { id: "n1", type: "Pod", phase: "Succeeded", hostNodeName: "node-1" } } }
      yield* writer.write("ns/wf", wf, { status: done, labels: {} }, 20)
      assert.strictEqual(writes.length, 1)
      // a label change is never held back
      yield* writer.write("ns/wf", wf, { status: pending({ hostNodeName: "node-2" }), labels: { phase: "Running" } }, 30)
      assert.strictEqual(writes.length, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("latest: the copy its own last Update made stands in for any older copy, until the cache catches up", () => {
    const { layer } = harness()
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const old = workflow({})
      yield* writer.write("ns/wf", old, { status: pending(), labels: {} }, 0)
      const stand = yield* writer.latest("ns/wf", old)
      assert.strictEqual(stand.metadata.resourceVersion, "6")
      assert.deepStrictEqual(stand["status"], pending())
      // another part's Update (the artifact GC's) after it: the stand-in is that one, for v5 and v6 alike
      const gc = { ...old, metadata: { ...old.metadata, resourceVersion: "7", annotations: { gc: "x" } } }
      yield* writer.recordWrite("ns/wf", "6", gc)
      assert.strictEqual(yield* writer.latest("ns/wf", old), gc)
      const echo6 = { ...old, metadata: { ...old.metadata, resourceVersion: "6" } }
      assert.strictEqual(yield* writer.latest("ns/wf", echo6), gc)
      // an older answer taken late changes nothing
      yield* writer.recordWrite("ns/wf", "5", echo6)
      assert.strictEqual(yield* writer.latest("ns/wf", old), gc)
      // the last write's echo (or anything newer) is taken as it is, and ends the stand-in
      const echo7 = { ...gc }
      assert.strictEqual(yield* writer.latest("ns/wf", echo7), echo7)
      assert.strictEqual(yield* writer.latest("ns/wf", old), old)
    }).pipe(Effect.provide(layer))
  })

  it.effect("latest: an Update that changed nothing (same resourceVersion) leaves no stand-in", () => {
    const { layer } = harness()
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const wf = workflow({}, {})
      yield* writer.recordWrite("ns/wf", "5", wf)
      assert.strictEqual(yield* writer.latest("ns/wf", wf), wf)
      assert.isFalse(yield* writer.staleCopy("ns/wf", wf))
    }).pipe(Effect.provide(layer))
  })
})
