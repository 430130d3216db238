/**
 * Two of the Reconciler's ways out of waiting, with a Reconciler whose rounds the test drives:
 * a workflow naming a WorkflowTemplate while the template caches cannot fill says so in its
 * message after 30 s (TestClock), not before; and a memoization entry the controller may not
 * store (a non-transient failure) lets the node go on uncached, with a warning in the log.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { TestClock } from "effect/testing"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { captureLogs, eventually, inMemory, messageOf } from "./harness.js"
import { reconcilerOnly } from "./reconcilerOnly.js"

/** Yields until `check` gives a value (no clock: usable under the TestClock). */
const untilSome = <A>(what: string, check: Effect.Effect<A | undefined>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      const a = yield* check
      if (a !== undefined) return a
      yield* Effect.yieldNow
    }
    return yield* Effect.die(new Error(`${what} did not happen`))
  })

describe("Reconciler: waiting for the template caches", () => {
  it.effect("a workflow naming a WorkflowTemplate while the caches cannot fill says why after 30 s, not before", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const wf: KubeObject = {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "Workflow",
        metadata: { name: "uses-template", namespace: "local" },
        spec: { workflowTemplateRef: { name: "library" } }
      }
      const kube = yield* InMemoryKube
      yield* Embedded.provision(Embedded.placementOf([wf]))
      // the controller may not list WorkflowTemplates (a missing RBAC rule, or no CRD): that cache never fills
      yield* kube.failNext(Embedded.localClusterName, "list", "workflowtemplates", "Forbidden", 1_000_000)
      const { reconcile, workflows } = yield* reconcilerOnly
      const admin = kube.adminClient(Embedded.localClusterName)
      yield* admin.create("workflows", "local", wf)
      yield* untilSome("the cache has the workflow", Effect.map(workflows.get("local", "uses-template"), Option.getOrUndefined))
      const message = () => Effect.map(admin.get("workflows", "local", "uses-template"), messageOf)

      yield* reconcile("local/uses-template")
      assert.strictEqual(yield* message(), "")
      yield* TestClock.adjust("29 seconds")
      yield* reconcile("local/uses-template")
      assert.strictEqual(yield* message(), "", "no message before 30 s")
      yield* TestClock.adjust("1 second")
      yield* reconcile("local/uses-template")
      assert.strictEqual(
        yield* message(),
        "waiting for the controller's WorkflowTemplate and ClusterWorkflowTemplate caches to fill (can it list them? are their CRDs installed?)"
      )
      // it never started: no node, no pod
      assert.isUndefined(((yield* admin.get("workflows", "local", "uses-template"))["status"] as { nodes?: unknown } | undefined)?.nodes)
      assert.lengthOf(yield* kube.objects(Embedded.localClusterName, "pods"), 0)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer), Effect.provide(logs.layer))
  })
})

describe("Reconciler: memoization", () => {
  it.live("an entry the controller may not store (Forbidden) lets the node go on uncached, with a warning naming the failure", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const wf: KubeObject = {
          apiVersion: "argoproj.io/v1alpha1",
          kind: "Workflow",
          metadata: { name: "memo", namespace: "local" },
          spec: {
            entrypoint: "main",
            serviceAccountName: "workflow",
            templates: [{
              name: "main",
              memoize: { key: "k", cache: { configMap: { name: "memo-cache" } } },
              metadata: { annotations: { "flotilla.dev/simulate-result": "hello" } },
              container: { image: "busybox", command: ["echo", "hello"] }
            }]
          }
        }
        const kube = yield* InMemoryKube
        const placement = Embedded.placementOf([wf])
        yield* Embedded.provision(placement)
        yield* Embedded.startKubelets(placement, { mode: "simulate" })
        const { reconcile, workflows } = yield* reconcilerOnly
        const admin = kube.adminClient(Embedded.localClusterName)
        // the cache ConfigMap may not be made (say, a namespace where the controller may not create ConfigMaps)
        yield* kube.failNext(Embedded.localClusterName, "create", "configmaps", "Forbidden", 1_000, "configmaps is forbidden: not here")
        yield* admin.create("workflows", "local", wf)
        const done = yield* eventually("the workflow completes", Effect.gen(function*() {
          const cached = Option.getOrUndefined(yield* workflows.get("local", "memo"))
          if (Embedded.isCompleted(cached)) return cached
          yield* reconcile("local/memo")
          return undefined
        }))
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        const node = Object.values((done!["status"] as { nodes: Record<string, any> }).nodes).find((n) => n.type === "Pod")
        assert.strictEqual(node.phase, "Succeeded")
        assert.deepStrictEqual(node.memoizationStatus, { hit: false, key: "k", cacheName: "memo-cache" })
        // nothing stored
        assert.isTrue(Option.isNone(yield* admin.get("configmaps", "local", "memo-cache").pipe(Effect.option)))
        const warning = logs.lines.find((l) => l.includes(`msg="memoization: could not store a cache entry"`))
        assert.isDefined(warning, logs.lines.join("\n"))
        assert.include(warning!, "workflow=local/memo")
        assert.include(warning!, "configmaps is forbidden: not here")
      })), 30_000)
})
