/**
 * Artifact GC through the controller, on in-memory clusters and a real S3 server (SeaweedFS):
 * the producers run in simulate mode (the test writes their objects and reports them as their wait
 * container would), the GC pods run on the local kubelets (artifactGcPod.ts), which delete from
 * the real bucket with the credentials of the namespace where the objects were written.
 */
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import { annotationTasksToDelete, conditionArtifactGCError, labelComponent, podHashLabel } from "../../src/controller/ArtifactGC.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { labelReportOutputsCompleted, labelWorkflow } from "../../src/util/argoKeys.js"
import { finalizerArtifactGC } from "../../src/workflow/engine/artifactGC.js"
import { executorEnvOf } from "../../src/workflow/engine/pod.js"
import { s3Server } from "../support/s3Server.js"
import { eventually, fast, fastController, inMemory, nodesOf, waitFor } from "./harness.js"
import { submit, untilCompleted } from "./fixtures.js"

const bucket = "art"

const repositoryYaml = (endpoint: string) =>
  `s3:\n  bucket: ${bucket}\n  endpoint: ${endpoint}\n  insecure: true\n  accessKeySecret: {name: s3-cred, key: accesskey}\n  secretKeySecret: {name: s3-cred, key: secretkey}\n`

const credentials = (namespace: string, accessKey: string, secretKey: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "s3-cred", namespace },
  data: { accesskey: Buffer.from(accessKey).toString("base64"), secretkey: Buffer.from(secretKey).toString("base64") }
})

/** Two producers, one in cluster-1/remote and one on main, each writing artifact `out`. */
const twoClusters = (name: string, artifactGC: Record<string, unknown>): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: "local" },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    artifactGC,
    templates: [
      { name: "main", steps: [[{ name: "remote", template: "gen-remote" }, { name: "home", template: "gen" }]] },
      {
        name: "gen-remote",
        cluster: "cluster-1",
        namespace: "remote",
        metadata: { annotations: { "flotilla.dev/simulate-duration": "2s" } },
        container: { image: "docker/whalesay" },
        outputs: { artifacts: [{ name: "out", path: "/tmp/out" }] }
      },
      {
        name: "gen",
        metadata: { annotations: { "flotilla.dev/simulate-duration": "2s" } },
        container: { image: "docker/whalesay" },
        outputs: { artifacts: [{ name: "out", path: "/tmp/out" }] }
      }
    ]
  }
})

/** The producers' pods, once both are there. */
const producers = (workflow: string) =>
  eventually(
    "both producer pods",
    Effect.gen(function*() {
      const kube = yield* InMemoryKube
      const of = (ps: ReadonlyArray<KubeObject>) => ps.filter((p) => p.metadata.labels?.[labelWorkflow] === workflow && p.metadata.labels?.[labelComponent] === undefined)
      const pods = [
        ...of(yield* kube.objects("cluster-1", "pods", "remote")).map((pod) => ({ cluster: "cluster-1", pod })),
        ...of(yield* kube.objects("main", "pods", "local")).map((pod) => ({ cluster: "main", pod }))
      ]
      return pods.length === 2 ? pods : undefined
    }),
    "30 seconds"
  )

/** What the producer's wait container does: the object in the bucket, and the task result naming it. */
const produce = (s3: { client: () => import("@aws-sdk/client-s3").S3Client }, cluster: string, pod: KubeObject) =>
  Effect.gen(function*() {
    const kube = yield* InMemoryKube
    const namespace = pod.metadata.namespace!
    const key = `${pod.metadata.labels![labelWorkflow]}/${pod.metadata.name}/out.tgz`
    yield* Effect.promise(() => s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `from ${cluster}` })))
    const nodeId = pod.metadata.annotations!["workflows.argoproj.io/node-id"]!
    const env = executorEnvOf(pod)
    const ownerReferences = [{ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: env["ARGO_WORKFLOW_NAME"]!, uid: env["ARGO_WORKFLOW_UID"]! }]
    yield* kube.adminClient(cluster).create("workflowtaskresults", namespace, {
      apiVersion: "argoproj.io/v1alpha1",
      kind: "WorkflowTaskResult",
      metadata: { name: nodeId, namespace, labels: { [labelWorkflow]: pod.metadata.labels![labelWorkflow]!, [labelReportOutputsCompleted]: "true" }, ownerReferences },
      outputs: { artifacts: [{ name: "out", path: "/tmp/out", s3: { key } }] }
    } as KubeObject)
    return key
  })

