/**
 * Synchronization and memoization in the pure engine, driven as the controller drives it: the
 * engine reads a lock table (the controller's `LockTable`) and its requests are committed to it.
 */
import { describe, expect, it } from "vitest"
import { makeLockTable } from "../../../src/controller/Synchronization.js"
import type { CacheRead } from "../../../src/workflow/engine/syncTypes.js"
import type { EngineOutput } from "../../../src/workflow/engine/contract.js"
import { reconcile } from "../../../src/workflow/engine/reconcile.js"
import { Sim, T0, workflow } from "./harness.js"

/** A Sim whose engine runs against a shared lock table, semaphore limits and caches, as the controller's Reconciler. */
class SyncSim extends Sim {
  constructor(
    wf: ReturnType<typeof workflow>,
    readonly table = makeLockTable(),
    readonly limits = new Map<string, number>(),
    readonly caches = new Map<string, CacheRead>()
  ) {
    super(wf)
  }
  woken: ReadonlyArray<string> = []
  override tick(): EngineOutput {
    for (const [k, v] of this.limits) this.table.setLimit(k, v)
    const key = `${this.wf.metadata.namespace}/${this.wf.metadata.name}`
    const out = reconcile({
      workflow: this.wf,
      pods: this.pods,
      taskResults: this.taskResults,
      now: this.now,
      config: this.cfg,
      sync: { lock: this.table.state, limits: this.limits },
      memo: { caches: this.caches }
    })
    this.woken = out.sync === undefined ? [] : this.table.commit(key, out.sync)
    this.wf = { ...this.wf, metadata: { ...this.wf.metadata, labels: { ...this.wf.metadata.labels, ...out.labels } }, status: out.status }
    this.last = out
    return out
  }
}

const container = { image: "busybox", command: ["echo"], args: ["hi"] }
const statusOf = (sim: Sim) => sim.wf["status"] as Record<string, any>
const nodes = (sim: Sim) => Object.values((statusOf(sim).nodes ?? {}) as Record<string, any>)

const wfLevel = (name: string, sync: unknown, priority?: number) =>
  workflow({ entrypoint: "main", synchronization: sync, ...(priority !== undefined ? { priority } : {}), templates: [{ name: "main", container }] }, name)

const finishAll = (sim: Sim) => {
  for (const n of nodes(sim)) if (n.type === "Pod" && sim.pods.has(n.id)) sim.setPod(n.id, "Succeeded", { exitCode: 0 })
}

