/**
 * A resource template's pod on a node agent acts with a token the agent gets
 * for it through the TokenRequest API, bound to the pod, as a kubelet gets a
 * pod's projected token (src/kubelet/boundToken.ts), here against the
 * in-memory API server's TokenRequest (src/testing/memory/tokens.ts): the
 * resource calls are audited as `system:serviceaccount:<ns>:<sa>`, never as the
 * agent; an agent without `create serviceaccounts/token` cannot lend the pod
 * anything and the pod fails saying so; a bound token dies with its pod.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import { TestClock } from "effect/testing"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import { KubeConnector } from "../../src/kube/api/KubeConnector.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { podServiceAccountClients, refreshDelayMs, tokenRequestsOf, tokenSecondsFor } from "../../src/kubelet/boundToken.js"
import * as LocalKubelet from "../../src/kubelet/LocalKubelet.js"
import { InMemoryKube, type InMemoryKubeShape, type PolicyRule, serverUrl } from "../../src/testing/InMemoryKube.js"
import { bindToken, boundTokenCount } from "../../src/testing/memory/boundTokens.js"
import { makeClusterState } from "../../src/testing/memory/state.js"
import { awaitFinished, cluster, mainTerminated, ns, phaseOf, podFor, setup } from "./helpers.js"

const agent = { name: "flotilla-node-agent", token: "node-agent-token" }
const robot = "system:serviceaccount:work:robot"
const nodeName = "node-a"

/** What scripts/clusters/node-agent-rbac.yaml gives a node agent, with or without TokenRequest. */
const agentRules = (tokens: boolean): ReadonlyArray<PolicyRule> => [
  { verbs: ["get", "list", "watch", "update", "patch", "delete"], resources: ["pods"] },
  { verbs: ["get", "list", "watch", "create", "update", "patch"], resources: ["workflowtaskresults"] },
  ...(tokens ? [{ verbs: ["create" as const], resources: ["serviceaccounts/token" as const] }] : [])
]

const agentConnection: ConnectionSpec = {
  cluster,
  user: agent.name,
  endpoint: { server: serverUrl(cluster) },
  auth: { _tag: "Token", token: Redacted.make(agent.token) }
}

const configMapManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: made-by-pod
data:
  some: value
