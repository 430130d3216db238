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
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  auditEvents,
  caData,
  clusterNames,
  getJson,
  kubeconfigDoc,
  kubeconfigPath,
  kubectl,
  kubectlEnsure,
  kubectlRaw,
  type Proc,
  repoRoot,
  server,
  sleep,
  startFlotilla,
  tailLogs,
  writePrivateFile,
  nodeName,
  token,
  userName,
  waitFor
} from "./support/clusters.js"

const MAIN = "main"
const REMOTE = "cluster-1"
const SYSTEM_NS = "neg-argo"
const WF_NS = "neg-local"
const TENANT_NS = "tenant-b"
const REMOTE_NS = "neg-remote"
const DENIED = "cluster-2"
const WF_DENIED = "neg-denied"
const WF_TENANT = "neg-tenant"
const WF_OK = "neg-user-creates"

const procs: Array<Proc> = []
const remotes = () => clusterNames().filter((c) => c !== MAIN)

const diagnostics = (): string => tailLogs(procs)

const workflowManifest = (name: string, namespace: string, cluster: string): string =>
  JSON.stringify({
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Workflow",
    metadata: { name, namespace },
    spec: {
      entrypoint: "main",
      serviceAccountName: "workflow",
      templates: [{ name: "main", cluster, namespace: REMOTE_NS, container: { image: "docker/whalesay" } }]
    }
  })

const getWorkflow = (name: string, namespace: string) => getJson<any>(MAIN, ["workflows.argoproj.io", name, "-n", namespace])

/** Waits for the workflow to end and returns it with its (single) pod node. */
const finished = async (name: string, namespace: string) => {
  let last: unknown
  const wf = await waitFor(`workflow ${namespace}/${name} to end`, async () => {
    const w = await getWorkflow(name, namespace)
    last = w?.status
    return ["Succeeded", "Failed", "Error"].includes(w?.status?.phase) ? w : undefined
  }, 120_000, 500, () => `status: ${JSON.stringify(last, null, 2)}\n${diagnostics()}`)
  const nodes = Object.values<any>(wf.status.nodes ?? {})
  const podNode = nodes.find((n) => n.type === "Pod")
  return { wf, podNode, nodes }
}

/** Pods of a workflow in a remote cluster, any namespace. */
const remotePodsOf = async (workflow: string, cluster = REMOTE) =>
  (await getJson<{ items: Array<any> }>(cluster, ["pods", "-A", "-l", `workflows.argoproj.io/workflow=${workflow}`]))?.items ?? []

/** Audit events of pod creations (not subresources) in `namespace` of a remote cluster. */
const podCreates = (namespace: string, cluster = REMOTE) =>
  auditEvents(cluster).filter((e) =>
    e.stage === "ResponseComplete" && e.verb === "create" && e.objectRef?.resource === "pods" &&
    e.objectRef.subresource === undefined && e.objectRef.namespace === namespace
  )

