/**
 * A round's pod creation budget (ControllerSettings `createRound`, `maxCreatesPerRound`): a loop
 * wider than the budget is created over several rounds, each writing its status before the next
 * goes on, and every pod is created exactly once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { fast, inMemory } from "./harness.js"
import { submit, untilCompleted } from "./fixtures.js"

const loop = (name: string, items: number): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: "local" },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    templates: [
      { name: "main", steps: [[{ name: "each", template: "work", withItems: Array.from({ length: items }, (_, i) => i) }]] },
      {
        name: "work",
        metadata: { annotations: { "flotilla.dev/simulate-duration": "50ms" } },
        container: { image: "busybox", command: ["true"] }
      }
    ]
  }
})

describe("pod creation per round", () => {
  it.live("a 25-item loop with 4 creates per round: every pod created once, the workflow Succeeds, rounds write progress between", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const wf = loop("wide", 25)
        const base = fast()
        const { admin, controller } = yield* Embedded.start(
          Embedded.placementOf([wf]),
          { ...base, controller: { ...base.controller, timing: { ...base.controller?.timing, maxCreatesPerRound: 4 } } }
        )
        yield* submit(admin, wf)
        const done = yield* untilCompleted(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        const kube = yield* InMemoryKube
        // each pod created once
        const log = yield* kube.requests("main")
        const creates = log.filter((r) => r.verb === "create" && r.resource === "pods")
        assert.strictEqual(creates.length, 25)
        assert.strictEqual(new Set(creates.map((r) => r.name)).size, 25)
        // six rounds of 4 creates, each going on in the next, and a last one of 1
        const rounds = logs.lines.filter((l) => l.includes("pod creation goes on next round")).map((l) => /left=(\d+)/.exec(l)?.[1])
        assert.deepStrictEqual(rounds, ["21", "17", "13", "9", "5", "1"])
      })
    ), 60_000)
})
