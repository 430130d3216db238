import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import type { KubeconfigError } from "../../src/kubeconfig/index.js"
import { loadUserConnection, parseKubeconfig, secretValue, userConnection } from "../../src/kubeconfig/index.js"
import { CA_DATA, CERT_DATA, KEY_DATA, SEED_USER, SYSTEM_TOKEN, USER_SOURCE, USER_TOKEN } from "./fixtures.js"

const S = USER_SOURCE
const SERVER = "https://cluster-1.example:6443"

/** What validateSystemKubeconfig gives for the seed system kubeconfig, but for all namespaces. */
const system: ConnectionSpec = {
  cluster: "cluster-1",
  user: "cluster-1",
  endpoint: { server: SERVER, certificateAuthorityData: CA_DATA, tlsServerName: "kubernetes" },
  auth: { _tag: "Token", token: Redacted.make(SYSTEM_TOKEN) }
}

interface Ctx {
  readonly name: string
  readonly cluster?: string
  readonly namespace?: string
  readonly user?: string
}

const doc = (parts: {
  readonly contexts?: ReadonlyArray<Ctx>
  readonly users?: ReadonlyArray<{ name: string; user?: Record<string, unknown> }>
  readonly clusters?: ReadonlyArray<{ name: string; cluster: Record<string, unknown> }>
}): string =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    contexts: (parts.contexts ?? [{ name: "cluster-1", namespace: "remote" }]).map((c) => ({
      name: c.name,
      context: { cluster: c.cluster ?? "cluster-1", namespace: c.namespace, user: c.user ?? c.name }
    })),
    ...(parts.clusters ? { clusters: parts.clusters } : {}),
    users: parts.users ?? [{ name: "cluster-1", user: { token: USER_TOKEN } }]
  })

const connect = (
  text: string,
  options: { namespace?: string; allowInsecureSkipTlsVerify?: boolean; system?: ConnectionSpec; cluster?: string } = {}
): Effect.Effect<ConnectionSpec, KubeconfigError> =>
  loadUserConnection(text, {
    source: S,
    cluster: options.cluster ?? "cluster-1",
    namespace: options.namespace ?? "remote",
    system: options.system ?? system,
    allowInsecureSkipTlsVerify: options.allowInsecureSkipTlsVerify ?? false
  })

/** Runs `connect`, expects a failure, and checks it names the source and leaks nothing. */
const rejected = (text: string, options: Parameters<typeof connect>[1] = {}) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(connect(text, options))
    assert.include(error.message, S)
    for (const secret of [USER_TOKEN, SYSTEM_TOKEN, KEY_DATA, "hunter2"]) assert.notInclude(error.message, secret)
    return error
  })

const tokenOf = (spec: ConnectionSpec): string | undefined =>
  spec.auth._tag === "Token" ? Redacted.value(spec.auth.token) : undefined

