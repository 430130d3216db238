import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Ref } from "effect"
import type * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Health from "../../src/controller/Health.js"
import type { ClusterPool, ClusterState } from "../../src/kube/ClusterPool.js"
import { Supervisor } from "../../src/runtime/Supervisor.js"
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

/** A pool that answers what /readyz reads (its local cluster and the states); anything else dies loudly. */
const fakePool = (states: Ref.Ref<ReadonlyMap<string, ClusterState>>): ClusterPool["Service"] => {
  const read = { localCluster: "main", states: Ref.get(states) } as Record<PropertyKey, unknown>
  return new Proxy(read, {
    get: (target, key) => {
      if (key in target || typeof key === "symbol") return target[key]
      throw new Error(`fake pool: ${String(key)} is not faked`)
    }
  }) as unknown as ClusterPool["Service"]
}

const connected: ClusterState = { _tag: "Connected", since: 0, afterOutage: false }

const get = (server: http.Server, path: string) =>
  Effect.promise(() =>
    fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`).then(async (r) => ({ status: r.status, text: await r.text() }))
  )

describe("/readyz", () => {
  it.effect("a replica that does not lead is ready (a standby must not stall a rollout), and says it does not lead", () =>
    Effect.gen(function*() {
      const server = yield* Health.serve(Effect.succeed(Option.none()), 0, "127.0.0.1")
      const r = yield* get(server, "/readyz")
      assert.strictEqual(r.status, 200)
      assert.deepStrictEqual(JSON.parse(r.text), { ok: true, leader: false })
      assert.strictEqual((yield* get(server, "/nothing")).status, 404)
    }).pipe(Effect.scoped))

  it.effect("the leader is ready when its local cluster is connected and every component runs; a restarting component or a local outage answers 503 with states only", () =>
    Effect.gen(function*() {
      const states = yield* Ref.make<ReadonlyMap<string, ClusterState>>(new Map([["main", connected], ["cluster-1", connected]]))
      const supervisor = yield* Supervisor.make
      const server = yield* Health.serve(
        Effect.succeed(Option.some(fakePool(states))),
        0,
        "127.0.0.1",
        Effect.succeed(Option.some(supervisor))
      )
      yield* supervisor.supervise("informer/workflows", Effect.never)
      yield* Effect.yieldNow
      const good = yield* get(server, "/readyz")
      assert.strictEqual(good.status, 200)
      assert.deepStrictEqual(JSON.parse(good.text), {
        ok: true,
        leader: true,
        localCluster: "main",
        clusters: { main: "Connected", "cluster-1": "Connected" },
        components: { "informer/workflows": "Running" }
      })

      // A remote cluster retrying does not make the leader unready (its other clusters work).
      const retrying: ClusterState = { _tag: "Retrying", attempt: 3, lastError: "Forbidden: user system:serviceaccount:argo:x at https://10.1.2.3", reason: "Forbidden" }
      yield* Ref.set(states, new Map<string, ClusterState>([["main", connected], ["cluster-1", retrying]]))
      assert.strictEqual((yield* get(server, "/readyz")).status, 200)

      // A component that failed waits for its restart (the backoff's sleep never ends under TestClock).
      yield* supervisor.supervise("watch/cluster-1/pods", Effect.fail("token s3cr3t rejected by https://10.1.2.3"), { backoff: "1 hour" })
      yield* Effect.yieldNow
      const restarting = yield* get(server, "/readyz")
      assert.strictEqual(restarting.status, 503)
      assert.deepStrictEqual(JSON.parse(restarting.text).components, { "informer/workflows": "Running", "watch/cluster-1/pods": "Restarting" })
      assert.notInclude(restarting.text, "s3cr3t")
      assert.notInclude(restarting.text, "10.1.2.3")
      // Liveness is not readiness: the process is alive, /healthz stays 200.
      assert.strictEqual((yield* get(server, "/healthz")).status, 200)

      const lonely = yield* Health.serve(Effect.succeed(Option.some(fakePool(states))), 0, "127.0.0.1")
      yield* Ref.set(states, new Map([["main", { _tag: "Retrying", attempt: 1, lastError: "connection refused", reason: "Unavailable" } as ClusterState]]))
      const down = yield* get(lonely, "/readyz")
      assert.strictEqual(down.status, 503)
      assert.deepStrictEqual(JSON.parse(down.text), { ok: false, leader: true, localCluster: "main", clusters: { main: "Retrying" }, components: {} })
    }).pipe(Effect.scoped))
})
