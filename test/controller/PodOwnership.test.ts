import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { PodOwnership } from "../../src/controller/PodOwnership.js"
import { KubeError } from "../../src/kube/api/KubeError.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { annotationNodeId } from "../../src/util/argoKeys.js"
import { fakeClient, settingsLayer } from "./services.js"

/** A pod as the controller makes it for node n1 of workflow uid `uid` in cluster east. */
const podFor = (uid: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "wf-n1", namespace: "remote", annotations: { [annotationNodeId]: "n1" } },
  spec: { containers: [{ name: "wait", image: "argoexec", env: [{ name: "ARGO_WORKFLOW_UID", value: uid }] }] }
})
const fields = (uid: string) => ({ workflowUid: uid, nodeId: "n1", cluster: "east", namespace: "remote", podName: "wf-n1" })
const workflow = (uid: string): KubeObject => ({ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", metadata: { name: "wf", namespace: "ns", uid } })
const ref = { namespace: "ns", name: "wf" }

const notFound = new KubeError({ reason: "NotFound", cluster: "main", verb: "get", resource: "secrets", detail: "none" })
const forbidden = new KubeError({ reason: "Forbidden", cluster: "main", verb: "get", resource: "secrets", detail: "no" })

/** The proof key secret is made on first start. */
const withKey = PodOwnership.layer.pipe(
  Layer.provide(settingsLayer(fakeClient({ get: () => Effect.fail(notFound), create: (_kind, _namespace, object) => Effect.succeed(object) })))
)
/** The controller may not read its secret: no proofs. */
const withoutKey = PodOwnership.layer.pipe(Layer.provide(settingsLayer(fakeClient({ get: () => Effect.fail(forbidden) }))))

describe("PodOwnership", () => {
  it.effect("sweeps only a proven pod, once no workflow of the uid its executor names exists", () =>
    Effect.gen(function*() {
      const ownership = yield* PodOwnership
      assert.isDefined(ownership.proofKey)
      const proven = ownership.prove(podFor("u1"), fields("u1"))
      assert.isTrue(ownership.orphan(proven, "east", Option.none()))
      assert.isFalse(ownership.orphan(proven, "east", Option.some(workflow("u1"))))
      // a same-named successor does not keep the old workflow's pod
      assert.isTrue(ownership.orphan(proven, "east", Option.some(workflow("u2"))))
      // labels alone (anyone may write them) never make a pod sweepable, nor a proof for another cluster
      assert.isFalse(ownership.orphan(podFor("u1"), "east", Option.none()))
      assert.isFalse(ownership.orphan(proven, "west", Option.none()))
    }).pipe(Effect.provide(withKey)))

  it.effect("owns a gone workflow's pods by the proof for its last known uid", () =>
    Effect.gen(function*() {
      const ownership = yield* PodOwnership
      const proven = ownership.prove(podFor("u1"), fields("u1"))
      // never saw the workflow: no uid to check the proof against
      assert.isFalse(ownership.ownedBy(proven, "east", ref, undefined, new Map()))
      yield* ownership.rememberUid("ns/wf", "u1")
      assert.strictEqual(ownership.lastUid("ns/wf"), "u1")
      assert.isTrue(ownership.ownedBy(proven, "east", ref, undefined, new Map()))
      assert.isFalse(ownership.ownedBy(podFor("u1"), "east", ref, undefined, new Map()))
      yield* ownership.forgetUid("ns/wf")
      assert.isFalse(ownership.ownedBy(proven, "east", ref, undefined, new Map()))
    }).pipe(Effect.provide(withKey)))

  it.effect("judges a known workflow's pods by their records", () =>
    Effect.gen(function*() {
      const ownership = yield* PodOwnership
      const pod = { ...podFor("u1"), metadata: { ...podFor("u1").metadata, uid: "pod-1" } }
      const pending = new Map([["n1", { uid: "pod-1", cluster: "east", namespace: "remote" }]])
      assert.isTrue(ownership.ownedBy(pod, "east", ref, workflow("u1"), pending))
      assert.isFalse(ownership.ownedBy(pod, "west", ref, workflow("u1"), pending))
      assert.deepStrictEqual(ownership.judge(pod, "east", workflow("u1"), (nodeId) => pending.get(nodeId)), { _tag: "Accepted", nodeId: "n1" })
    }).pipe(Effect.provide(withKey)))

  it.effect("without a proof key, lets labels decide as before proofs", () =>
    Effect.gen(function*() {
      const ownership = yield* PodOwnership
      assert.isUndefined(ownership.proofKey)
      const pod = podFor("u1")
      assert.strictEqual(ownership.prove(pod, fields("u1")), pod)
      assert.isTrue(ownership.ownedBy(pod, "east", ref, undefined, new Map()))
      assert.isTrue(ownership.orphan(pod, "east", Option.none()))
      assert.isFalse(ownership.orphan(pod, "east", Option.some(workflow("u2"))))
    }).pipe(Effect.provide(withoutKey)))
})