describe("synchronization (engine)", () => {
  it("workflow-level mutex: the second workflow waits Pending with upstream's message and status, and runs once the first completes", () => {
    const table = makeLockTable()
    const a = new SyncSim(wfLevel("a", { mutexes: [{ name: "test" }] }), table)
    const b = new SyncSim({ ...wfLevel("b", { mutex: { name: "test" } }), metadata: { ...wfLevel("b", {}).metadata, creationTimestamp: "2025-01-01T00:00:01Z" } }, table)
    a.tick()
    a.apply()
    expect(statusOf(a).phase).toBe("Running")
    expect(statusOf(a).synchronization).toEqual({ mutex: { holding: [{ mutex: "argo/Mutex/test", holder: "argo/a" }] } })
    b.tick()
    expect(statusOf(b).phase).toBe("Pending")
    expect(statusOf(b).message).toBe("Waiting for argo/Mutex/test lock. Lock status: 0/1")
    expect(statusOf(b).synchronization).toEqual({ mutex: { waiting: [{ mutex: "argo/Mutex/test", holder: "argo/a" }] } })
    expect(b.creates()).toHaveLength(0)
    expect(b.last!.labels["workflows.argoproj.io/phase"]).toBe("Pending")

    finishAll(a)
    a.tick()
    expect(statusOf(a).phase).toBe("Succeeded")
    expect(statusOf(a).synchronization).toBeUndefined()
    // the release wakes the waiting workflow at once
    expect(a.woken).toEqual(["argo/b"])
    b.tick()
    expect(statusOf(b).phase).toBe("Running")
    expect(statusOf(b).message).toBeUndefined()
    expect(b.creates()).toHaveLength(1)
    expect(statusOf(b).synchronization.mutex.holding).toEqual([{ mutex: "argo/Mutex/test", holder: "argo/b" }])
  })

  it("waiting workflows take the lock by priority, then creation time", () => {
    const table = makeLockTable()
    const sim = (name: string, created: string, priority?: number) => {
      const wf = wfLevel(name, { mutexes: [{ name: "m" }] }, priority)
      return new SyncSim({ ...wf, metadata: { ...wf.metadata, creationTimestamp: created } }, table)
    }
    const holder = sim("holder", "2025-01-01T00:00:00Z")
    const old = sim("old", "2025-01-01T00:00:01Z")
    const young = sim("young", "2025-01-01T00:00:02Z")
    const urgent = sim("urgent", "2025-01-01T00:00:03Z", 10)
    holder.tick()
    holder.apply()
    for (const s of [young, old, urgent]) s.tick()
    finishAll(holder)
    holder.tick()
    expect(holder.woken).toEqual(["argo/urgent"])
    // the older one, reconciled first, still waits: urgent is ahead
    old.tick()
    expect(statusOf(old).phase).toBe("Pending")
    urgent.tick()
    expect(statusOf(urgent).phase).toBe("Running")
  })

  it("template-level semaphore from a ConfigMap: at most the limit run, the others wait with upstream's node message, a finished one lets the next in", () => {
    const wf = workflow({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "s", template: "work", withItems: [1, 2, 3, 4, 5] }]] },
        { name: "work", synchronization: { semaphores: [{ configMapKeyRef: { name: "my-config", key: "template" } }] }, container }
      ]
    }, "sem")
    const sim = new SyncSim(wf)
    sim.limits.set("argo/ConfigMap/my-config/template", 2)
    sim.tick()
    expect(sim.apply()).toHaveLength(2)
    const waiting = nodes(sim).filter((n) => n.type === "Pod" && n.synchronizationStatus !== undefined)
    expect(waiting).toHaveLength(3)
    expect(waiting[0].phase).toBe("Pending")
    expect(waiting[0].message).toBe("Waiting for argo/ConfigMap/my-config/template lock. Lock status: 0/2")
    expect(waiting[0].synchronizationStatus).toEqual({ waiting: "argo/ConfigMap/my-config/template" })
    const holding = statusOf(sim).synchronization.semaphore.holding
    expect(holding[0].semaphore).toBe("argo/ConfigMap/my-config/template")
    expect(holding[0].holders).toHaveLength(2)
    expect(holding[0].holders[0]).toMatch(/^argo\/sem\/sem-\d+$/)

    // the limit is raised: a changed limit applies
    sim.limits.set("argo/ConfigMap/my-config/template", 3)
    sim.tick()
    expect(sim.apply()).toHaveLength(1)

    finishAll(sim)
    sim.tick()
    expect(sim.apply()).toHaveLength(2)
    finishAll(sim)
    sim.tick()
    finishAll(sim)
    sim.tick()
    expect(statusOf(sim).phase).toBe("Succeeded")
    expect(statusOf(sim).synchronization).toBeUndefined()
    expect(nodes(sim).filter((n) => n.type === "Pod" && n.phase === "Succeeded")).toHaveLength(5)
    expect(sim.table.state("argo/ConfigMap/my-config/template")).toBeUndefined()
  })

  it("a semaphore whose limit was not read asks for it", () => {
    const sim = new SyncSim(wfLevel("w", { semaphores: [{ configMapKeyRef: { name: "my-config", key: "workflow" } }] }))
    const out = sim.tick()
    expect(out.sync?.needLimits).toEqual([{ lock: "argo/ConfigMap/my-config/workflow", namespace: "argo", name: "my-config", key: "workflow" }])
    sim.limits.set("argo/ConfigMap/my-config/workflow", 1)
    sim.tick()
    expect(statusOf(sim).phase).toBe("Running")
    expect(statusOf(sim).synchronization).toEqual({
      semaphore: { holding: [{ semaphore: "argo/ConfigMap/my-config/workflow", holders: ["argo/w"] }] }
    })
  })

  it("after a restart, the holders recorded in the status are taken up: no double grant", () => {
    const table = makeLockTable()
    const a = new SyncSim(wfLevel("a", { mutexes: [{ name: "m" }] }), table)
    a.tick()
    const restarted = makeLockTable()
    restarted.restoreHolder("argo/Mutex/m", "argo/a")
    const b = new SyncSim(wfLevel("b", { mutexes: [{ name: "m" }] }), restarted)
    b.tick()
    expect(statusOf(b).phase).toBe("Pending")
  })

  it("a workflow terminated while waiting fails and leaves the line", () => {
    const table = makeLockTable()
    const a = new SyncSim(wfLevel("a", { mutexes: [{ name: "m" }] }), table)
    a.tick()
    const b = new SyncSim(wfLevel("b", { mutexes: [{ name: "m" }] }), table)
    b.tick()
    expect(table.state("argo/Mutex/m")?.waiting.map((w) => w.holder)).toEqual(["argo/b"])
    b.wf = { ...b.wf, spec: { ...(b.wf["spec"] as object), shutdown: "Terminate" } }
    b.tick()
    expect(statusOf(b).phase).toBe("Failed")
    expect(table.state("argo/Mutex/m")?.waiting).toEqual([])
  })
})

