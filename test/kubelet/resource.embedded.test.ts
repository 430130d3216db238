/**
 * Resource templates through the embedded runtime (controller, in-memory
 * clusters, local kubelets): the resource pod is created in the template's
 * cluster and namespace with the workflow owner's kubeconfig, and the action
 * on the resource is made there by the pod's service account, never by the
 * controller or the kubelet; conditions are waited for; outputs come back; an
 * owner whose service account lacks the right gets the API's Forbidden.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const remote = { cluster: "cluster-1", namespace: "remote" }

const resourceWorkflow = (name: string, template: Record<string, unknown>, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: "default" },
  spec: { entrypoint: "main", serviceAccountName: "workflow", templates: [{ name: "main", ...remote, ...template }], ...spec }
})

const configMap = (data: Record<string, string>) =>
  `apiVersion: v1
kind: ConfigMap
metadata:
  generateName: made-
data:
${Object.entries(data).map(([k, v]) => `  ${k}: "${v}"`).join("\n")}
`

/** Runs `wf` on the embedded runtime (simulate mode) and returns the completed Workflow. */
const run = (wf: KubeObject, before: (kube: InMemoryKube["Service"]) => Effect.Effect<void> = () => Effect.void) =>
  Effect.gen(function*() {
    const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), { mode: "simulate" })
    yield* before(kube)
    yield* admin.create("workflows", "default", wf)
    const done = yield* Embedded.awaitWorkflow(controller, "default", wf.metadata.name!, Embedded.isCompleted).pipe(
      Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error(`${wf.metadata.name} did not complete`)) })
    )
    return { done: done!, kube }
  })

const nodeOf = (wf: KubeObject, name: string): Record<string, any> =>
  Object.values((wf.status as { nodes: Record<string, Record<string, any>> }).nodes).find((n) => n.name === name)!

