/**
 * retryStrategy (policies, backoff, expression, `retries`), continueOn,
 * failFast and failed DAG roots, driven tick by tick.
 */
import { assert, describe, it } from "@effect/vitest"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { container, Sim, workflow } from "./harness.js"

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z")
const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra, container: { image: "busybox", command: ["true"] } })
const retried = (retryStrategy: Record<string, unknown>) => workflow({ entrypoint: "r", templates: [{ ...c("r"), retryStrategy }] })

/** End the latest attempt's pod: "ok", "fail" (exit 1 or `code`), or "error" (no exit code, a reason). */
const end = (sim: Sim, id: string, how: "ok" | "fail" | "error", extra: { code?: number; message?: string } = {}) => {
  if (how === "ok") return sim.finish(id)
  if (how === "fail") {
    sim.setPod(id, "Failed", { exitCode: extra.code ?? 1, finishedAt: iso(sim.now), ...(extra.message ? { message: extra.message } : {}) })
    return
  }
  sim.setPod(id, "Failed", { reason: "ContainerCannotRun", message: extra.message ?? "failed to start", finishedAt: iso(sim.now) })
}

/** Run a retried template: each attempt ends as `outcomes[i]`; returns the final output. */
const attempts = (sim: Sim, outcomes: ReadonlyArray<"ok" | "fail" | "error">, messages: ReadonlyArray<string | undefined> = []) => {
  let out = sim.tick()
  for (let i = 0; i < 20; i++) {
    const fresh = sim.apply(out, "Running")
    if (fresh.length > 0) {
      const n = Number(/\((\d+)\)$/.exec(sim.nodes()[fresh[0].nodeId].name)![1])
      end(sim, fresh[0].nodeId, outcomes[n] ?? "ok", { message: messages[n] })
    } else if (out.requeueAfterMs !== undefined && out.status.phase === "Running") sim.now += out.requeueAfterMs
    else return out
    out = sim.tick()
  }
  throw new Error("did not settle")
}

describe("retryStrategy.retryPolicy", () => {
  it("Always retries errors and failures", () => {
    const sim = new Sim(retried({ limit: 3, retryPolicy: "Always" }))
    const out = attempts(sim, ["error", "fail", "ok"])
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.deepStrictEqual(["wf(0)", "wf(1)", "wf(2)"].map((n) => sim.node(n)!.phase), ["Error", "Failed", "Succeeded"])
    assert.strictEqual(sim.node("wf")!.type, "Retry")
    assert.strictEqual(sim.node("wf")!.phase, "Succeeded")
  })

  it("OnFailure (the default) retries failures but not errors", () => {
    const sim = new Sim(retried({ limit: 3 }))
    const out = attempts(sim, ["fail", "error"])
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(sim.node("wf")!.children.length, 2)
    assert.strictEqual(sim.node("wf")!.phase, "Error")
    assert.strictEqual(sim.node("wf")!.message, "failed to start")
  })

  it("OnError retries errors but not failures", () => {
    const sim = new Sim(retried({ limit: 3, retryPolicy: "OnError" }))
    const out = attempts(sim, ["error", "error", "fail"])
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.children.length, 3)
    assert.strictEqual(out.status.message, "Error (exit code 1)")
  })

  it("OnTransientError retries only transient messages", () => {
    const transient = new Sim(retried({ limit: 3, retryPolicy: "OnTransientError" }))
    const out = attempts(transient, ["error", "ok"], ["dial tcp 10.0.0.1:443: connect: connection refused"])
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(transient.node("wf")!.children.length, 2)
    const permanent = new Sim(retried({ limit: 3, retryPolicy: "OnTransientError" }))
    const o2 = attempts(permanent, ["error"], ["exec format error"])
    assert.strictEqual(o2.status.phase, "Error")
    assert.strictEqual(permanent.node("wf")!.children.length, 1)
  })

  it("limit 0 runs once; the limit counts retries, not attempts", () => {
    const once = new Sim(retried({ limit: 0 }))
    assert.strictEqual(attempts(once, ["fail", "ok"]).status.phase, "Failed")
    assert.strictEqual(once.node("wf")!.message, "No more retries left")
    const twice = new Sim(retried({ limit: "1" }))
    assert.strictEqual(attempts(twice, ["fail", "ok"]).status.phase, "Succeeded")
  })
})

