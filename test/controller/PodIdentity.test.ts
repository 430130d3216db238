import { assert, describe, it } from "@effect/vitest"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { acceptsTaskResult, judgePod, recordedPod, storedNodes, withPodRecords } from "../../src/controller/PodIdentity.js"
import { compressNodes, statusNodes } from "../../src/workflow/model/compressedNodes.js"

const wf: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "wf", namespace: "team-b", uid: "wf-uid" },
  status: { nodes: { n1: { id: "n1", podUID: "pod-uid", cluster: "cluster-1", namespace: "remote" }, n2: { id: "n2" } } }
}

const pod = (over: { uid?: string; namespace?: string; nodeId?: string; ownerUid?: string; controller?: boolean }): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: "p",
    namespace: over.namespace ?? "remote",
    uid: over.uid ?? "pod-uid",
    annotations: { "workflows.argoproj.io/node-id": over.nodeId ?? "n1" },
    ...(over.ownerUid
      ? { ownerReferences: [{ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: "wf", uid: over.ownerUid, controller: over.controller ?? true }] }
      : {})
  }
})

const record = (nodeId: string) => recordedPod(storedNodes(wf), nodeId)

describe("which pod is a node's pod", () => {
  it("the recorded UID in the recorded cluster and namespace", () => {
    assert.deepStrictEqual(judgePod(pod({}), "cluster-1", wf, "main", record), { _tag: "Accepted", nodeId: "n1" })
    assert.strictEqual(judgePod(pod({ uid: "other" }), "cluster-1", wf, "main", record)._tag, "Ignored")
    assert.strictEqual(judgePod(pod({}), "cluster-2", wf, "main", record)._tag, "Ignored", "same uid seen in another cluster")
    assert.strictEqual(judgePod(pod({ namespace: "elsewhere" }), "cluster-1", wf, "main", record)._tag, "Ignored")
  })

  it("without a record: only a pod in the workflow's own namespace controlled by its UID", () => {
    const local = (o: Parameters<typeof pod>[0]) => pod({ nodeId: "n2", namespace: "team-b", ...o })
    assert.strictEqual(judgePod(local({ ownerUid: "wf-uid" }), "main", wf, "main", record)._tag, "Accepted")
    assert.strictEqual(judgePod(local({ ownerUid: "someone-else" }), "main", wf, "main", record)._tag, "Ignored")
    assert.strictEqual(judgePod(local({ ownerUid: "wf-uid", controller: false }), "main", wf, "main", record)._tag, "Ignored")
    assert.strictEqual(judgePod(local({}), "main", wf, "main", record)._tag, "Ignored")
    assert.strictEqual(judgePod(local({ ownerUid: "wf-uid" }), "cluster-1", wf, "main", record)._tag, "Ignored", "an owner reference proves nothing in another cluster")
    assert.strictEqual(judgePod(pod({ nodeId: "n2", ownerUid: "wf-uid" }), "main", wf, "main", record)._tag, "Ignored", "nor in another namespace")
  })

  it("records are written into their nodes, and read back", () => {
    const status = withPodRecords(wf["status"] as Record<string, unknown>, new Map([["n2", { uid: "u2", cluster: "main", namespace: "other" }], ["gone", { uid: "u3", cluster: "main", namespace: "x" }]]))
    const next = { ...wf, status }
    assert.deepStrictEqual(recordedPod(storedNodes(next), "n2"), { uid: "u2", cluster: "main", namespace: "other" })
    assert.deepStrictEqual(recordedPod(storedNodes(next), "n1"), { uid: "pod-uid", cluster: "cluster-1", namespace: "remote" })
    assert.isUndefined((status["nodes"] as Record<string, unknown>)["gone"])
  })

  it("in a large workflow's compressedNodes too", () => {
    const nodes = (wf["status"] as { nodes: Record<string, unknown> }).nodes
    const compressed = { ...wf, status: { phase: "Running", compressedNodes: compressNodes(nodes) } }
    assert.deepStrictEqual(recordedPod(storedNodes(compressed), "n1"), { uid: "pod-uid", cluster: "cluster-1", namespace: "remote" })
    const status = withPodRecords(compressed.status, new Map([["n2", { uid: "u2", cluster: "main", namespace: "other" }]]))
    assert.isUndefined(status["nodes"], "still compressed")
    assert.deepStrictEqual(recordedPod(statusNodes(status) as any, "n2"), { uid: "u2", cluster: "main", namespace: "other" })
  })
})

