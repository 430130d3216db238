import { assert, describe, it } from "@effect/vitest"
import { fnv32a, nodeId } from "../../../src/workflow/engine/ids.js"
import { envOf, container, Sim, workflow } from "./harness.js"

const printMessage = {
  name: "print-message",
  inputs: { parameters: [{ name: "message" }] },
  container: { image: "busybox", command: ["echo"], args: ["{{inputs.parameters.message}}"] }
}

describe("steps", () => {
  const steps = workflow({
    entrypoint: "main",
    templates: [
      {
        name: "main",
        steps: [
          [{ name: "hello1", template: "print-message", arguments: { parameters: [{ name: "message", value: "hello1" }] } }],
          [
            { name: "hello2a", template: "print-message", arguments: { parameters: [{ name: "message", value: "hello2a" }] } },
            { name: "hello2b", template: "print-message", arguments: { parameters: [{ name: "message", value: "hello2b" }] } }
          ]
        ]
      },
      printMessage
    ]
  })

  it("runs groups in order, steps of a group in parallel, with Argo's names", () => {
    const sim = new Sim(steps)
    const first = sim.apply(sim.tick(), "Running")
    assert.strictEqual(first.length, 1)
    const id1 = nodeId("wf", "wf[0].hello1")
    assert.strictEqual(first[0].nodeId, id1)
    assert.strictEqual(first[0].pod.metadata.name, `wf-print-message-${fnv32a("wf[0].hello1")}`)
    assert.deepStrictEqual(container(first[0].pod, "main").args, ["hello1"])
    assert.strictEqual(sim.node("wf")!.type, "Steps")
    assert.strictEqual(sim.node("wf[0]")!.type, "StepGroup")
    assert.strictEqual(sim.node("wf[0]")!.boundaryID, "wf")
    assert.strictEqual(sim.node("wf[0].hello1")!.boundaryID, "wf")
    assert.strictEqual(sim.node("wf[0].hello1")!.displayName, "hello1")
    assert.deepStrictEqual(sim.node("wf[0].hello1")!.inputs, { parameters: [{ name: "message", value: "hello1" }] })
    assert.deepStrictEqual(sim.node("wf")!.children, [nodeId("wf", "wf[0]")])
    sim.now += 1000
    sim.finish(id1)
    const second = sim.apply(sim.tick(), "Running")
    assert.deepStrictEqual(second.map((c) => c.nodeId).sort(), [nodeId("wf", "wf[1].hello2a"), nodeId("wf", "wf[1].hello2b")].sort())
    assert.deepStrictEqual(sim.node("wf[0].hello1")!.children, [nodeId("wf", "wf[1]")])
    assert.strictEqual(sim.node("wf[0]")!.phase, "Succeeded")
    for (const c of second) sim.finish(c.nodeId)
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(sim.node("wf")!.outboundNodes?.sort(), second.map((c) => c.nodeId).sort())
    assert.strictEqual(out.status.progress, "3/3")
  })

  it("a failed step fails the group and the workflow (child '<id>' failed)", () => {
    const sim = new Sim(steps)
    const id1 = nodeId("wf", "wf[0].hello1")
    const out = sim.runAll((c) => ({ ok: c.nodeId !== id1 }))
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf[0]")!.message, `child '${id1}' failed`)
    assert.strictEqual(out.status.message, `child '${id1}' failed`)
    assert.strictEqual(sim.node("wf[1]"), undefined)
  })

  it("continueOn.failed lets the workflow go on; status and exitCode are visible", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "flakey", template: "print-message", continueOn: { failed: true }, arguments: { parameters: [{ name: "message", value: "x" }] } }],
            [
              { name: "failed", template: "print-message", when: "{{steps.flakey.status}} == Failed", arguments: { parameters: [{ name: "message", value: "{{steps.flakey.exitCode}}" }] } },
              { name: "succeeded", template: "print-message", when: "{{steps.flakey.status}} == Succeeded", arguments: { parameters: [{ name: "message", value: "ok" }] } }
            ]
          ]
        },
        printMessage
      ]
    }))
    const flakey = nodeId("wf", "wf[0].flakey")
    const created: Array<string> = []
    const out = sim.runAll((c) => {
      created.push(container(c.pod, "main").args[0])
      return { ok: c.nodeId !== flakey }
    })
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf[1].succeeded")!.phase, "Skipped")
    assert.strictEqual(sim.node("wf[1].succeeded")!.type, "Skipped")
    assert.strictEqual(sim.node("wf[1].succeeded")!.message, "when 'Failed == Succeeded' evaluated false")
    assert.deepStrictEqual(created, ["x", "1"])
  })

  it("script results flow into later steps and `when`", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "flip", template: "flip" }],
            [
              { name: "heads", template: "print-message", when: "{{steps.flip.outputs.result}} == heads", arguments: { parameters: [{ name: "message", value: "{{steps.flip.outputs.result}}" }] } },
              { name: "tails", template: "print-message", when: "{{steps.flip.outputs.result}} == tails", arguments: { parameters: [{ name: "message", value: "t" }] } }
            ]
          ]
        },
        { name: "flip", script: { image: "python", command: ["python"], source: "print('heads')" } },
        printMessage
      ]
    }))
    const args: Array<string> = []
    const out = sim.runAll((c) => {
      if (c.pod.metadata.name!.includes("flip")) return { ok: true, outputs: { result: "heads" } }
      args.push(container(c.pod, "main").args[0])
      return { ok: true }
    })
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(args, ["heads"])
    assert.strictEqual(sim.node("wf[1].tails")!.phase, "Skipped")
  })

  it("withItems expands steps with (i:item) names; map items; aggregated outputs", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "gen", template: "gen", arguments: { parameters: [{ name: "n", value: "{{item.n}}" }] }, withItems: [{ n: 1, k: "a" }, { n: 2, k: "b" }] }],
            [{ name: "each", template: "print-message", arguments: { parameters: [{ name: "message", value: "{{item}}" }] }, withParam: "{{steps.gen.outputs.result}}" }],
            [{ name: "seq", template: "print-message", arguments: { parameters: [{ name: "message", value: "{{item}}" }] }, withSequence: { count: "2", start: "5" } }]
          ]
        },
        { name: "gen", inputs: { parameters: [{ name: "n" }] }, script: { image: "python", command: ["python"], source: "print({{inputs.parameters.n}})" } },
        printMessage
      ]
    }))
    const printed: Array<string> = []
    const out = sim.runAll((c) => {
      if (c.pod.metadata.name!.includes("-gen-")) {
        const src = JSON.parse(envOf(container(c.pod, "main"), "ARGO_TEMPLATE")!).script.source as string
        return { ok: true, outputs: { result: src.replace(/print\((\d)\)/, "$1") } }
      }
      printed.push(container(c.pod, "main").args[0])
      return { ok: true }
    })
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.ok(sim.node("wf[0].gen(0:k:a,n:1)"))
    assert.ok(sim.node("wf[0].gen(1:k:b,n:2)"))
    assert.ok(sim.node("wf[1].each(0:1)"))
    assert.ok(sim.node("wf[1].each(1:2)"))
    assert.ok(sim.node("wf[2].seq(0:5)"))
    assert.ok(sim.node("wf[2].seq(1:6)"))
    assert.deepStrictEqual(printed, ["1", "2", "5", "6"])
    assert.strictEqual(sim.node("wf[0]")!.children.length, 2)
  })

  it("output parameters: valueFrom.path from the task result, steps outputs via valueFrom.parameter", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [[{ name: "gen", template: "gen" }], [{ name: "use", template: "print-message", arguments: { parameters: [{ name: "message", value: "{{steps.gen.outputs.parameters.p}}" }] } }]],
          outputs: { parameters: [{ name: "out", globalName: "g", valueFrom: { parameter: "{{steps.gen.outputs.parameters.p}}" } }] }
        },
        { name: "gen", container: { image: "busybox", command: ["sh"] }, outputs: { parameters: [{ name: "p", valueFrom: { path: "/tmp/p", default: "d" } }] } },
        printMessage
      ]
    }))
    const genId = nodeId("wf", "wf[0].gen")
    sim.apply(sim.tick(), "Running")
    sim.setPod(genId, "Succeeded", { exitCode: 0 })
    sim.tick()
    assert.strictEqual(sim.node("wf[0].gen")!.phase, "Running", "outputs not reported yet")
    assert.strictEqual((sim.wf.status as any).taskResultsCompletionStatus[genId], false)
    sim.taskResults.set(genId, { nodeId: genId, outputs: { parameters: [{ name: "p", value: "hello" }] }, completed: true })
    const [use] = sim.apply(sim.tick(), "Running")
    assert.deepStrictEqual(container(use.pod, "main").args, ["hello"])
    sim.finish(use.nodeId)
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(sim.node("wf")!.outputs, { parameters: [{ name: "out", value: "hello", globalName: "g" }] })
    assert.deepStrictEqual((out.status as any).outputs, { parameters: [{ name: "g", value: "hello" }] })
  })

  it("missing input parameters error the node with Argo's message", () => {
    const sim = new Sim(workflow({ entrypoint: "main", templates: [{ name: "main", steps: [[{ name: "a", template: "print-message" }]] }, printMessage] }))
    const out = sim.tick()
    assert.strictEqual(sim.node("wf[0].a")!.phase, "Error")
    assert.strictEqual(sim.node("wf[0].a")!.message, "inputs.parameters.message was not supplied")
    assert.strictEqual(out.status.phase, "Failed")
  })
})

