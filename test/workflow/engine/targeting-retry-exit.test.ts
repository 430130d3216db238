import { assert, describe, it } from "@effect/vitest"
import { decodeWorkflow } from "../../../src/workflow/model/decode.js"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { deadlineGraceMs } from "../../../src/workflow/engine/podNodes.js"
import { needsFinalizer, targetOf } from "../../../src/workflow/engine/targeting.js"
import { Sim, workflow } from "./harness.js"

const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra, container: { image: "busybox", command: ["true"] } })

describe("cluster / namespace targeting", () => {
  it("a template's cluster/namespace decide where the pod goes; no ownerReference remotely", () => {
    const wf = workflow({ entrypoint: "a", templates: [c("a", { cluster: "cluster-1", namespace: "remote" })] })
    const sim = new Sim(wf)
    const [create] = sim.creates(sim.tick())
    assert.strictEqual(create.cluster, "cluster-1")
    assert.strictEqual(create.namespace, "remote")
    assert.strictEqual(create.pod.metadata.namespace, "remote")
    assert.strictEqual(create.pod.metadata.ownerReferences, undefined)
    assert.strictEqual(create.pod.metadata.labels?.["workflows.argoproj.io/cluster"], "main")
    assert.strictEqual(create.pod.metadata.annotations?.["workflows.argoproj.io/workflow-namespace"], "argo")
    const decoded = decodeWorkflow(wf)
    assert.ok(decoded.ok)
    if (decoded.ok) assert.strictEqual(needsFinalizer(decoded.value, "main"), true)
  })

  it("a namespace alone stays in the local cluster, still without ownerReference", () => {
    const sim = new Sim(workflow({ entrypoint: "a", templates: [c("a", { namespace: "other" })] }))
    const [create] = sim.creates(sim.tick())
    assert.strictEqual(create.cluster, "main")
    assert.strictEqual(create.namespace, "other")
    assert.strictEqual(create.pod.metadata.ownerReferences, undefined)
  })

  it("steps/DAG templates pass cluster and namespace down, separately, unless overridden", () => {
    const wf = workflow({
      entrypoint: "outer",
      templates: [
        { name: "outer", cluster: "c2", steps: [[{ name: "plain", template: "leaf" }, { name: "own-ns", template: "leaf-ns" }, { name: "own-cluster", template: "leaf-cluster" }, { name: "inner", template: "inner" }]] },
        { name: "inner", namespace: "n3", dag: { tasks: [{ name: "x", template: "leaf" }] } },
        c("leaf"),
        c("leaf-ns", { namespace: "n1" }),
        c("leaf-cluster", { cluster: "c9" })
      ]
    })
    const sim = new Sim(wf)
    const where = Object.fromEntries(sim.creates(sim.tick()).map((a) => [a.nodeId, `${a.cluster}/${a.namespace}`]))
    assert.strictEqual(where[nodeId("wf", "wf[0].plain")], "c2/argo")
    assert.strictEqual(where[nodeId("wf", "wf[0].own-ns")], "c2/n1")
    assert.strictEqual(where[nodeId("wf", "wf[0].own-cluster")], "c9/argo")
    assert.strictEqual(where[nodeId("wf", "wf[0].inner.x")], "c2/n3")
  })

  it("targetOf / needsFinalizer for a purely local workflow", () => {
    const decoded = decodeWorkflow(workflow({ entrypoint: "a", templates: [c("a"), c("b", { cluster: "main", namespace: "argo" })] }))
    assert.ok(decoded.ok)
    if (!decoded.ok) return
    assert.strictEqual(needsFinalizer(decoded.value, "main"), false)
    assert.deepStrictEqual(targetOf(decoded.value.spec.templates[0], decoded.value, "main"), { cluster: "main", namespace: "argo" })
    assert.deepStrictEqual(targetOf(decoded.value.spec.templates[0], decoded.value, "main", { namespace: "x" }), { cluster: "main", namespace: "x" })
  })
})

