import { assert, describe, it } from "@effect/vitest"
import {
  clusterNames,
  countControllerRequests,
  growth,
  nodeLatencies,
  partyOf,
  remoteNamespace,
  type ScalePoint,
  scaleTable,
  spreadWorkload
} from "../../bench/clusters.js"
import { scaleSvg } from "../../bench/plot.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { AuditEntry } from "../../src/testing/InMemoryKube.js"

const entry = (seq: number, identity: string, verb: AuditEntry["verb"], resource: AuditEntry["resource"], subresource?: string): AuditEntry => ({
  seq,
  identity,
  verb,
  resource,
  ...(subresource ? { subresource } : {}),
  allowed: true,
  outcome: "Success"
})

const point = (clusters: number, cpuMsPerWorkflow: number, apiRequestsPerWorkflow: number): ScalePoint => ({
  clusters,
  remoteShare: (clusters - 1) / clusters,
  workflows: 10,
  succeeded: 10,
  cpuMsPerWorkflow,
  apiRequestsPerWorkflow,
  apiRequestsPerWorkflowByVerb: {},
  workflowsPerMinute: 100,
  p99NodeLatencyMs: 50,
  peakRssMiB: 300
})

describe("bench clusters", () => {
  it("spreads the workflows evenly: main in the workflow's namespace, the remote clusters through the template", () => {
    assert.deepStrictEqual(clusterNames(1), ["main"])
    assert.deepStrictEqual(clusterNames(3), ["main", "cluster-1", "cluster-2"])
    assert.strictEqual(clusterNames(10).length, 10)
    const wfs = spreadWorkload(7, clusterNames(3))
    const template = (i: number) => (wfs[i]!["spec"] as { templates: Array<Record<string, unknown>> }).templates[0]!
    assert.deepStrictEqual(wfs.map((w) => w.metadata.name), ["wf-0", "wf-1", "wf-2", "wf-3", "wf-4", "wf-5", "wf-6"])
    assert.deepStrictEqual([0, 1, 2, 3].map((i) => template(i)["cluster"]), [undefined, "cluster-1", "cluster-2", undefined])
    assert.strictEqual(template(1)["namespace"], remoteNamespace)
    assert.isUndefined(template(0)["namespace"])
    assert.isDefined(template(0)["container"])
    // the embedded runtime provisions exactly those clusters, namespaces and the owner's kubeconfig secret
    const placement = Embedded.placementOf(wfs)
    assert.deepStrictEqual([...placement.clusters].sort(), ["cluster-1", "cluster-2", "main"])
    assert.deepStrictEqual([...placement.namespaces.get("cluster-1")!], [remoteNamespace])
    assert.deepStrictEqual([...placement.workflowNamespaces.get("bench")!], ["workflow"])
  })

  it("tells the controller's calls from the simulated cluster's and the harness's by identity", () => {
    assert.strictEqual(partyOf("controller"), "controller")
    assert.strictEqual(partyOf("workflow"), "controller") // the owner's credentials: only the controller holds them
    assert.strictEqual(partyOf("kubelet"), "cluster")
    assert.strictEqual(partyOf("scheduler"), "cluster")
    assert.strictEqual(partyOf(Embedded.serviceAccountUser("bench", "default")), "cluster")
    assert.strictEqual(partyOf("admin"), "harness")
    assert.strictEqual(partyOf("system:anonymous"), "other")
  })

  it("counts the controller's calls after the start of the run, by verb, cluster and resource", () => {
    const logs = new Map<string, ReadonlyArray<AuditEntry>>([
      ["main", [
        entry(1, "controller", "list", "workflows"), // before the run
        entry(2, "admin", "create", "workflows"),
        entry(3, "workflow", "create", "pods"),
        entry(4, "kubelet", "patch", "pods", "status"),
        entry(5, "controller", "update", "workflows"),
        entry(6, "controller", "update", "workflows")
      ]],
      ["cluster-1", [entry(1, "workflow", "create", "pods"), entry(2, "scheduler", "update", "pods", "binding")]]
    ])
    const counts = countControllerRequests(logs, new Map([["main", 1], ["cluster-1", 0]]))
    assert.strictEqual(counts.total, 4)
    assert.deepStrictEqual(counts.byVerb, { create: 2, update: 2 })
    assert.deepStrictEqual(counts.byCluster, { main: 3, "cluster-1": 1 })
    assert.deepStrictEqual(counts.byRequest, { "create pods": 2, "update workflows": 2 })
    assert.deepStrictEqual(counts.byOtherParty, { cluster: 2, harness: 1 })
    assert.strictEqual(countControllerRequests(logs).total, 5)
  })

  it("pairs each pod's done with its node's, never below zero, sorted", () => {
    const pods = new Map([["a/a", 100], ["b/b", 200], ["c/c", 300], ["d/d", 400]])
    const nodes = new Map([["a/a", 350], ["b/b", 190], ["c/c", 310]])
    assert.deepStrictEqual(nodeLatencies(pods, nodes), [0, 10, 250])
  })

  it("grows: the most clusters' cost over the fewest's", () => {
    const points = [point(1, 4, 4), point(3, 4.6, 5.33), point(10, 5, 5.8)]
    assert.strictEqual(growth(points, (p) => p.cpuMsPerWorkflow), 1.25)
    assert.strictEqual(growth(points, (p) => p.apiRequestsPerWorkflow), 1.45)
    assert.isNaN(growth([point(1, 4, 4)], (p) => p.cpuMsPerWorkflow))
    const table = scaleTable({ name: "controller.clusterScale", workflows: 10, points, cpuGrowth: 1.25, requestGrowth: 1.45, wallSeconds: 1 })
    assert.strictEqual(table.split("\n").length, 4)
    assert.include(table.split("\n")[3]!, "5.8")
  })

  it("draws cost per workflow against clusters as one well-formed SVG", () => {
    const svg = scaleSvg("cost <per> workflow", [point(10, 5, 5.8), point(1, 4, 4), point(3, 4.6, 5.33)])
    assert.isTrue(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    assert.include(svg, "cost &lt;per&gt; workflow")
    assert.strictEqual(svg.match(/<polyline /g)?.length, 2)
    assert.strictEqual(svg.match(/<circle /g)?.length, 6)
    assert.include(svg, ">5.8<")
    assert.notInclude(svg, "NaN")
    const open = (svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g) ?? []).length
    const close = (svg.match(/<\/[a-z]+>/g) ?? []).length
    assert.strictEqual(open, close)
    assert.notInclude(scaleSvg("empty", []), "NaN")
    assert.notInclude(scaleSvg("empty", []), "Infinity")
  })
})
