import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { AddressInfo } from "node:net"
import * as Health from "../../src/controller/Health.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { seedWorkflow, startFor } from "./fixtures.js"

describe("/healthz", () => {
  it.live("reports each cluster's connection state, and stays healthy when a remote cluster is down", () =>
    Effect.gen(function*() {
      const { controller, kube } = yield* startFor([seedWorkflow()])
      yield* controller.pool.synced
      const server = yield* Health.serve(controller.pool, 0)
      const port = (server.address() as AddressInfo).port
      const get = Effect.promise(() => fetch(`http://127.0.0.1:${port}/healthz`).then(async (r) => ({ status: r.status, body: await r.json() as any })))
      const ok = yield* get
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(ok.body.localCluster, "main")
      assert.strictEqual(ok.body.clusters["cluster-1"]._tag, "Connected")

      yield* kube.setReachable("cluster-1", false)
      // The remote watch notices on its next call; wait for the state to change.
      let body = ok.body
      for (let i = 0; i < 200 && body.clusters["cluster-1"]._tag === "Connected"; i++) {
        yield* kube.compact("cluster-1")
        yield* Effect.yieldNow
        body = (yield* get).body
      }
      const down = yield* get
      assert.strictEqual(down.status, 200)
      assert.strictEqual(down.body.clusters["cluster-1"]._tag, "Retrying")
      assert.strictEqual(down.body.clusters["cluster-1"].reason, "Unavailable")
      assert.strictEqual(down.body.clusters["main"]._tag, "Connected")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)), 30_000)
})
