/**
 * The seed's example, end to end on in-memory clusters with the seed's
 * set-up: the pod lands in cluster-1/remote, created by the workflow user's
 * identity, watched by the controller's, the workflow Succeeds, and the
 * finalizer is held until the remote pod is deleted.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { finalizerName } from "../../src/controller/FinalizerLease.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { seedWorkflow, startFor, submit, untilCompleted } from "./fixtures.js"

describe("seed example", () => {
  it.live("runs the pod in cluster-1/remote with the user's credentials, then cleans up", () =>
    Effect.gen(function*() {
      const wf = seedWorkflow()
      const { admin, controller, kube } = yield* startFor([wf], { mode: "process" })
      yield* submit(admin, wf)

      const done = yield* untilCompleted(controller, wf)
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
      assert.include(done!.metadata.finalizers ?? [], finalizerName)

      // The pod exists in cluster-1/remote only.
      const remotePods = yield* kube.objects("cluster-1", "pods", "remote")
      assert.strictEqual(remotePods.length, 1)
      const pod = remotePods[0]!
      assert.strictEqual(pod.metadata.name, "multi-cluster")
      assert.strictEqual(pod.metadata.labels?.["workflows.argoproj.io/workflow"], "multi-cluster")
      assert.strictEqual(pod.metadata.labels?.["workflows.argoproj.io/cluster"], "main")
      assert.strictEqual(pod.metadata.annotations?.["workflows.argoproj.io/workflow-namespace"], "local")
      assert.isUndefined(pod.metadata.ownerReferences, "no cross-cluster ownerReference")
      assert.lengthOf(yield* kube.objects("main", "pods"), 0)

      // Created by the workflow user, never by the controller; watched by the controller.
      const requests = yield* kube.requests("cluster-1")
      const creates = requests.filter((r) => r.verb === "create" && r.resource === "pods")
      assert.deepStrictEqual(creates.map((r) => [r.identity, r.outcome]), [["workflow", "Success"]])
      assert.isTrue(requests.some((r) => r.identity === "controller" && r.verb === "watch" && r.resource === "pods"))
      assert.isFalse(requests.some((r) => r.identity === "controller" && r.verb === "create"))

      // The node reads like Argo's.
      const nodes = (done!["status"] as { nodes: Record<string, { phase: string; type: string; name: string }> }).nodes
      assert.deepStrictEqual(nodes["multi-cluster"], { ...nodes["multi-cluster"], phase: "Succeeded", type: "Pod", name: "multi-cluster" })

      // Deleting the workflow deletes the remote pod, then releases the finalizer.
      yield* admin.delete("workflows", "local", "multi-cluster")
      yield* Embedded.awaitWorkflow(controller, "local", "multi-cluster", (w) => w === undefined).pipe(
        Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.die(new Error("finalizer never released")) })
      )
      assert.lengthOf(yield* kube.objects("cluster-1", "pods", "remote"), 0)
      const deletes = (yield* kube.requests("cluster-1")).filter((r) => r.verb === "delete" && r.resource === "pods")
      assert.isTrue(deletes.length >= 1 && deletes.every((r) => r.identity === "controller"))
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)), 60_000)
})
