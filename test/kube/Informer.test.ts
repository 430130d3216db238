import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Logger, Option, PubSub, Queue, References, Schedule, Scope, Stream, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import { Informer, type InformerChange } from "../../src/kube/cache/Informer.js"
import { KubeError } from "../../src/kube/api/KubeError.js"
import { Supervisor } from "../../src/runtime/Supervisor.js"
import type { ObjectList, WatchEvent } from "../../src/kube/api/Resources.js"
import { pod, scriptedClient, waitUntil } from "./fakeClient.js"

// --- a small scripted fake client --------------------------------------------
// Lists come from a script; each watch reads events pushed by the test into a queue.

const makeFake = (lists: Array<Effect.Effect<ObjectList, KubeError>>) =>
  Effect.gen(function*() {
    const watches: Array<Queue.Queue<WatchEvent, KubeError | Cause.Done>> = []
    let listCalls = 0
    const client = scriptedClient(
      () =>
        Effect.suspend(() => {
          listCalls += 1
          return lists.shift() ?? Effect.never
        }),
      () =>
        Stream.unwrap(Effect.gen(function*() {
          const queue = yield* Queue.make<WatchEvent, KubeError | Cause.Done>()
          watches.push(queue)
          return Stream.fromQueue(queue)
        }))
    )
    return {
      client,
      listCalls: () => listCalls,
      watchCount: () => watches.length,
      /** The most recent watch's queue. */
      current: () => watches[watches.length - 1]
    }
  })

const summary = (changes: ReadonlyArray<InformerChange>) =>
  changes.map((c) => `${c.type}:${c.object.metadata.name}@${c.object.metadata.resourceVersion}` + (c.previous ? `<-${c.previous.metadata.resourceVersion}` : ""))

