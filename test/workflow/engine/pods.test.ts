import { assert, describe, it } from "@effect/vitest"
import { fnv32a, nodeId, podName } from "../../../src/workflow/engine/ids.js"
import { container, envOf, Sim, workflow } from "./harness.js"

const hello = workflow({
  entrypoint: "hello",
  templates: [{
    name: "hello",
    metadata: { labels: { team: "a" }, annotations: { note: "n" } },
    nodeSelector: { disk: "ssd" },
    container: {
      image: "busybox",
      command: ["echo"],
      args: ["hello {{workflow.name}}"],
      resources: { limits: { cpu: "1" } },
      env: [{ name: "X", value: "1" }],
      workingDir: "/w"
    }
  }]
})

describe("ids", () => {
  it("fnv32a matches the reference vectors", () => {
    assert.strictEqual(fnv32a(""), 0x811c9dc5)
    assert.strictEqual(fnv32a("a"), 0xe40c292c)
    assert.strictEqual(fnv32a("foobar"), 0xbf9cf968)
  })
  it("node IDs and v1/v2 pod names", () => {
    assert.strictEqual(nodeId("wf", "wf"), "wf")
    assert.strictEqual(nodeId("wf", "wf[0]"), `wf-${fnv32a("wf[0]")}`)
    assert.strictEqual(podName("wf", "wf", "t", "wf", "v2"), "wf")
    assert.strictEqual(podName("wf", "wf[0].a", "tmpl", "id", "v2"), `wf-tmpl-${fnv32a("wf[0].a")}`)
    assert.strictEqual(podName("wf", "wf[0].a", "", "id", "v2"), `wf-${fnv32a("wf[0].a")}`)
    assert.strictEqual(podName("wf", "wf[0].a", "tmpl", "the-id", "v1"), "the-id")
    assert.strictEqual(podName("w".repeat(300), "n", "t", "id", "v2").length, 242 + 1 + String(fnv32a("n")).length)
  })
})

