/**
 * An input artifact that cannot be loaded, end to end on the embedded runtime
 * (in-memory clusters, the controller, the local kubelet with the S3 store
 * against the SeaweedFS harness): the kubelet fails the pod's init container
 * (exit 64, argoexec's message) and the controller's inferFailedReason makes
 * that the node's message, as upstream reports it; a retry re-runs the pod.
 */
import { assert, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../../src/testing/InMemoryKube.js"
import { TestS3 } from "../../support/s3Server.js"

const workflow: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "nobucket", namespace: "default" },
  spec: {
    entrypoint: "consume",
    templates: [{
      name: "consume",
      retryStrategy: { limit: 1, retryPolicy: "Always" },
      inputs: { artifacts: [{ name: "data", path: "/tmp/data", s3: { key: "in/data.txt" } }] },
      container: { image: "busybox", command: ["cat", "/tmp/data"] }
    }]
  }
}

layer(TestS3.layer, { timeout: 120_000, excludeTestServices: true })("an input artifact's failure on the embedded runtime", (it) => {
  it.effect("a missing bucket: every attempt's node says init's message, naming the artifact, the repository and the cause", () =>
    Effect.gen(function*() {
      const s3 = yield* TestS3
      // the repository's bucket is never created
      const repo = { endpoint: s3.endpoint, bucket: "no-such-bucket", accessKey: s3.accessKey, secretKey: s3.secretKey }
      const { admin, controller } = yield* Embedded.start(Embedded.placementOf([workflow]), { mode: "process", artifactRepository: repo })
      yield* admin.create("workflows", "default", workflow)
      const done = yield* Embedded.awaitWorkflow(controller, "default", "nobucket", Embedded.isCompleted).pipe(
        Effect.timeoutOrElse({ duration: "90 seconds", orElse: () => Effect.die(new Error("nobucket did not complete")) })
      )
      const status = done!.status as { phase: string; message?: string; nodes: Record<string, { type: string; phase: string; message?: string }> }
      const pods = Object.values(status.nodes).filter((n) => n.type === "Pod")
      const cause = new RegExp(
        `^init: Error \\(exit code 64\\): artifact data failed to load from s3 bucket "no-such-bucket" at ${s3.endpoint.replace(/\./g, "\\.")}, key "in/data\\.txt": .*NoSuchBucket`
      )
      assert.strictEqual(pods.length, 2, JSON.stringify(status.nodes))
      for (const p of pods) {
        assert.strictEqual(p.phase, "Error")
        expect(p.message).toMatch(cause)
      }
      // the retry node and the workflow end as upstream's processNodeRetries says, with the attempts' phase
      assert.strictEqual(status.phase, "Error")
      assert.strictEqual(status.message, "No more retries left")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})
