import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Expectations } from "../../src/controller/Expectations.js"
import { recordingClient, StatusWriter } from "../../src/controller/StatusWriter.js"
import { WorkQueue } from "../../src/controller/WorkQueue.js"
import { KubeError } from "../../src/kube/api/KubeError.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { fakeClient } from "./services.js"
import { KubeClient } from "../../src/kube/api/KubeClient.js"

const workflow = (resourceVersion: string, status: Record<string, unknown>): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "wf", namespace: "ns", uid: "uid-1", resourceVersion, labels: { team: "a" } },
  status
})

/** A StatusWriter over a client whose `replace` is `replace`; `writes` lists what was written. */
const harness = (replace: (object: KubeObject) => Effect.Effect<KubeObject, KubeError>) => {
  const writes: Array<KubeObject> = []
  const client = fakeClient({ replace: (_kind, _namespace, object) => Effect.suspend(() => (writes.push(object), replace(object))) })
  const layer = StatusWriter.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(Layer.succeed(KubeClient, client), Expectations.layer(), WorkQueue.layer()))
  )
  return { writes, layer }
}

const bumped = (object: KubeObject) =>
  Effect.succeed({ ...object, metadata: { ...object.metadata, resourceVersion: String(Number(object.metadata.resourceVersion) + 1) } })

const running = { phase: "Running", nodes: { n1: { id: "n1", phase: "Pending" }, n2: { id: "n2", phase: "Pending" } } }

describe("StatusWriter", () => {
  it.effect("skips a write that would change nothing", () => {
    const { writes, layer } = harness(bumped)
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const result = yield* writer.write("ns/wf", workflow("5", running), { status: running, labels: { team: "a" } }, 0)
      assert.strictEqual(result._tag, "Stored")
      assert.strictEqual(writes.length, 0)
      // nothing written: the copy is not stale
      assert.isFalse(yield* writer.staleCopy("ns/wf", workflow("5", running)))
    }).pipe(Effect.provide(layer))
  })

  it.effect("writes the records of pods just created and the messages of waiting creates", () => {
    const { writes, layer } = harness(bumped)
    return Effect.gen(function*() {
      const expectations = yield* Expectations
      const writer = yield* StatusWriter
      yield* expectations.created("uid-1", "n1", { nodeId: "n1", podName: "p1", cluster: "east", namespace: "remote", phase: "Pending" }, {
        uid: "pod-uid",
        cluster: "east",
        namespace: "remote"
      }, 0)
      yield* expectations.waiting("uid-1", "n2", 0, "waiting for cluster: west is down")
      const result = yield* writer.write("ns/wf", workflow("5", running), { status: running, labels: { phase: "Running" } }, 0)
      assert.strictEqual(result._tag, "Stored")
      assert.strictEqual(writes.length, 1)
      const nodes = (writes[0]!["status"] as { nodes: Record<string, Record<string, unknown>> }).nodes
      assert.deepStrictEqual([nodes["n1"]!["podUID"], nodes["n1"]!["cluster"], nodes["n1"]!["namespace"]], ["pod-uid", "east", "remote"])
      assert.strictEqual(nodes["n2"]!["message"], "waiting for cluster: west is down")
      assert.deepStrictEqual(writes[0]!.metadata.labels, { team: "a", phase: "Running" })
    }).pipe(Effect.provide(layer))
  })

  it.effect("holds back the copy its own write replaced, for a while at most", () => {
    const { layer } = harness(bumped)
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const queue = yield* WorkQueue
      const old = workflow("5", {})
      yield* writer.write("ns/wf", old, { status: running, labels: {} }, 0)
      assert.isTrue(yield* writer.staleCopy("ns/wf", old))
      // looked at again shortly
      assert.strictEqual(yield* queue.delayed, 1)
      // the write's own copy (or any newer one) goes ahead, and ends the guard
      assert.isFalse(yield* writer.staleCopy("ns/wf", workflow("6", running)))
      assert.isFalse(yield* writer.staleCopy("ns/wf", old))

      yield* writer.write("ns/wf", old, { status: running, labels: {} }, 0)
      yield* TestClock.adjust("10 seconds")
      // should the write's event never arrive, the copy is taken as it is
      assert.isFalse(yield* writer.staleCopy("ns/wf", old))
    }).pipe(Effect.provide(layer))
  })

  it.effect("asks for a retry when the write conflicts, without holding the copy back", () => {
    const { layer } = harness(() =>
      Effect.fail(new KubeError({ reason: "Conflict", cluster: "main", verb: "update", resource: "workflows", detail: "changed" }))
    )
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const old = workflow("5", {})
      const result = yield* writer.write("ns/wf", old, { status: running, labels: {} }, 0)
      assert.strictEqual(result._tag, "Retry")
      assert.isFalse(yield* writer.staleCopy("ns/wf", old))
    }).pipe(Effect.provide(layer))
  })

  it.effect("recordingClient: another part's Update of a workflow becomes the stand-in; other kinds are not recorded", () => {
    const { layer } = harness(bumped)
    return Effect.gen(function*() {
      const writer = yield* StatusWriter
      const client = yield* KubeClient
      const old = workflow("5", running)
      const written = yield* client.replace("workflows", "ns", { ...old, metadata: { ...old.metadata, finalizers: ["f"] } })
      assert.strictEqual(written.metadata.resourceVersion, "6")
      assert.deepStrictEqual((yield* writer.latest("ns/wf", old)).metadata.finalizers, ["f"])
      yield* client.replace("configmaps", "ns", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "wf", namespace: "ns", resourceVersion: "6" } })
      assert.strictEqual((yield* writer.latest("ns/wf", old)).metadata.resourceVersion, "6")
    }).pipe(Effect.provide(Layer.provideMerge(recordingClient, layer)))
  })
})
