import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { PodCompleter, type PodCompleterOptions } from "../../bench/podCompleter.js"
import { KubeClient, type KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const cluster = "bench-cluster"

const workflowObject = (name: string, namespace: string): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace },
  spec: { entrypoint: "main", templates: [{ name: "main", container: { image: "busybox" } }] }
})

/** A pod as upstream's controller makes it (owner: its Workflow; labels and node-id annotation), made Running as kwok would. */
const runningPod = Effect.fnUntraced(function*(
  client: KubeClientShape,
  namespace: string,
  name: string,
  workflow: KubeObject,
  options: { readonly labelled?: boolean; readonly instanceId?: string } = {}
) {
  const labels: Record<string, string> = {
    ...(options.labelled === false ? {} : { "workflows.argoproj.io/workflow": workflow.metadata.name!, "workflows.argoproj.io/completed": "false" }),
    ...(options.instanceId !== undefined ? { "workflows.argoproj.io/controller-instanceid": options.instanceId } : {})
  }
  yield* client.create("pods", namespace, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      labels,
      annotations: { "workflows.argoproj.io/node-id": `${name}-node`, "workflows.argoproj.io/node-name": `${name}-node` },
      ownerReferences: [{
        apiVersion: "argoproj.io/v1alpha1",
        kind: "Workflow",
        name: workflow.metadata.name!,
        uid: workflow.metadata.uid!,
        controller: true,
        blockOwnerDeletion: true
      }]
    },
    spec: {
      nodeName: "kwok-node-0",
      initContainers: [{ name: "init", image: "argoexec" }],
      containers: [{ name: "wait", image: "argoexec" }, { name: "main", image: "busybox" }]
    }
  })
  return yield* client.patch("pods", namespace, name, { status: { phase: "Running" } }, { subresource: "status" })
})

const phaseOf = (pod: KubeObject | undefined) => (pod?.status as { phase?: string } | undefined)?.phase

/** Runs `body` with a completer over the cluster's admin client, started after the setup above it. */
const withCompleter = <A, E>(
  client: KubeClientShape,
  options: PodCompleterOptions,
  body: Effect.Effect<A, E, PodCompleter>
) => body.pipe(Effect.provide(PodCompleter.layer(options).pipe(Layer.provide(Layer.succeed(KubeClient, client)))))

/**
 * Moves the test clock in small steps until `fiber` is done: the completer's
 * sleeps and retries start on its own fibres, at a moment the test cannot see.
 */
const advanceUntilDone = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const exit = fiber.pollUnsafe()
      if (exit !== undefined) return yield* exit
      yield* TestClock.adjust("50 millis")
    }
    return yield* Effect.die(new Error("still not done after 10 s of test clock"))
  })

/** Until the completer's watch is open, so what follows reaches it as watch events, not in its list. */
const watching = (kube: InMemoryKube["Service"]) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      if ((yield* kube.openWatches(cluster)) > 0) return
      yield* Effect.yieldNow
    }
    return yield* Effect.die(new Error("the completer never opened its watch"))
  })

const setup = Effect.gen(function*() {
  const kube = yield* InMemoryKube
  yield* kube.addCluster(cluster)
  yield* kube.ensureNamespace(cluster, "bench")
  yield* kube.ensureNamespace(cluster, "other")
  const client = kube.adminClient(cluster)
  const wf = yield* client.create("workflows", "bench", workflowObject("wf-1", "bench"))
  const otherWf = yield* client.create("workflows", "other", workflowObject("wf-2", "other"))
  return { kube, client, wf, otherWf }
})

