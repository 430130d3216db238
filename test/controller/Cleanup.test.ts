/**
 * Remote pods are cleaned up: podGC on remote templates (and the finalizer
 * released afterwards, for good), the finalizer held while the remote cluster
 * is unreachable, and the orphan sweep.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { finalizerName } from "../../src/controller/FinalizerLease.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import {
  eventually,
  fast,
  inMemory,
  podCreates,
  podRunning,
  provisioned,
  stoppableController,
  waitFor,
  workflow
} from "./harness.js"
import { submit } from "./fixtures.js"
import * as PodProof from "../../src/controller/PodProof.js"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"

/**
 * A pod as the controller makes it for a workflow that is gone: its executor names the workflow's
 * uid, and it carries the controller's proof (key from the secret the controller made).
 */
const madeByController = (admin: KubeClientShape, name: string, labels: Record<string, string>, annotations: Record<string, string>, proof: boolean) =>
  Effect.gen(function*() {
    const secret = yield* admin.get("secrets", "argo", PodProof.keySecretName)
    const key = PodProof.fromKey(Buffer.from(String((secret["data"] as Record<string, string>)["key"]), "base64"))
    const uid = `uid-of-${name}`
    const nodeId = name
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: "remote",
        labels,
        annotations: { ...annotations, "workflows.argoproj.io/node-id": nodeId }
      },
      spec: {
        containers: [
          { name: "wait", image: "argoexec", env: [{ name: "ARGO_WORKFLOW_UID", value: uid }] },
          { name: "main", image: "busybox" }
        ]
      }
    }
    return proof ? PodProof.withProof(pod, key.sign({ workflowUid: uid, nodeId, cluster: "cluster-1", namespace: "remote", podName: name }, pod)) : pod
  })

const remote = { cluster: "cluster-1", namespace: "remote" } as const
const hasFinalizer = (wf: { metadata: { finalizers?: ReadonlyArray<string> } } | undefined) =>
  (wf?.metadata.finalizers ?? []).includes(finalizerName)

