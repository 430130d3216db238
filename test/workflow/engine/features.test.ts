/**
 * Parallelism, deadlines and timeouts, exit handlers, podGC, templateDefaults,
 * parameters, loops, `when`, node types/IDs and placement inheritance.
 */
import { assert, describe, it } from "@effect/vitest"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { deadlineGraceMs } from "../../../src/workflow/engine/podNodes.js"
import { container, envOf, Sim, workflow } from "./harness.js"

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z")
const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra, container: { image: "busybox", command: ["true"] } })
const echo = (name: string, args: Array<string>, extra: Record<string, unknown> = {}) => ({ name, ...extra, container: { image: "busybox", command: ["echo"], args } })
const active = (sim: Sim) => Object.values(sim.nodes()).filter((n) => n.type === "Pod" && (n.phase === "Pending" || n.phase === "Running")).length

describe("parallelism", () => {
  it("template level: no more than N pods of the steps template at once", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", parallelism: 2, steps: [[1, 2, 3, 4, 5].map((i) => ({ name: `s${i}`, template: "x" }))].map((g) => g) }, c("x")]
    }))
    let max = 0
    let created = 0
    for (let i = 0; i < 20; i++) {
      const out = sim.tick()
      const fresh = sim.apply(out, "Running")
      created += fresh.length
      max = Math.max(max, active(sim))
      if (out.status.phase !== "Running") break
      // finish one running pod per tick
      const running = Object.values(sim.nodes()).find((n) => n.type === "Pod" && n.phase === "Running")
      if (running) sim.finish(running.id)
    }
    assert.strictEqual(max, 2)
    assert.strictEqual(created, 5)
    assert.strictEqual(sim.last!.status.phase, "Succeeded")
  })

  it("workflow level applies across a DAG and nested templates", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      parallelism: 3,
      templates: [
        { name: "main", dag: { tasks: [{ name: "a", template: "x" }, { name: "b", template: "x" }, { name: "c", template: "x" }, { name: "inner", template: "inner" }] } },
        { name: "inner", steps: [[{ name: "p", template: "x" }, { name: "q", template: "x" }]] },
        c("x")
      ]
    }))
    const first = sim.apply(sim.tick(), "Running")
    assert.strictEqual(first.length, 3)
    assert.strictEqual(sim.creates(sim.tick()).length, 0)
    sim.finish(first[0].nodeId)
    sim.finish(first[1].nodeId)
    const second = sim.apply(sim.tick(), "Running")
    assert.strictEqual(second.length, 2)
    assert.strictEqual(active(sim), 3)
    for (const p of [first[2], ...second]) sim.finish(p.nodeId)
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(Object.values(sim.nodes()).filter((n) => n.type === "Pod").length, 5)
  })
})

describe("deadlines and timeouts", () => {
  it("template timeout: sets the pod deadline; a pod still Pending past it fails with 'timeout'", () => {
    const sim = new Sim(workflow({ entrypoint: "x", templates: [c("x", { timeout: "30s" })] }))
    let out = sim.tick()
    assert.strictEqual((sim.creates(out)[0].pod.spec as any).activeDeadlineSeconds, 30)
    assert.strictEqual(out.requeueAfterMs, 30_000)
    sim.apply(out, "Pending")
    sim.now += 20_000
    out = sim.tick()
    assert.strictEqual(out.status.phase, "Running")
    sim.now += 11_000
    out = sim.tick()
    assert.strictEqual(sim.node("wf")!.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.message, "timeout")
    assert.strictEqual(out.status.phase, "Failed")
    assert.ok(out.actions.some((a) => a._tag === "DeletePod" && a.nodeId === "wf"))
  })

  it("ARGO_DEADLINE is always set (argoexec refuses to start without it): Go's zero time when there is no deadline", () => {
    const sim = new Sim(workflow({ entrypoint: "x", templates: [c("x")] }))
    const [a] = sim.apply(sim.tick(), "Running")
    for (const name of ["init", "wait", "main"]) {
      assert.strictEqual(envOf(container(a.pod, name), "ARGO_DEADLINE"), "0001-01-01T00:00:00Z", name)
    }
  })

  it("activeDeadlineSeconds: pods started later get only the remaining time; after it new pods are not created", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      activeDeadlineSeconds: 100,
      templates: [{ name: "main", steps: [[{ name: "a", template: "x" }], [{ name: "b", template: "x" }]] }, c("x")]
    }))
    const [a] = sim.apply(sim.tick(), "Running")
    assert.strictEqual((a.pod.spec as any).activeDeadlineSeconds, 100)
    assert.strictEqual(envOf(container(a.pod, "wait") ?? container(a.pod, "main"), "ARGO_DEADLINE") ?? "2025-01-01T00:01:40Z", "2025-01-01T00:01:40Z")
    sim.now += 40_000
    sim.finish(a.nodeId)
    const [b] = sim.apply(sim.tick(), "Running")
    assert.strictEqual((b.pod.spec as any).activeDeadlineSeconds, 60)
    // (the running pod's kubelet is given deadlineGraceMs to report first)
    sim.now += 61_000 + deadlineGraceMs
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf[1].b")!.message, "Step exceeded its deadline")
  })
})

