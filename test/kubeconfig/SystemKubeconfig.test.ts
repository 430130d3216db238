import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import type { KubeconfigError, SystemKubeconfig } from "../../src/kubeconfig/index.js"
import { loadSystemKubeconfig, parseKubeconfig, validateSystemKubeconfig } from "../../src/kubeconfig/index.js"
import { CA_DATA, CERT_DATA, KEY_DATA, SEED_SYSTEM, SYSTEM_SOURCE, SYSTEM_TOKEN } from "./fixtures.js"

const S = SYSTEM_SOURCE

interface Entry {
  readonly name: string
  readonly cluster?: string
  readonly namespace?: string | null
  readonly user?: string
}

/** Builds a system kubeconfig (as JSON, which is YAML) from contexts, clusters and users. */
const kubeconfig = (parts: {
  readonly contexts: ReadonlyArray<Entry>
  readonly clusters?: ReadonlyArray<{ name: string; cluster: Record<string, unknown> }>
  readonly users?: ReadonlyArray<{ name: string; user?: Record<string, unknown> }>
}): string =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    contexts: parts.contexts.map((c) => ({
      name: c.name,
      context: { cluster: c.cluster ?? c.name, user: c.user ?? c.name, namespace: c.namespace }
    })),
    clusters: parts.clusters ??
      parts.contexts.map((c) => ({ name: c.cluster ?? c.name, cluster: { server: `https://${c.cluster ?? c.name}:6443` } })),
    users: parts.users ?? parts.contexts.map((c) => ({ name: c.user ?? c.name, user: { token: SYSTEM_TOKEN } }))
  })

const validate = (
  text: string,
  readFile?: (path: string) => string | Uint8Array
): Effect.Effect<SystemKubeconfig, KubeconfigError> => loadSystemKubeconfig(text, { source: S, readFile })

const noSecrets = (result: SystemKubeconfig): void => {
  for (const error of result.errors) {
    assert.include(error.message, S)
    assert.notInclude(error.message, SYSTEM_TOKEN)
    assert.notInclude(error.message, KEY_DATA)
  }
}

const only = (result: SystemKubeconfig): ConnectionSpec => {
  assert.deepStrictEqual(result.errors.map((e) => e.message), [])
  assert.strictEqual(result.clusters.length, 1)
  return result.clusters[0]
}

const onlyError = (result: SystemKubeconfig): KubeconfigError => {
  noSecrets(result)
  assert.strictEqual(result.errors.length, 1, result.errors.map((e) => e.message).join("\n"))
  return result.errors[0]
}