describe("resource templates on the embedded runtime", () => {
  it.live("create a ConfigMap in another cluster and namespace as the pod's service account, and read its name back", () =>
    Effect.gen(function*() {
      const wf = resourceWorkflow("make-cm", {
        resource: { action: "create", manifest: configMap({ some: "value" }) },
        outputs: { parameters: [{ name: "name", valueFrom: { jsonPath: "{.metadata.name}" } }, { name: "data", valueFrom: { jsonPath: "{.data}" } }] }
      })
      const { done, kube } = yield* run(wf)
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
      const node = nodeOf(done, "make-cm")
      assert.strictEqual(node.type, "Pod")
      const made = yield* kube.objects("cluster-1", "configmaps", "remote")
      const cm = made.find((o) => o.metadata.name?.startsWith("made-"))
      assert.isDefined(cm)
      assert.deepStrictEqual(cm!["data"], { some: "value" })
      assert.deepStrictEqual(node.outputs.parameters, [
        { name: "name", value: cm!.metadata.name },
        { name: "data", value: "{\"some\":\"value\"}" }
      ])
      // Who did what in cluster-1: the owner created the pod, the pod's service account the ConfigMap.
      const requests = yield* kube.requests("cluster-1")
      const cmCreates = requests.filter((r) => r.verb === "create" && r.resource === "configmaps")
      assert.deepStrictEqual(cmCreates.map((r) => [r.identity, r.namespace, r.outcome]), [["system:serviceaccount:remote:workflow", "remote", "Success"]])
      const podCreates = requests.filter((r) => r.verb === "create" && r.resource === "pods")
      assert.deepStrictEqual(podCreates.map((r) => [r.identity, r.outcome]), [["workflow", "Success"]])
      assert.isFalse(requests.some((r) => r.resource === "configmaps" && (r.identity === "controller" || r.identity === "kubelet")))
      // Nothing of it in the workflow's own cluster.
      const localCreates = (yield* kube.requests("main")).filter((r) => r.verb === "create" && r.resource === "configmaps" && r.namespace !== "argo")
      assert.lengthOf(localCreates, 0)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("create a Job-like object (a pod) and wait for its successCondition", () =>
    Effect.gen(function*() {
      const wf = resourceWorkflow("wait-pod", {
        resource: {
          action: "create",
          successCondition: "status.phase == Succeeded",
          failureCondition: "status.phase in (Failed, Unknown)",
          manifest: `apiVersion: v1
kind: Pod
metadata:
  name: job-like
  annotations:
    flotilla.dev/simulate-duration: 300ms
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "true"]
`
        },
        outputs: { parameters: [{ name: "phase", valueFrom: { jsonPath: "{.status.phase}" } }] }
      }, {
        podSpecPatch: JSON.stringify({ containers: [{ name: "main", env: [{ name: "RESOURCE_STATE_CHECK_INTERVAL", value: "100ms" }] }] })
      })
      const { done, kube } = yield* run(wf)
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
      assert.deepStrictEqual(nodeOf(done, "wait-pod").outputs.parameters, [{ name: "phase", value: "Succeeded" }])
      const creates = (yield* kube.requests("cluster-1")).filter((r) => r.verb === "create" && r.resource === "pods" && r.name === "job-like")
      assert.deepStrictEqual(creates.map((r) => r.identity), ["system:serviceaccount:remote:workflow"])
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("fail the node with upstream's message when the failureCondition holds", () =>
    Effect.gen(function*() {
      const wf = resourceWorkflow("fails", {
        resource: {
          action: "create",
          successCondition: "data.state == done",
          failureCondition: "data.state == broken",
          manifest: configMap({ state: "broken" })
        }
      })
      const { done } = yield* run(wf)
      assert.strictEqual(Embedded.phaseOf(done), "Failed")
      const node = nodeOf(done, "fails")
      assert.strictEqual(node.phase, "Failed")
      // argoexec's error is main's termination message (exit 64); upstream v4.0.5's inferFailedReason names the container
      assert.strictEqual(node.message, "main: Error (exit code 64): failure condition 'data.state==broken' evaluated true")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("an owner whose service account may not create the resource fails the node with the API's Forbidden", () =>
    Effect.gen(function*() {
      const wf = resourceWorkflow("forbidden", { resource: { action: "create", manifest: configMap({ some: "value" }) } })
      const { done, kube } = yield* run(wf, (kube) => kube.revoke("cluster-1", "system:serviceaccount:remote:workflow"))
      assert.strictEqual(Embedded.phaseOf(done), "Failed")
      const node = nodeOf(done, "forbidden")
      assert.strictEqual(node.phase, "Failed")
      assert.strictEqual(
        node.message,
        "main: Error (exit code 64): no more retries Error from server (Forbidden): error when creating \"/tmp/manifest.yaml\": configmaps is forbidden: " +
          "User \"system:serviceaccount:remote:workflow\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"remote\""
      )
      assert.lengthOf(yield* kube.objects("cluster-1", "configmaps", "remote"), 0)
      // Nobody else made it instead.
      const creates = (yield* kube.requests("cluster-1")).filter((r) => r.verb === "create" && r.resource === "configmaps")
      assert.deepStrictEqual(creates.map((r) => [r.identity, r.allowed]), [["system:serviceaccount:remote:workflow", false]])
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("a jqFilter output fails 'not supported', naming the field, before anything is created", () =>
    Effect.gen(function*() {
      const wf = resourceWorkflow("jq", {
        resource: { action: "create", manifest: configMap({ some: "value" }) },
        outputs: { parameters: [{ name: "obj", valueFrom: { jqFilter: "." } }] }
      })
      const { done, kube } = yield* run(wf)
      assert.strictEqual(Embedded.phaseOf(done), "Failed")
      assert.match(nodeOf(done, "jq").message, /^main: Error \(exit code 64\): outputs\.parameters\.obj\.valueFrom\.jqFilter is not supported/)
      assert.lengthOf(yield* kube.objects("cluster-1", "configmaps", "remote"), 0)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})
