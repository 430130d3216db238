/**
 * Inline templates (`inline:` in steps and DAG tasks), as upstream runs
 * examples/steps-inline-workflow.yaml and dag-inline-workflow.yaml: node
 * names as for a named template, no templateName, the pod named
 * `<workflow>-<fnv(node name)>` (GeneratePodName with no template name).
 */
import { assert, describe, it } from "@effect/vitest"
import { fnv32a, nodeId } from "../../../src/workflow/engine/ids.js"
import { needsFinalizer } from "../../../src/workflow/engine/targeting.js"
import { decodeWorkflow } from "../../../src/workflow/model/decode.js"
import { Sim, workflow } from "./harness.js"

const argosay = { container: { image: "argoproj/argosay:v2" } }

describe("inline templates", () => {
  it("a step's inline template runs as its pod, without a templateName (steps-inline-workflow.yaml)", () => {
    const sim = new Sim(workflow({ entrypoint: "main", templates: [{ name: "main", steps: [[{ name: "a", inline: argosay }]] }] }, "steps-inline"))
    const created = sim.creates(sim.tick())
    assert.strictEqual(created.length, 1)
    assert.strictEqual(created[0].pod.metadata.name, `steps-inline-${fnv32a("steps-inline[0].a")}`)
    assert.strictEqual(created[0].nodeId, nodeId("steps-inline", "steps-inline[0].a"))
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    const a = sim.node("steps-inline[0].a")!
    assert.strictEqual(a.type, "Pod")
    assert.strictEqual(a.templateName, undefined)
    assert.strictEqual(a.phase, "Succeeded")
  })

  it("a DAG task's inline template (dag-inline-workflow.yaml)", () => {
    const sim = new Sim(workflow({ entrypoint: "main", templates: [{ name: "main", dag: { tasks: [{ name: "a", inline: argosay }] } }] }, "dag-inline"))
    const created = sim.creates(sim.tick())
    assert.strictEqual(created[0].pod.metadata.name, `dag-inline-${fnv32a("dag-inline.a")}`)
    assert.strictEqual(sim.runAll().status.phase, "Succeeded")
    assert.strictEqual(sim.node("dag-inline.a")!.templateName, undefined)
    assert.deepStrictEqual(sim.node("dag-inline")!.children, [nodeId("dag-inline", "dag-inline.a")])
  })

  it("nested inline templates with inputs, a named template called from inside, and outputs to later steps", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{
              name: "outer",
              arguments: { parameters: [{ name: "msg", value: "hi" }] },
              inline: {
                inputs: { parameters: [{ name: "msg" }] },
                dag: {
                  tasks: [
                    {
                      name: "inner",
                      arguments: { parameters: [{ name: "m", value: "{{inputs.parameters.msg}}" }] },
                      inline: { inputs: { parameters: [{ name: "m" }] }, script: { image: "busybox", command: ["sh"], source: "echo {{inputs.parameters.m}}" } }
                    },
                    { name: "named", template: "echo", depends: "inner" }
                  ]
                }
              }
            }],
            [{ name: "after", template: "echo", arguments: { parameters: [] } }]
          ]
        },
        { name: "echo", container: { image: "busybox", command: ["echo", "named"] } }
      ]
    }))
    const first = sim.apply(sim.tick(), "Running")
    assert.strictEqual(first.length, 1)
    const script = (first[0].pod.spec as any).containers.find((c: any) => c.name === "main")
    assert.isTrue(JSON.stringify(first[0].pod).includes("echo hi"), JSON.stringify(script))
    sim.finish(first[0].nodeId, true, { result: "hi" })
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    const outer = sim.node("wf[0].outer")!
    assert.strictEqual(outer.type, "DAG")
    assert.strictEqual(outer.templateName, undefined)
    assert.deepStrictEqual(outer.inputs, { parameters: [{ name: "msg", value: "hi" }] })
    assert.strictEqual(sim.node("wf[0].outer.inner")!.outputs.result, "hi")
    assert.strictEqual(sim.node("wf[0].outer.named")!.templateName, "echo")
    assert.strictEqual(sim.node("wf[1].after")!.phase, "Succeeded")
  })

  it("an inline template's cluster and namespace place its pod", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: [[{ name: "a", inline: { cluster: "cluster-1", namespace: "remote", container: { image: "busybox" } } }]] }]
    }))
    const [pod] = sim.creates(sim.tick())
    assert.strictEqual(pod.cluster, "cluster-1")
    assert.strictEqual(pod.namespace, "remote")
    assert.strictEqual(sim.runAll().status.phase, "Succeeded")
  })

  it("templateDefaults apply to an inline template; a retried inline template makes a Retry node", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templateDefaults: { activeDeadlineSeconds: 30 },
      templates: [{ name: "main", dag: { tasks: [{ name: "a", inline: { retryStrategy: { limit: 1 }, container: { image: "busybox" } } }] } }]
    }))
    const [pod] = sim.creates(sim.tick())
    assert.strictEqual((pod.pod.spec as any).activeDeadlineSeconds, 30)
    assert.strictEqual(pod.pod.metadata.name, `wf-${fnv32a("wf.a(0)")}`)
    let attempts = 0
    const out = sim.runAll(() => ({ ok: attempts++ > 0 }))
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf.a")!.type, "Retry")
    assert.strictEqual(sim.node("wf.a(1)")!.phase, "Succeeded")
  })

  it("a workflow whose only remote pod is an inline template's (nested) needs the finalizer", () => {
    const nested = (placement: Record<string, unknown>) => {
      const d = decodeWorkflow(workflow({
        entrypoint: "main",
        templates: [{ name: "main", steps: [[{ name: "a", inline: { dag: { tasks: [{ name: "b", inline: { ...placement, container: { image: "busybox" } } }] } } }]] }]
      }))
      if (!d.ok) throw new Error(String(d.error))
      return needsFinalizer(d.value, "main")
    }
    assert.isTrue(nested({ cluster: "cluster-1" }))
    assert.isTrue(nested({ namespace: "remote" }))
    assert.isFalse(nested({}))
  })
})
