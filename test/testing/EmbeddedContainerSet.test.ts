/**
 * containerSet and inline templates end to end on the embedded runtime, pods
 * run as processes: the set's containers in dependency order with their
 * Container nodes Succeeded, main's stdout read by the next task, by an
 * inline template.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const workflow: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "cs", namespace: "default" },
  spec: {
    entrypoint: "main",
    templates: [
      {
        name: "main",
        dag: {
          tasks: [
            { name: "set", template: "group" },
            {
              name: "check",
              dependencies: ["set"],
              arguments: { parameters: [{ name: "x", value: "{{tasks.set.outputs.result}}" }] },
              inline: {
                inputs: { parameters: [{ name: "x" }] },
                container: { image: "busybox", command: ["sh", "-c", "test \"{{inputs.parameters.x}}\" = hi"] }
              }
            }
          ]
        }
      },
      {
        name: "group",
        containerSet: {
          containers: [
            { name: "a", image: "busybox", command: ["sh", "-c", "echo a"] },
            { name: "b", image: "busybox", command: ["sh", "-c", "echo b"], dependencies: ["a"] },
            { name: "main", image: "busybox", command: ["sh", "-c", "echo hi"], dependencies: ["b"] }
          ]
        }
      }
    ]
  }
}

describe("embedded runtime: containerSet and inline templates", () => {
  it.live("graph of containers in one pod, then an inline template reading its result", () =>
    Effect.gen(function*() {
      const { admin, controller } = yield* Embedded.start(Embedded.placementOf([workflow]), { mode: "process" })
      yield* admin.create("workflows", "default", workflow)
      const done = yield* Embedded.awaitWorkflow(controller, "default", "cs", Embedded.isCompleted).pipe(
        Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error("cs did not complete")) })
      )
      const nodes = Object.values((done!.status as { nodes: Record<string, any> }).nodes)
      const byName = (n: string) => nodes.find((x) => x.name === n)
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(nodes.map((n) => [n.name, n.phase, n.message])))
      for (const c of ["a", "b", "main"]) {
        assert.strictEqual(byName(`cs.set.${c}`).type, "Container")
        assert.strictEqual(byName(`cs.set.${c}`).phase, "Succeeded")
      }
      assert.strictEqual(byName("cs.set").outputs.result, "hi")
      const check = byName("cs.check")
      assert.strictEqual(check.phase, "Succeeded")
      assert.isUndefined(check.templateName)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})
