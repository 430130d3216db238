/**
 * `UserClients` shares one connection per (secret, chosen connection): concurrent first uses
 * connect once, a changed secret gets a new client while the old one closes once idle, idle
 * clients close, and failures (bad secret, refused connection) are never cached. The parsed
 * kubeconfig kept per secret (`ParsedKubeconfigs`, whose bounds have their own tests) is dropped
 * when the secret is found deleted, never kept for a text over 64 KiB, and never serves a
 * changed secret.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Redacted, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as YAML from "yaml"
import type { Kubeconfig } from "../../src/kubeconfig/Kubeconfig.js"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import { KubeConnector } from "../../src/kube/api/KubeConnector.js"
import { KubeError } from "../../src/kube/api/KubeError.js"
import * as ParsedKubeconfigs from "../../src/kube/ParsedKubeconfigs.js"
import { parsedKubeconfigMaxBytes, type UserClientRequest, UserClients, UserCredentialsError } from "../../src/kube/UserClients.js"
import { InMemoryKube, serverUrl } from "../../src/testing/InMemoryKube.js"

const system: ConnectionSpec = {
  cluster: "cluster-1",
  user: "controller",
  endpoint: { server: serverUrl("cluster-1") },
  auth: { _tag: "Anonymous" }
}

const request: UserClientRequest = {
  workflowNamespace: "local",
  workflowName: "wf",
  serviceAccountName: "workflow",
  cluster: "cluster-1",
  namespace: "remote",
  system,
  allowInsecureSkipTlsVerify: false
}

const tokens = { first: "token-first", second: "token-second" } as const

/** What the wrapped connector saw: connection n (from 0) is `opened[n]`; closing it adds n to `closed`. */
interface Connections {
  readonly opened: Array<ConnectionSpec>
  readonly closed: Array<number>
  /** While set, connects wait for it. */
  gate: Deferred.Deferred<void> | undefined
  /** Connects left to refuse (Unavailable). */
  refuse: number
}

/** The in-memory connector, counting connects and closes. */
const countingConnector = (connections: Connections) =>
  Layer.effect(
    KubeConnector,
    Effect.gen(function*() {
      const kube = yield* InMemoryKube
      return KubeConnector.of({
        connect: (spec) =>
          Effect.gen(function*() {
            if (connections.gate !== undefined) yield* Deferred.await(connections.gate)
            if (connections.refuse > 0) {
              connections.refuse--
              return yield* new KubeError({
                reason: "Unavailable",
                cluster: spec.cluster,
                verb: "connect",
                resource: "cluster",
                detail: "connection refused"
              })
            }
            const n = connections.opened.push(spec) - 1
            yield* Effect.addFinalizer(() => Effect.sync(() => void connections.closed.push(n)))
            return yield* kube.connect(spec)
          })
      })
    })
  )

/** Secrets are read from cluster "main" as admin; a user "workflow" may use pods in cluster-1/remote. */
const setUp = Effect.gen(function*() {
  const kube = yield* InMemoryKube
  yield* kube.addCluster("main")
  yield* kube.ensureNamespace("main", "local")
  yield* kube.addCluster("cluster-1")
  yield* kube.ensureNamespace("cluster-1", "remote")
  for (const token of Object.values(tokens)) {
    yield* kube.addIdentity("cluster-1", {
      name: token === tokens.first ? "workflow" : "rotated",
      token,
      rules: [{ verbs: ["*"], resources: ["pods"], namespaces: ["remote"] }]
    })
  }
  yield* writeSecret(tokens.first)
})

/** A workflow kubeconfig (no clusters: the endpoint is always the operator's). */
const userKubeconfig = (token: string, namespace: string) =>
  YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    contexts: [{ name: "cluster-1", context: { cluster: "cluster-1", user: "u", namespace } }],
    users: [{ name: "u", user: { token } }]
  })

