/**
 * The controller's http template requests against a server the test starts
 * on 127.0.0.1: the response (status, body, canonical headers), headers from
 * secrets (read only when the workflow's service account may get them), redirects (same host followed, to another private host refused),
 * the body cap, the timeout, and one request per node.
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeHttpClient } from "@effect/platform-node"
import { Deferred, Duration, Effect, Fiber, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { HttpClient } from "effect/http"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { HttpTemplates, maxBodyBytes, perform, secretReader } from "../../src/controller/HttpTemplates.js"
import { boundedBy } from "../../src/controller/RequestTimeout.js"
import { serviceAccountSubject, subjectAccessReview } from "../../src/kube/api/AccessReview.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { blockedReason, guardedLookup, openPolicy, strictPolicy } from "../../src/controller/httpPolicy.js"
import type { HttpRequest } from "../../src/workflow/engine/contract.js"

/** A server on 127.0.0.1 for the test's scope; `hits` counts requests per path. */
const server = (handler: http.RequestListener) =>
  Effect.acquireRelease(
    Effect.callback<{ base: string; hits: Map<string, number> }>((resume) => {
      const hits = new Map<string, number>()
      const s = http.createServer((req, res) => {
        hits.set(req.url ?? "", (hits.get(req.url ?? "") ?? 0) + 1)
        handler(req, res)
      })
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed({ base: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, hits, s } as any)))
    }),
    (x: any) => Effect.callback<void>((resume) => {
      x.s.closeAllConnections()
      x.s.close(() => resume(Effect.void))
    })
  )

const handler: http.RequestListener = (req, res) => {
  switch (req.url) {
    case "/hello":
      res.setHeader("x-echo-token", String(req.headers["x-token"] ?? ""))
      res.end(`hello ${req.method} ${req.headers.accept}`)
      return
    case "/missing":
      res.statusCode = 404
      res.end("nope")
      return
    case "/post": {
      let body = ""
      req.on("data", (c) => body += c)
      req.on("end", () => res.end(`got ${body}`))
      return
    }
    case "/same":
      res.statusCode = 302
      res.setHeader("location", "/hello")
      res.end()
      return
    case "/elsewhere":
      res.statusCode = 302
      res.setHeader("location", "http://localhost:1/secret")
      res.end()
      return
    case "/big":
      res.end("x".repeat(maxBodyBytes + 1))
      return
    case "/slow":
      return // never answers
    default:
      res.statusCode = 500
      res.end()
  }
}

const secrets = (namespace: string, name: string, key: string) =>
  namespace === "argo" && name === "tok" && key === "t" ? Effect.succeed("s3cret") : Effect.fail(`secret ${namespace}/${name} not found`)

