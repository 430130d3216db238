/**
 * Artifact GC bookkeeping (engine/artifactGC.ts): the finalizer a workflow needs, the strategies
 * ready, and the reported artifacts each deletes, by the cluster and namespace their pod ran in.
 */
import { describe, expect, it } from "vitest"
import type { ConfigMapRead, EngineConfig } from "../../../src/workflow/engine/contract.js"
import { config, Sim, workflow } from "./harness.js"

const withRepo: EngineConfig = { ...config, artifactRepository: { s3: { bucket: "b", endpoint: "s3:9000" } } }
const spec = (gc: Record<string, unknown> | undefined, own?: Record<string, unknown>) => ({
  entrypoint: "main",
  ...(gc !== undefined ? { artifactGC: gc } : {}),
  templates: [
    { name: "main", steps: [[{ name: "a", template: "gen" }, { name: "b", template: "gen-remote" }]] },
    { name: "gen", container: { image: "busybox" }, outputs: { artifacts: [{ name: "out", path: "/o", ...(own ? { artifactGC: own } : {}) }] } },
    { name: "gen-remote", cluster: "cluster-1", namespace: "remote", container: { image: "busybox" }, outputs: { artifacts: [{ name: "out", path: "/o" }] } }
  ]
})
const run = (s: Record<string, unknown>) => {
  const sim = new Sim(workflow(s))
  sim.cfg = withRepo
  sim.configMapStore = new Map<string, ConfigMapRead>()
  return sim
}

describe("artifact GC bookkeeping", () => {
  it("no strategy: no finalizer, nothing to collect", () => {
    const sim = run(spec(undefined))
    expect(sim.tick().artifactGC).toBeUndefined()
  })

  it("OnWorkflowCompletion: the finalizer from the start; at completion every reported artifact, where its pod ran", () => {
    const sim = run(spec({ strategy: "OnWorkflowCompletion", serviceAccountName: "gc" }))
    const first = sim.tick()
    expect(first.artifactGC).toEqual({ finalizer: true, ready: [], items: [] })
    const pods = sim.apply(first, "Running")
    for (const p of pods) sim.finish(p.nodeId, true, { artifacts: [{ name: "out", path: "/o", s3: { bucket: "b", key: `wf/${p.pod.metadata.name}/out.tgz` } }] })
    const done = sim.tick()
    expect(done.status["phase"]).toBe("Succeeded")
    expect(done.artifactGC!.finalizer).toBe(true)
    expect(done.artifactGC!.ready).toEqual(["OnWorkflowCompletion"])
    expect(done.artifactGC!.items.map((i) => [i.cluster, i.namespace, i.serviceAccountName, i.artifact.s3?.["key"]]).sort()).toEqual(
      pods.map((p) => [p.cluster, p.namespace, "gc", `wf/${p.pod.metadata.name}/out.tgz`]).sort()
    )
    // once the controller records the strategy processed, nothing is left and the finalizer can go
    sim.wf = { ...sim.wf, status: { ...(sim.wf.status as object), artifactGCStatus: { strategiesProcessed: { OnWorkflowCompletion: true } } } }
    const after = sim.tick()
    expect(after.artifactGC!.ready).toEqual([])
    expect(after.artifactGC!.finalizer).toBe(true)
    // deleted: the deletion strategy is ready too (nothing to delete), and once recorded the finalizer can go
    sim.wf = { ...sim.wf, metadata: { ...sim.wf.metadata, deletionTimestamp: "2025-01-01T00:01:00Z" } }
    expect(sim.tick().artifactGC).toEqual({ finalizer: true, ready: ["OnWorkflowDeletion"], items: [] })
    sim.wf = { ...sim.wf, status: { ...(sim.wf.status as object), artifactGCStatus: { strategiesProcessed: { OnWorkflowCompletion: true, OnWorkflowDeletion: true } } } }
    expect(sim.tick().artifactGC).toEqual({ finalizer: false, ready: [], items: [] })
  })

  it("an artifact's own strategy wins; OnWorkflowDeletion waits for the deletion", () => {
    const sim = run(spec({ strategy: "OnWorkflowDeletion" }, { strategy: "Never" }))
    const pods = sim.apply(sim.tick(), "Running")
    for (const p of pods) sim.finish(p.nodeId, true, { artifacts: [{ name: "out", path: "/o", s3: { key: p.pod.metadata.name! }, ...(p.cluster === "main" ? { artifactGC: { strategy: "Never" } } : {}) }] })
    expect(sim.tick().artifactGC!.ready).toEqual(["OnWorkflowCompletion"])
    expect(sim.last!.artifactGC!.items).toEqual([])
    sim.wf = { ...sim.wf, metadata: { ...sim.wf.metadata, deletionTimestamp: "2025-01-01T00:01:00Z" } }
    const deleting = sim.tick().artifactGC!
    expect(deleting.ready).toEqual(["OnWorkflowCompletion", "OnWorkflowDeletion"])
    expect(deleting.items.map((i) => [i.strategy, i.cluster, i.namespace])).toEqual([["OnWorkflowDeletion", "cluster-1", "remote"]])
  })
})