/** Creates or replaces local/workflow-kubeconfig (its text made `padding` characters longer by a comment). */
const writeSecret = (token: string, namespace = "remote", padding = 0) =>
  Effect.gen(function*() {
    const admin = (yield* InMemoryKube).adminClient("main")
    const current = yield* admin.get("secrets", "local", "workflow-kubeconfig").pipe(Effect.option)
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        namespace: "local",
        name: "workflow-kubeconfig",
        ...(Option.isSome(current) ? { resourceVersion: current.value.metadata.resourceVersion! } : {})
      },
      data: { value: Buffer.from(userKubeconfig(token, namespace) + (padding > 0 ? `#${"x".repeat(padding - 1)}` : ""), "utf8").toString("base64") }
    }
    if (Option.isNone(current)) yield* admin.create("secrets", "local", secret)
    else yield* admin.replace("secrets", "local", secret)
  })

const secretKey = "local/workflow-kubeconfig"

/** The token a connection was opened with. */
const tokenOf = (spec: ConnectionSpec): string | undefined => spec.auth._tag === "Token" ? Redacted.value(spec.auth.token) : undefined

/** What a test gets: the service and what it was built over. */
interface TestEnv {
  readonly users: UserClients["Service"]
  readonly kube: InMemoryKube["Service"]
  readonly connections: Connections
  /** The parsed kubeconfigs the service keeps. */
  readonly parsed: ParsedKubeconfigs.ParsedKubeconfigs<Kubeconfig>
}

/** A test of `UserClients` (idle time 5 minutes) over a fresh in-memory Kubernetes set up by `setUp`. */
const userClientsTest = (name: string, body: (env: TestEnv) => Effect.Effect<void, unknown, InMemoryKube | Scope.Scope>) =>
  it.effect(name, () => {
    const connections: Connections = { opened: [], closed: [], gate: undefined, refuse: 0 }
    const parsed = ParsedKubeconfigs.make<Kubeconfig>()
    return Effect.gen(function*() {
      yield* setUp
      const kube = yield* InMemoryKube
      const users = yield* UserClients.make(kube.adminClient("main"), { idleTimeToLive: "5 minutes", parsedKubeconfigs: parsed }).pipe(
        Effect.provide(countingConnector(connections))
      )
      yield* body({ users, kube, connections, parsed })
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer))
  })

