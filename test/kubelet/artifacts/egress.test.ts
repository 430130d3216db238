/**
 * Where the kubelet's artifact calls may go (src/kubelet/artifacts/egress.ts):
 * it makes them from the node's network, so for a pod without hostNetwork a
 * workflow-named http input or S3 endpoint on loopback, link-local (the
 * cloud metadata address) or a private network is refused before any call,
 * naming the artifact and saying "not allowed", also behind a redirect or a
 * name resolving there; the configured repository's endpoint, allowed
 * explicitly, works. On a redirect to another host only the credential
 * headers are dropped, as Go's client does.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { guardedLookup, strictPolicy } from "../../../src/controller/httpPolicy.js"
import { makeDirectoryStore } from "../../../src/kubelet/artifacts/DirectoryStore.js"
import { makeS3Store } from "../../../src/kubelet/artifacts/S3Store.js"
import { artifactEgress, checkS3Endpoint, checkUrl } from "../../../src/kubelet/artifacts/egress.js"
import { type ArtifactDeps, type ArtifactTemplate, isDomainOrSubdomain, loadInputs, redirectHeaders, saveOutputs } from "../../../src/kubelet/artifacts/executor.js"

const fresh = () => fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-egress-"))

/** A loopback http server: `/data` answers "secret data", `/to?u=<url>` redirects there. */
const serve = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ base: string; server: http.Server; hits: Array<string> }>((resolve) => {
      const hits: Array<string> = []
      const server = http.createServer((req, res) => {
        hits.push(req.url ?? "")
        const url = new URL(req.url ?? "/", "http://x")
        if (url.pathname === "/to") {
          res.writeHead(302, { location: url.searchParams.get("u") ?? "/" })
          return res.end()
        }
        res.end("secret data")
      })
      server.listen(0, "127.0.0.1", () => resolve({ base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, hits }))
    })
  ),
  (s) => Effect.promise(() => new Promise<void>((r) => s.server.close(() => r())))
)

/**
 * A loopback http server on `host` (127.0.0.1 and 127.0.0.2 are two hosts to
 * an http client, both on loopback) recording each request's headers:
 * `/to?u=<url>` redirects there, anything else answers "data".
 */
const recorder = (host: string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ base: string; server: http.Server; seen: Array<http.IncomingHttpHeaders> }>((resolve) => {
        const seen: Array<http.IncomingHttpHeaders> = []
        const server = http.createServer((req, res) => {
          seen.push(req.headers)
          const url = new URL(req.url ?? "/", "http://x")
          if (url.pathname === "/to") {
            res.writeHead(302, { location: url.searchParams.get("u") ?? "/" })
            return res.end()
          }
          res.end("data")
        })
        server.listen(0, host, () => resolve({ base: `http://${host}:${(server.address() as AddressInfo).port}`, server, seen }))
      })
    ),
    (s) => Effect.promise(() => new Promise<void>((r) => s.server.close(() => r())))
  )

const to = (via: string, target: string) => `${via}/to?u=${encodeURIComponent(target)}`

const repository = "127.0.0.1:9000"
const archiveLocation = {
  s3: { endpoint: repository, bucket: "art", insecure: true, key: "wf/pod-1", accessKeySecret: { name: "cred", key: "a" }, secretKeySecret: { name: "cred", key: "s" } }
}

const depsFor = (root: string, allow: ReadonlyArray<string>, hostNetwork = false): ArtifactDeps => ({
  store: makeDirectoryStore({ root, endpoint: repository }),
  secrets: new Map([["/argo/secret/cred/a", new TextEncoder().encode("a")], ["/argo/secret/cred/s", new TextEncoder().encode("s")]]),
  egress: artifactEgress(hostNetwork, allow),
  httpTimeout: Duration.seconds(5)
})

const storeRoot = () => {
  const root = fresh()
  fs.mkdirSync(path.join(root, "art", "in"), { recursive: true })
  fs.writeFileSync(path.join(root, "art", "in", "msg"), "from the repository")
  return root
}