describe("which task result is a node's", () => {
  const result = (over: { namespace?: string; ownerUid?: string | null; workflow?: string }): KubeObject => ({
    apiVersion: "argoproj.io/v1alpha1",
    kind: "WorkflowTaskResult",
    metadata: {
      name: "n1",
      namespace: over.namespace ?? "remote",
      labels: { "workflows.argoproj.io/workflow": over.workflow ?? "wf" },
      ...(over.ownerUid === null ? {} : { ownerReferences: [{ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: "wf", uid: over.ownerUid ?? "wf-uid" }] })
    }
  })
  const podOf = (nodeId: string) => (nodeId === "n1" ? { cluster: "cluster-1", namespace: "remote" } : undefined)
  it("named after the node, where its pod runs, labelled with and owned by the workflow", () => {
    assert.isTrue(acceptsTaskResult(result({}), "cluster-1", wf, podOf))
    assert.isFalse(acceptsTaskResult(result({}), "cluster-2", wf, podOf))
    assert.isFalse(acceptsTaskResult(result({ namespace: "other" }), "cluster-1", wf, podOf))
    assert.isFalse(acceptsTaskResult(result({ ownerUid: "other" }), "cluster-1", wf, podOf))
    assert.isFalse(acceptsTaskResult(result({ ownerUid: null }), "cluster-1", wf, podOf))
    assert.isFalse(acceptsTaskResult(result({ workflow: "victim" }), "cluster-1", wf, podOf))
  })
})

describe("pod proofs", () => {
  it("verify only for the workflow, node, cluster, namespace, name and containers they were made for", async () => {
    const { fromKey, proofAnnotation, withProof } = await import("../../src/controller/PodProof.js")
    const key = fromKey(new Uint8Array(32).fill(7))
    const other = fromKey(new Uint8Array(32).fill(8))
    const fields = { workflowUid: "wf-uid", nodeId: "n1", cluster: "cluster-1", namespace: "remote", podName: "p" }
    const running = { ...pod({}), spec: { containers: [{ name: "main", image: "busybox" }] } }
    const signed = withProof(running, key.sign(fields, running))
    assert.isTrue(key.verify(signed, "cluster-1", "wf-uid", "n1"))
    assert.isFalse(other.verify(signed, "cluster-1", "wf-uid", "n1"), "another key")
    assert.isFalse(key.verify(signed, "cluster-2", "wf-uid", "n1"), "another cluster")
    assert.isFalse(key.verify(signed, "cluster-1", "wf-uid", "n2"), "another node")
    assert.isFalse(key.verify(signed, "cluster-1", "other-wf", "n1"), "another workflow")
    assert.isFalse(key.verify({ ...signed, metadata: { ...signed.metadata, name: "q" } }, "cluster-1", "wf-uid", "n1"), "another name")
    assert.isFalse(key.verify({ ...signed, metadata: { ...signed.metadata, namespace: "x" } }, "cluster-1", "wf-uid", "n1"), "another namespace")
    assert.isFalse(key.verify(withProof(running, "garbage"), "cluster-1", "wf-uid", "n1"))
    const withMain = (main: Record<string, unknown>, extra: Array<Record<string, unknown>> = []) => {
      const base = { ...pod({}), spec: { containers: [{ name: "main", image: "busybox", command: ["echo", "hi"], env: [{ name: "ARGO_TEMPLATE", value: "{}" }] }] } }
      const proof = key.sign(fields, base)
      return withProof({ ...base, spec: { containers: [main, ...extra] } }, proof)
    }
    const genuine = { name: "main", image: "busybox", command: ["echo", "hi"], env: [{ name: "ARGO_TEMPLATE", value: "{}" }] }
    assert.isTrue(key.verify(withMain(genuine), "cluster-1", "wf-uid", "n1"))
    assert.isTrue(
      key.verify(withMain({ ...genuine, env: [...genuine.env, { name: "KUBERNETES_SERVICE_HOST", value: "10.0.0.1" }] }, [{ name: "istio-proxy", image: "proxy" }]), "cluster-1", "wf-uid", "n1"),
      "what admission adds (variables, sidecars) does not matter"
    )
    assert.isFalse(key.verify(withMain({ ...genuine, image: "evil" }), "cluster-1", "wf-uid", "n1"), "another image")
    assert.isFalse(key.verify(withMain({ ...genuine, command: ["sh", "-c", "evil"] }), "cluster-1", "wf-uid", "n1"), "another command")
    assert.isFalse(key.verify(withMain({ ...genuine, env: [{ name: "ARGO_TEMPLATE", value: "{\"evil\":1}" }] }), "cluster-1", "wf-uid", "n1"), "another template")
    assert.isFalse(key.verify(withMain({ ...genuine, name: "other" }), "cluster-1", "wf-uid", "n1"), "its container missing")
    assert.strictEqual(signed.metadata.annotations?.[proofAnnotation], key.sign(fields, running))
  })
})
