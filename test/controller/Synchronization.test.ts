/**
 * The controller's synchronization locks (Synchronization) on the in-memory API: semaphore limits
 * read live from their ConfigMap, a release waking the next waiter through the work queue at once
 * (no clock advances), a raised limit waking waiters, locks taken up from the workflows' status
 * after a restart, a gone workflow releasing everything.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { makeLockTable, semaphoreRecheck, semaphoreRecheckUnwatched, Synchronization } from "../../src/controller/Synchronization.js"
import { Supervisor } from "../../src/runtime/Supervisor.js"
import * as WorkQueue from "../../src/controller/WorkQueue.js"
import { KubeClient } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import type { EngineOutput } from "../../src/workflow/engine/contract.js"
import { reconcile } from "../../src/workflow/engine/reconcile.js"
import { config, T0, workflow } from "../workflow/engine/harness.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { submit } from "./fixtures.js"
import { completed, eventually, fast, inMemory, workflow as harnessWorkflow } from "./harness.js"
import { settingsLayer } from "./services.js"

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/**
 * The service over an in-memory cluster "main" with a namespace `argo`, and a recorder of the keys
 * it queues; its ConfigMap watch runs as long as the test.
 */
const setup = Effect.gen(function*() {
  const kube = yield* InMemoryKube
  yield* kube.addCluster("main")
  yield* kube.ensureNamespace("main", "argo")
  const admin = kube.adminClient("main")
  const queued: Array<string> = []
  const queue = WorkQueue.WorkQueue.of({ ...(yield* WorkQueue.make), add: (key: string) => Effect.sync(() => void queued.push(key)) })
  const services = Layer.mergeAll(settingsLayer(admin), Layer.succeed(KubeClient, admin), Layer.succeed(WorkQueue.WorkQueue, queue), Supervisor.layer)
  const sync = Context.get(yield* Layer.build(Synchronization.layer.pipe(Layer.provide(services))), Synchronization)
  return { admin, queued, sync }
}).pipe(Effect.provide(InMemoryKube.layer))

const container = { image: "busybox", command: ["echo"], args: ["hi"] }
const semWf = (name: string, created = "2025-01-01T00:00:00Z") => {
  const wf = workflow({
    entrypoint: "main",
    synchronization: { semaphores: [{ configMapKeyRef: { name: "my-config", key: "workflow" } }] },
    templates: [{ name: "main", container }]
  }, name)
  return { ...wf, metadata: { ...wf.metadata, creationTimestamp: created } }
}

/** One reconcile as the Reconciler does it: the engine against the locks, with the limits it asks for read. */
const step = (sync: Synchronization["Service"], wf: KubeObject, pods: Map<string, any> = new Map()) =>
  Effect.gen(function*() {
    const key = `${wf.metadata.namespace}/${wf.metadata.name}`
    const run = (limits: ReadonlyMap<string, number | { error: string }>) =>
      sync.run(key, limits, (s) => reconcile({ workflow: wf, pods, taskResults: new Map(), now: T0, config, sync: s }))
    let out: EngineOutput = yield* run(new Map())
    if ((out.sync?.needLimits ?? []).length > 0) out = yield* run(yield* sync.readLimits(key, out.sync!.needLimits))
    return { ...wf, status: out.status } as KubeObject
  })

const phaseOf = (wf: KubeObject) => (wf["status"] as { phase?: string } | undefined)?.phase
const messageOf = (wf: KubeObject) => (wf["status"] as { message?: string } | undefined)?.message

