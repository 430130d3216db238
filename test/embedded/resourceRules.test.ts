/**
 * The rights the embedded runtime gives a resource template's pod (and the
 * real-cluster conformance driver grants likewise): the action's verbs on
 * what it acts on, where: the manifest's kind, or for a patch through flags
 * (a JSON patch, a manifest without kind) the object the flags name.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"

const wf = (resource: Record<string, unknown>, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "wf", namespace: "argo" },
  spec: { entrypoint: "main", templates: [{ name: "main", resource, ...extra }] }
})

const rulesOf = (w: KubeObject, cluster = Embedded.localClusterName) => Embedded.placementOf([w]).resourceRules?.get(cluster) ?? []

describe("resource templates' rights (placementOf resourceRules)", () => {
  it("a create gets create and get on the manifest's kind, in the manifest's namespace or the pod's", () => {
    expect(rulesOf(wf({ action: "create", manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: x-\n" }))).toEqual([
      { verbs: ["create", "get"], resources: ["configmaps"], namespaces: ["argo"] }
    ])
  })

  it("a JSON patch through flags gets patch rights on what the flags name, not on nothing", () => {
    const json = wf({ action: "patch", mergeStrategy: "json", flags: ["pod", "{{pod.name}}"], manifest: "- op: add\n  path: /metadata/annotations/foo\n  value: bar\n" })
    expect(rulesOf(json)).toEqual([{ verbs: ["get", "patch", "update"], resources: ["pods"], namespaces: ["argo"] }])
    const merge = wf({ action: "patch", mergeStrategy: "merge", flags: ["workflow/{{workflow.name}}", "-n", "other"], manifest: "metadata:\n  labels:\n    foo: bar\n" })
    expect(rulesOf(merge)).toEqual([{ verbs: ["get", "patch", "update"], resources: ["workflows"], namespaces: ["other"] }])
  })

  it("a patch whose manifest names its kind (strategic merge) gets rights on that kind, whatever the flags", () => {
    const w = wf({ action: "patch", flags: ["configmap", "x"], manifest: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n" })
    expect(rulesOf(w)).toEqual([{ verbs: ["get", "patch", "update"], resources: ["pods"], namespaces: ["argo"] }])
  })

  it("a delete or get with flags and no manifest gets its rights on what the flags name, as the pod targets it", () => {
    expect(rulesOf(wf({ action: "delete", flags: ["configmap", "x"] }))).toEqual([
      { verbs: ["delete"], resources: ["configmaps"], namespaces: ["argo"] }
    ])
    expect(rulesOf(wf({ action: "get", flags: ["workflow/{{workflow.name}}", "-n", "other"] }))).toEqual([
      { verbs: ["get"], resources: ["workflows"], namespaces: ["other"] }
    ])
  })

  it("in the template's cluster and namespace", () => {
    const w = wf({ action: "patch", mergeStrategy: "json", flags: ["pod", "p"], manifest: "[]" }, { cluster: "cluster-1", namespace: "remote" })
    expect(rulesOf(w, "cluster-1")).toEqual([{ verbs: ["get", "patch", "update"], resources: ["pods"], namespaces: ["remote"] }])
    expect(rulesOf(w)).toEqual([])
  })
})