describe("PodCompleter", () => {
  it.effect("writes exactly one completed task result per Running workflow pod, then completes the pod; other namespaces untouched", () =>
    Effect.gen(function*() {
      const { client, kube, otherWf, wf } = yield* setup
      yield* runningPod(client, "bench", "wf-1-main-1", wf, { instanceId: "bench-a" })
      yield* runningPod(client, "other", "wf-2-main-1", otherWf)

      yield* withCompleter(
        client,
        { namespaces: ["bench"] },
        Effect.gen(function*() {
          const completer = yield* PodCompleter
          yield* completer.awaitCompleted(1)
          // A pod that turns Running after the completer started (a watch event, not the list).
          yield* watching(kube)
          yield* runningPod(client, "bench", "wf-1-main-2", wf)
          yield* completer.awaitCompleted(2)
          // Unlabelled pods are not workflow pods; still Running ones in the watched namespace stay so.
          yield* runningPod(client, "bench", "not-a-workflow-pod", wf, { labelled: false })

          const results = yield* kube.objects(cluster, "workflowtaskresults", "bench")
          assert.deepStrictEqual(results.map((r) => r.metadata.name), ["wf-1-main-1-node", "wf-1-main-2-node"])
          const [first, second] = results
          assert.deepStrictEqual(first.metadata.labels, {
            "workflows.argoproj.io/workflow": "wf-1",
            "workflows.argoproj.io/report-outputs-completed": "true",
            "workflows.argoproj.io/controller-instanceid": "bench-a"
          })
          assert.deepStrictEqual(second.metadata.labels, {
            "workflows.argoproj.io/workflow": "wf-1",
            "workflows.argoproj.io/report-outputs-completed": "true"
          })
          assert.deepStrictEqual(first.metadata.ownerReferences, [
            { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: "wf-1", uid: wf.metadata.uid! }
          ])
          assert.strictEqual(first.metadata.namespace, "bench")

          const pod = yield* client.get("pods", "bench", "wf-1-main-1")
          assert.strictEqual(phaseOf(pod), "Succeeded")
          const status = pod.status as {
            containerStatuses: ReadonlyArray<{ name: string; state: { terminated?: { exitCode: number } } }>
            initContainerStatuses: ReadonlyArray<{ name: string; state: { terminated?: { exitCode: number } } }>
          }
          assert.deepStrictEqual(status.containerStatuses.map((c) => [c.name, c.state.terminated?.exitCode]), [["wait", 0], ["main", 0]])
          assert.deepStrictEqual(status.initContainerStatuses.map((c) => [c.name, c.state.terminated?.exitCode]), [["init", 0]])
          assert.strictEqual(phaseOf(yield* client.get("pods", "bench", "wf-1-main-2")), "Succeeded")
          assert.strictEqual(phaseOf(yield* client.get("pods", "bench", "not-a-workflow-pod")), "Running")

          // The other namespace: no result, pod still Running, and never even read.
          assert.deepStrictEqual(yield* kube.objects(cluster, "workflowtaskresults", "other"), [])
          assert.strictEqual(phaseOf(yield* client.get("pods", "other", "wf-2-main-1")), "Running")
          const requests = yield* kube.requests(cluster)
          assert.deepStrictEqual(
            requests.filter((r) => r.namespace === "other" && (r.verb === "list" || r.verb === "watch" || r.resource === "workflowtaskresults")),
            []
          )
          assert.strictEqual(requests.filter((r) => r.verb === "create" && r.resource === "workflowtaskresults").length, 2)

          const stats = yield* completer.stats
          assert.strictEqual(stats.completed, 2)
          assert.strictEqual(stats.taskResults, 2)
          assert.strictEqual(stats.failed, 0)
          assert.strictEqual(stats.requests["create workflowtaskresults"], 2)
          assert.strictEqual(stats.requests["patch pods/status"], 2)
          assert.strictEqual(stats.requests["list pods"], 1)
          assert.strictEqual(stats.requests["watch pods"], 1)
          assert.strictEqual(stats.totalRequests, 6)
          const completions = yield* completer.completions
          assert.deepStrictEqual(completions.map((c) => [c.pod, c.workflow, c.nodeId]), [
            ["wf-1-main-1", "wf-1", "wf-1-main-1-node"],
            ["wf-1-main-2", "wf-1", "wf-1-main-2-node"]
          ])
        })
      )
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("completes a pod once however many times it is seen Running", () =>
    Effect.gen(function*() {
      const { client, kube, wf } = yield* setup
      yield* withCompleter(
        client,
        { namespaces: ["bench"], runFor: "1 second" },
        Effect.gen(function*() {
          const completer = yield* PodCompleter
          const done = yield* Effect.forkChild(completer.awaitCompleted(1))
          yield* watching(kube)
          yield* runningPod(client, "bench", "wf-1-main-1", wf)
          // More Running events while the pod "runs" (kwok writes its conditions after the phase).
          for (let i = 0; i < 3; i++) {
            yield* client.patch("pods", "bench", "wf-1-main-1", { metadata: { labels: { touched: String(i) } } })
          }
          yield* advanceUntilDone(done)
          // A later update of the completed pod does not count either.
          yield* client.patch("pods", "bench", "wf-1-main-1", { metadata: { labels: { touched: "after" } } })
          yield* TestClock.adjust("1 second")
          const stats = yield* completer.stats
          assert.strictEqual(stats.requests["create workflowtaskresults"], 1)
          assert.strictEqual(stats.requests["patch pods/status"], 1)
          assert.strictEqual(stats.completed, 1)
          assert.strictEqual((yield* kube.objects(cluster, "workflowtaskresults", "bench")).length, 1)
          assert.strictEqual(phaseOf(yield* client.get("pods", "bench", "wf-1-main-1")), "Succeeded")
        })
      )
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("retries a transient failure of a write and counts every attempt", () =>
    Effect.gen(function*() {
      const { client, kube, wf } = yield* setup
      yield* runningPod(client, "bench", "wf-1-main-1", wf)
      yield* kube.failNext(cluster, "create", "workflowtaskresults", "Unavailable")

      yield* withCompleter(
        client,
        { namespaces: ["bench"], concurrency: 1 },
        Effect.gen(function*() {
          const completer = yield* PodCompleter
          const done = yield* Effect.forkChild(completer.awaitCompleted(1))
          // The retry waits on its (test) clock: about 100 ms jittered.
          yield* advanceUntilDone(done)
          const stats = yield* completer.stats
          assert.strictEqual(stats.requests["create workflowtaskresults"], 2)
          assert.strictEqual(stats.taskResults, 1)
          assert.strictEqual(stats.failed, 0)
          assert.strictEqual(phaseOf(yield* client.get("pods", "bench", "wf-1-main-1")), "Succeeded")
          assert.strictEqual((yield* kube.objects(cluster, "workflowtaskresults", "bench")).length, 1)
        })
      )
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("gives up on a pod after a lasting failure, counts it and leaves the pod Running", () =>
    Effect.gen(function*() {
      const { client, kube, wf } = yield* setup
      yield* runningPod(client, "bench", "wf-1-main-1", wf)
      yield* kube.failNext(cluster, "create", "workflowtaskresults", "Forbidden")
      yield* withCompleter(
        client,
        { namespaces: ["bench"] },
        Effect.gen(function*() {
          const completer = yield* PodCompleter
          yield* completer.awaitCompleted(1)
          const stats = yield* completer.stats
          assert.strictEqual(stats.failed, 1)
          assert.strictEqual(stats.completed, 0)
          assert.strictEqual(stats.requests["create workflowtaskresults"], 1)
          assert.isUndefined(stats.requests["patch pods/status"])
          assert.strictEqual(phaseOf(yield* client.get("pods", "bench", "wf-1-main-1")), "Running")
        })
      )
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("finishes a result that already exists (argoexec's incomplete one) instead of failing", () =>
    Effect.gen(function*() {
      const { client, kube, wf } = yield* setup
      yield* client.create("workflowtaskresults", "bench", {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "WorkflowTaskResult",
        metadata: {
          name: "wf-1-main-1-node",
          namespace: "bench",
          labels: { "workflows.argoproj.io/workflow": "wf-1", "workflows.argoproj.io/report-outputs-completed": "false" }
        }
      })
      yield* runningPod(client, "bench", "wf-1-main-1", wf)
      yield* withCompleter(
        client,
        { namespaces: ["bench"] },
        Effect.gen(function*() {
          const completer = yield* PodCompleter
          yield* completer.awaitCompleted(1)
          const [result] = yield* kube.objects(cluster, "workflowtaskresults", "bench")
          assert.strictEqual(result.metadata.labels?.["workflows.argoproj.io/report-outputs-completed"], "true")
          const stats = yield* completer.stats
          assert.strictEqual(stats.requests["patch workflowtaskresults"], 1)
          assert.strictEqual(stats.failed, 0)
        })
      )
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("works through its own connection with only the rights it documents, in its namespaces", () =>
    Effect.gen(function*() {
      const { client, kube, otherWf, wf } = yield* setup
      yield* kube.addIdentity(cluster, {
        name: "bench-harness",
        token: "harness-token",
        rules: [
          { verbs: ["get", "list", "watch", "patch"], resources: ["pods"], namespaces: ["bench"] },
          { verbs: ["create", "patch"], resources: ["workflowtaskresults"], namespaces: ["bench"] }
        ]
      })
      yield* runningPod(client, "bench", "wf-1-main-1", wf)
      yield* runningPod(client, "other", "wf-2-main-1", otherWf)
      yield* Effect.gen(function*() {
        const completer = yield* PodCompleter
        yield* completer.awaitCompleted(1)
        const stats = yield* completer.stats
        assert.strictEqual(stats.failed, 0)
        assert.strictEqual(stats.taskResults, 1)
      }).pipe(Effect.provide(PodCompleter.layerConnected({
        cluster,
        user: "bench-harness",
        endpoint: { server: `memory://${cluster}` },
        auth: { _tag: "Token", token: Redacted.make("harness-token") }
      }, { namespaces: ["bench"] })))
      const harnessRequests = (yield* kube.requests(cluster)).filter((r) => r.identity === "bench-harness")
      assert.isAbove(harnessRequests.length, 3)
      assert.deepStrictEqual(harnessRequests.filter((r) => !r.allowed), [])
      assert.strictEqual(phaseOf(yield* client.get("pods", "bench", "wf-1-main-1")), "Succeeded")
      assert.strictEqual(phaseOf(yield* client.get("pods", "other", "wf-2-main-1")), "Running")
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
