/**
 * Negative cases of the multi-cluster set-up on real clusters (see
 * seed.e2e.test.ts for the positive one). Everything here lives apart from the
 * seed's objects so that the two files can run in either order:
 *
 *  - the controller's system namespace is `neg-argo` on main (its own
 *    workflow-controller-configmap, argo-kubeconfig and leader election lease);
 *    argo-kubeconfig's contexts use namespace `neg-remote`;
 *  - workflows run in `neg-local` (user kubeconfig present) and `tenant-b`
 *    (no user kubeconfig at all);
 *  - the workflow user may create pods in cluster-1/neg-remote only: in
 *    cluster-2/neg-remote (also a managed namespace) it has no role binding;
 *  - RBAC objects are named `neg-*` and removed at the end with the namespaces.
 *
 * It starts its own controller (`--namespace neg-argo`) and a node agent for
 * cluster-1 (node `flotilla-cluster-1`, the seed's name: the seed deletes it on
 * start, and a stale one left by the seed is deleted here before use) and
 * stops both in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  auditEvents,
  getJson,
  kubeconfigPath,
  kubectl,
  kubectlRaw,
  type Proc,
  sleep,
  startController, startFlotilla,
  tailLogs,
  nodeName,
  userName,
  waitFor
} from "./support/clusters.js"
import {
  applyIsolatedSetup,
  cleanUpIsolatedSetup,
  finishedWorkflow,
  type IsolatedSetup,
  MAIN,
  podCreates,
  podsOfWorkflow,
  workflowManifest
} from "./support/isolatedSetup.js"

const REMOTE = "cluster-1"
const SYSTEM_NS = "neg-argo"
const WF_NS = "neg-local"
const TENANT_NS = "tenant-b"
const REMOTE_NS = "neg-remote"
const DENIED = "cluster-2"
const WF_DENIED = "neg-denied"
const WF_TENANT = "neg-tenant"
const WF_OK = "neg-user-creates"

const SETUP: IsolatedSetup = {
  prefix: "neg",
  systemNamespace: SYSTEM_NS,
  workflowNamespaces: [WF_NS, TENANT_NS],
  // neg-local only: tenant-b has no user kubeconfig at all
  userSecretIn: [WF_NS],
  remoteNamespace: REMOTE_NS,
  // the workflow user may create pods in cluster-1/neg-remote, and not in cluster-2/neg-remote
  userMayCreateIn: [REMOTE]
}

const procs: Array<Proc> = []

const diagnostics = (): string => tailLogs(procs)

const whalesayIn = (name: string, namespace: string, cluster: string): string =>
  workflowManifest(name, namespace, [{ name: "main", cluster, namespace: REMOTE_NS, container: { image: "docker/whalesay" } }])

const finished = (name: string, namespace: string) => finishedWorkflow(name, namespace, diagnostics)
const remotePodsOf = (workflow: string, cluster = REMOTE) => podsOfWorkflow(workflow, cluster)

/** Removes everything this file creates (also what an interrupted earlier run left behind). */
const cleanUp = async () => {
  await cleanUpIsolatedSetup(SETUP, [[WF_DENIED, WF_NS], [WF_OK, WF_NS], [WF_TENANT, TENANT_NS]])
  await kubectlRaw(REMOTE, ["delete", "node", nodeName(REMOTE), "--ignore-not-found"])
}

