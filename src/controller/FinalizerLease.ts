/**
 * The workflow finalizer as a scoped resource. While a workflow may own pods
 * outside its own cluster/namespace (where no ownerReference can reach), a
 * lease holds the finalizer `workflows.argoproj.io/multi-cluster` on it:
 *
 *   acquire  = make sure the finalizer is on the Workflow
 *   release  = delete the workflow's remote pods, wait until they are gone,
 *              then remove the finalizer
 *
 * Each lease runs in its own fibre of a FiberMap keyed by workflow. The lease
 * ends (and so releases) when the controller signals `done` for that workflow:
 * it was deleted, or it completed and podGC already removed its pods. If the
 * controller itself stops, the fibre is interrupted and the release is
 * skipped on purpose: the finalizer stays, and the next controller picks the
 * lease up again from the Workflow's finalizer list. That holds for a release
 * already under way too: it retries for as long as a remote cluster does not
 * answer, so it runs interruptibly (a scope finalizer is otherwise
 * uninterruptible, and stopping or losing the leader lease would wait on it
 * forever).
 */
import { Deferred, Effect, Exit, FiberMap, Scope } from "effect"
import { finalizerMultiCluster } from "../util/argoKeys.js"

/** The finalizer a lease holds (`workflows.argoproj.io/multi-cluster`, spelled in util/argoKeys.ts). */
export const finalizerName = finalizerMultiCluster

export interface LeaseHooks {
  /** Puts the finalizer on the workflow (no-op when present). */
  readonly acquire: (key: string) => Effect.Effect<void, unknown>
  /** Deletes remote pods, waits until gone, removes the finalizer. Retries internally until done. */
  readonly release: (key: string) => Effect.Effect<void>
}

export interface FinalizerLeases {
  /** Ensures a lease is held for `key` (starting it if needed). Fails if the finalizer could not be added. */
  readonly hold: (key: string) => Effect.Effect<void, unknown>
  /** Ends the lease of `key`: its release runs in the lease's fibre. */
  readonly end: (key: string) => Effect.Effect<void>
  readonly isHeld: (key: string) => Effect.Effect<boolean>
}

export const make = (hooks: LeaseHooks): Effect.Effect<FinalizerLeases, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberMap.make<string>()
    const done = new Map<string, Deferred.Deferred<void>>()

    const hold = (key: string): Effect.Effect<void, unknown> =>
      Effect.gen(function*() {
        if (yield* FiberMap.has(fibers, key)) return
        const signal = yield* Deferred.make<void>()
        const acquired = yield* Deferred.make<void, unknown>()
        done.set(key, signal)
        const lease = Effect.acquireRelease(
          hooks.acquire(key).pipe(
            Effect.tapError((e) => Deferred.fail(acquired, e)),
            Effect.tap(() => Deferred.succeed(acquired, undefined))
          ),
          (_, exit) =>
            // Interrupted = the controller is stopping: keep the finalizer for the next one.
            Exit.hasInterrupts(exit) ? Effect.void : Effect.interruptible(hooks.release(key))
        ).pipe(
          Effect.andThen(Deferred.await(signal)),
          Effect.scoped,
          Effect.ensuring(Effect.sync(() => {
            if (done.get(key) === signal) done.delete(key)
          })),
          Effect.ignore
        )
        yield* FiberMap.run(fibers, key, lease, { onlyIfMissing: true })
        yield* Deferred.await(acquired)
      })

    const end = (key: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        const signal = done.get(key)
        return signal ? Deferred.succeed(signal, undefined).pipe(Effect.asVoid) : Effect.void
      })

    return { hold, end, isHeld: (key) => FiberMap.has(fibers, key) }
  })
