/**
 * Stopping, terminating, suspending and resuming a running workflow (issue 12):
 * `spec.shutdown` and `spec.suspend` as upstream's operator applies them, and
 * the object changes `flotilla stop|terminate|suspend|resume` make
 * (src/workflow/control.ts), with upstream's messages.
 */
import { assert, describe, it } from "@effect/vitest"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { controlWorkflow } from "../../../src/workflow/control.js"
import { Sim, T0, workflow } from "./harness.js"

const echo = { name: "echo", container: { image: "busybox", command: ["echo", "hi"] } }

/** Two steps in a row, with an exit handler. */
const twoStepsWithExit = () =>
  workflow({
    entrypoint: "main",
    onExit: "bye",
    templates: [
      { name: "main", steps: [[{ name: "a", template: "echo" }], [{ name: "b", template: "echo" }]] },
      echo,
      { name: "bye", container: { image: "busybox", command: ["echo", "bye"] } }
    ]
  })

const control = (sim: Sim, action: "suspend" | "resume" | "stop" | "terminate") => {
  const r = controlWorkflow(sim.wf, action, new Date(sim.now).toISOString().replace(/\.\d+Z$/, "Z"))
  assert.isTrue(r.ok, r.ok ? "" : r.error)
  if (r.ok) sim.wf = r.workflow
}

const deletes = (sim: Sim) => sim.last!.actions.filter((a) => a._tag === "DeletePod")

describe("spec.shutdown", () => {
  it("Stop: the running pod is deleted and its node fails, nothing new starts, the exit handler runs, the workflow fails 'Stopped with strategy'", () => {
    const sim = new Sim(twoStepsWithExit())
    sim.apply(sim.tick(), "Running")
    const a = sim.node("wf[0].a")!
    control(sim, "stop")
    sim.tick()
    assert.strictEqual(sim.node("wf[0].a")?.phase, "Failed")
    assert.strictEqual(sim.node("wf[0].a")?.message, "workflow shutdown with strategy:  Stop")
    assert.deepStrictEqual(deletes(sim).map((d) => d.nodeId), [a.id])
    assert.isUndefined(sim.node("wf[1].b"))
    // The exit handler's pod is requested and runs.
    const [exit] = sim.apply(sim.last, "Running")
    assert.strictEqual(exit?.pod.metadata.labels?.["workflows.argoproj.io/on-exit"], "true")
    assert.strictEqual(sim.node("wf.onExit")?.phase, "Pending")
    sim.finish(exit!.nodeId)
    sim.tick()
    assert.strictEqual((sim.wf.status as any)?.phase, "Failed")
    assert.strictEqual((sim.wf.status as any)?.message, "Stopped with strategy 'Stop'")
    assert.strictEqual(sim.node("wf.onExit")?.phase, "Succeeded")
  })

  it("Terminate: the exit handler does not run either", () => {
    const sim = new Sim(twoStepsWithExit())
    sim.apply(sim.tick(), "Running")
    control(sim, "terminate")
    const out = sim.tick()
    assert.strictEqual(sim.node("wf[0].a")?.message, "workflow shutdown with strategy:  Terminate")
    assert.lengthOf(sim.creates(out), 0)
    assert.isUndefined(sim.node("wf.onExit"))
    assert.strictEqual((sim.wf.status as any)?.phase, "Failed")
    assert.strictEqual((sim.wf.status as any)?.message, "Stopped with strategy 'Terminate'")
  })

  it("Terminate before the workflow started: it fails at once, no pod is made", () => {
    const wf = twoStepsWithExit()
    const sim = new Sim({ ...wf, spec: { ...(wf.spec as object), shutdown: "Terminate" } })
    const out = sim.tick()
    assert.lengthOf(sim.creates(out), 0)
    assert.strictEqual((sim.wf.status as any)?.phase, "Failed")
    assert.strictEqual((sim.wf.status as any)?.message, "Stopped with strategy 'Terminate'")
  })

  it("Stop fails an active suspend node and a retry node does not start another attempt", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "wait", template: "wait" }, { name: "flaky", template: "flaky" }]] },
        { name: "wait", suspend: {} },
        { name: "flaky", retryStrategy: { limit: 5 }, container: { image: "busybox", command: ["false"] } }
      ]
    }))
    const [attempt] = sim.apply(sim.tick(), "Running")
    sim.finish(attempt!.nodeId, false)
    control(sim, "stop")
    const out = sim.tick()
    assert.lengthOf(sim.creates(out), 0)
    assert.strictEqual(sim.node("wf[0].wait")?.phase, "Failed")
    assert.strictEqual(sim.node("wf[0].wait")?.message, "Stopped with strategy 'Stop'")
    assert.strictEqual(sim.node("wf[0].flaky")?.phase, "Failed")
    assert.strictEqual(sim.node("wf[0].flaky")?.message, "Stopped with strategy 'Stop'")
    assert.strictEqual((sim.wf.status as any)?.phase, "Failed")
  })
})

