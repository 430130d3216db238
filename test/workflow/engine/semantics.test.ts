/**
 * Semantics users' workflows rely on, as upstream Argo has them (issue 12):
 * script templates without a source, template-level `failFast` with loops and
 * parallelism, and a template's `timeout` / `activeDeadlineSeconds` on a pod
 * that is running.
 */
import { assert, describe, it } from "@effect/vitest"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { defaultImages } from "../../../src/kubelet/images.js"
import { planPod } from "../../../src/kubelet/PodPlan.js"
import type { EngineAction } from "../../../src/workflow/engine/contract.js"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { deadlineGraceMs } from "../../../src/workflow/engine/podNodes.js"
import { lintWorkflow } from "../../../src/workflow/lint/lint.js"
import { container, Sim, workflow } from "./harness.js"

type DeletePodAction = Extract<EngineAction, { _tag: "DeletePod" }>

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z")
const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra, container: { image: "busybox", command: ["true"] } })
const podNodes = (sim: Sim) => Object.values(sim.nodes()).filter((n) => n.type === "Pod")
const deletes = (sim: Sim): Array<DeletePodAction> => sim.last!.actions.filter((a): a is DeletePodAction => a._tag === "DeletePod")

describe("script templates without a source", () => {
  const scriptWf = (script: Record<string, unknown>): KubeObject =>
    workflow({ entrypoint: "s", templates: [{ name: "s", script: { image: "busybox", command: ["sh", "-c"], args: ["echo hi"], ...script } }] })

  for (const [what, script] of [["absent", {}], ["empty", { source: "" }]] as const) {
    it(`a source that is ${what} is valid: the container runs as is, the script path is not appended`, () => {
      const sim = new Sim(scriptWf(script))
      const out = sim.tick()
      assert.strictEqual(out.status.phase, "Running", JSON.stringify(out.status.message))
      const [pod] = sim.creates(out)
      assert.ok(pod, "a pod is requested")
      const main = container(pod.pod, "main")
      assert.deepStrictEqual(main.args, ["echo hi"])
      assert.deepStrictEqual(main.command.slice(-2), ["sh", "-c"])
    })
  }

  it("with a source, the staged script's path is appended as before", () => {
    const sim = new Sim(scriptWf({ source: "echo from source" }))
    const [pod] = sim.creates(sim.tick())
    assert.deepStrictEqual(container(pod.pod, "main").args, ["echo hi", "/argo/staging/script"])
  })

  it("the embedded kubelet runs it as its container too (no staged script on the command line)", () => {
    for (const script of [{}, { source: "" }]) {
      const [pod] = new Sim(scriptWf(script)).tick().actions.filter((a) => a._tag === "CreatePod") as Array<Extract<EngineAction, { _tag: "CreatePod" }>>
      const plan = planPod(pod.pod, defaultImages)
      assert.strictEqual(plan._tag, "PodPlan")
      if (plan._tag === "PodPlan") {
        assert.deepStrictEqual(plan.argv, ["sh", "-c", "echo hi"])
        assert.strictEqual(plan.scriptSource, undefined)
      }
    }
    const [withSource] = new Sim(scriptWf({ source: "echo x" })).tick().actions.filter((a) => a._tag === "CreatePod") as Array<Extract<EngineAction, { _tag: "CreatePod" }>>
    const plan = planPod(withSource.pod, defaultImages)
    if (plan._tag === "PodPlan") assert.deepStrictEqual(plan.argv, ["sh", "-c", "echo hi", "/argo/staging/script"])
    else assert.fail(plan._tag)
  })

  it("lint accepts a script template without a source", () => {
    assert.deepStrictEqual(lintWorkflow(scriptWf({})), [])
    assert.deepStrictEqual(lintWorkflow(scriptWf({ source: "" })), [])
  })
})

const failFastMessage = "template has failed or errored children and failFast enabled"