describe("memoization (engine)", () => {
  const memoWf = (name = "memo") =>
    workflow({
      entrypoint: "main",
      templates: [{
        name: "main",
        memoize: { key: "cache-key", maxAge: "10s", cache: { configMap: { name: "cache-config" } } },
        container,
        outputs: { parameters: [{ name: "hello", valueFrom: { path: "/tmp/hello_world.txt" } }] }
      }]
    }, name)

  it("a miss runs the template, and its outputs are stored once it Succeeded", () => {
    const sim = new SyncSim(memoWf())
    let out = sim.tick()
    expect(out.memo?.needCaches).toEqual(["cache-config"])
    sim.caches.set("cache-config", { found: false })
    out = sim.tick()
    expect(sim.apply()).toHaveLength(1)
    const node = nodes(sim).find((n) => n.type === "Pod")!
    expect(node.memoizationStatus).toEqual({ hit: false, key: "cache-key", cacheName: "cache-config" })
    sim.taskResults.set(node.id, { nodeId: node.id, outputs: { parameters: [{ name: "hello", value: "world" }] }, completed: true })
    sim.setPod(node.id, "Succeeded", { exitCode: 0 })
    out = sim.tick()
    expect(statusOf(sim).phase).toBe("Succeeded")
    expect(out.memo?.save).toEqual([{ cache: "cache-config", key: "cache-key", nodeId: node.id, outputs: expect.objectContaining({ parameters: [expect.objectContaining({ name: "hello", value: "world" })] }) }])
    // stored once only
    expect(sim.tick().memo?.save ?? []).toEqual([])
  })

  it("a fresh hit completes the node at once with the cached outputs; a stale one runs", () => {
    const entry = (created: string) =>
      JSON.stringify({
        nodeID: "memoized-hdckj",
        outputs: { parameters: [{ name: "hello", value: "different world" }], exitCode: "0" },
        creationTimestamp: created,
        lastHitTimestamp: created
      })
    const labels = { "workflows.argoproj.io/configmap-type": "Cache" }
    const fresh = new SyncSim(memoWf())
    fresh.caches.set("cache-config", { found: true, labels, data: { "cache-key": entry(new Date(T0 - 5000).toISOString()) } })
    const out = fresh.tick()
    expect(fresh.creates()).toHaveLength(0)
    expect(statusOf(fresh).phase).toBe("Succeeded")
    const node = nodes(fresh)[0]
    expect(node.phase).toBe("Succeeded")
    expect(node.memoizationStatus).toEqual({ hit: true, key: "cache-key", cacheName: "cache-config" })
    expect(node.outputs.parameters[0].value).toBe("different world")
    expect(out.memo?.hit).toEqual([{ cache: "cache-config", key: "cache-key" }])

    const stale = new SyncSim(memoWf())
    stale.caches.set("cache-config", { found: true, labels, data: { "cache-key": entry(new Date(T0 - 60_000).toISOString()) } })
    stale.tick()
    expect(stale.creates()).toHaveLength(1)
    expect(nodes(stale)[0].memoizationStatus.hit).toBe(false)
  })

  it("a cache ConfigMap without upstream's label is refused", () => {
    const sim = new SyncSim(memoWf())
    sim.caches.set("cache-config", { found: true, labels: {}, data: {} })
    sim.tick()
    expect(nodes(sim)[0].phase).toBe("Error")
    expect(nodes(sim)[0].message).toBe("memoization configmap doesn't have workflows.argoproj.io/configmap-type label, refusing to use it")
  })
})