describe("negative cases on real clusters", () => {
  beforeAll(async () => {
    await cleanUp()

    await applyIsolatedSetup(SETUP)

    // ---------------------------------------------------------------- processes
    procs.push(startFlotilla(`neg-kubelet-${REMOTE}`, ["kubelet", "--kubeconfig", kubeconfigPath(REMOTE, "node-agent"), "--node-name", nodeName(REMOTE)]))
    procs.push(startController("neg-controller", MAIN, SYSTEM_NS))
    await waitFor(`node ${nodeName(REMOTE)} registered in ${REMOTE}`, async () => (await getJson(REMOTE, ["node", nodeName(REMOTE)])) ?? undefined, 60_000, 500, diagnostics)
  })

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    for (const p of procs) console.log(`e2e: ${p.name} output: ${p.logFile}`)
    await cleanUp()
  })

  it("the user may not create pods in cluster-2/neg-remote: the node fails with forbidden, and creation is not retried", async () => {
    const can = async (c: string) => (await kubectlRaw(c, ["auth", "can-i", "create", "pods", "-n", REMOTE_NS], { identity: "workflow" })).stdout.trim()
    expect(await can(DENIED)).toBe("no")
    expect(await can(REMOTE)).toBe("yes")
    // only this run's events count (clusters started by npm run clusters:up keep their audit log)
    const baseline = podCreates(REMOTE_NS, DENIED).length
    await kubectl(MAIN, ["create", "-f", "-"], { input: whalesayIn(WF_DENIED, WF_NS, DENIED) })
    const { wf, podNode } = await finished(WF_DENIED, WF_NS)
    expect(["Failed", "Error"]).toContain(wf.status.phase)
    expect(podNode, JSON.stringify(wf.status, null, 2)).toBeDefined()
    expect(["Failed", "Error"]).toContain(podNode.phase)
    expect(podNode.message).toMatch(/forbidden/i)
    expect(podNode.message).toContain(REMOTE_NS)
    // the apiserver saw the attempt(s), all refused, and no more come
    const attempts = await waitFor("the audit event of the refused create", () => {
      const e = podCreates(REMOTE_NS, DENIED).slice(baseline)
      return e.length > 0 ? e : undefined
    }, 30_000)
    expect(attempts.every((e) => e.user.username === userName.workflow && e.responseStatus?.code === 403)).toBe(true)
    await sleep(20_000)
    const later = podCreates(REMOTE_NS, DENIED).slice(baseline)
    expect(later.length).toBeGreaterThanOrEqual(1)
    expect(later.length).toBeLessThanOrEqual(3)
    expect(later.every((e) => e.user.username === userName.workflow && e.responseStatus?.code === 403)).toBe(true)
    expect(await remotePodsOf(WF_DENIED, DENIED)).toHaveLength(0)
    console.log(`e2e: ${later.length} refused create(s) in ${DENIED}/${REMOTE_NS}; node message: ${podNode.message}`)
  })

  it("tenant-b's workflow cannot use neg-local's workflow-kubeconfig: the node names the missing tenant-b secret, no pod is created", async () => {
    // neg-local's secret exists; tenant-b has none
    expect(await getJson(MAIN, ["secret", "workflow-kubeconfig", "-n", WF_NS])).toBeDefined()
    expect(await getJson(MAIN, ["secret", "workflow-kubeconfig", "-n", TENANT_NS])).toBeUndefined()
    const createsBefore = podCreates(REMOTE_NS, REMOTE).length
    await kubectl(MAIN, ["create", "-f", "-"], { input: whalesayIn(WF_TENANT, TENANT_NS, REMOTE) })
    const { wf, podNode } = await finished(WF_TENANT, TENANT_NS)
    expect(["Failed", "Error"]).toContain(wf.status.phase)
    expect(podNode, JSON.stringify(wf.status, null, 2)).toBeDefined()
    expect(["Failed", "Error"]).toContain(podNode.phase)
    expect(podNode.message).toContain(`${TENANT_NS}/workflow-kubeconfig`)
    expect(podNode.message).not.toContain(`${WF_NS}/workflow-kubeconfig`)
    await sleep(5_000)
    expect(await remotePodsOf(WF_TENANT)).toHaveLength(0)
    expect(podCreates(REMOTE_NS, REMOTE).slice(createsBefore)).toHaveLength(0)
    console.log(`e2e: tenant node message: ${podNode.message}`)
  })

  it("the controller cannot create pods in cluster-1, yet the workflow succeeds: the user creates the pod", async () => {
    const can = async (identity: "controller" | "workflow", ...args: Array<string>) =>
      (await kubectlRaw(REMOTE, ["auth", "can-i", ...args], { identity })).stdout.trim()
    expect(await can("controller", "create", "pods", "-n", REMOTE_NS)).toBe("no")
    expect(await can("controller", "create", "pods", "-A")).toBe("no")
    expect(await can("workflow", "create", "pods", "-n", REMOTE_NS)).toBe("yes")
    const baseline = podCreates(REMOTE_NS, REMOTE).length
    await kubectl(MAIN, ["create", "-f", "-"], { input: whalesayIn(WF_OK, WF_NS, REMOTE) })
    const { wf } = await finished(WF_OK, WF_NS)
    expect(wf.status.phase, JSON.stringify(wf.status, null, 2)).toBe("Succeeded")
    const pods = await remotePodsOf(WF_OK)
    expect(pods).toHaveLength(1)
    expect(pods[0].metadata.namespace).toBe(REMOTE_NS)
    const creates = await waitFor("the audit event of the pod's creation", () => {
      const e = podCreates(REMOTE_NS, REMOTE).slice(baseline).filter((x) => x.objectRef?.name === pods[0].metadata.name && x.responseStatus?.code === 201)
      return e.length > 0 ? e : undefined
    }, 30_000)
    expect(creates.map((e) => e.user.username)).toEqual([userName.workflow])
    // the controller never even tried
    expect(auditEvents(REMOTE).filter((e) => e.verb === "create" && e.objectRef?.resource === "pods" && e.user.username === userName.controller)).toHaveLength(0)
  })
})
