/**
 * http templates in the engine: the HTTP node, the request it lists for the
 * controller, and the response judged as upstream's agent does
 * (http-hello-world.yaml: a good URL succeeds, a bad one fails and continueOn
 * carries on).
 */
import { assert, describe, it } from "@effect/vitest"
import type { HttpResult } from "../../../src/workflow/engine/contract.js"
import { reconcile } from "../../../src/workflow/engine/reconcile.js"
import { nodeId } from "../../../src/workflow/engine/ids.js"
import { config, Sim, T0, workflow } from "./harness.js"

const helloWorld = (successCondition?: string) =>
  workflow({
    entrypoint: "main",
    templates: [
      {
        name: "main",
        steps: [[
          { name: "good", template: "http", arguments: { parameters: [{ name: "url", value: "http://127.0.0.1:1/good" }] } },
          { name: "bad", template: "http", continueOn: { failed: true }, arguments: { parameters: [{ name: "url", value: "http://127.0.0.1:1/bad" }] } }
        ]]
      },
      {
        name: "http",
        inputs: { parameters: [{ name: "url" }] },
        http: {
          url: "{{inputs.parameters.url}}",
          headers: [{ name: "X-Token", valueFrom: { secretKeyRef: { name: "tok", key: "t" } } }, { name: "Accept", value: "text/plain" }],
          ...(successCondition ? { successCondition } : {})
        }
      }
    ]
  }, "http")

/** Drives the engine with `httpResults` the way the controller gives them. */
const run = (wf: ReturnType<typeof helloWorld>, respond: (url: string) => HttpResult) => {
  const sim = new Sim(wf)
  const results = new Map<string, HttpResult>()
  const tick = () => {
    const out = reconcile({ workflow: sim.wf, pods: sim.pods, taskResults: sim.taskResults, now: T0, config, httpResults: results })
    sim.wf = { ...sim.wf, status: out.status }
    return out
  }
  const first = tick()
  const requests = first.httpRequests ?? []
  for (const r of requests) results.set(r.nodeId, respond(r.url))
  return { sim, requests, out: tick() }
}

describe("http templates", () => {
  it("request: method GET, substituted URL, headers with secretKeyRef in the workflow's namespace; HTTP node Pending", () => {
    const { requests, sim } = run(helloWorld(), () => ({ _tag: "Response", statusCode: 200, body: "ok", headers: {} }))
    assert.strictEqual(requests.length, 2)
    const good = requests.find((r) => r.url.endsWith("/good"))!
    assert.strictEqual(good.nodeId, nodeId("http", "http[0].good"))
    assert.strictEqual(good.method, "GET")
    assert.strictEqual(good.namespace, "argo")
    assert.deepStrictEqual(good.headers, [{ name: "X-Token", secretKeyRef: { name: "tok", key: "t" } }, { name: "Accept", value: "text/plain" }])
    assert.strictEqual(sim.node("http[0].good")!.type, "HTTP")
  })

  it("a 2xx response succeeds with the body as outputs.result; a 404 fails 'received non-2xx response code: 404'", () => {
    const { out, sim } = run(helloWorld(), (url) =>
      url.endsWith("/good") ? { _tag: "Response", statusCode: 200, body: "{\"a\":1}", headers: {} } : { _tag: "Response", statusCode: 404, body: "nope", headers: {} })
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("http[0].good")!.phase, "Succeeded")
    assert.strictEqual(sim.node("http[0].good")!.outputs.result, "{\"a\":1}")
    assert.strictEqual(sim.node("http[0].bad")!.phase, "Failed")
    assert.strictEqual(sim.node("http[0].bad")!.message, "received non-2xx response code: 404")
    assert.isUndefined(out.httpRequests)
  })

  it("successCondition over response.statusCode, body and headers", () => {
    const cond = `response.statusCode == 201 && response.body contains "yes" && response.headers["X-A"][0] == "b"`
    const { sim } = run(helloWorld(cond), (url) =>
      url.endsWith("/good")
        ? { _tag: "Response", statusCode: 201, body: "yes", headers: { "X-A": ["b"] } }
        : { _tag: "Response", statusCode: 201, body: "no", headers: { "X-A": ["b"] } })
    assert.strictEqual(sim.node("http[0].good")!.phase, "Succeeded")
    assert.strictEqual(sim.node("http[0].bad")!.phase, "Failed")
    assert.strictEqual(sim.node("http[0].bad")!.message, `successCondition '${cond}' evaluated false`)
  })

  it("a request that could not be made fails the node with the reason", () => {
    const { sim } = run(helloWorld(), () => ({ _tag: "Failure", message: "connect ECONNREFUSED 127.0.0.1:1" }))
    assert.strictEqual(sim.node("http[0].good")!.phase, "Failed")
    assert.strictEqual(sim.node("http[0].good")!.message, "connect ECONNREFUSED 127.0.0.1:1")
  })

  it("without a controller that runs them, http templates error 'not supported' instead of waiting", () => {
    const sim = new Sim(helloWorld())
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.include(sim.node("http[0].good")!.message, "http templates are not supported")
  })
})