describe("spec.suspend and resume", () => {
  it("suspended: the running pod goes on, the next step waits; resumed: it starts", () => {
    const sim = new Sim(twoStepsWithExit())
    sim.apply(sim.tick(), "Running")
    const a = sim.node("wf[0].a")!
    control(sim, "suspend")
    assert.strictEqual((sim.wf.spec as any).suspend, true)
    sim.finish(a.id)
    const held = sim.tick()
    assert.strictEqual(sim.node("wf[0].a")?.phase, "Succeeded")
    assert.lengthOf(sim.creates(held), 0)
    assert.lengthOf(deletes(sim), 0)
    assert.strictEqual((sim.wf.status as any)?.phase, "Running")
    control(sim, "resume")
    assert.notProperty(sim.wf.spec as object, "suspend")
    const resumed = sim.tick()
    assert.lengthOf(sim.creates(resumed), 1)
    assert.strictEqual(sim.node("wf[1].b")?.phase, "Pending")
  })

  it("resume marks an active suspend node Succeeded, its supplied outputs taking their defaults, and the workflow goes on", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "approve", template: "approve" }], [{ name: "after", template: "show", arguments: { parameters: [{ name: "m", value: "{{steps.approve.outputs.parameters.answer}}" }] } }]] },
        { name: "approve", suspend: {}, outputs: { parameters: [{ name: "answer", valueFrom: { supplied: {}, default: "yes" } }] } },
        { name: "show", inputs: { parameters: [{ name: "m" }] }, container: { image: "busybox", command: ["echo", "{{inputs.parameters.m}}"] } }
      ]
    }))
    sim.tick()
    sim.now = T0 + 60_000
    assert.lengthOf(sim.creates(sim.tick()), 0)
    assert.strictEqual(sim.node("wf[0].approve")?.phase, "Running")
    control(sim, "resume")
    assert.strictEqual(sim.node("wf[0].approve")?.phase, "Succeeded")
    const [create] = sim.creates(sim.tick())
    assert.include(JSON.stringify(create!.pod), "\"echo\",\"yes\"")
  })

  it("the suspend node carries its supplied outputs from the start, so an inline suspend template resumes with them too", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "approve", inline: { suspend: {}, inputs: { parameters: [{ name: "answer", default: "from-input" }] }, outputs: { parameters: [{ name: "answer", valueFrom: { supplied: {} } }] } } }],
            [{ name: "after", template: "show", arguments: { parameters: [{ name: "m", value: "{{steps.approve.outputs.parameters.answer}}" }] } }]
          ]
        },
        { name: "show", inputs: { parameters: [{ name: "m" }] }, container: { image: "busybox", command: ["echo", "{{inputs.parameters.m}}"] } }
      ]
    }))
    sim.tick()
    assert.deepStrictEqual(sim.node("wf[0].approve")?.outputs?.parameters, [{ name: "answer", valueFrom: { supplied: {}, default: "from-input" } }])
    control(sim, "resume")
    assert.deepStrictEqual(sim.node("wf[0].approve")?.outputs?.parameters, [{ name: "answer", value: "from-input" }])
    const [create] = sim.creates(sim.tick())
    assert.include(JSON.stringify(create!.pod), "\"echo\",\"from-input\"")
  })

  it("resume refuses a supplied output without a default, naming it; a completed workflow cannot be stopped", () => {
    const sim = new Sim(workflow({
      entrypoint: "approve",
      templates: [{ name: "approve", suspend: {}, outputs: { parameters: [{ name: "answer", valueFrom: { supplied: {} } }] } }]
    }))
    sim.tick()
    const r = controlWorkflow(sim.wf, "resume", "2025-01-01T00:01:00Z")
    assert.deepStrictEqual(r, { ok: false, error: "raw output parameter 'answer' has not been set and does not have a default value" })
    const done: KubeObject = { ...sim.wf, status: { phase: "Succeeded" } }
    const stop = controlWorkflow(done, "stop", "2025-01-01T00:01:00Z")
    assert.isFalse(stop.ok)
    if (!stop.ok) assert.strictEqual(stop.error, "cannot shutdown a completed workflow: workflow wf is Succeeded")
  })
})
