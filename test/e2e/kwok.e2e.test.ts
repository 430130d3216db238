/**
 * Pod lifecycle and scale on kwok nodes (scripts/clusters/up.sh: one fake node
 * per cluster, address 127.0.0.1, tainted so only pods that tolerate it land
 * there). kwok plays the kubelet: it runs nothing, and moves each pod through
 * Pending -> Running -> Succeeded/Failed as its annotations ask
 * (scripts/clusters/kwok-pod-stages.yaml), with the real kube-scheduler
 * binding it. No flotilla node agent runs here.
 *
 *  - scale: 100 pods in cluster-1 and 100 in cluster-2 in one step group, all
 *    created by the workflow user, each exactly once;
 *  - failure and retries: exit code 3 three times (retryStrategy limit 2);
 *  - a workflow deleted while its remote pod runs: the pod is deleted, then
 *    the finalizer released.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { getJson, kubeconfigPath, kubectl, type Proc, startController, startFlotilla, tailLogs, userName, waitFor } from "./support/clusters.js"
import * as Isolated from "./support/isolatedSetup.js"

const SETUP = Isolated.standardSetup("kwok")
const WF_NS = SETUP.workflowNamespaces[0]!
const REMOTE_NS = SETUP.remoteNamespace
const MAIN = Isolated.MAIN
const [WF_SCALE, WF_RETRY, WF_DELETE] = ["kwok-scale", "kwok-retry", "kwok-delete-running"] as const
const PER_CLUSTER = 100

const procs: Array<Proc> = []
const diagnostics = (): string => tailLogs(procs)

/** A container template whose pod goes to the kwok node of `cluster` and ends as `outcome` after `runFor`. */
const kwokTemplate = (
  name: string,
  cluster: string,
  outcome: { readonly outcome: "succeed" | "fail"; readonly runFor: string; readonly exitCode?: number },
  extra: Record<string, unknown> = {}
) => ({
  name,
  cluster,
  namespace: REMOTE_NS,
  metadata: {
    annotations: {
      "e2e.flotilla.dev/outcome": outcome.outcome,
      "e2e.flotilla.dev/run-for": outcome.runFor,
      ...(outcome.exitCode !== undefined ? { "e2e.flotilla.dev/exit-code": String(outcome.exitCode) } : {})
    }
  },
  nodeSelector: { type: "kwok" },
  tolerations: [{ key: "kwok.x-k8s.io/node", operator: "Exists", effect: "NoSchedule" }],
  container: { image: "alpine:3.7", command: ["sh", "-c", "exit 0"] },
  ...extra
})

const manifest = (name: string, templates: ReadonlyArray<Record<string, unknown>>) =>
  Isolated.workflowManifest(name, WF_NS, templates)

const cleanUp = () => Isolated.cleanUpIsolatedSetup(SETUP, [[WF_SCALE, WF_NS], [WF_RETRY, WF_NS], [WF_DELETE, WF_NS]])

/** Creates of the given pods after `baseline` in the audit log, as "user code" per pod name. */
const createsByPod = (cluster: string, baseline: number, names: ReadonlyArray<string>) => {
  const byPod = new Map<string, Array<string>>(names.map((n) => [n, []]))
  for (const e of Isolated.podCreates(REMOTE_NS, cluster).slice(baseline)) {
    byPod.get(e.objectRef?.name ?? "")?.push(`${e.user.username} ${e.responseStatus?.code}`)
  }
  return byPod
}

