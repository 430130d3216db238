import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import { KubeError, type KubeErrorReason } from "../../src/kube/api/KubeError.js"
import type { ListOptions, ObjectList, WatchEvent, WatchOptions } from "../../src/kube/api/Resources.js"
import { type WatchItem, watchResource, type WatchState } from "../../src/kube/cache/Watch.js"
import { pod, scriptedClient, waitUntil } from "./fakeClient.js"

// --- a small scripted fake client --------------------------------------------

interface Script {
  readonly lists: Array<Effect.Effect<ObjectList, KubeError>>
  readonly watches: Array<Stream.Stream<WatchEvent, KubeError>>
}

const makeFake = (script: Script) => {
  const listCalls: Array<ListOptions | undefined> = []
  const watchCalls: Array<WatchOptions> = []
  const client = scriptedClient(
    // An unscripted call hangs, so the loop waits where the test can see it.
    (_kind, _namespace, options) =>
      Effect.suspend(() => {
        listCalls.push(options)
        return script.lists.shift() ?? Effect.never
      }),
    (_kind, _namespace, options) =>
      Stream.suspend(() => {
        watchCalls.push(options)
        return script.watches.shift() ?? Stream.never
      })
  )
  return { client, listCalls, watchCalls }
}

const kubeError = (reason: KubeErrorReason) =>
  new KubeError({ reason, cluster: "east", verb: "watch", resource: "pods", detail: `scripted ${reason}` })

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** Runs the watch in the background, recording items and states. */
const start = (client: KubeClientShape, options: Parameters<typeof watchResource>[3] = {}) =>
  Effect.gen(function*() {
    const items: Array<WatchItem> = []
    const states: Array<WatchState> = []
    yield* watchResource(client, "pods", "ns", {
      ...options,
      onState: (state) => Effect.sync(() => states.push(state))
    }).pipe(
      Stream.runForEach((item) => Effect.sync(() => items.push(item))),
      Effect.forkScoped
    )
    return { items, states }
  })

const noJitter = Schedule.exponential("1 second")

// --- tests ---------------------------------------------------------------------