describe("validateSystemKubeconfig", () => {
  it.effect("seed: one context -> one ConnectionSpec with its namespace, endpoint and token", () =>
    Effect.gen(function*() {
      const spec = only(yield* validate(SEED_SYSTEM))
      assert.strictEqual(spec.cluster, "cluster-1")
      assert.strictEqual(spec.namespace, "remote")
      assert.strictEqual(spec.user, "cluster-1")
      assert.deepStrictEqual(spec.endpoint, {
        server: "https://cluster-1.example:6443",
        certificateAuthorityData: CA_DATA,
        tlsServerName: "kubernetes"
      })
      assert.strictEqual(spec.auth._tag, "Token")
      if (spec.auth._tag === "Token") {
        assert.isTrue(Redacted.isRedacted(spec.auth.token))
        assert.strictEqual(Redacted.value(spec.auth.token), SYSTEM_TOKEN)
        assert.notInclude(JSON.stringify(spec), SYSTEM_TOKEN)
        assert.notInclude(String(spec.auth.token), SYSTEM_TOKEN)
      }
    }))

  it.effect("validateSystemKubeconfig works on an already parsed document", () =>
    Effect.gen(function*() {
      const doc = yield* parseKubeconfig(SEED_SYSTEM, S)
      const result = validateSystemKubeconfig(doc, { source: S })
      assert.strictEqual(only(result).namespace, "remote")
    }))

  it.effect("empty, null or missing namespace -> undefined (all namespaces)", () =>
    Effect.gen(function*() {
      const result = yield* validate(kubeconfig({
        contexts: [{ name: "a", namespace: "" }, { name: "b", namespace: null }, { name: "c" }]
      }))
      assert.deepStrictEqual(result.errors, [])
      assert.deepStrictEqual(result.clusters.map((c) => [c.cluster, c.namespace]), [
        ["a", undefined],
        ["b", undefined],
        ["c", undefined]
      ])
    }))

  it.effect("two contexts for one cluster: both rejected, other clusters still served", () =>
    Effect.gen(function*() {
      const result = yield* validate(kubeconfig({
        contexts: [{ name: "a", namespace: "x" }, { name: "good" }, { name: "a2", cluster: "a", namespace: "y" }],
        clusters: [{ name: "a", cluster: { server: "https://a" } }, { name: "good", cluster: { server: "https://good" } }],
        users: [{ name: "a", user: { token: SYSTEM_TOKEN } }, { name: "a2", user: { token: SYSTEM_TOKEN } }, {
          name: "good",
          user: { token: SYSTEM_TOKEN }
        }]
      }))
      noSecrets(result)
      assert.deepStrictEqual(result.clusters.map((c) => c.cluster), ["good"])
      assert.strictEqual(result.errors.length, 2)
      const first = result.errors[0]
      assert.strictEqual(first.context, "a")
      assert.include(first.detail, `cluster "a" has 2 contexts`)
      assert.include(first.detail, "contexts[0], contexts[2]")
      // the second one is also a name/cluster mismatch: either way it is rejected
      assert.strictEqual(result.errors[1].context, "a2")
    }))

  it.effect("two contexts with the same name and cluster are both rejected", () =>
    Effect.gen(function*() {
      const result = yield* validate(kubeconfig({
        contexts: [{ name: "a", namespace: "x" }, { name: "a", namespace: "y" }],
        clusters: [{ name: "a", cluster: { server: "https://a" } }],
        users: [{ name: "a", user: { token: SYSTEM_TOKEN } }]
      }))
      noSecrets(result)
      assert.strictEqual(result.clusters.length, 0)
      assert.strictEqual(result.errors.length, 2)
      for (const error of result.errors) assert.include(error.detail, "exactly one context per cluster")
    }))

  it.effect("context name != cluster name is an error for that context only", () =>
    Effect.gen(function*() {
      const result = yield* validate(kubeconfig({
        contexts: [{ name: "ctx", cluster: "cluster-9" }, { name: "ok" }],
        clusters: [{ name: "cluster-9", cluster: { server: "https://c9" } }, { name: "ok", cluster: { server: "https://ok" } }],
        users: [{ name: "cluster-9", user: { token: SYSTEM_TOKEN } }, { name: "ok", user: { token: SYSTEM_TOKEN } }]
      }))
      assert.deepStrictEqual(result.clusters.map((c) => c.cluster), ["ok"])
      const error = onlyError(result)
      assert.strictEqual(error.context, "ctx")
      assert.strictEqual(error.field, "contexts[0].context.cluster")
      assert.include(error.detail, `"ctx"`)
      assert.include(error.detail, `"cluster-9"`)
    }))

  it.effect("missing user entry", () =>
    Effect.gen(function*() {
      const error = onlyError(
        yield* validate(kubeconfig({ contexts: [{ name: "a", user: "nobody" }], users: [{ name: "a", user: {} }] }))
      )
      assert.strictEqual(error.context, "a")
      assert.strictEqual(error.field, "users")
      assert.include(error.detail, `no users entry named "nobody"`)
    }))

  it.effect("missing cluster entry and missing server", () =>
    Effect.gen(function*() {
      const missing = onlyError(yield* validate(kubeconfig({ contexts: [{ name: "a" }], clusters: [] })))
      assert.include(missing.detail, `no clusters entry named "a"`)
      const noServer = onlyError(
        yield* validate(kubeconfig({ contexts: [{ name: "a" }], clusters: [{ name: "a", cluster: {} }] }))
      )
      assert.strictEqual(noServer.field, "clusters[0].cluster.server")
      assert.include(noServer.detail, "no server")
    }))

  it.effect("a document without contexts is one error", () =>
    Effect.gen(function*() {
      const error = onlyError(yield* validate(`apiVersion: v1\nkind: Config\n`))
      assert.strictEqual(error.field, "contexts")
    }))

  it.effect("exec plugins are allowed: command, args, env and apiVersion kept", () =>
    Effect.gen(function*() {
      const spec = only(
        yield* validate(kubeconfig({
          contexts: [{ name: "eks" }],
          users: [{
            name: "eks",
            user: {
              exec: {
                apiVersion: "client.authentication.k8s.io/v1beta1",
                command: "aws",
                args: ["eks", "get-token", "--cluster-name", "prod"],
                env: [{ name: "AWS_PROFILE", value: "prod" }]
              }
            }
          }]
        }))
      )
      assert.deepStrictEqual(spec.auth, {
        _tag: "Exec",
        command: "aws",
        args: ["eks", "get-token", "--cluster-name", "prod"],
        env: { AWS_PROFILE: "prod" },
        apiVersion: "client.authentication.k8s.io/v1beta1"
      })
    }))

  it.effect("exec without apiVersion is rejected", () =>
    Effect.gen(function*() {
      const error = onlyError(
        yield* validate(kubeconfig({ contexts: [{ name: "eks" }], users: [{ name: "eks", user: { exec: { command: "aws" } } }] }))
      )
      assert.strictEqual(error.field, "users[0].user.exec.apiVersion")
    }))

  it.effect("client certificates and insecure-skip-tls-verify are allowed", () =>
    Effect.gen(function*() {
      const spec = only(
        yield* validate(kubeconfig({
          contexts: [{ name: "a" }],
          clusters: [{ name: "a", cluster: { server: "https://a", "insecure-skip-tls-verify": true } }],
          users: [{ name: "a", user: { "client-certificate-data": CERT_DATA, "client-key-data": KEY_DATA } }]
        }))
      )
      assert.isTrue(spec.endpoint.insecureSkipTlsVerify)
      assert.strictEqual(spec.auth._tag, "ClientCertificate")
      if (spec.auth._tag === "ClientCertificate") {
        assert.strictEqual(spec.auth.certificateData, CERT_DATA)
        assert.strictEqual(Redacted.value(spec.auth.keyData), KEY_DATA)
      }
    }))

  it.effect("an empty user entry is anonymous", () =>
    Effect.gen(function*() {
      const spec = only(yield* validate(kubeconfig({ contexts: [{ name: "a" }], users: [{ name: "a", user: {} }] })))
      assert.deepStrictEqual(spec.auth, { _tag: "Anonymous" })
    }))

  it.effect("more than one credential, auth-provider, basic auth and impersonation are rejected", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[Record<string, unknown>, string]> = [
        [{ token: SYSTEM_TOKEN, exec: { command: "x", apiVersion: "v" } }, "users[0].user"],
        [{ "auth-provider": { name: "gcp" } }, "users[0].user.auth-provider"],
        [{ username: "u", password: SYSTEM_TOKEN }, "users[0].user.username"],
        [{ token: SYSTEM_TOKEN, as: "admin" }, "users[0].user.as"],
        [{ "client-certificate-data": CERT_DATA }, "users[0].user.client-key-data"],
        [{ "client-certificate-data": CERT_DATA, "client-key-data": "not base64!" }, "users[0].user.client-key-data"]
      ]
      for (const [user, field] of cases) {
        const error = onlyError(yield* validate(kubeconfig({ contexts: [{ name: "a" }], users: [{ name: "a", user }] })))
        assert.strictEqual(error.field, field, error.message)
      }
    }))

  it.effect("file references are rejected without readFile, telling the operator to inline", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[Record<string, unknown> | undefined, Record<string, unknown>, string, string]> = [
        [undefined, { tokenFile: "/var/run/token" }, "users[0].user.tokenFile", "token"],
        [undefined, { "client-certificate": "/c.pem", "client-key-data": KEY_DATA }, "users[0].user.client-certificate", "client-certificate-data"],
        [undefined, { "client-certificate-data": CERT_DATA, "client-key": "/k.pem" }, "users[0].user.client-key", "client-key-data"],
        [{ server: "https://a", "certificate-authority": "/ca.pem" }, { token: SYSTEM_TOKEN }, "clusters[0].cluster.certificate-authority", "certificate-authority-data"]
      ]
      for (const [cluster, user, field, inline] of cases) {
        const result = yield* validate(kubeconfig({
          contexts: [{ name: "a" }],
          clusters: cluster ? [{ name: "a", cluster }] : undefined,
          users: [{ name: "a", user }]
        }))
        const error = onlyError(result)
        assert.strictEqual(error.field, field)
        assert.include(error.detail, `inline the content as ${inline}`)
      }
    }))

  it.effect("file references are inlined with readFile", () =>
    Effect.gen(function*() {
      const files: Record<string, string> = {
        "/token": `${SYSTEM_TOKEN}\n`,
        "/ca.pem": Buffer.from(CA_DATA, "base64").toString("utf8"),
        "/c.pem": Buffer.from(CERT_DATA, "base64").toString("utf8"),
        "/k.pem": Buffer.from(KEY_DATA, "base64").toString("utf8")
      }
      const read: Array<string> = []
      const readFile = (path: string): Uint8Array => {
        read.push(path)
        if (!(path in files)) throw Object.assign(new Error(`ENOENT ${path}`), { code: "ENOENT" })
        return Buffer.from(files[path], "utf8")
      }
      const result = yield* validate(
        kubeconfig({
          contexts: [{ name: "t" }, { name: "c" }, { name: "missing" }],
          clusters: [
            { name: "t", cluster: { server: "https://t", "certificate-authority": "/ca.pem" } },
            { name: "c", cluster: { server: "https://c" } },
            { name: "missing", cluster: { server: "https://m" } }
          ],
          users: [
            { name: "t", user: { tokenFile: "/token" } },
            { name: "c", user: { "client-certificate": "/c.pem", "client-key": "/k.pem" } },
            { name: "missing", user: { tokenFile: "/nope" } }
          ]
        }),
        readFile
      )
      assert.deepStrictEqual(read, ["/ca.pem", "/token", "/c.pem", "/k.pem", "/nope"])
      const [t, c] = result.clusters
      assert.strictEqual(t.endpoint.certificateAuthorityData, CA_DATA)
      assert.strictEqual(t.auth._tag === "Token" ? Redacted.value(t.auth.token) : undefined, SYSTEM_TOKEN)
      assert.deepStrictEqual(
        c.auth._tag === "ClientCertificate" ? [c.auth.certificateData, Redacted.value(c.auth.keyData)] : [],
        [CERT_DATA, KEY_DATA]
      )
      const error = onlyError(result)
      assert.strictEqual(error.context, "missing")
      assert.include(error.detail, `cannot read file "/nope" (ENOENT)`)
    }))

  it.effect("proxy-url and a non-URL server are rejected", () =>
    Effect.gen(function*() {
      const proxy = onlyError(yield* validate(kubeconfig({
        contexts: [{ name: "a" }],
        clusters: [{ name: "a", cluster: { server: "https://a", "proxy-url": "http://proxy:3128" } }]
      })))
      assert.strictEqual(proxy.field, "clusters[0].cluster.proxy-url")
      const bad = onlyError(yield* validate(kubeconfig({
        contexts: [{ name: "a" }],
        clusters: [{ name: "a", cluster: { server: "not a url" } }]
      })))
      assert.strictEqual(bad.field, "clusters[0].cluster.server")
    }))

  it.effect("malformed YAML fails the whole load with source and line", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(validate(`contexts:\n  - name: a\n   context: {}\n`))
      assert.include(error.message, S)
      assert.match(error.message, /line \d+/)
    }))
})
