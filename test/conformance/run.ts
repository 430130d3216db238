/**
 * Conformance suite (see suite.ts) on the embedded runtime (process mode:
 * real host processes): every upstream Argo example, as written and as its
 * multi-cluster variant, on in-memory clusters; the examples' WorkflowTemplates,
 * ClusterWorkflowTemplates and ConfigMaps are created first, and the loopback
 * server their `url` header lines point at is started.
 *
 * Prints `PASS <run>` / `FAIL <run>: <reason>` per workflow run, then
 * `N passed, N failed`, and exits non-zero when anything failed.
 * Env: see suite.ts (FLOTILLA_CONFORMANCE_TIMEOUT defaults to 120 seconds here).
 */
import { Effect, Fiber, References } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { exitWith, judge, loadExamples, manifestOf, placementHints, report, resourceOf, runVariants, startLoopbackServer, supportObjects, timedOut, timeoutFor, timeoutSeconds, type Variant, variantsOf, verbose } from "./suite.js"

const timeout = timeoutSeconds(120)

const main = Effect.gen(function*() {
  // The examples' http templates call it instead of the public URLs their `url` header lines name.
  const server = yield* Effect.acquireRelease(Effect.promise(startLoopbackServer), (s) => Effect.promise(s.close))
  const examples = loadExamples(server.base)
  const variants = variantsOf(examples)
  const support = supportObjects()
  const placement = Embedded.placementOf([...variants.map((v) => v.wf), ...placementHints(support)])
  const { admin, controller } = yield* Embedded.start(placement, { mode: "process" })
  // The templates and configmaps first: a workflow referencing one that is not there yet errors at once.
  for (const { object } of support) yield* admin.create(resourceOf(object), object.metadata.namespace, object)

  const attempt = (v: Variant) =>
    Effect.gen(function*() {
      const ns = v.wf.metadata.namespace!
      const name = v.wf.metadata.name!
      const started = Date.now()
      const seconds = timeoutFor(v.ex, timeout)
      // Subscribe before submitting: a workflow with a TTL may be gone soon after it completes.
      const done = yield* Effect.forkChild(
        Embedded.awaitWorkflow(controller, ns, name, Embedded.isCompleted).pipe(
          Effect.timeoutOrElse({ duration: `${seconds} seconds`, orElse: () => Effect.succeed("timeout" as const) })
        )
      )
      yield* Effect.yieldNow
      yield* admin.create("workflows", ns, manifestOf(v))
      const result = yield* Fiber.join(done)
      if (result === "timeout") {
        const current = yield* controller.workflows.get(ns, name)
        return timedOut(v, current._tag === "Some" ? current.value : undefined, seconds)
      }
      return judge(v, result, started)
    })

  const remove = (v: Variant) =>
    Effect.gen(function*() {
      const ns = v.wf.metadata.namespace!
      const name = v.wf.metadata.name!
      yield* admin.delete("workflows", ns, name).pipe(Effect.ignore)
      yield* Embedded.awaitWorkflow(controller, ns, name, (wf) => wf === undefined).pipe(
        Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.void })
      )
    })

  const outcomes = yield* runVariants(variants, { attempt, remove })
  return report(examples, outcomes)
})

exitWith(Effect.runPromise(main.pipe(
  Effect.scoped,
  Effect.provide(InMemoryKube.layer),
  Effect.provideService(References.MinimumLogLevel, verbose ? "Info" : "None")
)))