describe("watchResource", () => {
  it.effect("emits a snapshot, then events from the list's resourceVersion", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [Effect.succeed({ items: [pod("a", "5")], resourceVersion: "10" })],
        watches: [
          Stream.make<Array<WatchEvent>>(
            { type: "ADDED", object: pod("b", "11") },
            { type: "MODIFIED", object: pod("a", "12") },
            { type: "DELETED", object: pod("b", "13") }
          ).pipe(Stream.concat(Stream.never))
        ]
      })
      const { items } = yield* start(fake.client, { labelSelector: "app=x" })
      yield* waitUntil("4 items", () => items.length === 4)
      assert.deepStrictEqual(items, [
        { _tag: "Synced", items: [pod("a", "5")], resourceVersion: "10" },
        { _tag: "Upsert", object: pod("b", "11") },
        { _tag: "Upsert", object: pod("a", "12") },
        { _tag: "Delete", object: pod("b", "13") }
      ])
      assert.deepStrictEqual(fake.listCalls, [{ labelSelector: "app=x" }])
      assert.strictEqual(fake.watchCalls.length, 1)
      const options = fake.watchCalls[0]
      assert.strictEqual(options.resourceVersion, "10")
      assert.strictEqual(options.allowBookmarks, true)
      assert.strictEqual(options.labelSelector, "app=x")
      assert.isTrue(options.timeoutSeconds! >= 300 && options.timeoutSeconds! <= 600)
    }))

  it.effect("resumes a watch that ended normally from the last seen resourceVersion, without relisting", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [Effect.succeed({ items: [], resourceVersion: "10" })],
        watches: [
          Stream.make<Array<WatchEvent>>({ type: "ADDED", object: pod("a", "11") }, { type: "MODIFIED", object: pod("a", "14") })
        ]
      })
      const { items } = yield* start(fake.client)
      yield* waitUntil("second watch", () => fake.watchCalls.length === 2)
      assert.strictEqual(fake.watchCalls[1].resourceVersion, "14")
      assert.strictEqual(fake.listCalls.length, 1)
      assert.strictEqual(items.filter((item) => item._tag === "Synced").length, 1)
    }))

  it.effect("bookmarks only advance the resourceVersion", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [Effect.succeed({ items: [], resourceVersion: "10" })],
        watches: [Stream.make<Array<WatchEvent>>({ type: "BOOKMARK", resourceVersion: "20" })]
      })
      const { items } = yield* start(fake.client)
      yield* waitUntil("second watch", () => fake.watchCalls.length === 2)
      assert.strictEqual(fake.watchCalls[1].resourceVersion, "20")
      assert.deepStrictEqual(items, [{ _tag: "Synced", items: [], resourceVersion: "10" }])
    }))

  it.effect("relists at once on Gone and emits a new snapshot", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [
          Effect.succeed({ items: [pod("a", "5")], resourceVersion: "10" }),
          Effect.succeed({ items: [pod("b", "25")], resourceVersion: "30" })
        ],
        watches: [
          Stream.make<Array<WatchEvent>>({ type: "ADDED", object: pod("c", "11") }).pipe(
            Stream.concat(Stream.fail(kubeError("Gone")))
          )
        ]
      })
      const { items, states } = yield* start(fake.client)
      yield* waitUntil("watch after relist", () => fake.watchCalls.length === 2)
      assert.strictEqual(fake.listCalls.length, 2)
      assert.strictEqual(fake.watchCalls[1].resourceVersion, "30")
      assert.deepStrictEqual(items, [
        { _tag: "Synced", items: [pod("a", "5")], resourceVersion: "10" },
        { _tag: "Upsert", object: pod("c", "11") },
        { _tag: "Synced", items: [pod("b", "25")], resourceVersion: "30" }
      ])
      // A Gone is routine, not a connection problem.
      assert.deepStrictEqual(states.map((s) => s._tag), ["Connecting", "Connected"])
    }))

  it.effect("a second Gone in a row without progress backs off instead of spinning", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [
          Effect.succeed({ items: [], resourceVersion: "10" }),
          Effect.succeed({ items: [], resourceVersion: "11" }),
          Effect.succeed({ items: [], resourceVersion: "12" })
        ],
        // OPENED proves the server reachable, not progress: still a Gone in a row
        watches: [
          Stream.make<Array<WatchEvent>>({ type: "OPENED" }).pipe(Stream.concat(Stream.fail(kubeError("Gone")))),
          Stream.make<Array<WatchEvent>>({ type: "OPENED" }).pipe(Stream.concat(Stream.fail(kubeError("Gone"))))
        ]
      })
      const { states } = yield* start(fake.client, { schedule: noJitter })
      yield* waitUntil("retrying", () => states.some((s) => s._tag === "Retrying"))
      assert.strictEqual(fake.listCalls.length, 2)
      yield* TestClock.adjust("1 second")
      yield* waitUntil("third list", () => fake.listCalls.length === 3)
    }))

  it.effect("backs off exponentially after failures, and a success resets the backoff", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [
          Effect.fail(kubeError("Unavailable")),
          Effect.fail(kubeError("Unavailable")),
          Effect.succeed({ items: [], resourceVersion: "10" })
        ],
        watches: [
          Stream.make<Array<WatchEvent>>({ type: "ADDED", object: pod("a", "11") }).pipe(
            Stream.concat(Stream.fail(kubeError("Unavailable")))
          ),
          Stream.make<Array<WatchEvent>>({ type: "OPENED" }).pipe(Stream.concat(Stream.never))
        ]
      })
      const { states } = yield* start(fake.client, { schedule: noJitter })
      yield* settle
      assert.strictEqual(fake.listCalls.length, 1)
      assert.deepInclude(states[1], { _tag: "Retrying", attempt: 1, nextRetryMs: 1000 })

      yield* TestClock.adjust(999)
      yield* settle
      assert.strictEqual(fake.listCalls.length, 1, "no retry before the delay")
      yield* TestClock.adjust(1)
      yield* waitUntil("second list", () => fake.listCalls.length === 2)
      yield* settle
      assert.deepInclude(states[2], { _tag: "Retrying", attempt: 2, nextRetryMs: 2000 })

      yield* TestClock.adjust(1999)
      yield* settle
      assert.strictEqual(fake.listCalls.length, 2, "no retry before the doubled delay")
      yield* TestClock.adjust(1)
      yield* waitUntil("third list", () => fake.listCalls.length === 3)
      // list succeeds, the watch delivers an event (success) then fails: back to attempt 1
      yield* waitUntil("retrying again", () => states.length === 5)
      assert.deepStrictEqual(states.map((s) => s._tag), ["Connecting", "Retrying", "Retrying", "Connected", "Retrying"])
      assert.deepInclude(states[4], { _tag: "Retrying", attempt: 1, nextRetryMs: 1000 })
      const last = states[4] as Extract<WatchState, { _tag: "Retrying" }>
      assert.strictEqual(last.lastError.reason, "Unavailable")
      yield* TestClock.adjust(1000)
      // an Unavailable watch resumes from the last version seen, without relisting
      yield* waitUntil("resumed watch", () => fake.watchCalls.length === 2)
      assert.strictEqual(fake.watchCalls[1].resourceVersion, "11")
      yield* waitUntil("connected", () => states.length === 6)
      assert.strictEqual(states[5]._tag, "Connected")
      assert.strictEqual(fake.listCalls.length, 3)
    }))

  it.effect("after a lost connection it resumes from the last version; a Gone then (compacted meanwhile) relists", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [
          Effect.succeed({ items: [pod("a", "5")], resourceVersion: "10" }),
          Effect.succeed({ items: [pod("a", "40")], resourceVersion: "41" })
        ],
        watches: [
          // the API server goes away mid-watch
          Stream.make<Array<WatchEvent>>({ type: "OPENED" }, { type: "MODIFIED", object: pod("a", "12") }).pipe(
            Stream.concat(Stream.fail(kubeError("Unavailable")))
          ),
          // still down
          Stream.fail(kubeError("Timeout")),
          // up, but its RBAC caches not synced yet
          Stream.fail(kubeError("Forbidden")),
          // back, but version 12 was compacted while it was down
          Stream.make<Array<WatchEvent>>({ type: "OPENED" }).pipe(Stream.concat(Stream.fail(kubeError("Gone"))))
        ]
      })
      const { items, states } = yield* start(fake.client, { schedule: noJitter })
      yield* waitUntil("first failure", () => states.length === 3)
      assert.deepStrictEqual(states.map((s) => s._tag), ["Connecting", "Connected", "Retrying"])
      yield* TestClock.adjust(1000)
      yield* waitUntil("second failure", () => states.length === 4)
      assert.deepInclude(states[3], { _tag: "Retrying", attempt: 2, nextRetryMs: 2000 })
      assert.deepStrictEqual(fake.watchCalls.map((w) => w.resourceVersion), ["10", "12"])
      assert.strictEqual(fake.listCalls.length, 1, "no relist while the server is unreachable")
      yield* TestClock.adjust(2000)
      yield* waitUntil("third failure", () => states.length === 5)
      assert.deepInclude(states[4], { _tag: "Retrying", attempt: 3, nextRetryMs: 4000 })
      assert.strictEqual(fake.listCalls.length, 1, "no relist after a Forbidden either")
      yield* TestClock.adjust(4000)
      yield* waitUntil("relist after Gone", () => fake.watchCalls.length === 5)
      assert.deepStrictEqual(fake.watchCalls.map((w) => w.resourceVersion), ["10", "12", "12", "12", "41"])
      assert.strictEqual(fake.listCalls.length, 2)
      assert.deepStrictEqual(items, [
        { _tag: "Synced", items: [pod("a", "5")], resourceVersion: "10" },
        { _tag: "Upsert", object: pod("a", "12") },
        { _tag: "Synced", items: [pod("a", "40")], resourceVersion: "41" }
      ])
      assert.deepStrictEqual(states.map((s) => s._tag), ["Connecting", "Connected", "Retrying", "Retrying", "Retrying", "Connected"])
    }))

  it.effect("after an Invalid or unexpected watch failure it relists rather than resuming", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [
          Effect.succeed({ items: [], resourceVersion: "10" }),
          Effect.succeed({ items: [], resourceVersion: "20" }),
          Effect.succeed({ items: [], resourceVersion: "30" })
        ],
        watches: [Stream.fail(kubeError("Invalid")), Stream.fail(kubeError("Unknown"))]
      })
      yield* start(fake.client, { schedule: noJitter })
      yield* settle
      yield* TestClock.adjust(1000)
      yield* waitUntil("second list", () => fake.listCalls.length === 2)
      yield* TestClock.adjust(2000)
      yield* waitUntil("third list", () => fake.listCalls.length === 3)
      assert.deepStrictEqual(fake.watchCalls.map((w) => w.resourceVersion), ["10", "20", "30"])
    }))

  it.effect("the default schedule starts near 1s with jitter and is capped near 5 minutes", () =>
    Effect.gen(function*() {
      const failures = Array.from({ length: 12 }, () => Effect.fail(kubeError("Unavailable")))
      const fake = makeFake({ lists: failures, watches: [] })
      const { states } = yield* start(fake.client)
      const delays: Array<number> = []
      for (let i = 1; i <= 12; i++) {
        yield* waitUntil(`attempt ${i}`, () => states.length === i + 1)
        const state = states[i] as Extract<WatchState, { _tag: "Retrying" }>
        assert.strictEqual(state.attempt, i)
        delays.push(state.nextRetryMs)
        if (i < 12) {
          yield* TestClock.adjust(state.nextRetryMs - 1)
          yield* settle
          assert.strictEqual(fake.listCalls.length, i)
          yield* TestClock.adjust(1)
          yield* waitUntil(`list ${i + 1}`, () => fake.listCalls.length === i + 1)
        }
      }
      assert.isTrue(delays[0] >= 800 && delays[0] <= 1200, `first delay ${delays[0]}`)
      assert.isTrue(delays[1] >= 1600 && delays[1] <= 2400, `second delay ${delays[1]}`)
      for (const delay of delays) assert.isTrue(delay <= 360_000, `delay ${delay} above the cap`)
      assert.isTrue(delays[11] >= 240_000, `capped delay ${delays[11]}`)
    }))

  it.effect("a hung list fails the attempt with Timeout after the open timeout, then retries", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [Effect.never, Effect.succeed({ items: [pod("a", "1")], resourceVersion: "10" })],
        watches: []
      })
      const { items, states } = yield* start(fake.client, { schedule: noJitter })
      yield* settle
      assert.deepStrictEqual(states.map((s) => s._tag), ["Connecting"])
      yield* TestClock.adjust("29 seconds")
      yield* settle
      assert.strictEqual(states.length, 1)
      yield* TestClock.adjust("1 second")
      yield* waitUntil("timed out", () => states.length === 2)
      const retrying = states[1] as Extract<WatchState, { _tag: "Retrying" }>
      assert.strictEqual(retrying._tag, "Retrying")
      assert.strictEqual(retrying.lastError.reason, "Timeout")
      assert.strictEqual(retrying.lastError.verb, "list")
      assert.strictEqual(retrying.lastError.cluster, "east")
      yield* TestClock.adjust("1 second")
      yield* waitUntil("synced", () => items.length === 1)
      assert.strictEqual(items[0]._tag, "Synced")
      assert.strictEqual(states[2]._tag, "Connected")
    }))

  it.effect("a hung cluster does not block a watch on another", () =>
    Effect.gen(function*() {
      const hung = makeFake({ lists: [], watches: [] })
      const healthy = makeFake({ lists: [Effect.succeed({ items: [], resourceVersion: "1" })], watches: [] })
      const a = yield* start(hung.client)
      const b = yield* start(healthy.client)
      yield* waitUntil("healthy synced", () => b.items.length === 1)
      assert.strictEqual(a.items.length, 0)
    }))

  it.effect("restarts a watch that stayed silent past the idle timeout, from the same resourceVersion", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [Effect.succeed({ items: [], resourceVersion: "10" })],
        watches: [Stream.never]
      })
      yield* start(fake.client, { idleTimeout: "1 minute" })
      yield* waitUntil("first watch", () => fake.watchCalls.length === 1)
      yield* TestClock.adjust("59 seconds")
      yield* settle
      assert.strictEqual(fake.watchCalls.length, 1)
      yield* TestClock.adjust("1 second")
      yield* waitUntil("second watch", () => fake.watchCalls.length === 2)
      assert.strictEqual(fake.watchCalls[1].resourceVersion, "10")
      assert.strictEqual(fake.listCalls.length, 1)
    }))

  it.effect("the idle timeout counts from the last event, bookmarks included", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [Effect.succeed({ items: [], resourceVersion: "10" })],
        watches: [
          Stream.fromEffectSchedule(
            Effect.succeed<WatchEvent>({ type: "BOOKMARK", resourceVersion: "11" }),
            Schedule.spaced("40 seconds")
          )
        ]
      })
      yield* start(fake.client, { idleTimeout: "1 minute" })
      yield* waitUntil("first watch", () => fake.watchCalls.length === 1)
      for (let i = 0; i < 6; i++) {
        yield* TestClock.adjust("40 seconds")
        yield* settle
      }
      assert.strictEqual(fake.watchCalls.length, 1)
    }))

  it.effect("Unauthorized and Forbidden are retried and reported through state", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [
          Effect.fail(kubeError("Unauthorized")),
          Effect.fail(kubeError("Forbidden")),
          Effect.succeed({ items: [], resourceVersion: "1" })
        ],
        watches: []
      })
      const { states, items } = yield* start(fake.client, { schedule: noJitter })
      yield* waitUntil("first failure", () => states.length === 2)
      yield* TestClock.adjust("1 second")
      yield* waitUntil("second failure", () => states.length === 3)
      yield* TestClock.adjust("2 seconds")
      yield* waitUntil("synced", () => items.length === 1)
      const reasons = states.flatMap((s) => (s._tag === "Retrying" ? [s.lastError.reason] : []))
      assert.deepStrictEqual(reasons, ["Unauthorized", "Forbidden"])
      assert.deepStrictEqual(states.map((s) => s._tag), ["Connecting", "Retrying", "Retrying", "Connected"])
    }))

  it.effect("a defect in the client is treated as a failure, not the end of the stream", () =>
    Effect.gen(function*() {
      const fake = makeFake({
        lists: [Effect.die(new Error("boom")), Effect.succeed({ items: [], resourceVersion: "1" })],
        watches: []
      })
      const { states, items } = yield* start(fake.client, { schedule: noJitter })
      yield* waitUntil("failure", () => states.length === 2)
      const retrying = states[1] as Extract<WatchState, { _tag: "Retrying" }>
      assert.strictEqual(retrying.lastError.reason, "Unknown")
      yield* TestClock.adjust("1 second")
      yield* waitUntil("synced", () => items.length === 1)
    }))
})