const keysIn = (s3: { client: () => import("@aws-sdk/client-s3").S3Client }, prefix: string) =>
  Effect.promise(() => s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).pipe(
    Effect.map((r) => (r.Contents ?? []).map((o) => o.Key!).sort())
  )

const current = (admin: Embedded.StartResult["admin"], wf: KubeObject) =>
  admin.get("workflows", "local", wf.metadata.name!).pipe(
    Effect.map(Option.some),
    Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none<KubeObject>()) : Effect.fail(e))
  )

/** Starts the runtime with the repository on `s3`, its keys in both namespaces (`remoteKeys` for cluster-1/remote). */
const start = (
  s3: { endpoint: string; accessKey: string; secretKey: string },
  wf: KubeObject,
  remoteKeys?: { accessKey: string; secretKey: string },
  controller?: Embedded.ControllerTuning
) =>
  Effect.gen(function*() {
    const kube = yield* InMemoryKube
    const started = yield* Embedded.start(
      Embedded.placementOf([wf]),
      fast({ configData: { artifactRepository: repositoryYaml(s3.endpoint) }, ...(controller ? { controller } : {}) })
    )
    yield* kube.adminClient("main").create("secrets", "local", credentials("local", s3.accessKey, s3.secretKey))
    const remote = remoteKeys ?? s3
    yield* kube.adminClient("cluster-1").create("secrets", "remote", credentials("remote", remote.accessKey, remote.secretKey))
    return started
  })

