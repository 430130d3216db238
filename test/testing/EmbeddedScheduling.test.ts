/**
 * The embedded runtime schedules like a cluster: each cluster's node carries
 * the standard labels, a pod whose nodeSelector no node satisfies stays
 * Pending (PodScheduled=False, Unschedulable, the scheduler's message) rather
 * than running anyway, and runs as soon as a node takes it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { watchResource } from "../../src/kube/cache/Watch.js"
import { hostArch } from "../../src/kubelet/scheduling.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const workflow: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "on-ssd", namespace: "default" },
  spec: {
    entrypoint: "main",
    templates: [{ name: "main", nodeSelector: { disktype: "ssd" }, container: { image: "busybox", command: ["true"] } }]
  }
}

const awaitPod = (client: KubeClientShape, predicate: (pod: KubeObject) => boolean) =>
  watchResource(client, "pods", "default").pipe(
    Stream.flatMap((item) => Stream.fromIterable(item._tag === "Synced" ? item.items : item._tag === "Upsert" ? [item.object] : [])),
    Stream.filter(predicate),
    Stream.runHead,
    Effect.map(Option.getOrThrow)
  )

const podScheduled = (pod: KubeObject) =>
  ((pod.status as { conditions?: Array<Record<string, unknown>> } | undefined)?.conditions ?? []).find((c) => c.type === "PodScheduled")

describe("embedded runtime: scheduling", () => {
  it.live("a pod no node takes stays Pending, Unschedulable, and runs once the node is labelled to take it", () =>
    Effect.gen(function*() {
      const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([workflow]), { mode: "simulate" })
      const node = yield* admin.get("nodes", undefined, "main-node")
      assert.deepInclude(node.metadata.labels, {
        "kubernetes.io/hostname": "main-node",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": hostArch()
      })

      yield* admin.create("workflows", "default", workflow)
      const waiting = yield* awaitPod(admin, (p) => podScheduled(p)?.reason === "Unschedulable")
      assert.strictEqual((waiting.status as { phase?: string }).phase, "Pending")
      assert.isUndefined((waiting.spec as { nodeName?: string }).nodeName)
      assert.strictEqual(
        podScheduled(waiting)?.message,
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
      )
      assert.notStrictEqual(Embedded.phaseOf(yield* Embedded.awaitWorkflow(controller, "default", "on-ssd", () => true)), "Succeeded")

      yield* kube.adminClient("main").patch("nodes", undefined, "main-node", { metadata: { labels: { disktype: "ssd" } } })
      const done = yield* Embedded.awaitWorkflow(controller, "default", "on-ssd", Embedded.isCompleted).pipe(
        Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error("on-ssd did not complete")) })
      )
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
      const pod = yield* admin.get("pods", "default", waiting.metadata.name!)
      assert.strictEqual((pod.spec as { nodeName?: string }).nodeName, "main-node")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})
