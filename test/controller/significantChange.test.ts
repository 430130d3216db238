/**
 * Which pod and task result updates wake their workflow (src/controller/significantChange.ts):
 * an update that changes nothing the controller reads is skipped, as upstream's
 * significantPodChange skips it; nothing a decision rests on may be skipped.
 */
import { assert, describe, it } from "@effect/vitest"
import { podChangeOwners } from "../../src/controller/observe.js"
import { significantChange, significantPodChange, significantTaskResultChange } from "../../src/controller/significantChange.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"

const running = {
  phase: "Running",
  hostIP: "10.0.0.1",
  podIP: "10.1.0.7",
  startTime: "2026-01-01T00:00:00Z",
  conditions: [{ type: "Ready", status: "True" }, { type: "PodScheduled", status: "True" }],
  containerStatuses: [
    { name: "wait", ready: true, restartCount: 0, state: { running: { startedAt: "2026-01-01T00:00:01Z" } } },
    { name: "main", ready: true, restartCount: 0, state: { running: { startedAt: "2026-01-01T00:00:01Z" } } }
  ]
}

const pod: KubeObject = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: "wf-main-1",
    namespace: "local",
    uid: "pod-uid",
    resourceVersion: "10",
    labels: {
      "workflows.argoproj.io/workflow": "wf",
      "workflows.argoproj.io/cluster": "main",
      "workflows.argoproj.io/completed": "false"
    },
    annotations: { "workflows.argoproj.io/node-id": "wf-1" }
  },
  spec: { nodeName: "node-1", containers: [{ name: "main", image: "busybox" }] },
  status: running
}

type Json = Record<string, any>
/** `pod` at a new resourceVersion, `edit` applied to a deep copy. */
const updated = (edit: (p: Json) => void, from: KubeObject = pod): KubeObject => {
  const copy = structuredClone(from) as Json
  copy["metadata"].resourceVersion = String(Number(copy["metadata"].resourceVersion) + 1)
  edit(copy)
  return copy as KubeObject
}
const main = (p: Json) => p["status"].containerStatuses[1]

