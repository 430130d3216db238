/**
 * WorkflowTemplates through the controller on in-memory clusters: the
 * controller watches WorkflowTemplates and ClusterWorkflowTemplates in its own
 * cluster and hands them to the engine, so a workflow whose steps call a
 * WorkflowTemplate's template that names `cluster: cluster-2` runs its pod
 * there (with the finalizer a remote pod needs); a missing WorkflowTemplate
 * errors the workflow with upstream's message.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { finalizerName } from "../../src/controller/FinalizerLease.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { startFor, submit, untilCompleted } from "./fixtures.js"

const library: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "WorkflowTemplate",
  metadata: { name: "library", namespace: "local" },
  spec: {
    templates: [
      { name: "remote-echo", cluster: "cluster-2", container: { image: "busybox", command: ["echo", "hello"] } }
    ]
  }
}

const caller: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "calls-library", namespace: "local" },
  spec: {
    entrypoint: "main",
    templates: [{ name: "main", steps: [[{ name: "echo", templateRef: { name: "library", template: "remote-echo" } }]] }]
  }
}

describe("WorkflowTemplates in the controller", () => {
  it.live("runs a WorkflowTemplate's template in the cluster it names", () =>
    Effect.gen(function*() {
      // The template object stands in for its templates' placement (placementOf reads spec.templates).
      const { admin, controller, kube } = yield* startFor([caller, library])
      yield* admin.create("workflowtemplates", "local", library)
      yield* submit(admin, caller)

      const done = yield* untilCompleted(controller, caller)
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
      assert.include(done!.metadata.finalizers ?? [], finalizerName)
      const pods = yield* kube.objects("cluster-2", "pods")
      assert.lengthOf(pods, 1)
      assert.lengthOf(yield* kube.objects("main", "pods"), 0)
      const status = done!["status"] as { storedTemplates: Record<string, unknown>; nodes: Record<string, Record<string, unknown>> }
      assert.deepStrictEqual(Object.keys(status.storedTemplates), ["namespaced/library/remote-echo"])
      const node = Object.values(status.nodes).find((n) => n["name"] === "calls-library[0].echo")!
      assert.deepStrictEqual(node["templateRef"], { name: "library", template: "remote-echo" })
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)), 60_000)

  it.live("errors a workflow whose workflowTemplateRef names no WorkflowTemplate", () =>
    Effect.gen(function*() {
      const wf: KubeObject = {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "Workflow",
        metadata: { name: "no-template", namespace: "local" },
        spec: { workflowTemplateRef: { name: "missing" } }
      }
      const { admin, controller } = yield* startFor([wf])
      yield* submit(admin, wf)
      const done = yield* untilCompleted(controller, wf)
      assert.strictEqual(Embedded.phaseOf(done), "Error")
      assert.strictEqual((done!["status"] as { message: string }).message, 'workflowtemplates.argoproj.io "missing" not found')
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)), 60_000)
})
