import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Redacted, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import { KubeConnector } from "../../src/kube/api/KubeConnector.js"
import type { KubeError } from "../../src/kube/api/KubeError.js"
import { buildTransport, LiveKubeConnector, runExecCredential } from "../../src/kube/live/LiveKubeConnector.js"
import type { WatchEvent } from "../../src/kube/api/Resources.js"

// --- a tiny fake API server on 127.0.0.1 --------------------------------------------

interface Recorded {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

const TOKEN = "s3cret-token-value"

const status = (code: number, reason: string, message: string) =>
  JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code })

const pod = (name: string, resourceVersion: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "ns", resourceVersion }
})

const startServer = Effect.acquireRelease(
  Effect.callback<{ server: http.Server; port: number; requests: Array<Recorded>; watchClosed: Array<Promise<void>> }>(
    (resume) => {
      const requests: Array<Recorded> = []
      const watchClosed: Array<Promise<void>> = []
      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const url = new URL(req.url ?? "/", "http://127.0.0.1")
          const body = Buffer.concat(chunks).toString("utf8")
          requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body })
          const json = (code: number, payload: string) => {
            res.writeHead(code, { "Content-Type": "application/json" })
            res.end(payload)
          }
          const route = `${req.method} ${url.pathname}`
          if (url.searchParams.get("watch") === "true") {
            res.writeHead(200, { "Content-Type": "application/json" })
            if (url.pathname === "/api/v1/namespaces/ns/pods") {
              res.write(JSON.stringify({ type: "ADDED", object: pod("a", "11") }) + "\n")
              res.write(JSON.stringify({ type: "BOOKMARK", object: { kind: "Pod", metadata: { resourceVersion: "12" } } }) + "\n")
              res.write(JSON.stringify({ type: "MODIFIED", object: pod("a", "13") }) + "\n")
              res.write(
                JSON.stringify({ type: "ERROR", object: JSON.parse(status(410, "Expired", "too old resource version: 5 (13)")) }) + "\n"
              )
              res.end()
            } else {
              // a watch that stays open: one event, then silence until the client goes away
              res.write(JSON.stringify({ type: "ADDED", object: pod("held", "1") }) + "\n")
              watchClosed.push(new Promise((done) => res.on("close", () => done())))
            }
            return
          }
          switch (route) {
            case "GET /api/v1/namespaces/ns/pods/p1":
              return json(200, JSON.stringify(pod("p1", "7")))
            case "GET /api/v1/namespaces/ns/pods/missing":
              return json(404, status(404, "NotFound", "pods \"missing\" not found"))
            case "POST /api/v1/namespaces/ns/pods":
              return json(409, status(409, "AlreadyExists", "pods \"p1\" already exists"))
            case "PUT /api/v1/namespaces/ns/pods/p1":
              return json(409, status(409, "Conflict", "the object has been modified"))
            case "GET /api/v1/namespaces/locked/pods":
              // a badly behaved server echoing the credential: it must not reach the error
              return json(403, status(403, "Forbidden", `pods is forbidden for ${req.headers.authorization}`))
            case "GET /api/v1/namespaces/ns/secrets/s1":
              return json(401, status(401, "Unauthorized", "Unauthorized"))
            case "PATCH /apis/argoproj.io/v1alpha1/namespaces/ns/workflows/wf1":
              return json(200, JSON.stringify({ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", metadata: { name: "wf1", namespace: "ns" }, ...JSON.parse(body) }))
            case "DELETE /api/v1/namespaces/ns/pods/p1":
              return json(200, JSON.stringify({ kind: "Status", status: "Success" }))
            case "GET /api/v1/namespaces/ns/pods/p1/log":
              res.writeHead(200, { "Content-Type": "text/plain" })
              return res.end("line 1\nline 2\n")
            case "GET /apis/coordination.k8s.io/v1/namespaces/ns/leases":
              return url.searchParams.get("continue") === "page2"
                ? json(200, JSON.stringify({ items: [{ metadata: { name: "l2" } }], metadata: { resourceVersion: "99" } }))
                : json(200, JSON.stringify({ items: [{ metadata: { name: "l1" } }], metadata: { resourceVersion: "99", continue: "page2" } }))
            case "GET /api/v1/namespaces":
              return json(200, JSON.stringify({ items: [{ metadata: { name: "default" } }], metadata: { resourceVersion: "5" } }))
            default:
              return json(404, status(404, "NotFound", `no route ${route}`))
          }
        })
      })
      server.listen(0, "127.0.0.1", () => {
        resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port, requests, watchClosed }))
      })
    }
  ),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

