/**
 * The controller skips a reconcile of a workflow copy older than its own last status write, until
 * the write comes back through the watch. A real API server answers an update that changes nothing
 * (the same status with its keys in another order, as it serialises them) with the same
 * resourceVersion: there is then nothing to wait for, and the workflow must go on.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { completed, fast, inMemory, podRunning, waitFor, workflow } from "./harness.js"
import { submit } from "./fixtures.js"

const sortKeys = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(sortKeys)
    : typeof v === "object" && v !== null
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]))
    : v

describe("stale copies", () => {
  it.live("a status stored with its keys in another order (a no-op update for the API server) does not stall the workflow", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({
          name: "reordered",
          // (long enough to be seen Running: a pod's start is written up to StatusWriter's placementHoldMs late)
          steps: [{ annotations: { "flotilla.dev/simulate-duration": "3s" } }, {}]
        })
        const { admin, controller } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* submit(admin, wf)
        yield* waitFor(controller, wf, podRunning, "first pod running")
        const current = yield* admin.get("workflows", "local", "reordered")
        // what a real API server returns: the same object, keys sorted
        yield* admin.replace("workflows", "local", { ...current, status: sortKeys(current["status"]) } as KubeObject)
        const done = yield* completed(controller, wf, "8 seconds")
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
      })
    ), 30_000)
})
