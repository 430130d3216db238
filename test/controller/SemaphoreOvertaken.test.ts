/**
 * Semaphore waiters through the Reconciler itself (it merges the limits it reads into its own
 * Map), with rounds the test drives and a queue whose keys are only recorded (no workers):
 * - a limit raised right after the Reconciler's read of it (injected in the controller's client)
 *   queues the waiter again at once, not after the slow recheck;
 * - while the ConfigMap watch is refused (RBAC without list/watch on configmaps), a waiter is
 *   looked at again after 10 s, not after the 5 minutes meant for a working watch.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { TestClock } from "effect/testing"
import { semaphoreRecheckUnwatched } from "../../src/controller/Synchronization.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { reconcilerOnlyWith } from "./reconcilerOnly.js"

const settle = Effect.gen(function*() {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow
})

const semWf = (name: string, created: string): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: "local", creationTimestamp: created },
  spec: {
    entrypoint: "main",
    synchronization: { semaphores: [{ configMapKeyRef: { name: "my-config", key: "workflow" } }] },
    templates: [{ name: "main", container: { image: "busybox", command: ["echo"], args: ["hi"] } }]
  }
})

const statusOf = (wf: KubeObject) => (wf["status"] ?? {}) as { phase?: string; message?: string }

/**
 * The Reconciler's services over the embedded cluster with workflows a (created first) and b
 * waiting for the same semaphore (limit 1); `raiseAfterRead` arms a raise to 2 right after the
 * controller's next read of the ConfigMap. `seen` records every key the work queue hands out.
 */
const setup = (options: { readonly refuseWatch?: boolean } = {}) =>
  Effect.gen(function*() {
    const a = semWf("a", "2025-01-01T00:00:00Z")
    const b = semWf("b", "2025-01-01T00:00:01Z")
    const kube = yield* InMemoryKube
    yield* Embedded.provision(Embedded.placementOf([a, b]))
    const admin = kube.adminClient(Embedded.localClusterName)
    yield* admin.create("configmaps", "local", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "my-config", namespace: "local" }, data: { workflow: "1" } })
    if (options.refuseWatch) {
      for (const verb of ["list", "watch"] as const) yield* kube.failNext(Embedded.localClusterName, verb, "configmaps", "Forbidden", 1_000_000)
    }

    const armed = { raiseAfterRead: false }
    const base = kube.clientFor(Embedded.localClusterName, Embedded.tokens.controller)
    const client: KubeClientShape = {
      ...base,
      get: (kind, namespace, name) =>
        base.get(kind, namespace, name).pipe(Effect.tap(() =>
          kind === "configmaps" && name === "my-config" && armed.raiseAfterRead
            ? Effect.andThen(
              Effect.sync(() => void (armed.raiseAfterRead = false)),
              Effect.andThen(admin.patch("configmaps", "local", "my-config", { data: { workflow: "2" } }), settle)
            )
            : Effect.void
        ))
    }
    const { reconcile, workflows, queue } = yield* reconcilerOnlyWith({ localClient: client })
    const seen: Array<string> = []
    yield* queue.run(1, (key) => Effect.sync(() => void seen.push(key)))

    for (const wf of [a, b]) yield* admin.create("workflows", "local", wf)
    for (const name of ["a", "b"]) {
      for (let i = 0; i < 10_000 && Option.isNone(yield* workflows.get("local", name)); i++) yield* Effect.yieldNow
    }
    yield* settle
    const stored = (name: string) => admin.get("workflows", "local", name).pipe(Effect.map(statusOf))
    yield* reconcile("local/a")
    assert.strictEqual((yield* stored("a")).phase, "Running")
    yield* settle
    seen.length = 0
    return { admin, armed, reconcile, seen, stored }
  })

describe("Reconciler: semaphore waiters are looked at again", () => {
  it.effect("a limit raised between the Reconciler's read and the waiter's commit queues it again at once; it then takes the new place", () =>
    Effect.gen(function*() {
      const { armed, reconcile, seen, stored } = yield* setup()
      armed.raiseAfterRead = true
      yield* reconcile("local/b")
      assert.isFalse(armed.raiseAfterRead, "the Reconciler read the limit")
      const waiting = yield* stored("b")
      assert.strictEqual(waiting.phase, "Pending")
      assert.strictEqual(waiting.message, "Waiting for local/ConfigMap/my-config/workflow lock. Lock status: 0/1")
      yield* settle
      // queued again with the clock where it was: not left for the recheck
      assert.include(seen, "local/b")
      yield* reconcile("local/b")
      assert.strictEqual((yield* stored("b")).phase, "Running")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.effect("while the ConfigMap watch is refused, a waiter is looked at again after 10 s and sees a raised limit", () =>
    Effect.gen(function*() {
      const { admin, reconcile, seen, stored } = yield* setup({ refuseWatch: true })
      yield* reconcile("local/b")
      assert.strictEqual((yield* stored("b")).phase, "Pending")
      yield* settle
      assert.notInclude(seen, "local/b")
      // raised now: no watch sees it
      yield* admin.patch("configmaps", "local", "my-config", { data: { workflow: "2" } })
      yield* settle
      assert.notInclude(seen, "local/b")
      yield* TestClock.adjust(Duration.fromInputUnsafe(semaphoreRecheckUnwatched))
      yield* settle
      assert.include(seen, "local/b", "looked at again after 10 s")
      yield* reconcile("local/b")
      assert.strictEqual((yield* stored("b")).phase, "Running")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})
