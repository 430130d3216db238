/**
 * The seed, literally, on real clusters (scripts/clusters/up.sh: main,
 * cluster-1, cluster-2; kube-apiserver + etcd + kcm + scheduler + kwok each).
 *
 * Upstream Argo's multi-cluster set-up, done with kubectl:
 *  (1) secret argo/argo-kubeconfig on main: one context per remote cluster,
 *      named after it, namespace `remote`, the controller identity's token;
 *  (2) kubectl patch cm workflow-controller-configmap -p '{"data":{"cluster":"main"}}';
 *  (4) service account + role binding in `remote` (the identity pods run as);
 *  (5) in the remote cluster: `kubectl -n remote create role remote
 *      --verb=create --resource=pods` bound to the workflow user; the
 *      controller identity gets only list/watch/delete on pods and
 *      workflowtaskresults there;
 *  (6) secret local/workflow-kubeconfig: contexts + users only, the workflow
 *      user's token;
 *  (7) the seed's workflow, examples/multi-cluster.yaml.
 * Then the controller and one node agent (local kubelet) per cluster run as
 * processes (`tsx src/cli/main.ts controller|kubelet`), their output in
 * .clusters/e2e/*.log.
 */
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  auditEventsSince,
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
  startController, startFlotilla,
  tailLogs,
  writePrivateFile,
  nodeName,
  token,
  userName,
  waitFor
} from "./support/clusters.js"

const MAIN = "main"
const REMOTE = "cluster-1"
const WORKFLOW = "multi-cluster"
const WF_NS = "local"
const REMOTE_NS = "remote"

const procs: Array<Proc> = []
let controller: Proc
const remotes = () => clusterNames().filter((c) => c !== MAIN)

const diagnostics = (): string => tailLogs(procs)

const remotePods = async () => {
  const list = await getJson<{ items: Array<any> }>(REMOTE, [
    "pods",
    "-n",
    REMOTE_NS,
    "-l",
    `workflows.argoproj.io/workflow=${WORKFLOW}`,
    "--show-managed-fields"
  ])
  return list?.items ?? []
}

