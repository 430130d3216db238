/**
 * Data is never code: a parameter value or a pod's output that contains `{{...}}` or `{{=...}}`
 * is text. It is substituted into the template that receives it once, as written, and never
 * evaluated again on its way to a container, another step or a `when`.
 */
import { assert, describe, it } from "@effect/vitest"
import { type CreatePod, container, Sim, workflow } from "./harness.js"

const TAG = "{{workflow.name}}"
const EXPR = "{{=sprig.repeat(3,'x')}}"
const RESULT = "{{steps.produce.outputs.result}} {{=1 + 1}}"

const echo = {
  name: "echo",
  inputs: { parameters: [{ name: "a" }, { name: "b" }] },
  container: { image: "busybox", command: ["echo"], args: ["{{inputs.parameters.a}}", "{{inputs.parameters.b}}"] }
}

const mainArgs = (pod: CreatePod) => container(pod.pod, "main").args as Array<string>
const podOf = (pods: Array<CreatePod>, node: string) => {
  const p = pods.find((c) => c.pod.metadata.annotations?.["workflows.argoproj.io/node-name"] === node)
  if (p === undefined) throw new Error(`no pod for ${node}: ${pods.map((c) => c.pod.metadata.annotations?.["workflows.argoproj.io/node-name"]).join(", ")}`)
  return p
}
const inputsOf = (sim: Sim, node: string) =>
  Object.fromEntries((sim.node(node)!.inputs.parameters as Array<{ name: string; value: string }>).map((p) => [p.name, p.value]))

/** Runs the workflow to the end, finishing every pod with the outputs `outputs` gives it; returns the pods created. */
const run = (sim: Sim, outputs: (node: string) => { parameters?: Array<{ name: string; value: string }>; result?: string } | undefined = () => undefined) => {
  const pods: Array<CreatePod> = []
  const out = sim.runAll((c) => {
    pods.push(c)
    return { ok: true, outputs: outputs(c.pod.metadata.annotations?.["workflows.argoproj.io/node-name"] ?? "") }
  })
  return { out, pods }
}