describe("remote pod clean-up", () => {
  it.live("podGC OnPodCompletion on a remote template: pod deleted, finalizer released, workflow kept", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "gc", podGC: "OnPodCompletion", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* submit(admin, wf)
        yield* waitFor(controller, wf, hasFinalizer, "finalizer added")
        const done = yield* waitFor(controller, wf, (w) => Embedded.isCompleted(w) && !hasFinalizer(w), "completion and release")
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        assert.lengthOf(yield* kube.objects("cluster-1", "pods", "remote"), 0)
        assert.isTrue((yield* kube.requests("cluster-1")).some((r) => r.verb === "delete" && r.resource === "pods" && r.identity === "controller"))

        // Released for good: no re-adding and re-removing the finalizer on later reconciles.
        const before = (yield* kube.history("main")).filter((c) => c.resource === "workflows" && c.name === "gc").length
        yield* controller.enqueue("local", "gc")
        yield* Effect.sleep("800 millis")
        const after = (yield* kube.history("main")).filter((c) => c.resource === "workflows" && c.name === "gc").length
        const stored = yield* admin.get("workflows", "local", "gc")
        assert.isFalse(hasFinalizer(stored), "finalizer came back")
        assert.strictEqual(after, before, "the workflow kept being rewritten after completion")
        assert.lengthOf(yield* podCreates(kube, "cluster-1"), 1)
      })
    ), 30_000)

  it.live("workflow deleted while its cluster is unreachable: finalizer held, released once the cluster is back", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const wf = workflow({ name: "stranded", ...remote, annotations: { "flotilla.dev/simulate-duration": "60s" } })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* submit(admin, wf)
        yield* waitFor(controller, wf, (w) => podRunning(w), "pod running")

        yield* kube.setReachable("cluster-1", false)
        yield* admin.delete("workflows", "local", "stranded")
        yield* waitFor(controller, wf, (w) => w?.metadata.deletionTimestamp !== undefined, "deletion seen")
        // Several release attempts (50-300 ms backoff) fail meanwhile; the finalizer must stay.
        yield* eventually("holding finalizer logged", Effect.sync(() => logs.lines.find((l) => l.includes(`msg="holding finalizer"`))))
        yield* Effect.sleep("1 second")
        const held = yield* admin.get("workflows", "local", "stranded")
        assert.isDefined(held.metadata.deletionTimestamp)
        assert.include(held.metadata.finalizers ?? [], finalizerName)
        assert.lengthOf(yield* kube.objects("cluster-1", "pods", "remote"), 1)

        yield* kube.setReachable("cluster-1", true)
        yield* waitFor(controller, wf, (w) => w === undefined, "finalizer release", "15 seconds")
        assert.lengthOf(yield* kube.objects("cluster-1", "pods", "remote"), 0)
        assert.isTrue(
          (yield* kube.requests("cluster-1")).some((r) =>
            r.verb === "delete" && r.resource === "pods" && r.identity === "controller" && r.outcome === "Success"
          )
        )
      })
    ), 30_000)

  it.live("orphan sweep deletes pods of workflows that no longer exist, and only those", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const live = workflow({ name: "alive", ...remote, annotations: { "flotilla.dev/simulate-duration": "60s" } })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([live]), fast())
        yield* submit(admin, live)
        yield* waitFor(controller, live, podRunning, "pod running")

        const remoteAdmin = kube.adminClient("cluster-1")
        const pod = (name: string, workflowName: string, cluster: string, proof = true) =>
          madeByController(admin, name, { "workflows.argoproj.io/workflow": workflowName, "workflows.argoproj.io/cluster": cluster }, {
            "workflows.argoproj.io/workflow-namespace": "local",
            "flotilla.dev/simulate-duration": "60s"
          }, proof)
        yield* remoteAdmin.create("pods", "remote", yield* pod("ghost-1", "ghost", "main"))
        // Made by the controller of another cluster: not ours to delete.
        yield* remoteAdmin.create("pods", "remote", yield* pod("foreign-1", "ghost", "other"))
        // Someone's pod labelled (by anyone who may patch pods) to claim a workflow that is gone: not ours either.
        yield* remoteAdmin.create("pods", "remote", yield* pod("relabelled-1", "ghost", "main", false))
        const view = yield* controller.pool.get("cluster-1")
        yield* eventually("orphan in the cache", view.pods.get("remote", "relabelled-1").pipe(Effect.map(Option.getOrUndefined)))

        const deleted = yield* controller.sweepOrphans
        assert.strictEqual(deleted, 1)
        const names = (yield* kube.objects("cluster-1", "pods", "remote")).map((p) => p.metadata.name).sort()
        assert.deepStrictEqual(names, ["alive", "foreign-1", "relabelled-1"])
        // A second sweep finds nothing more (the live workflow's pod is kept).
        yield* eventually("cache updated", view.pods.get("remote", "ghost-1").pipe(Effect.map((o) => Option.isNone(o) ? true : undefined)))
        assert.strictEqual(yield* controller.sweepOrphans, 0)
      })
    ), 30_000)

  it.live("a transient error while taking up a deleted workflow's finalizer is retried (no stuck finalizer)", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "deleted-while-down", ...remote })
        const { admin, kube } = yield* provisioned([wf])

        const { controller: c1, stop } = yield* stoppableController
        yield* submit(admin, wf)
        yield* waitFor(c1, wf, (w) => Embedded.isCompleted(w) && hasFinalizer(w), "completion with the finalizer held")
        yield* stop

        // Deleted while no controller runs; the next one's first finalizer reads fail.
        yield* admin.delete("workflows", "local", "deleted-while-down")
        yield* kube.failNext("main", "get", "workflows", "Unavailable", 4)
        const { controller: c2 } = yield* Embedded.startController(fast())
        yield* waitFor(c2, wf, (w) => w === undefined, "finalizer release", "10 seconds")
        assert.lengthOf(yield* kube.objects("cluster-1", "pods", "remote"), 0)
      })
    ), 30_000)

  it.live("a namespaced controller's orphan sweep leaves pods of other namespaces' workflows alone", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "mine", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(
          Embedded.placementOf([wf]),
          fast({ configData: { namespace: "local" } })
        )
        assert.strictEqual(controller.config.namespace, "local")
        const remoteAdmin = kube.adminClient("cluster-1")
        const pod = (name: string, workflowNamespace: string) =>
          madeByController(admin, name, { "workflows.argoproj.io/workflow": "gone", "workflows.argoproj.io/cluster": "main" }, {
            "workflows.argoproj.io/workflow-namespace": workflowNamespace,
            "flotilla.dev/simulate-duration": "60s"
          }, true)
        yield* remoteAdmin.create("pods", "remote", yield* pod("ours", "local"))
        // Belongs to a workflow in a namespace this controller does not manage (nor see).
        yield* remoteAdmin.create("pods", "remote", yield* pod("theirs", "elsewhere"))
        const view = yield* controller.pool.get("cluster-1")
        yield* eventually("pods cached", view.pods.list().pipe(Effect.map((ps) => ps.length === 2 ? true : undefined)))
        assert.strictEqual(yield* controller.sweepOrphans, 1)
        assert.deepStrictEqual((yield* kube.objects("cluster-1", "pods", "remote")).map((p) => p.metadata.name), ["theirs"])
      })
    ), 30_000)
})
