/**
 * Engine behaviours found to differ from upstream Argo while running the
 * conformance suite (test/conformance/run.ts) on upstream's examples.
 */
import { assert, describe, it } from "@effect/vitest"
import { stepOrTaskName } from "../../../src/workflow/engine/outputs.js"
import { container, envOf, Sim, workflow } from "./harness.js"

const script = (name: string) => ({ name, script: { image: "python", command: ["python"], source: "print(1)" } })
const includeOf = (sim: Sim, podNamePart: string): string | undefined => {
  const c = sim.creates().find((c) => c.pod.metadata.name!.includes(podNamePart))
  return c === undefined ? undefined : envOf(container(c.pod, "main"), "ARGO_INCLUDE_SCRIPT_OUTPUT")
}

describe("includeScriptOutput (operator.go includeScriptOutput / hasOutputResultRef)", () => {
  it("getStepOrDAGTaskName strips loop, retry and group suffixes and the parent", () => {
    assert.strictEqual(stepOrTaskName("wf[1].fanout(0:1)(0)[0]"), "fanout")
    assert.strictEqual(stepOrTaskName("wf.hello-c(2:3)"), "hello-c")
    assert.strictEqual(stepOrTaskName("wf[0].flip(0)"), "flip")
    assert.strictEqual(stepOrTaskName("wf"), "wf")
  })

  it("a script whose result nobody references does not capture it (withsequence-nested-result's hello-c)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "a", template: "s" }],
            [{ name: "b", template: "s", arguments: { parameters: [] }, withSequence: { count: "{{steps.a.outputs.result}}" } }]
          ]
        },
        script("s")
      ]
    }))
    sim.tick()
    assert.strictEqual(includeOf(sim, "wf-s-"), "true", "steps.a.outputs.result is referenced")
    sim.apply(sim.last, "Running")
    sim.finish(sim.creates()[0]!.nodeId, true, { result: "2" })
    sim.tick()
    const bs = sim.creates()
    assert.strictEqual(bs.length, 2)
    for (const b of bs) assert.strictEqual(envOf(container(b.pod, "main"), "ARGO_INCLUDE_SCRIPT_OUTPUT"), "false")
  })

  it("the entrypoint has no boundary, so never includes its output", () => {
    const sim = new Sim(workflow({ entrypoint: "s", templates: [script("s")] }))
    sim.tick()
    assert.strictEqual(includeOf(sim, "wf"), "false")
  })

  it("a referenced container template does include it; DAGs look for tasks.<name>, expressions for ['<name>']", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          dag: {
            tasks: [
              { name: "c", template: "c" },
              { name: "d", template: "c" },
              { name: "e", template: "c" },
              {
                name: "use",
                template: "c",
                depends: "c && d && e",
                when: "{{tasks.c.outputs.result}} == x && {{=tasks['d'].outputs.result}} == x && {{steps.e.outputs.result}} == x"
              }
            ]
          }
        },
        { name: "c", container: { image: "busybox", command: ["echo"] } }
      ]
    }))
    sim.tick()
    assert.strictEqual(includeOf(sim, "wf-c-"), "true")
    const byNode = new Map(sim.creates().map((c) => [c.pod.metadata.annotations?.["workflows.argoproj.io/node-name"], envOf(container(c.pod, "main"), "ARGO_INCLUDE_SCRIPT_OUTPUT")]))
    assert.strictEqual(byNode.get("wf.c"), "true")
    assert.strictEqual(byNode.get("wf.d"), "true")
    assert.strictEqual(byNode.get("wf.e"), "false", "a DAG's tasks are referenced as tasks.<name>, not steps.<name>")
  })

  it("a retried step keeps its step name (retry children `name(n)`)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [[{ name: "flip", template: "s" }], [{ name: "p", template: "s", when: "{{steps.flip.outputs.result}} == 1" }]]
        },
        { ...script("s"), retryStrategy: { limit: "1" } }
      ]
    }))
    sim.tick()
    assert.strictEqual(includeOf(sim, "wf-s-"), "true")
  })
})