describe("artifact GC through the controller (real S3)", () => {
  it.live("OnWorkflowCompletion in two clusters: every object written is gone, deleted: true, no finalizer left", () =>
    inMemory(() =>
      Effect.scoped(Effect.gen(function*() {
        const s3 = yield* s3Server()
        yield* s3.createBucket(bucket)
        const wf = twoClusters("gc-done", { strategy: "OnWorkflowCompletion" })
        const { admin, controller } = yield* start(s3, wf)
        yield* submit(admin, wf)
        // the finalizer goes on while the workflow runs
        yield* eventually("the artifact-gc finalizer", Effect.map(current(admin, wf), (w) => Option.getOrUndefined(w)?.metadata.finalizers?.includes(finalizerArtifactGC) ? true : undefined))
        const keys: Array<string> = []
        for (const { cluster, pod } of yield* producers("gc-done")) keys.push(yield* produce(s3, cluster, pod))
        assert.strictEqual((yield* keysIn(s3, "gc-done/")).length, 2)
        const done = yield* untilCompleted(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        const collected = yield* eventually(
          "the finalizer removed",
          Effect.map(current(admin, wf), (w) => {
            const v = Option.getOrUndefined(w)
            return v !== undefined && !(v.metadata.finalizers ?? []).includes(finalizerArtifactGC) ? v : undefined
          }),
          "40 seconds"
        )
        assert.deepStrictEqual(yield* keysIn(s3, "gc-done/"), [])
        const gc = (collected["status"] as any).artifactGCStatus
        assert.deepStrictEqual(gc.strategiesProcessed, { OnWorkflowCompletion: true })
        assert.strictEqual(Object.keys(gc.podsRecouped).length, 2, JSON.stringify(gc))
        assert.isTrue(Object.values(gc.podsRecouped).every((r) => r === true))
        const arts = nodesOf(collected).filter((n) => n.type === "Pod").flatMap((n: any) => n.outputs?.artifacts ?? [])
        assert.deepStrictEqual(arts.map((a: any) => [a.s3.key, a.deleted]).sort(), keys.sort().map((k) => [k, true]))
        // the GC pod of cluster-1 was made there, with the workflow owner's credentials, and went with its task
        const kube = yield* InMemoryKube
        yield* eventually("remote GC tasks deleted", Effect.map(kube.objects("cluster-1", "workflowartifactgctasks", "remote"), (ts) => ts.length === 0 ? true : undefined))
      }))
    ), 90_000)

  it.live("OnWorkflowDeletion: the deletion waits until the objects are gone", () =>
    inMemory(() =>
      Effect.scoped(Effect.gen(function*() {
        const s3 = yield* s3Server()
        yield* s3.createBucket(bucket)
        const wf = twoClusters("gc-del", { strategy: "OnWorkflowDeletion" })
        const { admin, controller } = yield* start(s3, wf)
        yield* submit(admin, wf)
        for (const { cluster, pod } of yield* producers("gc-del")) yield* produce(s3, cluster, pod)
        const done = yield* untilCompleted(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        // completed: the objects stay, and so does the finalizer
        const before = Option.getOrThrow(yield* current(admin, wf))
        assert.include(before.metadata.finalizers ?? [], finalizerArtifactGC)
        assert.strictEqual((yield* keysIn(s3, "gc-del/")).length, 2)
        yield* admin.delete("workflows", "local", "gc-del")
        const held = Option.getOrUndefined(yield* current(admin, wf))
        if (held !== undefined) assert.isDefined(held.metadata.deletionTimestamp)
        yield* eventually("the workflow gone", Effect.map(current(admin, wf), (w) => Option.isNone(w) ? true : undefined), "40 seconds")
        assert.deepStrictEqual(yield* keysIn(s3, "gc-del/"), [])
      }))
    ), 90_000)

  it.live("a GC pod with wrong keys: an ArtifactGCError condition, and with forceFinalizerRemoval the workflow goes", () =>
    inMemory(() =>
      Effect.scoped(Effect.gen(function*() {
        const s3 = yield* s3Server()
        yield* s3.createBucket(bucket)
        const wf = twoClusters("gc-fail", { strategy: "OnWorkflowCompletion", forceFinalizerRemoval: true })
        // cluster-1/remote's Secret holds keys the server refuses
        const { admin, controller } = yield* start(s3, wf, { accessKey: "wrong", secretKey: "wrong-secret" })
        yield* submit(admin, wf)
        for (const { cluster, pod } of yield* producers("gc-fail")) yield* produce(s3, cluster, pod)
        yield* untilCompleted(controller, wf)
        // every GC pod ended: the failure is a condition, and the finalizer is forced off
        const settled = yield* eventually(
          "the finalizer removed",
          Effect.map(current(admin, wf), (w) => {
            const v = Option.getOrUndefined(w)
            return v !== undefined && !(v.metadata.finalizers ?? []).includes(finalizerArtifactGC) ? v : undefined
          }),
          "40 seconds"
        )
        const status = settled["status"] as any
        const condition = (status.conditions ?? []).find((c: any) => c.type === conditionArtifactGCError)
        assert.isDefined(condition, JSON.stringify(status.conditions))
        assert.strictEqual(condition.status, "True")
        assert.match(condition.message, /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch/)
        assert.include(condition.message, "artifactGCTask: gc-fail-artgc-wfcomp-")
        assert.isTrue(Object.values(status.artifactGCStatus.podsRecouped).every((r) => r === true))
        // the remote artifact is not deleted (and says so); the one written on main is
        const arts = nodesOf(settled).filter((n) => n.type === "Pod").flatMap((n: any) => n.outputs?.artifacts ?? [])
        assert.deepStrictEqual(arts.map((a: any) => a.deleted).sort(), [false, true])
        assert.strictEqual((yield* keysIn(s3, "gc-fail/")).length, 1)
        // nothing holds the workflow any more
        yield* admin.delete("workflows", "local", "gc-fail")
        yield* eventually("the workflow gone", Effect.map(current(admin, wf), (w) => Option.isNone(w) ? true : undefined), "20 seconds")
      }))
    ), 90_000)

  it.live("a remote GC task whose delete fails is recorded, the finalizer held, the delete tried again until the task is gone", () =>
    inMemory(() =>
      Effect.scoped(Effect.gen(function*() {
        const s3 = yield* s3Server()
        yield* s3.createBucket(bucket)
        const kube = yield* InMemoryKube
        const wf = twoClusters("gc-retry", { strategy: "OnWorkflowCompletion" })
        const { admin, controller } = yield* start(s3, wf)
        // the first three deletes of a GC task in cluster-1 fail
        yield* kube.failNext("cluster-1", "delete", "workflowartifactgctasks", "Unavailable", 3)
        // while the task is there, the workflow records it and keeps its finalizer: a state that lasts
        // only as long as the failing deletes, so it is watched for from before the submission (every
        // version the controller's informer sees), not polled for
        const recorded = yield* waitFor(controller, wf, (w) => (w?.metadata.annotations?.[annotationTasksToDelete] ?? "").includes("cluster-1/remote/"), "cluster-1's task recorded as to delete", "60 seconds").pipe(
          Effect.forkScoped
        )
        yield* submit(admin, wf)
        for (const { cluster, pod } of yield* producers("gc-retry")) yield* produce(s3, cluster, pod)
        yield* untilCompleted(controller, wf)
        const held = (yield* Fiber.join(recorded))!
        assert.include(held.metadata.finalizers ?? [], finalizerArtifactGC)
        // main's task may be listed beside it (recorded when its pod ended; it goes at once)
        const listed = JSON.parse(held.metadata.annotations![annotationTasksToDelete]!) as Array<string>
        assert.isTrue(listed.some((t) => /^cluster-1\/remote\/gc-retry-artgc-wfcomp-\d+-0$/.test(t)), JSON.stringify(listed))
        assert.isTrue(listed.every((t) => /^(cluster-1\/remote|main\/[a-z-]+)\/gc-retry-artgc-wfcomp-\d+-0$/.test(t)), JSON.stringify(listed))
        const settled = yield* eventually("the finalizer removed", Effect.map(current(admin, wf), (w) => {
          const v = Option.getOrUndefined(w)
          return v !== undefined && !(v.metadata.finalizers ?? []).includes(finalizerArtifactGC) ? v : undefined
        }), "40 seconds")
        assert.isUndefined(settled.metadata.annotations?.[annotationTasksToDelete])
        assert.deepStrictEqual(yield* kube.objects("cluster-1", "workflowartifactgctasks", "remote"), [])
        const deletes = (yield* kube.requests("cluster-1")).filter((r) => r.verb === "delete" && r.resource === "workflowartifactgctasks")
        assert.isAtLeast(deletes.length, 4)
        assert.deepStrictEqual(yield* keysIn(s3, "gc-retry/"), [])
      }))
    ), 90_000)

  it.live("tasks a user lists in the tasks-to-delete annotation that are not this workflow's are left in place (and dropped from the list)", () =>
    inMemory(() =>
      Effect.scoped(Effect.gen(function*() {
        const s3 = yield* s3Server()
        yield* s3.createBucket(bucket)
        const kube = yield* InMemoryKube
        const victim = (name: string, namespace: string, wfName: string, wfNamespace: string): KubeObject => ({
          apiVersion: "argoproj.io/v1alpha1",
          kind: "WorkflowArtifactGCTask",
          metadata: {
            name,
            namespace,
            labels: { "workflows.argoproj.io/artifact-gc-pod": String(podHashLabel(name.slice(0, -2))), [labelWorkflow]: wfName },
            annotations: { "workflows.argoproj.io/workflow-namespace": wfNamespace }
          },
          spec: { artifactsByNode: {} }
        })
        const base = twoClusters("gc-deputy", { strategy: "OnWorkflowCompletion" })
        const wf: KubeObject = {
          ...base,
          metadata: {
            ...base.metadata,
            annotations: { [annotationTasksToDelete]: JSON.stringify(["cluster-1/remote/other-artgc-wfcomp-1-0", "main/tenant-b/gc-deputy-artgc-wfcomp-1-0"]) }
          }
        }
        const { admin, controller } = yield* start(s3, wf)
        // another tenant's task in cluster-1, and one of a workflow of the same name in another namespace
        yield* kube.adminClient("cluster-1").create("workflowartifactgctasks", "remote", victim("other-artgc-wfcomp-1-0", "remote", "other", "tenant-b"))
        yield* kube.ensureNamespace("main", "tenant-b")
        yield* kube.adminClient("main").create("workflowartifactgctasks", "tenant-b", victim("gc-deputy-artgc-wfcomp-1-0", "tenant-b", "gc-deputy", "tenant-b"))
        yield* submit(admin, wf)
        for (const { cluster, pod } of yield* producers("gc-deputy")) yield* produce(s3, cluster, pod)
        yield* untilCompleted(controller, wf)
        const settled = yield* eventually("the finalizer removed", Effect.map(current(admin, wf), (w) => {
          const v = Option.getOrUndefined(w)
          return v !== undefined && (v["status"] as any)?.artifactGCStatus?.strategiesProcessed?.OnWorkflowCompletion === true &&
              !(v.metadata.finalizers ?? []).includes(finalizerArtifactGC) ? v : undefined
        }), "40 seconds")
        assert.isUndefined(settled.metadata.annotations?.[annotationTasksToDelete])
        assert.deepStrictEqual((yield* kube.objects("cluster-1", "workflowartifactgctasks", "remote")).map((t) => t.metadata.name), ["other-artgc-wfcomp-1-0"])
        assert.deepStrictEqual((yield* kube.objects("main", "workflowartifactgctasks", "tenant-b")).map((t) => t.metadata.name), ["gc-deputy-artgc-wfcomp-1-0"])
        // its own objects were collected all the same
        assert.deepStrictEqual(yield* keysIn(s3, "gc-deputy/"), [])
      }))
    ), 90_000)

  it.live("a group whose GC pod cannot be made does not block the others; given up with a condition, forceFinalizerRemoval releases", () =>
    inMemory(() =>
      Effect.scoped(Effect.gen(function*() {
        const s3 = yield* s3Server()
        yield* s3.createBucket(bucket)
        const kube = yield* InMemoryKube
        const wf = twoClusters("gc-away", { strategy: "OnWorkflowCompletion", forceFinalizerRemoval: true })
        const { admin, controller } = yield* start(s3, wf, undefined, {
          ...fastController,
          timing: { ...fastController.timing, artifactGCGiveUp: "2 seconds" }
        })
        // cluster-1 refuses every GC task
        yield* kube.failNext("cluster-1", "create", "workflowartifactgctasks", "Forbidden", 10_000, "quota exceeded")
        yield* submit(admin, wf)
        for (const { cluster, pod } of yield* producers("gc-away")) yield* produce(s3, cluster, pod)
        yield* untilCompleted(controller, wf)
        const settled = yield* eventually("the finalizer removed", Effect.map(current(admin, wf), (w) => {
          const v = Option.getOrUndefined(w)
          return v !== undefined && !(v.metadata.finalizers ?? []).includes(finalizerArtifactGC) ? v : undefined
        }), "40 seconds")
        const status = settled["status"] as any
        assert.deepStrictEqual(status.artifactGCStatus.strategiesProcessed, { OnWorkflowCompletion: true })
        assert.strictEqual(Object.keys(status.artifactGCStatus.podsRecouped).length, 2)
        assert.isTrue(Object.values(status.artifactGCStatus.podsRecouped).every((r) => r === true))
        const condition = (status.conditions ?? []).find((c: any) => c.type === conditionArtifactGCError)
        assert.isDefined(condition, JSON.stringify(status.conditions))
        assert.match(condition.message, /could not be made in cluster-1\/remote/)
        // main's artifact was collected all the same; cluster-1's stays
        const arts = nodesOf(settled).filter((n) => n.type === "Pod").flatMap((n: any) => n.outputs?.artifacts ?? [])
        assert.deepStrictEqual(arts.map((a: any) => a.deleted === true).sort(), [false, true])
        assert.strictEqual((yield* keysIn(s3, "gc-away/")).length, 1)
      }))
    ), 90_000)
})