describe("template-level failFast", () => {
  const loops: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
    ["withItems", { withItems: ["a", "b", "c", "d"] }],
    ["withParam", { withParam: JSON.stringify(["a", "b", "c", "d"]) }],
    ["withSequence", { withSequence: { count: "4" } }]
  ]
  const loopWf = (loop: Record<string, unknown>, parallelism: number) =>
    workflow({
      entrypoint: "main",
      templates: [{ name: "main", parallelism, failFast: true, steps: [[{ name: "item", template: "x", ...loop }]] }, c("x")]
    })

  for (const [kind, loop] of loops) {
    it(`steps with ${kind} and parallelism 1: after an item fails, no further item starts; upstream's message`, () => {
      const sim = new Sim(loopWf(loop, 1))
      const [first] = sim.apply(sim.tick(), "Running")
      assert.ok(first)
      sim.finish(first.nodeId, false)
      const out = sim.tick()
      assert.strictEqual(sim.creates(out).length, 0, "no item after the failed one starts")
      assert.strictEqual(podNodes(sim).length, 1)
      assert.strictEqual(out.status.phase, "Failed")
      assert.strictEqual(out.status.message, failFastMessage)
      assert.strictEqual(sim.node("wf")!.phase, "Failed")
      assert.strictEqual(sim.node("wf")!.message, failFastMessage)
      assert.strictEqual(sim.node("wf[0]")!.phase, "Failed")
      assert.strictEqual(sim.node("wf[0]")!.message, failFastMessage)
    })
  }

  it("parallelism 2: a running item finishes, the ones not started never start", () => {
    const sim = new Sim(loopWf(loops[0][1], 2))
    const started = sim.apply(sim.tick(), "Running")
    assert.strictEqual(started.length, 2)
    sim.finish(started[0].nodeId, false)
    let out = sim.tick()
    assert.strictEqual(sim.creates(out).filter((c) => !sim.pods.has(c.nodeId)).length, 0, "nothing new while one still runs")
    assert.strictEqual(out.status.phase, "Running")
    assert.strictEqual(sim.node("wf")!.phase, "Running")
    sim.now += 1000
    sim.finish(started[1].nodeId)
    out = sim.tick()
    assert.strictEqual(sim.creates(out).length, 0)
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(out.status.message, failFastMessage)
    assert.deepStrictEqual(podNodes(sim).map((n) => n.phase).sort(), ["Failed", "Succeeded"])
    assert.strictEqual(sim.node("wf[0].item(2:c)"), undefined)
    assert.strictEqual(sim.node("wf[0].item(3:d)"), undefined)
  })

  it("upstream's parallelism-step-fail-fast: step1 fails, step2 ends Succeeded, the group and workflow fail with the message", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", parallelism: 2, failFast: true, steps: [[{ name: "step1", template: "fail" }, { name: "step2", template: "sleep" }]] },
        c("fail"),
        c("sleep")
      ]
    }))
    const out = sim.runAll((p) => ({ ok: p.nodeId !== nodeId("wf", "wf[0].step1") }))
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(out.status.message, failFastMessage)
    assert.strictEqual(sim.node("wf[0]")!.phase, "Failed")
    assert.strictEqual(sim.node("wf[0].step1")!.phase, "Failed")
    assert.strictEqual(sim.node("wf[0].step2")!.phase, "Succeeded")
  })

  it("without failFast a loop runs every item (regression)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", parallelism: 1, steps: [[{ name: "item", template: "x", withItems: ["a", "b", "c"] }]] }, c("x")]
    }))
    const out = sim.runAll((p) => ({ ok: p.nodeId !== nodeId("wf", "wf[0].item(0:a)") }))
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(podNodes(sim).length, 3)
    assert.notStrictEqual(out.status.message, failFastMessage)
  })

  it("DAG: template failFast stops tasks not yet begun (even satisfied ones) and fails with upstream's message", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{
        name: "main",
        parallelism: 2,
        failFast: true,
        dag: { tasks: [{ name: "bad", template: "x" }, { name: "slow", template: "x" }, { name: "after", template: "x", depends: "slow" }] }
      }, c("x")]
    }))
    const first = sim.apply(sim.tick(), "Running")
    assert.strictEqual(first.length, 2)
    sim.finish(nodeId("wf", "wf.bad"), false)
    let out = sim.tick()
    assert.strictEqual(out.status.phase, "Running", "slow still runs")
    sim.finish(nodeId("wf", "wf.slow"))
    out = sim.tick()
    assert.strictEqual(sim.creates(out).length, 0)
    assert.strictEqual(sim.node("wf.after"), undefined, "after never starts")
    assert.strictEqual(sim.node("wf.slow")!.phase, "Succeeded")
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(out.status.message, failFastMessage)
  })

  it("DAG: template failFast false does not turn dag.failFast (default true) off", () => {
    // Targets bad and slow; after bad fails the DAG is assessed Failed at once with dag.failFast, once slow's node is done.
    const mk = (tmplFailFast: boolean | undefined, dagFailFast: boolean | undefined) =>
      workflow({
        entrypoint: "main",
        templates: [{
          name: "main",
          ...(tmplFailFast === undefined ? {} : { failFast: tmplFailFast }),
          dag: { ...(dagFailFast === undefined ? {} : { failFast: dagFailFast }), tasks: [{ name: "bad", template: "x" }, { name: "slow", template: "x" }] }
        }, c("x")]
      })
    for (const [t, d] of [[false, undefined], [undefined, undefined], [false, false]] as const) {
      const sim = new Sim(mk(t, d))
      const out = sim.runAll((p) => ({ ok: p.nodeId !== nodeId("wf", "wf.bad") }))
      assert.strictEqual(out.status.phase, "Failed", `${t}/${d}`)
      assert.notStrictEqual(out.status.message, failFastMessage)
    }
  })
})

