/**
 * The controller's cluster trigger skips pod updates that change nothing a reconcile reads
 * (significantChange.ts), and still queues the workflow for one that does. The work queue is
 * the controller's own with every `add` recorded; pool changes of one cluster are handled one after
 * another in the order they come, so a change made afterwards to a pod of no workflow, labelled
 * for a workflow name used once (`ghost-N`), is a barrier: once that name is queued, every change
 * before it has been handled.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Layer, Option } from "effect"
import { Controller, partsLayer } from "../../src/controller/Controller.js"
import * as WorkQueue from "../../src/controller/WorkQueue.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { eventually, fastController, inMemory, workflow } from "./harness.js"

/** The controller's queue, each added key recorded, `onAdd` told of it. */
const recordingQueue = (adds: Array<string>, onAdd: (key: string) => Effect.Effect<void>) =>
  Layer.effect(
    WorkQueue.WorkQueue,
    Effect.gen(function*() {
      const queue = yield* WorkQueue.makeWith()
      return WorkQueue.WorkQueue.of({
        ...queue,
        add: (key) => Effect.sync(() => void adds.push(key)).pipe(Effect.andThen(onAdd(key)), Effect.andThen(queue.add(key)))
      })
    })
  )

const completedPod = (admin: KubeClientShape, name: string) =>
  eventually(`${name}'s pod labelled completed`, Effect.gen(function*() {
    const pods = (yield* admin.list("pods", "local")).items
    return pods.find((p) => p.metadata.labels?.["workflows.argoproj.io/workflow"] === name &&
      p.metadata.labels?.["workflows.argoproj.io/completed"] === "true")
  }))

describe("Controller: pod updates that change nothing a reconcile reads", () => {
  it.live("do not queue their workflow; a significant one does", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const a = workflow({ name: "a" })
        const placement = Embedded.placementOf([a])
        yield* Embedded.provision(placement)
        yield* Embedded.startKubelets(placement, { mode: "simulate" })
        const kube = yield* InMemoryKube
        const admin = kube.adminClient(Embedded.localClusterName)

        const adds: Array<string> = []
        let marks = 0
        let barrier = yield* Deferred.make<void>()
        const onAdd = (key: string) => key === `local/ghost-${marks}` ? Deferred.succeed(barrier, undefined).pipe(Effect.asVoid) : Effect.void
        const options = {
          ...fastController,
          localClient: kube.clientFor(Embedded.localClusterName, Embedded.tokens.controller),
          localSpec: Embedded.controllerSpec(Embedded.localClusterName),
          systemNamespace: Embedded.systemNamespace
        }
        const context = yield* Layer.build(
          Layer.fresh(Controller.layerFromParts).pipe(Layer.provide(Layer.merge(partsLayer(options), recordingQueue(adds, onAdd))))
        )
        const controller = Context.get(context, Controller)

        yield* admin.create("workflows", "local", a)
        yield* Embedded.awaitWorkflow(controller, "local", "a", Embedded.isCompleted)
        const podA = yield* completedPod(admin, "a")

        // a pod of no workflow, on a node no kubelet runs: only the test changes it
        yield* admin.create("pods", "local", {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "ghost", namespace: "local", labels: { "workflows.argoproj.io/workflow": "ghost-0", "workflows.argoproj.io/cluster": "main" } },
          spec: { nodeName: "elsewhere", containers: [{ name: "main", image: "busybox" }] }
        })
        /** Relabels the ghost pod for a new name and waits until that name is queued: every change before it was handled. */
        const barrierThrough = Effect.gen(function*() {
          barrier = yield* Deferred.make<void>()
          marks++
          yield* admin.patch("pods", "local", "ghost", { metadata: { labels: { "workflows.argoproj.io/workflow": `ghost-${marks}` } } })
          yield* Deferred.await(barrier)
        })
        const addsOfA = () => adds.filter((k) => k === "local/a").length

        // settle: barriers until one passes with no add of the workflow (its last rounds are done)
        let before = -1
        while (before !== addsOfA()) {
          before = addsOfA()
          yield* barrierThrough
        }

        // insignificant: the kubelet rewrites readiness conditions and the host IP
        const current = yield* admin.get("pods", "local", podA.metadata.name!)
        const status = (current["status"] ?? {}) as Record<string, unknown>
        yield* admin.replace("pods", "local", {
          ...current,
          status: { ...status, hostIP: "10.9.9.9", conditions: [{ type: "Ready", status: "False", reason: "PodCompleted" }] }
        })
        yield* barrierThrough
        assert.strictEqual(addsOfA(), before, "an insignificant update queued the workflow")

        // significant: an annotation (a node message)
        const now = yield* admin.get("pods", "local", podA.metadata.name!)
        assert.notStrictEqual(now.metadata.resourceVersion, current.metadata.resourceVersion, "the insignificant update was not stored")
        yield* admin.replace("pods", "local", {
          ...now,
          metadata: { ...now.metadata, annotations: { ...now.metadata.annotations, "workflows.argoproj.io/node-message": "x" } }
        })
        yield* barrierThrough
        assert.strictEqual(addsOfA(), before + 1, "a significant update did not queue the workflow")
        assert.isTrue(Option.isSome(yield* controller.workflows.get("local", "a")))
      })
    ))
})
