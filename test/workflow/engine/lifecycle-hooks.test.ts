/**
 * Lifecycle hooks other than exit, as upstream runs
 * examples/life-cycle-hooks-tmpl-level.yaml and life-cycle-hooks-wf-level.yaml
 * (with a container hook template instead of their http one): a hook starts
 * the first time its expression holds, as `<node>.hooks.<name>` with
 * `nodeFlag.hooked`, and what it follows waits for it.
 */
import { assert, describe, it } from "@effect/vitest"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { Sim, workflow } from "./harness.js"

const echo = { name: "echo", container: { image: "alpine:3.23", command: ["sh", "-c"], args: ["echo \"it was heads\""] } }
const hook = { name: "hook", container: { image: "busybox", command: ["true"] } }

/** Tick, mark every requested pod Running; returns the node names of the pods requested. */
const step = (sim: Sim): Array<string> => {
  const out = sim.tick()
  const fresh = sim.creates(out).filter((c) => !sim.pods.has(c.nodeId))
  sim.apply(out, "Running")
  return fresh.map((c) => Object.values(sim.nodes()).find((n) => n.id === c.nodeId)!.name as string)
}

describe("template-level lifecycle hooks", () => {
  it("steps: running and success hooks start when their expression first holds; the group waits for them", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{
              name: "step-1",
              template: "echo",
              hooks: {
                running: { expression: `steps["step-1"].status == "Running"`, template: "hook" },
                success: { expression: `steps["step-1"].status == "Succeeded"`, template: "hook" }
              }
            }],
            [{ name: "step2", template: "echo", hooks: { success: { expression: `steps.step2.status == "Succeeded"`, template: "hook" } } }]
          ]
        },
        echo,
        hook
      ]
    }, "lh"))
    assert.deepStrictEqual(step(sim), ["lh[0].step-1"])
    // The pod runs: the running hook starts.
    assert.deepStrictEqual(step(sim), ["lh[0].step-1.hooks.running"])
    const running = sim.node("lh[0].step-1.hooks.running")!
    assert.deepStrictEqual(running.nodeFlag, { hooked: true })
    assert.strictEqual(running.templateName, "hook")
    assert.include(sim.node("lh[0].step-1")!.children, running.id)
    // step-1 finishes while its running hook runs: the success hook starts, the next group does not.
    sim.finish(nodeId("lh", "lh[0].step-1"))
    assert.deepStrictEqual(step(sim), ["lh[0].step-1.hooks.success"])
    assert.strictEqual(sim.node("lh[1]"), undefined)
    sim.finish(running.id)
    assert.deepStrictEqual(step(sim), [])
    sim.finish(nodeId("lh", "lh[0].step-1.hooks.success"))
    assert.deepStrictEqual(step(sim), ["lh[1].step2"])
    sim.finish(nodeId("lh", "lh[1].step2"))
    assert.deepStrictEqual(step(sim), ["lh[1].step2.hooks.success"])
    // The running hook is started once only.
    assert.strictEqual(Object.values(sim.nodes()).filter((n) => n.name.endsWith(".hooks.running")).length, 1)
    sim.finish(nodeId("lh", "lh[1].step2.hooks.success"))
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Succeeded")
  })

  it("DAG: a task's hook starts on its status, dependants and the DAG wait for it", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          dag: {
            tasks: [
              { name: "a", template: "echo", hooks: { done: { expression: `tasks.a.status == "Succeeded"`, template: "hook" } } },
              { name: "b", template: "echo", depends: "a", hooks: { done: { expression: `tasks.b.status == "Succeeded"`, template: "hook" } } }
            ]
          }
        },
        echo,
        hook
      ]
    }, "dh"))
    assert.deepStrictEqual(step(sim), ["dh.a"])
    sim.finish(nodeId("dh", "dh.a"))
    assert.deepStrictEqual(step(sim), ["dh.a.hooks.done"])
    assert.deepStrictEqual(step(sim), [])
    sim.finish(nodeId("dh", "dh.a.hooks.done"))
    assert.deepStrictEqual(step(sim), ["dh.b"])
    sim.finish(nodeId("dh", "dh.b"))
    // b is the DAG's target: its hook starts in the reconcile that sees it finish, before the DAG completes.
    assert.deepStrictEqual(step(sim), ["dh.b.hooks.done"])
    assert.strictEqual(sim.last!.status.phase, "Running")
    sim.finish(nodeId("dh", "dh.b.hooks.done"))
    assert.strictEqual(sim.tick().status.phase, "Succeeded")
  })

  it("a hook without an expression errors what it follows, with upstream's message", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: [[{ name: "a", template: "echo", hooks: { running: { template: "hook" } } }]] }, echo, hook]
    }, "nx"))
    sim.runAll()
    assert.strictEqual(sim.last!.status.phase, "Failed")
    assert.strictEqual(sim.node("nx[0]")!.message, "Expression required for hook nx[0].a.hooks.running")
  })
})

describe("workflow-level lifecycle hooks", () => {
  it("spec.hooks.running runs while the workflow runs; the exit hook after (life-cycle-hooks-wf-level.yaml)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      hooks: { exit: { template: "hook" }, running: { expression: `workflow.status == "Running"`, template: "hook" } },
      templates: [{ name: "main", steps: [[{ name: "step1", template: "echo" }]] }, echo, hook]
    }, "wh"))
    assert.sameMembers(step(sim), ["wh[0].step1", "wh.hooks.running"])
    const running = sim.node("wh.hooks.running")!
    assert.deepStrictEqual(running.nodeFlag, { hooked: true })
    assert.include(sim.node("wh")!.children, running.id)
    sim.finish(nodeId("wh", "wh[0].step1"))
    // The entrypoint is done, the hook is not: the workflow waits, no exit handler yet.
    assert.deepStrictEqual(step(sim), [])
    assert.strictEqual(sim.last!.status.phase, "Running")
    sim.finish(running.id)
    assert.deepStrictEqual(step(sim), ["wh.onExit"])
    sim.finish(nodeId("wh", "wh.onExit"))
    assert.strictEqual(sim.tick().status.phase, "Succeeded")
    assert.strictEqual(Object.values(sim.nodes()).filter((n) => n.name === "wh.hooks.running").length, 1)
  })

  it("a hook whose expression never holds never runs", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      hooks: { failed: { expression: `workflow.status == "Failed"`, template: "hook" } },
      templates: [{ name: "main", steps: [[{ name: "step1", template: "echo" }]] }, echo, hook]
    }, "nv"))
    assert.strictEqual(sim.runAll().status.phase, "Succeeded")
    assert.strictEqual(sim.node("nv.hooks.failed"), undefined)
  })
})