describe("template timeout and activeDeadlineSeconds on a running pod", () => {
  const deadlineMessage = "Pod was active on the node longer than the specified deadline"

  it("a DAG task with timeout 10s whose pod runs on ends Failed: the controller fails it once the kubelet's grace has passed and deletes the pod", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", dag: { tasks: [{ name: "t", template: "sleep" }] } }, c("sleep", { timeout: "10s" })]
    }))
    let out = sim.tick()
    const [pod] = sim.apply(out, "Running")
    assert.strictEqual((pod.pod.spec as any).activeDeadlineSeconds, 10)
    assert.strictEqual(out.requeueAfterMs, 10_000)
    sim.setPod(pod.nodeId, "Running", { startedAt: iso(sim.now + 1000) })
    sim.now += 5_000
    out = sim.tick()
    assert.strictEqual(sim.node("wf.t")!.phase, "Running")
    assert.strictEqual(out.requeueAfterMs, 5_000 + deadlineGraceMs)
    // The kubelet has not enforced it (slow, or not at all): the controller does, when it wakes.
    sim.now += out.requeueAfterMs!
    out = sim.tick()
    assert.strictEqual(sim.node("wf.t")!.phase, "Failed")
    assert.strictEqual(sim.node("wf.t")!.message, deadlineMessage)
    assert.ok(deletes(sim).some((a) => a.nodeId === pod.nodeId), "the pod is deleted")
    assert.strictEqual(out.status.phase, "Failed")
    // The pod finishing later changes nothing.
    sim.now += 5_000
    sim.finish(pod.nodeId)
    out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf.t")!.phase, "Failed")
  })

  it("the kubelet's DeadlineExceeded: the node fails with its message (and a made-up one when it left none)", () => {
    for (const message of [deadlineMessage, undefined]) {
      const sim = new Sim(workflow({ entrypoint: "x", templates: [c("x", { activeDeadlineSeconds: 30 })] }))
      const [pod] = sim.apply(sim.tick(), "Running")
      assert.strictEqual((pod.pod.spec as any).activeDeadlineSeconds, 30)
      sim.now += 29_000
      sim.setPod(pod.nodeId, "Failed", { reason: "DeadlineExceeded", exitCode: 137, ...(message ? { message } : {}), finishedAt: iso(sim.now) })
      const out = sim.tick()
      assert.strictEqual(sim.node("wf")!.phase, "Failed")
      assert.strictEqual(sim.node("wf")!.message, deadlineMessage)
      assert.strictEqual(out.status.phase, "Failed")
    }
  })

  it("activeDeadlineSeconds counts from the pod's start; the controller fails a pod still Running past it", () => {
    const sim = new Sim(workflow({ entrypoint: "x", templates: [c("x", { activeDeadlineSeconds: 20 })] }))
    let out = sim.tick()
    const [pod] = sim.apply(out, "Pending")
    assert.strictEqual(out.requeueAfterMs, undefined, "no deadline runs before the pod starts")
    sim.now += 7_000
    sim.setPod(pod.nodeId, "Running", { startedAt: iso(sim.now) })
    out = sim.tick()
    assert.strictEqual(out.requeueAfterMs, 20_000 + deadlineGraceMs)
    sim.now += 19_000 + deadlineGraceMs
    out = sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Running")
    sim.now += 1_000
    out = sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.message, deadlineMessage)
    assert.ok(deletes(sim).some((a) => a.nodeId === pod.nodeId))
  })

  it("the pod gets what is left of the timeout; with a second or less left no pod is made", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: [[{ name: "a", template: "x" }]] }, c("x", { timeout: "30s" })]
    }))
    const out = sim.tick()
    assert.strictEqual((sim.creates(out)[0].pod.spec as any).activeDeadlineSeconds, 30)
    // The pod was never seen (creation failed); it is asked for again with less time, then not at all.
    sim.now += 12_500
    assert.strictEqual((sim.creates(sim.tick())[0].pod.spec as any).activeDeadlineSeconds, 17)
    sim.now += 16_000
    const late = sim.tick()
    assert.strictEqual(sim.creates(late).length, 0)
    assert.strictEqual(sim.node("wf[0].a")!.phase, "Error")
    assert.strictEqual(sim.node("wf[0].a")!.message, "wf[0].a exceeded its deadline")
  })

  it("a pod that succeeded in time is not failed while its outputs are awaited past the deadline", () => {
    const sim = new Sim(workflow({ entrypoint: "x", templates: [{ name: "x", timeout: "10s", script: { image: "busybox", source: "echo hi" } }] }))
    const [pod] = sim.apply(sim.tick(), "Running")
    sim.now += 9_000
    sim.setPod(pod.nodeId, "Succeeded", { exitCode: 0, finishedAt: iso(sim.now) })
    sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Running", "waiting for the task result")
    sim.now += 5_000
    sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Running")
    sim.taskResults.set(pod.nodeId, { nodeId: pod.nodeId, outputs: { result: "hi" }, completed: true })
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Succeeded")
  })
})