describe("data is never code", () => {
  it("a workflow argument with {{...}} and {{=...}} reaches inputs, container args and a nested step as literal text", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      arguments: { parameters: [{ name: "a", value: TAG }, { name: "b", value: EXPR }] },
      templates: [
        {
          name: "main",
          inputs: { parameters: [{ name: "a" }, { name: "b" }] },
          steps: [
            [{ name: "first", template: "echo", arguments: { parameters: [{ name: "a", value: "{{inputs.parameters.a}}" }, { name: "b", value: "{{inputs.parameters.b}}" }] } }],
            [{ name: "second", template: "relay", arguments: { parameters: [{ name: "a", value: "{{workflow.parameters.a}}" }, { name: "b", value: "{{workflow.parameters.b}}" }] } }]
          ]
        },
        {
          name: "relay",
          inputs: { parameters: [{ name: "a" }, { name: "b" }] },
          steps: [[{ name: "inner", template: "echo", arguments: { parameters: [{ name: "a", value: "{{inputs.parameters.a}}" }, { name: "b", value: "{{inputs.parameters.b}}" }] } }]]
        },
        echo
      ]
    }))
    const { out, pods } = run(sim)
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(inputsOf(sim, "wf"), { a: TAG, b: EXPR })
    assert.deepStrictEqual(inputsOf(sim, "wf[0].first"), { a: TAG, b: EXPR })
    assert.deepStrictEqual(inputsOf(sim, "wf[1].second"), { a: TAG, b: EXPR })
    assert.deepStrictEqual(inputsOf(sim, "wf[1].second[0].inner"), { a: TAG, b: EXPR })
    assert.deepStrictEqual(mainArgs(podOf(pods, "wf[0].first")).slice(-2), [TAG, EXPR])
    assert.deepStrictEqual(mainArgs(podOf(pods, "wf[1].second[0].inner")).slice(-2), [TAG, EXPR])
  })

  it("a pod's output parameter and outputs.result reach the next step as literal text", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "produce", template: "produce" }],
            [{ name: "consume", template: "echo", arguments: { parameters: [{ name: "a", value: "{{steps.produce.outputs.parameters.p}}" }, { name: "b", value: "{{steps.produce.outputs.result}}" }] } }]
          ],
          outputs: { parameters: [{ name: "out", valueFrom: { parameter: "{{steps.produce.outputs.parameters.p}}" } }] }
        },
        { name: "produce", outputs: { parameters: [{ name: "p", valueFrom: { path: "/tmp/p" } }] }, script: { image: "busybox", command: ["sh"], source: "echo" } },
        echo
      ]
    }))
    const { out, pods } = run(sim, (node) => (node === "wf[0].produce" ? { parameters: [{ name: "p", value: `${TAG} ${EXPR}` }], result: RESULT } : undefined))
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(inputsOf(sim, "wf[1].consume"), { a: `${TAG} ${EXPR}`, b: RESULT })
    assert.deepStrictEqual(mainArgs(podOf(pods, "wf[1].consume")).slice(-2), [`${TAG} ${EXPR}`, RESULT])
    assert.deepStrictEqual(sim.node("wf")!.outputs.parameters, [{ name: "out", value: `${TAG} ${EXPR}` }])
  })

  it("DAG: a task's outputs reach the dependent task as literal text", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          dag: {
            tasks: [
              { name: "produce", template: "produce" },
              { name: "consume", template: "echo", depends: "produce", arguments: { parameters: [{ name: "a", value: "{{tasks.produce.outputs.parameters.p}}" }, { name: "b", value: "{{tasks.produce.outputs.result}}" }] } }
            ]
          }
        },
        { name: "produce", outputs: { parameters: [{ name: "p", valueFrom: { path: "/tmp/p" } }] }, script: { image: "busybox", command: ["sh"], source: "echo" } },
        echo
      ]
    }))
    const { out, pods } = run(sim, (node) => (node === "wf.produce" ? { parameters: [{ name: "p", value: EXPR }], result: "{{tasks.produce.outputs.parameters.p}}" } : undefined))
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(mainArgs(podOf(pods, "wf.consume")).slice(-2), [EXPR, "{{tasks.produce.outputs.parameters.p}}"])
  })

  it("an item from withParam is text in the step's arguments and in its `when`", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "produce", template: "produce" }],
            [{
              name: "consume",
              template: "echo",
              withParam: "{{steps.produce.outputs.result}}",
              // With the item substituted twice, the left side would become `wf` and the step would run.
              when: "'{{item}}' == '{{workflow.name}}' || '{{item}}' == 'plain'",
              arguments: { parameters: [{ name: "a", value: "{{item}}" }, { name: "b", value: "b" }] }
            }]
          ]
        },
        { name: "produce", script: { image: "busybox", command: ["sh"], source: "echo" } },
        echo
      ]
    }))
    const { out, pods } = run(sim, (node) => (node === "wf[0].produce" ? { result: JSON.stringify([TAG, "plain"]) } : undefined))
    assert.strictEqual(out.status.phase, "Succeeded")
    const consumers = Object.values(sim.nodes()).filter((n) => n.name.startsWith("wf[1].consume("))
    assert.deepStrictEqual(consumers.map((n) => [n.displayName, n.phase]).sort(), [["consume(0:{{workflow.name}})", "Skipped"], ["consume(1:plain)", "Succeeded"]])
    assert.deepStrictEqual(pods.filter((p) => p.pod.metadata.annotations?.["workflows.argoproj.io/node-name"]?.startsWith("wf[1]")).map((p) => mainArgs(p).slice(-2)), [["plain", "b"]])
  })

  it("an input of a steps template stays text in its calls' arguments, `when`, `withParam` and its outputs (both substitution passes)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      arguments: {
        parameters: [
          { name: "a", value: TAG },
          { name: "brace", value: "{" },
          { name: "list", value: JSON.stringify([EXPR]) }
        ]
      },
      templates: [
        {
          name: "main",
          inputs: { parameters: [{ name: "a" }, { name: "brace" }, { name: "list" }] },
          steps: [
            [
              // Would run if `{{workflow.name}}` were substituted again.
              { name: "skipped", template: "echo", when: "'{{inputs.parameters.a}}' == '{{workflow.name}}'", arguments: { parameters: [{ name: "a", value: "x" }, { name: "b", value: "y" }] } },
              // A brace of data next to a brace of the template does not open a tag.
              { name: "brace", template: "echo", arguments: { parameters: [{ name: "a", value: "{{inputs.parameters.brace}}{workflow.name}}" }, { name: "b", value: "{{inputs.parameters.a}}" }] } },
              { name: "loop", template: "echo", withParam: "{{inputs.parameters.list}}", arguments: { parameters: [{ name: "a", value: "{{item}}" }, { name: "b", value: "{{inputs.parameters.list}}" }] } }
            ]
          ],
          outputs: { parameters: [{ name: "out", value: "{{inputs.parameters.a}} {{inputs.parameters.brace}}" }] }
        },
        echo
      ]
    }))
    const { out, pods } = run(sim)
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf[0].skipped")!.phase, "Skipped")
    assert.deepStrictEqual(mainArgs(podOf(pods, "wf[0].brace")).slice(-2), ["{{workflow.name}}", TAG])
    const loop = pods.find((p) => p.pod.metadata.annotations?.["workflows.argoproj.io/node-name"]?.startsWith("wf[0].loop("))!
    assert.deepStrictEqual(mainArgs(loop).slice(-2), [EXPR, JSON.stringify([EXPR])])
    assert.deepStrictEqual(sim.node("wf")!.outputs.parameters, [{ name: "out", value: `${TAG} {` }])
    // No marker escapes into what the engine writes.
    assert.notInclude(JSON.stringify(out.status), "\ufdd0")
    assert.notInclude(JSON.stringify(pods), "\ufdd0")
  })

  it("the template's own text is still code: an input default and container args are substituted once", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          inputs: { parameters: [{ name: "a", default: "{{workflow.name}}-{{=sprig.repeat(2,'y')}}" }, { name: "b", default: "b" }] },
          container: { image: "busybox", command: ["echo"], args: ["{{inputs.parameters.a}}", "{{=sprig.upper(inputs.parameters.b)}}"] }
        }
      ]
    }))
    const { out, pods } = run(sim)
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(mainArgs(podOf(pods, "wf")).slice(-2), ["wf-yy", "B"])
  })
})
