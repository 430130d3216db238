import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { boundedBy } from "../../src/controller/RequestTimeout.js"

describe("RequestTimeout", () => {
  it.effect("turns a call that does not answer in time into a transient Timeout naming the call", () =>
    Effect.gen(function*() {
      const bounded = boundedBy(Duration.seconds(30))
      const fiber = yield* bounded(Effect.never, { cluster: "east", verb: "delete", resource: "pods", namespace: "ns", name: "p" }).pipe(
        Effect.flip,
        Effect.forkChild
      )
      yield* TestClock.adjust("29 seconds")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason, "Timeout")
      assert.deepStrictEqual([error.cluster, error.verb, error.namespace, error.name], ["east", "delete", "ns", "p"])
    }))

  it.effect("passes an answer through", () =>
    Effect.gen(function*() {
      const answer = yield* boundedBy(Duration.seconds(1))(Effect.succeed(42), { cluster: "east", verb: "get", resource: "pods" })
      assert.strictEqual(answer, 42)
    }))
})
