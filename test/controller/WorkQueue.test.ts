import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as WorkQueue from "../../src/controller/WorkQueue.js"

/** Lets forked fibres run until they block (no clock involved). */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** The id the next fibre will get: fibre ids are one global counter, so differences count forks. */
const nextFiberId = Effect.map(Effect.forkChild(Effect.void), (fiber) => fiber.id + 1)

/** A worker body recording each key with the clock time it was processed at. */
const recorder = () => {
  const seen: Array<readonly [string, number]> = []
  const process = (key: string) => Effect.map(Clock.currentTimeMillis, (at) => void seen.push([key, at]))
  return { seen, process, keys: () => seen.map(([key]) => key) }
}

describe("WorkQueue", () => {
  it.effect("queues a key at most once", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.WorkQueue
      for (const key of ["a", "a", "b", "a", "b"]) yield* queue.add(key)
      assert.strictEqual(yield* queue.depth, 2)
      const { keys, process } = recorder()
      yield* queue.run(2, process)
      yield* settle
      assert.deepStrictEqual(keys(), ["a", "b"])
      assert.strictEqual(yield* queue.depth, 0)
    }).pipe(Effect.provide(WorkQueue.WorkQueue.layer())))

  it.effect("processes a key added while a worker holds it once more afterwards, never twice at once", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.make
      const gate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      let calls = 0
      let inFlight = 0
      let maxInFlight = 0
      yield* queue.run(4, (key) =>
        Effect.gen(function*() {
          assert.strictEqual(key, "a")
          calls++
          inFlight++
          maxInFlight = Math.max(maxInFlight, inFlight)
          if (calls === 1) {
            yield* Deferred.succeed(started, undefined)
            yield* Deferred.await(gate)
          }
          inFlight--
        }))
      yield* queue.add("a")
      yield* Deferred.await(started)
      yield* queue.add("a")
      yield* queue.add("a")
      yield* settle
      // Marked dirty, not queued: the three idle workers must not pick it up.
      assert.strictEqual(yield* queue.depth, 0)
      assert.strictEqual(calls, 1)
      yield* Deferred.succeed(gate, undefined)
      yield* settle
      assert.strictEqual(calls, 2)
      assert.strictEqual(maxInFlight, 1)
      assert.strictEqual(yield* queue.depth, 0)
    }))

  it.effect("addAfter: the earliest pending wake-up of a key wins", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.make
      const { seen, process } = recorder()
      yield* queue.run(1, process)
      yield* queue.addAfter("a", "10 seconds")
      yield* queue.addAfter("a", "5 seconds")
      yield* queue.addAfter("a", "20 seconds")
      assert.strictEqual(yield* queue.delayed, 1)
      yield* TestClock.adjust("4999 millis")
      assert.deepStrictEqual(seen, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(seen, [["a", 5000]])
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(seen, [["a", 5000]])
      assert.strictEqual(yield* queue.delayed, 0)
    }))

  it.effect("addAfter: an earlier key wakes the timer sleeping towards a later one; zero delay adds now", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.make
      const { seen, process } = recorder()
      yield* queue.run(1, process)
      yield* queue.addAfter("late", "1 hour")
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* queue.addAfter("early", "2 seconds")
      yield* queue.addAfter("now", 0)
      yield* settle
      assert.deepStrictEqual(seen, [["now", 1000]])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(seen, [["now", 1000], ["early", 3000]])
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(seen, [["now", 1000], ["early", 3000], ["late", 3_600_000]])
    }))

  it.effect("addAfter: many keys in random order fire once each, at their earliest due time, in order", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.make
      const { seen, process } = recorder()
      yield* queue.run(3, process)
      // A fixed linear congruential sequence: the same "random" order on every run.
      let seed = 12345
      const next = (bound: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31
        return seed % bound
      }
      const earliest = new Map<string, number>()
      for (let i = 0; i < 2000; i++) {
        const key = `k${next(300)}`
        const delay = 1 + next(500)
        earliest.set(key, Math.min(earliest.get(key) ?? Infinity, delay))
        yield* queue.addAfter(key, delay)
        if (i % 100 === 0) yield* settle
      }
      assert.strictEqual(yield* queue.delayed, earliest.size)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(new Map(seen), earliest)
      assert.strictEqual(seen.length, earliest.size)
      assert.deepStrictEqual(seen.map(([, at]) => at), seen.map(([, at]) => at).sort((a, b) => a - b))
    }))

  it.effect("addRateLimited: the backoff doubles per requeue up to maxDelay, and forget resets it", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.makeWith({ baseDelay: "5 millis", maxDelay: "30 millis", qps: Infinity })
      const { seen, process } = recorder()
      yield* queue.run(1, process)
      const expectDelay = (delay: number) =>
        Effect.gen(function*() {
          const start = yield* Clock.currentTimeMillis
          const before = seen.length
          yield* queue.addRateLimited("a")
          yield* TestClock.adjust(delay - 1)
          assert.strictEqual(seen.length, before, `not before ${delay} ms`)
          yield* TestClock.adjust(1)
          assert.deepStrictEqual(seen[before], ["a", start + delay])
        })
      for (const delay of [5, 10, 20, 30, 30]) yield* expectDelay(delay)
      assert.strictEqual(yield* queue.numRequeues("a"), 5)
      assert.strictEqual(yield* queue.numRequeues("b"), 0)
      yield* queue.forget("a")
      assert.strictEqual(yield* queue.numRequeues("a"), 0)
      yield* expectDelay(5)
      yield* expectDelay(10)
    }))

  it.effect("addRateLimited: the default backoff is 5 ms doubling, capped at 1000 s", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.makeWith({ qps: Infinity })
      const { seen, process } = recorder()
      yield* queue.run(1, process)
      const delays: Array<number> = []
      for (let i = 0; i < 30; i++) {
        const start = yield* Clock.currentTimeMillis
        yield* queue.addRateLimited("a")
        yield* TestClock.adjust("1000 seconds")
        delays.push(seen[i]![1] - start)
      }
      assert.deepStrictEqual(delays.slice(0, 5), [5, 10, 20, 40, 80])
      // 5 ms * 2^18 is about 1311 s: capped from the 19th requeue on.
      assert.strictEqual(delays[17], 5 * 2 ** 17)
      assert.deepStrictEqual(delays.slice(18), Array(12).fill(1_000_000))
    }))

  it.effect("addRateLimited: the token bucket spreads a burst at qps, and refills", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.makeWith({ baseDelay: "1 millis", qps: 10, burst: 3 })
      const { seen, process } = recorder()
      yield* queue.run(2, process)
      for (let i = 0; i < 6; i++) yield* queue.addRateLimited(`k${i}`)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(seen, [["k0", 1], ["k1", 1], ["k2", 1], ["k3", 100], ["k4", 200], ["k5", 300]])
      // 1.3 s after the burst the bucket is full again: three more go through at once.
      yield* TestClock.adjust("300 millis")
      seen.length = 0
      for (let i = 6; i < 10; i++) yield* queue.addRateLimited(`k${i}`)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(seen, [["k6", 1301], ["k7", 1301], ["k8", 1301], ["k9", 1400]])
    }))

  it.effect("10,000 delayed keys share one timer: no fibre per key", () =>
    Effect.gen(function*() {
      const queue = yield* WorkQueue.make
      let processed = 0
      yield* queue.run(4, () => Effect.sync(() => void processed++))
      yield* settle
      const n = 10_000

      // Latest first, so that every add is the new earliest and asks the timer to wake.
      const beforeAdds = yield* nextFiberId
      for (let i = n; i > 0; i--) yield* queue.addAfter(`k${i}`, i)
      yield* settle
      const forkedByAdds = (yield* nextFiberId) - beforeAdds - 1
      assert.strictEqual(yield* queue.delayed, n)
      assert.isBelow(forkedByAdds, 100, `${forkedByAdds} fibres forked for ${n} delayed adds`)
      // About 2.5 s here, most of it TestClock waking 10,000 distinct sleeps one by one.
      yield* TestClock.adjust(n)
      assert.strictEqual(processed, n)
      assert.strictEqual(yield* queue.delayed, 0)

      // Firing: TestClock itself forks a couple of fibres per sleep it wakes, so
      // spread the keys over ten due times; a fibre per key would show thousands.
      for (let i = 0; i < n; i++) yield* queue.addAfter(`j${i}`, `${1 + (i % 10)} seconds`)
      yield* settle
      const beforeFiring = yield* nextFiberId
      yield* TestClock.adjust("10 seconds")
      const forkedByFiring = (yield* nextFiberId) - beforeFiring - 1
      assert.strictEqual(processed, 2 * n)
      assert.isBelow(forkedByFiring, 50, `${forkedByFiring} fibres forked to fire ${n} keys`)
    }), 30_000)

  it.effect("onTake and onDone see queue latency and work duration", () =>
    Effect.gen(function*() {
      const taken: Array<readonly [string, number]> = []
      const worked: Array<readonly [string, number]> = []
      const queue = yield* WorkQueue.makeWith({
        onTake: (key, waitedMs) => Effect.sync(() => void taken.push([key, waitedMs])),
        onDone: (key, workedMs) => Effect.sync(() => void worked.push([key, workedMs]))
      })
      yield* queue.add("a")
      yield* TestClock.adjust("3 seconds")
      yield* queue.add("a")
      yield* queue.run(1, () => Effect.sleep("2 seconds"))
      yield* settle
      assert.deepStrictEqual(taken, [["a", 3000]])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(worked, [["a", 2000]])
    }))

  it.effect("closing the scope stops the timer and the workers, and later adds do nothing", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const queue = yield* WorkQueue.make.pipe(Scope.provide(scope))
      const { keys, process } = recorder()
      const holding = yield* Deferred.make<void>()
      let interrupted = false
      yield* queue.run(2, (key) =>
        key === "hold"
          ? Deferred.succeed(holding, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.onInterrupt(() => Effect.sync(() => void (interrupted = true)))
          )
          : process(key)).pipe(Scope.provide(scope))
      yield* queue.add("hold")
      yield* Deferred.await(holding)
      yield* queue.add("b")
      yield* queue.addAfter("later", "1 second")
      yield* queue.addRateLimited("limited")
      yield* settle
      assert.deepStrictEqual(keys(), ["b"])

      yield* Scope.close(scope, Exit.void)
      assert.isTrue(interrupted)
      assert.strictEqual(yield* queue.delayed, 0)
      yield* queue.add("c")
      yield* queue.addAfter("d", "1 second")
      yield* queue.addRateLimited("e")
      yield* TestClock.adjust("1 hour")
      yield* settle
      assert.deepStrictEqual(keys(), ["b"])
      assert.strictEqual(yield* queue.depth, 0)
      assert.strictEqual(yield* queue.delayed, 0)
    }))

  it.effect("workers started in a longer-lived scope end when the queue's scope closes", () =>
    Effect.gen(function*() {
      const queueScope = yield* Scope.make()
      const queue = yield* WorkQueue.make.pipe(Scope.provide(queueScope))
      const workerScope = yield* Scope.make()
      const { keys, process } = recorder()
      yield* queue.run(1, process).pipe(Scope.provide(workerScope))
      yield* queue.add("a")
      yield* settle
      yield* Scope.close(queueScope, Exit.void)
      yield* queue.add("b")
      yield* settle
      assert.deepStrictEqual(keys(), ["a"])
      yield* Scope.close(workerScope, Exit.void)
    }))
})