const specFor = (port: number, auth: ConnectionSpec["auth"] = { _tag: "Token", token: Redacted.make(TOKEN) }): ConnectionSpec => ({
  cluster: "local",
  user: "tester",
  endpoint: { server: `http://127.0.0.1:${port}`, insecureSkipTlsVerify: true },
  auth
})

const connect = (spec: ConnectionSpec) =>
  Effect.gen(function*() {
    const connector = yield* KubeConnector
    return yield* connector.connect(spec)
  }).pipe(Effect.provide(LiveKubeConnector.layer))

const flipError = <A>(effect: Effect.Effect<A, KubeError>) => Effect.flip(effect)

const tmpDir = () =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-exec-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

const writeScript = (dir: string, name: string, body: string): string => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 })
  return file
}

describe("LiveKubeConnector", () => {
  it.effect("builds one transport per spec: its own agent, TLS settings from the spec alone, no credential in it", () =>
    Effect.sync(() => {
      const a = buildTransport(specFor(1))
      const b = buildTransport({ ...specFor(2), cluster: "other", user: "u2", auth: { _tag: "Anonymous" } })
      assert.notStrictEqual(a.agent, b.agent, "connections never share an agent (nor its sockets)")
      assert.strictEqual(b.server, "http://127.0.0.1:2")
      const tls = buildTransport({
        cluster: "tls",
        user: "u",
        endpoint: {
          server: "https://127.0.0.1:6443/",
          certificateAuthorityData: Buffer.from("CA PEM").toString("base64"),
          tlsServerName: "kube.internal"
        },
        auth: { _tag: "ClientCertificate", certificateData: Buffer.from("CERT").toString("base64"), keyData: Redacted.make(Buffer.from("KEY").toString("base64")) }
      })
      assert.strictEqual(tls.server, "https://127.0.0.1:6443")
      const options = (tls.agent as unknown as { options: Record<string, unknown> }).options
      assert.strictEqual(String(options["ca"]), "CA PEM")
      assert.strictEqual(String(options["cert"]), "CERT")
      assert.strictEqual(String(options["key"]), "KEY")
      assert.strictEqual(options["servername"], "kube.internal")
      assert.strictEqual(options["rejectUnauthorized"], true)
      assert.strictEqual(options["keepAlive"], true)
      const insecure = buildTransport({ ...specFor(1), endpoint: { server: "https://127.0.0.1:1", insecureSkipTlsVerify: true } })
      assert.strictEqual((insecure.agent as unknown as { options: Record<string, unknown> }).options["rejectUnauthorized"], false)
      const token = buildTransport(specFor(1))
      assert.notInclude(JSON.stringify((token.agent as unknown as { options: unknown }).options), TOKEN, "the bearer token is added per request")
      assert.throws(() => buildTransport({ ...specFor(1), endpoint: { server: "memory://c" } }), /https:\/\/ or http:\/\//)
      assert.throws(
        () => buildTransport({ ...specFor(1), endpoint: { server: "https://127.0.0.1:1", certificateAuthorityData: "not base64!" } }),
        /certificate-authority-data is not valid base64/
      )
    }))

  it.live("gets an object with the bearer token and maps API errors to reasons", () =>
    Effect.gen(function*() {
      const srv = yield* startServer
      const client = yield* connect(specFor(srv.port))
      assert.strictEqual(client.cluster, "local")
      assert.isFalse(client.identity.includes(TOKEN))

      const got = yield* client.get("pods", "ns", "p1")
      assert.strictEqual(got.metadata.name, "p1")
      assert.strictEqual(srv.requests[0].headers.authorization, `Bearer ${TOKEN}`)

      const notFound = yield* flipError(client.get("pods", "ns", "missing"))
      assert.strictEqual(notFound.reason, "NotFound")
      assert.strictEqual(notFound.cluster, "local")
      assert.strictEqual(notFound.verb, "get")
      assert.strictEqual(notFound.resource, "pods")
      assert.strictEqual(notFound.namespace, "ns")
      assert.strictEqual(notFound.name, "missing")
      assert.include(notFound.detail, "pods \"missing\" not found")

      const exists = yield* flipError(client.create("pods", "ns", pod("p1", "") as never))
      assert.strictEqual(exists.reason, "AlreadyExists")
      const conflict = yield* flipError(client.replace("pods", "ns", pod("p1", "6") as never))
      assert.strictEqual(conflict.reason, "Conflict")
      assert.strictEqual(conflict.verb, "update")

      const forbidden = yield* flipError(client.list("pods", "locked"))
      assert.strictEqual(forbidden.reason, "Forbidden")
      assert.include(forbidden.detail, "forbidden")
      assert.notInclude(forbidden.detail, TOKEN)
      assert.notInclude(forbidden.message, TOKEN)

      const unauthorized = yield* flipError(client.get("secrets", "ns", "s1"))
      assert.strictEqual(unauthorized.reason, "Unauthorized")
    }))

  it.live("merge patches with application/merge-patch+json, deletes with options, reads logs, pages lists", () =>
    Effect.gen(function*() {
      const srv = yield* startServer
      const client = yield* connect(specFor(srv.port))

      const patched = yield* client.patch("workflows", "ns", "wf1", { metadata: { labels: { a: "b" } } })
      assert.deepStrictEqual(patched.metadata.labels, { a: "b" })
      const patchRequest = srv.requests.find((r) => r.method === "PATCH")!
      assert.strictEqual(patchRequest.headers["content-type"], "application/merge-patch+json")
      assert.deepStrictEqual(JSON.parse(patchRequest.body), { metadata: { labels: { a: "b" } } })

      yield* client.delete("pods", "ns", "p1", { propagationPolicy: "Background", uid: "u-1" })
      const deleteRequest = srv.requests.find((r) => r.method === "DELETE")!
      assert.deepInclude(JSON.parse(deleteRequest.body), { propagationPolicy: "Background", preconditions: { uid: "u-1" } })

      const text = yield* client.logs("ns", "p1", "main")
      assert.strictEqual(text, "line 1\nline 2\n")
      assert.include(srv.requests.find((r) => r.url.includes("/log"))!.url, "container=main")

      const leases = yield* client.list("leases", "ns", { labelSelector: "x=y" })
      assert.deepStrictEqual(leases.items.map((l) => l.metadata.name), ["l1", "l2"])
      assert.strictEqual(leases.resourceVersion, "99")
      assert.strictEqual(leases.items[0].kind, "Lease")
      assert.strictEqual(leases.items[0].apiVersion, "coordination.k8s.io/v1")
      assert.include(srv.requests.find((r) => r.url.startsWith("/apis/coordination.k8s.io"))!.url, "labelSelector=x%3Dy")

      // cluster-scoped kinds ignore the namespace
      const namespaces = yield* client.list("namespaces", "ns")
      assert.deepStrictEqual(namespaces.items.map((n) => n.metadata.name), ["default"])
    }))

  it.live("streams watch events and turns an ERROR 410 into reason Gone", () =>
    Effect.gen(function*() {
      const srv = yield* startServer
      const client = yield* connect(specFor(srv.port))
      const events: Array<WatchEvent> = []
      const error = yield* client.watch("pods", "ns", { resourceVersion: "10", allowBookmarks: true, timeoutSeconds: 300 }).pipe(
        Stream.runForEach((event) => Effect.sync(() => events.push(event))),
        Effect.flip
      )
      assert.strictEqual(error.reason, "Gone")
      assert.strictEqual(error.verb, "watch")
      assert.include(error.detail, "too old resource version")
      assert.deepStrictEqual(events, [
        { type: "OPENED" },
        { type: "ADDED", object: pod("a", "11") },
        { type: "BOOKMARK", resourceVersion: "12" },
        { type: "MODIFIED", object: pod("a", "13") }
      ])
      const request = new URL(srv.requests[0].url, "http://x")
      assert.strictEqual(request.searchParams.get("watch"), "true")
      assert.strictEqual(request.searchParams.get("resourceVersion"), "10")
      assert.strictEqual(request.searchParams.get("allowWatchBookmarks"), "true")
      assert.strictEqual(request.searchParams.get("timeoutSeconds"), "300")
      assert.strictEqual(srv.requests[0].headers.authorization, `Bearer ${TOKEN}`)
    }))

  it.live("aborts the watch request when the stream stops, and when the client's scope closes", () =>
    Effect.gen(function*() {
      const srv = yield* startServer
      const client = yield* connect(specFor(srv.port))
      // the consumer stops after one event
      const first = yield* client.watch("configmaps", "ns", { resourceVersion: "1" }).pipe(Stream.take(1), Stream.runCollect)
      assert.strictEqual(first.length, 1)
      yield* Effect.promise(() => srv.watchClosed[0])

      // the client's scope closes while a watch is open
      const scope = yield* Scope.make()
      const scoped = yield* connect(specFor(srv.port)).pipe(Scope.provide(scope))
      const fiber = yield* scoped.watch("configmaps", "ns", { resourceVersion: "1" }).pipe(Stream.runCollect, Effect.forkChild)
      while (srv.watchClosed.length < 2) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
      yield* Scope.close(scope, Exit.void)
      yield* Effect.promise(() => srv.watchClosed[1])
      yield* Fiber.interrupt(fiber)
      const afterClose = yield* flipError(scoped.get("pods", "ns", "p1"))
      assert.strictEqual(afterClose.reason, "Unavailable")
    }))

  it.live("maps a refused connection to Unavailable", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(Effect.map(startServer, (s) => s.port))
      const client = yield* connect(specFor(port))
      const error = yield* flipError(client.get("pods", "ns", "p1"))
      assert.strictEqual(error.reason, "Unavailable")
      assert.strictEqual(error.cluster, "local")
      const watchError = yield* client.watch("pods", "ns", { resourceVersion: "1" }).pipe(Stream.runDrain, Effect.flip)
      assert.strictEqual(watchError.reason, "Unavailable")
    }))

  it.live("runs an exec credential plugin, sends its token and caches it until it expires", () =>
    Effect.gen(function*() {
      const srv = yield* startServer
      const dir = yield* tmpDir()
      const counter = path.join(dir, "runs")
      const future = new Date(Date.now() + 3600_000).toISOString()
      const script = writeScript(
        dir,
        "cred.sh",
        `echo run >> "${counter}"
test "$FLOTILLA_TEST_ENV" = "yes" || exit 3
echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token-1","expirationTimestamp":"${future}"}}'`
      )
      const client = yield* connect(
        specFor(srv.port, { _tag: "Exec", command: script, args: [], env: { FLOTILLA_TEST_ENV: "yes" }, apiVersion: "client.authentication.k8s.io/v1" })
      )
      yield* client.get("pods", "ns", "p1")
      yield* client.get("pods", "ns", "p1")
      const events = yield* client.watch("pods", "ns", { resourceVersion: "1" }).pipe(Stream.take(1), Stream.runCollect)
      assert.strictEqual(events.length, 1)
      for (const request of srv.requests) assert.strictEqual(request.headers.authorization, "Bearer exec-token-1")
      assert.strictEqual(fs.readFileSync(counter, "utf8").trim().split("\n").length, 1, "cached until expiry")
    }))

  it.live("runs the plugin again once its token has expired", () =>
    Effect.gen(function*() {
      const srv = yield* startServer
      const dir = yield* tmpDir()
      const counter = path.join(dir, "runs")
      const script = writeScript(
        dir,
        "cred.sh",
        `echo run >> "${counter}"
echo '{"kind":"ExecCredential","status":{"token":"short-lived","expirationTimestamp":"2000-01-01T00:00:00Z"}}'`
      )
      const client = yield* connect(specFor(srv.port, { _tag: "Exec", command: script, args: [], env: {}, apiVersion: "v1" }))
      yield* client.get("pods", "ns", "p1")
      yield* client.get("pods", "ns", "p1")
      assert.strictEqual(fs.readFileSync(counter, "utf8").trim().split("\n").length, 2)
      assert.strictEqual(srv.requests[1].headers.authorization, "Bearer short-lived")
    }))

  it.live("a hanging exec plugin fails with Timeout; a failing one with Unauthorized", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir()
      const hang = writeScript(dir, "hang.sh", "sleep 30")
      const started = Date.now()
      const timedOut = yield* Effect.flip(
        runExecCredential({ _tag: "Exec", command: hang, args: [], env: {}, apiVersion: "v1" }, { cluster: "c", timeout: "300 millis" })
      )
      assert.strictEqual(timedOut.reason, "Timeout")
      assert.strictEqual(timedOut.cluster, "c")
      assert.isBelow(Date.now() - started, 5000)

      const broken = writeScript(dir, "broken.sh", "echo nope >&2; exit 1")
      const failed = yield* Effect.flip(
        runExecCredential({ _tag: "Exec", command: broken, args: [], env: {}, apiVersion: "v1" }, { cluster: "c" })
      )
      assert.strictEqual(failed.reason, "Unauthorized")
      assert.include(failed.detail, "nope")

      const garbage = writeScript(dir, "garbage.sh", "echo not-json")
      const invalid = yield* Effect.flip(
        runExecCredential({ _tag: "Exec", command: garbage, args: [], env: {}, apiVersion: "v1" }, { cluster: "c" })
      )
      assert.strictEqual(invalid.reason, "Unauthorized")
    }))

  it.live("a connection's exec timeout surfaces on the request", () =>
    Effect.gen(function*() {
      const srv = yield* startServer
      const dir = yield* tmpDir()
      const hang = writeScript(dir, "hang.sh", "sleep 30")
      const client = yield* LiveKubeConnector.connect(
        specFor(srv.port, { _tag: "Exec", command: hang, args: [], env: {}, apiVersion: "v1" }),
        { execTimeout: "200 millis" }
      )
      const error = yield* flipError(client.get("pods", "ns", "p1"))
      assert.strictEqual(error.reason, "Timeout")
      assert.strictEqual(error.verb, "get")
      assert.strictEqual(srv.requests.length, 0)
    }))
})
