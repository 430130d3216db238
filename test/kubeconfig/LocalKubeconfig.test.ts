/**
 * The controller's own kubeconfig file (`--kubeconfig`, `KUBECONFIG`):
 * kubeconfig/LocalKubeconfig.ts on in-memory files, and
 * kube/live/LocalConnection.ts on real ones.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { loadLocalKubeconfig } from "../../src/kubeconfig/LocalKubeconfig.js"
import { loadLocalConnection } from "../../src/kube/live/LocalConnection.js"
// the reference reader: the controller loaded kubeconfig files through it before (issue 14: it costs about 85 MB of RSS)
import { KubeConfig } from "@kubernetes/client-node"

const b64 = (text: string) => Buffer.from(text).toString("base64")

/** A fresh folder under the system's temporary one, removed with the scope. */
const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

const files = (contents: Record<string, string>) => {
  const read: Array<string> = []
  return {
    read,
    options: {
      readFile: (file: string) => {
        read.push(file)
        if (!(file in contents)) throw Object.assign(new Error("no such file"), { code: "ENOENT" })
        return contents[file]
      },
      checkReadable: (file: string) => {
        if (!(file in contents)) throw Object.assign(new Error("no such file"), { code: "ENOENT" })
      }
    }
  }
}

const kubeconfig = `
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://dev.example:6443
    certificate-authority: certs/ca.crt
- name: prod-cluster
  cluster:
    server: https://prod.example
    certificate-authority-data: ${b64("PROD CA")}
    tls-server-name: kube.prod
contexts:
- name: dev
  context: { cluster: dev-cluster, user: dev-user, namespace: team }
- name: prod
  context: { cluster: prod-cluster, user: prod-user }
- name: rotating
  context: { cluster: prod-cluster, user: token-file-user }
- name: plugin
  context: { cluster: prod-cluster, user: exec-user }
- name: legacy
  context: { cluster: prod-cluster, user: provider-user }
users:
- name: dev-user
  user:
    client-certificate: certs/client.crt
    client-key: /abs/client.key
- name: prod-user
  user:
    token: prod-token
- name: token-file-user
  user:
    tokenFile: ./token
- name: exec-user
  user:
    exec: { apiVersion: client.authentication.k8s.io/v1, command: ./bin/cred, args: [get] }
- name: provider-user
  user:
    auth-provider: { name: gcp }
`