describe("retryStrategy.backoff", () => {
  it("waits duration * factor^n after each failure (requeueAfterMs), then retries", () => {
    const sim = new Sim(retried({ limit: 3, backoff: { duration: "5s", factor: 3 } }))
    const waits: Array<number | undefined> = []
    let out = sim.tick()
    for (let i = 0; i < 3; i++) {
      const [pod] = sim.apply(out, "Running")
      end(sim, pod.nodeId, "fail")
      out = sim.tick()
      waits.push(out.requeueAfterMs)
      assert.strictEqual(sim.creates(out).length, 0, "nothing is created while backing off")
      // an early wake-up still waits, for the remaining time
      sim.now += 1000
      out = sim.tick()
      assert.strictEqual(sim.creates(out).length, 0)
      assert.strictEqual(out.requeueAfterMs, waits[i]! - 1000)
      sim.now += out.requeueAfterMs!
      out = sim.tick()
    }
    assert.deepStrictEqual(waits, [5_000, 15_000, 45_000])
    assert.strictEqual(sim.node("wf")!.children.length, 4)
  })

  it("maxDuration: backoff that would pass it fails the node", () => {
    const sim = new Sim(retried({ limit: 5, backoff: { duration: "5s", factor: 2, maxDuration: "12s" } }))
    let out = sim.tick()
    end(sim, sim.apply(out, "Running")[0].nodeId, "fail")
    out = sim.tick()
    assert.strictEqual(out.requeueAfterMs, 5_000)
    sim.now += 5_000
    out = sim.tick()
    end(sim, sim.apply(out, "Running")[0].nodeId, "fail")
    out = sim.tick() // would wait 10s until t=15s > 12s
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.message, "Backoff would exceed max duration limit")
  })

  it("maxDuration already passed: Max duration limit exceeded", () => {
    const sim = new Sim(retried({ limit: 5, backoff: { duration: "1s", maxDuration: "3s" } }))
    const out = sim.tick()
    const [pod] = sim.apply(out, "Running")
    sim.now += 10_000
    end(sim, pod.nodeId, "fail")
    assert.strictEqual(sim.tick().status.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.message, "Max duration limit exceeded")
  })
})

describe("retryStrategy.expression and retries", () => {
  it("retries while the expression holds, with lastRetry.exitCode", () => {
    const sim = new Sim(retried({ limit: 10, expression: "asInt(lastRetry.exitCode) > 1" }))
    let out = sim.tick()
    end(sim, sim.apply(out, "Running")[0].nodeId, "fail", { code: 3 })
    out = sim.tick()
    const [second] = sim.apply(out, "Running")
    assert.ok(second, "exit code 3 > 1: retried")
    end(sim, second.nodeId, "fail", { code: 1 })
    out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.message, "retryStrategy.expression evaluated to false")
    assert.strictEqual(sim.node("wf")!.children.length, 2)
  })

  it("lastRetry.status distinguishes errors from failures", () => {
    const sim = new Sim(retried({ limit: 10, retryPolicy: "Always", expression: "lastRetry.status == 'Error'" }))
    const out = attempts(sim, ["error", "error", "fail"])
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf")!.children.length, 3)
  })

  it("{{retries}} is the attempt number inside the template", () => {
    const sim = new Sim(workflow({
      entrypoint: "r",
      templates: [{ name: "r", retryStrategy: { limit: 2 }, container: { image: "busybox", command: ["echo"], args: ["attempt {{retries}}"] } }]
    }))
    const args: Array<string> = []
    let out = sim.tick()
    for (let i = 0; i < 3; i++) {
      const [pod] = sim.apply(out, "Running")
      args.push(container(pod.pod, "main").args[0])
      end(sim, pod.nodeId, i < 2 ? "fail" : "ok")
      out = sim.tick()
    }
    assert.deepStrictEqual(args, ["attempt 0", "attempt 1", "attempt 2"])
    assert.strictEqual(out.status.phase, "Succeeded")
  })
})