const req = (base: string, path: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({
  nodeId: `wf-${path}`,
  namespace: "argo",
  method: "GET",
  url: `${base}${path}`,
  headers: [],
  ...extra
})

const withClient = <A, E>(f: (client: HttpClient.HttpClient, base: string, hits: Map<string, number>) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.gen(function*() {
    const { base, hits } = yield* server(handler)
    const client = yield* HttpClient.HttpClient
    return yield* f(client, base, hits)
  }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerNodeHttp))

describe("HttpTemplates", () => {
  it.live("a response: status, body, canonical headers; a header from a secret in the workflow's namespace", () =>
    withClient((client, base) =>
      Effect.gen(function*() {
        const r = yield* perform(client, secrets, req(base, "/hello", {
          headers: [{ name: "X-Token", secretKeyRef: { name: "tok", key: "t" } }, { name: "Accept", value: "text/plain" }]
        }), openPolicy)
        assert.strictEqual(r._tag, "Response")
        if (r._tag !== "Response") return
        assert.strictEqual(r.statusCode, 200)
        assert.strictEqual(r.body, "hello GET text/plain")
        assert.deepStrictEqual(r.headers["X-Echo-Token"], ["s3cret"])
        const missing = yield* perform(client, secrets, req(base, "/hello", { headers: [{ name: "X-Token", secretKeyRef: { name: "other", key: "t" } }] }), openPolicy)
        assert.deepStrictEqual(missing, { _tag: "Failure", message: "http.headers.X-Token: secret argo/other not found" })
        const notFound = yield* perform(client, secrets, req(base, "/missing"), openPolicy)
        assert.strictEqual(notFound._tag === "Response" && notFound.statusCode, 404)
        const post = yield* perform(client, secrets, req(base, "/post", { method: "POST", body: "data" }), openPolicy)
        assert.strictEqual(post._tag === "Response" && post.body, "got data")
      })))

  it.live("redirects: to the same host followed, to another private host refused", () =>
    withClient((client, base, hits) =>
      Effect.gen(function*() {
        const same = yield* perform(client, secrets, req(base, "/same"), openPolicy)
        assert.strictEqual(same._tag === "Response" && same.body, "hello GET undefined")
        const elsewhere = yield* perform(client, secrets, req(base, "/elsewhere"), openPolicy)
        assert.strictEqual(elsewhere._tag, "Failure")
        assert.include((elsewhere as { message: string }).message, "to a private address localhost:1 refused")
        assert.strictEqual(hits.get("/hello"), 1)
      })))

  it.live("a body over the cap, and a server that never answers within timeoutSeconds, fail the request", () =>
    withClient((client, base) =>
      Effect.gen(function*() {
        const big = yield* perform(client, secrets, req(base, "/big"), openPolicy)
        assert.deepStrictEqual(big, { _tag: "Failure", message: `response body exceeds ${maxBodyBytes} bytes` })
        const slow = yield* perform(client, secrets, req(base, "/slow", { timeoutSeconds: 1 }), openPolicy)
        assert.deepStrictEqual(slow, { _tag: "Failure", message: "http request timed out after 1s" })
        const refused = yield* perform(client, secrets, req("http://127.0.0.1:1", "/x"), openPolicy)
        assert.strictEqual(refused._tag, "Failure")
      })))

  it.live("the service makes each node's request once and requeues its workflow when answered", () =>
    withClient((client, base, hits) =>
      Effect.gen(function*() {
        const svc = yield* HttpTemplates.make(client, secrets, openPolicy)
        const done = yield* Deferred.make<string>()
        const r = req(base, "/hello")
        yield* svc.request("argo/wf", [r], (key) => Deferred.succeed(done, key))
        yield* svc.request("argo/wf", [r], (key) => Deferred.succeed(done, key))
        assert.strictEqual(yield* Deferred.await(done), "argo/wf")
        yield* svc.request("argo/wf", [r], () => Effect.die("asked twice"))
        assert.strictEqual(svc.results("argo/wf").get(r.nodeId)?._tag, "Response")
        assert.strictEqual(hits.get("/hello"), 1)
        yield* svc.forget("argo/wf")
        assert.strictEqual(svc.results("argo/wf").size, 0)
      })))

  it("the address policy: local and private addresses refused unless allowed, IPv4 inside IPv6 judged as IPv4, reserved never", () => {
    const local = ["127.0.0.1", "0.0.0.0", "169.254.169.254", "::1", "[::1]", "fe80::1", "::ffff:127.0.0.1", "::ffff:a9fe:a9fe", "::ffff:7f00:1", "64:ff9b::a9fe:a9fe", "::169.254.169.254"]
    const privateNets = ["10.1.2.3", "192.168.0.1", "172.16.0.1", "100.64.0.1", "198.18.0.1", "fd00::1", "fec0::1", "::ffff:10.0.0.1"]
    for (const a of [...local, ...privateNets]) assert.isDefined(blockedReason(a, strictPolicy), a)
    for (const a of local) assert.isDefined(blockedReason(a, { allowLoopbackAndLinkLocal: false, allowPrivateNetworks: true }), a)
    for (const a of privateNets) assert.isUndefined(blockedReason(a, { allowLoopbackAndLinkLocal: false, allowPrivateNetworks: true }), a)
    for (const a of [...local, ...privateNets]) assert.isUndefined(blockedReason(a, openPolicy), a)
    for (const a of ["224.0.0.1", "255.255.255.255", "ff02::1"]) assert.isDefined(blockedReason(a, openPolicy), a)
    for (const a of ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"]) assert.isUndefined(blockedReason(a, strictPolicy), a)
  })

  it.live("under the strict policy, a URL naming a local address, a loopback name, or a name resolving to one is refused before any byte is sent", () =>
    withClient((client, base, hits) =>
      Effect.gen(function*() {
        const literal = yield* perform(client, secrets, req(base, "/hello"), strictPolicy)
        assert.deepStrictEqual(literal, { _tag: "Failure", message: "http.url: 127.0.0.1 is a loopback, unspecified or link-local address (configmap httpTemplates.allowLoopbackAndLinkLocal)" })
        const mapped = yield* perform(client, secrets, req("http://[::ffff:a9fe:a9fe]", "/latest/meta-data/"), strictPolicy)
        assert.include((mapped as { message: string }).message, "169.254.169.254 is a loopback, unspecified or link-local address")
        const name = yield* perform(client, secrets, req(base.replace("127.0.0.1", "localhost"), "/hello"), strictPolicy)
        assert.include((name as { message: string }).message, "localhost is a loopback name")
        assert.strictEqual(hits.get("/hello"), undefined)
      })))

  it.live("a name is judged by what it resolves to, at connection time (guardedLookup)", () =>
    Effect.gen(function*() {
      const lookup = guardedLookup(strictPolicy)
      const err = yield* Effect.callback<string>((resume) => {
        // the URL check refuses the name "localhost" itself; the lookup judges whatever a name resolves to
        lookup("localhost", {}, (e) => resume(Effect.succeed(e?.message ?? "no error")))
      })
      assert.match(err, /^localhost resolves to (127\.0\.0\.1|::1): /)
      const ok = yield* Effect.callback<string>((resume) => {
        guardedLookup(openPolicy)("localhost", {}, (e, address) => resume(Effect.succeed(e ? e.message : String(address))))
      })
      assert.match(ok, /^(127\.0\.0\.1|::1)$/)
    }))
})

/**
 * Headers' secrets are read for the workflow's service account: the controller asks the API
 * server (a SubjectAccessReview) whether `system:serviceaccount:<ns>:<sa>` may get the secret,
 * and reads it with its own client only if so.
 */
describe("HttpTemplates: secrets read for the workflow's service account", () => {
  /** Cluster main: the controller may create reviews and read secrets; sa `reader` may get secrets in argo, `default` may not. */
  const cluster = Effect.gen(function*() {
    const kube = yield* InMemoryKube
    yield* kube.addCluster("main")
    yield* kube.ensureNamespace("main", "argo")
    yield* kube.addIdentity("main", {
      name: "controller",
      token: "controller-token",
      rules: [{ verbs: ["create"], resources: ["subjectaccessreviews"] }, { verbs: ["get"], resources: ["secrets"] }]
    })
    yield* kube.addIdentity("main", {
      name: "system:serviceaccount:argo:reader",
      token: "reader-token",
      rules: [{ verbs: ["get"], resources: ["secrets"], namespaces: ["argo"] }]
    })
    yield* kube.addIdentity("main", { name: "system:serviceaccount:argo:default", token: "default-token", rules: [] })
    yield* kube.adminClient("main").create("secrets", "argo", {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "tok", namespace: "argo" },
      data: { t: Buffer.from("s3cret").toString("base64") }
    })
    const controller = kube.clientFor("main", "controller-token")
    return { kube, read: secretReader(controller, boundedBy(Duration.seconds(5))) }
  })

  it.effect("allowed: the secret is read; the review names the service account with its groups", () =>
    Effect.gen(function*() {
      const { kube, read } = yield* cluster
      assert.strictEqual(yield* read("argo", "tok", "t", "reader"), "s3cret")
      const calls = (yield* kube.requests("main")).filter((r) => r.identity === "controller")
      assert.deepStrictEqual(calls.map((r) => [r.verb, r.resource, r.outcome]), [
        ["create", "subjectaccessreviews", "Success"],
        ["get", "secrets", "Success"]
      ])
      const review = subjectAccessReview(serviceAccountSubject("argo", "reader"), { verb: "get", resource: "secrets", namespace: "argo", name: "tok" })
      assert.deepStrictEqual((review["spec"] as { groups: Array<string> }).groups, ["system:serviceaccounts", "system:serviceaccounts:argo", "system:authenticated"])
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("denied: the node's request fails naming the secret, the service account and 'forbidden'; the secret is never read", () =>
    Effect.gen(function*() {
      const { kube, read } = yield* cluster
      const denied = yield* read("argo", "tok", "t", "default").pipe(Effect.flip)
      assert.include(denied, "secret argo/tok")
      assert.include(denied, "system:serviceaccount:argo:default")
      assert.include(denied, "forbidden")
      assert.notInclude(denied, "s3cret")
      const calls = (yield* kube.requests("main")).filter((r) => r.identity === "controller")
      assert.deepStrictEqual(calls.map((r) => r.resource), ["subjectaccessreviews"])
      // through perform: the header's failure is the request's, no request is made
      const result = yield* perform(
        { execute: () => Effect.die("no request may be made") } as unknown as HttpClient.HttpClient,
        read,
        { nodeId: "n", namespace: "argo", method: "GET", url: "http://example.com/", headers: [{ name: "X-Token", secretKeyRef: { name: "tok", key: "t" } }] },
        openPolicy
      )
      assert.strictEqual(result._tag, "Failure")
      assert.include((result as { message: string }).message, "http.headers.X-Token: secret argo/tok: forbidden: service account system:serviceaccount:argo:default")
      // the service account a workflow names is the one asked about (default when none)
      const asReader = yield* perform(
        { execute: () => Effect.die("stop here") } as unknown as HttpClient.HttpClient,
        (ns, name, key, sa) => Effect.succeed(`${ns}/${name}/${key} for ${sa}`).pipe(Effect.flatMap((v) => Effect.fail(v))),
        { nodeId: "n", namespace: "argo", method: "GET", url: "http://example.com/", headers: [{ name: "X-Token", secretKeyRef: { name: "tok", key: "t" } }] },
        openPolicy,
        "reader"
      )
      assert.deepStrictEqual(asReader, { _tag: "Failure", message: "http.headers.X-Token: argo/tok/t for reader" })
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("the review itself failing (the controller may not create reviews, or the server does not answer) fails the header with the cause; nothing hangs", () =>
    Effect.gen(function*() {
      const { kube, read } = yield* cluster
      yield* kube.failNext("main", "create", "subjectaccessreviews", "Forbidden", 1, "subjectaccessreviews.authorization.k8s.io is forbidden")
      const refused = yield* read("argo", "tok", "t", "reader").pipe(Effect.flip)
      assert.include(refused, "secret argo/tok: cannot check whether service account system:serviceaccount:argo:reader may get it")
      assert.include(refused, "subjectaccessreviews.authorization.k8s.io is forbidden")
      yield* kube.setHung("main", true)
      const fiber = yield* read("argo", "tok", "t", "reader").pipe(Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("5 seconds")
      const hung = yield* Fiber.join(fiber)
      assert.include(hung, "cannot check whether service account system:serviceaccount:argo:reader may get it")
      assert.include(hung, "no answer within 5s")
      assert.notInclude(hung, "s3cret")
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