describe("the controller's kubeconfig file", () => {
  it.effect("the current context, with file references relative to the kubeconfig's folder read and inlined", () =>
    Effect.gen(function*() {
      const fake = files({ "/home/op/.kube/certs/ca.crt": "DEV CA", "/home/op/.kube/certs/client.crt": "CERT", "/abs/client.key": "KEY" })
      const spec = yield* loadLocalKubeconfig([{ path: "/home/op/.kube/config", text: kubeconfig }], fake.options)
      assert.strictEqual(spec.cluster, "dev-cluster")
      assert.strictEqual(spec.user, "dev-user")
      assert.strictEqual(spec.namespace, undefined, "the controller watches every namespace of its own cluster")
      assert.deepStrictEqual(spec.endpoint, { server: "https://dev.example:6443", certificateAuthorityData: b64("DEV CA") })
      assert.strictEqual(spec.auth._tag, "ClientCertificate")
      if (spec.auth._tag !== "ClientCertificate") return
      assert.strictEqual(spec.auth.certificateData, b64("CERT"))
      assert.strictEqual(Redacted.value(spec.auth.keyData), b64("KEY"))
      assert.deepStrictEqual(fake.read.sort(), ["/abs/client.key", "/home/op/.kube/certs/ca.crt", "/home/op/.kube/certs/client.crt"])
    }))

  it.effect("--context picks another; the configmap's cluster name replaces the kubeconfig's", () =>
    Effect.gen(function*() {
      const spec = yield* loadLocalKubeconfig([{ path: "/k/config", text: kubeconfig }], { ...files({}).options, context: "prod", cluster: "main" })
      assert.strictEqual(spec.cluster, "main")
      assert.deepStrictEqual(spec.endpoint, { server: "https://prod.example", certificateAuthorityData: b64("PROD CA"), tlsServerName: "kube.prod" })
      assert.deepStrictEqual(spec.auth._tag === "Token" ? Redacted.value(spec.auth.token) : spec.auth._tag, "prod-token")
    }))

  it.effect("a tokenFile stays a file (read again as it rotates); an exec command given as a relative path is resolved, a bare name is not", () =>
    Effect.gen(function*() {
      const fake = files({ "/k/token": "t" })
      const rotating = yield* loadLocalKubeconfig([{ path: "/k/config", text: kubeconfig }], { ...fake.options, context: "rotating" })
      assert.deepStrictEqual(rotating.auth, { _tag: "TokenFile", path: "/k/token" })
      const plugin = yield* loadLocalKubeconfig([{ path: "/k/config", text: kubeconfig }], { ...fake.options, context: "plugin" })
      assert.deepStrictEqual(plugin.auth, { _tag: "Exec", command: "/k/bin/cred", args: ["get"], env: {}, apiVersion: "client.authentication.k8s.io/v1" })
      const bare = yield* loadLocalKubeconfig([{ path: "/k/config", text: kubeconfig.replace("./bin/cred", "gke-gcloud-auth-plugin") }], {
        ...fake.options,
        context: "plugin"
      })
      assert.strictEqual(bare.auth._tag === "Exec" ? bare.auth.command : "", "gke-gcloud-auth-plugin")
    }))

  it.effect("errors name the file, the context and the field", () =>
    Effect.gen(function*() {
      const { options } = files({})
      const missingFile = yield* Effect.flip(loadLocalKubeconfig([{ path: "/k/config", text: kubeconfig }], options))
      assert.strictEqual(missingFile.source, "/k/config")
      assert.strictEqual(missingFile.context, "dev")
      assert.strictEqual(missingFile.field, "clusters[0].cluster.certificate-authority")
      assert.include(missingFile.detail, "/k/certs/ca.crt")
      const provider = yield* Effect.flip(loadLocalKubeconfig([{ path: "/k/config", text: kubeconfig }], { ...options, context: "legacy" }))
      assert.strictEqual(provider.field, "users[4].user.auth-provider")
      const noContext = yield* Effect.flip(loadLocalKubeconfig([{ path: "/k/config", text: kubeconfig }], { ...options, context: "nope" }))
      assert.include(noContext.detail, `no context named "nope"`)
      const noCurrent = yield* Effect.flip(loadLocalKubeconfig([{ path: "/k/config", text: "clusters: []\n" }], options))
      assert.strictEqual(noCurrent.field, "current-context")
      const malformed = yield* Effect.flip(loadLocalKubeconfig([{ path: "/k/config", text: "clusters: [\n" }], options))
      assert.strictEqual(malformed.source, "/k/config")
      assert.include(malformed.detail, "malformed YAML")
      const impersonating = yield* Effect.flip(loadLocalKubeconfig([{
        path: "/k/config",
        text: kubeconfig.replace("    tokenFile: ./token", "    tokenFile: ./token\n    as: limited-user")
      }], { ...files({ "/k/token": "t" }).options, context: "rotating" }))
      assert.strictEqual(impersonating.field, "users[2].user.as")
      assert.include(impersonating.detail, "impersonation is not supported")
      const execAndToken = yield* Effect.flip(loadLocalKubeconfig([{
        path: "/k/config",
        text: kubeconfig.replace("    token: prod-token", "    token: prod-token\n    exec: { apiVersion: client.authentication.k8s.io/v1, command: cred }")
      }], { ...options, context: "prod" }))
      assert.include(execAndToken.detail, "more than one credential")
    }))

  it.effect("a user keeping several credentials gets the one client-go prefers: tokenFile, then token, then the certificate", () =>
    Effect.gen(function*() {
      const withCert = kubeconfig
        .replace("    tokenFile: ./token", `    tokenFile: ./token\n    token: old-token\n    client-certificate-data: ${b64("C")}\n    client-key-data: ${b64("K")}`)
        .replace("    token: prod-token", `    token: prod-token\n    client-certificate-data: ${b64("C")}\n    client-key-data: ${b64("K")}`)
      const { options } = files({ "/k/token": "t" })
      const rotating = yield* loadLocalKubeconfig([{ path: "/k/config", text: withCert }], { ...options, context: "rotating" })
      assert.deepStrictEqual(rotating.auth, { _tag: "TokenFile", path: "/k/token" })
      const prod = yield* loadLocalKubeconfig([{ path: "/k/config", text: withCert }], { ...options, context: "prod" })
      assert.strictEqual(prod.auth._tag === "Token" ? Redacted.value(prod.auth.token) : prod.auth._tag, "prod-token")
    }))

  it.effect("several files merge as kubectl merges them: the first naming an entry wins, the first current-context is used", () =>
    Effect.gen(function*() {
      const first = `
current-context: b
clusters:
- name: shared
  cluster: { server: "https://first.example" }
contexts:
- name: b
  context: { cluster: shared, user: u }
users:
- name: u
  user: { token: first-token }
`
      const second = `
current-context: a
clusters:
- name: shared
  cluster: { server: "https://second.example" }
- name: only-second
  cluster: { server: "https://only-second.example" }
contexts:
- name: a
  context: { cluster: only-second, user: u }
users:
- name: u
  user: { token: second-token }
`
      const merged = [{ path: "/1/config", text: first }, { path: "/2/config", text: second }]
      const spec = yield* loadLocalKubeconfig(merged, files({}).options)
      assert.strictEqual(spec.endpoint.server, "https://first.example")
      assert.strictEqual(spec.auth._tag === "Token" ? Redacted.value(spec.auth.token) : "", "first-token")
      const other = yield* loadLocalKubeconfig(merged, { ...files({}).options, context: "a" })
      assert.strictEqual(other.endpoint.server, "https://only-second.example")
    }))

  it.effect("on disk: KUBECONFIG may list several files and skips missing ones; --kubeconfig must exist", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("flotilla-localkc-")
      fs.mkdirSync(path.join(dir, "certs"))
      fs.writeFileSync(path.join(dir, "certs", "ca.crt"), "DISK CA")
      fs.writeFileSync(path.join(dir, "config"), `
current-context: c
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:6443", certificate-authority: certs/ca.crt } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
users: [{ name: u, user: { token: tok } }]
`)
      const saved = process.env["KUBECONFIG"]
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (saved === undefined) delete process.env["KUBECONFIG"]
          else process.env["KUBECONFIG"] = saved
        })
      )
      process.env["KUBECONFIG"] = [path.join(dir, "missing"), path.join(dir, "config")].join(path.delimiter)
      const spec = yield* loadLocalConnection({})
      assert.strictEqual(spec.endpoint.certificateAuthorityData, b64("DISK CA"))
      const missing = yield* Effect.flip(loadLocalConnection({ kubeconfig: path.join(dir, "missing") }))
      assert.strictEqual(missing.source, path.join(dir, "missing"))
      assert.include(missing.detail, "ENOENT")
      fs.writeFileSync(path.join(dir, "config"), "current-context: c\ncontexts: [{ name: c, context: { cluster: gone } }]\n")
      const broken = yield* Effect.flip(loadLocalConnection({ kubeconfig: path.join(dir, "config") }))
      assert.strictEqual(broken.message, `${path.join(dir, "config")}: context "c": clusters: no clusters entry named "gone"`)
    }).pipe(Effect.scoped))

  it.effect("reads a kubeconfig file as @kubernetes/client-node does: server, CA (a relative path), TLS server name, skip-verify, token, client certificate", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("flotilla-localkc-ref-")
      fs.mkdirSync(path.join(dir, "pki"))
      fs.writeFileSync(path.join(dir, "pki", "ca.crt"), "CA FROM FILE")
      fs.writeFileSync(path.join(dir, "pki", "client.crt"), "CLIENT CERT")
      fs.writeFileSync(path.join(dir, "pki", "client.key"), "CLIENT KEY")
      const file = path.join(dir, "config")
      fs.writeFileSync(file, `
apiVersion: v1
kind: Config
current-context: a
clusters:
- name: a
  cluster: { server: "https://a.example:6443", certificate-authority: pki/ca.crt, tls-server-name: api.a.internal }
- name: b
  cluster: { server: "https://b.example", insecure-skip-tls-verify: true }
contexts:
- name: a
  context: { cluster: a, user: token-user }
- name: b
  context: { cluster: b, user: cert-user }
users:
- name: token-user
  user: { token: abc.def }
- name: cert-user
  user: { client-certificate: pki/client.crt, client-key: pki/client.key }
`)
      for (const context of ["a", "b"]) {
        const reference = new KubeConfig()
        reference.loadFromFile(file)
        reference.setCurrentContext(context)
        const cluster = reference.getCurrentCluster()!
        const user = reference.getCurrentUser()!
        const ours = yield* loadLocalConnection({ kubeconfig: file, context })
        assert.strictEqual(ours.cluster, cluster.name)
        assert.strictEqual(ours.user, user.name)
        assert.strictEqual(ours.endpoint.server, cluster.server)
        assert.strictEqual(ours.endpoint.tlsServerName, cluster.tlsServerName)
        assert.strictEqual(ours.endpoint.insecureSkipTlsVerify === true, cluster.skipTLSVerify === true)
        assert.strictEqual(
          ours.endpoint.certificateAuthorityData,
          cluster.caFile === undefined ? undefined : fs.readFileSync(cluster.caFile).toString("base64")
        )
        if (user.token !== undefined) {
          assert.strictEqual(ours.auth._tag === "Token" ? Redacted.value(ours.auth.token) : ours.auth._tag, user.token)
        } else {
          assert.strictEqual(ours.auth._tag, "ClientCertificate")
          if (ours.auth._tag !== "ClientCertificate") return
          assert.strictEqual(ours.auth.certificateData, fs.readFileSync(user.certFile!).toString("base64"))
          assert.strictEqual(Redacted.value(ours.auth.keyData), fs.readFileSync(user.keyFile!).toString("base64"))
        }
      }
    }).pipe(Effect.scoped))
})