`

const resourcePod = (name: string): KubeObject => {
  const pod = podFor(name, { resource: { action: "create", manifest: configMapManifest } } as never, { nodeName })
  return { ...pod, spec: { ...(pod.spec as object), serviceAccountName: "robot" } }
}

/** The cluster, the pod's service account (allowed to create ConfigMaps in `work`), and a node agent as in `flotilla kubelet`. */
const startAgent = (tokens: boolean) =>
  Effect.gen(function*() {
    const { client: admin, kube } = yield* setup
    yield* kube.addIdentity(cluster, { ...agent, rules: agentRules(tokens) })
    yield* kube.addIdentity(cluster, {
      name: robot,
      token: "robot-static-token",
      rules: [{ verbs: ["create", "get"], resources: ["configmaps"], namespaces: [ns] }]
    })
    const connector = KubeConnector.of({ connect: kube.connect })
    const client = yield* kube.connect(agentConnection)
    const podServiceAccountClient = yield* podServiceAccountClients(client, agentConnection).pipe(
      Effect.provideService(KubeConnector, connector)
    )
    yield* LocalKubelet.start({ client, nodeName, mode: "simulate", bind: false, podServiceAccountClient })
    return { admin, kube }
  })

describe("resource pods on a node agent: bound service-account tokens (TokenRequest)", () => {
  it.live("the pod's calls are the service account's, with a token the agent requested bound to the pod", () =>
    Effect.gen(function*() {
      const { admin, kube } = yield* startAgent(true)
      yield* admin.create("pods", ns, resourcePod("make-cm"))
      const done = yield* awaitFinished(admin, "make-cm")
      assert.strictEqual(phaseOf(done), "Succeeded", JSON.stringify(mainTerminated(done)))
      const made = yield* kube.objects(cluster, "configmaps", ns)
      assert.deepStrictEqual(made.find((o) => o.metadata.name === "made-by-pod")?.["data"], { some: "value" })
      const requests = yield* kube.requests(cluster)
      // The agent asked for a token for the pod's service account ...
      const tokenRequests = requests.filter((r) => r.resource === "serviceaccounts" && r.subresource === "token")
      assert.deepStrictEqual(tokenRequests.map((r) => [r.identity, r.verb, r.namespace, r.name, r.outcome]), [
        [agent.name, "create", ns, "robot", "Success"]
      ])
      // ... and the pod's calls were made with it: audited as the service account, never as the agent.
      const cmCalls = requests.filter((r) => r.resource === "configmaps")
      assert.deepStrictEqual(cmCalls.map((r) => [r.identity, r.verb, r.outcome]), [[robot, "create", "Success"]])
      assert.isFalse(requests.some((r) => r.identity === agent.name && r.resource === "configmaps"))
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("an agent that may not request tokens fails the pod, saying why, and acts on nothing", () =>
    Effect.gen(function*() {
      const { admin, kube } = yield* startAgent(false)
      yield* admin.create("pods", ns, resourcePod("no-token"))
      const done = yield* awaitFinished(admin, "no-token")
      assert.strictEqual(phaseOf(done), "Failed")
      const message = String(mainTerminated(done)?.["message"])
      assert.include(message, `service account "robot" in namespace "work"`)
      assert.include(message, `cannot create resource "serviceaccounts/token"`)
      assert.include(message, "never acts on a pod's behalf with its own identity")
      const requests = yield* kube.requests(cluster)
      assert.isFalse(requests.some((r) => r.resource === "configmaps"))
      assert.deepStrictEqual(
        requests.filter((r) => r.resource === "serviceaccounts").map((r) => [r.identity, r.allowed, r.outcome]),
        [[agent.name, false, "Forbidden"]]
      )
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("a bound token authenticates while its pod exists, and is refused once the pod is deleted", () =>
    Effect.gen(function*() {
      const { client: admin, kube } = yield* setup
      yield* kube.addIdentity(cluster, { ...agent, rules: agentRules(true) })
      yield* kube.addIdentity(cluster, { name: robot, token: "robot-static-token", rules: [{ verbs: ["get"], resources: ["configmaps"] }] })
      yield* kube.addIdentity(cluster, { name: "system:serviceaccount:work:default", token: "default-static-token", rules: [] })
      const pod = yield* admin.create("pods", ns, { ...resourcePod("holder"), spec: { ...(resourcePod("holder").spec as object), nodeName: "nowhere" } })
      const requests = tokenRequestsOf(kube.clientFor(cluster, agent.token))!
      // Bound to another uid (a pod deleted and made again): refused.
      const stale = yield* Effect.flip(requests.requestToken(ns, "robot", { boundObjectRef: { kind: "Pod", name: "holder", uid: "other" } }))
      assert.strictEqual(stale.reason, "Conflict")
      // For a service account the pod does not run as: refused.
      const wrongSa = yield* Effect.flip(requests.requestToken(ns, "default", { boundObjectRef: { kind: "Pod", name: "holder", uid: pod.metadata.uid } }))
      assert.include(wrongSa.detail, "runs as service account \"robot\"")
      const issued = yield* requests.requestToken(ns, "robot", {
        expirationSeconds: tokenSecondsFor(pod),
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "holder", uid: pod.metadata.uid }
      })
      const asPod = kube.clientFor(cluster, issued.token)
      yield* Effect.flip(asPod.get("configmaps", ns, "absent")).pipe(Effect.map((e) => assert.strictEqual(e.reason, "NotFound")))
      yield* admin.delete("pods", ns, "holder", { gracePeriodSeconds: 0 })
      const refused = yield* Effect.flip(asPod.get("configmaps", ns, "absent"))
      assert.strictEqual(refused.reason, "Unauthorized")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it("asks for an hour, or the pod's active deadline and ten minutes more, at most a day", () => {
    const withDeadline = (s: number | undefined): KubeObject => ({ metadata: {}, spec: s === undefined ? {} : { activeDeadlineSeconds: s } })
    assert.strictEqual(tokenSecondsFor(withDeadline(undefined)), 3600)
    assert.strictEqual(tokenSecondsFor(withDeadline(60)), 3600)
    assert.strictEqual(tokenSecondsFor(withDeadline(7200)), 7800)
    assert.strictEqual(tokenSecondsFor(withDeadline(10 ** 7)), 86_400)
  })

  /** The agent's pods' clients, as `flotilla kubelet` makes them, and a pod `holder` of service account robot bound to `node`. */
  const agentWithPod = (node: string | undefined) =>
    Effect.gen(function*() {
      const { client: admin, kube } = yield* setup
      yield* kube.addIdentity(cluster, { ...agent, rules: agentRules(true) })
      yield* kube.addIdentity(cluster, { name: robot, token: "robot-static-token", rules: [{ verbs: ["get"], resources: ["configmaps"], namespaces: [ns] }] })
      const holder = resourcePod("holder")
      const spec = { ...(holder.spec as Record<string, unknown>) }
      if (node === undefined) delete spec["nodeName"]
      else spec["nodeName"] = node
      const pod = yield* admin.create("pods", ns, { ...holder, spec })
      yield* admin.create("configmaps", ns, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "watched", namespace: ns }, data: {} })
      const agentClient = yield* kube.connect(agentConnection)
      const podClients = yield* podServiceAccountClients(agentClient, agentConnection, nodeName).pipe(
        Effect.provideService(KubeConnector, KubeConnector.of({ connect: kube.connect }))
      )
      return { kube, pod, podClients }
    })

  const tokenRequestsMade = (kube: InMemoryKubeShape) =>
    kube.requests(cluster).pipe(Effect.map((rs) => rs.filter((r) => r.resource === "serviceaccounts" && r.subresource === "token")))

  it.effect("a pod's client outlives its first token: a new one is requested at 80% of its lifetime, for hours", () =>
    Effect.gen(function*() {
      const { kube, pod, podClients } = yield* agentWithPod(nodeName)
      yield* Effect.gen(function*() {
        const client = yield* podClients(pod, ns, "robot")
        // Three hours of a resource template waiting on its condition, a GET every ten minutes.
        for (let minute = 0; minute <= 180; minute += 10) {
          const got = yield* Effect.result(client.get("configmaps", ns, "watched"))
          assert.isTrue(got._tag === "Success", `minute ${minute}: ${got._tag === "Failure" ? got.failure.detail : ""}`)
          yield* TestClock.adjust(Duration.minutes(10))
        }
        const requests = yield* tokenRequestsMade(kube)
        assert.isAtLeast(requests.length, 4)
        assert.isTrue(requests.every((r) => r.identity === agent.name && r.outcome === "Success"))
        const gets = (yield* kube.requests(cluster)).filter((r) => r.resource === "configmaps" && r.verb === "get")
        assert.isTrue(gets.every((r) => r.identity === robot && r.outcome === "Success"))
      }).pipe(Effect.scoped)
      // The pod's run is over: no more tokens are asked for.
      const before = (yield* tokenRequestsMade(kube)).length
      yield* TestClock.adjust(Duration.hours(3))
      assert.strictEqual((yield* tokenRequestsMade(kube)).length, before)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it("refreshes at 80% of the token's lifetime", () => {
    assert.strictEqual(refreshDelayMs(0, 3_600_000), 2_880_000)
    assert.strictEqual(refreshDelayMs(0, 0), 1000)
  })

  it.effect("tokens only for a pod bound to the agent's node, as the service account and namespace its spec names", () =>
    Effect.gen(function*() {
      const refusedFor = (node: string | undefined, namespace: string, account: string) =>
        Effect.gen(function*() {
          const { kube, pod, podClients } = yield* agentWithPod(node)
          const error = yield* Effect.flip(Effect.scoped(podClients(pod, namespace, account)))
          assert.strictEqual(error.reason, "Forbidden")
          // Refused by the agent itself: the API server (which would mint it) is never asked.
          assert.deepStrictEqual(yield* tokenRequestsMade(kube), [])
          return error.detail
        }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer))
      assert.include(yield* refusedFor(undefined, ns, "robot"), `pod "holder" is not bound to a node`)
      assert.include(yield* refusedFor("node-b", ns, "robot"), `bound to node "node-b", not to this agent's node "${nodeName}"`)
      assert.include(yield* refusedFor(nodeName, "kube-system", "robot"), `runs in namespace "work", not "kube-system"`)
      assert.include(yield* refusedFor(nodeName, ns, "default"), `runs as service account "robot", not "default"`)
    }))

  it("the in-memory server forgets the tokens it bound once they are dead", () => {
    const c = makeClusterState("prune", { bookmarkInterval: Duration.seconds(1), maxHistory: 10, maxLog: 10, garbageCollection: false })
    const identity = { name: robot, token: "robot-static-token", rules: [] }
    c.identities.set(robot, identity)
    for (let i = 0; i < 100; i++) {
      bindToken(c, `token-${i}`, { namespace: ns, pod: "gone", uid: "u", identity, expiresAt: i * 1000 + 600_000 }, i * 1000)
    }
    // Each was bound to a pod that is not there: only the newest is still held.
    assert.strictEqual(boundTokenCount(c), 1)
    assert.isFalse(c.tokens.has("token-0"))
    assert.isTrue(c.tokens.has("token-99"))
  })
})