const load = (deps: ArtifactDeps, art: Record<string, unknown>) =>
  loadInputs(deps, { archiveLocation, inputs: { artifacts: [art as never] } } satisfies ArtifactTemplate, fresh())

describe("artifact egress", () => {
  it("judges URLs: loopback, metadata, IPv4 in IPv6 and private refused; allowed endpoints and public names pass", () => {
    const egress = artifactEgress(false, [`http://${repository}`])
    for (const u of ["http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]:80/", "http://[::ffff:a9fe:a9fe]/", "http://10.0.0.1/", "http://localhost:9000/", "http://[::1]:9000/"]) {
      const d = checkUrl(new URL(u), egress)
      assert.strictEqual(d._tag, "Refused", u)
      if (d._tag === "Refused") expect(d.reason, u).toMatch(/not allowed/)
    }
    assert.deepStrictEqual(checkUrl(new URL(`http://${repository}/art/x`), egress), { _tag: "Allowed", lookup: undefined })
    // another port on the same address is not the repository
    assert.strictEqual(checkUrl(new URL("http://127.0.0.1:9001/"), egress)._tag, "Refused")
    const name = checkUrl(new URL("https://example.com/x"), egress)
    assert.strictEqual(name._tag, "Allowed")
    if (name._tag === "Allowed") assert.isDefined(name.lookup, "names are judged by what they resolve to")
    assert.strictEqual(checkS3Endpoint(repository, true, egress)._tag, "Allowed")
    assert.strictEqual(checkS3Endpoint("169.254.169.254", false, egress)._tag, "Refused")
    // a hostNetwork pod reaches the node's network itself
    assert.strictEqual(checkUrl(new URL("http://127.0.0.1:8080/"), artifactEgress(true))._tag, "Allowed")
  })

  it.effect("a workflow-named http input to 127.0.0.1 or 169.254.169.254 is refused, naming the artifact; the server is never called", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* serve
      const deps = depsFor(storeRoot(), [`http://${repository}`])
      const local = yield* Effect.flip(load(deps, { name: "peek", path: "/tmp/p", http: { url: `${s.base}/data` } }))
      expect(local).toMatch(/^artifact peek failed to load .*not allowed/)
      expect(local).toContain("127.0.0.1")
      const metadata = yield* Effect.flip(load(deps, { name: "creds", path: "/tmp/c", http: { url: "http://169.254.169.254/latest/meta-data/iam/" } }))
      expect(metadata).toMatch(/^artifact creds failed to load .*169\.254\.169\.254.*not allowed/)
      const mapped = yield* Effect.flip(load(deps, { name: "m", path: "/tmp/m", http: { url: `http://[::ffff:127.0.0.1]:${new URL(s.base).port}/data` } }))
      expect(mapped).toMatch(/^artifact m failed to load .*not allowed/)
      assert.deepStrictEqual(s.hits, [])
    })))

  it.effect("redirects are followed by hand, each hop checked: an allowed server cannot send the kubelet to a forbidden one", () =>
    Effect.scoped(Effect.gen(function*() {
      const allowed = yield* serve
      const other = yield* serve
      const deps = depsFor(storeRoot(), [allowed.base])
      const root = fresh()
      // allowed to allowed: followed
      const ok = yield* loadInputs(deps, { inputs: { artifacts: [{ name: "ok", path: "/tmp/ok", http: { url: `${allowed.base}/to?u=${encodeURIComponent(`${allowed.base}/data`)}` } } as never] } }, root)
      assert.strictEqual(fs.readFileSync(ok[0]!.hostPath, "utf8"), "secret data")
      // allowed to another loopback server: refused at the hop
      const e = yield* Effect.flip(load(deps, { name: "hop", path: "/tmp/h", http: { url: `${allowed.base}/to?u=${encodeURIComponent(`${other.base}/data`)}` } }))
      expect(e).toMatch(/^artifact hop failed to load .*not allowed/)
      expect(e).toContain(other.base)
      assert.deepStrictEqual(other.hits, [])
    })))

  it.effect("a name resolving to loopback is refused at connection time (the guarded lookup, as the S3 client's agents use it)", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* serve
      const decision = checkUrl(new URL("http://flotilla-egress.example/"), artifactEgress(false))
      assert.strictEqual(decision._tag, "Allowed")
      const lookup = decision._tag === "Allowed" ? decision.lookup! : guardedLookup(strictPolicy)
      const err = yield* Effect.promise(() => new Promise<NodeJS.ErrnoException | null>((r) => lookup("localhost", {}, (e) => r(e))))
      assert.strictEqual(err?.code, "EADDRBLOCKED")
      // the S3 store connects through it: "localhost" is not judged as a literal there, only by what it resolves to
      const e = yield* Effect.flip(makeS3Store({ callTimeout: "10 seconds" }).get({
        endpoint: `localhost:${new URL(s.base).port}`, insecure: true, bucket: "b", key: "k", accessKey: "a", secretKey: "s", lookup
      }))
      expect(e.message).toMatch(/not allowed/)
      assert.deepStrictEqual(s.hits, [])
    })))

  it.effect("an S3 endpoint on loopback that is not the configured repository is refused before any call; the repository works", () =>
    Effect.gen(function*() {
      const root = storeRoot()
      const deps = depsFor(root, [`http://${repository}`])
      const s3 = (endpoint: string) => ({ endpoint, bucket: "art", insecure: true, key: "in/msg", accessKeySecret: { name: "cred", key: "a" }, secretKeySecret: { name: "cred", key: "s" } })
      for (const endpoint of ["127.0.0.1:9001", "localhost:9000", "169.254.169.254", "[::ffff:7f00:1]:9000"]) {
        const e = yield* Effect.flip(load(deps, { name: "grab", path: "/tmp/g", s3: s3(endpoint) }))
        expect(e, endpoint).toMatch(/^artifact grab failed to load .*not allowed/)
      }
      // the configured repository: by key only (archive location) and named in full
      const byKey = yield* load(deps, { name: "k", path: "/tmp/k", s3: { key: "in/msg" } })
      assert.strictEqual(fs.readFileSync(byKey[0]!.hostPath, "utf8"), "from the repository")
      const named = yield* load(deps, { name: "n", path: "/tmp/n", s3: s3(repository) })
      assert.strictEqual(fs.readFileSync(named[0]!.hostPath, "utf8"), "from the repository")
      // outputs: to the repository saved, to another loopback endpoint refused
      const src = fresh()
      fs.writeFileSync(path.join(src, "out"), "result")
      const saved = yield* saveOutputs(deps, {
        archiveLocation,
        outputs: { artifacts: [{ name: "good", path: "/tmp/out", archive: { none: {} } }, { name: "bad", path: "/tmp/out", archive: { none: {} }, s3: s3("127.0.0.1:9001") } as never] }
      }, () => path.join(src, "out"))
      assert.deepStrictEqual(saved.artifacts.map((a) => a.name), ["good"])
      expect(saved.error).toMatch(/failed to save artifact 'bad' .*not allowed/)
    }))

  it("a redirect keeps credential headers only for the first host and its subdomains, as Go's client (ports not compared, dropping sticky)", () => {
    assert.isTrue(isDomainOrSubdomain("example.com", "example.com"))
    assert.isTrue(isDomainOrSubdomain("files.example.com", "example.com"))
    assert.isFalse(isDomainOrSubdomain("example.com", "files.example.com"))
    assert.isFalse(isDomainOrSubdomain("notexample.com", "example.com"))
    assert.isFalse(isDomainOrSubdomain("example.com.evil.test", "example.com"))
    assert.isFalse(isDomainOrSubdomain("[::1]", "1]"))
    const headers = { Authorization: ["Basic x"], cookie: ["c=1"], "Proxy-Authorization": ["p"], "WWW-Authenticate": ["w"], Cookie2: ["c2"], "X-Trace": ["t"] }
    const at = (u: string) => new URL(u)
    assert.deepStrictEqual(redirectHeaders(headers, at("https://example.com/a"), at("https://files.example.com:8443/b"), false), { headers, stripped: false })
    assert.deepStrictEqual(redirectHeaders(headers, at("https://example.com/a"), at("http://EXAMPLE.com:8080/b"), false), { headers, stripped: false })
    assert.deepStrictEqual(redirectHeaders(headers, at("https://example.com/a"), at("https://cdn.test/b"), false), { headers: { "X-Trace": ["t"] }, stripped: true })
    assert.deepStrictEqual(redirectHeaders(headers, at("https://example.com/a"), at("https://example.com/c"), true), { headers: { "X-Trace": ["t"] }, stripped: true })
  })

  it.effect("on a redirect to another host only the credential headers are dropped; the other given headers follow every hop", () =>
    Effect.scoped(Effect.gen(function*() {
      const first = yield* recorder("127.0.0.1")
      const otherPort = yield* recorder("127.0.0.1")
      const other = yield* recorder("127.0.0.2")
      const deps: ArtifactDeps = {
        ...depsFor(storeRoot(), [first.base, otherPort.base, other.base]),
        secrets: new Map([["/argo/secret/web/user", new TextEncoder().encode("alice")], ["/argo/secret/web/pass", new TextEncoder().encode("pw")]])
      }
      const basicAuth = { usernameSecret: { name: "web", key: "user" }, passwordSecret: { name: "web", key: "pass" } }
      const given = [
        { name: "X-Trace", value: "t-1" },
        { name: "X-Multi", value: "1" },
        { name: "x-multi", value: "2" },
        { name: "Cookie", value: "session=abc" },
        { name: "Proxy-Authorization", value: "Basic cHJveHk=" },
        // as Go's client: never sent from the headers (the URL's host is)
        { name: "Host", value: "elsewhere.example" }
      ]
      const get = (url: string) => loadInputs(deps, { inputs: { artifacts: [{ name: "a", path: "/tmp/a", http: { url, headers: given, auth: { basicAuth } } } as never] } }, fresh())
      const alice = `Basic ${Buffer.from("alice:pw").toString("base64")}`
      const credentials = (h: http.IncomingHttpHeaders) => [h.authorization, h.cookie, h["proxy-authorization"]]
      const others = (h: http.IncomingHttpHeaders) => [h["x-trace"], h["x-multi"]]

      // 127.0.0.1 -> 127.0.0.2: credentials dropped, the rest kept
      const staged = yield* get(to(first.base, `${other.base}/data`))
      assert.strictEqual(fs.readFileSync(staged[0]!.hostPath, "utf8"), "data")
      assert.deepStrictEqual(credentials(first.seen[0]!), [alice, "session=abc", "Basic cHJveHk="])
      assert.deepStrictEqual(others(first.seen[0]!), ["t-1", "1, 2"])
      assert.strictEqual(first.seen[0]!.host, new URL(first.base).host)
      assert.deepStrictEqual(credentials(other.seen[0]!), [undefined, undefined, undefined])
      assert.deepStrictEqual(others(other.seen[0]!), ["t-1", "1, 2"])

      // the same host on another port: everything kept (Go compares host names, not ports)
      yield* get(to(first.base, `${otherPort.base}/data`))
      assert.deepStrictEqual(credentials(otherPort.seen[0]!), [alice, "session=abc", "Basic cHJveHk="])
      assert.deepStrictEqual(others(otherPort.seen[0]!), ["t-1", "1, 2"])

      // once dropped, a later hop back to the first host does not get them again
      yield* get(to(first.base, to(other.base, `${otherPort.base}/data`)))
      assert.deepStrictEqual(credentials(otherPort.seen[1]!), [undefined, undefined, undefined])
      assert.deepStrictEqual(others(otherPort.seen[1]!), ["t-1", "1, 2"])
    })))
})
