/**
 * The controller's memoization caches (Memoization) on the in-memory API, with the engine
 * deciding: a miss runs the template and its outputs are stored in the ConfigMap (made with
 * upstream's label, entry JSON as upstream's), a second workflow hits the entry and completes
 * without a pod; past `maxAge` (TestClock) it runs again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { Memoization } from "../../src/controller/Memoization.js"
import { KubeClient } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import type { EngineOutput, PodObservation, TaskResultObservation } from "../../src/workflow/engine/contract.js"
import { reconcile } from "../../src/workflow/engine/reconcile.js"
import type { CacheRead } from "../../src/workflow/engine/syncTypes.js"
import { config, workflow } from "../workflow/engine/harness.js"

const memoWf = (name: string, cache = "cache-config") =>
  workflow({
    entrypoint: "main",
    templates: [{
      name: "main",
      memoize: { key: "cache-key", maxAge: "10s", cache: { configMap: { name: cache } } },
      container: { image: "busybox", command: ["sh", "-c"], args: ["echo world > /tmp/hello_world.txt"] },
      outputs: { parameters: [{ name: "hello", valueFrom: { path: "/tmp/hello_world.txt" } }] }
    }]
  }, name)

/** One reconcile as the Reconciler does it: the caches the engine asks for are read, its entries stored. */
const step = (
  memo: Memoization["Service"],
  wf: KubeObject,
  pods: ReadonlyMap<string, PodObservation> = new Map(),
  taskResults: ReadonlyMap<string, TaskResultObservation> = new Map()
) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let caches: ReadonlyMap<string, CacheRead> = new Map()
    const run = () => reconcile({ workflow: wf, pods, taskResults, now, config, memo: { caches } })
    let out: EngineOutput = run()
    if ((out.memo?.needCaches ?? []).length > 0) {
      caches = yield* memo.read("argo", out.memo!.needCaches)
      out = run()
    }
    if (out.memo !== undefined) yield* memo.apply("argo", out.memo, now)
    return { wf: { ...wf, status: out.status } as KubeObject, out }
  })

const nodesOf = (wf: KubeObject) => Object.values(((wf["status"] as any).nodes ?? {}) as Record<string, any>)

