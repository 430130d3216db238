import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Expectations } from "../../src/controller/Expectations.js"

const pending = (nodeId: string) => ({ nodeId, podName: nodeId, cluster: "c", namespace: "ns", phase: "Pending" as const })

describe("Expectations", () => {
  it.effect("waiting: since is kept within one kind and starts over when the kind changes (quota time is not a cluster's)", () =>
    Effect.gen(function*() {
      const e = yield* Expectations.make()
      assert.strictEqual(yield* e.waiting("u", "n", 1_000, "exceeded quota", "quota"), 1_000)
      assert.strictEqual(yield* e.waiting("u", "n", 900_000, "exceeded quota", "quota"), 1_000)
      assert.strictEqual(yield* e.waiting("u", "n", 901_000, "waiting for cluster: unavailable"), 901_000)
      assert.strictEqual(yield* e.waiting("u", "n", 902_000, "waiting for cluster: unavailable"), 901_000)
      assert.deepStrictEqual((yield* e.waitingOf("u")).get("n"), { since: 901_000, message: "waiting for cluster: unavailable", kind: "cluster" })
      // a create that then works clears it
      yield* e.created("u", "n", pending("n"), undefined, 903_000)
      assert.strictEqual((yield* e.waitingOf("u")).size, 0)
    }))

  it.effect("nextLapse: the earliest expectation's end while any remains; none once all are seen", () =>
    Effect.gen(function*() {
      const e = yield* Expectations.make({ ttlMillis: 60_000 })
      assert.isUndefined(yield* e.nextLapse("u"))
      yield* e.created("u", "a", pending("a"), undefined, 1_000)
      yield* e.created("u", "b", pending("b"), undefined, 5_000)
      assert.strictEqual(yield* e.nextLapse("u"), 61_000)
      // a is seen: b's lapse is next
      yield* e.overlay("u", new Map([["a", { ...pending("a"), phase: "Running" as const }]]), 10_000)
      assert.strictEqual(yield* e.nextLapse("u"), 65_000)
      // b lapses unseen: nothing left to wait for
      const pods = yield* e.overlay("u", new Map(), 70_000)
      assert.isFalse(pods.has("b"))
      assert.isUndefined(yield* e.nextLapse("u"))
    }))
})
