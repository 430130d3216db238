/**
 * What the controller reads of a pod (src/controller/observe.ts): a Pending
 * pod's message says why it waits, as upstream's getPendingReason does.
 */
import { assert, describe, it } from "@effect/vitest"
import { observePod } from "../../src/controller/observe.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"

const pod = (status: Record<string, unknown>): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "argo", annotations: { "workflows.argoproj.io/node-id": "wf-1" } },
  spec: {},
  status
})

describe("observePod", () => {
  it("a pod no node takes: its message is the scheduler's condition, 'Unschedulable: ...'", () => {
    const o = observePod(pod({
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector." }]
    }), "main")
    assert.strictEqual(o?.phase, "Pending")
    assert.strictEqual(o?.message, "Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")
  })

  it("a waiting container explains a Pending pod first; a scheduled pod has no message", () => {
    const waiting = observePod(pod({
      phase: "Pending",
      containerStatuses: [{ name: "main", state: { waiting: { reason: "ErrImagePull", message: "not found" } } }],
      conditions: [{ type: "PodScheduled", status: "True" }]
    }), "main")
    assert.strictEqual(waiting?.message, "ErrImagePull: not found")
    assert.isUndefined(observePod(pod({ phase: "Running", conditions: [{ type: "PodScheduled", status: "True" }] }), "main")?.message)
  })

  it("a containerSet pod: every container's state is observed (even a set of one container named main), and the exit code is the first main container's that ended", () => {
    const single = observePod(pod({
      phase: "Running",
      containerStatuses: [{ name: "main", state: { running: { startedAt: "2025-01-01T00:00:00Z" } } }, { name: "wait", state: { running: {} } }]
    }), "main")
    assert.deepStrictEqual(single?.containers?.map((c) => `${c.name} ${c.state}`), ["main running", "wait running"])
    const set = observePod(pod({
      phase: "Succeeded",
      containerStatuses: [
        { name: "a", state: { terminated: { exitCode: 0, reason: "Completed" } } },
        { name: "b", state: { terminated: { exitCode: 0, reason: "Completed" } } },
        { name: "wait", state: { terminated: { exitCode: 0 } } }
      ]
    }), "main")
    assert.strictEqual(set?.exitCode, 0)
  })
  it("a Failed pod: its own message and every container's state, init containers included, for inferFailedReason; other phases carry none", () => {
    const o = observePod(pod({
      phase: "Failed",
      initContainerStatuses: [{ name: "init", state: { terminated: { exitCode: 64, reason: "Error", message: "artifact a failed to load" } } }],
      containerStatuses: [
        { name: "wait", state: { waiting: { reason: "PodInitializing" } } },
        { name: "main", state: { waiting: { reason: "PodInitializing", message: "not yet" } } },
        { name: "side", state: {} }
      ]
    }), "main")
    assert.deepStrictEqual(o?.failedStatuses, {
      initContainers: [{ name: "init", state: "terminated", exitCode: 64, reason: "Error", message: "artifact a failed to load" }],
      containers: [
        { name: "wait", state: "waiting", reason: "PodInitializing" },
        { name: "main", state: "waiting", reason: "PodInitializing", message: "not yet" },
        { name: "side", state: "running" }
      ]
    })
    const evicted = observePod(pod({ phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." }), "main")
    assert.deepStrictEqual(evicted?.failedStatuses, { podMessage: "The node was low on resource: memory.", initContainers: [], containers: [] })
    assert.isUndefined(observePod(pod({ phase: "Running", containerStatuses: [{ name: "main", state: { running: {} } }] }), "main")?.failedStatuses)
  })
})
