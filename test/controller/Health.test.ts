import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { AddressInfo } from "node:net"
import * as Health from "../../src/controller/Health.js"
import * as Metrics from "../../src/controller/Metrics.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { seedWorkflow, startFor } from "./fixtures.js"

describe("/healthz", () => {
  it.live("reports each cluster's connection state, and stays healthy when a remote cluster is down", () =>
    Effect.gen(function*() {
      const { controller, kube } = yield* startFor([seedWorkflow()])
      yield* controller.pool.synced
      const server = yield* Health.serve(Effect.succeed(Option.some(controller.pool)), 0)
      const port = (server.address() as AddressInfo).port
      const get = Effect.promise(() => fetch(`http://127.0.0.1:${port}/healthz`).then(async (r) => ({ status: r.status, body: await r.json() as any })))
      const ok = yield* get
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(ok.body.localCluster, "main")
      assert.strictEqual(ok.body.leader, true)
      assert.deepStrictEqual(ok.body.clusters, { main: "Connected", "cluster-1": "Connected" })

      yield* kube.setReachable("cluster-1", false)
      // The remote watch notices on its next call; wait for the state to change.
      let body = ok.body
      for (let i = 0; i < 200 && body.clusters["cluster-1"] === "Connected"; i++) {
        yield* kube.compact("cluster-1")
        yield* Effect.yieldNow
        body = (yield* get).body
      }
      const down = yield* get
      assert.strictEqual(down.status, 200)
      // The state only: the error behind it (addresses, identities, RBAC text) is for the log, not an unauthenticated endpoint.
      assert.deepStrictEqual(down.body.clusters, { main: "Connected", "cluster-1": "Retrying" })
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)), 30_000)

  it.live("a replica waiting for the leader lease answers 200 (alive, ready to take over), and /metrics says it does not lead", () =>
    Effect.gen(function*() {
      const health = yield* Health.serve(Effect.succeed(Option.none()), 0, "127.0.0.1")
      const metrics = yield* Metrics.serve(Effect.succeed(Option.none()), 0, "127.0.0.1")
      const get = (server: typeof health, path: string) =>
        Effect.promise(() => fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`).then(async (r) => ({ status: r.status, text: await r.text() })))
      const h = yield* get(health, "/healthz")
      assert.strictEqual(h.status, 200)
      assert.deepStrictEqual(JSON.parse(h.text), { ok: true, leader: false })
      const m = yield* get(metrics, "/metrics")
      assert.strictEqual(m.status, 200)
      assert.include(m.text, "flotilla_leader 0")
    }).pipe(Effect.scoped))
})

describe("/metrics", () => {
  it.live("exposes Argo's workflow gauge and each cluster's connection", () =>
    Effect.gen(function*() {
      const wf = seedWorkflow()
      const { admin, controller } = yield* startFor([wf])
      yield* admin.create("workflows", "local", { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", ...wf })
      yield* Embedded.awaitWorkflow(controller, "local", "multi-cluster", Embedded.isCompleted)
      yield* controller.pool.synced
      const text = yield* Metrics.render(controller)
      assert.include(text, `argo_workflows_gauge{phase="Succeeded"} 1`)
      assert.include(text, `argo_workflows_gauge{phase="Running"} 0`)
      assert.match(text, /flotilla_cluster_connected\{cluster="cluster-1",state="Connected"\} 1/)
      assert.match(text, /argo_workflows_queue_depth_gauge\{queue_name="workflow_queue"\} \d+/)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)), 30_000)
})