describe("Synchronization (controller)", () => {
  it.effect("a semaphore's limit is read live from its ConfigMap; a raised limit wakes the waiters; a completed holder wakes the next at once", () =>
    Effect.gen(function*() {
      const { admin, queued, sync } = yield* setup
      yield* admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "my-config", namespace: "argo" }, data: { workflow: "1" } })
      let a = yield* step(sync, semWf("a"))
      assert.strictEqual(phaseOf(a), "Running")
      let b = yield* step(sync, semWf("b", "2025-01-01T00:00:01Z"))
      const c = yield* step(sync, semWf("c", "2025-01-01T00:00:02Z"))
      assert.strictEqual(phaseOf(b), "Pending")
      assert.strictEqual(messageOf(b), "Waiting for argo/ConfigMap/my-config/workflow lock. Lock status: 0/1")
      assert.deepStrictEqual((b["status"] as any).synchronization, {
        semaphore: { waiting: [{ semaphore: "argo/ConfigMap/my-config/workflow", holders: ["argo/a"] }] }
      })
      assert.strictEqual(phaseOf(c), "Pending")
      assert.deepStrictEqual(queued, [])

      // the limit is raised to 2: the first waiter is woken when it is read, and takes the place
      yield* admin.patch("configmaps", "argo", "my-config", { data: { workflow: "2" } })
      b = yield* step(sync, b)
      assert.strictEqual(phaseOf(b), "Running")
      assert.deepStrictEqual(queued, ["argo/b"])
      assert.deepStrictEqual((b["status"] as any).synchronization.semaphore.holding, [{ semaphore: "argo/ConfigMap/my-config/workflow", holders: ["argo/b"] }])

      // a completes: its release wakes c through the queue, without the clock moving
      const aPod = Object.keys((a["status"] as any).nodes)[0]!
      a = yield* step(sync, a, new Map([[aPod, { nodeId: aPod, podName: "p", cluster: "main", namespace: "argo", phase: "Succeeded", exitCode: 0 }]]))
      assert.strictEqual(phaseOf(a), "Succeeded")
      assert.isUndefined((a["status"] as any).synchronization)
      assert.deepStrictEqual(queued, ["argo/b", "argo/c"])
      assert.strictEqual(phaseOf(yield* step(sync, c)), "Running")
    }))

  it.effect("a raised limit lets a waiter in at once through the ConfigMap watch: no poll, the clock never moves", () =>
    Effect.gen(function*() {
      const { admin, queued, sync } = yield* setup
      yield* admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "my-config", namespace: "argo" }, data: { workflow: "1" } })
      const a = yield* step(sync, semWf("a"))
      let b = yield* step(sync, semWf("b", "2025-01-01T00:00:01Z"))
      let c = yield* step(sync, semWf("c", "2025-01-01T00:00:02Z"))
      assert.strictEqual(phaseOf(a), "Running")
      assert.strictEqual(phaseOf(b), "Pending")
      assert.strictEqual(phaseOf(c), "Pending")
      yield* settle
      // another ConfigMap, and another key of this one: nobody waits for those
      yield* admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "other", namespace: "argo" }, data: { workflow: "5" } })
      yield* admin.patch("configmaps", "argo", "my-config", { data: { unrelated: "9" } })
      yield* settle
      assert.deepStrictEqual(queued, [])

      const before = yield* Clock.currentTimeMillis
      yield* admin.patch("configmaps", "argo", "my-config", { data: { workflow: "3" } })
      yield* settle
      // both waiters (and only they) are queued by the watch, before any poll could have run
      assert.deepStrictEqual([...queued].sort(), ["argo/b", "argo/c"])
      assert.strictEqual(yield* Clock.currentTimeMillis, before)
      b = yield* step(sync, b)
      c = yield* step(sync, c)
      assert.strictEqual(phaseOf(b), "Running")
      assert.strictEqual(phaseOf(c), "Running")
      assert.strictEqual(yield* Clock.currentTimeMillis, before)
    }))

  it.effect("a lowered limit or a deleted ConfigMap looks at the waiters again; a holder is never taken away", () =>
    Effect.gen(function*() {
      const { admin, queued, sync } = yield* setup
      yield* admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "my-config", namespace: "argo" }, data: { workflow: "2" } })
      const a = yield* step(sync, semWf("a"))
      const x = yield* step(sync, semWf("x", "2025-01-01T00:00:00Z"))
      let b = yield* step(sync, semWf("b", "2025-01-01T00:00:01Z"))
      assert.deepStrictEqual([phaseOf(a), phaseOf(x), phaseOf(b)], ["Running", "Running", "Pending"])
      yield* settle
      yield* admin.patch("configmaps", "argo", "my-config", { data: { workflow: "1" } })
      yield* settle
      assert.deepStrictEqual(queued, ["argo/b"])
      b = yield* step(sync, b)
      assert.strictEqual(phaseOf(b), "Pending")
      assert.match(messageOf(b)!, /^Waiting for argo\/ConfigMap\/my-config\/workflow lock\. Lock status: .*\/1$/)
      // the holders keep their places: a and x still hold
      const state = (b["status"] as any).synchronization.semaphore.waiting[0]
      assert.deepStrictEqual([...state.holders].sort(), ["argo/a", "argo/x"])
      queued.length = 0
      yield* admin.delete("configmaps", "argo", "my-config")
      yield* settle
      assert.deepStrictEqual(queued, ["argo/b"])
      b = yield* step(sync, b)
      assert.strictEqual(phaseOf(b), "Failed")
    }))

  it.effect("a limit raised between a waiter's read and its commit queues it again", () =>
    Effect.gen(function*() {
      const { admin, queued, sync } = yield* setup
      yield* admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "my-config", namespace: "argo" }, data: { workflow: "1" } })
      yield* step(sync, semWf("a"))
      yield* settle
      const b = semWf("b", "2025-01-01T00:00:01Z")
      const run = (limits: ReadonlyMap<string, number | { error: string }>) =>
        sync.run("argo/b", limits, (s) => reconcile({ workflow: b, pods: new Map(), taskResults: new Map(), now: T0, config, sync: s }))
      const limits = yield* sync.readLimits("argo/b", [{ lock: "argo/ConfigMap/my-config/workflow", namespace: "argo", name: "my-config", key: "workflow" }])
      // the watch sees the raise before b is recorded as waiting: it has nobody to wake yet
      yield* admin.patch("configmaps", "argo", "my-config", { data: { workflow: "2" } })
      yield* settle
      assert.deepStrictEqual(queued, [])
      const out = yield* run(limits)
      assert.strictEqual(out.status.phase, "Pending")
      assert.deepStrictEqual(queued, ["argo/b"])
    }))

  it.effect("a raise between the read and the commit still queues the waiter when the caller merges the limits into a Map of its own, over passes", () =>
    Effect.gen(function*() {
      const { admin, queued, sync } = yield* setup
      yield* admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "my-config", namespace: "argo" }, data: { workflow: "1" } })
      yield* admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "other", namespace: "argo" }, data: { workflow: "1" } })
      yield* step(sync, semWf("a"))
      yield* settle
      const b = semWf("b", "2025-01-01T00:00:01Z")
      const run = (limits: ReadonlyMap<string, number | { error: string }>) =>
        sync.run("argo/b", limits, (s) => reconcile({ workflow: b, pods: new Map(), taskResults: new Map(), now: T0, config, sync: s }))
      // as the Reconciler: limits read in one pass, merged into its own Map with another pass's
      let limits: ReadonlyMap<string, number | { error: string }> = new Map()
      limits = new Map([...limits, ...(yield* sync.readLimits("argo/b", [{ lock: "argo/ConfigMap/my-config/workflow", namespace: "argo", name: "my-config", key: "workflow" }]))])
      yield* admin.patch("configmaps", "argo", "my-config", { data: { workflow: "2" } })
      yield* settle
      limits = new Map([...limits, ...(yield* sync.readLimits("argo/b", [{ lock: "argo/ConfigMap/other/workflow", namespace: "argo", name: "other", key: "workflow" }]))])
      assert.deepStrictEqual(queued, [])
      const out = yield* run(limits)
      assert.strictEqual(out.status.phase, "Pending")
      assert.deepStrictEqual(queued, ["argo/b"])
      // the read is done with: the next round starts afresh
      queued.length = 0
      yield* run(new Map([["argo/ConfigMap/my-config/workflow", 1]]))
      assert.deepStrictEqual(queued, [])
    }))

  it.effect("the periodic recheck is only a safety net while the ConfigMap watch works; 10 s while it does not", () =>
    Effect.sync(() => {
      assert.isAtLeast(Duration.toMillis(Duration.fromInputUnsafe(semaphoreRecheck)), 60_000)
      assert.strictEqual(Duration.toMillis(Duration.fromInputUnsafe(semaphoreRecheckUnwatched)), 10_000)
    }))

  it.effect("a missing ConfigMap fails the workflow with upstream's words", () =>
    Effect.gen(function*() {
      const { sync } = yield* setup
      const wf = yield* step(sync, semWf("lonely"))
      assert.strictEqual(phaseOf(wf), "Failed")
      assert.match(messageOf(wf)!, /^Failed to acquire the synchronization lock\. failed to get semaphore limit for argo\/ConfigMap\/my-config\/workflow/)
    }))

  it.effect("after a restart the holders recorded in the status are taken up before anything runs: no double grant", () =>
    Effect.gen(function*() {
      const first = yield* setup
      const mutexWf = (name: string) =>
        workflow({ entrypoint: "main", synchronization: { mutexes: [{ name: "m" }] }, templates: [{ name: "main", container }] }, name)
      const holder = yield* step(first.sync, mutexWf("holder"))
      assert.strictEqual(phaseOf(holder), "Running")
      // a new controller: it knows only what the workflows' status says
      const second = yield* setup
      yield* second.sync.restore([holder])
      const other = yield* step(second.sync, mutexWf("other"))
      assert.strictEqual(phaseOf(other), "Pending")
      assert.strictEqual(messageOf(other), "Waiting for argo/Mutex/m lock. Lock status: 0/1")
      // the holder is deleted: its lock goes to the waiter at once
      yield* second.sync.forget("argo/holder")
      assert.deepStrictEqual(second.queued, ["argo/other"])
      assert.strictEqual(phaseOf(yield* step(second.sync, other)), "Running")
    }))

  it.effect("a status forged to hold another namespace's lock, or a holder not its own, is not taken up after a restart", () =>
    Effect.gen(function*() {
      const { sync } = yield* setup
      const mutexWf = (name: string) =>
        workflow({ entrypoint: "main", synchronization: { mutexes: [{ name: "m" }] }, templates: [{ name: "main", container }] }, name)
      const forger = {
        ...workflow({ entrypoint: "main", templates: [{ name: "main", container }] }, "forger"),
        status: {
          phase: "Running",
          synchronization: { mutex: { holding: [{ mutex: "argo/Mutex/m", holder: "argo/ghost" }, { mutex: "victim/Mutex/deploy", holder: "argo/forger" }] } }
        }
      }
      yield* sync.restore([forger])
      assert.strictEqual(phaseOf(yield* step(sync, mutexWf("honest"))), "Running")
    }))

  it.effect("a lock in another namespace is refused with the field and 'not supported'", () =>
    Effect.gen(function*() {
      const { sync } = yield* setup
      const wf = yield* step(sync, workflow({ entrypoint: "main", synchronization: { mutexes: [{ name: "deploy", namespace: "victim" }] }, templates: [{ name: "main", container }] }, "reach"))
      assert.notStrictEqual(phaseOf(wf), "Running")
      assert.include(messageOf(wf)!, 'spec.synchronization.mutexes[0].namespace: a lock in another namespace ("victim", the workflow\'s is "argo") is not supported')
    }))

  it.effect("the lock table's wake-ups need no clock: a release is seen at the same instant", () =>
    Effect.gen(function*() {
      const table = makeLockTable()
      table.setLimit("argo/ConfigMap/c/k", 1)
      table.commit("argo/a", { acquire: [{ holder: "argo/a", locks: ["argo/ConfigMap/c/k"] }], wait: [], release: [], releaseWorkflow: false, needLimits: [] })
      table.commit("argo/b", { acquire: [], wait: [{ holder: "argo/b", priority: 0, created: 1, locks: ["argo/ConfigMap/c/k"] }], release: [], releaseWorkflow: false, needLimits: [] })
      const before = yield* Clock.currentTimeMillis
      const woken = table.commit("argo/a", { acquire: [], wait: [], release: [], releaseWorkflow: true, needLimits: [] })
      assert.deepStrictEqual(woken, ["argo/b"])
      assert.strictEqual(yield* Clock.currentTimeMillis, before)
      yield* settle
    }))
})

