import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Option, PubSub, Queue, Stream } from "effect"
import { identity, Informer, stripManagedFields } from "../../src/kube/cache/Informer.js"
import type { KubeError } from "../../src/kube/api/KubeError.js"
import type { KubeObject, WatchEvent } from "../../src/kube/api/Resources.js"
import { slimPod } from "../../src/kube/cache/transforms.js"
import * as PodProof from "../../src/controller/PodProof.js"
import { executorEnvOf } from "../../src/workflow/engine/pod.js"
import { observePod } from "../../src/controller/observe.js"
import { pod, scriptedClient, waitUntil } from "./fakeClient.js"

const managed = (object: KubeObject): KubeObject => ({
  ...object,
  metadata: { ...object.metadata, managedFields: [{ manager: "kubectl", operation: "Update", fieldsV1: { "f:spec": {} } }] } as KubeObject["metadata"]
})

const fake = (items: ReadonlyArray<KubeObject>) =>
  Effect.gen(function*() {
    const watches: Array<Queue.Queue<WatchEvent, KubeError | Cause.Done>> = []
    const client = scriptedClient(
      () => Effect.succeed({ items: [...items], resourceVersion: "10" }),
      () =>
        Stream.unwrap(Effect.gen(function*() {
          const queue = yield* Queue.make<WatchEvent, KubeError | Cause.Done>()
          watches.push(queue)
          return Stream.fromQueue(queue)
        }))
    )
    return { client, watches }
  })

describe("Informer transform", () => {
  it("stripManagedFields drops metadata.managedFields and nothing else; an object without them is returned as is", () => {
    const plain = pod("a", "1")
    assert.strictEqual(stripManagedFields(plain), plain)
    assert.deepStrictEqual(stripManagedFields(managed(plain)), plain)
  })

  it.effect("by default, caches and announces objects without managedFields (snapshot and watch events)", () =>
    Effect.gen(function*() {
      const { client, watches } = yield* fake([managed(pod("a", "1"))])
      const informer = yield* Informer.make(client, "pods", "ns")
      const subscription = yield* informer.subscribe
      yield* informer.synced
      assert.deepStrictEqual(yield* informer.get("ns", "a"), Option.some(pod("a", "1")))
      yield* waitUntil("watch open", () => watches.length === 1)
      yield* Queue.offerAll(watches[0]!, [
        { type: "MODIFIED", object: managed(pod("a", "2")) },
        { type: "DELETED", object: managed(pod("a", "3")) }
      ])
      const changes = [yield* PubSub.take(subscription), yield* PubSub.take(subscription), yield* PubSub.take(subscription)]
      assert.deepStrictEqual(changes.map((c) => [c.type, c.object, c.previous]), [
        ["upsert", pod("a", "1"), undefined],
        ["upsert", pod("a", "2"), pod("a", "1")],
        ["delete", pod("a", "3"), pod("a", "2")]
      ])
    }))

  it.effect("a given transform replaces the default (identity keeps objects as delivered)", () =>
    Effect.gen(function*() {
      const { client } = yield* fake([managed(pod("a", "1"))])
      const kept = yield* Informer.make(client, "pods", "ns", { transform: identity })
      yield* kept.synced
      assert.deepStrictEqual(yield* kept.get("ns", "a"), Option.some(managed(pod("a", "1"))))
    }))
})

const template = JSON.stringify({ name: "main", container: { image: "busybox", command: ["sh", "-c"], args: ["echo hi"] } })
const env = (container: string) => [
  { name: "ARGO_POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
  { name: "ARGO_WORKFLOW_UID", value: "wf-uid" },
  { name: "ARGO_CONTAINER_NAME", value: container },
  { name: "ARGO_TEMPLATE", value: JSON.parse(JSON.stringify(template)) as string },
  { name: "USER_VAR", value: "x" }
]
const executorPod: KubeObject = managed({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "ns", resourceVersion: "5", labels: { a: "b" }, annotations: { "workflows.argoproj.io/node-id": "n" } },
  spec: {
    restartPolicy: "Never",
    nodeName: "node-1",
    activeDeadlineSeconds: 30,
    serviceAccountName: "workflow",
    initContainers: [{ name: "init", image: "argoexec", command: ["argoexec", "init"], env: env("init"), volumeMounts: [{ name: "v", mountPath: "/v" }], resources: {} }],
    containers: [
      { name: "wait", image: "argoexec", command: ["argoexec", "wait"], env: env("wait"), volumeMounts: [{ name: "v", mountPath: "/v" }] },
      { name: "main", image: "busybox", command: ["/var/run/argo/argoexec", "emissary", "--", "sh", "-c"], args: ["echo hi"], env: env("main"), resources: { limits: { cpu: "1" } } }
    ],
    volumes: [{ name: "v", emptyDir: {} }],
    tolerations: [{ key: "k", operator: "Exists" }]
  },
  status: {
    phase: "Failed",
    message: "m",
    hostIP: "10.0.0.1",
    hostIPs: [{ ip: "10.0.0.1" }],
    podIP: "10.1.0.1",
    podIPs: [{ ip: "10.1.0.1" }],
    startTime: "2026-01-01T00:00:00Z",
    containerStatuses: [{
      name: "main",
      image: "busybox",
      imageID: "sha256:x",
      containerID: "containerd://c",
      ready: false,
      restartCount: 0,
      state: { terminated: { exitCode: 1, reason: "Error", message: "boom", startedAt: "s", finishedAt: "f", containerID: "containerd://c" } },
      lastState: { waiting: { reason: "ContainerCreating" } }
    }],
    conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "no node", lastTransitionTime: "t" }]
  }
})