describe("exit handlers", () => {
  it("spec.onExit sees workflow.status Failed, workflow.failures and the workflow's arguments", () => {
    const sim = new Sim(workflow({
      entrypoint: "a",
      onExit: "bye",
      arguments: { parameters: [{ name: "who", value: "team" }] },
      templates: [
        c("a"),
        { name: "bye", inputs: { parameters: [{ name: "who" }] }, container: { image: "busybox", command: ["echo"], args: ["{{workflow.status}}", "{{workflow.failures}}", "{{inputs.parameters.who}}"] } }
      ]
    }))
    sim.apply(sim.tick(), "Running")
    sim.setPod("wf", "Failed", { exitCode: 2, finishedAt: iso(sim.now) })
    const out = sim.tick()
    const [exit] = sim.apply(out, "Running")
    assert.ok(exit, JSON.stringify(sim.node("wf.onExit")))
    const args = container(exit.pod, "main").args
    assert.strictEqual(args[0], "Failed")
    const failures = JSON.parse(args[1])
    assert.strictEqual(failures.length, 1)
    assert.deepStrictEqual(
      { displayName: failures[0].displayName, message: failures[0].message, templateName: failures[0].templateName, phase: failures[0].phase, podName: failures[0].podName },
      { displayName: "wf", message: "Error (exit code 2)", templateName: "a", phase: "Failed", podName: "wf" }
    )
    assert.strictEqual(args[2], "team")
    sim.finish(exit.nodeId)
    const done = sim.tick()
    assert.strictEqual(done.status.phase, "Failed")
    assert.strictEqual(done.status.message, "Error (exit code 2)")
  })

  it("spec.hooks.exit works like onExit, with its own arguments", () => {
    const sim = new Sim(workflow({
      entrypoint: "a",
      hooks: { exit: { template: "bye", arguments: { parameters: [{ name: "s", value: "{{workflow.status}}" }] } } },
      templates: [c("a"), echo("bye", ["{{inputs.parameters.s}}"], { inputs: { parameters: [{ name: "s" }] } })]
    }))
    const args: Array<string> = []
    const out = sim.runAll((p) => {
      if (p.nodeId === nodeId("wf", "wf.onExit")) args.push(container(p.pod, "main").args[0])
      return { ok: true }
    })
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(args, ["Succeeded"])
    assert.deepStrictEqual(sim.node("wf.onExit")!.nodeFlag, { hooked: true })
  })

  it("a failing exit handler fails a succeeded workflow", () => {
    const sim = new Sim(workflow({ entrypoint: "a", onExit: "bye", templates: [c("a"), c("bye")] }))
    const out = sim.runAll((p) => ({ ok: p.nodeId !== nodeId("wf", "wf.onExit") }))
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(out.status.message, "Error (exit code 1)")
  })

  it("task-level onExit and hooks.exit in a DAG see the task's status; dependants wait for them", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          dag: {
            tasks: [
              { name: "a", template: "x", onExit: "bye" },
              { name: "b", template: "x", depends: "a", hooks: { exit: { template: "say", arguments: { parameters: [{ name: "s", value: "{{tasks.b.status}}" }] } } } },
              { name: "c", template: "x", depends: "b" }
            ]
          }
        },
        c("x"),
        c("bye"),
        echo("say", ["{{inputs.parameters.s}}"], { inputs: { parameters: [{ name: "s" }] } })
      ]
    }))
    const [a] = sim.apply(sim.tick(), "Running")
    sim.finish(a.nodeId)
    let out = sim.tick()
    const [hookA] = sim.apply(out, "Running")
    assert.strictEqual(hookA.nodeId, nodeId("wf", "wf.a.onExit"))
    assert.strictEqual(sim.creates(out).length, 1, "b waits for a's exit hook")
    sim.finish(hookA.nodeId)
    const [b] = sim.apply(sim.tick(), "Running")
    assert.strictEqual(b.nodeId, nodeId("wf", "wf.b"))
    sim.finish(b.nodeId)
    out = sim.tick()
    const [hookB] = sim.apply(out, "Running")
    assert.strictEqual(hookB.nodeId, nodeId("wf", "wf.b.onExit"))
    assert.deepStrictEqual(container(hookB.pod, "main").args, ["Succeeded"])
    assert.strictEqual(sim.creates(out).length, 1, "c waits for b's exit hook")
    sim.finish(hookB.nodeId)
    out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.ok(sim.node("wf.a")!.children.includes(nodeId("wf", "wf.a.onExit")))
    assert.deepStrictEqual(sim.node("wf.b.onExit")!.nodeFlag, { hooked: true })
  })
})

