/**
 * http templates end to end on the embedded runtime: the controller makes the
 * request to a server the test starts on 127.0.0.1, with a header from a
 * secret in the workflow's namespace, and the next step reads the body as
 * the http step's result (http-hello-world.yaml's shape, a bad URL carried
 * on by continueOn). Also a lifecycle hook that is an http template, and a
 * workflow whose service account may not read the secret its header names.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const startServer = Effect.acquireRelease(
  Effect.callback<{ base: string; server: http.Server; seen: Array<string> }>((resume) => {
    const seen: Array<string> = []
    const server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers["x-token"] ?? ""}`)
      if (req.url === "/good") res.end("hello from the server")
      else {
        res.statusCode = 404
        res.end("not here")
      }
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen })))
  }),
  ({ server }) => Effect.callback<void>((resume) => {
    server.closeAllConnections()
    server.close(() => resume(Effect.void))
  })
)

const workflow = (base: string): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "http-template", namespace: "default" },
  spec: {
    entrypoint: "main",
    hooks: { running: { expression: `workflow.status == "Running"`, template: "http", arguments: { parameters: [{ name: "url", value: `${base}/hook` }] } } },
    templates: [
      {
        name: "main",
        steps: [
          [
            { name: "good", template: "http", arguments: { parameters: [{ name: "url", value: `${base}/good` }] } },
            { name: "bad", template: "http", continueOn: { failed: true }, arguments: { parameters: [{ name: "url", value: `${base}/bad` }] } }
          ],
          [{ name: "print", template: "print", arguments: { parameters: [{ name: "body", value: "{{steps.good.outputs.result}}" }] } }]
        ]
      },
      {
        name: "http",
        inputs: { parameters: [{ name: "url" }] },
        http: { url: "{{inputs.parameters.url}}", headers: [{ name: "X-Token", valueFrom: { secretKeyRef: { name: "token", key: "value" } } }] }
      },
      { name: "print", inputs: { parameters: [{ name: "body" }] }, container: { image: "busybox", command: ["echo", "{{inputs.parameters.body}}"] } }
    ]
  }
})

describe("embedded runtime: http templates", () => {
  it.live("the controller makes the request; the body is the step's result; a 404 fails its step", () =>
    Effect.gen(function*() {
      const { base, seen } = yield* startServer
      const wf = workflow(base)
      const { admin, controller } = yield* Embedded.start(Embedded.placementOf([wf]), { mode: "simulate" })
      yield* admin.create("secrets", "default", {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "token", namespace: "default" },
        data: { value: Buffer.from("s3cret").toString("base64") }
      })
      yield* admin.create("workflows", "default", wf)
      const done = yield* Embedded.awaitWorkflow(controller, "default", "http-template", Embedded.isCompleted).pipe(
        Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error("http-template did not complete")) })
      )
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
      const nodes = Object.values((done!.status as { nodes: Record<string, any> }).nodes)
      const byName = (n: string) => nodes.find((x) => x.name === n)
      assert.strictEqual(byName("http-template[0].good").type, "HTTP")
      assert.strictEqual(byName("http-template[0].good").outputs.result, "hello from the server")
      assert.strictEqual(byName("http-template[0].bad").phase, "Failed")
      assert.strictEqual(byName("http-template[0].bad").message, "received non-2xx response code: 404")
      assert.deepStrictEqual(byName("http-template[1].print").inputs.parameters, [{ name: "body", value: "hello from the server" }])
      assert.strictEqual(byName("http-template.hooks.running").nodeFlag.hooked, true)
      assert.sameMembers(seen, ["GET /good s3cret", "GET /bad s3cret", "GET /hook s3cret"])
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("a workflow whose service account may not get the secret: the node fails naming the secret, the account and 'forbidden'; no request is made", () =>
    Effect.gen(function*() {
      const { base, seen } = yield* startServer
      const wf: KubeObject = {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "Workflow",
        metadata: { name: "http-forbidden", namespace: "default" },
        spec: {
          entrypoint: "http",
          serviceAccountName: "no-secrets",
          templates: [{ name: "http", http: { url: `${base}/good`, headers: [{ name: "X-Token", valueFrom: { secretKeyRef: { name: "token", key: "value" } } }] } }]
        }
      }
      const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), { mode: "simulate" })
      // The user may create workflows here, and the controller may read every secret: the account may not.
      yield* kube.revoke(Embedded.localClusterName, Embedded.serviceAccountUser("default", "no-secrets"), [Embedded.workflowSecretsRule("default")])
      yield* admin.create("secrets", "default", {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "token", namespace: "default" },
        data: { value: Buffer.from("s3cret").toString("base64") }
      })
      yield* admin.create("workflows", "default", wf)
      const done = yield* Embedded.awaitWorkflow(controller, "default", "http-forbidden", Embedded.isCompleted).pipe(
        Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error("http-forbidden did not complete")) })
      )
      assert.strictEqual(Embedded.phaseOf(done), "Failed")
      const node = Object.values((done!.status as { nodes: Record<string, any> }).nodes).find((x) => x.type === "HTTP")
      assert.strictEqual(node.phase, "Failed")
      assert.include(node.message, "secret default/token: forbidden: service account system:serviceaccount:default:no-secrets may not get it")
      assert.notInclude(JSON.stringify(done), "s3cret")
      assert.deepStrictEqual(seen, [])
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})
