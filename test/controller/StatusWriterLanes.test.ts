/**
 * StatusWriter under a client-side rate limit: a write that does not complete the workflow goes
 * only with a spare token (background lane, given up at once otherwise: `Deferred`, with the time
 * left of its deferral); a completing write, and a progress write deferred for too long, go in the
 * normal lane. The client here stands for a saturated limiter: it gives up every request whose
 * lane gives up, as the live connection does with no spare token.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { Expectations } from "../../src/controller/Expectations.js"
import { progressDeferralMaxMs, StatusWriter } from "../../src/controller/StatusWriter.js"
import { WorkQueue } from "../../src/controller/WorkQueue.js"
import { KubeClient } from "../../src/kube/api/KubeClient.js"
import { KubeError } from "../../src/kube/api/KubeError.js"
import { givenUpDetail, type Lane, RequestLane } from "../../src/kube/api/RequestLane.js"
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

/** A StatusWriter whose client records each request's lane and has no spare token: what may give up does. */
const harness = (serverConflicts = false) => {
  const lanes: Array<Lane> = []
  const sent: Array<KubeObject> = []
  const conflict = (detail: string) => new KubeError({ reason: "Conflict", cluster: "main", verb: "update", resource: "workflows", detail })
  const client = fakeClient({
    replace: (_kind, _namespace, object) =>
      Effect.gen(function*() {
        const lane = yield* RequestLane
        lanes.push(lane)
        if (lane._tag === "Background" && lane.giveUp === true && Duration.toMillis(lane.patience ?? Duration.zero) === 0) {
          return yield* Effect.fail(conflict(givenUpDetail))
        }
        if (serverConflicts) return yield* Effect.fail(conflict("the object has been modified"))
        sent.push(object)
        return { ...object, metadata: { ...object.metadata, resourceVersion: "6" } } as KubeObject
      })
  })
  const layer = StatusWriter.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(Layer.succeed(KubeClient, client), Expectations.layer(), WorkQueue.layer()))
  )
  return { lanes, sent, layer }
}

describe("StatusWriter under a client rate limit", () => {
  it.effect("a progress write with no spare token is deferred, with the time left of its deferral; nothing is sent", () => {
    const { lanes, sent, layer } = harness()
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const first = yield* writer.write(key, workflow({}), { status: running, labels: {} }, 1_000)
      assert.deepStrictEqual(first, { _tag: "Deferred", retryAfterMs: progressDeferralMaxMs })
      assert.strictEqual(lanes[0]?._tag, "Background")
      // deferred again 4 s later: the deferral counts from the first
      const second = yield* writer.write(key, workflow({}), { status: { ...running, progress: "0/1" }, labels: {} }, 5_000)
      assert.deepStrictEqual(second, { _tag: "Deferred", retryAfterMs: progressDeferralMaxMs - 4_000 })
      assert.strictEqual(sent.length, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a write that completes the workflow goes in the normal lane", () => {
    const { lanes, sent, layer } = harness()
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const r = yield* writer.write(key, workflow({}), { status: succeeded, labels: {} }, 0)
      assert.strictEqual(r._tag, "Stored")
      assert.deepStrictEqual(lanes.map((l) => l._tag), ["Normal"])
      assert.strictEqual(sent.length, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("once deferred for progressDeferralMaxMs, the progress write goes in the normal lane, and that ends the deferral", () => {
    const { lanes, sent, layer } = harness()
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      assert.strictEqual((yield* writer.write(key, workflow({}), { status: running, labels: {} }, 0))._tag, "Deferred")
      const r = yield* writer.write(key, workflow({}), { status: running, labels: {} }, progressDeferralMaxMs)
      assert.strictEqual(r._tag, "Stored")
      assert.deepStrictEqual(lanes.map((l) => l._tag), ["Background", "Normal"])
      assert.strictEqual(sent.length, 1)
      // a later progress write may be deferred again, for a deferral of its own
      const later = yield* writer.write(key, workflow({}), { status: { ...running, progress: "1/1" }, labels: {} }, progressDeferralMaxMs + 1)
      assert.deepStrictEqual(later, { _tag: "Deferred", retryAfterMs: progressDeferralMaxMs })
    }).pipe(Effect.provide(layer))
  })

  it.effect("a Conflict from the server is a Conflict, not a deferral", () => {
    const { layer } = harness(true)
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const r = yield* writer.write(key, workflow({}), { status: succeeded, labels: {} }, 0)
      assert.deepStrictEqual(r, { _tag: "Retry", conflict: true })
    }).pipe(Effect.provide(layer))
  })
})
