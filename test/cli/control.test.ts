/**
 * `flotilla suspend|resume|stop|terminate`'s write (src/cli/control.ts) on the
 * in-memory API: the change lands on the stored object, a Conflict with a
 * concurrent controller write is retried on the fresh object, and a completed
 * workflow is refused with upstream's message.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { applyControl } from "../../src/cli/control.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const wf: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "w", namespace: "argo" },
  spec: { entrypoint: "main", templates: [{ name: "main", suspend: {} }] }
}

const setup = Effect.gen(function*() {
  const kube = yield* InMemoryKube
  yield* kube.addCluster("main")
  yield* kube.ensureNamespace("main", "argo")
  const admin = kube.adminClient("main")
  yield* admin.create("workflows", "argo", wf)
  return { kube, admin }
})

describe("flotilla suspend|resume|stop|terminate", () => {
  // Live clock: the retry after the Conflict waits 100 ms.
  it.live("stop sets spec.shutdown, retrying after a Conflict; suspend then resume leaves no spec.suspend", () =>
    Effect.gen(function*() {
      const { kube, admin } = yield* setup
      yield* kube.failNext("main", "update", "workflows", "Conflict")
      yield* applyControl(admin, "argo", "w", "stop")
      assert.strictEqual(((yield* admin.get("workflows", "argo", "w")).spec as any).shutdown, "Stop")
      yield* applyControl(admin, "argo", "w", "suspend")
      assert.strictEqual(((yield* admin.get("workflows", "argo", "w")).spec as any).suspend, true)
      yield* applyControl(admin, "argo", "w", "resume")
      assert.notProperty((yield* admin.get("workflows", "argo", "w")).spec as object, "suspend")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a completed workflow is refused, naming it; a missing one fails with NotFound", () =>
    Effect.gen(function*() {
      const { admin } = yield* setup
      const stored = yield* admin.get("workflows", "argo", "w")
      yield* admin.replace("workflows", "argo", { ...stored, status: { phase: "Succeeded" } })
      const exit = yield* Effect.exit(applyControl(admin, "argo", "w", "terminate"))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(Cause.squash(exit.cause)), "cannot shutdown a completed workflow: workflow w is Succeeded")
      const missing = yield* Effect.exit(applyControl(admin, "argo", "nope", "stop"))
      assert.isTrue(Exit.isFailure(missing))
      if (Exit.isFailure(missing)) assert.include(String(Cause.squash(missing.cause)), "NotFound")
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
