/**
 * The pool's view of each cluster's connection: as connected as its least
 * connected watch (pods and task results), and whether a connection follows an
 * outage (the controller gives refusals time then: an API server that just
 * restarted answers 403 before its RBAC cache has synced); and what each change carries (the
 * controller skips pod updates that change nothing it reads by comparing with the copy before).
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, PubSub } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { eventually, fastController, inMemory } from "../controller/harness.js"
import { seedWorkflow } from "../controller/fixtures.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const stateOf = (controller: Embedded.StartResult["controller"], cluster: string) =>
  controller.pool.states.pipe(Effect.map((m) => m.get(cluster)))

describe("ClusterPool states", () => {
  it.live("a first connection is not after an outage, unless it had to be retried; a reconnection is, and says since when", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const placement = Embedded.placementOf([seedWorkflow()])
        yield* Embedded.provision(placement)
        const kube = yield* InMemoryKube
        // The task results' first list fails twice: the cluster is not Connected while it retries,
        // even though its pod watch is.
        yield* kube.failNext("cluster-1", "list", "workflowtaskresults", "Unavailable", 2)
        const { controller } = yield* Embedded.startController({ controller: fastController })
        yield* controller.pool.synced

        // (retried before it came up: its API server may be the one that just restarted)
        const first = yield* stateOf(controller, "cluster-1")
        assert.strictEqual(first?._tag, "Connected")
        assert.isTrue(first?._tag === "Connected" && first.afterOutage)
        const main = yield* stateOf(controller, "main")
        assert.strictEqual(main?._tag, "Connected")
        assert.isFalse(main?._tag === "Connected" && main.afterOutage)

        yield* kube.setReachable("cluster-1", false)
        yield* eventually("the outage seen", stateOf(controller, "cluster-1").pipe(Effect.map((s) => s?._tag === "Retrying" ? s : undefined)))
        const before = yield* Clock.currentTimeMillis
        yield* kube.setReachable("cluster-1", true)
        const back = yield* eventually(
          "reconnected",
          stateOf(controller, "cluster-1").pipe(Effect.map((s) => s?._tag === "Connected" ? s : undefined))
        )
        assert.isTrue(back.afterOutage)
        assert.isAtLeast(back.since, before)
        // The other cluster's state is its own.
        const mainAfter = yield* stateOf(controller, "main")
        assert.isFalse(mainAfter?._tag === "Connected" && mainAfter.afterOutage)
      })
    ), 30_000)

  it.live("a change carries the copy the cache held before it: an update its previous object, an add none", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const placement = Embedded.placementOf([seedWorkflow()])
        yield* Embedded.provision(placement)
        const { admin, controller } = yield* Embedded.startController({ controller: fastController })
        yield* controller.pool.synced
        const changes = yield* controller.pool.subscribe
        const next = Effect.gen(function*() {
          while (true) {
            const change = yield* PubSub.take(changes)
            if (change.kind === "pods" && change.object.metadata.name === "p") return change
          }
        })
        // a pod of no workflow the controller knows, on a node no kubelet runs
        const created = yield* admin.create("pods", "local", {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "p", namespace: "local", labels: { "workflows.argoproj.io/workflow": "none", "workflows.argoproj.io/cluster": "main" } },
          spec: { nodeName: "elsewhere", containers: [{ name: "main", image: "busybox" }] }
        })
        const added = yield* next
        assert.strictEqual(added.type, "upsert")
        assert.isUndefined(added.previous)
        yield* admin.patch("pods", "local", "p", { metadata: { annotations: { a: "1" } } })
        const updated = yield* next
        assert.strictEqual(updated.type, "upsert")
        assert.strictEqual(updated.previous?.metadata.resourceVersion, created.metadata.resourceVersion)
        assert.strictEqual(updated.object.metadata.annotations?.["a"], "1")
        yield* admin.delete("pods", "local", "p")
        const deleted = yield* next
        assert.strictEqual(deleted.type, "delete")
        assert.strictEqual(deleted.previous?.metadata.resourceVersion, updated.object.metadata.resourceVersion)
      })
    ), 30_000)
})