describe("spec.workflowMetadata (operator.go updateWorkflowMetadata)", () => {
  it("labels and labelsFrom expressions become Workflow labels and workflow.labels.* (label-value-from-workflow)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      arguments: { parameters: [{ name: "foo", value: "bar" }] },
      workflowMetadata: { labels: { team: "a" }, labelsFrom: { foo: { expression: "workflow.parameters.foo" } } },
      templates: [{ name: "main", container: { image: "busybox", command: ["echo", "{{workflow.labels.foo}}"] } }]
    }))
    const out = sim.tick()
    assert.strictEqual(out.labels["foo"], "bar")
    assert.strictEqual(out.labels["team"], "a")
    assert.strictEqual(out.labels["workflows.argoproj.io/phase"], "Running")
    assert.deepStrictEqual(container(sim.creates(out)[0]!.pod, "main").command.slice(-2), ["echo", "bar"])
    assert.strictEqual(sim.wf.metadata.labels?.["foo"], "bar")
  })

  it("an expression that is not a string or not a valid label value errors the workflow", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      workflowMetadata: { labelsFrom: { n: { expression: "1 + 1" } } },
      templates: [{ name: "main", container: { image: "busybox" } }]
    }))
    const out = sim.tick()
    assert.strictEqual(out.status["phase"], "Error")
    assert.include(String(out.status["message"]), "must be a string")
    const sim2 = new Sim(workflow({
      entrypoint: "main",
      workflowMetadata: { labels: { n: "not valid!" } },
      templates: [{ name: "main", container: { image: "busybox" } }]
    }))
    assert.strictEqual(sim2.tick().status["phase"], "Error")
  })
})

describe("workflow.parameters / workflow.parameters.json (setGlobalParameters)", () => {
  it("is json.Marshal(spec.arguments.parameters): conditionals' print-hello-expr-json runs", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      arguments: { parameters: [{ name: "should-print", value: "true", description: "d", enum: ["true", "false"] }] },
      templates: [
        {
          name: "main",
          steps: [[{ name: "json", template: "c", when: "{{=jsonpath(workflow.parameters.json, '$[0].value') == 'true'}}" }]]
        },
        { name: "c", container: { image: "busybox", command: ["echo", "{{workflow.parameters}}"] } }
      ]
    }))
    const out = sim.tick()
    const [create] = sim.creates(out)
    assert.isDefined(create, "the `when` held")
    assert.strictEqual(
      container(create!.pod, "main").command.at(-1),
      '[{"name":"should-print","value":"true","enum":["true","false"],"description":"d"}]'
    )
  })
})

describe("progress (progress.UpdateProgress)", () => {
  it("pods default to 0/1 and complete on success; parents sum their pods; failed retries count", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "a", template: "r" }], [{ name: "b", template: "c" }]] },
        { name: "r", retryStrategy: { limit: "2" }, container: { image: "busybox", command: ["true"] } },
        { name: "c", container: { image: "busybox", command: ["true"] } }
      ]
    }))
    let first = true
    const out = sim.runAll(() => {
      const ok = !first
      first = false
      return { ok }
    })
    assert.strictEqual(out.status["phase"], "Succeeded")
    assert.strictEqual(out.status["progress"], "2/3")
    assert.strictEqual(sim.node("wf[0].a(0)")!.progress, "0/1")
    assert.strictEqual(sim.node("wf[0].a(1)")!.progress, "1/1")
    // sumProgress follows children, and the next step group hangs off the last attempt, as upstream.
    assert.strictEqual(sim.node("wf[0].a")!.progress, "2/3")
    assert.strictEqual(sim.node("wf")!.progress, "2/3")
    assert.strictEqual(sim.node("wf[1]")!.progress, "1/1")
  })
})
