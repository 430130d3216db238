/**
 * The controller's default connection inside a pod: `flotilla controller`
 * without --kubeconfig reads the service account's projected token, CA and
 * namespace as @kubernetes/client-node's loadFromCluster() describes them, and
 * reads the token file again as the kubelet rotates it (client-go re-reads it
 * every minute, and after a 401).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { KubeConnector } from "../../src/kube/api/KubeConnector.js"
import { LiveKubeConnector } from "../../src/kube/live/LiveKubeConnector.js"
import { loadLocalConnection } from "../../src/kube/live/LocalConnection.js"

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

/** A service-account mount under a temporary prefix, and a TLS API server on 127.0.0.1 that records bearer tokens. */
const inClusterPod = Effect.acquireRelease(
  Effect.callback<{ prefix: string; tokenFile: string; port: number; tokens: Array<string>; reject: Set<string>; server: https.Server }>(
    (resume) => {
      const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-incluster-"))
      const dir = path.join(prefix, serviceAccountDir)
      fs.mkdirSync(dir, { recursive: true })
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
        "-subj", "/CN=kube-apiserver", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", path.join(prefix, "server.key"), "-out", path.join(dir, "ca.crt")
      ], { stdio: "ignore" })
      const tokenFile = path.join(dir, "token")
      fs.writeFileSync(tokenFile, "token-one\n")
      fs.writeFileSync(path.join(dir, "namespace"), "argo")
      const tokens: Array<string> = []
      const reject = new Set<string>()
      const server = https.createServer({
        key: fs.readFileSync(path.join(prefix, "server.key")),
        cert: fs.readFileSync(path.join(dir, "ca.crt"))
      }, (req, res) => {
        const token = (req.headers.authorization ?? "").replace(/^Bearer /, "")
        tokens.push(token)
        res.writeHead(reject.has(token) ? 401 : 200, { "Content-Type": "application/json" })
        res.end(reject.has(token)
          ? JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Unauthorized", code: 401 })
          : JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", namespace: "argo" } }))
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ prefix, tokenFile, port: (server.address() as AddressInfo).port, tokens, reject, server })))
    }
  ),
  ({ prefix, server }) =>
    Effect.callback<void>((resume) => {
      fs.rmSync(prefix, { recursive: true, force: true })
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

const withServiceEnv = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const saved = { host: process.env["KUBERNETES_SERVICE_HOST"], port: process.env["KUBERNETES_SERVICE_PORT"], kubeconfig: process.env["KUBECONFIG"] }
      process.env["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
      process.env["KUBERNETES_SERVICE_PORT"] = String(port)
      delete process.env["KUBECONFIG"]
      return saved
    }),
    (saved) =>
      Effect.sync(() => {
        for (const [key, value] of [["KUBERNETES_SERVICE_HOST", saved.host], ["KUBERNETES_SERVICE_PORT", saved.port], ["KUBECONFIG", saved.kubeconfig]] as const) {
          if (value === undefined) delete process.env[key]
          else process.env[key] = value
        }
      })
  )

describe("in-cluster credentials", () => {
  it.effect("the projected token is read from its file and read again after a minute and after a 401", () =>
    Effect.gen(function*() {
      const pod = yield* inClusterPod
      yield* withServiceEnv(pod.port)
      const spec = yield* loadLocalConnection({ inClusterPathPrefix: pod.prefix })
      assert.deepStrictEqual(spec.auth, { _tag: "TokenFile", path: pod.tokenFile })
      assert.strictEqual(spec.endpoint.server, `https://127.0.0.1:${pod.port}`)
      assert.isString(spec.endpoint.certificateAuthorityData)

      const client = yield* Effect.gen(function*() {
        return yield* (yield* KubeConnector).connect(spec)
      }).pipe(Effect.provide(LiveKubeConnector.layer))
      const get = client.get("configmaps", "argo", "cm")

      yield* get
      assert.deepStrictEqual(pod.tokens, ["token-one"])

      // The kubelet rotates the token: the cached one is used until a minute has passed.
      fs.writeFileSync(pod.tokenFile, "token-two\n")
      yield* get
      assert.deepStrictEqual(pod.tokens, ["token-one", "token-one"])
      yield* TestClock.adjust("61 seconds")
      yield* get
      assert.deepStrictEqual(pod.tokens, ["token-one", "token-one", "token-two"])

      // A 401 drops the cached token at once: the next request reads the file again.
      pod.reject.add("token-two")
      fs.writeFileSync(pod.tokenFile, "token-three\n")
      const unauthorized = yield* Effect.flip(get)
      assert.strictEqual(unauthorized.reason, "Unauthorized")
      yield* get
      assert.deepStrictEqual(pod.tokens.slice(3), ["token-two", "token-three"])
    }).pipe(Effect.scoped))

  it.effect("an unreadable token file is an Unauthorized error naming the file, not a crash", () =>
    Effect.gen(function*() {
      const pod = yield* inClusterPod
      yield* withServiceEnv(pod.port)
      const spec = yield* loadLocalConnection({ inClusterPathPrefix: pod.prefix })
      fs.rmSync(pod.tokenFile)
      const client = yield* Effect.gen(function*() {
        return yield* (yield* KubeConnector).connect(spec)
      }).pipe(Effect.provide(LiveKubeConnector.layer))
      const error = yield* Effect.flip(client.get("configmaps", "argo", "cm"))
      assert.strictEqual(error.reason, "Unauthorized")
      assert.include(error.detail, pod.tokenFile)
      assert.deepStrictEqual(pod.tokens, [])
    }).pipe(Effect.scoped))

  it.effect("a token file whose token cannot be sent in a header (CR/LF inside) is refused before any request", () =>
    Effect.gen(function*() {
      const pod = yield* inClusterPod
      yield* withServiceEnv(pod.port)
      const spec = yield* loadLocalConnection({ inClusterPathPrefix: pod.prefix })
      fs.writeFileSync(pod.tokenFile, "token-one\r\nX-Injected: yes")
      const client = yield* Effect.gen(function*() {
        return yield* (yield* KubeConnector).connect(spec)
      }).pipe(Effect.provide(LiveKubeConnector.layer))
      const error = yield* Effect.flip(client.get("configmaps", "argo", "cm"))
      assert.strictEqual(error.reason, "Unauthorized")
      assert.include(error.detail, `token file ${pod.tokenFile}: token contains a line break (CR or LF)`)
      assert.notInclude(error.detail, "X-Injected")
      assert.deepStrictEqual(pod.tokens, [], "no request reached the server")
    }).pipe(Effect.scoped))
})
