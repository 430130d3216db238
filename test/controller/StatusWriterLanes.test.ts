/**
 * StatusWriter under a client-side rate limit: a write that does not complete the workflow goes in
 * the background lane and gives up when the workflow's key is queued again while it waits
 * (`Superseded`); a completing write, and a progress write given up for too long, go in the
 * normal lane. The client here stands for a saturated limiter: a background request gets no
 * spare token until its lane gives up.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Layer } from "effect"
import { Expectations } from "../../src/controller/Expectations.js"
import { progressDeferralMaxMs, StatusWriter, type WriteResult } from "../../src/controller/StatusWriter.js"
import { WorkQueue } from "../../src/controller/WorkQueue.js"
import { KubeClient } from "../../src/kube/api/KubeClient.js"
import { KubeError } from "../../src/kube/api/KubeError.js"
import { type Lane, RequestLane } from "../../src/kube/api/RequestLane.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { fakeClient } from "./services.js"

const key = "ns/wf"
const workflow = (status: Record<string, unknown>): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "wf", namespace: "ns", uid: "uid-1", resourceVersion: "5" },
  status
})
const running = { phase: "Running", nodes: { n1: { id: "n1", phase: "Pending" } } }
const succeeded = { phase: "Succeeded", nodes: { n1: { id: "n1", phase: "Succeeded" } } }

/** A StatusWriter whose client records each request's lane; a background request waits until its lane gives up. */
const harness = () => {
  const lanes: Array<Lane> = []
  const sent: Array<KubeObject> = []
  const waiting = Deferred.makeUnsafe<void>()
  const client = fakeClient({
    replace: (_kind, _namespace, object) =>
      Effect.gen(function*() {
        const lane = yield* RequestLane
        lanes.push(lane)
        if (lane._tag === "Background" && lane.giveUpWhen !== undefined) {
          yield* Deferred.succeed(waiting, undefined)
          yield* lane.giveUpWhen
          return yield* Effect.fail(new KubeError({ reason: "Conflict", cluster: "main", verb: "update", resource: "workflows", detail: "not sent" }))
        }
        sent.push(object)
        return { ...object, metadata: { ...object.metadata, resourceVersion: "6" } }
      })
  })
  const layer = StatusWriter.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(Layer.succeed(KubeClient, client), Expectations.layer(), WorkQueue.layer()))
  )
  return { lanes, sent, waiting, layer }
}

/**
 * One worker holding the key, as the Reconciler's: `write` hands it a write and queues the key.
 * (A superseded round leaves the key queued again: that round finds no write to make.)
 */
const worker = Effect.gen(function*() {
  const writer = yield* StatusWriter
  const queue = yield* WorkQueue
  let job: { readonly status: Record<string, unknown>; readonly now: number; readonly result: Deferred.Deferred<WriteResult> } | undefined
  yield* queue.run(1, () =>
    Effect.suspend(() => {
      const taken = job
      job = undefined
      return taken === undefined
        ? Effect.void
        : Effect.flatMap(writer.write(key, workflow({}), { status: taken.status, labels: {} }, taken.now), (r) => Deferred.succeed(taken.result, r))
    }))
  return (status: Record<string, unknown>, now: number) =>
    Effect.gen(function*() {
      const result = yield* Deferred.make<WriteResult>()
      job = { status, now, result }
      yield* queue.add(key)
      return result
    })
})

/** Lets the worker run until `lanes` has `n` entries. */
const untilRequests = (lanes: ReadonlyArray<Lane>, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 50 && lanes.length < n; i++) yield* Effect.yieldNow
    assert.strictEqual(lanes.length, n)
  })

describe("StatusWriter under a client rate limit", () => {
  it.effect("a progress write waits in the background lane and is superseded when the workflow changes meanwhile", () => {
    const { lanes, sent, waiting, layer } = harness()
    return Effect.gen(function*() {
      const queue = yield* WorkQueue
      const write = yield* worker
      const result = yield* write(running, 0)
      yield* Deferred.await(waiting)
      assert.strictEqual(lanes[0]?._tag, "Background")
      // the workflow's pod changed while the write waited for a token
      yield* queue.add(key)
      const r = yield* Deferred.await(result)
      assert.strictEqual(r._tag, "Superseded")
      assert.strictEqual(sent.length, 0)
    }).pipe(Effect.provide(layer), Effect.scoped)
  })

  it.effect("a write that completes the workflow goes in the normal lane", () => {
    const { lanes, sent, layer } = harness()
    return Effect.gen(function*() {
      const write = yield* worker
      const r = yield* Deferred.await(yield* write(succeeded, 0))
      assert.strictEqual(r._tag, "Stored")
      assert.deepStrictEqual(lanes.map((l) => l._tag), ["Normal"])
      assert.strictEqual(sent.length, 1)
    }).pipe(Effect.provide(layer), Effect.scoped)
  })

  it.effect("progress given up for progressDeferralMaxMs is written in the normal lane; its patience shrinks meanwhile", () => {
    const { lanes, sent, layer } = harness()
    return Effect.gen(function*() {
      const queue = yield* WorkQueue
      const write = yield* worker
      // superseded at t=0: the workflow changes while the first write waits
      const first = yield* write(running, 0)
      yield* untilRequests(lanes, 1)
      yield* queue.add(key)
      assert.strictEqual((yield* Deferred.await(first))._tag, "Superseded")
      // 4 s later the next progress write still waits in the background, with 6 s of patience left
      const second = yield* write({ ...running, progress: "1/2" }, 4_000)
      yield* untilRequests(lanes, 2)
      const lane = lanes[1]!
      assert.strictEqual(lane._tag, "Background")
      assert.strictEqual(lane._tag === "Background" ? Duration.toMillis(lane.patience!) : 0, progressDeferralMaxMs - 4_000)
      yield* queue.add(key)
      assert.strictEqual((yield* Deferred.await(second))._tag, "Superseded")
      // once the deferral is over, the write goes in the normal lane, and that ends it
      const third = yield* Deferred.await(yield* write(running, progressDeferralMaxMs))
      assert.strictEqual(third._tag, "Stored")
      assert.strictEqual(lanes[2]?._tag, "Normal")
      assert.strictEqual(sent.length, 1)
      // a later progress write may wait in the background again
      yield* write({ ...running, progress: "2/2" }, progressDeferralMaxMs + 1)
      yield* untilRequests(lanes, 4)
      assert.strictEqual(lanes[3]?._tag, "Background")
    }).pipe(Effect.provide(layer), Effect.scoped)
  })
})
