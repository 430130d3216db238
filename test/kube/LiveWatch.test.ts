/**
 * The live client's watch (src/kube/live/watch.ts) against small servers on
 * 127.0.0.1: events read line by line however the server splits them, the
 * server's answer and errors mapped to reasons, and its two timers: the
 * request timeout until the server answers, then an inactivity timeout past
 * the server-side timeout (a quiet watch stays open; one reopened every 30 s,
 * as client-node's `Watch` did, cost a watch reopen every 1.5 s with 10 idle
 * clusters, `npm run bench -- --idle`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, type Duration, Effect, Exit, Fiber, Redacted, Scope, Stream } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { KubeConnector } from "../../src/kube/api/KubeConnector.js"
import type { WatchEvent } from "../../src/kube/api/Resources.js"
import { LiveKubeConnector, type LiveKubeConnectorOptions } from "../../src/kube/live/LiveKubeConnector.js"
import { watchInactivityTimeoutMs } from "../../src/kube/live/watch.js"

/** A server answering every request with `handler`; `closed` resolves as each request's connection goes away. */
const serve = (handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.callback<{ server: http.Server; port: number; requests: Array<string>; closed: Array<Promise<void>> }>((resume) => {
      const requests: Array<string> = []
      const closed: Array<Promise<void>> = []
      const server = http.createServer((req, res) => {
        requests.push(req.url ?? "")
        closed.push(new Promise((done) => res.on("close", () => done())))
        handler(req, res)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port, requests, closed })))
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const event = (type: string, name: string, resourceVersion: string) =>
  JSON.stringify({ type, object: { kind: "Pod", metadata: { name, namespace: "ns", resourceVersion } } }) + "\n"

/** Answers 200 with one event, then stays silent until the client goes away. */
const silentServer = serve((_req, res) => {
  res.writeHead(200, { "Content-Type": "application/json" })
  res.write(event("ADDED", "a", "2"))
})

const connectTo = (port: number, options: LiveKubeConnectorOptions = {}) =>
  Effect.gen(function*() {
    const connector = yield* KubeConnector
    return yield* connector.connect({
      cluster: "local",
      user: "tester",
      endpoint: { server: `http://127.0.0.1:${port}` },
      auth: { _tag: "Token", token: Redacted.make("t") }
    })
  }).pipe(Effect.provide(LiveKubeConnector.layerWith(options)))

const watchPods = (port: number, options: LiveKubeConnectorOptions = {}) =>
  Effect.flatMap(connectTo(port, options), (client) => Effect.succeed(client.watch("pods", "ns", { resourceVersion: "1", timeoutSeconds: 300 })))

const names = (events: ReadonlyArray<WatchEvent>) =>
  events.map((e) => (e.type === "ADDED" || e.type === "MODIFIED" || e.type === "DELETED" ? `${e.type} ${e.object.metadata.name}` : e.type))

const closedWithin = (closed: Promise<void> | undefined, duration: Duration.Input = "3 seconds") =>
  Effect.promise(() => closed!).pipe(
    Effect.timeoutOrElse({ duration, orElse: () => Effect.die(new Error("the watch request is still open on the server")) })
  )

describe("live watch: timers", () => {
  it("the inactivity timeout outlasts the server-side timeout the watch asks for, and the watch loop's 5 min idle timeout", () => {
    assert.strictEqual(watchInactivityTimeoutMs(300), 360_000)
    assert.strictEqual(watchInactivityTimeoutMs(600), 660_000)
    assert.isAbove(watchInactivityTimeoutMs(undefined), 5 * 60_000)
  })

  it.live("an answered watch is not bound by the request timeout: events keep coming after it", () =>
    Effect.gen(function*() {
      const srv = yield* serve((_req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" })
        res.write(event("ADDED", "early", "2"))
        setTimeout(() => res.end(event("MODIFIED", "late", "3")), 800)
      })
      const watch = yield* watchPods(srv.port, { requestTimeout: "300 millis" })
      const events = yield* Stream.runCollect(watch)
      assert.deepStrictEqual(names(events), ["OPENED", "ADDED early", "MODIFIED late"])
    }))

  it.live("a watch silent past its inactivity timeout ends without an error (the caller resumes), its request closed", () =>
    Effect.gen(function*() {
      const srv = yield* silentServer
      const watch = yield* watchPods(srv.port, { watchInactivityTimeout: "300 millis" })
      const events = yield* Stream.runCollect(watch)
      assert.deepStrictEqual(names(events), ["OPENED", "ADDED a"])
      yield* closedWithin(srv.closed[0])
    }))

  it.live("a watch request the server does not answer fails with Timeout after the connection's request timeout", () =>
    Effect.gen(function*() {
      const srv = yield* serve(() => {})
      const watch = yield* watchPods(srv.port, { requestTimeout: "300 millis" })
      const error = yield* watch.pipe(Stream.runDrain, Effect.flip)
      assert.strictEqual(error.reason, "Timeout")
      assert.strictEqual(error.verb, "watch")
      assert.strictEqual(srv.requests.length, 1)
      // the request is closed, not left open on the server
      yield* closedWithin(srv.closed[0])
    }))
})

describe("live watch: reading the stream", () => {
  it.live("events split anywhere across writes (a multi-byte character too) and several in one write are read whole", () =>
    Effect.gen(function*() {
      const text = event("ADDED", "a", "2") + event("ADDED", "ünïcödé-€", "3") + event("MODIFIED", "a", "4")
      const bytes = Buffer.from(text, "utf8")
      const euro = bytes.indexOf(Buffer.from("€", "utf8"))
      const cuts = [5, euro + 1, euro + 2, bytes.length - 3]
      const srv = yield* serve((_req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" })
        let from = 0
        const pieces = [...cuts, bytes.length].map((to) => {
          const piece = bytes.subarray(from, to)
          from = to
          return piece
        })
        const next = () => {
          const piece = pieces.shift()
          if (piece === undefined) res.end()
          else res.write(piece, () => setTimeout(next, 10))
        }
        next()
      })
      const events = yield* Stream.runCollect(yield* watchPods(srv.port))
      assert.deepStrictEqual(names(events), ["OPENED", "ADDED a", "ADDED ünïcödé-€", "MODIFIED a"])
      assert.include(srv.requests[0], "watch=true")
      assert.include(srv.requests[0], "resourceVersion=1")
      assert.include(srv.requests[0], "timeoutSeconds=300")
    }))

  it.live("an answer other than 200 fails with the server's Status message and reason", () =>
    Effect.gen(function*() {
      const srv = yield* serve((_req, res) => {
        res.writeHead(403, { "Content-Type": "application/json" })
        res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Forbidden", message: "pods is forbidden: no watch for you", code: 403 }))
      })
      const error = yield* (yield* watchPods(srv.port)).pipe(Stream.runDrain, Effect.flip)
      assert.strictEqual(error.reason, "Forbidden")
      assert.include(error.detail, "no watch for you")
      assert.strictEqual(error.namespace, "ns")
    }))

  it.live("a line that is not JSON fails the watch (after the events before it), naming no content", () =>
    Effect.gen(function*() {
      const srv = yield* serve((_req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" })
        res.write(event("ADDED", "a", "2"))
        res.write("{ not json at all: secret-looking-text\n")
      })
      const collected: Array<WatchEvent> = []
      const error = yield* (yield* watchPods(srv.port)).pipe(
        Stream.runForEach((e) => Effect.sync(() => collected.push(e))),
        Effect.flip
      )
      assert.deepStrictEqual(names(collected), ["OPENED", "ADDED a"])
      assert.strictEqual(error.reason, "Unknown")
      assert.notInclude(error.detail, "secret-looking-text")
      yield* closedWithin(srv.closed[0])
    }))

  it.live("a connection dropped in the middle of the watch fails it with Unavailable; a server's end just ends it", () =>
    Effect.gen(function*() {
      const dropped = yield* serve((_req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" })
        res.write(event("ADDED", "a", "2"), () => setTimeout(() => res.socket?.destroy(), 20))
      })
      const error = yield* (yield* watchPods(dropped.port)).pipe(Stream.runDrain, Effect.flip)
      assert.strictEqual(error.reason, "Unavailable")

      const ended = yield* serve((_req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" })
        res.end(event("ADDED", "a", "2") + event("DELETED", "a", "3"))
      })
      const events = yield* Stream.runCollect(yield* watchPods(ended.port))
      assert.deepStrictEqual(names(events), ["OPENED", "ADDED a", "DELETED a"])
    }))

  it.live("closing the connection under an open watch fails its stream (client is closed) and closes the request", () =>
    Effect.gen(function*() {
      const srv = yield* silentServer
      const connection = yield* Scope.make()
      const client = yield* connectTo(srv.port).pipe(Scope.provide(connection))
      const opened = yield* Deferred.make<void>()
      const consumer = yield* client.watch("pods", "ns", { resourceVersion: "1", timeoutSeconds: 300 }).pipe(
        Stream.tap((e) => (e.type === "OPENED" ? Deferred.succeed(opened, undefined) : Effect.void)),
        Stream.runDrain,
        Effect.flip,
        Effect.forkChild
      )
      yield* Deferred.await(opened)
      yield* Scope.close(connection, Exit.void)
      const error = yield* Fiber.join(consumer)
      assert.strictEqual(error.reason, "Unavailable")
      assert.include(error.detail, "client is closed")
      yield* closedWithin(srv.closed[0])
      // and a watch asked for afterwards fails at once
      const late = yield* client.watch("pods", "ns", { resourceVersion: "1" }).pipe(Stream.runDrain, Effect.flip)
      assert.include(late.detail, "client is closed")
    }))
})