describe("UserClients", () => {
  userClientsTest("20 concurrent first uses of one secret connect once and share the client", ({ users, connections }) =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      connections.gate = gate
      const fiber = yield* Effect.forkChild(
        Effect.all(Array.from({ length: 20 }, () => users.clientFor(request)), { concurrency: "unbounded" })
      )
      // Let every caller read the secret and reach the connect before it may finish.
      yield* Effect.repeat(Effect.yieldNow, { times: 50 })
      yield* Deferred.succeed(gate, undefined)
      const clients = yield* Fiber.join(fiber)

      assert.lengthOf(connections.opened, 1)
      assert.strictEqual(new Set(clients).size, 1, "one client for all")
      assert.deepStrictEqual(connections.closed, [])
      const pods = yield* clients[0]!.list("pods", "remote")
      assert.deepStrictEqual(pods.items, [])
    }))

  userClientsTest("a changed secret gets a new client; the old one closes once idle, not at once", ({ users, connections }) =>
    Effect.gen(function*() {
      const first = yield* users.clientFor(request)
      // A new resourceVersion with the same content keeps the client.
      yield* writeSecret(tokens.first)
      assert.strictEqual(yield* users.clientFor(request), first)
      assert.lengthOf(connections.opened, 1)

      yield* writeSecret(tokens.second)
      const second = yield* users.clientFor(request)
      assert.notStrictEqual(second, first)
      assert.lengthOf(connections.opened, 2)
      assert.deepStrictEqual(connections.closed, [], "the old client may still be in use")

      yield* TestClock.adjust("3 minutes")
      yield* users.clientFor(request) // keeps the new one alive
      yield* TestClock.adjust("2 minutes")
      assert.deepStrictEqual(connections.closed, [0], "the old client closed after 5 idle minutes")
      yield* TestClock.adjust("3 minutes")
      assert.deepStrictEqual(connections.closed, [0, 1])
    }))

  userClientsTest("a client held in a scope stays open past a rotation and closes when idle after its scope", ({ users, connections }) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const held = yield* users.acquire(request).pipe(Scope.provide(scope))
      yield* writeSecret(tokens.second)
      assert.notStrictEqual(yield* users.clientFor(request), held)
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(connections.closed, [1], "only the unheld new client closed")

      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(connections.closed, [1])
      yield* TestClock.adjust("5 minutes")
      assert.deepStrictEqual(connections.closed, [1, 0])
    }))

  userClientsTest("an idle client is closed after the idle time, and the next use connects again", ({ users, connections }) =>
    Effect.gen(function*() {
      yield* users.clientFor(request)
      yield* TestClock.adjust("4 minutes")
      assert.deepStrictEqual(connections.closed, [])
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(connections.closed, [0])

      yield* users.clientFor(request)
      assert.lengthOf(connections.opened, 2)
    }))

  userClientsTest("a missing or invalid secret fails with its message, and fixing it works on the next call", ({ users, kube, connections }) =>
    Effect.gen(function*() {
      yield* kube.adminClient("main").delete("secrets", "local", "workflow-kubeconfig")
      const missing = yield* Effect.flip(users.clientFor(request))
      assert.instanceOf(missing, UserCredentialsError)
      assert.include(missing.message, "secret local/workflow-kubeconfig")
      assert.include(missing.message, `secret not found: create it in namespace "local"`)
      assert.notStrictEqual(missing.transient, true)

      yield* writeSecret(tokens.first, "elsewhere")
      const wrong = yield* Effect.flip(users.clientFor(request))
      assert.include(wrong.message, `no context for cluster "cluster-1" allows namespace "remote"`)
      assert.notInclude(wrong.message, tokens.first)

      yield* writeSecret(tokens.first)
      yield* users.clientFor(request)
      assert.lengthOf(connections.opened, 1)
    }))

  userClientsTest("the parsed kubeconfig kept per secret never outlives the secret: deleted fails at once, changed text is parsed again", ({ users, kube, connections }) =>
    Effect.gen(function*() {
      yield* users.clientFor(request)
      yield* users.clientFor(request)
      yield* kube.adminClient("main").delete("secrets", "local", "workflow-kubeconfig")
      const missing = yield* Effect.flip(users.clientFor(request))
      assert.include(missing.message, "secret not found")

      // the same text again: the kept parse and the open client serve it
      yield* writeSecret(tokens.first)
      yield* users.clientFor(request)
      assert.lengthOf(connections.opened, 1)

      // new text that no longer allows the namespace: refused, not served from the kept parse
      yield* writeSecret(tokens.first, "elsewhere")
      const wrong = yield* Effect.flip(users.clientFor(request))
      assert.include(wrong.message, `no context for cluster "cluster-1" allows namespace "remote"`)

      // and text that no longer parses is refused too
      const admin = kube.adminClient("main")
      const current = yield* admin.get("secrets", "local", "workflow-kubeconfig")
      yield* admin.replace("secrets", "local", { ...current, data: { value: Buffer.from("contexts: [", "utf8").toString("base64") } })
      const broken = yield* Effect.flip(users.clientFor(request))
      assert.instanceOf(broken, UserCredentialsError)
      yield* writeSecret(tokens.first)
      yield* users.clientFor(request)
      assert.lengthOf(connections.opened, 1)
    }))

  userClientsTest("a changed secret's new token is used at once (its text is parsed again, not served from the kept parse)", ({ users, connections, parsed }) =>
    Effect.gen(function*() {
      yield* users.clientFor(request)
      yield* writeSecret(tokens.second)
      yield* users.clientFor(request)
      assert.deepStrictEqual(connections.opened.map(tokenOf), [tokens.first, tokens.second])
      yield* writeSecret(tokens.first)
      yield* users.clientFor(request)
      assert.deepStrictEqual(connections.opened.map(tokenOf), [tokens.first, tokens.second], "the first client is still open")
      assert.deepStrictEqual(parsed.keys(), [secretKey])
    }))

  userClientsTest("a secret found deleted drops its kept parse", ({ users, kube, parsed }) =>
    Effect.gen(function*() {
      yield* users.clientFor(request)
      assert.deepStrictEqual(parsed.keys(), [secretKey])
      yield* kube.adminClient("main").delete("secrets", "local", "workflow-kubeconfig")
      yield* Effect.flip(users.clientFor(request))
      assert.deepStrictEqual(parsed.keys(), [])
      assert.strictEqual(parsed.totalBytes(), 0)
    }))

  userClientsTest("a kubeconfig text over 64 KiB serves its requests but is never kept", ({ users, connections, parsed }) =>
    Effect.gen(function*() {
      yield* users.clientFor(request)
      assert.deepStrictEqual(parsed.keys(), [secretKey])
      yield* writeSecret(tokens.second, "remote", parsedKubeconfigMaxBytes)
      yield* users.clientFor(request)
      yield* users.clientFor(request)
      assert.deepStrictEqual(connections.opened.map(tokenOf), [tokens.first, tokens.second])
      assert.deepStrictEqual(parsed.keys(), [], "neither the large text nor the former one is kept")
      // back to a small text: kept again
      yield* writeSecret(tokens.second)
      yield* users.clientFor(request)
      assert.deepStrictEqual(parsed.keys(), [secretKey])
    }))

  userClientsTest("a refused connection is not cached: every waiting caller gets the error, the next call connects", ({ users, connections }) =>
    Effect.gen(function*() {
      connections.refuse = 1
      const gate = yield* Deferred.make<void>()
      connections.gate = gate
      const fiber = yield* Effect.forkChild(
        Effect.all(Array.from({ length: 5 }, () => Effect.flip(users.clientFor(request))), { concurrency: "unbounded" })
      )
      yield* Effect.repeat(Effect.yieldNow, { times: 50 })
      yield* Deferred.succeed(gate, undefined)
      const errors = yield* Fiber.join(fiber)
      assert.lengthOf(errors, 5)
      for (const e of errors) {
        assert.strictEqual(e.transient, true)
        assert.include(e.message, "connection refused")
      }
      assert.strictEqual(connections.refuse, 0, "one connect for all five")

      yield* users.clientFor(request)
      assert.lengthOf(connections.opened, 1)
    }))

  userClientsTest("invalidate closes a secret's idle clients now and held ones when released", ({ users, connections }) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const held = yield* users.acquire(request).pipe(Scope.provide(scope))
      yield* users.clientFor({ ...request, cluster: "cluster-1", namespace: "remote" })
      yield* users.invalidate("local", "other-kubeconfig")
      assert.deepStrictEqual(connections.closed, [])

      yield* users.invalidate("local", "workflow-kubeconfig")
      assert.deepStrictEqual(connections.closed, [], "still held")
      const fresh = yield* users.clientFor(request)
      assert.notStrictEqual(fresh, held)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(connections.closed, [0])

      yield* users.invalidate("local", "workflow-kubeconfig")
      assert.deepStrictEqual(connections.closed, [0, 1])
    }))

  userClientsTest("closing the service closes every client", ({ kube, connections }) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const users = yield* UserClients.make(kube.adminClient("main"), { idleTimeToLive: "1 hour" }).pipe(
        Scope.provide(scope),
        Effect.provide(countingConnector(connections))
      )
      yield* users.clientFor(request)
      assert.lengthOf(connections.opened, 1)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(connections.closed, [0])
    }))
})