describe("podGC", () => {
  const run = (podGC: Record<string, unknown>, fail = false, extraTemplate: Record<string, unknown> = {}) => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      podGC,
      templates: [{ name: "main", steps: [[{ name: "a", template: "x" }], [{ name: "b", template: "y" }]] }, c("x", extraTemplate), c("y")]
    }))
    return sim
  }
  const tags = (sim: Sim) => sim.last!.actions.filter((a) => a._tag !== "CreatePod").map((a) => `${a._tag}:${a.nodeId}`)
  const A = nodeId("wf", "wf[0].a")
  const B = nodeId("wf", "wf[1].b")

  it("OnPodCompletion deletes each pod once its node is complete, not before", () => {
    const sim = run({ strategy: "OnPodCompletion" })
    sim.apply(sim.tick(), "Running")
    // the pod has ended but its node is not complete yet (no task result needed: complete at once)
    sim.finish(A)
    sim.tick()
    assert.deepStrictEqual(tags(sim), [`DeletePod:${A}`])
    assert.strictEqual(sim.node("wf[0].a")!.phase, "Succeeded")
  })

  it("a pod whose outputs are not reported yet is not deleted", () => {
    const sim = run({ strategy: "OnPodCompletion" }, false, { outputs: { parameters: [{ name: "o", valueFrom: { path: "/tmp/o" } }] } })
    sim.apply(sim.tick(), "Running")
    sim.setPod(A, "Succeeded", { exitCode: 0, finishedAt: iso(sim.now) })
    sim.tick()
    assert.strictEqual(sim.node("wf[0].a")!.phase, "Running")
    assert.deepStrictEqual(tags(sim), [])
    sim.taskResults.set(A, { nodeId: A, outputs: { parameters: [{ name: "o", value: "1" }] }, completed: true })
    sim.tick()
    assert.deepStrictEqual(tags(sim), [`DeletePod:${A}`])
  })

  it("OnPodSuccess deletes succeeded pods and keeps (labels) failed ones", () => {
    const sim = run({ strategy: "OnPodSuccess" })
    sim.apply(sim.tick(), "Running")
    sim.finish(A)
    sim.apply(sim.tick(), "Running")
    assert.deepStrictEqual(tags(sim), [`DeletePod:${A}`])
    sim.pods.delete(A)
    sim.finish(B, false)
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.deepStrictEqual(tags(sim), [`LabelPodCompleted:${B}`])
  })

  it("OnWorkflowCompletion deletes nothing until the workflow ends, then everything", () => {
    const sim = run({ strategy: "OnWorkflowCompletion" })
    sim.apply(sim.tick(), "Running")
    sim.finish(A)
    sim.apply(sim.tick(), "Running")
    assert.deepStrictEqual(tags(sim), [])
    sim.finish(B, false)
    sim.tick()
    assert.strictEqual(sim.last!.status.phase, "Failed")
    assert.deepStrictEqual(tags(sim).sort(), [`DeletePod:${A}`, `DeletePod:${B}`].sort())
  })

  it("OnWorkflowSuccess deletes at success only", () => {
    const sim = run({ strategy: "OnWorkflowSuccess" })
    sim.apply(sim.tick(), "Running")
    sim.finish(A)
    sim.apply(sim.tick(), "Running")
    assert.deepStrictEqual(tags(sim), [])
    sim.finish(B)
    sim.tick()
    assert.strictEqual(sim.last!.status.phase, "Succeeded")
    assert.deepStrictEqual(tags(sim).sort(), [`DeletePod:${A}`, `DeletePod:${B}`].sort())
  })

  it("labelSelector limits deletion to matching pods (template metadata labels); deleteDelayDuration delays it", () => {
    const sim = run({ strategy: "OnWorkflowSuccess", labelSelector: { matchLabels: { gc: "yes" } }, deleteDelayDuration: "1m" }, false, { metadata: { labels: { gc: "yes" } } })
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(tags(sim), [`LabelPodCompleted:${B}`])
    assert.strictEqual(out.requeueAfterMs, 60_000)
    sim.now += 60_000
    sim.tick()
    assert.deepStrictEqual(tags(sim).sort(), [`DeletePod:${A}`, `LabelPodCompleted:${B}`].sort())
  })
})

