/**
 * A work queue keyed by workflow, with Kubernetes workqueue semantics: a key
 * is queued at most once; a key added while a worker holds it is processed
 * again after that worker is done (never by two workers at once); delayed adds
 * wake it later without blocking anyone. This is what keeps reconciles of one
 * workflow sequential while different workflows run in parallel.
 */
import { Duration, Effect, Queue, Scope } from "effect"

export interface WorkQueue {
  readonly add: (key: string) => Effect.Effect<void>
  readonly addAfter: (key: string, delay: Duration.Input) => Effect.Effect<void>
  /** Runs `process` for keys with `workers` fibres until the scope closes. */
  readonly run: (
    workers: number,
    process: (key: string) => Effect.Effect<void>
  ) => Effect.Effect<void, never, Scope.Scope>
  readonly depth: Effect.Effect<number>
}

export const make: Effect.Effect<WorkQueue, never, Scope.Scope> = Effect.gen(function*() {
  const scope = yield* Effect.scope
  const queue = yield* Queue.unbounded<string>()
  const queued = new Set<string>()
  const processing = new Set<string>()
  const dirty = new Set<string>()
  // The earliest pending wake-up per key; later ones are dropped.
  const timers = new Map<string, number>()

  const add = (key: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (processing.has(key)) {
        dirty.add(key)
        return Effect.void
      }
      if (queued.has(key)) return Effect.void
      queued.add(key)
      return Queue.offer(queue, key).pipe(Effect.asVoid)
    })

  const addAfter = (key: string, delay: Duration.Input): Effect.Effect<void> =>
    Effect.gen(function*() {
      const ms = Duration.toMillis(Duration.fromInputUnsafe(delay))
      if (ms <= 0) return yield* add(key)
      const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      const due = now + ms
      const existing = timers.get(key)
      if (existing !== undefined && existing <= due) return
      timers.set(key, due)
      yield* Effect.sleep(Duration.millis(ms)).pipe(
        Effect.andThen(Effect.suspend(() => {
          if (timers.get(key) === due) timers.delete(key)
          return add(key)
        })),
        Effect.forkIn(scope)
      )
    })

  const worker = (process: (key: string) => Effect.Effect<void>) =>
    Effect.forever(
      Effect.gen(function*() {
        const key = yield* Queue.take(queue)
        queued.delete(key)
        processing.add(key)
        yield* process(key).pipe(
          Effect.ensuring(Effect.suspend(() => {
            processing.delete(key)
            if (dirty.delete(key)) return add(key)
            return Effect.void
          }))
        )
      })
    )

  const run = (workers: number, process: (key: string) => Effect.Effect<void>) =>
    Effect.gen(function*() {
      for (let i = 0; i < workers; i++) {
        yield* Effect.forkScoped(worker(process))
      }
    })

  return { add, addAfter, run, depth: Effect.sync(() => queued.size) }
})
