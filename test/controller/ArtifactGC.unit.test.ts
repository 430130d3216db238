import { assert, describe, it } from "@effect/vitest"
import { annotationTasksToDelete, gcObjects, gcPodDeadlineSeconds, groupItems, ownTaskRefusal, tasksToDelete } from "../../src/controller/ArtifactGC.js"
import { isArtifactGcPod } from "../../src/kubelet/artifactGcPod.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import type { Workflow } from "../../src/workflow/model/Workflow.js"

const wfObject: KubeObject = { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", metadata: { name: "wf", namespace: "local", uid: "u1" } }
const wf = { metadata: { name: "wf", namespace: "local" }, spec: { templates: [] } } as unknown as Workflow

describe("artifact GC objects", () => {
  it("the GC pod has a deadline (upstream sets none) and is what the kubelet takes for a GC pod", () => {
    const items = [{ nodeId: "n1", strategy: "OnWorkflowCompletion" as const, cluster: "cluster-1", namespace: "remote", artifact: { name: "out", s3: { key: "k" } } }]
    const [group] = groupItems(wf, "wf", "local", "main", "OnWorkflowCompletion", items as any)
    const { pod, task } = gcObjects(wfObject, wf, {}, "OnWorkflowCompletion", group!, { localCluster: "main", executorImage: "argoexec:v4.0.5", now: 0 })
    assert.strictEqual((pod["spec"] as any).activeDeadlineSeconds, gcPodDeadlineSeconds)
    assert.isTrue(isArtifactGcPod(pod))
    // a remote task has no owner reference (none reaches the workflow there)
    assert.isUndefined(task.metadata.ownerReferences)
  })

  it("the tasks to delete are read from the annotation; anything malformed is ignored", () => {
    const at = (v: string): KubeObject => ({ ...wfObject, metadata: { ...wfObject.metadata, annotations: { [annotationTasksToDelete]: v } } })
    assert.deepStrictEqual(tasksToDelete(at('["cluster-1/remote/t-0"]')), [{ cluster: "cluster-1", namespace: "remote", name: "t-0" }])
    assert.deepStrictEqual(tasksToDelete(at("not json")), [])
    assert.deepStrictEqual(tasksToDelete(at('["x", 3]')), [])
    assert.deepStrictEqual(tasksToDelete(wfObject), [])
  })

  it("only a task the controller made for this workflow may be deleted for it (the list is user-writable)", () => {
    const items = [{ nodeId: "n1", strategy: "OnWorkflowCompletion" as const, cluster: "cluster-1", namespace: "remote", artifact: { name: "out", s3: { key: "k" } } }]
    const [group] = groupItems(wf, "wf", "local", "main", "OnWorkflowCompletion", items as any)
    const { task } = gcObjects(wfObject, wf, {}, "OnWorkflowCompletion", group!, { localCluster: "main", executorImage: "argoexec:v4.0.5", now: 0 })
    assert.isUndefined(ownTaskRefusal(task, "wf", "local"))
    // another namespace's workflow of the same name, another workflow, a renamed task, a bare one
    assert.match(ownTaskRefusal(task, "wf", "tenant-b")!, /workflow-namespace annotation is not tenant-b/)
    assert.match(ownTaskRefusal(task, "other", "local")!, /no GC task name of workflow other/)
    const renamed = { ...task, metadata: { ...task.metadata, name: `${group!.podName}-1` } }
    assert.match(ownTaskRefusal(renamed, "wf", "local")!, /no GC task name/)
    const bare: KubeObject = { apiVersion: "argoproj.io/v1alpha1", kind: "WorkflowArtifactGCTask", metadata: { name: task.metadata.name!, namespace: "remote" } }
    assert.isDefined(ownTaskRefusal(bare, "wf", "local"))
    const otherLabel = { ...task, metadata: { ...task.metadata, labels: { ...task.metadata.labels, "workflows.argoproj.io/workflow": "x" } } }
    assert.match(ownTaskRefusal(otherLabel, "wf", "local")!, /workflow label is not wf/)
  })
})