describe("templateDefaults", () => {
  it("are merged under every template; the template's own fields win; container defaults only reach containers", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templateDefaults: { activeDeadlineSeconds: 50, container: { image: "busybox", env: [{ name: "FROM", value: "defaults" }] } },
      templates: [
        { name: "main", steps: [[{ name: "a", template: "x" }, { name: "b", template: "y" }]] },
        { name: "x", container: { command: ["true"] } },
        { name: "y", activeDeadlineSeconds: 5, container: { image: "alpine", command: ["true"] } }
      ]
    }))
    const out = sim.tick()
    const byId = Object.fromEntries(sim.creates(out).map((p) => [p.nodeId, p]))
    const x = byId[nodeId("wf", "wf[0].a")]
    const y = byId[nodeId("wf", "wf[0].b")]
    assert.strictEqual(container(x.pod, "main").image, "busybox")
    assert.strictEqual(envOf(container(x.pod, "main"), "FROM"), "defaults")
    assert.strictEqual((x.pod.spec as any).activeDeadlineSeconds, 50)
    assert.strictEqual(container(y.pod, "main").image, "alpine")
    assert.strictEqual((y.pod.spec as any).activeDeadlineSeconds, 5)
    assert.strictEqual(sim.node("wf")!.type, "Steps")
  })
})

