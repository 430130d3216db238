/**
 * The controller under trouble: watches that hit 410 Gone, a restart in the
 * middle of a run, and a hung cluster. Nothing may be lost or duplicated:
 * every pod is created exactly once (deterministic names + AlreadyExists),
 * and a pod that already finished is never created again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Tracer } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import {
  completed,
  countBy,
  eventually,
  fast,
  inMemory,
  podCreates,
  podNodes,
  provisioned,
  stoppableController,
  waitFor,
  workflow
} from "./harness.js"
import { submit } from "./fixtures.js"

const remote = { cluster: "cluster-1", namespace: "remote" } as const
const slow = (duration: string) => ({ ...remote, annotations: { "flotilla.dev/simulate-duration": duration } })

/** A tracer that counts finished `Controller.reconcile` spans per workflow key. */
const reconcileCounter = () => {
  const ended = new Map<string, number>()
  class CountingSpan extends Tracer.NativeSpan {
    override end(endTime: bigint, exit: Parameters<Tracer.NativeSpan["end"]>[1]): void {
      super.end(endTime, exit)
      if (this.name !== "Controller.reconcile") return
      const key = String(this.attributes.get("workflow"))
      ended.set(key, (ended.get(key) ?? 0) + 1)
    }
  }
  const tracer = Tracer.make({ span: (options) => new CountingSpan(options) })
  return { tracer, count: (key: string) => Effect.sync(() => ended.get(key) ?? 0) }
}