/** Removes what an earlier run on the same clusters left behind. */
const cleanUp = async () => {
  const wf = await getJson(MAIN, ["workflows.argoproj.io", WORKFLOW, "-n", WF_NS])
  if (wf !== undefined) {
    await kubectl(MAIN, ["patch", "workflows.argoproj.io", WORKFLOW, "-n", WF_NS, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'])
    await kubectl(MAIN, ["delete", "workflows.argoproj.io", WORKFLOW, "-n", WF_NS, "--wait=true", "--ignore-not-found"])
  }
  for (const c of remotes()) {
    await kubectlRaw(c, ["delete", "pods", "-n", REMOTE_NS, "--all", "--grace-period=0", "--force", "--ignore-not-found"])
    await kubectlRaw(c, ["delete", "workflowtaskresults.argoproj.io", "-n", REMOTE_NS, "--all", "--ignore-not-found"])
  }
  for (const c of clusterNames()) {
    await kubectlRaw(c, ["delete", "node", nodeName(c), "--ignore-not-found"])
  }
}

describe("seed: upstream multi-cluster set-up on real clusters", () => {
  /** When this run began: the clusters' audit logs hold earlier runs (and other files' pods of the same names). */
  const started = new Date()
  beforeAll(async () => {
    await cleanUp()

    // ---------------------------------------------------------------- main
    await kubectlEnsure(MAIN, ["create", "namespace", "argo"])
    await kubectlEnsure(MAIN, ["create", "namespace", WF_NS])
    // The controller's identity on main: upstream's workflow-controller role
    // (k8s/rbac/role.yaml + leader election), bound to the token user.
    await kubectl(MAIN, ["apply", "-f", path.join(repoRoot, "k8s/rbac/role.yaml"), "-f", path.join(repoRoot, "k8s/rbac/leader_election_role.yaml")])
    await kubectlEnsure(MAIN, ["create", "clusterrolebinding", "flotilla-controller-user", "--clusterrole=flotilla-controller", `--user=${userName.controller}`])
    await kubectlEnsure(MAIN, ["-n", "argo", "create", "rolebinding", "flotilla-leader-election-user", "--role=flotilla-leader-election", `--user=${userName.controller}`])
    await kubectl(MAIN, ["apply", "-f", path.join(repoRoot, "k8s/rbac/pod_identity_role.yaml")])
    await kubectlEnsure(MAIN, ["-n", "argo", "create", "rolebinding", "flotilla-pod-identity-user", "--role=flotilla-pod-identity", `--user=${userName.controller}`])
    // The workflow's service account in the workflow namespace (and what its pods may write).
    await kubectl(MAIN, ["apply", "-f", path.join(repoRoot, "k8s/samples/workflow_rbac.yaml")])

    // (1) argo-kubeconfig: one context per remote cluster, named after it, namespace remote.
    const systemKubeconfig = kubeconfigDoc({
      clusters: remotes().map((c) => ({ name: c, server: server(c), caData: caData(c) })),
      users: remotes().map((c) => ({ name: `flotilla-controller@${c}`, token: token(c, "controller") })),
      contexts: remotes().map((c) => ({ name: c, cluster: c, user: `flotilla-controller@${c}`, namespace: REMOTE_NS }))
    })
    await kubectlEnsure(MAIN, ["-n", "argo", "create", "secret", "generic", "argo-kubeconfig", `--from-file=value=${writePrivateFile("argo-kubeconfig", systemKubeconfig)}`])

    // (2) the controller configmap, then the seed's patch.
    await kubectlEnsure(MAIN, ["-n", "argo", "create", "configmap", "workflow-controller-configmap"])
    await kubectl(MAIN, ["-n", "argo", "patch", "cm", "workflow-controller-configmap", "-p", '{"data":{"cluster":"main"}}'])

    // ---------------------------------------------------------------- remote clusters
    for (const c of remotes()) {
      await kubectlEnsure(c, ["create", "namespace", REMOTE_NS])
      // (4) the service account remote pods run as, and the role binding that
      // lets it (Argo's executor) write task results next to the pod.
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "serviceaccount", "workflow"])
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "role", "executor", "--verb=create,patch", "--resource=workflowtaskresults.argoproj.io"])
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "rolebinding", "executor", "--role=executor", `--serviceaccount=${REMOTE_NS}:workflow`])
      // (5) the workflow user may only create pods in remote ...
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "role", "remote", "--verb=create", "--resource=pods"])
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "rolebinding", "remote", "--role=remote", `--user=${userName.workflow}`])
      // ... and the controller may only list/watch/delete pods and task results.
      await kubectlEnsure(c, ["create", "clusterrole", "flotilla-remote", "--verb=list,watch,delete", "--resource=pods,workflowtaskresults.argoproj.io"])
      await kubectlEnsure(c, ["create", "clusterrolebinding", "flotilla-remote", "--clusterrole=flotilla-remote", `--user=${userName.controller}`])
    }

    // (6) the user's kubeconfig: contexts + users only (the endpoint comes from argo-kubeconfig).
    const userKubeconfig = kubeconfigDoc({
      users: [{ name: "workflow", token: token(REMOTE, "workflow") }],
      contexts: [{ name: REMOTE, cluster: REMOTE, user: "workflow", namespace: REMOTE_NS }]
    })
    await kubectlEnsure(MAIN, ["-n", WF_NS, "create", "secret", "generic", "workflow-kubeconfig", `--from-file=value=${writePrivateFile("workflow-kubeconfig", userKubeconfig)}`])

    // ---------------------------------------------------------------- processes
    for (const c of clusterNames()) {
      procs.push(startFlotilla(`kubelet-${c}`, ["kubelet", "--kubeconfig", kubeconfigPath(c, "node-agent"), "--node-name", nodeName(c)]))
    }
    controller = startController("controller", MAIN, "argo")
    procs.push(controller)
    for (const c of clusterNames()) {
      await waitFor(`node ${nodeName(c)} registered in ${c}`, async () => (await getJson(c, ["node", nodeName(c)])) ?? undefined, 60_000, 500, diagnostics)
    }

    // (7) the seed's workflow.
    await kubectl(MAIN, ["create", "-f", path.join(repoRoot, "examples/multi-cluster.yaml")])
  })

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    for (const p of procs) console.log(`e2e: ${p.name} output: ${p.logFile}`)
  })

  it("RBAC is what the seed says: the controller cannot create pods remotely, the user can only create", async () => {
    const can = async (c: string, identity: "controller" | "workflow" | "tenant", ...args: Array<string>) =>
      (await kubectlRaw(c, ["auth", "can-i", ...args], { identity })).stdout.trim()
    expect(await can(REMOTE, "controller", "create", "pods", "-n", REMOTE_NS)).toBe("no")
    expect(await can(REMOTE, "controller", "delete", "pods", "-n", REMOTE_NS)).toBe("yes")
    expect(await can(REMOTE, "workflow", "create", "pods", "-n", REMOTE_NS)).toBe("yes")
    expect(await can(REMOTE, "workflow", "delete", "pods", "-n", REMOTE_NS)).toBe("no")
    expect(await can(REMOTE, "workflow", "create", "pods", "-n", "default")).toBe("no")
    expect(await can(REMOTE, "tenant", "create", "pods", "-n", REMOTE_NS)).toBe("no")
  })

  it("the controller logs msg=cluster for each context and for @in-cluster", async () => {
    const line = (re: RegExp) => controller.log().split("\n").find((l) => re.test(l))
    for (const c of remotes()) {
      await waitFor(`controller log "msg=cluster cluster=${c} managedNamespace=remote"`, () =>
        line(new RegExp(`msg=cluster cluster=${c} managedNamespace=${REMOTE_NS}(\\s|$)`)), 60_000, 250, diagnostics)
    }
    await waitFor(`controller log "msg=cluster cluster=@in-cluster"`, () => line(/msg=cluster cluster=@in-cluster/), 60_000, 250, diagnostics)
  })

  it("the pod runs in cluster-1/remote, created by the workflow user", async () => {
    const pod = await waitFor("a pod of the workflow in cluster-1/remote", async () => (await remotePods())[0], 120_000, 500, diagnostics)
    expect(pod.metadata.namespace).toBe(REMOTE_NS)
    // nothing of the workflow's runs on main
    const local = await getJson<{ items: Array<unknown> }>(MAIN, ["pods", "-A", "-l", `workflows.argoproj.io/workflow=${WORKFLOW}`])
    expect(local?.items ?? []).toHaveLength(0)
    const creates = await waitFor("the audit event of the pod's creation", () => {
      const events = auditEventsSince(REMOTE, started).filter((e) =>
        e.stage === "ResponseComplete" && e.verb === "create" && e.objectRef?.resource === "pods" &&
        e.objectRef.subresource === undefined && e.objectRef.namespace === REMOTE_NS &&
        e.objectRef.name === pod.metadata.name && e.responseStatus?.code === 201
      )
      return events.length > 0 ? events : undefined
    }, 30_000)
    expect(creates.map((e) => e.user.username)).toEqual([userName.workflow])
    console.log(`e2e: pod ${pod.metadata.name} created by ${creates[0].user.username} (user agent ${creates[0].userAgent}); managedFields managers: ${(pod.metadata.managedFields ?? []).map((f: any) => `${f.manager}/${f.operation}`).join(", ")}`)
    // it ran on the node agent's node (kwok nodes are tainted)
    let lastStatus: unknown
    const ran = await waitFor("the pod to finish", async () => {
      const p = (await remotePods())[0]
      lastStatus = p?.status
      return p?.status?.phase === "Succeeded" || p?.status?.phase === "Failed" ? p : undefined
    }, 120_000, 500, () =>
      `pod status: ${JSON.stringify(lastStatus)}\n` +
      "(a node agent must write pod status through the pods/status subresource: a real apiserver ignores status in a PATCH of the pod itself)\n" +
      diagnostics())
    expect(ran.spec.nodeName).toBe(nodeName(REMOTE))
    expect(ran.status.phase).toBe("Succeeded")
  })

  it("the workflow ends Succeeded", async () => {
    const wf = await waitFor("workflow phase Succeeded or Failed", async () => {
      const w = await getJson<any>(MAIN, ["workflows.argoproj.io", WORKFLOW, "-n", WF_NS])
      return w?.status?.phase === "Succeeded" || w?.status?.phase === "Failed" || w?.status?.phase === "Error" ? w : undefined
    }, 120_000, 500, diagnostics)
    expect(wf.status.phase, JSON.stringify(wf.status, null, 2)).toBe("Succeeded")
  })

  it("deleting the workflow deletes the remote pod and releases the finalizer", async () => {
    const before = await remotePods()
    expect(before.length).toBeGreaterThan(0)
    const wf = await getJson<any>(MAIN, ["workflows.argoproj.io", WORKFLOW, "-n", WF_NS])
    expect(wf.metadata.finalizers ?? []).not.toHaveLength(0)
    await kubectl(MAIN, ["delete", "workflows.argoproj.io", WORKFLOW, "-n", WF_NS, "--wait=false"])
    await waitFor("the remote pod to be deleted", async () => ((await remotePods()).length === 0 ? true : undefined), 90_000, 500, () =>
      "(a pod bound to a node and not yet Succeeded/Failed is only removed once its node agent confirms the deletion)\n" + diagnostics())
    await waitFor("the workflow to be gone (finalizer released)", async () =>
      (await getJson(MAIN, ["workflows.argoproj.io", WORKFLOW, "-n", WF_NS])) === undefined ? true : undefined, 120_000, 500, diagnostics)
    const deletes = auditEventsSince(REMOTE, started).filter((e) =>
      e.stage === "ResponseComplete" && e.verb === "delete" && e.objectRef?.resource === "pods" &&
      e.objectRef.namespace === REMOTE_NS && e.objectRef.name === before[0].metadata.name && (e.responseStatus?.code ?? 0) < 300
    )
    expect(deletes.map((e) => e.user.username)).toContain(userName.controller)
  })
})
