import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Logger, References, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Supervisor } from "../../src/runtime/Supervisor.js"

const captured = () => {
  const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
  const layer = Logger.layer([
    Logger.make((options) => {
      lines.push({ message: options.message, annotations: { ...(options.fiber.getRef(References.CurrentLogAnnotations) ?? {}) } })
    })
  ])
  return { lines, layer }
}

/** Lets forked fibres run until they block. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

describe("Supervisor", () => {
  it.effect("a defect in a component is logged with its name and annotations, and the component restarts with backoff", () => {
    const logs = captured()
    return Effect.gen(function*() {
      const scope = yield* Scope.make()
      const supervisor = yield* Supervisor.make.pipe(Scope.provide(scope))
      const runs = yield* Ref.make(0)
      const settled = yield* Deferred.make<void>()
      yield* supervisor.supervise(
        "informer",
        Effect.gen(function*() {
          const n = yield* Ref.updateAndGet(runs, (x) => x + 1)
          if (n <= 2) return yield* Effect.die(new Error(`boom ${n}`))
          yield* Deferred.succeed(settled, undefined)
          return yield* Effect.never
        }),
        { annotations: { cluster: "cluster-1" }, backoff: "1 second" }
      )
      yield* settle
      assert.strictEqual(yield* Ref.get(runs), 1)
      const down = (yield* supervisor.states).get("informer")
      assert.strictEqual(down?._tag, "Restarting")
      assert.isFalse(yield* supervisor.ready)
      // first restart after 1 s, the second after 2 s more
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Ref.get(runs), 2)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Ref.get(runs), 2, "backoff doubled")
      yield* TestClock.adjust("1 second")
      yield* Deferred.await(settled)
      assert.strictEqual(yield* Ref.get(runs), 3)
      assert.isTrue(yield* supervisor.ready)

      const failures = logs.lines.filter((l) => String(l.message).includes("component failed"))
      assert.lengthOf(failures, 2)
      assert.strictEqual(failures[0]!.annotations["component"], "informer")
      assert.strictEqual(failures[0]!.annotations["cluster"], "cluster-1")
      assert.include(String(failures[0]!.annotations["error"]), "boom 1")

      // Closing the scope interrupts it: not a failure.
      yield* Scope.close(scope, Exit.void)
      assert.lengthOf(logs.lines.filter((l) => String(l.message).includes("component failed")), 2)
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("a component that ends counts as failed; one that ran long enough starts the backoff over", () => {
    const logs = captured()
    return Effect.gen(function*() {
      const supervisor = yield* Supervisor.make
      const runs = yield* Ref.make(0)
      yield* supervisor.supervise(
        "resync",
        Effect.gen(function*() {
          yield* Ref.update(runs, (x) => x + 1)
          yield* Effect.sleep("10 minutes")
        }),
        { backoff: "1 second", stableAfter: "1 minute" }
      )
      yield* settle
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual((yield* supervisor.states).get("resync")?._tag, "Restarting")
      // ran 10 minutes (stable): backoff is the first delay again, every time
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Ref.get(runs), 2)
      yield* TestClock.adjust("10 minutes")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Ref.get(runs), 3)
      assert.isTrue(logs.lines.some((l) => String(l.annotations["error"]).includes("ended although it should run")))
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })

  it.effect("names are unique; the layer form works", () =>
    Effect.gen(function*() {
      const supervisor = yield* Supervisor
      yield* supervisor.supervise("w", Effect.never)
      yield* supervisor.supervise("w", Effect.never)
      assert.deepStrictEqual([...(yield* supervisor.states).keys()], ["w", "w#2"])
      const f = yield* Effect.forkChild(Effect.never)
      yield* Fiber.interrupt(f)
    }).pipe(Effect.provide(Supervisor.layer)))

  it.effect("a component interrupted by anything but its scope closing has failed: logged, restarted", () => {
    const logs = captured()
    return Effect.gen(function*() {
      const supervisor = yield* Supervisor.make
      const runs = yield* Ref.make(0)
      yield* supervisor.supervise(
        "reader",
        Effect.gen(function*() {
          const n = yield* Ref.updateAndGet(runs, (x) => x + 1)
          if (n === 1) return yield* Effect.interrupt
          return yield* Effect.never
        }),
        { backoff: "1 second" }
      )
      yield* settle
      assert.strictEqual((yield* supervisor.states).get("reader")?._tag, "Restarting")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Ref.get(runs), 2)
      assert.isTrue(yield* supervisor.ready)
      assert.lengthOf(logs.lines.filter((l) => String(l.message).includes("component failed")), 1)
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })
})
