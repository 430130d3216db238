/**
 * WorkQueue benchmark (never a timed unit test), on the live clock:
 *
 * - `workqueue.add`: keys added and processed by 8 workers with an empty body,
 *   per second;
 * - `workqueue.addAfter`: keys added with random delays up to 500 ms (every
 *   add a new earliest half of the time), how late each key was taken
 *   compared with its due time (p50/p99/max) and the heap's memory.
 *
 *   npx tsx bench/workqueue.ts
 *   BENCH_WORKQUEUE_KEYS=200000 npx tsx bench/workqueue.ts
 *
 * Prints one JSON line per benchmark.
 */
import { Clock, Deferred, Effect } from "effect"
import * as WorkQueue from "../src/controller/WorkQueue.js"

const keys = Number(process.env["BENCH_WORKQUEUE_KEYS"] ?? 100_000)

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

const throughput = Effect.gen(function*() {
  const queue = yield* WorkQueue.make
  const done = yield* Deferred.make<void>()
  let processed = 0
  yield* queue.run(8, () => Effect.suspend(() => ++processed === keys ? Deferred.succeed(done, undefined) : Effect.void))
  const started = performance.now()
  for (let i = 0; i < keys; i++) yield* queue.add(`k${i}`)
  yield* Deferred.await(done)
  const seconds = (performance.now() - started) / 1000
  return { name: "workqueue.add", keys, seconds, keysPerSecond: Math.round(keys / seconds) }
}).pipe(Effect.scoped)

const delayed = Effect.gen(function*() {
  const queue = yield* WorkQueue.make
  const done = yield* Deferred.make<void>()
  const due = new Map<string, number>()
  const lateness: Array<number> = []
  yield* queue.run(8, (key) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      lateness.push(now - due.get(key)!)
      return lateness.length === keys ? Deferred.succeed(done, undefined) : Effect.void
    }))
  const rssBefore = process.memoryUsage().rss
  const started = performance.now()
  for (let i = 0; i < keys; i++) {
    const delay = 1 + Math.floor(Math.random() * 500)
    const key = `k${i}`
    due.set(key, (yield* Clock.currentTimeMillis) + delay)
    yield* queue.addAfter(key, delay)
  }
  const addSeconds = (performance.now() - started) / 1000
  const rssMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20
  yield* Deferred.await(done)
  const seconds = (performance.now() - started) / 1000
  lateness.sort((a, b) => a - b)
  return {
    name: "workqueue.addAfter",
    keys,
    addsPerSecond: Math.round(keys / addSeconds),
    seconds,
    latenessP50Ms: percentile(lateness, 0.5),
    latenessP99Ms: percentile(lateness, 0.99),
    latenessMaxMs: lateness[lateness.length - 1],
    rssGrowthMiB: Math.round(rssMiB)
  }
}).pipe(Effect.scoped)

Effect.runPromise(Effect.gen(function*() {
  console.log(JSON.stringify(yield* throughput))
  console.log(JSON.stringify(yield* delayed))
}))
