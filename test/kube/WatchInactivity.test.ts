/**
 * A quiet watch must stay open: client-node's `Watch` ends one that receives
 * nothing for its `requestTimeoutMs` (30 s by default), and an idle watch
 * receives only bookmarks, about one a minute, so every idle watch was reopened
 * every 30 s (`npm run bench -- --idle`). The live client sets that timer past
 * the server-side timeout it asks for (src/kube/live/watch.ts); a watch request
 * left unanswered still fails, after the connection's request timeout.
 */
import { assert, describe, it } from "@effect/vitest"
import { KubeConfig, Watch } from "@kubernetes/client-node"
import { type Duration, Effect, Redacted, Stream } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { vi } from "vitest"
import { KubeConnector } from "../../src/kube/api/KubeConnector.js"
import { LiveKubeConnector } from "../../src/kube/live/LiveKubeConnector.js"
import { watchInactivityTimeoutMs } from "../../src/kube/live/watch.js"

/** A server whose watches answer 200 with one event, then stay silent until the client goes away. */
const silentServer = Effect.acquireRelease(
  Effect.callback<{ server: http.Server; port: number; closed: Array<Promise<void>> }>((resume) => {
    const closed: Array<Promise<void>> = []
    const server = http.createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" })
      res.write(JSON.stringify({ type: "ADDED", object: { kind: "Pod", metadata: { name: "a", namespace: "ns", resourceVersion: "2" } } }) + "\n")
      closed.push(new Promise((done) => res.on("close", () => done())))
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port, closed })))
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

/** A server that never answers: requests stay pending until the client goes away (`closed`). */
const mute = Effect.acquireRelease(
  Effect.callback<{ server: http.Server; port: number; requests: Array<string>; closed: Array<Promise<void>> }>((resume) => {
    const requests: Array<string> = []
    const closed: Array<Promise<void>> = []
    const server = http.createServer((req, res) => {
      requests.push(req.url ?? "")
      closed.push(new Promise((done) => res.on("close", () => done())))
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port, requests, closed })))
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

const connectTo = (port: number, requestTimeout?: Duration.Input) =>
  Effect.gen(function*() {
    const connector = yield* KubeConnector
    return yield* connector.connect({
      cluster: "local",
      user: "tester",
      endpoint: { server: `http://127.0.0.1:${port}`, insecureSkipTlsVerify: true },
      auth: { _tag: "Token", token: Redacted.make("t") }
    })
  }).pipe(Effect.provide(LiveKubeConnector.layerWith(requestTimeout === undefined ? {} : { requestTimeout })))

describe("watch inactivity", () => {
  it("outlasts the server-side timeout the watch asks for, and the watch loop's 5 min idle timeout", () => {
    assert.strictEqual(watchInactivityTimeoutMs(300), 360_000)
    assert.strictEqual(watchInactivityTimeoutMs(600), 660_000)
    assert.isAbove(watchInactivityTimeoutMs(undefined), 5 * 60_000)
  })

  it.live("the live client's watches carry it (not client-node's 30 s default)", () =>
    Effect.gen(function*() {
      const srv = yield* silentServer
      const spy = vi.spyOn(Watch.prototype, "watch")
      yield* Effect.addFinalizer(() => Effect.sync(() => spy.mockRestore()))
      const client = yield* connectTo(srv.port)
      const events = yield* client.watch("pods", "ns", { resourceVersion: "1", allowBookmarks: true, timeoutSeconds: 300 }).pipe(
        Stream.take(2),
        Stream.runCollect
      )
      assert.deepStrictEqual(events.map((e) => e.type), ["OPENED", "ADDED"])
      assert.strictEqual(spy.mock.calls.length, 1)
      // (its first read armed the connect timer; every later one is the inactivity timer)
      assert.strictEqual((spy.mock.contexts[0] as unknown as { requestTimeoutMs: number }).requestTimeoutMs, 360_000)
    }))

  it.live("a watch request the server does not answer fails with Timeout after the connection's request timeout", () =>
    Effect.gen(function*() {
      const srv = yield* mute
      const client = yield* connectTo(srv.port, "300 millis")
      const error = yield* client.watch("pods", "ns", { resourceVersion: "1", timeoutSeconds: 300 }).pipe(Stream.runDrain, Effect.flip)
      assert.strictEqual(error.reason, "Timeout")
      assert.strictEqual(error.verb, "watch")
      assert.strictEqual(srv.requests.length, 1)
      // the request is aborted, not left open on the server (it would be until undici's 300 s)
      yield* Effect.promise(() => srv.closed[0]!).pipe(
        Effect.timeoutOrElse({ duration: "3 seconds", orElse: () => Effect.die(new Error("the unanswered watch request is still open")) })
      )
    }))

  it.live("client-node still reads requestTimeoutMs as its inactivity timeout (a library upgrade would show here)", () =>
    Effect.gen(function*() {
      const srv = yield* silentServer
      const kc = new KubeConfig()
      kc.loadFromOptions({
        clusters: [{ name: "c", server: `http://127.0.0.1:${srv.port}`, skipTLSVerify: true }],
        users: [{ name: "u", token: "t" }],
        contexts: [{ name: "c", cluster: "c", user: "u" }],
        currentContext: "c"
      })
      const watcher = new Watch(kc)
      // long enough for the answer to come (the first request loads undici), short for a test
      Object.assign(watcher, { requestTimeoutMs: 1000 })
      const received: Array<string> = []
      const error = yield* Effect.callback<unknown>((resume) => {
        void watcher.watch("/api/v1/namespaces/ns/pods", { resourceVersion: "1" }, (type) => received.push(type), (err) => resume(Effect.succeed(err)))
      })
      assert.deepStrictEqual(received, ["ADDED"])
      assert.strictEqual((error as { name?: string } | null)?.name, "TimeoutError")
      yield* Effect.promise(() => srv.closed[0]!)
    }))
})