describe("significantPodChange", () => {
  it("skips what the controller does not read: a new resourceVersion, readiness, restart counts, conditions, hostIP, managed fields, its own completed label", () => {
    assert.isFalse(significantPodChange(pod, updated(() => {})))
    assert.isFalse(significantPodChange(pod, updated((p) => main(p).ready = false)))
    assert.isFalse(significantPodChange(pod, updated((p) => main(p).restartCount = 1)))
    assert.isFalse(significantPodChange(pod, updated((p) => p["status"].conditions[0].status = "False")))
    assert.isFalse(significantPodChange(pod, updated((p) => p["status"].hostIP = "10.0.0.2")))
    assert.isFalse(significantPodChange(pod, updated((p) => p["metadata"].managedFields = [{ manager: "kubelet" }])))
    assert.isFalse(significantPodChange(pod, updated((p) => p["metadata"].labels["workflows.argoproj.io/completed"] = "true")))
    // compared as JSON: key order and keys set to undefined do not matter
    assert.isFalse(significantPodChange(pod, updated((p) => p["metadata"] = { ...Object.fromEntries(Object.entries(p["metadata"]).reverse()), generateName: undefined })))
  })

  it("wakes on everything a decision rests on: phase, completion, exit codes, messages, placement, IPs, deletion", () => {
    const cases: ReadonlyArray<[string, (p: Json) => void]> = [
      ["phase", (p) => p["status"].phase = "Succeeded"],
      ["main terminated", (p) => main(p).state = { terminated: { exitCode: 0, finishedAt: "2026-01-01T00:00:09Z" } }],
      ["wait terminated", (p) => p["status"].containerStatuses[0].state = { terminated: { exitCode: 0 } }],
      ["exit code", (p) => main(p).state = { terminated: { exitCode: 1 } }],
      ["pod message", (p) => p["status"].message = "evicted"],
      ["pod reason", (p) => p["status"].reason = "Evicted"],
      ["waiting reason", (p) => main(p).state = { waiting: { reason: "ErrImagePull" } }],
      ["start time", (p) => p["status"].startTime = "2026-01-01T00:00:05Z"],
      ["pod IP", (p) => p["status"].podIP = "10.1.0.8"],
      ["node name", (p) => p["spec"].nodeName = "node-2"],
      ["spec", (p) => p["spec"].activeDeadlineSeconds = 10],
      ["deletion", (p) => p["metadata"].deletionTimestamp = "2026-01-01T00:00:10Z"],
      ["finalizers", (p) => p["metadata"].finalizers = ["x"]],
      ["owner label", (p) => p["metadata"].labels["workflows.argoproj.io/workflow"] = "other"],
      ["another label", (p) => p["metadata"].labels["team"] = "a"],
      ["node id annotation", (p) => p["metadata"].annotations["workflows.argoproj.io/node-id"] = "wf-2"],
      ["proof annotation", (p) => p["metadata"].annotations["flotilla.dev/proof"] = "x"],
      ["owner references", (p) => p["metadata"].ownerReferences = [{ kind: "Workflow", uid: "u" }]],
      ["uid", (p) => p["metadata"].uid = "another"]
    ]
    for (const [what, edit] of cases) assert.isTrue(significantPodChange(pod, updated(edit)), what)
  })

  it("a Pending pod: the scheduler's Unschedulable condition is its message (read), other conditions are not", () => {
    const pending = updated((p) => {
      p["status"] = { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False" }] }
    })
    assert.isTrue(significantPodChange(pending, updated((p) => p["status"].conditions[0].reason = "Unschedulable", pending)))
    assert.isFalse(significantPodChange(pending, updated((p) => p["status"].conditions.push({ type: "Initialized", status: "True" }), pending)))
  })

  it("a pod without a node id (an artifact GC pod): its phase is still read", () => {
    const gc = updated((p) => {
      delete p["metadata"].annotations["workflows.argoproj.io/node-id"]
    })
    assert.isTrue(significantPodChange(gc, updated((p) => p["status"].phase = "Failed", gc)))
    assert.isFalse(significantPodChange(gc, updated((p) => main(p).ready = false, gc)))
  })
})

describe("significantTaskResultChange", () => {
  const result: KubeObject = {
    apiVersion: "argoproj.io/v1alpha1",
    kind: "WorkflowTaskResult",
    metadata: { name: "wf-1", namespace: "local", resourceVersion: "5", labels: { "workflows.argoproj.io/workflow": "wf" } },
    outputs: { parameters: [{ name: "p", value: "1" }] }
  }
  it("skips a new resourceVersion alone; wakes on outputs, progress and the completion label", () => {
    assert.isFalse(significantTaskResultChange(result, updated(() => {}, result)))
    assert.isTrue(significantTaskResultChange(result, updated((r) => r["metadata"].labels["workflows.argoproj.io/report-outputs-completed"] = "true", result)))
    assert.isTrue(significantTaskResultChange(result, updated((r) => r["outputs"].parameters[0].value = "2", result)))
    assert.isTrue(significantTaskResultChange(result, updated((r) => r["progress"] = "1/2", result)))
  })
})

describe("significantChange", () => {
  it("adds and deletes always wake their workflow; updates are judged", () => {
    const same = updated(() => {})
    assert.isTrue(significantChange({ kind: "pods", type: "upsert", object: pod }))
    assert.isTrue(significantChange({ kind: "pods", type: "delete", object: pod, previous: pod }))
    assert.isTrue(significantChange({ kind: "workflowtaskresults", type: "delete", object: pod, previous: pod }))
    assert.isFalse(significantChange({ kind: "pods", type: "upsert", object: same, previous: pod }))
    assert.isTrue(significantChange({ kind: "pods", type: "upsert", object: updated((p) => p["status"].phase = "Failed"), previous: pod }))
  })
})

describe("podChangeOwners", () => {
  it("the pod's workflow; and the workflow it left when an update moved it", () => {
    assert.deepStrictEqual(podChangeOwners({ object: pod }, "main"), [{ namespace: "local", name: "wf" }])
    assert.deepStrictEqual(podChangeOwners({ object: updated(() => {}), previous: pod }, "main"), [{ namespace: "local", name: "wf" }])
    const moved = updated((p) => p["metadata"].labels["workflows.argoproj.io/workflow"] = "other")
    assert.deepStrictEqual(podChangeOwners({ object: moved, previous: pod }, "main"), [
      { namespace: "local", name: "other" },
      { namespace: "local", name: "wf" }
    ])
    const foreign = updated((p) => p["metadata"].labels["workflows.argoproj.io/cluster"] = "elsewhere")
    assert.deepStrictEqual(podChangeOwners({ object: foreign, previous: pod }, "main"), [{ namespace: "local", name: "wf" }])
    assert.deepStrictEqual(podChangeOwners({ object: foreign }, "main"), [])
  })
})