const deleteWorkflow = async (name: string, namespace: string) => {
  if ((await getWorkflow(name, namespace)) === undefined) return
  await kubectlRaw(MAIN, ["patch", "workflows.argoproj.io", name, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'])
  await kubectlRaw(MAIN, ["delete", "workflows.argoproj.io", name, "-n", namespace, "--wait=true", "--ignore-not-found"])
}

/** Removes everything this file creates (also what an interrupted earlier run left behind). */
const cleanUp = async () => {
  for (const [name, ns] of [[WF_DENIED, WF_NS], [WF_OK, WF_NS], [WF_TENANT, TENANT_NS]] as const) await deleteWorkflow(name, ns)
  for (const ns of [SYSTEM_NS, WF_NS, TENANT_NS]) {
    await kubectlRaw(MAIN, ["delete", "namespace", ns, "--ignore-not-found", "--wait=false"])
  }
  await kubectlRaw(MAIN, ["delete", "clusterrolebinding", "neg-flotilla-controller", "--ignore-not-found"])
  for (const c of remotes()) {
    await kubectlRaw(c, ["delete", "pods", "-n", REMOTE_NS, "--all", "--grace-period=0", "--force", "--ignore-not-found"])
    await kubectlRaw(c, ["delete", "namespace", REMOTE_NS, "--ignore-not-found", "--wait=false"])
    await kubectlRaw(c, ["delete", "clusterrolebinding", "neg-flotilla-remote", "--ignore-not-found"])
    await kubectlRaw(c, ["delete", "clusterrole", "neg-flotilla-remote", "--ignore-not-found"])
  }
  await kubectlRaw(REMOTE, ["delete", "node", nodeName(REMOTE), "--ignore-not-found"])
  // namespaces being deleted cannot be re-created: wait until they are gone
  const gone = async (c: string, ns: string) => ((await getJson(c, ["namespace", ns])) === undefined ? true : undefined)
  for (const ns of [SYSTEM_NS, WF_NS, TENANT_NS]) await waitFor(`namespace ${ns} gone on ${MAIN}`, () => gone(MAIN, ns), 90_000, 500)
  for (const c of remotes()) {
    await waitFor(`namespace ${REMOTE_NS} gone on ${c}`, () => gone(c, REMOTE_NS), 90_000, 500)
  }
}

describe("negative cases on real clusters", () => {
  beforeAll(async () => {
    await cleanUp()

    // ---------------------------------------------------------------- main
    for (const ns of [SYSTEM_NS, WF_NS, TENANT_NS]) await kubectlEnsure(MAIN, ["create", "namespace", ns])
    await kubectl(MAIN, ["apply", "-f", path.join(repoRoot, "k8s/rbac/role.yaml")])
    await kubectlEnsure(MAIN, ["create", "clusterrolebinding", "neg-flotilla-controller", "--clusterrole=flotilla-controller", `--user=${userName.controller}`])
    await kubectlEnsure(MAIN, ["-n", SYSTEM_NS, "create", "role", "neg-leader-election", "--verb=create,get,list,watch,update,patch,delete", "--resource=leases.coordination.k8s.io"])
    await kubectlEnsure(MAIN, ["-n", SYSTEM_NS, "create", "rolebinding", "neg-leader-election", "--role=neg-leader-election", `--user=${userName.controller}`])
    for (const ns of [WF_NS, TENANT_NS]) await kubectlEnsure(MAIN, ["-n", ns, "create", "serviceaccount", "workflow"])

    const systemKubeconfig = kubeconfigDoc({
      clusters: remotes().map((c) => ({ name: c, server: server(c), caData: caData(c) })),
      users: remotes().map((c) => ({ name: `flotilla-controller@${c}`, token: token(c, "controller") })),
      contexts: remotes().map((c) => ({ name: c, cluster: c, user: `flotilla-controller@${c}`, namespace: REMOTE_NS }))
    })
    await kubectlEnsure(MAIN, ["-n", SYSTEM_NS, "create", "secret", "generic", "argo-kubeconfig", `--from-file=value=${writePrivateFile("neg-argo-kubeconfig", systemKubeconfig)}`])
    await kubectlEnsure(MAIN, ["-n", SYSTEM_NS, "create", "configmap", "workflow-controller-configmap", "--from-literal=cluster=main"])

    // ---------------------------------------------------------------- remote clusters
    for (const c of remotes()) {
      await kubectlEnsure(c, ["create", "namespace", REMOTE_NS])
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "serviceaccount", "workflow"])
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "role", "executor", "--verb=create,patch", "--resource=workflowtaskresults.argoproj.io"])
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "rolebinding", "executor", "--role=executor", `--serviceaccount=${REMOTE_NS}:workflow`])
      // the workflow user may create pods in cluster-1/neg-remote, and not in cluster-2/neg-remote (no binding there)
      if (c !== DENIED) {
        await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "role", "remote", "--verb=create", "--resource=pods"])
        await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "rolebinding", "remote", "--role=remote", `--user=${userName.workflow}`])
      }
      // the controller: list/watch/delete only
      await kubectlEnsure(c, ["create", "clusterrole", "neg-flotilla-remote", "--verb=list,watch,delete", "--resource=pods,workflowtaskresults.argoproj.io"])
      await kubectlEnsure(c, ["create", "clusterrolebinding", "neg-flotilla-remote", "--clusterrole=neg-flotilla-remote", `--user=${userName.controller}`])
    }

    // The user's kubeconfig, in neg-local only (tenant-b has none): the user's token for every remote cluster.
    const userKubeconfig = kubeconfigDoc({
      users: remotes().map((c) => ({ name: `workflow@${c}`, token: token(c, "workflow") })),
      contexts: remotes().map((c) => ({ name: c, cluster: c, user: `workflow@${c}`, namespace: REMOTE_NS }))
    })
    await kubectlEnsure(MAIN, ["-n", WF_NS, "create", "secret", "generic", "workflow-kubeconfig", `--from-file=value=${writePrivateFile("neg-workflow-kubeconfig", userKubeconfig)}`])

    // ---------------------------------------------------------------- processes
    procs.push(startFlotilla(`neg-kubelet-${REMOTE}`, ["kubelet", "--kubeconfig", kubeconfigPath(REMOTE, "node-agent"), "--node-name", nodeName(REMOTE)]))
    procs.push(startFlotilla("neg-controller", ["controller", "--kubeconfig", kubeconfigPath(MAIN, "controller"), "--namespace", SYSTEM_NS]))
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
    await kubectl(MAIN, ["create", "-f", "-"], { input: workflowManifest(WF_DENIED, WF_NS, DENIED) })
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
    const createsBefore = podCreates(REMOTE_NS).length
    await kubectl(MAIN, ["create", "-f", "-"], { input: workflowManifest(WF_TENANT, TENANT_NS, REMOTE) })
    const { wf, podNode } = await finished(WF_TENANT, TENANT_NS)
    expect(["Failed", "Error"]).toContain(wf.status.phase)
    expect(podNode, JSON.stringify(wf.status, null, 2)).toBeDefined()
    expect(["Failed", "Error"]).toContain(podNode.phase)
    expect(podNode.message).toContain(`${TENANT_NS}/workflow-kubeconfig`)
    expect(podNode.message).not.toContain(`${WF_NS}/workflow-kubeconfig`)
    await sleep(5_000)
    expect(await remotePodsOf(WF_TENANT)).toHaveLength(0)
    expect(podCreates(REMOTE_NS).slice(createsBefore)).toHaveLength(0)
    console.log(`e2e: tenant node message: ${podNode.message}`)
  })

  it("the controller cannot create pods in cluster-1, yet the workflow succeeds: the user creates the pod", async () => {
    const can = async (identity: "controller" | "workflow", ...args: Array<string>) =>
      (await kubectlRaw(REMOTE, ["auth", "can-i", ...args], { identity })).stdout.trim()
    expect(await can("controller", "create", "pods", "-n", REMOTE_NS)).toBe("no")
    expect(await can("controller", "create", "pods", "-A")).toBe("no")
    expect(await can("workflow", "create", "pods", "-n", REMOTE_NS)).toBe("yes")
    const baseline = podCreates(REMOTE_NS).length
    await kubectl(MAIN, ["create", "-f", "-"], { input: workflowManifest(WF_OK, WF_NS, REMOTE) })
    const { wf } = await finished(WF_OK, WF_NS)
    expect(wf.status.phase, JSON.stringify(wf.status, null, 2)).toBe("Succeeded")
    const pods = await remotePodsOf(WF_OK)
    expect(pods).toHaveLength(1)
    expect(pods[0].metadata.namespace).toBe(REMOTE_NS)
    const creates = await waitFor("the audit event of the pod's creation", () => {
      const e = podCreates(REMOTE_NS).slice(baseline).filter((x) => x.objectRef?.name === pods[0].metadata.name && x.responseStatus?.code === 201)
      return e.length > 0 ? e : undefined
    }, 30_000)
    expect(creates.map((e) => e.user.username)).toEqual([userName.workflow])
    // the controller never even tried
    expect(auditEvents(REMOTE).filter((e) => e.verb === "create" && e.objectRef?.resource === "pods" && e.user.username === userName.controller)).toHaveLength(0)
  })
})