describe("pod lifecycle and scale on kwok nodes", () => {
  beforeAll(async () => {
    await cleanUp()
    await Isolated.applyIsolatedSetup(SETUP)
    procs.push(startController("kwok-controller", MAIN, SETUP.systemNamespace))
  })

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    for (const p of procs) console.log(`e2e: ${p.name} output: ${p.logFile}`)
    await cleanUp()
  })

  it(`${PER_CLUSTER} pods in each remote cluster at once: all Succeeded on the kwok nodes, each created once by the user`, async () => {
    const baselines = { "cluster-1": Isolated.podCreates(REMOTE_NS, "cluster-1").length, "cluster-2": Isolated.podCreates(REMOTE_NS, "cluster-2").length }
    const started = Date.now()
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: manifest(WF_SCALE, [
        {
          name: "main",
          steps: [[
            { name: "one", template: "on-cluster-1", withSequence: { count: String(PER_CLUSTER) } },
            { name: "two", template: "on-cluster-2", withSequence: { count: String(PER_CLUSTER) } }
          ]]
        },
        kwokTemplate("on-cluster-1", "cluster-1", { outcome: "succeed", runFor: "2s" }),
        kwokTemplate("on-cluster-2", "cluster-2", { outcome: "succeed", runFor: "2s" })
      ])
    })
    const { wf, nodes } = await Isolated.finishedWorkflow(WF_SCALE, WF_NS, diagnostics, 300_000)
    const seconds = (Date.now() - started) / 1000
    expect(wf.status.phase, JSON.stringify(wf.status.message)).toBe("Succeeded")
    const podNodes = nodes.filter((n) => n.type === "Pod")
    expect(podNodes).toHaveLength(2 * PER_CLUSTER)
    expect(podNodes.every((n) => n.phase === "Succeeded")).toBe(true)
    for (const cluster of ["cluster-1", "cluster-2"] as const) {
      const pods = await Isolated.podsOfWorkflow(WF_SCALE, cluster)
      expect(pods).toHaveLength(PER_CLUSTER)
      expect(new Set(pods.map((p) => p.spec.nodeName))).toEqual(new Set([`kwok-${cluster}-0`]))
      expect(pods.every((p) => p.status.phase === "Succeeded")).toBe(true)
      const creates = createsByPod(cluster, baselines[cluster], pods.map((p) => p.metadata.name))
      for (const [pod, made] of creates) expect(made, `creates of ${cluster}/${pod}`).toEqual([`${userName.workflow} 201`])
    }
    console.log(`e2e: ${2 * PER_CLUSTER} kwok pods in 2 remote clusters: workflow Succeeded ${seconds.toFixed(1)}s after submission`)
    await kubectl(MAIN, ["delete", "workflows.argoproj.io", WF_SCALE, "-n", WF_NS, "--wait=false"])
    for (const cluster of ["cluster-1", "cluster-2"]) {
      await waitFor(`the pods of ${WF_SCALE} deleted in ${cluster}`, async () =>
        (await Isolated.podsOfWorkflow(WF_SCALE, cluster)).length === 0 ? true : undefined, 120_000, 1000, diagnostics)
    }
    await waitFor(`${WF_SCALE} gone (finalizer released)`, async () =>
      (await Isolated.getWorkflow(WF_SCALE, WF_NS)) === undefined ? true : undefined, 120_000, 500, diagnostics)
  })

  it("a pod failing with exit code 3 is retried twice, then the workflow fails saying so", async () => {
    const baseline = Isolated.podCreates(REMOTE_NS, "cluster-1").length
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: manifest(WF_RETRY, [
        kwokTemplate("main", "cluster-1", { outcome: "fail", runFor: "1s", exitCode: 3 }, { retryStrategy: { limit: 2 } })
      ])
    })
    const { wf, nodes } = await Isolated.finishedWorkflow(WF_RETRY, WF_NS, diagnostics, 180_000)
    expect(wf.status.phase).toBe("Failed")
    const attempts = nodes.filter((n) => n.type === "Pod")
    expect(attempts.map((n) => n.phase)).toEqual(["Failed", "Failed", "Failed"])
    // upstream's inferFailedReason (v4.0.5) names the container: "main: Error (exit code 3)"
    for (const n of attempts) expect(n.message).toBe("main: Error (exit code 3)")
    expect(nodes.find((n) => n.type === "Retry")?.phase).toBe("Failed")
    const pods = await Isolated.podsOfWorkflow(WF_RETRY, "cluster-1")
    expect(pods).toHaveLength(3)
    expect(pods.every((p) => p.status.phase === "Failed")).toBe(true)
    const creates = createsByPod("cluster-1", baseline, pods.map((p) => p.metadata.name))
    for (const [pod, made] of creates) expect(made, `creates of ${pod}`).toEqual([`${userName.workflow} 201`])
  })

  it("deleting a workflow whose remote pod is running deletes the pod, then releases the finalizer", async () => {
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: manifest(WF_DELETE, [kwokTemplate("main", "cluster-2", { outcome: "succeed", runFor: "10m" })])
    })
    await waitFor("the pod running on cluster-2's kwok node", async () =>
      (await Isolated.podsOfWorkflow(WF_DELETE, "cluster-2")).find((p) => p.status?.phase === "Running"), 120_000, 500, diagnostics)
    await waitFor("the workflow's node Running", async () => {
      const wf = await Isolated.getWorkflow(WF_DELETE, WF_NS)
      return Object.values<any>(wf?.status?.nodes ?? {}).some((n) => n.type === "Pod" && n.phase === "Running") ? true : undefined
    }, 60_000, 500, diagnostics)
    expect((await Isolated.getWorkflow(WF_DELETE, WF_NS)).metadata.finalizers ?? []).not.toHaveLength(0)
    await kubectl(MAIN, ["delete", "workflows.argoproj.io", WF_DELETE, "-n", WF_NS, "--wait=false"])
    await waitFor("the running pod deleted in cluster-2", async () =>
      (await Isolated.podsOfWorkflow(WF_DELETE, "cluster-2")).length === 0 ? true : undefined, 90_000, 500, diagnostics)
    await waitFor(`${WF_DELETE} gone (finalizer released)`, async () =>
      (await Isolated.getWorkflow(WF_DELETE, WF_NS)) === undefined ? true : undefined, 90_000, 500, diagnostics)
    expect(await getJson(MAIN, ["workflows.argoproj.io", WF_DELETE, "-n", WF_NS])).toBeUndefined()
  })
})