describe("retryStrategy", () => {
  it("retries with backoff: Retry parent, children (n), requeueAfterMs, No more retries left", () => {
    const sim = new Sim(workflow({
      entrypoint: "r",
      templates: [{ ...c("r"), retryStrategy: { limit: "2", backoff: { duration: "10s", factor: "2" } } }]
    }))
    const first = sim.apply(sim.tick(), "Running")
    assert.strictEqual(first[0].nodeId, nodeId("wf", "wf(0)"))
    assert.strictEqual(sim.node("wf")!.type, "Retry")
    assert.strictEqual(sim.node("wf(0)")!.type, "Pod")
    assert.deepStrictEqual(sim.node("wf(0)")!.nodeFlag, { retried: true })
    sim.finish(first[0].nodeId, false)
    let out = sim.tick()
    assert.strictEqual(sim.creates(out).length, 0)
    assert.strictEqual(out.requeueAfterMs, 10_000)
    assert.strictEqual(sim.node("wf")!.message, "Backoff for 10s")
    assert.strictEqual(sim.node("wf")!.phase, "Running")
    sim.now += 10_000
    out = sim.tick()
    const second = sim.apply(out, "Running")
    assert.strictEqual(second[0].nodeId, nodeId("wf", "wf(1)"))
    assert.strictEqual(sim.node("wf")!.message, undefined)
    sim.finish(second[0].nodeId, false)
    out = sim.tick()
    assert.strictEqual(out.requeueAfterMs, 20_000)
    sim.now += 20_000
    const third = sim.apply(sim.tick(), "Running")
    assert.strictEqual(third[0].nodeId, nodeId("wf", "wf(2)"))
    sim.finish(third[0].nodeId, false)
    out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.message, "No more retries left")
    assert.deepStrictEqual(sim.node("wf")!.children, ["wf(0)", "wf(1)", "wf(2)"].map((n) => nodeId("wf", n)))
  })

  it("a later success completes the Retry node; OnError does not retry failures", () => {
    const sim = new Sim(workflow({ entrypoint: "r", templates: [{ ...c("r"), retryStrategy: { limit: 3 } }] }))
    let n = 0
    const out = sim.runAll(() => ({ ok: n++ > 0 }))
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf")!.phase, "Succeeded")
    assert.strictEqual(sim.node("wf(0)")!.phase, "Failed")
    assert.strictEqual(sim.node("wf(1)")!.phase, "Succeeded")

    const onError = new Sim(workflow({ entrypoint: "r", templates: [{ ...c("r"), retryStrategy: { limit: 3, retryPolicy: "OnError" } }] }))
    const o2 = onError.runAll(() => ({ ok: false }))
    assert.strictEqual(o2.status.phase, "Failed")
    assert.strictEqual(onError.node("wf")!.children.length, 1)
  })
})

describe("exit handlers", () => {
  it("spec.onExit runs <wf>.onExit after the entrypoint with workflow.status, labelled on-exit", () => {
    const sim = new Sim(workflow({
      entrypoint: "a",
      onExit: "bye",
      templates: [c("a"), { name: "bye", container: { image: "busybox", command: ["echo", "{{workflow.status}}"] } }]
    }))
    sim.apply(sim.tick(), "Running")
    sim.finish("wf", false)
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Running")
    const [exit] = sim.apply(out, "Running")
    assert.strictEqual(exit.nodeId, nodeId("wf", "wf.onExit"))
    assert.strictEqual(exit.pod.metadata.labels?.["workflows.argoproj.io/on-exit"], "true")
    assert.deepStrictEqual((exit.pod.spec as any).containers[1].command.slice(-2), ["echo", "Failed"])
    assert.deepStrictEqual(sim.node("wf.onExit")!.nodeFlag, { hooked: true })
    sim.finish(exit.nodeId)
    const done = sim.tick()
    assert.strictEqual(done.status.phase, "Failed")
  })

  it("step-level onExit runs before the group completes", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: [[{ name: "s", template: "a", onExit: "bye" }], [{ name: "t", template: "a" }]] }, c("a"), c("bye")]
    }))
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    const hook = sim.node("wf[0].s.onExit")!
    assert.ok(hook)
    assert.ok(sim.node("wf[0].s")!.children.includes(hook.id))
    assert.ok(Date.parse(hook.startedAt) <= Date.parse(sim.node("wf[1].t")!.startedAt))
  })
})

