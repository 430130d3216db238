/**
 * Watch resilience on real clusters: a remote cluster's control plane goes
 * away in the middle of a workflow and comes back.
 *
 *  1. cluster-1's kube-apiserver and etcd stop (data kept) while a step runs
 *     there, and stay down for a while; meanwhile a workflow on main runs to
 *     the end (one cluster down stalls nothing else). When they are back the
 *     workflow finishes `Succeeded`, every pod was created exactly once, and
 *     deleting the workflow leaves no pod behind.
 *  2. Compaction forcing 410 Gone: cluster-2's API server runs without its
 *     watch cache (so watches read etcd directly); while a step runs there
 *     it stops, etcd's history is compacted past every version it served,
 *     and it starts again. The controller's watch resumes from its last
 *     version, etcd answers "too old" (410 Gone), the controller relists and
 *     the workflow still ends `Succeeded` with one create per pod.
 *
 * Its own namespaces (res-*) and RBAC, like negative.e2e.test.ts; its own
 * controller and a node agent per cluster. cluster-2 gets its usual API server
 * flags back at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { kubeconfigPath, kubectl, kubectlRaw, nodeName, type Proc, startController, startFlotilla, tailLogs, userName, waitFor, getJson, clusterNames } from "./support/clusters.js"
import { apiserverReady, restartControlPlane } from "./support/controlPlane.js"
import {
  applyIsolatedSetup,
  cleanUpIsolatedSetup,
  finishedWorkflow,
  getWorkflow,
  MAIN,
  podCreates,
  podsOfWorkflow,
  sequentialWorkflow,
  standardSetup
} from "./support/isolatedSetup.js"

const SYSTEM_NS = "res-argo"
const WF_NS = "res-local"
const REMOTE_NS = "res-remote"
const WF_RESTART = "res-restart"
const WF_DURING = "res-local-during-outage"
const WF_COMPACT = "res-compaction"

const SETUP = standardSetup("res")

const procs: Array<Proc> = []
let controller: Proc
let cluster2Changed = false

const diagnostics = (): string => tailLogs(procs)

const cleanUp = () => cleanUpIsolatedSetup(SETUP, [[WF_RESTART, WF_NS], [WF_DURING, WF_NS], [WF_COMPACT, WF_NS]])

/** Waits until the workflow's pod for `step` is Running in `cluster`. */
const runningPod = (workflow: string, step: string, cluster: string) =>
  waitFor(`the ${step} pod of ${workflow} running in ${cluster}`, async () =>
    (await podsOfWorkflow(workflow, cluster)).find((p) =>
      p.metadata.annotations?.["workflows.argoproj.io/node-name"]?.endsWith(`.${step}`) && p.status?.phase === "Running"
    ), 120_000, 500, diagnostics)

/**
 * Every pod of `workflow` in `cluster`/res-remote was created exactly once
 * (audit log entries after `auditBaseline`), by the workflow user: no
 * duplicate, not even a refused (409) second attempt.
 */
const expectOneCreatePerPod = async (workflow: string, cluster: string, expectedPods: number, auditBaseline: number) => {
  const pods = await podsOfWorkflow(workflow, cluster)
  expect(pods.map((p) => p.metadata.namespace)).toEqual(Array(expectedPods).fill(REMOTE_NS))
  const creates = podCreates(REMOTE_NS, cluster).slice(auditBaseline).filter((e) => pods.some((p) => p.metadata.name === e.objectRef?.name))
  for (const pod of pods) {
    const mine = creates.filter((e) => e.objectRef?.name === pod.metadata.name)
    expect(mine.map((e) => `${e.user.username} ${e.responseStatus?.code}`), `creates of ${pod.metadata.name}`).toEqual([`${userName.workflow} 201`])
  }
  return pods
}

/** Deleting the workflow deletes its remote pods and releases the finalizer. */
const expectCleanDeletion = async (workflow: string, cluster: string) => {
  await kubectl(MAIN, ["delete", "workflows.argoproj.io", workflow, "-n", WF_NS, "--wait=false"])
  await waitFor(`the pods of ${workflow} deleted in ${cluster}`, async () =>
    (await podsOfWorkflow(workflow, cluster)).length === 0 ? true : undefined, 90_000, 500, diagnostics)
  await waitFor(`workflow ${workflow} gone (finalizer released)`, async () =>
    (await getWorkflow(workflow, WF_NS)) === undefined ? true : undefined, 90_000, 500, diagnostics)
}

/** Controller log lines written after `offset` (a length of its log earlier). */
const controllerLogSince = (offset: number): Array<string> => controller.log().slice(offset).split("\n")

