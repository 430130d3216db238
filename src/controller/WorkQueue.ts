/**
 * A work queue keyed by workflow, with Kubernetes workqueue semantics (client-go
 * `util/workqueue`: `RateLimitingInterface` over a delaying queue):
 *
 * - a key is queued at most once, however often it is added;
 * - a key added while a worker holds it is processed again after that worker
 *   is done, never by two workers at once. This is what keeps reconciles of
 *   one workflow sequential while different workflows run in parallel;
 * - `addAfter` wakes a key later without blocking anyone. Pending wake-ups
 *   live in one priority queue served by one timer fibre (never a fibre per
 *   key); a key has at most one pending wake-up, the earliest asked for;
 * - `addRateLimited` is `addAfter` with the larger of two delays: a per-key
 *   exponential backoff (5 ms doubling per requeue up to 1000 s) that
 *   `forget` resets once the key succeeds, and an overall token bucket
 *   (10 per second, bursts of 100) so that many failing keys cannot hammer
 *   the API servers together. As in client-go, both are charged on every
 *   call, and a rate-limited wake-up loses to an earlier pending one.
 *
 * Time comes from Effect's Clock (TestClock in tests), never from timers of
 * the host. Closing the scope the queue was made in stops its timer, drops
 * pending wake-ups and turns later adds into no-ops; workers forked by `run`
 * end with their own scope (or when the queue's scope closes, whichever is
 * first).
 */
import { Clock, Context, Duration, Effect, FiberHandle, Latch, Layer, Queue, Scope } from "effect"

export interface WorkQueueShape {
  /** Queues `key` now (or marks it for another round when a worker holds it). */
  readonly add: (key: string) => Effect.Effect<void>
  /** Queues `key` after `delay`; an earlier pending wake-up of the key wins, a later one is dropped. */
  readonly addAfter: (key: string, delay: Duration.Input) => Effect.Effect<void>
  /**
   * Queues `key` after its next backoff (doubling per call until `forget`),
   * or later when the overall token bucket is empty. For failed reconciles.
   */
  readonly addRateLimited: (key: string) => Effect.Effect<void>
  /** Resets the backoff of `key` (after it was processed successfully). Pending wake-ups stay. */
  readonly forget: (key: string) => Effect.Effect<void>
  /** How many times `key` was rate-limited since its last `forget`. */
  readonly numRequeues: (key: string) => Effect.Effect<number>
  /** Runs `process` for keys with `workers` fibres until the scope closes. */
  readonly run: (
    workers: number,
    process: (key: string) => Effect.Effect<void>
  ) => Effect.Effect<void, never, Scope.Scope>
  /** Keys ready for a worker (not those being processed or waiting for a delay). */
  readonly depth: Effect.Effect<number>
  /** Keys waiting for a delayed wake-up. */
  readonly delayed: Effect.Effect<number>
}

export interface WorkQueueOptions {
  /** First backoff of `addRateLimited`, doubled per requeue (default 5 ms). */
  readonly baseDelay?: Duration.Input
  /** Largest backoff of `addRateLimited` (default 1000 s). */
  readonly maxDelay?: Duration.Input
  /** Token bucket refill per second shared by all keys (default 10; `Infinity` turns it off). */
  readonly qps?: number
  /** Token bucket size (default 100). */
  readonly burst?: number
  /** Called when a worker takes `key`, with the time since it was added (queue latency). */
  readonly onTake?: (key: string, waitedMs: number) => Effect.Effect<void>
  /** Called when a worker is done with `key`, with the time `process` took (work duration). */
  readonly onDone?: (key: string, workedMs: number) => Effect.Effect<void>
}

/** A pending wake-up; `index` is its place in the heap, kept current by the heap. */
interface Wakeup {
  readonly key: string
  due: number
  index: number
}

/** A binary min-heap of wake-ups by due time, with decrease-key. */
class WakeupHeap {
  private readonly items: Array<Wakeup> = []

  get size(): number {
    return this.items.length
  }

  peek(): Wakeup | undefined {
    return this.items[0]
  }

  push(item: Wakeup): void {
    item.index = this.items.length
    this.items.push(item)
    this.up(item.index)
  }

