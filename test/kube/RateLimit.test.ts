import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import { burstOf, makeConnectionBuckets, makeTokenBucket, type TokenBucket } from "../../src/kube/live/rateLimit.js"
import { LiveKubeConnector } from "../../src/kube/live/LiveKubeConnector.js"

/** Forks `n` takes of `bucket`, each recording the (test) time its token came. */
const takeAll = (bucket: TokenBucket, n: number) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    const fibers: Array<Fiber.Fiber<void>> = []
    for (let i = 0; i < n; i++) {
      fibers.push(
        yield* Effect.forkChild(
          Effect.flatMap(bucket.take, () => Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => void times.push(t))))
        )
      )
      yield* Effect.yieldNow
    }
    return { times, fibers }
  })

describe("token bucket (client-go's flowcontrol limiter)", () => {
  it.effect("lets a burst through at once, then paces at qps", () =>
    Effect.gen(function*() {
      const bucket = makeTokenBucket({ qps: 10, burst: 3 })
      const { fibers, times } = yield* takeAll(bucket, 6)
      assert.deepStrictEqual(times, [0, 0, 0])
      yield* TestClock.adjust("99 millis")
      assert.deepStrictEqual(times, [0, 0, 0])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(times, [0, 0, 0, 100])
      yield* TestClock.adjust("200 millis")
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(times, [0, 0, 0, 100, 200, 300])
    }))

  it.effect("refills up to the burst, never beyond, after a quiet spell", () =>
    Effect.gen(function*() {
      const bucket = makeTokenBucket({ qps: 10, burst: 3 })
      yield* Fiber.joinAll((yield* takeAll(bucket, 3)).fibers)
      yield* TestClock.adjust("1 minute")
      const { fibers, times } = yield* takeAll(bucket, 4)
      assert.deepStrictEqual(times, [60_000, 60_000, 60_000])
      yield* TestClock.adjust("100 millis")
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(times, [60_000, 60_000, 60_000, 60_100])
    }))

  it.effect("each bucket is its own: draining one does not slow another", () =>
    Effect.gen(function*() {
      const a = makeTokenBucket({ qps: 1, burst: 1 })
      const b = makeTokenBucket({ qps: 1, burst: 1 })
      const first = yield* takeAll(a, 2)
      assert.deepStrictEqual(first.times, [0])
      const other = yield* takeAll(b, 1)
      assert.deepStrictEqual(other.times, [0])
      yield* TestClock.adjust("1 second")
      yield* Fiber.joinAll(first.fibers)
      assert.deepStrictEqual(first.times, [0, 1000])
    }))

  it.effect("a wait is interruptible and gives its reservation back", () =>
    Effect.gen(function*() {
      const bucket = makeTokenBucket({ qps: 1, burst: 1 })
      yield* bucket.take
      const waiting = yield* Effect.forkChild(bucket.take)
      yield* TestClock.adjust("500 millis")
      yield* Fiber.interrupt(waiting)
      // the interrupted request's token is the next one's: it comes at 1s, not 2s
      const { fibers, times } = yield* takeAll(bucket, 1)
      yield* TestClock.adjust("499 millis")
      assert.deepStrictEqual(times, [])
      yield* TestClock.adjust("1 millis")
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(times, [1000])
    }))

  it.effect("no qps is no limit; the burst defaults to qps rounded up", () =>
    Effect.gen(function*() {
      for (const limit of [undefined, { qps: 0 }, { qps: -1, burst: 5 }]) {
        const bucket = makeTokenBucket(limit)
        assert.strictEqual(bucket.limit, undefined)
        const { times } = yield* takeAll(bucket, 100)
        assert.strictEqual(times.length, 100)
      }
      assert.strictEqual(burstOf({ qps: 20, burst: 30 }), 30)
      assert.strictEqual(burstOf({ qps: 20 }), 20)
      assert.strictEqual(burstOf({ qps: 2.5, burst: 0 }), 3)
      assert.strictEqual(burstOf({ qps: 0.2 }), 1)
      assert.deepStrictEqual(makeTokenBucket({ qps: 20, burst: 30 }).limit, { qps: 20, burst: 30 })
    }))
})