describe("userConnection", () => {
  it.effect("seed user kubeconfig: context for (cluster-1, remote), endpoint from the system spec", () =>
    Effect.gen(function*() {
      const spec = yield* connect(SEED_USER)
      assert.strictEqual(spec.cluster, "cluster-1")
      assert.strictEqual(spec.namespace, "remote")
      assert.strictEqual(spec.user, "cluster-1")
      assert.deepStrictEqual(spec.endpoint, system.endpoint)
      assert.strictEqual(tokenOf(spec), USER_TOKEN)
      assert.notInclude(JSON.stringify(spec), USER_TOKEN)
    }))

  it.effect("works on a parsed document too", () =>
    Effect.gen(function*() {
      const parsed = yield* parseKubeconfig(SEED_USER, S)
      const spec = yield* userConnection(parsed, { source: S, cluster: "cluster-1", namespace: "remote", system })
      assert.strictEqual(tokenOf(spec), USER_TOKEN)
    }))

  it.effect("a context with no namespace serves any namespace; spec.namespace is the target", () =>
    Effect.gen(function*() {
      const spec = yield* connect(doc({ contexts: [{ name: "cluster-1" }] }), { namespace: "team-a" })
      assert.strictEqual(spec.namespace, "team-a")
    }))

  it.effect("an exact namespace match beats an empty namespace", () =>
    Effect.gen(function*() {
      const text = doc({
        contexts: [{ name: "cluster-1", user: "wide" }, { name: "narrow", namespace: "remote", user: "narrow" }],
        users: [{ name: "wide", user: { token: "wide-token" } }, { name: "narrow", user: { token: USER_TOKEN } }]
      })
      const spec = yield* connect(text)
      assert.strictEqual(spec.user, "narrow")
      assert.strictEqual(tokenOf(spec), USER_TOKEN)
    }))

  it.effect("among equal matches the context named after the cluster wins, else the first", () =>
    Effect.gen(function*() {
      const users = [{ name: "u1", user: { token: "t1" } }, { name: "u2", user: { token: "t2" } }, {
        name: "u3",
        user: { token: "t3" }
      }]
      const named = yield* connect(doc({
        contexts: [{ name: "x", namespace: "remote", user: "u1" }, { name: "cluster-1", namespace: "remote", user: "u2" }],
        users
      }))
      assert.strictEqual(named.user, "u2")
      const first = yield* connect(doc({
        contexts: [{ name: "x", namespace: "remote", user: "u1" }, { name: "y", namespace: "remote", user: "u3" }],
        users
      }))
      assert.strictEqual(first.user, "u1")
    }))

  it.effect("a context for another namespace only: error names cluster and namespace", () =>
    Effect.gen(function*() {
      const error = yield* rejected(SEED_USER, { namespace: "other" })
      assert.strictEqual(error.field, "contexts")
      assert.include(error.detail, `cluster "cluster-1"`)
      assert.include(error.detail, `namespace "other"`)
      assert.include(error.detail, `"cluster-1" (namespace "remote")`)
    }))

  it.effect("no context for the cluster", () =>
    Effect.gen(function*() {
      const error = yield* rejected(doc({ contexts: [{ name: "c2", cluster: "cluster-2" }] }))
      assert.include(error.detail, `no context for cluster "cluster-1"`)
    }))

  it.effect("a namespace the controller does not manage is rejected", () =>
    Effect.gen(function*() {
      const error = yield* rejected(SEED_USER, { system: { ...system, namespace: "elsewhere" } })
      assert.include(error.detail, `only namespace "elsewhere"`)
    }))

  const forbidden: ReadonlyArray<[string, Record<string, unknown>, string]> = [
    ["exec", { exec: { command: "sh", args: ["-c", "id"], apiVersion: "client.authentication.k8s.io/v1" } }, "exec credential plugins are not allowed"],
    ["auth-provider", { "auth-provider": { name: "oidc", config: { "id-token": USER_TOKEN } } }, "auth-provider is not allowed"],
    ["tokenFile", { tokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token" }, "file references are not allowed"],
    ["client-certificate", { "client-certificate": "/etc/flotilla/tls.crt", "client-key-data": KEY_DATA }, "file references are not allowed"],
    ["client-key", { "client-certificate-data": CERT_DATA, "client-key": "/etc/flotilla/tls.key" }, "file references are not allowed"],
    ["username", { username: "admin", password: "hunter2" }, "basic authentication"],
    ["password", { password: "hunter2" }, "basic authentication"],
    ["as", { as: "system:admin" }, "impersonation is not allowed"],
    ["as-uid", { "as-uid": "0" }, "impersonation is not allowed"],
    ["as-groups", { "as-groups": ["system:masters"] }, "impersonation is not allowed"],
    ["as-user-extra", { "as-user-extra": { scopes: ["all"] } }, "impersonation is not allowed"],
    ["mystery", { mystery: "x" }, "unsupported field"]
  ]
  for (const [field, extra, reason] of forbidden) {
    it.effect(`user field ${field} is rejected, naming the field`, () =>
      Effect.gen(function*() {
        const error = yield* rejected(doc({ users: [{ name: "cluster-1", user: { token: USER_TOKEN, ...extra } }] }))
        assert.strictEqual(error.field, `users[0].user.${field}`)
        assert.strictEqual(error.context, "cluster-1")
        assert.include(error.message, `users[0].user.${field}`)
        assert.include(error.detail, reason)
      }))
  }

  it.effect("no usable credential", () =>
    Effect.gen(function*() {
      const empty = yield* rejected(doc({ users: [{ name: "cluster-1", user: {} }] }))
      assert.strictEqual(empty.field, "users[0].user")
      assert.include(empty.detail, "no usable credential")
      const missingBody = yield* rejected(doc({ users: [{ name: "cluster-1" }] }))
      assert.include(missingBody.detail, "no usable credential")
      const missingEntry = yield* rejected(doc({ users: [{ name: "someone-else", user: { token: USER_TOKEN } }] }))
      assert.include(missingEntry.detail, `no users entry named "cluster-1"`)
    }))

  it.effect("client-certificate-data + client-key-data are accepted; half a pair is not", () =>
    Effect.gen(function*() {
      const spec = yield* connect(doc({
        users: [{ name: "cluster-1", user: { "client-certificate-data": CERT_DATA, "client-key-data": KEY_DATA } }]
      }))
      assert.strictEqual(spec.auth._tag, "ClientCertificate")
      if (spec.auth._tag === "ClientCertificate") {
        assert.strictEqual(spec.auth.certificateData, CERT_DATA)
        assert.strictEqual(Redacted.value(spec.auth.keyData), KEY_DATA)
      }
      const half = yield* rejected(doc({ users: [{ name: "cluster-1", user: { "client-certificate-data": CERT_DATA } }] }))
      assert.strictEqual(half.field, "users[0].user.client-key-data")
      const both = yield* rejected(doc({
        users: [{ name: "cluster-1", user: { token: USER_TOKEN, "client-certificate-data": CERT_DATA, "client-key-data": KEY_DATA } }]
      }))
      assert.include(both.detail, "keep exactly one credential")
    }))

  it.effect("only the chosen context's user entry is checked", () =>
    Effect.gen(function*() {
      const spec = yield* connect(doc({
        contexts: [{ name: "cluster-1", namespace: "remote" }, { name: "evil", cluster: "cluster-2", user: "evil" }],
        users: [{ name: "evil", user: { exec: { command: "sh" } } }, { name: "cluster-1", user: { token: USER_TOKEN } }]
      }))
      assert.strictEqual(tokenOf(spec), USER_TOKEN)
    }))

  it.effect("a clusters entry with the same server is fine; CA data from it is ignored", () =>
    Effect.gen(function*() {
      const spec = yield* connect(doc({
        clusters: [{ name: "cluster-1", cluster: { server: `${SERVER}/`, "certificate-authority-data": CERT_DATA } }]
      }))
      assert.deepStrictEqual(spec.endpoint, system.endpoint)
    }))

  it.effect("a clusters entry with another server is rejected", () =>
    Effect.gen(function*() {
      const error = yield* rejected(doc({
        clusters: [{ name: "other", cluster: { server: "https://fine" } }, {
          name: "cluster-1",
          cluster: { server: "https://attacker.example:6443" }
        }]
      }))
      assert.strictEqual(error.field, "clusters[1].cluster.server")
      assert.include(error.detail, "differs")
    }))

  const clusterFields: ReadonlyArray<[string, unknown]> = [
    ["certificate-authority", "/etc/ssl/ca.pem"],
    ["proxy-url", "http://proxy.example:3128"]
  ]
  for (const [field, value] of clusterFields) {
    it.effect(`cluster field ${field} is rejected, naming the field`, () =>
      Effect.gen(function*() {
        const error = yield* rejected(doc({ clusters: [{ name: "cluster-1", cluster: { server: SERVER, [field]: value } }] }))
        assert.strictEqual(error.field, `clusters[0].cluster.${field}`)
      }))
  }

  it.effect("insecure-skip-tls-verify is rejected without the opt-in", () =>
    Effect.gen(function*() {
      const text = doc({ clusters: [{ name: "cluster-1", cluster: { "insecure-skip-tls-verify": true } }] })
      const error = yield* rejected(text)
      assert.strictEqual(error.field, "clusters[0].cluster.insecure-skip-tls-verify")
    }))

  it.effect("insecure-skip-tls-verify is honoured with the opt-in", () =>
    Effect.gen(function*() {
      const text = doc({ clusters: [{ name: "cluster-1", cluster: { "insecure-skip-tls-verify": true } }] })
      const spec = yield* connect(text, { allowInsecureSkipTlsVerify: true })
      assert.isTrue(spec.endpoint.insecureSkipTlsVerify)
      assert.strictEqual(spec.endpoint.server, SERVER)
      const off = yield* connect(doc({ clusters: [{ name: "cluster-1", cluster: { "insecure-skip-tls-verify": false } }] }))
      assert.isUndefined(off.endpoint.insecureSkipTlsVerify)
    }))
})

describe("secretValue", () => {
  const meta = { name: "workflow-kubeconfig", namespace: "local" }

  it.effect("decodes base64 data.value", () =>
    Effect.gen(function*() {
      const text = yield* secretValue({ metadata: meta, data: { value: Buffer.from(SEED_USER).toString("base64") } })
      assert.strictEqual(text, SEED_USER)
    }))

  it.effect("reads stringData.value", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* secretValue({ metadata: meta, stringData: { value: SEED_USER } }), SEED_USER)
    }))

  it.effect("another item name", () =>
    Effect.gen(function*() {
      const text = yield* secretValue({ metadata: meta, data: { config: Buffer.from("abc").toString("base64") } }, "config")
      assert.strictEqual(text, "abc")
    }))

  it.effect("missing item: error names the secret and the item", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(secretValue({ metadata: meta, data: { other: "YQ==" } }))
      assert.strictEqual(error.source, "secret local/workflow-kubeconfig")
      assert.strictEqual(error.field, "data.value")
      assert.include(error.message, `no item "value"`)
      const noData = yield* Effect.flip(secretValue({ metadata: meta }, "value", "custom source"))
      assert.strictEqual(noData.source, "custom source")
    }))

  it.effect("not base64 / not UTF-8, without echoing the content", () =>
    Effect.gen(function*() {
      const notBase64 = yield* Effect.flip(secretValue({ metadata: meta, data: { value: `${USER_TOKEN}!!` } }))
      assert.include(notBase64.detail, "not valid base64")
      assert.notInclude(notBase64.message, USER_TOKEN)
      const binary = Buffer.from([0xff, 0xfe, 0xfd, 0x00]).toString("base64")
      const notUtf8 = yield* Effect.flip(secretValue({ metadata: meta, data: { value: binary } }))
      assert.include(notUtf8.detail, "not UTF-8")
    }))
})