describe("Informer", () => {
  it.effect("fills the cache from the snapshot and keeps it current from watch events", () =>
    Effect.gen(function*() {
      const fake = yield* makeFake([Effect.succeed({ items: [pod("a", "1"), pod("b", "2")], resourceVersion: "10" })])
      const informer = yield* Informer.make(fake.client, "pods", "ns")
      const subscription = yield* informer.subscribe
      yield* informer.synced
      assert.deepStrictEqual((yield* informer.list()).map((o) => o.metadata.name).sort(), ["a", "b"])
      assert.deepStrictEqual(yield* informer.get("ns", "a"), Option.some(pod("a", "1")))
      assert.isTrue(Option.isNone(yield* informer.get("other", "a")))

      yield* waitUntil("watch open", () => fake.watchCount() === 1)
      yield* Queue.offerAll(fake.current(), [
        { type: "MODIFIED", object: pod("a", "11") },
        { type: "ADDED", object: pod("c", "12") },
        { type: "DELETED", object: pod("b", "13") }
      ])
      const all: Array<InformerChange> = []
      while (all.length < 5) all.push(yield* PubSub.take(subscription))
      assert.deepStrictEqual(summary(all), [
        "upsert:a@1",
        "upsert:b@2",
        "upsert:a@11<-1",
        "upsert:c@12",
        "delete:b@13<-2"
      ])
      assert.deepStrictEqual((yield* informer.list()).map((o) => o.metadata.name).sort(), ["a", "c"])
      const filtered = yield* informer.list((o) => o.metadata.name === "c")
      assert.deepStrictEqual(filtered, [pod("c", "12")])
    }))

  it.effect("on a relist after Gone, announces deletes for vanished objects and upserts for new or changed ones", () =>
    Effect.gen(function*() {
      const fake = yield* makeFake([
        Effect.succeed({ items: [pod("a", "1"), pod("b", "2"), pod("keep", "3")], resourceVersion: "10" }),
        Effect.succeed({ items: [pod("a", "20"), pod("keep", "3"), pod("new", "21")], resourceVersion: "30" })
      ])
      const informer = yield* Informer.make(fake.client, "pods", "ns")
      yield* informer.synced
      const subscription = yield* informer.subscribe
      yield* waitUntil("watch open", () => fake.watchCount() === 1)
      yield* Queue.fail(fake.current(), new KubeError({ reason: "Gone", cluster: "east", verb: "watch", resource: "pods", detail: "too old" }))
      const changes: Array<InformerChange> = []
      for (let i = 0; i < 3; i++) changes.push(yield* PubSub.take(subscription))
      assert.deepStrictEqual(summary(changes), ["delete:b@2<-2", "upsert:a@20<-1", "upsert:new@21"])
      assert.strictEqual(fake.listCalls(), 2)
      assert.deepStrictEqual((yield* informer.list()).map((o) => o.metadata.name).sort(), ["a", "keep", "new"])
      assert.isTrue(Option.isNone(yield* informer.get("ns", "b")))
    }))

  it.effect("changes is a stream of the same events", () =>
    Effect.gen(function*() {
      const fake = yield* makeFake([Effect.succeed({ items: [], resourceVersion: "10" })])
      const informer = yield* Informer.make(fake.client, "pods", "ns")
      yield* informer.synced
      const fiber = yield* informer.changes.pipe(Stream.take(2), Stream.runCollect, Effect.forkScoped)
      yield* waitUntil("watch open", () => fake.watchCount() === 1)
      // give the stream time to subscribe
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      yield* Queue.offerAll(fake.current(), [
        { type: "ADDED", object: pod("x", "11") },
        { type: "BOOKMARK", resourceVersion: "12" },
        { type: "MODIFIED", object: pod("x", "13") }
      ])
      const got = yield* Fiber.join(fiber)
      assert.deepStrictEqual(summary(got), ["upsert:x@11", "upsert:x@13<-11"])
    }))

  it.effect("reports the watch's connection state", () =>
    Effect.gen(function*() {
      const fake = yield* makeFake([
        Effect.fail(new KubeError({ reason: "Unavailable", cluster: "east", verb: "list", resource: "pods", detail: "refused" })),
        Effect.succeed({ items: [], resourceVersion: "10" })
      ])
      const informer = yield* Informer.make(fake.client, "pods", "ns", { schedule: Schedule.exponential("1 second") })
      yield* waitUntil("retrying", () => SubscriptionRef.getUnsafe(informer.state)._tag === "Retrying")
      const state = SubscriptionRef.getUnsafe(informer.state)
      assert.deepInclude(state, { _tag: "Retrying", attempt: 1, nextRetryMs: 1000 })
      const syncedFiber = yield* Effect.forkScoped(informer.synced)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(syncedFiber)
      assert.strictEqual(SubscriptionRef.getUnsafe(informer.state)._tag, "Connected")
    }))

  it.effect("indexes follow the cache: byIndex reads one value's objects, through upserts, deletes and relists", () =>
    Effect.gen(function*() {
      const owned = (name: string, rv: string, owner: string) => pod(name, rv, { metadata: { name, namespace: "ns", resourceVersion: rv, labels: { owner } } })
      const fake = yield* makeFake([
        Effect.succeed({ items: [owned("a", "1", "x"), owned("b", "2", "y")], resourceVersion: "10" }),
        Effect.succeed({ items: [owned("b", "20", "x")], resourceVersion: "30" })
      ])
      const informer = yield* Informer.make(fake.client, "pods", "ns", {
        indexers: { owner: (o) => o.metadata.labels?.["owner"] ? [o.metadata.labels["owner"]] : [] }
      })
      yield* informer.synced
      const names = (value: string) => informer.byIndex("owner", value).pipe(Effect.map((os) => os.map((o) => o.metadata.name).sort()))
      assert.deepStrictEqual(yield* names("x"), ["a"])
      assert.deepStrictEqual(yield* names("y"), ["b"])
      assert.deepStrictEqual(yield* informer.byIndex("nope", "x"), [])
      yield* waitUntil("watch open", () => fake.watchCount() === 1)
      const subscription = yield* informer.subscribe
      yield* Queue.offerAll(fake.current(), [
        { type: "MODIFIED", object: owned("a", "11", "y") },
        { type: "ADDED", object: owned("c", "12", "x") },
        { type: "DELETED", object: owned("b", "13", "y") }
      ])
      for (let i = 0; i < 3; i++) yield* PubSub.take(subscription)
      assert.deepStrictEqual(yield* names("x"), ["c"])
      assert.deepStrictEqual(yield* names("y"), ["a"])
      // a relist replaces everything
      yield* Queue.fail(fake.current(), new KubeError({ reason: "Gone", cluster: "east", verb: "watch", resource: "pods", detail: "too old" }))
      for (let i = 0; i < 3; i++) yield* PubSub.take(subscription)
      assert.deepStrictEqual(yield* names("x"), ["b"])
      assert.deepStrictEqual(yield* names("y"), [])
    }))

  it.effect("a defect in the watch loop is logged with its cluster and kind, and the loop restarts (supervised)", () =>
    Effect.gen(function*() {
      const fake = yield* makeFake([
        Effect.succeed({ items: [], resourceVersion: "10" }),
        Effect.succeed({ items: [pod("poison", "11"), pod("after", "12")], resourceVersion: "12" })
      ])
      const supervisor = yield* Supervisor.make
      let poisoned = false
      const failures: Array<Record<string, unknown>> = []
      const informer = yield* Informer.make(fake.client, "pods", "ns", {
        supervisor,
        // a buggy index function: throws the first time it meets "poison"
        indexers: {
          bad: (o) => {
            if (o.metadata.name === "poison" && !poisoned) {
              poisoned = true
              throw new Error("index function bug")
            }
            return []
          }
        }
      }).pipe(Effect.provide(Logger.layer([Logger.make((options) => {
        if (String(options.message).includes("component failed")) failures.push({ ...options.fiber.getRef(References.CurrentLogAnnotations) })
      })])))
      yield* informer.synced
      yield* waitUntil("watch open", () => fake.watchCount() === 1)
      yield* Queue.offer(fake.current(), { type: "ADDED", object: pod("poison", "11") })
      yield* waitUntil("the defect", () => failures.length === 1)
      assert.strictEqual(failures[0]!["component"], "informer/east/pods")
      assert.strictEqual(failures[0]!["cluster"], "east")
      assert.include(String(failures[0]!["error"]), "index function bug")
      assert.isFalse(yield* supervisor.ready)
      // restarted after its backoff: lists again and carries on
      yield* TestClock.adjust("100 millis")
      yield* waitUntil("relisted", () => fake.listCalls() === 2)
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow
      assert.deepStrictEqual((yield* informer.list()).map((o) => o.metadata.name).sort(), ["after", "poison"])
      assert.isTrue(yield* supervisor.ready)
    }))

  it.effect("stops watching when its scope closes", () =>
    Effect.gen(function*() {
      const fake = yield* makeFake([Effect.succeed({ items: [], resourceVersion: "10" })])
      const scope = yield* Scope.make()
      const informer = yield* Informer.make(fake.client, "pods", "ns").pipe(Scope.provide(scope))
      yield* informer.synced
      yield* waitUntil("watch open", () => fake.watchCount() === 1)
      const queue = fake.current()
      yield* Scope.close(scope, Exit.void)
      // the watch stream's consumer is gone: nothing reads what the fake offers
      yield* Queue.offer(queue, { type: "ADDED", object: pod("late", "11") })
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.isTrue(Option.isNone(yield* informer.get("ns", "late")))
    }))
})
