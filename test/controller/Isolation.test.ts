/**
 * Issue 10, "one workflow can freeze the controller for everyone": the
 * probe's hostile workflows, all at once beside honest ones on one
 * controller. Each hostile one ends, naming the limit it crossed (or, the
 * regular expression, simply runs: RE2 has no catastrophic backtracking);
 * every honest one completes. (How much the hostile ones slow the honest
 * ones is measured by `npm run bench`, controller.isolation: a benchmark,
 * not a timed test.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { hostile, honest } from "../../bench/isolation.js"
import { completed, fast, inMemory } from "./harness.js"

const expected: Record<string, { readonly phase: string; readonly message?: string }> = {
  "hostile-recursion": { phase: "Error", message: "Maximum recursion depth exceeded" },
  "hostile-sequence": { phase: "Failed", message: "withSequence.count 10000000 exceeds limits.maxLoopItems" },
  "hostile-expression": { phase: "Error", message: "limits.expression.maxCollectionLength" },
  "hostile-regex": { phase: "Succeeded" }
}

describe("hostile workflows beside honest ones", () => {
  it.live("each hostile workflow ends naming its limit; every honest workflow completes", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const bad = hostile.filter((w) => w.metadata.name! in expected)
        const good = Array.from({ length: 10 }, (_, i) => honest(i))
        const { admin, controller } = yield* Embedded.start(Embedded.placementOf([...bad, ...good]), fast())
        for (const w of [...bad, ...good]) yield* admin.create("workflows", w.metadata.namespace!, w)
        for (const w of good) assert.strictEqual(Embedded.phaseOf(yield* completed(controller, w, "60 seconds")), "Succeeded")
        for (const w of bad) {
          const done = yield* completed(controller, w, "60 seconds")
          const want = expected[w.metadata.name!]!
          const status = (done?.["status"] ?? {}) as { phase?: string; message?: string }
          assert.strictEqual(status.phase, want.phase, `${w.metadata.name}: ${JSON.stringify(status).slice(0, 500)}`)
          if (want.message !== undefined) assert.include(status.message ?? "", want.message, w.metadata.name)
        }
      })
    ), 120_000)
})
