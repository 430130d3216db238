/**
 * flotilla deployed as shipped on the real-node clusters, and the seed's
 * set-up done with kubectl, as a user does it: shared by deploy.e2e.test.ts
 * and `npm run clusters:demo` (test/e2e/demo.ts).
 *
 *  - main: `kubectl apply -k` of k8s/ through the test overlay
 *    (test/e2e/deploy: the image is imported into the nodes' containerd,
 *    never pulled; the host-network replicas bind their own loopback address);
 *  - cluster-1: k8s/rbac/remote-cluster.yaml (the controller's service
 *    account with list/watch/delete, namespace remote where the service
 *    account `workflow` may create pods and write task results);
 *  - the seed's steps: (1) argo-kubeconfig with the controller service
 *    account's token in cluster-1, (2) the configmap patch, (4)/(5) from
 *    remote-cluster.yaml, (6) local/workflow-kubeconfig with the `workflow`
 *    service account's token in cluster-1 (contexts and users only).
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { caData, env, getJson, kubeconfigDoc, kubectl, kubectlEnsure, kubectlRaw, repoRoot, server, waitFor, writePrivateFile } from "./clusters.js"

export const MAIN = "main"
export const REMOTE = "cluster-1"
export const SYSTEM_NS = "argo"
export const WF_NS = "local"
export const REMOTE_NS = "remote"
export const OVERLAY = path.join(repoRoot, "test/e2e/deploy")
/** Namespaces whose pods the clusters' admission policy puts on the real nodes (scripts/clusters/host-network-policy.yaml). */
export const realNodesLabel = "flotilla.dev/real-nodes=true"

/** The clusters with real nodes (FLOTILLA_REAL_NODES of clusters.env); none when no clusters are up. */
export const realNodeClusters = (): Array<string> => {
  try {
    return (env()["FLOTILLA_REAL_NODES"] ?? "").split(" ").filter(Boolean).map((s) => s.split(":")[0]!)
  } catch {
    return []
  }
}

/** Everything the controller and the clusters say, for a failure message. */
export const deployDiagnostics = async (): Promise<string> => {
  const parts: Array<string> = []
  for (const [c, args] of [
    [MAIN, ["-n", SYSTEM_NS, "get", "pods,lease", "-o", "wide"]],
    [MAIN, ["-n", SYSTEM_NS, "get", "events", "--sort-by=.lastTimestamp"]],
    [MAIN, ["-n", SYSTEM_NS, "logs", "-l", "app.kubernetes.io/name=flotilla", "--tail=40", "--prefix"]],
    [MAIN, ["-n", WF_NS, "get", "pods,workflows", "-o", "wide"]],
    [REMOTE, ["-n", REMOTE_NS, "get", "pods,workflowtaskresults", "-o", "wide"]],
    [REMOTE, ["-n", REMOTE_NS, "get", "events", "--sort-by=.lastTimestamp"]]
  ] as const) {
    const r = await kubectlRaw(c, [...args])
    parts.push(`--- ${c}: kubectl ${args.join(" ")}\n${r.stdout}${r.stderr}`)
  }
  return parts.join("\n")
}