describe("podGC and deadlines", () => {
  it("OnPodCompletion deletes finished pods (after deleteDelayDuration)", () => {
    const sim = new Sim(workflow({ entrypoint: "a", podGC: { strategy: "OnPodCompletion", deleteDelayDuration: "30s" }, templates: [c("a")] }))
    sim.apply(sim.tick(), "Running")
    sim.finish("wf")
    let out = sim.tick()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(out.actions, [])
    assert.strictEqual(out.requeueAfterMs, 30_000)
    sim.now += 30_000
    out = sim.tick()
    assert.deepStrictEqual(out.actions.map((a) => a._tag), ["DeletePod"])
    // a deleted, finished pod is no longer asked for
    sim.pods.delete("wf")
    assert.deepStrictEqual(sim.tick().actions, [])
    const other = new Sim(workflow({ entrypoint: "a", podGC: { strategy: "OnPodCompletion" }, templates: [c("a")] }))
    const pod = other.creates(other.tick())[0].pod
    assert.strictEqual(pod.metadata.annotations?.["workflows.argoproj.io/pod-gc-strategy"], "OnPodCompletion/0s")
  })

  it("OnWorkflowSuccess keeps pods of a failed workflow (labels them completed)", () => {
    const sim = new Sim(workflow({ entrypoint: "a", podGC: { strategy: "OnWorkflowSuccess" }, templates: [c("a")] }))
    sim.apply(sim.tick(), "Running")
    sim.finish("wf", false)
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.deepStrictEqual(out.actions.map((a) => a._tag), ["LabelPodCompleted"])
  })

  it("activeDeadlineSeconds fails running steps and caps the pod deadline", () => {
    const sim = new Sim(workflow({ entrypoint: "a", activeDeadlineSeconds: 60, templates: [c("a")] }))
    const out = sim.tick()
    assert.strictEqual((sim.creates(out)[0].pod.spec as any).activeDeadlineSeconds, 60)
    assert.strictEqual(out.requeueAfterMs, 60_000)
    sim.apply(out, "Running")
    // past the deadline the running pod's kubelet reports first (its activeDeadlineSeconds): the
    // controller waits deadlineGraceMs before failing the node itself
    sim.now += 61_000
    const waiting = sim.tick()
    assert.strictEqual(waiting.status.phase, "Running")
    assert.strictEqual(waiting.requeueAfterMs, 60_000 + deadlineGraceMs - 61_000)
    assert.strictEqual(waiting.actions.filter((a) => a._tag === "DeletePod").length, 0)
    sim.now += deadlineGraceMs
    const late = sim.tick()
    assert.strictEqual(sim.node("wf")!.message, "Step exceeded its deadline")
    assert.strictEqual(late.status.phase, "Failed")
    assert.deepStrictEqual(late.actions.filter((a) => a._tag === "DeletePod").length, 1)
  })

  it("past the workflow deadline, a running pod ended by its kubelet within the grace is what its node records (exit code 137)", () => {
    const sim = new Sim(workflow({ entrypoint: "a", activeDeadlineSeconds: 60, templates: [c("a")] }))
    sim.apply(sim.tick(), "Running")
    sim.now += 61_000
    assert.strictEqual(sim.tick().status.phase, "Running")
    sim.setPod("wf", "Failed", { exitCode: 137, finishedAt: new Date(sim.now).toISOString().replace(/\.\d+Z$/, "Z") })
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.outputs?.exitCode, "137")
    assert.notStrictEqual(sim.node("wf")!.message, "Step exceeded its deadline")
  })

  it("workflow parallelism limits concurrent pods", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      parallelism: 1,
      templates: [{ name: "main", steps: [[{ name: "x", template: "a" }, { name: "y", template: "a" }]] }, c("a")]
    }))
    const first = sim.apply(sim.tick(), "Running")
    assert.strictEqual(first.length, 1)
    assert.strictEqual(sim.creates(sim.tick()).length, 0)
    sim.finish(first[0].nodeId)
    const second = sim.apply(sim.tick(), "Running")
    assert.strictEqual(second.length, 1)
    assert.notStrictEqual(second[0].nodeId, first[0].nodeId)
  })
})
