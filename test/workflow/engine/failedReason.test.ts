/**
 * Upstream's inferFailedReason (v4.0.5 workflow/controller/operator.go), as
 * src/workflow/engine/failedReason.ts does it: the node's phase and message
 * of a Failed pod, from the pod's message, else its containers in upstream's
 * order (init containers, main, wait, sidecars).
 */
import { assert, describe, it } from "@effect/vitest"
import type { ContainerObservation, FailedPodStatuses } from "../../../src/workflow/engine/contract.js"
import { inferFailedReason } from "../../../src/workflow/engine/failedReason.js"
import { Sim, workflow } from "./harness.js"

const pod = { podName: "wf-1", namespace: "argo" }
const ended = (name: string, exitCode: number, reason = exitCode === 0 ? "Completed" : "Error", message?: string): ContainerObservation => ({
  name,
  state: "terminated",
  exitCode,
  reason,
  ...(message !== undefined ? { message } : {})
})
const infer = (s: Partial<FailedPodStatuses>, mains: ReadonlyArray<string> = ["main"]) =>
  inferFailedReason(pod, { initContainers: [], containers: [], ...s }, mains)

describe("inferFailedReason", () => {
  it("the pod's own message comes first, Failed", () => {
    assert.deepStrictEqual(
      infer({ podMessage: "The node was low on resource: memory.", containers: [ended("main", 1)] }),
      { phase: "Failed", message: "The node was low on resource: memory." }
    )
  })

  it("an init container that failed is an Error naming it, before main's state", () => {
    assert.deepStrictEqual(
      infer({
        initContainers: [ended("init", 64, "Error", "artifact m failed to load from s3 bucket \"b\": NoSuchKey")],
        containers: [{ name: "wait", state: "waiting", reason: "PodInitializing" }, { name: "main", state: "waiting", reason: "PodInitializing" }]
      }),
      { phase: "Error", message: "init: Error (exit code 64): artifact m failed to load from s3 bucket \"b\": NoSuchKey" }
    )
  })

  it("a container still waiting: Error, 'Pod failed before <c> container starts due to <reason>: <message>'", () => {
    assert.deepStrictEqual(
      infer({ initContainers: [ended("init", 0)], containers: [{ name: "wait", state: "waiting", reason: "ErrImagePull", message: "not found" }, ended("main", 0)] }),
      // main sorts before wait, and it succeeded
      { phase: "Error", message: "Pod failed before wait container starts due to ErrImagePull: not found" }
    )
    assert.strictEqual(infer({ containers: [{ name: "main", state: "waiting", reason: "ContainerCreating" }] }).message, "Pod failed before main container starts due to ContainerCreating: ")
  })

  it("main failed: Failed, '<name>: <reason> (exit code N)' and its termination message if any; main is preferred over wait", () => {
    assert.deepStrictEqual(infer({ containers: [ended("wait", 64, "Error", "failed to save"), ended("main", 3)] }), { phase: "Failed", message: "main: Error (exit code 3)" })
    assert.deepStrictEqual(infer({ containers: [ended("main", 128, "StartError", "exec: not found"), ended("wait", 0)] }), {
      phase: "Failed",
      message: "main: StartError (exit code 128): exec: not found"
    })
  })

  it("wait failed after main succeeded: Error with wait's message", () => {
    assert.deepStrictEqual(infer({ containers: [ended("main", 0), ended("wait", 64, "Error", "failed to save artifact 'out'")] }), {
      phase: "Error",
      message: "wait: Error (exit code 64): failed to save artifact 'out'"
    })
  })

  it("sidecars: one killed with 137 or 143 is ignored, another failure fails the node; main and wait both 0 is Succeeded", () => {
    assert.deepStrictEqual(infer({ containers: [ended("sidecar", 137), ended("main", 0), ended("wait", 0)] }), { phase: "Succeeded", message: "" })
    assert.deepStrictEqual(infer({ containers: [ended("db", 143), ended("main", 0), ended("wait", 0)] }), { phase: "Succeeded", message: "" })
    assert.deepStrictEqual(infer({ containers: [ended("db", 2), ended("main", 0), ended("wait", 0)] }), { phase: "Failed", message: "db: Error (exit code 2)" })
  })

  it("nothing failed but main or wait did not complete: Failed saying which", () => {
    assert.deepStrictEqual(infer({ containers: [ended("main", 0), { name: "wait", state: "running" }] }), {
      phase: "Failed",
      message: "pod failed: wait container did not complete successfully"
    })
    assert.deepStrictEqual(infer({ containers: [{ name: "main", state: "running" }, ended("wait", 0)] }), {
      phase: "Failed",
      message: "pod failed: main container did not complete successfully"
    })
    assert.deepStrictEqual(infer({ containers: [{ name: "main", state: "running" }, { name: "wait", state: "running" }] }), {
      phase: "Failed",
      message: "pod failed: neither main nor wait container completed successfully"
    })
  })

  it("no container status at all: Failed, naming the pod", () => {
    assert.deepStrictEqual(infer({}), { phase: "Failed", message: "can't find failed message for pod wf-1 namespace argo" })
  })

  it("a containerSet's containers are its mains: one that failed is Failed; an init container not called init is a sidecar", () => {
    assert.deepStrictEqual(infer({ containers: [ended("wait", 0), ended("a", 0), ended("b", 1)] }, ["a", "b"]), { phase: "Failed", message: "b: Error (exit code 1)" })
    assert.deepStrictEqual(infer({ initContainers: [ended("init", 0), ended("setup", 137)], containers: [ended("main", 0), ended("wait", 0)] }), {
      phase: "Succeeded",
      message: ""
    })
    assert.deepStrictEqual(infer({ initContainers: [ended("setup", 1)], containers: [ended("main", 0), ended("wait", 0)] }), {
      phase: "Failed",
      message: "setup: Error (exit code 1)"
    })
  })
})

