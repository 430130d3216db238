/**
 * flotilla embedded in another Effect program, through the package's public
 * entry points only (`flotilla` and `flotilla/testing`): the controller is a
 * layer provided beside the program's own service, which reads the
 * controller's workflow cache from the context, in one runtime; a workflow
 * placed in another cluster runs to completion.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Ref, Stream } from "effect"
import { Controller, type KubeObject } from "flotilla"
import { Embedded, InMemoryKube } from "flotilla/testing"

/** The host program's own service: it records the workflows it saw complete. */
class CompletionLog extends Context.Service<CompletionLog, {
  readonly completed: Effect.Effect<ReadonlyArray<string>>
}>()("test/CompletionLog") {
  static readonly layer = Layer.effect(
    CompletionLog,
    Effect.gen(function*() {
      const controller = yield* Controller
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      yield* controller.workflows.changes.pipe(
        Stream.filter((change) => Embedded.isCompleted(change.object)),
        Stream.runForEach((change) =>
          Ref.update(seen, (names) => names.includes(change.object.metadata.name!) ? names : [...names, change.object.metadata.name!])
        ),
        Effect.forkScoped
      )
      return CompletionLog.of({ completed: Ref.get(seen) })
    })
  )
}

const remoteWorkflow: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "embedded", namespace: "local" },
  spec: {
    entrypoint: "main",
    templates: [{ name: "main", cluster: "cluster-1", namespace: "remote", container: { image: "busybox", command: ["true"] } }]
  }
}

describe("embedding", () => {
  it.live("the controller layer beside a program's own service, one runtime: a remote workflow completes", () =>
    Effect.gen(function*() {
      const log = yield* CompletionLog
      const kube = yield* InMemoryKube
      yield* kube.adminClient("main").create("workflows", "local", remoteWorkflow)
      const controller = yield* Controller
      const done = yield* Embedded.awaitWorkflow(controller, "local", "embedded", Embedded.isCompleted).pipe(
        Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.die(new Error("the workflow did not complete")) })
      )
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
      // its pod ran in cluster-1, created with the workflow user's identity
      const pods = yield* kube.objects("cluster-1", "pods", "remote")
      assert.deepStrictEqual(pods.map((p) => p.metadata.labels?.["workflows.argoproj.io/workflow"]), ["embedded"])
      yield* Effect.repeat(log.completed, { until: (names) => names.includes("embedded"), times: 100 })
      assert.include(yield* log.completed, "embedded")
    }).pipe(
      Effect.provide(CompletionLog.layer.pipe(
        Layer.provideMerge(Embedded.controllerLayer(Embedded.placementOf([remoteWorkflow]), { mode: "simulate" }))
      ))
    ), 60_000)
})
