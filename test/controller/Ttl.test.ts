/** spec.ttlStrategy: completed workflows are deleted when their time is up, as Argo does. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { ttlSecondsFor } from "../../src/controller/Controller.js"
import { completed, fast, inMemory, workflow } from "./harness.js"

const withTtl = (name: string, ttlStrategy: Record<string, number>, annotations: Record<string, string> = {}) => {
  const wf = workflow({ name, cluster: "cluster-1", namespace: "remote", annotations })
  return { ...wf, spec: { ...(wf["spec"] as object), ttlStrategy } }
}

describe("ttlStrategy", () => {
  it("secondsAfterSuccess / secondsAfterFailure win over secondsAfterCompletion", () => {
    const wf = withTtl("x", { secondsAfterCompletion: 10, secondsAfterSuccess: 5, secondsAfterFailure: 7 })
    assert.strictEqual(ttlSecondsFor(wf, "Succeeded"), 5)
    assert.strictEqual(ttlSecondsFor(wf, "Failed"), 7)
    assert.strictEqual(ttlSecondsFor(wf, "Error"), 7)
    assert.strictEqual(ttlSecondsFor(withTtl("y", { secondsAfterCompletion: 10 }), "Succeeded"), 10)
    assert.isUndefined(ttlSecondsFor(workflow({ name: "z" }), "Succeeded"))
  })

  it.live("deletes a succeeded remote workflow after its TTL, releasing the finalizer and the remote pod", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const keep = withTtl("keep", { secondsAfterFailure: 0 })
        const gone = withTtl("gone", { secondsAfterSuccess: 1 })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([keep, gone]), fast())
        yield* admin.create("workflows", "local", keep)
        yield* admin.create("workflows", "local", gone)
        const done = yield* completed(controller, gone)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        yield* Embedded.awaitWorkflow(controller, "local", "gone", (w) => w === undefined).pipe(
          Effect.timeoutOrElse({ duration: "20 seconds", orElse: () => Effect.die(new Error("TTL never deleted the workflow")) })
        )
        const pods = (yield* kube.objects("cluster-1", "pods", "remote")).map((p) => p.metadata.labels?.["workflows.argoproj.io/workflow"])
        assert.notInclude(pods, "gone")
        // A succeeded workflow with only a failure TTL stays.
        assert.strictEqual(Embedded.phaseOf(yield* completed(controller, keep)), "Succeeded")
        assert.isTrue((yield* controller.workflows.get("local", "keep"))._tag === "Some")
      })
    ), 40_000)
})
