/**
 * containerSet templates, as upstream runs examples/container-set-template/*:
 * one pod with a main container per container of the set (emissary-wrapped,
 * the set's volumeMounts added), Container nodes `<node>.<name>` linked as
 * the dependency graph, following the pod's container states.
 */
import { assert, describe, it } from "@effect/vitest"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { Sim, workflow } from "./harness.js"

const graph = {
  name: "main",
  containerSet: {
    volumeMounts: [{ name: "workspace", mountPath: "/workspace" }],
    containers: [
      { name: "a", image: "argoproj/argosay:v2" },
      { name: "b", image: "argoproj/argosay:v2", dependencies: ["a"] },
      { name: "c", image: "argoproj/argosay:v2", dependencies: ["a"] },
      { name: "d", image: "argoproj/argosay:v2", dependencies: ["b", "c"] }
    ]
  },
  volumes: [{ name: "workspace", emptyDir: {} }]
}

describe("containerSet templates", () => {
  it("the pod has one emissary-wrapped main container per container; Container nodes form the graph (graph-workflow.yaml)", () => {
    const sim = new Sim(workflow({ entrypoint: "main", templates: [graph] }, "graph"))
    const [create] = sim.creates(sim.tick())
    const spec = create.pod.spec as any
    assert.deepStrictEqual(spec.containers.map((c: any) => c.name), ["wait", "a", "b", "c", "d"])
    const d = spec.containers.find((c: any) => c.name === "d")
    assert.strictEqual(d.command[0], "/var/run/argo/argoexec")
    assert.strictEqual(d.command[1], "emissary")
    assert.isUndefined(d.dependencies)
    assert.deepStrictEqual(d.volumeMounts, [{ name: "workspace", mountPath: "/workspace" }, { name: "var-run-argo", mountPath: "/var/run/argo" }])
    assert.strictEqual(d.env.find((e: any) => e.name === "ARGO_CONTAINER_NAME").value, "d")
    assert.include(d.env.find((e: any) => e.name === "ARGO_TEMPLATE").value, "\"dependencies\":[\"b\",\"c\"]")
    assert.strictEqual(create.pod.metadata.annotations!["kubectl.kubernetes.io/default-container"], "d")

    const pod = sim.node("graph")!
    assert.strictEqual(pod.type, "Pod")
    const id = (n: string) => nodeId("graph", `graph.${n}`)
    assert.deepStrictEqual(pod.children, [id("a")])
    assert.deepStrictEqual(sim.node("graph.a")!.children, [id("b"), id("c")])
    assert.deepStrictEqual(sim.node("graph.b")!.children, [id("d")])
    assert.deepStrictEqual(sim.node("graph.c")!.children, [id("d")])
    for (const n of ["a", "b", "c", "d"]) {
      const c = sim.node(`graph.${n}`)!
      assert.strictEqual(c.type, "Container")
      assert.strictEqual(c.phase, "Pending")
      assert.strictEqual(c.boundaryID, pod.id)
    }

    // a done, b running, c and d waiting: the nodes follow.
    sim.apply(sim.last!, "Running")
    sim.setPod(pod.id, "Running", {
      containers: [
        { name: "wait", state: "running" },
        { name: "a", state: "terminated", exitCode: 0, reason: "Completed" },
        { name: "b", state: "running" },
        { name: "c", state: "waiting" },
        { name: "d", state: "waiting" }
      ]
    })
    sim.tick()
    assert.strictEqual(sim.node("graph.a")!.phase, "Succeeded")
    assert.strictEqual(sim.node("graph.b")!.phase, "Running")
    assert.strictEqual(sim.node("graph.c")!.phase, "Pending")

    // c fails, so d never runs: the pod fails.
    sim.setPod(pod.id, "Failed", {
      message: "c: Error (exit code 1)",
      containers: [
        { name: "wait", state: "terminated", exitCode: 0 },
        { name: "a", state: "terminated", exitCode: 0, reason: "Completed" },
        { name: "b", state: "terminated", exitCode: 0, reason: "Completed" },
        { name: "c", state: "terminated", exitCode: 1, reason: "Error" },
        { name: "d", state: "terminated", exitCode: 1, reason: "Error", message: "dependency \"c\" exited with non-zero code: 1" }
      ]
    })
    sim.taskResults.set(pod.id, { nodeId: pod.id, completed: true })
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("graph.c")!.phase, "Failed")
    assert.strictEqual(sim.node("graph.c")!.message, "c: Error (exit code 1): ")
    assert.strictEqual(sim.node("graph.d")!.phase, "Failed")
    assert.strictEqual(sim.node("graph.b")!.phase, "Succeeded")
  })

  it("in a DAG: the next task follows the set's last containers, and reads the main container's result (outputs-result-workflow.yaml)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          dag: {
            tasks: [
              { name: "a", template: "group" },
              { name: "b", template: "verify", arguments: { parameters: [{ name: "x", value: "{{tasks.a.outputs.result}}" }] }, dependencies: ["a"] }
            ]
          }
        },
        { name: "group", containerSet: { containers: [{ name: "main", image: "python:alpine3.23", command: ["python", "-c"], args: ["print(\"hi\")"] }] } },
        { name: "verify", inputs: { parameters: [{ name: "x" }] }, script: { image: "python:alpine3.23", command: ["python"], source: "assert \"{{inputs.parameters.x}}\" == \"hi\"" } }
      ]
    }, "or"))
    const [group] = sim.creates(sim.tick())
    const env = (group.pod.spec as any).containers.find((c: any) => c.name === "main").env
    assert.strictEqual(env.find((e: any) => e.name === "ARGO_INCLUDE_SCRIPT_OUTPUT").value, "true")
    sim.apply(sim.last!, "Running")
    sim.setPod(group.nodeId, "Succeeded", { exitCode: 0, containers: [{ name: "wait", state: "terminated", exitCode: 0 }, { name: "main", state: "terminated", exitCode: 0, reason: "Completed" }] })
    sim.taskResults.set(group.nodeId, { nodeId: group.nodeId, outputs: { result: "hi", exitCode: "0" }, completed: true })
    const [verify] = sim.creates(sim.tick())
    const tmplEnv = (verify.pod.spec as any).containers.find((c: any) => c.name === "main").env.find((e: any) => e.name === "ARGO_TEMPLATE")
    assert.strictEqual(JSON.parse(tmplEnv.value).script.source, "assert \"hi\" == \"hi\"")
    // b hangs below the set's last container.
    assert.deepStrictEqual(sim.node("or.a.main")!.children, [nodeId("or", "or.b")])
    assert.strictEqual(sim.runAll().status.phase, "Succeeded")
  })

  it("a dependency that is not a container of the set errors the node", () => {
    const sim = new Sim(workflow({ entrypoint: "main", templates: [{ name: "main", containerSet: { containers: [{ name: "a", image: "busybox", dependencies: ["x"] }] } }] }))
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(sim.node("wf")!.message, "containerSet.containers.a dependency 'x' not defined")
  })

})
