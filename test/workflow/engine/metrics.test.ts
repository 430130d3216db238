/**
 * Custom Prometheus metrics in the pure engine (engine/metrics.ts): what a reconcile emits, once,
 * for templates and the workflow, as upstream's computeMetrics.
 */
import { describe, expect, it } from "vitest"
import type { MetricEmission } from "../../../src/workflow/engine/contract.js"
import { Sim, T0, workflow } from "./harness.js"

const echo = { image: "busybox", command: ["echo"], args: ["hi"] }

/** Every emission over the run, tick by tick. */
const collect = (sim: Sim, decide: (name: string) => boolean = () => true): Array<MetricEmission> => {
  const all: Array<MetricEmission> = []
  for (let i = 0; i < 20; i++) {
    const out = sim.tick()
    all.push(...(out.metrics ?? []))
    const fresh = sim.creates(out).filter((c) => !sim.pods.has(c.nodeId))
    if (fresh.length === 0 && (out.status["phase"] as string) !== "Running") return all
    sim.apply(out, "Running")
    sim.now += 2000
    for (const c of fresh) sim.finish(c.nodeId, decide(c.pod.metadata.name!))
  }
  throw new Error("did not settle")
}

describe("custom metrics", () => {
  it("a template's counter with {{status}} and a histogram of an output, once, when its node completes; the workflow's at its end", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      metrics: {
        prometheus: [
          { name: "wf_result", help: "Workflow results", labels: [{ key: "status", value: "{{workflow.status}}" }], counter: { value: "1" } },
          { name: "wf_duration", help: "Workflow duration", gauge: { realtime: true, value: "{{workflow.duration}}" } }
        ]
      },
      templates: [
        { name: "main", steps: [[{ name: "a", template: "echo" }]] },
        {
          name: "echo",
          metrics: {
            prometheus: [
              { name: "result_counter", help: "Count by status", labels: [{ key: "name", value: "echo" }, { key: "status", value: "{{status}}" }], counter: { value: "1" } },
              { name: "exit_histogram", help: "Exit codes", when: "{{status}} == Succeeded", histogram: { buckets: [1, 0.5], value: "{{exitCode}}" } },
              { name: "skipped", help: "Never", when: "{{status}} == Failed", gauge: { value: "1" } },
              { name: "echo_duration", help: "Duration", gauge: { value: "{{duration}}" } }
            ]
          },
          container: echo
        }
      ]
    }))
    const all = collect(sim)
    expect((sim.wf.status as any)["phase"]).toBe("Succeeded")
    const named = (n: string) => all.filter((e) => e.name === n)
    expect(named("result_counter")).toEqual([{ name: "result_counter", help: "Count by status", labels: { name: "echo", status: "Succeeded" }, kind: "counter", value: 1 }])
    expect(named("exit_histogram")).toEqual([{ name: "exit_histogram", help: "Exit codes", labels: {}, kind: "histogram", value: 0, buckets: [0.5, 1] }])
    expect(named("skipped")).toEqual([])
    expect(named("echo_duration")).toHaveLength(1)
    expect(named("echo_duration")[0]!.value).toBeGreaterThanOrEqual(0)
    expect(named("wf_result")).toEqual([{ name: "wf_result", help: "Workflow results", labels: { status: "Succeeded" }, kind: "counter", value: 1 }])
    // the realtime gauge on every reconcile while it runs, fixed at its end
    const rt = named("wf_duration")
    expect(rt.length).toBeGreaterThan(0)
    expect(rt[0]!.realtime).toEqual({ startedAt: T0 })
    expect(rt[rt.length - 1]!.realtime?.finishedAt).toBeGreaterThan(T0)
  })

  it("a realtime {{duration}} gauge starts with its node", () => {
    const sim = new Sim(workflow({
      entrypoint: "echo",
      templates: [{ name: "echo", metrics: { prometheus: [{ name: "d", help: "D", gauge: { realtime: true, value: "{{duration}}" } }] }, container: echo }]
    }))
    const first = sim.tick()
    expect(first.metrics).toEqual([{ name: "d", help: "D", labels: {}, kind: "gauge", realtime: { startedAt: T0 } }])
  })

  it("a metric that cannot be emitted is a MetricsError condition, not a failure", () => {
    const sim = new Sim(workflow({
      entrypoint: "echo",
      templates: [{
        name: "echo",
        metrics: { prometheus: [{ name: "no_help", counter: { value: "1" } }, { name: "bad-name", help: "x", counter: { value: "1" } }] },
        container: echo
      }]
    }))
    collect(sim)
    expect((sim.wf.status as any)["phase"]).toBe("Succeeded")
    expect((sim.wf.status as any)["conditions"]).toContainEqual({
      type: "MetricsError",
      status: "True",
      message: "could not construct metric 'bad-name': metric name is invalid: names may only contain alphanumeric characters or '_'"
    })
  })
})
