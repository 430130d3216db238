/**
 * The finalizer lease as a scoped resource: released when the workflow is
 * done, kept when the controller stops, and never holding the controller's
 * shutdown hostage to a remote cluster that does not answer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Scope } from "effect"
import * as FinalizerLease from "../../src/controller/FinalizerLease.js"

const recordingHooks = (release: (key: string) => Effect.Effect<void>) => {
  const events: Array<string> = []
  const hooks: FinalizerLease.LeaseHooks = {
    acquire: (key) => Effect.sync(() => void events.push(`acquire ${key}`)),
    release: (key) => Effect.sync(() => void events.push(`release ${key}`)).pipe(Effect.andThen(release(key)))
  }
  return { events, hooks }
}

describe("FinalizerLease", () => {
  it.effect("ending a lease runs its release once", () =>
    Effect.gen(function*() {
      const released = yield* Deferred.make<void>()
      const { events, hooks } = recordingHooks(() => Deferred.succeed(released, undefined).pipe(Effect.asVoid))
      const leases = yield* FinalizerLease.make(hooks)
      yield* leases.hold("ns/wf")
      yield* leases.hold("ns/wf")
      assert.isTrue(yield* leases.isHeld("ns/wf"))
      yield* leases.end("ns/wf")
      yield* Deferred.await(released)
      assert.deepStrictEqual(events, ["acquire ns/wf", "release ns/wf"])
    }).pipe(Effect.scoped))

  it.effect("stopping the controller keeps the finalizer: no release runs", () =>
    Effect.gen(function*() {
      const { events, hooks } = recordingHooks(() => Effect.void)
      const scope = yield* Scope.make()
      const leases = yield* FinalizerLease.make(hooks).pipe(Scope.provide(scope))
      yield* leases.hold("ns/wf")
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(events, ["acquire ns/wf"])
    }))

  it.effect("stopping while a release waits on an unreachable cluster returns: the release is interrupted", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      // A release that retries for ever (a remote cluster that never answers).
      const { events, hooks } = recordingHooks(() =>
        Deferred.succeed(started, undefined).pipe(
          Effect.andThen(Effect.never),
          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
        )
      )
      const scope = yield* Scope.make()
      const leases = yield* FinalizerLease.make(hooks).pipe(Scope.provide(scope))
      yield* leases.hold("ns/wf")
      yield* leases.end("ns/wf")
      yield* Deferred.await(started)
      // Without an interruptible release this never returns (the test times out).
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* Deferred.isDone(interrupted))
      assert.deepStrictEqual(events, ["acquire ns/wf", "release ns/wf"])
    }))
})