describe("parameters", () => {
  it("a workflow argument without a value errors the workflow, naming it", () => {
    const sim = new Sim(workflow({ entrypoint: "x", arguments: { parameters: [{ name: "region" }] }, templates: [c("x")] }))
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Error")
    assert.match(String(out.status.message), /region/)
    assert.strictEqual(sim.creates(out).length, 0)
  })

  it("an input nobody passes errors the step, naming the parameter", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: [[{ name: "a", template: "p" }]] }, echo("p", ["{{inputs.parameters.msg}}"], { inputs: { parameters: [{ name: "msg" }] } })]
    }))
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf[0].a")!.phase, "Error")
    assert.match(sim.node("wf[0].a")!.message, /inputs\.parameters\.msg/)
  })

  it("an empty value is a value; an unresolvable argument is an error naming it", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: [[{ name: "a", template: "p", arguments: { parameters: [{ name: "msg", value: "" }] } }]] }, echo("p", ["[{{inputs.parameters.msg}}]"], { inputs: { parameters: [{ name: "msg" }] } })]
    }))
    const [pod] = sim.apply(sim.tick(), "Running")
    assert.deepStrictEqual(container(pod.pod, "main").args, ["[]"])
    const bad = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: [[{ name: "a", template: "p", arguments: { parameters: [{ name: "msg", value: "{{steps.nope.outputs.result}}" }] } }]] }, echo("p", ["x"], { inputs: { parameters: [{ name: "msg" }] } })]
    }))
    bad.runAll()
    assert.strictEqual(bad.node("wf[0].a")!.phase, "Error")
    assert.match(bad.node("wf[0].a")!.message, /steps\.nope\.outputs\.result/)
  })
})

describe("loops", () => {
  it("withItems maps: item.<key> and (i:k:v,...) names", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "os", template: "p", withItems: [{ image: "debian", tag: "9.1" }, { image: "alpine", tag: "3.6" }], arguments: { parameters: [{ name: "m", value: "{{item.image}}:{{item.tag}}" }] } }]] },
        echo("p", ["{{inputs.parameters.m}}"], { inputs: { parameters: [{ name: "m" }] } })
      ]
    }))
    const pods = sim.apply(sim.tick(), "Running")
    assert.deepStrictEqual(pods.map((p) => container(p.pod, "main").args[0]).sort(), ["alpine:3.6", "debian:9.1"])
    assert.ok(sim.node("wf[0].os(0:image:debian,tag:9.1)"))
    assert.ok(sim.node("wf[0].os(1:image:alpine,tag:3.6)"))
  })

  it("withParam from a previous step's output, and withSequence with a format", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "gen", template: "gen" }],
            [{ name: "use", template: "p", withParam: "{{steps.gen.outputs.result}}", arguments: { parameters: [{ name: "m", value: "{{item}}" }] } }],
            [{ name: "seq", template: "p", withSequence: { start: "1", count: "3", format: "n%02d" }, arguments: { parameters: [{ name: "m", value: "{{item}}" }] } }]
          ]
        },
        { name: "gen", script: { image: "python", command: ["python"], source: "print('[1,2]')" } },
        echo("p", ["{{inputs.parameters.m}}"], { inputs: { parameters: [{ name: "m" }] } })
      ]
    }))
    const seen: Array<string> = []
    const out = sim.runAll((p) => {
      if (p.nodeId === nodeId("wf", "wf[0].gen")) return { ok: true, outputs: { result: '["a","b"]' } }
      seen.push(container(p.pod, "main").args[0])
      return { ok: true }
    })
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(seen.sort(), ["a", "b", "n01", "n02", "n03"])
    assert.ok(sim.node("wf[1].use(0:a)"))
    assert.ok(sim.node("wf[2].seq(2:n03)"))
  })

  it("an empty withParam list skips the DAG task: Skipped, empty params", () => {
    const sim = new Sim(workflow({ entrypoint: "main", templates: [{ name: "main", dag: { tasks: [{ name: "t", template: "x", withParam: "[]" }] } }, c("x")] }))
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf.t")!.phase, "Skipped")
    assert.strictEqual(sim.node("wf.t")!.message, "Skipped, empty params")
  })
})