describe("slimPod", () => {
  it("keeps metadata (but managedFields), status, spec's plain fields and what each container runs; drops the rest of spec", () => {
    const slim = slimPod(executorPod)
    assert.deepStrictEqual(slim.metadata, stripManagedFields(executorPod).metadata)
    assert.deepStrictEqual(slim["status"], {
      phase: "Failed",
      message: "m",
      hostIP: "10.0.0.1",
      podIP: "10.1.0.1",
      startTime: "2026-01-01T00:00:00Z",
      containerStatuses: [{
        name: "main",
        state: { terminated: { exitCode: 1, reason: "Error", message: "boom", startedAt: "s", finishedAt: "f" } },
        lastState: { waiting: { reason: "ContainerCreating" } }
      }],
      conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "no node" }]
    })
    assert.deepStrictEqual(observePod(slim, "c"), observePod(executorPod, "c"))
    const spec = slim["spec"] as Record<string, unknown>
    assert.deepStrictEqual(Object.keys(spec).sort(), ["activeDeadlineSeconds", "containers", "initContainers", "nodeName", "restartPolicy", "serviceAccountName"])
    const [wait, main] = spec["containers"] as Array<Record<string, unknown>>
    assert.deepStrictEqual(Object.keys(wait!).sort(), ["command", "env", "image", "name"])
    assert.deepStrictEqual(main!["args"], ["echo hi"])
    assert.deepStrictEqual((main!["env"] as Array<unknown>)[0], { name: "ARGO_POD_NAME" })
    assert.deepStrictEqual(executorEnvOf(slim), executorEnvOf(executorPod))
  })

  it("a slim pod's proof verifies as the full pod's does", () => {
    const key = PodProof.fromKey(new Uint8Array(32).fill(7))
    const fields = { workflowUid: "wf-uid", nodeId: "n", cluster: "c", namespace: "ns", podName: "p" }
    const proven = PodProof.withProof(executorPod, key.sign(fields, executorPod))
    assert.isTrue(key.verify(proven, "c", "wf-uid", "n"))
    assert.isTrue(key.verify(slimPod(proven), "c", "wf-uid", "n"))
    assert.isFalse(key.verify(slimPod(proven), "c", "other-uid", "n"))
  })

  it("is the identity on a pod without spec or managedFields", () => {
    const bare = pod("a", "1")
    assert.strictEqual(slimPod(bare), bare)
  })
})

describe("Informer indexes (one key kept without a Set)", () => {
  it.effect("a value filing one object, then three, then one again, then none", () =>
    Effect.gen(function*() {
      const owned = (name: string, rv: string, owner: string) => pod(name, rv, { metadata: { name, namespace: "ns", resourceVersion: rv, labels: { owner } } })
      const { client, watches } = yield* fake([owned("a", "1", "x")])
      const informer = yield* Informer.make(client, "pods", "ns", {
        indexers: { owner: (o) => o.metadata.labels?.["owner"] ? [o.metadata.labels["owner"]] : [] }
      })
      const subscription = yield* informer.subscribe
      yield* informer.synced
      yield* PubSub.take(subscription)
      const names = (value: string) => informer.byIndex("owner", value).pipe(Effect.map((os) => os.map((o) => o.metadata.name).sort()))
      assert.deepStrictEqual(yield* names("x"), ["a"])
      yield* waitUntil("watch open", () => watches.length === 1)
      const step = (events: ReadonlyArray<WatchEvent>) =>
        Effect.gen(function*() {
          yield* Queue.offerAll(watches[0]!, events)
          for (let i = 0; i < events.length; i++) yield* PubSub.take(subscription)
        })
      yield* step([{ type: "ADDED", object: owned("b", "2", "x") }, { type: "ADDED", object: owned("c", "3", "x") }, { type: "MODIFIED", object: owned("a", "4", "x") }])
      assert.deepStrictEqual(yield* names("x"), ["a", "b", "c"])
      yield* step([{ type: "DELETED", object: owned("b", "5", "x") }, { type: "MODIFIED", object: owned("c", "6", "y") }])
      assert.deepStrictEqual(yield* names("x"), ["a"])
      assert.deepStrictEqual(yield* names("y"), ["c"])
      yield* step([{ type: "DELETED", object: owned("a", "7", "x") }, { type: "MODIFIED", object: owned("c", "8", "z") }])
      assert.deepStrictEqual(yield* names("x"), [])
      assert.deepStrictEqual(yield* names("y"), [])
      assert.deepStrictEqual(yield* names("z"), ["c"])
    }))
})