describe("a connection's buckets (Argo's two clientsets)", () => {
  it.effect("argoproj.io requests take from one bucket, every other API from the other", () =>
    Effect.gen(function*() {
      const buckets = makeConnectionBuckets({ qps: 1, burst: 1 })
      const wf = buckets.forPath("/apis/argoproj.io/v1alpha1/namespaces/ns/workflows/w")
      assert.strictEqual(buckets.forPath("/apis/argoproj.io/v1alpha1/workflowtaskresults"), wf)
      const pods = buckets.forPath("/api/v1/namespaces/ns/pods")
      assert.notStrictEqual(pods, wf)
      assert.strictEqual(buckets.forPath("/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"), pods)
      // draining the workflow bucket leaves the pod bucket full
      const drained = yield* takeAll(wf, 2)
      assert.deepStrictEqual(drained.times, [0])
      const other = yield* takeAll(pods, 1)
      assert.deepStrictEqual(other.times, [0])
      yield* TestClock.adjust("1 second")
      yield* Fiber.joinAll(drained.fibers)
      assert.deepStrictEqual(drained.times, [0, 1000])
    }))
})

// --- a live connection: every request and every watch opened takes a token ---------------

const startServer = Effect.acquireRelease(
  Effect.callback<{ server: http.Server; port: number; seen: Array<string> }>((resume) => {
    const seen: Array<string> = []
    const server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`)
      const url = new URL(req.url ?? "/", "http://127.0.0.1")
      res.writeHead(200, { "Content-Type": "application/json" })
      if (url.searchParams.get("watch") === "true") {
        // three events, then a watch that stays open
        for (const name of ["a", "b", "c"]) {
          res.write(
            JSON.stringify({
              type: "ADDED",
              object: { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "ns", resourceVersion: "1" } }
            }) + "\n"
          )
        }
        return
      }
      res.end(JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name: "p1", namespace: "ns", resourceVersion: "7" } }))
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port, seen })))
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

const specFor = (port: number, cluster: string): ConnectionSpec => ({
  cluster,
  user: "u",
  endpoint: { server: `http://127.0.0.1:${port}` },
  auth: { _tag: "Anonymous" }
})

describe("live connections under a rate limit", () => {
  it.effect("a watch takes one token for all its events; requests wait; each connection and API has its own bucket", () =>
    Effect.gen(function*() {
      const { port, seen } = yield* startServer
      const options = { rateLimit: { qps: 1, burst: 2 } }
      const a = yield* LiveKubeConnector.connect(specFor(port, "a"), options)
      const b = yield* LiveKubeConnector.connect(specFor(port, "b"), options)

      // token 1 of a: the watch, whatever number of events it brings
      const events = yield* a.watch("pods", "ns", { resourceVersion: "0", allowBookmarks: false }).pipe(
        Stream.filter((e) => e.type === "ADDED"),
        Stream.take(3),
        Stream.runCollect
      )
      assert.strictEqual(events.length, 3)
      // token 2 of a
      yield* a.get("pods", "ns", "p1")
      const before = seen.length
      // a's bucket is empty: this get waits for the next token, sent nothing yet
      const waiting = yield* Effect.forkChild(a.get("pods", "ns", "p1"))
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow
      assert.strictEqual(seen.length, before)
      // b has buckets of its own
      yield* b.get("pods", "ns", "p1")
      assert.strictEqual(seen.length, before + 1)
      // and a's argoproj.io requests take from another bucket than its pods
      yield* a.get("workflows", "ns", "p1")
      assert.strictEqual(seen.length, before + 2)
      yield* TestClock.adjust("1 second")
      const got = yield* Fiber.join(waiting)
      assert.strictEqual(got.metadata.name, "p1")
      assert.strictEqual(seen.length, before + 3)
    }))
})