describe("watch resilience on real clusters", () => {
  beforeAll(async () => {
    await cleanUp()
    await applyIsolatedSetup(SETUP)
    for (const c of clusterNames()) {
      procs.push(startFlotilla(`res-kubelet-${c}`, ["kubelet", "--kubeconfig", kubeconfigPath(c, "node-agent"), "--node-name", nodeName(c)]))
    }
    controller = startController("res-controller", MAIN, SYSTEM_NS)
    procs.push(controller)
    for (const c of clusterNames()) {
      await waitFor(`node ${nodeName(c)} registered in ${c}`, async () => (await getJson(c, ["node", nodeName(c)])) ?? undefined, 60_000, 500, diagnostics)
    }
  })

  afterAll(async () => {
    // whatever happened, cluster-2 gets up.sh's API server flags back
    if (cluster2Changed || !(await apiserverReady("cluster-2"))) await restartControlPlane("cluster-2", { apiserverOnly: true })
    await Promise.all(procs.map((p) => p.stop()))
    for (const p of procs) console.log(`e2e: ${p.name} output: ${p.logFile}`)
    await cleanUp()
  })

  it("cluster-1's API server and etcd restart mid-workflow: it still succeeds, main keeps working meanwhile, no pod duplicated or left behind", async () => {
    const REMOTE = "cluster-1"
    // clusters kept between runs (npm run clusters:up) keep their audit log: count from here
    const auditBaseline = podCreates(REMOTE_NS, REMOTE).length
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: sequentialWorkflow(WF_RESTART, WF_NS, [
        { name: "before", script: "echo before", cluster: REMOTE, namespace: REMOTE_NS },
        { name: "across", script: "sleep 25; echo across", cluster: REMOTE, namespace: REMOTE_NS },
        { name: "after", script: "echo after", cluster: REMOTE, namespace: REMOTE_NS }
      ])
    })
    await runningPod(WF_RESTART, "across", REMOTE)

    const restart = restartControlPlane(REMOTE, { downSeconds: 20 })
    await waitFor(`${REMOTE}'s API server down`, async () => ((await apiserverReady(REMOTE)) ? undefined : true), 30_000, 200)
    // one cluster down: a workflow on main still runs to the end
    await kubectl(MAIN, ["create", "-f", "-"], { input: sequentialWorkflow(WF_DURING, WF_NS, [{ name: "local", script: "echo still serving" }]) })
    const during = await finishedWorkflow(WF_DURING, WF_NS, diagnostics, 60_000)
    expect(during.wf.status.phase, JSON.stringify(during.wf.status, null, 2)).toBe("Succeeded")
    expect(await apiserverReady(REMOTE), `the workflow on main ended while ${REMOTE} was still down`).toBe(false)
    const restarted = await restart
    console.log(`e2e: ${restarted.output.trim().split("\n").slice(-1)[0]}`)

    const { wf, nodes } = await finishedWorkflow(WF_RESTART, WF_NS, diagnostics, 180_000)
    expect(wf.status.phase, JSON.stringify(wf.status, null, 2)).toBe("Succeeded")
    expect(nodes.filter((n) => n.type === "Pod").map((n) => n.phase)).toEqual(["Succeeded", "Succeeded", "Succeeded"])
    await expectOneCreatePerPod(WF_RESTART, REMOTE, 3, auditBaseline)
    const relists = controller.log().split("\n").filter((l) => l.includes("is gone, relisting") && l.includes(`cluster=${REMOTE}`))
    console.log(`e2e: controller relists of ${REMOTE} after the restart: ${relists.length}${relists[0] ? ` (${relists[0]})` : ""}`)
    await expectCleanDeletion(WF_RESTART, REMOTE)
  })

  it("compaction forces 410 Gone on cluster-2 (watches served by etcd): the controller relists and the workflow succeeds", async () => {
    const REMOTE = "cluster-2"
    const auditBaseline = podCreates(REMOTE_NS, REMOTE).length
    // no watch cache: a watch from a compacted version is refused by etcd itself
    cluster2Changed = true
    await restartControlPlane(REMOTE, { apiserverOnly: true, apiserverArgs: ["--watch-cache=false"] })
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: sequentialWorkflow(WF_COMPACT, WF_NS, [
        { name: "across", script: "sleep 20; echo across", cluster: REMOTE, namespace: REMOTE_NS },
        { name: "after", script: "echo after", cluster: REMOTE, namespace: REMOTE_NS }
      ])
    })
    await runningPod(WF_COMPACT, "across", REMOTE)
    const logOffset = controller.log().length
    const { compactedRevision } = await restartControlPlane(REMOTE, {
      apiserverOnly: true,
      compact: true,
      apiserverArgs: ["--watch-cache=false"]
    })
    expect(compactedRevision).toBeGreaterThan(0)

    // the controller's resumed pod watch was refused by etcd and it relisted
    const gone = await waitFor("the controller to relist cluster-2's pods after 410 Gone", () =>
      controllerLogSince(logOffset).find((l) =>
        l.includes("watch pods resourceVersion") && l.includes("is gone, relisting") && l.includes(`cluster=${REMOTE}`)
      ), 120_000, 500, diagnostics)
    expect(gone).toContain("The resourceVersion for the provided watch is too old")
    console.log(`e2e: ${gone}`)

    const { wf } = await finishedWorkflow(WF_COMPACT, WF_NS, diagnostics, 180_000)
    expect(wf.status.phase, JSON.stringify(wf.status, null, 2)).toBe("Succeeded")
    await expectOneCreatePerPod(WF_COMPACT, REMOTE, 2, auditBaseline)
    await expectCleanDeletion(WF_COMPACT, REMOTE)
    // nothing of either workflow is left in any remote cluster
    for (const c of ["cluster-1", "cluster-2"]) {
      const left = await kubectlRaw(c, ["get", "pods", "-n", REMOTE_NS, "-o", "name"])
      expect(left.stdout.trim(), `pods left in ${c}/${REMOTE_NS}`).toBe("")
    }
  })
})