describe("Synchronization in the controller (embedded runtime)", () => {
  it.live("workflow-level mutex: the second workflow waits Pending with upstream's message, then runs once the first completes", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const slow = { "flotilla.dev/simulate-duration": "500ms" }
        const wfs = ["first", "second"].map((name) => {
          const wf = harnessWorkflow({ name, annotations: slow })
          return { ...wf, spec: { ...(wf["spec"] as object), synchronization: { mutexes: [{ name: "test" }] } } } as KubeObject
        })
        const { admin, controller } = yield* Embedded.start(Embedded.placementOf(wfs), fast())
        yield* submit(admin, wfs[0]!)
        yield* eventually("first running", admin.get("workflows", "local", "first").pipe(Effect.map((w) => phaseOf(w) === "Running" ? w : undefined)))
        yield* submit(admin, wfs[1]!)
        const waiting = yield* eventually(
          "second waiting",
          admin.get("workflows", "local", "second").pipe(Effect.map((w) => messageOf(w)?.startsWith("Waiting for") ? w : undefined))
        )
        assert.strictEqual(phaseOf(waiting), "Pending")
        assert.strictEqual(messageOf(waiting), "Waiting for local/Mutex/test lock. Lock status: 0/1")
        const first = (yield* completed(controller, wfs[0]!))!
        const second = (yield* completed(controller, wfs[1]!))!
        assert.strictEqual(Embedded.phaseOf(first), "Succeeded")
        assert.strictEqual(Embedded.phaseOf(second), "Succeeded")
        assert.isAtMost(Date.parse((first["status"] as any).finishedAt), Date.parse((second["status"] as any).startedAt) + 1000)
        assert.isUndefined((second["status"] as any).synchronization)
      })
    ), 30_000)
})
