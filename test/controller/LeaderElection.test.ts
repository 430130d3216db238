import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Ref } from "effect"
import { TestClock } from "effect/testing"
import * as LeaderElection from "../../src/controller/LeaderElection.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const rules = [{ verbs: ["*" as const], resources: ["leases" as const] }]

describe("LeaderElection", () => {
  it.effect("one leader at a time; a leader that cannot renew stops before the other takes over", () =>
    Effect.gen(function*() {
      const kube = yield* InMemoryKube
      yield* kube.addCluster("main")
      yield* kube.ensureNamespace("main", "argo")
      yield* kube.addIdentity("main", { name: "a", token: "a", rules })
      yield* kube.addIdentity("main", { name: "b", token: "b", rules })
      const leading = yield* Ref.make<ReadonlyArray<string>>([])
      const aStarted = yield* Deferred.make<void>()
      const bStarted = yield* Deferred.make<void>()
      const lead = (who: string, started: Deferred.Deferred<void>) =>
        Effect.acquireRelease(
          Ref.update(leading, (l) => [...l, who]).pipe(Effect.andThen(Deferred.succeed(started, undefined))),
          () => Ref.update(leading, (l) => l.filter((x) => x !== who))
        )
      const options = (identity: string) => ({ namespace: "argo", name: LeaderElection.leaseName(undefined), identity })

      const a = yield* LeaderElection.run(kube.clientFor("main", "a"), options("a"), lead("a", aStarted)).pipe(Effect.forkChild)
      yield* Deferred.await(aStarted)
      const b = yield* LeaderElection.run(kube.clientFor("main", "b"), options("b"), lead("b", bStarted)).pipe(Effect.forkChild)
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(yield* Ref.get(leading), ["a"])
      assert.isFalse(yield* Deferred.isDone(bStarted))

      // a loses its rights: it must stop leading within the renew deadline, and b only takes over after the lease expires.
      yield* kube.revoke("main", "a")
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(a)
      assert.deepStrictEqual(yield* Ref.get(leading), [])
      yield* TestClock.adjust("10 seconds")
      yield* Deferred.await(bStarted)
      assert.deepStrictEqual(yield* Ref.get(leading), ["b"])
      const lease = yield* kube.adminClient("main").get("leases", "argo", "workflow-controller")
      assert.strictEqual((lease["spec"] as { holderIdentity: string }).holderIdentity, "b")
      assert.strictEqual((lease["spec"] as { leaseTransitions: number }).leaseTransitions, 1)
      yield* Fiber.interrupt(b)
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
