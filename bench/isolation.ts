/**
 * Isolation (issue 10): hostile workflows beside honest ones on one
 * controller. Runs 20 honest workflows (three sequential 20 ms pods each) on
 * the embedded runtime, quietly and then beside the hostile set below, and
 * compares the honest ones' latency from submission to completion: the
 * hostile run's p99 should stay within 2x of the quiet run's.
 *
 * The hostile set is the probe's: a template calling itself twice per step,
 * a `withSequence` of ten million, an expression that builds a hundred
 * million items, a backtracking regular expression, and a 2,000-task wide
 * DAG (big but honest). Each must end (Error naming the limit, or its honest end)
 * and none of the hostile ones may slow the others beyond the bound. The big
 * DAG is reported, not bounded: its 2,000 pods share the embedded runtime's
 * capacity (its in-memory API server does most of that work; measured with
 * --cpu-prof, about a quarter of the CPU goes to copying the large workflow
 * object per write and watch event), as they would a real cluster's.
 */
import { Effect } from "effect"
import * as Embedded from "../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../src/kube/api/Resources.js"
import { InMemoryKube } from "../src/testing/InMemoryKube.js"

const ns = "iso"
const wf = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: ns },
  spec: { serviceAccountName: "workflow", ...spec }
})
const pod = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  metadata: { annotations: { "flotilla.dev/simulate-duration": "20ms" } },
  container: { image: "busybox", command: ["true"] },
  ...extra
})

export const honest = (i: number): KubeObject =>
  wf(`honest-${i}`, {
    entrypoint: "main",
    templates: [{ name: "main", steps: [[{ name: "a", template: "p" }], [{ name: "b", template: "p" }], [{ name: "c", template: "p" }]] }, pod("p")]
  })

export const hostile: ReadonlyArray<KubeObject> = [
  wf("hostile-recursion", {
    entrypoint: "grow",
    templates: [{ name: "grow", steps: [[{ name: "left", template: "grow" }, { name: "right", template: "grow" }]] }]
  }),
  wf("hostile-sequence", {
    entrypoint: "main",
    templates: [{ name: "main", steps: [[{ name: "many", template: "p", withSequence: { count: "10000000" } }]] }, pod("p")]
  }),
  wf("hostile-expression", {
    entrypoint: "main",
    templates: [{
      name: "main",
      steps: [[{ name: "big", template: "echo", arguments: { parameters: [{ name: "n", value: "{{=len(sprig.until(100000000))}}" }] } }]]
    }, pod("echo", { inputs: { parameters: [{ name: "n" }] } })]
  }),
  wf("hostile-regex", {
    entrypoint: "main",
    templates: [{
      name: "main",
      steps: [[{ name: "re", template: "p", when: "{{=sprig.regexMatch('^(a+)+$', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!')}}" }]]
    }, pod("p")]
  }),
  wf("big-wide-dag", {
    entrypoint: "main",
    templates: [{
      name: "main",
      dag: { tasks: Array.from({ length: 2000 }, (_, i) => ({ name: `t${i}`, template: "p" })) }
    }, { ...pod("p"), metadata: { annotations: { "flotilla.dev/simulate-duration": "0s" } } }]
  })
]

const p99 = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.99) - 1)]!

/** Submits `extra` first, then the honest workflows; returns the honest ones' latencies (ms) and every final phase. */
const scenario = (extra: ReadonlyArray<KubeObject>, honestN: number, waitExtra: boolean) =>
  Effect.gen(function*() {
    const honestWfs = Array.from({ length: honestN }, (_, i) => honest(i))
    const { admin, controller } = yield* Embedded.start(Embedded.placementOf([...honestWfs, ...extra]), { mode: "simulate" })
    for (const w of extra) yield* admin.create("workflows", ns, w)
    const latencies = yield* Effect.forEach(
      honestWfs,
      (w) =>
        Effect.gen(function*() {
          const start = performance.now()
          yield* admin.create("workflows", ns, w)
          const done = yield* Embedded.awaitWorkflow(controller, ns, w.metadata.name!, Embedded.isCompleted)
          if (Embedded.phaseOf(done) !== "Succeeded") throw new Error(`${w.metadata.name} ended ${Embedded.phaseOf(done)}`)
          return performance.now() - start
        }),
      { concurrency: "unbounded" }
    )
    const phases: Record<string, string> = {}
    if (waitExtra) {
      for (const w of extra) {
        const done = yield* Embedded.awaitWorkflow(controller, ns, w.metadata.name!, Embedded.isCompleted)
        const status = (done?.["status"] ?? {}) as { phase?: string; message?: string }
        phases[w.metadata.name!] = `${status.phase}${status.message ? `: ${status.message.slice(0, 120)}` : ""}`
      }
    }
    return { latencies, phases }
  }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer))

/** One hostile workflow at a time beside the honest ones, as the issue measures it. */
export const isolation = (honestN = 20) =>
  Effect.gen(function*() {
    const quiet = yield* scenario([], honestN, false)
    const quietP99 = p99(quiet.latencies)
    const beside: Record<string, { readonly p99Ms: number; readonly ratio: number; readonly ended: string }> = {}
    for (const h of hostile) {
      const noisy = yield* scenario([h], honestN, true)
      const hostileP99 = p99(noisy.latencies)
      beside[h.metadata.name!] = {
        p99Ms: Math.round(hostileP99),
        ratio: Number((hostileP99 / quietP99).toFixed(2)),
        ended: noisy.phases[h.metadata.name!] ?? ""
      }
    }
    return {
      name: "controller.isolation",
      honestWorkflows: honestN,
      quietP99Ms: Math.round(quietP99),
      beside,
      /** The hostile ones only: a 2,000-pod workflow is honest work that shares the cluster's capacity. */
      worstHostileRatio: Math.max(...Object.entries(beside).filter(([name]) => name.startsWith("hostile-")).map(([, b]) => b.ratio))
    }
  })
