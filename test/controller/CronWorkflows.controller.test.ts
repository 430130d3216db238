/** CronWorkflows wired into the controller: a scheduled run is created and run to completion by the same controller. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { eventually, fast, inMemory, workflow } from "./harness.js"

describe("CronWorkflows in the controller", () => {
  it.live("a CronWorkflow's run is created, runs and is counted; Forbid keeps it to one at a time", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const template = workflow({ name: "template" })
        const { admin } = yield* Embedded.start(Embedded.placementOf([template]), fast())
        yield* admin.create("cronworkflows", "local", {
          apiVersion: "argoproj.io/v1alpha1",
          kind: "CronWorkflow",
          metadata: { name: "tick", namespace: "local" },
          spec: { schedules: ["@every 1s"], concurrencyPolicy: "Forbid", successfulJobsHistoryLimit: 1, workflowSpec: template["spec"] }
        })
        const cron = yield* eventually("a counted run", Effect.map(admin.get("cronworkflows", "local", "tick"), (c) => {
          const status = c["status"] as { succeeded?: number } | undefined
          return (status?.succeeded ?? 0) >= 2 ? c : undefined
        }))
        assert.strictEqual((cron["status"] as { phase?: string }).phase, "Active")
        const children = (yield* admin.list("workflows", "local", { labelSelector: "workflows.argoproj.io/cron-workflow=tick" })).items
        // history limit 1 succeeded, and at most one running (Forbid)
        assert.isAtMost(children.length, 2)
        assert.isAtMost(children.filter((wf) => Embedded.phaseOf(wf) !== "Succeeded").length, 1)
        assert.deepStrictEqual(logs.lines.filter((l) => /level=error/.test(l) && /cron/i.test(l)), [])
      })
    ), 30_000)
})