describe("Memoization (controller)", () => {
  it.effect("a miss runs and stores its outputs; the next workflow hits the entry without a pod; past maxAge it runs again", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2025-01-01T00:00:00Z"))
      const kube = yield* InMemoryKube
      yield* kube.addCluster("main")
      yield* kube.ensureNamespace("main", "argo")
      const admin = kube.adminClient("main")
      const memo = yield* Effect.service(Memoization).pipe(Effect.provide(Memoization.layer.pipe(Layer.provide(Layer.succeed(KubeClient, admin)))))

      // first workflow: a miss, it runs
      let first = yield* step(memo, memoWf("first"))
      assert.lengthOf(first.out.actions.filter((a) => a._tag === "CreatePod"), 1)
      const node = nodesOf(first.wf)[0]
      assert.deepStrictEqual(node.memoizationStatus, { hit: false, key: "cache-key", cacheName: "cache-config" })
      first = yield* step(
        memo,
        first.wf,
        new Map([[node.id, { nodeId: node.id, podName: "p", cluster: "main", namespace: "argo", phase: "Succeeded", exitCode: 0 }]]),
        new Map([[node.id, { nodeId: node.id, outputs: { parameters: [{ name: "hello", value: "world" }], exitCode: "0" }, completed: true }]])
      )
      assert.strictEqual((first.wf["status"] as any).phase, "Succeeded")
      const cm = yield* admin.get("configmaps", "argo", "cache-config")
      assert.strictEqual(cm.metadata.labels?.["workflows.argoproj.io/configmap-type"], "Cache")
      const entry = JSON.parse((cm["data"] as Record<string, string>)["cache-key"]!)
      assert.strictEqual(entry.nodeID, node.id)
      assert.strictEqual(entry.creationTimestamp, "2025-01-01T00:00:00Z")
      assert.strictEqual(entry.lastHitTimestamp, "2025-01-01T00:00:00Z")
      assert.strictEqual(entry.outputs.parameters[0].value, "world")

      // five seconds later, a second workflow: a hit, no pod, the cached outputs
      yield* TestClock.adjust("5 seconds")
      const second = yield* step(memo, memoWf("second"))
      assert.lengthOf(second.out.actions.filter((a) => a._tag === "CreatePod"), 0)
      assert.strictEqual((second.wf["status"] as any).phase, "Succeeded")
      const hit = nodesOf(second.wf)[0]
      assert.deepStrictEqual(hit.memoizationStatus, { hit: true, key: "cache-key", cacheName: "cache-config" })
      assert.strictEqual(hit.outputs.parameters[0].value, "world")
      const hitEntry = JSON.parse(((yield* admin.get("configmaps", "argo", "cache-config"))["data"] as Record<string, string>)["cache-key"]!)
      assert.strictEqual(hitEntry.lastHitTimestamp, "2025-01-01T00:00:05Z")
      assert.strictEqual(hitEntry.creationTimestamp, "2025-01-01T00:00:00Z")

      // past maxAge (10s): a third runs again
      yield* TestClock.adjust("10 seconds")
      const third = yield* step(memo, memoWf("third"))
      assert.lengthOf(third.out.actions.filter((a) => a._tag === "CreatePod"), 1)
      assert.strictEqual(nodesOf(third.wf)[0].memoizationStatus.hit, false)
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a cache ConfigMap without upstream's label is refused, and nothing is written to it", () =>
    Effect.gen(function*() {
      const kube = yield* InMemoryKube
      yield* kube.addCluster("main")
      yield* kube.ensureNamespace("main", "argo")
      const admin = kube.adminClient("main")
      yield* admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cache-config", namespace: "argo" }, data: { other: "x" } })
      const memo = yield* Effect.service(Memoization).pipe(Effect.provide(Memoization.layer.pipe(Layer.provide(Layer.succeed(KubeClient, admin)))))
      const { wf } = yield* step(memo, memoWf("refused"))
      const node = nodesOf(wf)[0]
      assert.strictEqual(node.phase, "Error")
      assert.strictEqual(node.message, "memoization configmap doesn't have workflows.argoproj.io/configmap-type label, refusing to use it")
      const saved = yield* memo.apply("argo", { save: [{ cache: "cache-config", key: "k", nodeId: "n", outputs: {} }], hit: [], needCaches: [] }, 0).pipe(Effect.flip)
      assert.strictEqual(saved.reason, "Invalid")
      assert.deepStrictEqual((yield* admin.get("configmaps", "argo", "cache-config"))["data"], { other: "x" })
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a cache named 'other-namespace/name' errors its node and is never read or written in any namespace", () =>
    Effect.gen(function*() {
      const kube = yield* InMemoryKube
      yield* kube.addCluster("main")
      yield* kube.ensureNamespace("main", "argo")
      yield* kube.ensureNamespace("main", "tenant-b")
      const admin = kube.adminClient("main")
      const theirs = {
        "cache-key": JSON.stringify({ nodeID: "b-1", outputs: { parameters: [{ name: "hello", value: "tenant-b's secret" }] }, creationTimestamp: "2099-01-01T00:00:00Z" })
      }
      yield* admin.create("configmaps", "tenant-b", {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "cache-config", namespace: "tenant-b", labels: { "workflows.argoproj.io/configmap-type": "Cache" } },
        data: theirs
      })
      const memo = yield* Effect.service(Memoization).pipe(Effect.provide(Memoization.layer.pipe(Layer.provide(Layer.succeed(KubeClient, admin)))))
      const read = yield* memo.read("argo", ["tenant-b/cache-config"])
      assert.deepStrictEqual(read.get("tenant-b/cache-config"), { found: false })
      const { wf, out } = yield* step(memo, memoWf("cross", "tenant-b/cache-config"))
      assert.lengthOf(out.actions.filter((a) => a._tag === "CreatePod"), 0)
      assert.isUndefined(out.memo?.needCaches.find((c) => c.includes("/")))
      const node = nodesOf(wf)[0]
      assert.strictEqual(node.phase, "Error")
      assert.match(node.message, /^cache could not be found or created: 'tenant-b\/cache-config' is not a valid ConfigMap name/)
      const saved = yield* memo.apply("argo", { save: [{ cache: "tenant-b/cache-config", key: "cache-key", nodeId: "n", outputs: {} }], hit: [], needCaches: [] }, 0).pipe(Effect.flip)
      assert.strictEqual(saved.reason, "Invalid")
      assert.deepStrictEqual((yield* admin.get("configmaps", "tenant-b", "cache-config"))["data"], theirs)
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