describe("container entrypoint", () => {
  it("creates the pod as Argo lays it out", () => {
    const sim = new Sim(hello)
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Running")
    assert.strictEqual(out.labels["workflows.argoproj.io/phase"], "Running")
    assert.strictEqual(out.labels["workflows.argoproj.io/completed"], "false")
    const [c] = sim.creates()
    assert.strictEqual(sim.creates().length, 1)
    assert.strictEqual(c.nodeId, "wf")
    assert.strictEqual(c.cluster, "main")
    assert.strictEqual(c.namespace, "argo")
    const pod = c.pod
    assert.strictEqual(pod.metadata.name, "wf")
    assert.strictEqual(pod.metadata.namespace, "argo")
    assert.deepStrictEqual(pod.metadata.labels, {
      "workflows.argoproj.io/workflow": "wf",
      "workflows.argoproj.io/completed": "false",
      "workflows.argoproj.io/cluster": "main",
      team: "a"
    })
    assert.strictEqual(pod.metadata.annotations?.["workflows.argoproj.io/node-id"], "wf")
    assert.strictEqual(pod.metadata.annotations?.["workflows.argoproj.io/node-name"], "wf")
    assert.strictEqual(pod.metadata.annotations?.["workflows.argoproj.io/workflow-namespace"], "argo")
    assert.strictEqual(pod.metadata.annotations?.["kubectl.kubernetes.io/default-container"], "main")
    assert.strictEqual(pod.metadata.annotations?.note, "n")
    assert.deepStrictEqual(pod.metadata.ownerReferences, [{
      apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: "wf", uid: "uid-1", controller: true, blockOwnerDeletion: true
    }])
    const spec = pod.spec as any
    assert.deepStrictEqual(spec.nodeSelector, { disk: "ssd" })
    assert.deepStrictEqual(spec.initContainers.map((x: any) => x.name), ["init"])
    assert.deepStrictEqual(spec.containers.map((x: any) => x.name), ["wait", "main"])
    assert.deepStrictEqual(spec.initContainers[0].command, ["argoexec", "init"])
    assert.deepStrictEqual(container(pod, "wait").command, ["argoexec", "wait"])
    assert.strictEqual(container(pod, "wait").image, "quay.io/argoproj/argoexec:v3.6.19")
    const main = container(pod, "main")
    assert.deepStrictEqual(main.command, ["/var/run/argo/argoexec", "emissary", "--", "echo"])
    assert.deepStrictEqual(main.args, ["hello wf"])
    assert.deepStrictEqual(main.resources, { limits: { cpu: "1" } })
    assert.strictEqual(main.workingDir, "/w")
    assert.strictEqual(envOf(main, "X"), "1")
    assert.strictEqual(envOf(main, "ARGO_NODE_ID"), "wf")
    assert.strictEqual(envOf(main, "ARGO_CONTAINER_NAME"), "main")
    assert.strictEqual(envOf(main, "ARGO_WORKFLOW_NAME"), "wf")
    assert.strictEqual(envOf(main, "ARGO_INCLUDE_SCRIPT_OUTPUT"), "false")
    const tmpl = JSON.parse(envOf(main, "ARGO_TEMPLATE")!)
    assert.deepStrictEqual(tmpl.container.args, ["hello wf"])
    const node = sim.node("wf")!
    assert.strictEqual(node.id, "wf")
    assert.strictEqual(node.type, "Pod")
    assert.strictEqual(node.phase, "Pending")
    assert.strictEqual(node.templateName, "hello")
  })

  it("is idempotent: same input, same output; no create once the pod exists", () => {
    const sim = new Sim(hello)
    const a = sim.tick()
    const b = sim.tick()
    assert.deepStrictEqual(b.status, a.status)
    assert.strictEqual(sim.creates(b).length, 1) // re-asked while still missing
    sim.apply(b, "Pending")
    const c = sim.tick()
    assert.strictEqual(sim.creates(c).length, 0)
    const d = sim.tick()
    assert.deepStrictEqual(d, c)
  })

  it("follows the pod to completion", () => {
    const sim = new Sim(hello)
    sim.apply(sim.tick(), "Pending")
    sim.setPod("wf", "Running", { hostNodeName: "node-1", podIP: "10.0.0.1" })
    sim.now += 1000
    sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Running")
    assert.strictEqual(sim.node("wf")!.hostNodeName, "node-1")
    assert.strictEqual((sim.wf.status as any).phase, "Running")
    sim.now += 1000
    sim.setPod("wf", "Succeeded", { exitCode: 0, finishedAt: "2025-01-01T00:00:02Z" })
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(out.status.finishedAt, "2025-01-01T00:00:02Z")
    assert.strictEqual(out.labels["workflows.argoproj.io/completed"], "true")
    assert.strictEqual(out.labels["workflows.argoproj.io/phase"], "Succeeded")
    assert.strictEqual(sim.node("wf")!.outputs.exitCode, "0")
    assert.strictEqual(out.status.progress, "1/1")
    assert.deepStrictEqual(out.actions.map((x) => x._tag), ["LabelPodCompleted"])
    // a completed workflow is never executed again
    const again = sim.tick()
    assert.deepStrictEqual(again.status, out.status)
    assert.strictEqual(sim.creates(again).length, 0)
  })

  it("a failed main container fails the workflow with Argo's message", () => {
    const sim = new Sim(hello)
    sim.apply(sim.tick(), "Running")
    sim.setPod("wf", "Failed", { exitCode: 3 })
    const out = sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.message, "Error (exit code 3)")
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(out.status.message, "Error (exit code 3)")
  })

  it("a pod deleted before finishing errors the node", () => {
    const sim = new Sim(hello)
    sim.apply(sim.tick(), "Running")
    sim.tick()
    sim.pods.delete("wf")
    const out = sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Error")
    assert.strictEqual(sim.node("wf")!.message, "pod deleted")
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(sim.creates(out).length, 0)
  })

  it("looks the entrypoint up in config.images when there is no command", () => {
    const sim = new Sim(workflow({ entrypoint: "a", templates: [{ name: "a", container: { image: "busybox:latest" } }] }))
    const main = container(sim.creates(sim.tick())[0].pod, "main")
    assert.deepStrictEqual(main.command, ["/var/run/argo/argoexec", "emissary", "--", "sh"])
    assert.deepStrictEqual(main.args, ["-c", "echo default"])
    const sim2 = new Sim(workflow({ entrypoint: "a", templates: [{ name: "a", container: { image: "unknown/img" } }] }))
    const main2 = container(sim2.creates(sim2.tick())[0].pod, "main")
    assert.deepStrictEqual(main2.command, ["/var/run/argo/argoexec", "emissary", "--"])
  })

  it("script templates: source staged, result awaited from the task result", () => {
    const sim = new Sim(workflow({
      entrypoint: "s",
      templates: [{ name: "s", script: { image: "python:alpine", command: ["python"], source: "print(1)" } }]
    }))
    const [c] = sim.apply(sim.tick(), "Running")
    const main = container(c.pod, "main")
    assert.deepStrictEqual(main.command, ["/var/run/argo/argoexec", "emissary", "--", "python"])
    assert.deepStrictEqual(main.args, ["/argo/staging/script"])
    assert.strictEqual(main.source, undefined)
    // Upstream's includeScriptOutput: an entrypoint has no boundary, so nothing references its result.
    assert.strictEqual(envOf(main, "ARGO_INCLUDE_SCRIPT_OUTPUT"), "false")
    assert.strictEqual(JSON.parse(envOf(main, "ARGO_TEMPLATE")!).script.source, "print(1)")
    sim.setPod("wf", "Succeeded", { exitCode: 0 })
    sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Running", "waits for the task result")
    sim.taskResults.set("wf", { nodeId: "wf", outputs: { result: "1" }, completed: true })
    const out = sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Succeeded")
    assert.strictEqual(sim.node("wf")!.outputs.result, "1")
    assert.strictEqual(out.status.phase, "Succeeded")
  })

  it("passes template-level pod fields and the service account through", () => {
    const sim = new Sim(workflow({
      entrypoint: "a",
      serviceAccountName: "wf-sa",
      tolerations: [{ key: "k", operator: "Exists" }],
      templates: [{
        name: "a",
        activeDeadlineSeconds: 30,
        priorityClassName: "high",
        securityContext: { runAsUser: 1000 },
        volumes: [{ name: "v", emptyDir: {} }],
        container: { image: "busybox", command: ["true"], volumeMounts: [{ name: "v", mountPath: "/v" }] }
      }]
    }))
    const spec = sim.creates(sim.tick())[0].pod.spec as any
    assert.strictEqual(spec.serviceAccountName, "wf-sa")
    assert.deepStrictEqual(spec.tolerations, [{ key: "k", operator: "Exists" }])
    assert.strictEqual(spec.activeDeadlineSeconds, 30)
    assert.strictEqual(spec.priorityClassName, "high")
    assert.deepStrictEqual(spec.securityContext, { runAsUser: 1000 })
    assert.ok(spec.volumes.some((v: any) => v.name === "v"))
    assert.deepStrictEqual(container({ spec } as any, "main").volumeMounts[0], { name: "v", mountPath: "/v" })
  })
})