  /** Moves `item` towards the top after its due time was made earlier. */
  decreased(item: Wakeup): void {
    this.up(item.index)
  }

  pop(): Wakeup | undefined {
    const items = this.items
    const top = items[0]
    if (top === undefined) return undefined
    const last = items.pop()!
    if (items.length > 0) {
      items[0] = last
      last.index = 0
      this.down(0)
    }
    return top
  }

  clear(): void {
    this.items.length = 0
  }

  private up(i: number): void {
    const items = this.items
    const item = items[i]!
    while (i > 0) {
      const parentIndex = (i - 1) >> 1
      const parent = items[parentIndex]!
      if (parent.due <= item.due) break
      items[i] = parent
      parent.index = i
      i = parentIndex
    }
    items[i] = item
    item.index = i
  }

  private down(i: number): void {
    const items = this.items
    const n = items.length
    const item = items[i]!
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && items[right]!.due < items[left]!.due ? right : left
      if (items[child]!.due >= item.due) break
      items[i] = items[child]!
      items[i]!.index = i
      i = child
    }
    items[i] = item
    item.index = i
  }
}

const millisOf = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

/** The queue with `options`; its timer runs until the scope closes. */
export const makeWith = (options: WorkQueueOptions = {}): Effect.Effect<WorkQueueShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const baseDelay = millisOf(options.baseDelay ?? "5 millis")
    const maxDelay = millisOf(options.maxDelay ?? "1000 seconds")
    const qps = options.qps ?? 10
    const burst = options.burst ?? 100
    if (!(baseDelay >= 0) || !(maxDelay >= baseDelay) || !(qps > 0) || !(burst >= 1)) {
      return yield* Effect.die(
        new Error(`WorkQueue: invalid options baseDelay=${baseDelay} maxDelay=${maxDelay} qps=${qps} burst=${burst}`)
      )
    }
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()

    const ready = yield* Queue.unbounded<string>()
    const queued = new Set<string>()
    const processing = new Set<string>()
    const dirty = new Set<string>()
    /** When each queued or dirty key was first added since its last take (queue latency). */
    const addedAt = new Map<string, number>()
    let closed = false

    const addUnsafe = (key: string): void => {
      if (closed) return
      if (processing.has(key)) {
        if (!dirty.has(key)) {
          dirty.add(key)
          addedAt.set(key, now())
        }
        return
      }
      if (queued.has(key)) return
      queued.add(key)
      if (!addedAt.has(key)) addedAt.set(key, now())
      Queue.offerUnsafe(ready, key)
    }

    // Delayed adds. The sleeper fibre sleeps until the earliest wake-up, adds
    // every key that is due and sleeps again; it ends when nothing waits. The
    // timer fibre (re)starts it when a wake-up earlier than the one it sleeps
    // towards arrives: adds only open a latch, so a burst of adds costs one
    // restart, and firing keys costs no fibre at all.
    const heap = new WakeupHeap()
    const wakeups = new Map<string, Wakeup>()
    /** The due time the sleeper sleeps towards; undefined when it is not running. */
    let sleepingUntil: number | undefined = undefined
    const restart = yield* Latch.make(false)

    const fireDue = (at: number): void => {
      for (let top = heap.peek(); top !== undefined && top.due <= at; top = heap.peek()) {
        heap.pop()
        wakeups.delete(top.key)
        addUnsafe(top.key)
      }
    }

    const sleeper = Effect.gen(function*() {
      for (;;) {
        const at = now()
        fireDue(at)
        const top = heap.peek()
        if (top === undefined) {
          sleepingUntil = undefined
          return
        }
        sleepingUntil = top.due
        yield* Effect.sleep(Duration.millis(top.due - at))
      }
    })

    const sleeperHandle = yield* FiberHandle.make<void>()
    yield* Effect.forkScoped(Effect.forever(
      Effect.gen(function*() {
        yield* restart.await
        restart.closeUnsafe()
        yield* FiberHandle.run(sleeperHandle, sleeper)
      })
    ))

    const addAfterUnsafe = (key: string, ms: number): void => {
      if (closed) return
      if (!(ms > 0)) return addUnsafe(key)
      const due = now() + ms
      const existing = wakeups.get(key)
      if (existing !== undefined) {
        if (existing.due <= due) return
        existing.due = due
        heap.decreased(existing)
      } else {
        const wakeup: Wakeup = { key, due, index: 0 }
        wakeups.set(key, wakeup)
        heap.push(wakeup)
      }
      if (sleepingUntil === undefined || due < sleepingUntil) restart.openUnsafe()
    }

    // client-go's DefaultControllerRateLimiter: the larger of a per-key
    // exponential backoff and an overall token bucket (golang.org/x/time/rate
    // semantics: every call takes a token, going into debt when the bucket is
    // empty, and waits until its token would have been refilled).
    const failures = new Map<string, number>()
    let tokens = burst
    let refilledAt: number | undefined = undefined

    const backoffUnsafe = (key: string): number => {
      const n = failures.get(key) ?? 0
      failures.set(key, n + 1)
      // 2^62 keeps the product finite (and 0 for a zero base) however often a key failed.
      return Math.min(baseDelay * Math.pow(2, Math.min(n, 62)), maxDelay)
    }

    const bucketDelayUnsafe = (): number => {
      if (qps === Infinity) return 0
      const at = now()
      if (refilledAt !== undefined) tokens = Math.min(burst, tokens + (at - refilledAt) * qps / 1000)
      refilledAt = at
      tokens -= 1
      return tokens >= 0 ? 0 : -tokens * 1000 / qps
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        heap.clear()
        wakeups.clear()
        queued.clear()
        dirty.clear()
        addedAt.clear()
        Queue.shutdownUnsafe(ready)
      })
    )

    const done = (key: string, takenAt: number) =>
      Effect.suspend(() => {
        processing.delete(key)
        if (dirty.delete(key)) addUnsafe(key)
        return options.onDone ? options.onDone(key, now() - takenAt) : Effect.void
      })

    // A worker interrupted between taking a key and starting on it would leave
    // the key marked queued; workers are only interrupted when their scope
    // closes, when the queue is going away too, so no mask (it costs a third
    // of the throughput).
    const worker = (process: (key: string) => Effect.Effect<void>) => {
      const handle = (key: string): Effect.Effect<void> => {
        const takenAt = now()
        const waited = takenAt - (addedAt.get(key) ?? takenAt)
        queued.delete(key)
        addedAt.delete(key)
        processing.add(key)
        const work = options.onTake
          ? Effect.andThen(options.onTake(key, waited), Effect.suspend(() => process(key)))
          : Effect.suspend(() => process(key))
        return Effect.ensuring(work, done(key, takenAt))
      }
      return Effect.forever(Effect.flatMap(Queue.take(ready), handle))
    }

    const run = (workers: number, process: (key: string) => Effect.Effect<void>) =>
      Effect.gen(function*() {
        for (let i = 0; i < workers; i++) {
          yield* Effect.forkScoped(worker(process))
        }
      })

    return {
      add: (key) => Effect.sync(() => addUnsafe(key)),
      addAfter: (key, delay) => Effect.sync(() => addAfterUnsafe(key, millisOf(delay))),
      addRateLimited: (key) =>
        Effect.sync(() => {
          if (closed) return
          const backoff = backoffUnsafe(key)
          addAfterUnsafe(key, Math.max(backoff, bucketDelayUnsafe()))
        }),
      forget: (key) => Effect.sync(() => void failures.delete(key)),
      numRequeues: (key) => Effect.sync(() => failures.get(key) ?? 0),
      run,
      depth: Effect.sync(() => queued.size),
      delayed: Effect.sync(() => heap.size)
    } satisfies WorkQueueShape
  })

/** The queue with client-go's defaults; its timer runs until the scope closes. */
export const make: Effect.Effect<WorkQueueShape, never, Scope.Scope> = makeWith()

export class WorkQueue extends Context.Service<WorkQueue, WorkQueueShape>()("flotilla/controller/WorkQueue") {
  static readonly make = makeWith
  /** The queue as a scoped layer: its timer stops when the layer is released. */
  static readonly layer = (options: WorkQueueOptions = {}): Layer.Layer<WorkQueue> =>
    Layer.effect(WorkQueue, makeWith(options))
}
