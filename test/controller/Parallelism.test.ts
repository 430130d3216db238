/**
 * The configmap's `parallelism` and `namespaceParallelism` (upstream's
 * throttler): workflows over the limit wait Pending with upstream's message
 * and start, in priority then creation order, as running ones complete.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { postponedMessage } from "../../src/controller/Throttler.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { completed, eventually, fast, inMemory, workflow } from "./harness.js"
import { submit } from "./fixtures.js"

const slow = { "flotilla.dev/simulate-duration": "300ms" }
const statusOf = (wf: KubeObject | undefined) => (wf?.["status"] ?? {}) as { phase?: string; message?: string; startedAt?: string; finishedAt?: string }

describe("parallelism", () => {
  it.live("parallelism 1: one workflow runs at a time; the others wait Pending with upstream's message, then run by priority", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wfs = ["first", "second", "third"].map((name) => workflow({ name, annotations: slow }))
        // the last one submitted goes before the second: higher priority
        ;(wfs[2]!["spec"] as Record<string, unknown>)["priority"] = 5
        const { admin, controller } = yield* Embedded.start(Embedded.placementOf(wfs), fast({ configData: { parallelism: "1" } }))
        yield* submit(admin, wfs[0]!)
        yield* eventually("first running", admin.get("workflows", "local", "first").pipe(Effect.map((w) => statusOf(w).phase === "Running" ? w : undefined)))
        yield* submit(admin, wfs[1]!)
        yield* submit(admin, wfs[2]!)
        const waiting = yield* eventually(
          "second postponed",
          admin.get("workflows", "local", "second").pipe(Effect.map((w) => statusOf(w).message === postponedMessage ? w : undefined))
        )
        assert.strictEqual(statusOf(waiting).phase, "Pending")

        const done = [] as Array<KubeObject>
        for (const wf of wfs) done.push((yield* completed(controller, wf))!)
        for (const wf of done) assert.strictEqual(Embedded.phaseOf(wf), "Succeeded")
        const [first, second, third] = done.map(statusOf)
        // never two at once, and third (priority 5) before second
        assert.isAtMost(Date.parse(first!.finishedAt!), Date.parse(third!.startedAt!) + 1000)
        assert.isAtMost(Date.parse(third!.finishedAt!), Date.parse(second!.startedAt!) + 1000)
        assert.isBelow(Date.parse(third!.startedAt!), Date.parse(second!.startedAt!) + 1)
        // once running, the wait's message is gone (upstream clears it)
        for (const status of [first, second, third]) assert.notStrictEqual(status!.message, postponedMessage)
      })
    ), 30_000)

  it.live("namespaceParallelism 1: one per namespace, namespaces side by side", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const a1 = workflow({ name: "a1", namespace_: "team-a", annotations: slow })
        const a2 = workflow({ name: "a2", namespace_: "team-a", annotations: slow })
        const b1 = workflow({ name: "b1", namespace_: "team-b", annotations: slow })
        const { admin, controller } = yield* Embedded.start(Embedded.placementOf([a1, a2, b1]), fast({ configData: { namespaceParallelism: "1" } }))
        yield* submit(admin, a1)
        yield* eventually("a1 running", admin.get("workflows", "team-a", "a1").pipe(Effect.map((w) => statusOf(w).phase === "Running" ? w : undefined)))
        yield* submit(admin, a2)
        yield* submit(admin, b1)
        // b1 runs beside a1; a2 waits for a1
        yield* eventually("b1 running", admin.get("workflows", "team-b", "b1").pipe(Effect.map((w) => statusOf(w).phase === "Running" || statusOf(w).phase === "Succeeded" ? w : undefined)))
        const a2Waiting = yield* admin.get("workflows", "team-a", "a2")
        assert.strictEqual(statusOf(a2Waiting).message, postponedMessage)
        for (const wf of [a1, a2, b1]) assert.strictEqual(Embedded.phaseOf(yield* completed(controller, wf)), "Succeeded")
      })
    ), 30_000)

  it.live("after a restart, the workflows already running count before a waiting one is taken", () =>
    inMemory(() =>
      Effect.gen(function*() {
        // named so that the waiting one comes first in the cache and the resync
        const running = workflow({ name: "zz-running", annotations: { "flotilla.dev/simulate-duration": "1500ms" } })
        const waiting = workflow({ name: "aa-waiting", annotations: slow })
        const placement = Embedded.placementOf([running, waiting])
        const options = fast({ configData: { parallelism: "1" } })
        yield* Embedded.provision(placement, options)
        yield* Embedded.startKubelets(placement, options)
        const admin = (yield* InMemoryKube).adminClient("main")

        const scope = yield* Scope.make()
        yield* Embedded.startController(options).pipe(Scope.provide(scope))
        yield* submit(admin, running)
        yield* eventually("running started", admin.get("workflows", "local", "zz-running").pipe(Effect.map((w) => statusOf(w).phase === "Running" ? w : undefined)))
        yield* Scope.close(scope, Exit.void)

        // submitted while no controller runs: the new controller must not let it in before the running one
        yield* submit(admin, waiting)
        const { controller } = yield* Embedded.startController(options)
        const held = yield* eventually(
          "waiting postponed",
          admin.get("workflows", "local", "aa-waiting").pipe(Effect.map((w) => statusOf(w).message === postponedMessage ? w : undefined))
        )
        assert.strictEqual(statusOf(held).phase, "Pending")
        const first = statusOf(yield* completed(controller, running))
        const second = statusOf(yield* completed(controller, waiting))
        assert.strictEqual(first.phase, "Succeeded")
        assert.strictEqual(second.phase, "Succeeded")
        assert.isAtMost(Date.parse(first.finishedAt!), Date.parse(second.startedAt!) + 1000)
      })
    ), 30_000)
})