describe("controller resilience", () => {
  it.live("reconciles that run before the pod's watch event arrives do not create it again", () => {
    const reconciles = reconcileCounter()
    return inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "lagging", ...remote })
        const key = "local/lagging"
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        // cluster-1's watches lag: the controller's informer will not see the pod it creates
        yield* kube.holdWatchEvents("cluster-1", true)
        yield* submit(admin, wf)
        yield* eventually("the pod's creation", Effect.map(podCreates(kube, "cluster-1"), (c) => (c.length > 0 ? c : undefined)))
        // reconcile it again and again while the pod is still unseen
        for (let i = 0; i < 3; i++) {
          const before = yield* reconciles.count(key)
          yield* admin.patch("workflows", "local", "lagging", { metadata: { labels: { poke: String(i) } } })
          yield* eventually(`reconcile after poke ${i}`, Effect.map(reconciles.count(key), (n) => (n > before ? n : undefined)))
        }
        assert.lengthOf(yield* podCreates(kube, "cluster-1"), 1, "one create while the watch lags")
        yield* kube.holdWatchEvents("cluster-1", false)
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        assert.lengthOf(yield* podCreates(kube, "cluster-1"), 1)
      }).pipe(Effect.withTracer(reconciles.tracer))
    )
  })

  it.live("watch 410 Gone (compaction) mid-run: the workflow completes, one pod created per node", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "compacted", steps: [slow("300ms"), slow("300ms"), slow("300ms")] })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* submit(admin, wf)

        const podLists = Effect.map(kube.requests("cluster-1"), (rs) =>
          rs.filter((r) => r.identity === "controller" && r.verb === "list" && r.resource === "pods").length)
        const listsBefore = yield* podLists
        const remoteAdmin = kube.adminClient("cluster-1")
        // For each of the three pods: a change immediately followed by a compaction, before any
        // watcher could read it, so every pod watch on cluster-1 fails with 410 Gone and relists.
        for (let i = 0; i < 3; i++) {
          const pod = yield* eventually(
            `pod s${i}`,
            kube.objects("cluster-1", "pods", "remote").pipe(
              Effect.map((pods) => pods.find((p) => p.metadata.annotations?.["workflows.argoproj.io/node-name"]?.endsWith(`.s${i}`)))
            )
          )
          yield* remoteAdmin.patch("pods", "remote", pod.metadata.name!, { metadata: { annotations: { poke: String(i) } } })
          yield* kube.compact("cluster-1")
        }
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        assert.isAbove(yield* podLists, listsBefore, "the controller relisted after Gone")

        const creates = yield* podCreates(kube, "cluster-1")
        const perName = countBy(creates, (r) => r.name ?? "")
        assert.lengthOf(Object.keys(perName), 3)
        assert.deepStrictEqual(Object.values(perName), [1, 1, 1], JSON.stringify(perName))
        assert.deepStrictEqual(podNodes(done).map((n) => n.phase), ["Succeeded", "Succeeded", "Succeeded"])
      })
    ), 30_000)

  it.live("controller restarted mid-run: completes, one create per pod, a finished pod is never re-created", () =>
    inMemory(() =>
      Effect.gen(function*() {
        // Step 1 runs across the restart; podGC cleans everything up at the end.
        const wf = workflow({ name: "restart", podGC: "OnPodCompletion", steps: [slow("0s"), slow("4s"), slow("0s")] })
        const { admin, kube } = yield* provisioned([wf])

        const { controller: c1, stop } = yield* stoppableController
        yield* submit(admin, wf)
        yield* waitFor(c1, wf, (w) => {
          const nodes = podNodes(w)
          return nodes.some((n) => n.phase === "Succeeded") && nodes.some((n) => n.phase === "Running")
        }, "step 0 done and step 1 running")
        yield* stop
        // Step 0's finished pod is gone by now (podGC OnPodCompletion), or goes while no controller
        // runs: the new controller must take the node's status for it, not create the pod again.
        const s0 = (yield* kube.objects("cluster-1", "pods", "remote")).find((p) => p.metadata.name?.startsWith("restart-s0-"))
        if (s0) yield* kube.adminClient("cluster-1").delete("pods", "remote", s0.metadata.name!)

        const { controller: c2 } = yield* Embedded.startController(fast())
        const done = yield* completed(c2, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        const perName = countBy(yield* podCreates(kube, "cluster-1"), (r) => r.name ?? "")
        assert.lengthOf(Object.keys(perName), 3, JSON.stringify(perName))
        assert.deepStrictEqual(Object.values(perName), [1, 1, 1], JSON.stringify(perName))
        assert.deepStrictEqual(podNodes(done).map((n) => n.phase), ["Succeeded", "Succeeded", "Succeeded"])
        yield* eventually("pods collected", kube.objects("cluster-1", "pods", "remote").pipe(Effect.map((p) => p.length === 0 ? true : undefined)))
      })
    ), 30_000)

  it.live("a hung cluster does not stall workflows on another cluster", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const onHung = [0, 1, 2, 3].map((i) => workflow({ name: `on-hung-${i}`, cluster: "cluster-2", namespace: "remote" }))
        const onGood = workflow({ name: "on-good", cluster: "cluster-1", namespace: "remote" })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([...onHung, onGood]), fast({ workers: 2 }))
        yield* controller.pool.synced
        yield* kube.setHung("cluster-2", true)
        for (const wf of onHung) yield* submit(admin, wf)
        yield* Effect.sleep("100 millis")
        yield* submit(admin, onGood)
        const done = yield* completed(controller, onGood, "8 seconds")
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")

        // The hung cluster's nodes wait (they do not fail), and say why.
        const waiting = yield* waitFor(
          controller,
          onHung[0]!,
          (w) => podNodes(w).some((n) => (n.message ?? "").includes("waiting for cluster")),
          "waiting message"
        )
        assert.isFalse(Embedded.isCompleted(waiting))
        const [node] = podNodes(waiting)
        assert.include(node?.message, "cluster=cluster-2")
        assert.include(node?.message, "Timeout")

        // Once it answers again, its workflows complete too, each pod created once.
        yield* kube.setHung("cluster-2", false)
        for (const wf of onHung) assert.strictEqual(Embedded.phaseOf(yield* completed(controller, wf)), "Succeeded")
        const perName = countBy((yield* podCreates(kube, "cluster-2")).filter((r) => r.outcome === "Success"), (r) => r.name ?? "")
        assert.deepStrictEqual(Object.values(perName), [1, 1, 1, 1], JSON.stringify(perName))
      })
    ), 30_000)

  it.live("an unreachable cluster at create time: the node waits and says why, then runs once the cluster is back", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "waits", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* controller.pool.synced
        yield* kube.setReachable("cluster-1", false)
        yield* submit(admin, wf)
        const waiting = yield* waitFor(
          controller,
          wf,
          (w) => podNodes(w).some((n) => (n.message ?? "").includes("waiting for cluster")),
          "waiting message"
        )
        const [node] = podNodes(waiting)
        assert.include(node?.message, "cluster=cluster-1")
        assert.include(node?.message, "Unavailable")
        assert.isFalse(Embedded.isCompleted(waiting))

        yield* kube.setReachable("cluster-1", true)
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        assert.isUndefined(podNodes(done)[0]?.message, "the waiting message is gone")
        const creates = yield* podCreates(kube, "cluster-1")
        assert.deepStrictEqual(creates.filter((r) => r.outcome === "Success").map((r) => r.name), ["waits"])
      })
    ), 30_000)

  it.live("an unreachable cluster for longer than createTimeout: the node errors naming the cluster", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const wf = workflow({ name: "gives-up", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(
          Embedded.placementOf([wf]),
          fast({ controller: { createTimeout: "600 millis" } })
        )
        yield* controller.pool.synced
        yield* kube.setReachable("cluster-1", false)
        yield* submit(admin, wf)
        const done = yield* completed(controller, wf)
        const [node] = podNodes(done)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, "cluster=cluster-1")
        assert.include(node?.message, "Unavailable")
        assert.isTrue(logs.lines.some((l) => l.includes(`msg="pod creation failed"`) && l.includes("cluster=cluster-1")))
      })
    ), 30_000)
})