describe("when", () => {
  it("a false `when` in a DAG skips the task with the substituted condition in the message", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", dag: { tasks: [{ name: "a", template: "x" }, { name: "b", template: "x", depends: "a", when: "{{tasks.a.status}} == Failed" }] } }, c("x")]
    }))
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf.b")!.type, "Skipped")
    assert.strictEqual(sim.node("wf.b")!.phase, "Skipped")
    assert.strictEqual(sim.node("wf.b")!.message, "when 'Succeeded == Failed' evaluated false")
  })

  it("a malformed `when` errors the node", () => {
    const sim = new Sim(workflow({ entrypoint: "main", templates: [{ name: "main", steps: [[{ name: "a", template: "x", when: "1 == (2" }]] }, c("x")] }))
    const out = sim.runAll()
    assert.strictEqual(sim.node("wf[0].a")!.phase, "Error")
    assert.match(sim.node("wf[0].a")!.message, /Invalid 'when' expression/)
    assert.notStrictEqual(out.status.phase, "Succeeded")
  })
})

describe("node types and IDs", () => {
  it("Steps, StepGroup, DAG, TaskGroup, Retry, Pod and Skipped nodes with Argo's names and IDs", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "d", template: "dag" }], [{ name: "no", template: "x", when: "false" }]] },
        { name: "dag", dag: { tasks: [{ name: "loop", template: "x", withItems: ["a", "b"] }, { name: "r", template: "retry" }] } },
        c("x"),
        { ...c("retry"), retryStrategy: { limit: 1 } }
      ]
    }))
    const out = sim.runAll()
    assert.strictEqual(out.status.phase, "Succeeded")
    const expect: Record<string, string> = {
      wf: "Steps",
      "wf[0]": "StepGroup",
      "wf[0].d": "DAG",
      "wf[0].d.loop": "TaskGroup",
      "wf[0].d.loop(0:a)": "Pod",
      "wf[0].d.loop(1:b)": "Pod",
      "wf[0].d.r": "Retry",
      "wf[0].d.r(0)": "Pod",
      "wf[1]": "StepGroup",
      "wf[1].no": "Skipped"
    }
    for (const [name, type] of Object.entries(expect)) {
      const n = sim.node(name)
      assert.ok(n, name)
      assert.strictEqual(n!.type, type, name)
      assert.strictEqual(n!.id, nodeId("wf", name), name)
    }
    assert.strictEqual(Object.keys(sim.nodes()).length, Object.keys(expect).length)
    assert.strictEqual(sim.node("wf[0].d.r(0)")!.displayName, "r(0)")
    assert.strictEqual(sim.node("wf[0].d.loop(1:b)")!.boundaryID, nodeId("wf", "wf[0].d"))
    assert.strictEqual(sim.node("wf[0].d.r(0)")!.boundaryID, nodeId("wf", "wf[0].d"))
    assert.strictEqual(sim.node("wf[1].no")!.message, "when 'false' evaluated false")
  })
})

describe("cluster and namespace inheritance", () => {
  it("a DAG's cluster reaches its tasks; a called steps template overrides it for its own children", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", cluster: "east", namespace: "jobs", dag: { tasks: [{ name: "a", template: "x" }, { name: "inner", template: "inner" }, { name: "own", template: "own" }] } },
        { name: "inner", cluster: "west", steps: [[{ name: "b", template: "x" }, { name: "c", template: "pinned" }]] },
        c("x"),
        c("own", { namespace: "mine" }),
        c("pinned", { cluster: "main", namespace: "local" })
      ]
    }))
    const where = Object.fromEntries(sim.creates(sim.tick()).map((a) => [a.nodeId, `${a.cluster}/${a.namespace}`]))
    assert.deepStrictEqual(where, {
      [nodeId("wf", "wf.a")]: "east/jobs",
      [nodeId("wf", "wf.inner[0].b")]: "west/jobs",
      [nodeId("wf", "wf.inner[0].c")]: "main/local",
      [nodeId("wf", "wf.own")]: "east/mine"
    })
  })

  it("exit handlers of a task inherit the DAG's placement", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", cluster: "east", dag: { tasks: [{ name: "a", template: "x", onExit: "x" }] } }, c("x")]
    }))
    const [a] = sim.apply(sim.tick(), "Running")
    sim.finish(a.nodeId)
    const [hook] = sim.creates(sim.tick())
    assert.strictEqual(hook.nodeId, nodeId("wf", "wf.a.onExit"))
    assert.strictEqual(hook.cluster, "east")
  })
})
