/**
 * The controller's own cluster configuration (secret argo/argo-kubeconfig):
 * unknown clusters, malformed documents and runtime changes. A broken
 * cluster entry must never take the local cluster or the other clusters down.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import {
  completed,
  eventually,
  fast,
  inMemory,
  messageOf,
  podCreates,
  podNodes,
  podsOfWorkflow,
  podRunning,
  provisioned,
  putSystemKubeconfig,
  systemKubeconfig,
  waitFor,
  workflow,
  yaml
} from "./harness.js"
import { submit } from "./fixtures.js"

describe("argo-kubeconfig problems", () => {
  it.live("a template naming a cluster absent from argo-kubeconfig: node error names the cluster and the secret", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const good = workflow({ name: "good", cluster: "cluster-1", namespace: "remote" })
        const bad = workflow({ name: "unknown-cluster", cluster: "cluster-9", namespace: "remote" })
        // Provisioned for the good workflow only: cluster-9 exists nowhere.
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([good]), fast())
        yield* submit(admin, bad)
        yield* submit(admin, good)
        const failed = yield* completed(controller, bad)
        assert.strictEqual(Embedded.phaseOf(yield* completed(controller, good)), "Succeeded")

        const [node] = podNodes(failed)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, `cluster "cluster-9"`)
        assert.include(node?.message, "argo/argo-kubeconfig")
        assert.include(messageOf(failed), "cluster-9")
        assert.lengthOf(yield* podsOfWorkflow(kube, "unknown-cluster"), 0)
        assert.isTrue(logs.lines.some((l) => l.includes("pod creation failed") && l.includes("cluster=cluster-9")))
      })
    ), 30_000)

  it.live("malformed argo-kubeconfig YAML: local workflows still run, remote ones error naming the secret", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const local = workflow({ name: "local-only" })
        const remote = workflow({ name: "remote", cluster: "cluster-1", namespace: "remote" })
        const { admin } = yield* provisioned([local, remote], {
          systemKubeconfig: "apiVersion: v1\ncontexts: [\n  - name: cluster-1\n    token: s3cr3t-do-not-log\n"
        })
        const { controller } = yield* Embedded.startController(fast())

        yield* submit(admin, local)
        yield* submit(admin, remote)
        assert.strictEqual(Embedded.phaseOf(yield* completed(controller, local)), "Succeeded")
        const failed = yield* completed(controller, remote)
        const [node] = podNodes(failed)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, `cluster "cluster-1"`)
        assert.include(node?.message, "secret argo/argo-kubeconfig")
        assert.include(node?.message, "malformed YAML")
        assert.notInclude(JSON.stringify(failed), "s3cr3t-do-not-log")
        assert.isTrue(
          logs.lines.some((l) => l.includes(`msg="invalid cluster configuration"`) && l.includes("argo/argo-kubeconfig")),
          logs.lines.join("\n")
        )
        assert.isFalse(logs.lines.some((l) => l.includes("s3cr3t-do-not-log")), "no secret in the log")
      })
    ), 30_000)

  it.live("one bad context among good ones: the good cluster and the local one keep working", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const local = workflow({ name: "local-only" })
        const onGood = workflow({ name: "on-good", cluster: "cluster-1", namespace: "remote" })
        const onBad = workflow({ name: "on-bad", cluster: "cluster-2", namespace: "remote" })
        // cluster-2's context points at a user entry that does not exist.
        const doc = {
          apiVersion: "v1",
          kind: "Config",
          clusters: [
            { name: "cluster-1", cluster: { server: "memory://cluster-1" } },
            { name: "cluster-2", cluster: { server: "memory://cluster-2" } }
          ],
          contexts: [
            { name: "cluster-1", context: { cluster: "cluster-1", user: "cluster-1", namespace: "remote" } },
            { name: "cluster-2", context: { cluster: "cluster-2", user: "nobody", namespace: "remote" } }
          ],
          users: [{ name: "cluster-1", user: { token: Embedded.tokens.controller } }]
        }
        const { admin } = yield* provisioned([local, onGood, onBad], { systemKubeconfig: yaml(doc) })
        const { controller, kube } = yield* Embedded.startController(fast())

        for (const wf of [local, onGood, onBad]) yield* submit(admin, wf)
        assert.strictEqual(Embedded.phaseOf(yield* completed(controller, local)), "Succeeded")
        assert.strictEqual(Embedded.phaseOf(yield* completed(controller, onGood)), "Succeeded")
        const failed = yield* completed(controller, onBad)
        const [node] = podNodes(failed)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, `cluster "cluster-2"`)
        assert.include(node?.message, "argo/argo-kubeconfig")
        assert.include(node?.message, `no users entry named "nobody"`)
        assert.lengthOf(yield* podCreates(kube, "cluster-2"), 0)
        assert.isTrue(logs.lines.some((l) => l.includes(`msg="invalid cluster configuration"`) && l.includes("cluster=cluster-2")))
        assert.isTrue(logs.lines.some((l) => l.includes("level=info msg=cluster cluster=cluster-1 managedNamespace=remote")))
      })
    ), 30_000)

  it.live("argo-kubeconfig changed at runtime: a new cluster is picked up and used", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const first = workflow({ name: "first", cluster: "cluster-1", namespace: "remote" })
        const later = workflow({ name: "later", cluster: "cluster-2", namespace: "remote" })
        const { admin } = yield* provisioned([first, later], {
          systemKubeconfig: systemKubeconfig([{ name: "cluster-1", namespace: "remote" }])
        })
        const { controller } = yield* Embedded.startController(fast())

        // The start-up lines operators grep for.
        assert.isTrue(logs.lines.some((l) => l.includes("level=info msg=cluster cluster=cluster-1 managedNamespace=remote")), logs.lines.join("\n"))
        assert.isTrue(logs.lines.some((l) => l.includes("level=info msg=cluster cluster=@in-cluster")))
        assert.isFalse(logs.lines.some((l) => l.includes("cluster=cluster-2")))

        yield* submit(admin, first)
        assert.strictEqual(Embedded.phaseOf(yield* completed(controller, first)), "Succeeded")

        yield* putSystemKubeconfig(
          admin,
          systemKubeconfig([{ name: "cluster-1", namespace: "remote" }, { name: "cluster-2", namespace: "remote" }])
        )
        yield* eventually(
          "cluster-2 log line",
          Effect.sync(() => logs.lines.find((l) => l.includes("level=info msg=cluster cluster=cluster-2 managedNamespace=remote")))
        )
        yield* submit(admin, later)
        const done = yield* completed(controller, later)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        const creates = yield* podCreates(yield* InMemoryKube, "cluster-2")
        assert.deepStrictEqual(creates.map((r) => [r.identity, r.outcome]), [["workflow", "Success"]])
        // cluster-1 was left alone by the reload (not rebuilt: one cluster line for it).
        assert.lengthOf(logs.lines.filter((l) => l.includes("msg=cluster cluster=cluster-1 ")), 1)
      })
    ), 30_000)

  it.live("a cluster rebuilt after a credential change is not reconciled against its empty new cache", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({
          name: "rotated",
          cluster: "cluster-1",
          namespace: "remote",
          // (long enough to be seen Running: a pod's start is written up to StatusWriter's placementHoldMs late)
          annotations: { "flotilla.dev/simulate-duration": "3s" }
        })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* submit(admin, wf)
        yield* waitFor(controller, wf, podRunning, "pod running")

        // Rotate the controller's token for cluster-1; the rebuilt cluster's first lists fail for a while.
        yield* kube.addIdentity("cluster-1", {
          name: "controller-rotated",
          token: "controller-token-2",
          rules: [{ verbs: ["list", "watch", "delete"], resources: ["pods", "workflowtaskresults"], namespaces: ["remote"] }]
        })
        yield* kube.failNext("cluster-1", "list", "*", "Unavailable", 6)
        yield* putSystemKubeconfig(admin, systemKubeconfig([{ name: "cluster-1", namespace: "remote", token: "controller-token-2" }]))
        yield* eventually(
          "rebuilt informers listing",
          kube.requests("cluster-1").pipe(Effect.map((rs) => rs.some((r) => r.identity === "controller-rotated") ? true : undefined))
        )
        for (let i = 0; i < 5; i++) {
          yield* controller.enqueue("local", "rotated")
          yield* Effect.sleep("40 millis")
        }
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        assert.lengthOf(yield* podCreates(kube, "cluster-1"), 1)
      })
    ), 30_000)

  it.live("controller not allowed to watch pods in a cluster: the workflow says so, and runs once RBAC is fixed", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const wf = workflow({ name: "rbac", cluster: "cluster-1", namespace: "remote" })
        const placement = Embedded.placementOf([wf])
        yield* Embedded.provision(placement)
        const kube = yield* InMemoryKube
        const rules = [{ verbs: ["list", "watch", "delete"] as const, resources: ["pods", "workflowtaskresults"] as const, namespaces: ["remote"] }]
        yield* kube.revoke("cluster-1", "controller")
        yield* kube.grant("cluster-1", "controller", [{ verbs: ["list", "watch", "delete"], resources: ["workflowtaskresults"], namespaces: ["remote"] }])
        yield* Embedded.startKubelets(placement, fast())
        const { admin, controller } = yield* Embedded.startController(fast())
        yield* submit(admin, wf)

        const stuck = yield* waitFor(controller, wf, (w) => messageOf(w).includes("Forbidden"), "a message about the cluster")
        assert.include(messageOf(stuck), `cluster "cluster-1"`)
        assert.include(messageOf(stuck), `cannot list resource "pods"`)
        assert.lengthOf(podNodes(stuck), 0, "nothing is decided against a cache that was never filled")
        assert.isTrue(logs.lines.some((l) => l.includes(`msg="cluster unavailable"`) && l.includes("cluster=cluster-1") && l.includes("reason=Forbidden")))

        yield* kube.grant("cluster-1", "controller", rules.map((r) => ({ ...r, verbs: [...r.verbs], resources: [...r.resources] })))
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        assert.strictEqual(messageOf(done), "")
      })
    ), 30_000)
})
