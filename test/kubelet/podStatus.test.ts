/**
 * How the local kubelet ends a pod whose main container is argoexec doing
 * work the kubelet does itself (data, resource and artifact GC pods:
 * podStatus.ts `finishExecutorPod`): Succeeded with every container
 * Completed, or Failed with main's termination message and argoexec's exit
 * code 64, no pod-level message, the other containers Completed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { makeStatusReporter } from "../../src/kubelet/podStatus.js"

const pod: KubeObject = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "work", uid: "u1" },
  spec: { containers: [{ name: "main", image: "argoexec" }, { name: "side", image: "busybox" }] }
}

/** A reporter whose client records each status patch. */
const recording = () => {
  const patches: Array<Record<string, unknown>> = []
  const client = {
    patch: (_resource: string, _namespace: string | undefined, _name: string, body: unknown) => {
      patches.push((body as { status: Record<string, unknown> }).status)
      return Effect.succeed(pod)
    }
  } as unknown as KubeClientShape
  return { reporter: makeStatusReporter(client), patches }
}

const terminated = (status: Record<string, unknown>) =>
  Object.fromEntries((status["containerStatuses"] as Array<{ name: string; state: { terminated: Record<string, unknown> } }>).map((c) => [c.name, c.state.terminated]))

describe("finishExecutorPod", () => {
  it.effect("success: Succeeded, every container Completed with exit code 0", () =>
    Effect.gen(function*() {
      const { reporter, patches } = recording()
      yield* reporter.finishExecutorPod(pod, "2026-12-01T00:00:00Z", "2026-12-01T00:00:05Z", undefined)
      assert.strictEqual(patches.length, 1)
      assert.strictEqual(patches[0]!["phase"], "Succeeded")
      assert.isUndefined(patches[0]!["message"])
      const t = terminated(patches[0]!)
      for (const name of ["main", "side"]) {
        assert.deepStrictEqual(t[name], {
          exitCode: 0,
          reason: "Completed",
          startedAt: "2026-12-01T00:00:00Z",
          finishedAt: "2026-12-01T00:00:05Z",
          containerID: `flotilla://u1/${name}`
        })
      }
    }))

  it.effect("failure: Failed, main Error with exit code 64 and the message, the others Completed, no pod-level message", () =>
    Effect.gen(function*() {
      const { reporter, patches } = recording()
      yield* reporter.finishExecutorPod(pod, "2026-12-01T00:00:00Z", "2026-12-01T00:00:05Z", "listing WorkflowArtifactGCTasks: forbidden")
      assert.strictEqual(patches[0]!["phase"], "Failed")
      assert.isUndefined(patches[0]!["message"])
      const t = terminated(patches[0]!)
      assert.strictEqual(t["main"]!["exitCode"], 64)
      assert.strictEqual(t["main"]!["reason"], "Error")
      assert.strictEqual(t["main"]!["message"], "listing WorkflowArtifactGCTasks: forbidden")
      assert.deepStrictEqual([t["side"]!["exitCode"], t["side"]!["reason"], t["side"]!["message"]], [0, "Completed", undefined])
    }))
})