describe("a Failed pod's node (podNodes.ts, with the statuses observed)", () => {
  const wf = (templates: ReadonlyArray<Record<string, unknown>>) => workflow({ entrypoint: "t", templates })
  const one = wf([{ name: "t", container: { image: "busybox", command: ["true"] } }])

  it("an init container's failure (input artifacts) is the node's Error and the workflow's message, not main's PodInitializing", () => {
    const sim = new Sim(one)
    sim.apply(sim.tick(), "Pending")
    sim.setPod("wf", "Failed", {
      failedStatuses: {
        initContainers: [ended("init", 64, "Error", "artifact m failed to load from s3 bucket \"gone\" at 127.0.0.1:9000, key \"k\": NoSuchBucket")],
        containers: [{ name: "wait", state: "waiting", reason: "PodInitializing" }, { name: "main", state: "waiting", reason: "PodInitializing" }]
      }
    })
    const out = sim.tick()
    const message = "init: Error (exit code 64): artifact m failed to load from s3 bucket \"gone\" at 127.0.0.1:9000, key \"k\": NoSuchBucket"
    assert.strictEqual(sim.node("wf")!.phase, "Error")
    assert.strictEqual(sim.node("wf")!.message, message)
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(out.status.message, message)
  })

  it("main's exit: Failed with upstream's 'main: Error (exit code N)'; the pod's own message wins", () => {
    const sim = new Sim(one)
    sim.apply(sim.tick(), "Running")
    sim.setPod("wf", "Failed", { exitCode: 3, failedStatuses: { initContainers: [ended("init", 0)], containers: [ended("main", 3), ended("wait", 0)] } })
    sim.tick()
    assert.deepStrictEqual([sim.node("wf")!.phase, sim.node("wf")!.message], ["Failed", "main: Error (exit code 3)"])
    const evicted = new Sim(one)
    evicted.apply(evicted.tick(), "Running")
    evicted.setPod("wf", "Failed", { reason: "Evicted", failedStatuses: { podMessage: "The node was low on resource: memory.", initContainers: [], containers: [] } })
    evicted.tick()
    assert.deepStrictEqual([evicted.node("wf")!.phase, evicted.node("wf")!.message], ["Failed", "The node was low on resource: memory."])
  })

  it("a pod Failed only by a sidecar argoexec killed (137) is Succeeded", () => {
    const sim = new Sim(one)
    sim.apply(sim.tick(), "Running")
    sim.setPod("wf", "Failed", { exitCode: 0, failedStatuses: { initContainers: [], containers: [ended("main", 0), ended("wait", 0), ended("sidecar", 137)] } })
    const out = sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Succeeded")
    assert.strictEqual(out.status.phase, "Succeeded")
  })

  it("a containerSet's containers are its mains", () => {
    const set = wf([{ name: "t", containerSet: { containers: [{ name: "a", image: "busybox" }, { name: "b", image: "busybox" }] } }])
    const sim = new Sim(set)
    sim.apply(sim.tick(), "Running")
    sim.setPod("wf", "Failed", { failedStatuses: { initContainers: [], containers: [ended("wait", 0), ended("a", 0), ended("b", 2)] } })
    sim.tick()
    assert.deepStrictEqual([sim.node("wf")!.phase, sim.node("wf")!.message], ["Failed", "b: Error (exit code 2)"])
  })
})
