import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Fiber, Ref } from "effect"
import { TestClock } from "effect/testing"
import * as LeaderElection from "../../src/controller/LeaderElection.js"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const rules = [{ verbs: ["*" as const], resources: ["leases" as const] }]

const year = 365 * 24 * 3600 * 1000
const micro = (ms: number) => new Date(ms).toISOString().replace("Z", "000Z")

/** A holder on another node whose clock reads `skewMs` off ours: what it writes is its own time. */
const skewedHolder = (admin: KubeClientShape, identity: string, skewMs: number) => ({
  acquire: Effect.gen(function*() {
    const now = (yield* Clock.currentTimeMillis) + skewMs
    yield* admin.create("leases", "argo", {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "workflow-controller", namespace: "argo" },
      spec: { holderIdentity: identity, leaseDurationSeconds: 15, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 }
    })
  }),
  renew: Effect.gen(function*() {
    const now = (yield* Clock.currentTimeMillis) + skewMs
    const lease = yield* admin.get("leases", "argo", "workflow-controller")
    yield* admin.replace("leases", "argo", { ...lease, spec: { ...(lease["spec"] as object), renewTime: micro(now) } })
  })
})

const holderOf = (admin: KubeClientShape) =>
  admin.get("leases", "argo", "workflow-controller").pipe(
    Effect.map((lease) => lease["spec"] as { holderIdentity: string; leaseTransitions: number })
  )

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

  for (const [label, skew] of [["far past", -20 * year], ["far future", 20 * year]] as const) {
    it.effect(`a holder whose clock is in the ${label} keeps the lease while it renews, and loses it leaseDuration after its last renewal`, () =>
      Effect.gen(function*() {
        const kube = yield* InMemoryKube
        yield* kube.addCluster("main")
        yield* kube.ensureNamespace("main", "argo")
        yield* kube.addIdentity("main", { name: "b", token: "b", rules })
        const admin = kube.adminClient("main")
        const holder = skewedHolder(admin, "x", skew)
        yield* holder.acquire
        const started = yield* Deferred.make<void>()
        const b = yield* LeaderElection.run(
          kube.clientFor("main", "b"),
          { namespace: "argo", name: "workflow-controller", identity: "b" },
          Deferred.succeed(started, undefined)
        ).pipe(Effect.forkChild)

        // Renewals between b's polls (b polls every 5 s from 0, x renews at 2.5 s, 7.5 s, ...).
        yield* TestClock.adjust("2500 millis")
        for (let i = 0; i < 24; i++) {
          yield* holder.renew
          yield* TestClock.adjust("5 seconds")
        }
        assert.isFalse(yield* Deferred.isDone(started), "took over a lease its holder kept renewing")
        assert.strictEqual((yield* holderOf(admin)).holderIdentity, "x")

        // Now 122.5 s. x's last renewal was at 117.5 s; b first saw that record at its 120 s poll.
        yield* TestClock.adjust("11500 millis") // 134 s: b's poll at 130 s still found the lease valid
        assert.isFalse(yield* Deferred.isDone(started), "took over before leaseDuration had passed since the last observed change")
        yield* TestClock.adjust("1 second") // 135 s = 120 s + leaseDuration: b's poll takes over
        assert.isTrue(yield* Deferred.isDone(started), "no takeover leaseDuration after the last observed change")
        const spec = yield* holderOf(admin)
        assert.strictEqual(spec.holderIdentity, "b")
        assert.strictEqual(spec.leaseTransitions, 1)
        yield* Fiber.interrupt(b)
      }).pipe(Effect.provide(InMemoryKube.layer)))
  }

  it.effect("a newcomer waits leaseDuration of its own time even for a lease whose renewTime is long past", () =>
    Effect.gen(function*() {
      const kube = yield* InMemoryKube
      yield* kube.addCluster("main")
      yield* kube.ensureNamespace("main", "argo")
      yield* kube.addIdentity("main", { name: "b", token: "b", rules })
      yield* skewedHolder(kube.adminClient("main"), "x", -20 * year).acquire
      const started = yield* Deferred.make<void>()
      const b = yield* LeaderElection.run(
        kube.clientFor("main", "b"),
        { namespace: "argo", name: "workflow-controller", identity: "b" },
        Deferred.succeed(started, undefined)
      ).pipe(Effect.forkChild)
      yield* TestClock.adjust("10 seconds")
      assert.isFalse(yield* Deferred.isDone(started))
      yield* TestClock.adjust("5 seconds")
      yield* Deferred.await(started)
      yield* Fiber.interrupt(b)
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a restarted replica with the holder's identity takes its lease back at once", () =>
    Effect.gen(function*() {
      const kube = yield* InMemoryKube
      yield* kube.addCluster("main")
      yield* kube.ensureNamespace("main", "argo")
      yield* kube.addIdentity("main", { name: "a", token: "a", rules })
      yield* skewedHolder(kube.adminClient("main"), "a", 0).acquire
      const started = yield* Deferred.make<void>()
      const a = yield* LeaderElection.run(
        kube.clientFor("main", "a"),
        { namespace: "argo", name: "workflow-controller", identity: "a" },
        Deferred.succeed(started, undefined)
      ).pipe(Effect.forkChild)
      yield* Deferred.await(started)
      const spec = yield* holderOf(kube.adminClient("main"))
      assert.strictEqual(spec.holderIdentity, "a")
      assert.strictEqual(spec.leaseTransitions, 0)
      yield* Fiber.interrupt(a)
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