describe("dag", () => {
  const echo = { name: "echo", inputs: { parameters: [{ name: "message" }] }, container: { image: "busybox", command: ["echo", "{{inputs.parameters.message}}"] } }
  const task = (name: string, depends?: string) => ({ name, template: "echo", ...(depends ? { depends } : {}), arguments: { parameters: [{ name: "message", value: name }] } })

  it("diamond: A, then B and C, then D", () => {
    const sim = new Sim(workflow({ entrypoint: "d", templates: [{ name: "d", dag: { tasks: [task("A"), task("B", "A"), task("C", "A"), task("D", "B && C")] } }, echo] }))
    const order: Array<Array<string>> = []
    let out = sim.tick()
    for (let i = 0; i < 10 && out.status.phase === "Running"; i++) {
      const fresh = sim.apply(out, "Running")
      order.push(fresh.map((c) => container(c.pod, "main").command.at(-1)).sort())
      for (const c of fresh) sim.finish(c.nodeId)
      out = sim.tick()
    }
    assert.deepStrictEqual(order, [["A"], ["B", "C"], ["D"]])
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf")!.type, "DAG")
    assert.strictEqual(sim.node("wf.A")!.boundaryID, "wf")
    assert.deepStrictEqual(sim.node("wf")!.children, [nodeId("wf", "wf.A")])
    assert.deepStrictEqual(sim.node("wf.A")!.children.sort(), [nodeId("wf", "wf.B"), nodeId("wf", "wf.C")].sort())
    assert.deepStrictEqual(sim.node("wf.B")!.children, [nodeId("wf", "wf.D")])
    assert.deepStrictEqual(sim.node("wf")!.outboundNodes, [nodeId("wf", "wf.D")])
  })

  it("enhanced depends: Failed/Succeeded, ||, Omitted", () => {
    const sim = new Sim(workflow({
      entrypoint: "d",
      templates: [{
        name: "d",
        dag: {
          tasks: [
            task("A"), task("B", "A"), task("C", "A"),
            task("should-execute-1", "A && (C.Succeeded || C.Failed)"),
            task("should-execute-2", "B || C"),
            task("should-not-execute", "B && C"),
            task("should-execute-3", "should-execute-2.Succeeded || should-not-execute")
          ]
        }
      }, echo]
    }))
    const out = sim.runAll((c) => ({ ok: c.nodeId !== nodeId("wf", "wf.C") }))
    assert.strictEqual(sim.node("wf.C")!.phase, "Failed")
    assert.strictEqual(sim.node("wf.should-execute-1")!.phase, "Succeeded")
    assert.strictEqual(sim.node("wf.should-execute-2")!.phase, "Succeeded")
    assert.strictEqual(sim.node("wf.should-not-execute")!.phase, "Omitted")
    assert.strictEqual(sim.node("wf.should-not-execute")!.message, "omitted: depends condition not met")
    assert.strictEqual(sim.node("wf.should-execute-3")!.phase, "Succeeded")
    assert.strictEqual(out.status.phase, "Succeeded")
  })

  it("a failed leaf fails the DAG; targets run only what they need", () => {
    const failing = new Sim(workflow({ entrypoint: "d", templates: [{ name: "d", dag: { tasks: [task("A"), task("B", "A")] } }, echo] }))
    const out = failing.runAll((c) => ({ ok: c.nodeId !== nodeId("wf", "wf.B") }))
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(failing.node("wf")!.phase, "Failed")

    const targeted = new Sim(workflow({
      entrypoint: "d",
      arguments: { parameters: [{ name: "target", value: "E" }] },
      templates: [{ name: "d", dag: { target: "{{workflow.parameters.target}}", tasks: [task("A"), task("B", "A"), task("C", "A"), task("D", "B && C"), task("E", "C")] } }, echo]
    }))
    const o2 = targeted.runAll()
    assert.strictEqual(o2.status.phase, "Succeeded")
    assert.deepStrictEqual(Object.values(targeted.nodes()).map((n) => n.displayName).sort(), ["A", "C", "E", "wf"])
  })

  it("loops in a DAG make a TaskGroup; skipped producers feed output defaults", () => {
    const sim = new Sim(workflow({
      entrypoint: "d",
      templates: [
        {
          name: "d",
          dag: {
            tasks: [
              { name: "fan", template: "echo", arguments: { parameters: [{ name: "message", value: "{{item}}" }] }, withItems: ["x", "y"] },
              { name: "producer", template: "produce", when: "false" },
              { name: "consumer", template: "echo", depends: "fan && (producer.Succeeded || producer.Skipped)", arguments: { parameters: [{ name: "message", value: "{{tasks.producer.outputs.parameters.msg}}" }] } }
            ]
          }
        },
        echo,
        { name: "produce", outputs: { parameters: [{ name: "msg", valueFrom: { path: "/tmp/o", default: "from-default" } }] }, container: { image: "busybox", command: ["true"] } }
      ]
    }))
    const printed: Array<string> = []
    const out = sim.runAll((c) => {
      printed.push(container(c.pod, "main").command.at(-1))
      return { ok: true }
    })
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf.fan")!.type, "TaskGroup")
    assert.deepStrictEqual(sim.node("wf.fan")!.children, [nodeId("wf", "wf.fan(0:x)"), nodeId("wf", "wf.fan(1:y)")])
    assert.strictEqual(sim.node("wf.producer")!.phase, "Skipped")
    assert.strictEqual(sim.node("wf.producer")!.message, "when 'false' evaluated false")
    assert.deepStrictEqual(printed, ["x", "y", "from-default"])
  })
})