describe("continueOn", () => {
  const stepsWf = (continueOn?: Record<string, boolean>) => workflow({
    entrypoint: "main",
    templates: [{ name: "main", steps: [[{ name: "a", template: "x", ...(continueOn ? { continueOn } : {}) }], [{ name: "b", template: "x" }]] }, c("x")]
  })

  it("steps: continueOn.error lets an errored step through, and only errors", () => {
    const erroring = (sim: Sim) => {
      const [a] = sim.apply(sim.tick(), "Running")
      end(sim, a.nodeId, "error")
      return sim.runAll()
    }
    const withError = new Sim(stepsWf({ error: true }))
    assert.strictEqual(erroring(withError).status.phase, "Succeeded")
    assert.strictEqual(withError.node("wf[0].a")!.phase, "Error")
    assert.strictEqual(withError.node("wf[1].b")!.phase, "Succeeded")
    const onlyFailed = new Sim(stepsWf({ failed: true }))
    const out = erroring(onlyFailed)
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(out.status.message, `child '${nodeId("wf", "wf[0].a")}' failed`)
    assert.strictEqual(onlyFailed.node("wf[1]"), undefined)
  })

  it("DAG: a dependency with continueOn.failed still lets its dependants run", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", dag: { tasks: [{ name: "a", template: "x", continueOn: { failed: true } }, { name: "b", template: "x", dependencies: ["a"] }] } }, c("x")]
    }))
    const out = sim.runAll((p) => ({ ok: p.nodeId !== nodeId("wf", "wf.a") }))
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf.a")!.phase, "Failed")
    assert.strictEqual(sim.node("wf.b")!.phase, "Succeeded")
  })
})

describe("failed DAGs", () => {
  const chain = workflow({
    entrypoint: "main",
    templates: [{
      name: "main",
      dag: { tasks: [{ name: "root", template: "x" }, { name: "mid", template: "x", dependencies: ["root"] }, { name: "leaf", template: "x", depends: "mid" }] }
    }, c("x")]
  })

  it("a failed root omits its dependants and fails the workflow", () => {
    const sim = new Sim(chain)
    const out = sim.runAll(() => ({ ok: false }))
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf.root")!.phase, "Failed")
    for (const n of ["wf.mid", "wf.leaf"]) {
      assert.strictEqual(sim.node(n)!.phase, "Omitted")
      assert.strictEqual(sim.node(n)!.type, "Skipped")
      assert.strictEqual(sim.node(n)!.message, "omitted: depends condition not met")
    }
    assert.strictEqual(sim.node("wf")!.phase, "Failed")
    // upstream's executeDAG marks the DAG node Failed without a message (dag.go: markNodePhase(nodeName, dagPhase))
    assert.strictEqual(out.status.message, undefined)
    assert.deepStrictEqual(sim.node("wf.root")!.children, [nodeId("wf", "wf.mid")])
    assert.deepStrictEqual(sim.node("wf")!.outboundNodes, [nodeId("wf", "wf.leaf")])
  })

  it("a DAG inside steps fails the step with child '<dag id>' failed", () => {
    const sim = new Sim(workflow({
      entrypoint: "outer",
      templates: [{ name: "outer", steps: [[{ name: "d", template: "main" }]] }, ...(chain.spec as any).templates]
    }))
    const out = sim.runAll(() => ({ ok: false }))
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(out.status.message, `child '${nodeId("wf", "wf[0].d")}' failed`)
  })

  it("failFast (default): a failure waits for running branches, then fails the DAG; failFast false runs every branch", () => {
    const dag = (failFast?: boolean) => workflow({
      entrypoint: "main",
      templates: [{
        name: "main",
        dag: { ...(failFast === undefined ? {} : { failFast }), tasks: [{ name: "bad", template: "x" }, { name: "slow", template: "x" }, { name: "after", template: "x", depends: "slow" }] }
      }, c("x")]
    })
    for (const failFast of [undefined, false]) {
      const sim = new Sim(dag(failFast))
      const first = sim.apply(sim.tick(), "Running")
      assert.strictEqual(first.length, 2)
      end(sim, nodeId("wf", "wf.bad"), "fail")
      let out = sim.tick()
      assert.strictEqual(out.status.phase, "Running", "slow is still running")
      assert.strictEqual(sim.node("wf")!.phase, "Running")
      sim.finish(nodeId("wf", "wf.slow"))
      out = sim.runAll()
      assert.strictEqual(out.status.phase, "Failed")
      assert.strictEqual(sim.node("wf.after")!.phase, "Succeeded", "already-satisfied branches still run (upstream schedules them before assessing)")
    }
  })
})