/** Removes what a run on these clusters left: workflows (finalizers dropped), the install's and the seed's namespaces. */
export const cleanUpDeploy = async (): Promise<void> => {
  const wfs = (await getJson<{ items: Array<any> }>(MAIN, ["workflows.argoproj.io", "-n", WF_NS]))?.items ?? []
  for (const wf of wfs) {
    await kubectlRaw(MAIN, ["-n", WF_NS, "patch", "workflows.argoproj.io", wf.metadata.name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'])
  }
  await kubectlRaw(MAIN, ["delete", "namespace", SYSTEM_NS, WF_NS, "--ignore-not-found", "--wait=true", "--timeout=120s"])
  await kubectlRaw(REMOTE, ["delete", "namespace", SYSTEM_NS, REMOTE_NS, "--ignore-not-found", "--wait=true", "--timeout=120s"])
}

/**
 * The controller image of this checkout (scripts/images/build.sh, cached by the
 * content of src/ and its inputs) imported into main's nodes: clusters reused
 * across code changes must not run an older image.
 */
export const importControllerImage = async (): Promise<void> => {
  const run = (script: string, args: ReadonlyArray<string>) =>
    execFileSync("bash", [path.join(repoRoot, script), ...args], { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
  run("scripts/images/build.sh", ["--only", "flotilla"])
  const archive = /^FLOTILLA_IMAGE_FLOTILLA=(.*)$/m.exec(run("scripts/images/build.sh", ["--print-env"]))?.[1]?.replace(/^['"]|['"]$/g, "")
  if (!archive) throw new Error("scripts/images/build.sh --print-env names no FLOTILLA_IMAGE_FLOTILLA")
  run("scripts/clusters/node.sh", ["load", MAIN, archive])
}

/** `kubectl apply -k` of the install on main; resolves once both replicas are Ready (their probes pass). */
export const deployFlotilla = async (onTimeout: () => string = () => ""): Promise<void> => {
  await importControllerImage()
  await kubectl(MAIN, ["apply", "--server-side", "--force-conflicts", "-k", OVERLAY])
  await waitFor("both controller replicas Ready (probes passing)", async () => {
    const d = await getJson<any>(MAIN, ["deployment", "flotilla-controller", "-n", SYSTEM_NS])
    return (d?.status?.readyReplicas ?? 0) === 2 ? d : undefined
  }, 240_000, 1000, onTimeout)
}

const serviceAccountToken = async (cluster: string, ns: string, sa: string) =>
  (await kubectl(cluster, ["-n", ns, "create", "token", sa, "--duration=24h"])).trim()

/** The remote side and the seed's set-up steps, with kubectl. */
export const seedSetUp = async (): Promise<void> => {
  await kubectl(REMOTE, ["apply", "--server-side", "--force-conflicts", "-f", path.join(repoRoot, "k8s/rbac/remote-cluster.yaml")])
  await kubectl(REMOTE, ["label", "namespace", REMOTE_NS, realNodesLabel, "--overwrite"])
  // (1) argo-kubeconfig: the context cluster-1 (all namespaces), the controller's service account token there.
  const systemKubeconfig = kubeconfigDoc({
    clusters: [{ name: REMOTE, server: server(REMOTE), caData: caData(REMOTE) }],
    users: [{ name: "flotilla-controller", token: await serviceAccountToken(REMOTE, SYSTEM_NS, "flotilla-controller") }],
    contexts: [{ name: REMOTE, cluster: REMOTE, user: "flotilla-controller" }]
  })
  await kubectlEnsure(MAIN, ["-n", SYSTEM_NS, "create", "secret", "generic", "argo-kubeconfig", `--from-file=value=${writePrivateFile("deploy-argo-kubeconfig", systemKubeconfig)}`])
  // (2) the seed's configmap patch (the shipped configmap names the cluster already).
  await kubectl(MAIN, ["-n", SYSTEM_NS, "patch", "cm", "workflow-controller-configmap", "-p", '{"data":{"cluster":"main"}}'])
  // (6) the workflow namespace and its service account, and the user's kubeconfig: contexts and users only.
  await kubectl(MAIN, ["apply", "-f", path.join(repoRoot, "k8s/samples/workflow_rbac.yaml")])
  await kubectl(MAIN, ["label", "namespace", WF_NS, realNodesLabel, "--overwrite"])
  const userKubeconfig = kubeconfigDoc({
    users: [{ name: "workflow", token: await serviceAccountToken(REMOTE, REMOTE_NS, "workflow") }],
    contexts: [{ name: REMOTE, cluster: REMOTE, user: "workflow", namespace: REMOTE_NS }]
  })
  await kubectlEnsure(MAIN, ["-n", WF_NS, "create", "secret", "generic", "workflow-kubeconfig", `--from-file=value=${writePrivateFile("deploy-workflow-kubeconfig", userKubeconfig)}`])
}

/** Waits until workflow `name` in `local` has completed; returns it. */
export const awaitWorkflowCompleted = (name: string, timeoutMs: number, onTimeout: () => string = () => "") =>
  waitFor(`workflow ${name} to complete`, async () => {
    const w = await getJson<any>(MAIN, ["workflows.argoproj.io", name, "-n", WF_NS])
    return ["Succeeded", "Failed", "Error"].includes(w?.status?.phase) ? w : undefined
  }, timeoutMs, 1000, onTimeout)
