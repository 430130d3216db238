import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Option, PubSub, Queue, Stream } from "effect"
import { identity, Informer, stripManagedFields } from "../../src/kube/cache/Informer.js"
import type { KubeError } from "../../src/kube/api/KubeError.js"
import type { KubeObject, WatchEvent } from "../../src/kube/api/Resources.js"
import { pod, scriptedClient, waitUntil } from "./fakeClient.js"

const managed = (object: KubeObject): KubeObject => ({
  ...object,
  metadata: { ...object.metadata, managedFields: [{ manager: "kubectl", operation: "Update", fieldsV1: { "f:spec": {} } }] } as KubeObject["metadata"]
})

const fake = (items: ReadonlyArray<KubeObject>) =>
  Effect.gen(function*() {
    const watches: Array<Queue.Queue<WatchEvent, KubeError | Cause.Done>> = []
    const client = scriptedClient(
      () => Effect.succeed({ items: [...items], resourceVersion: "10" }),
      () =>
        Stream.unwrap(Effect.gen(function*() {
          const queue = yield* Queue.make<WatchEvent, KubeError | Cause.Done>()
          watches.push(queue)
          return Stream.fromQueue(queue)
        }))
    )
    return { client, watches }
  })

describe("Informer transform", () => {
  it("stripManagedFields drops metadata.managedFields and nothing else; an object without them is returned as is", () => {
    const plain = pod("a", "1")
    assert.strictEqual(stripManagedFields(plain), plain)
    assert.deepStrictEqual(stripManagedFields(managed(plain)), plain)
  })

  it.effect("by default, caches and announces objects without managedFields (snapshot and watch events)", () =>
    Effect.gen(function*() {
      const { client, watches } = yield* fake([managed(pod("a", "1"))])
      const informer = yield* Informer.make(client, "pods", "ns")
      const subscription = yield* informer.subscribe
      yield* informer.synced
      assert.deepStrictEqual(yield* informer.get("ns", "a"), Option.some(pod("a", "1")))
      yield* waitUntil("watch open", () => watches.length === 1)
      yield* Queue.offerAll(watches[0]!, [
        { type: "MODIFIED", object: managed(pod("a", "2")) },
        { type: "DELETED", object: managed(pod("a", "3")) }
      ])
      const changes = [yield* PubSub.take(subscription), yield* PubSub.take(subscription), yield* PubSub.take(subscription)]
      assert.deepStrictEqual(changes.map((c) => [c.type, c.object, c.previous]), [
        ["upsert", pod("a", "1"), undefined],
        ["upsert", pod("a", "2"), pod("a", "1")],
        ["delete", pod("a", "3"), pod("a", "2")]
      ])
    }))

  it.effect("a given transform replaces the default (identity keeps objects as delivered)", () =>
    Effect.gen(function*() {
      const { client } = yield* fake([managed(pod("a", "1"))])
      const kept = yield* Informer.make(client, "pods", "ns", { transform: identity })
      yield* kept.synced
      assert.deepStrictEqual(yield* kept.get("ns", "a"), Option.some(managed(pod("a", "1"))))
    }))
})
