/**
 * A multi-cluster set-up of its own for one e2e file, apart from the seed's
 * objects so that files can run in any order on the same clusters: the
 * controller's system namespace on main (its own workflow-controller-configmap
 * with `cluster: main`, argo-kubeconfig and leader-election role), workflow
 * namespaces on main, and one managed namespace in every remote cluster.
 * RBAC objects are named after the prefix and removed by `cleanUp` with the
 * namespaces. Also: helpers to follow a workflow, its remote pods and the
 * audit log of their creation.
 */
import * as path from "node:path"
import {
  auditEvents,
  caData,
  clusterNames,
  getJson,
  kubeconfigDoc,
  kubectl,
  kubectlEnsure,
  kubectlRaw,
  repoRoot,
  server,
  token,
  userName,
  waitFor,
  writePrivateFile
} from "./clusters.js"

export const MAIN = "main"
export const remoteClusters = (): Array<string> => clusterNames().filter((c) => c !== MAIN)

export interface IsolatedSetup {
  /** Names RBAC objects and the token files written for it. */
  readonly prefix: string
  /** The controller's namespace on main (`--namespace`). */
  readonly systemNamespace: string
  /** Workflow namespaces on main; each gets service account `workflow`. */
  readonly workflowNamespaces: ReadonlyArray<string>
  /** Workflow namespaces that get the user's `workflow-kubeconfig` secret (every remote cluster's context). */
  readonly userSecretIn: ReadonlyArray<string>
  /** The managed namespace in every remote cluster (argo-kubeconfig contexts name it). */
  readonly remoteNamespace: string
  /** Remote clusters where the workflow user may create pods there (default: all). */
  readonly userMayCreateIn?: ReadonlyArray<string>
}

/** The usual shape: `<prefix>-argo` (system), `<prefix>-local` (workflows, with the user's secret), `<prefix>-remote`. */
export const standardSetup = (prefix: string): IsolatedSetup => ({
  prefix,
  systemNamespace: `${prefix}-argo`,
  workflowNamespaces: [`${prefix}-local`],
  userSecretIn: [`${prefix}-local`],
  remoteNamespace: `${prefix}-remote`
})

/** Creates (idempotently) everything `setup` describes. */
export const applyIsolatedSetup = async (setup: IsolatedSetup): Promise<void> => {
  const { prefix, systemNamespace, remoteNamespace } = setup
  const remotes = remoteClusters()
  // ---------------------------------------------------------------- main
  for (const ns of [systemNamespace, ...setup.workflowNamespaces]) await kubectlEnsure(MAIN, ["create", "namespace", ns])
  await kubectl(MAIN, ["apply", "-f", path.join(repoRoot, "k8s/rbac/role.yaml")])
  await kubectlEnsure(MAIN, ["create", "clusterrolebinding", `${prefix}-flotilla-controller`, "--clusterrole=flotilla-controller", `--user=${userName.controller}`])
  await kubectlEnsure(MAIN, ["-n", systemNamespace, "create", "role", `${prefix}-leader-election`, "--verb=create,get,list,watch,update,patch,delete", "--resource=leases.coordination.k8s.io"])
  await kubectlEnsure(MAIN, ["-n", systemNamespace, "create", "rolebinding", `${prefix}-leader-election`, `--role=${prefix}-leader-election`, `--user=${userName.controller}`])
  // the key of the controller's pod proofs (k8s/rbac/pod_identity_role.yaml)
  await kubectlEnsure(MAIN, ["-n", systemNamespace, "create", "role", `${prefix}-pod-identity`, "--verb=create", "--resource=secrets"])
  await kubectlEnsure(MAIN, ["-n", systemNamespace, "create", "rolebinding", `${prefix}-pod-identity`, `--role=${prefix}-pod-identity`, `--user=${userName.controller}`])
  for (const ns of setup.workflowNamespaces) {
    await kubectlEnsure(MAIN, ["-n", ns, "create", "serviceaccount", "workflow"])
    // what the local kubelet, standing in for Argo's executor, writes for local pods
    await kubectlEnsure(MAIN, ["-n", ns, "create", "role", "executor", "--verb=create,patch", "--resource=workflowtaskresults.argoproj.io"])
    await kubectlEnsure(MAIN, ["-n", ns, "create", "rolebinding", "executor", "--role=executor", `--serviceaccount=${ns}:workflow`])
  }
  const systemKubeconfig = kubeconfigDoc({
    clusters: remotes.map((c) => ({ name: c, server: server(c), caData: caData(c) })),
    users: remotes.map((c) => ({ name: `flotilla-controller@${c}`, token: token(c, "controller") })),
    contexts: remotes.map((c) => ({ name: c, cluster: c, user: `flotilla-controller@${c}`, namespace: remoteNamespace }))
  })
  await kubectlEnsure(MAIN, ["-n", systemNamespace, "create", "secret", "generic", "argo-kubeconfig", `--from-file=value=${writePrivateFile(`${prefix}-argo-kubeconfig`, systemKubeconfig)}`])
  await kubectlEnsure(MAIN, ["-n", systemNamespace, "create", "configmap", "workflow-controller-configmap", "--from-literal=cluster=main"])

  // ---------------------------------------------------------------- remote clusters
  for (const c of remotes) {
    await kubectlEnsure(c, ["create", "namespace", remoteNamespace])
    await kubectlEnsure(c, ["-n", remoteNamespace, "create", "serviceaccount", "workflow"])
    await kubectlEnsure(c, ["-n", remoteNamespace, "create", "role", "executor", "--verb=create,patch", "--resource=workflowtaskresults.argoproj.io"])
    await kubectlEnsure(c, ["-n", remoteNamespace, "create", "rolebinding", "executor", "--role=executor", `--serviceaccount=${remoteNamespace}:workflow`])
    if (setup.userMayCreateIn === undefined || setup.userMayCreateIn.includes(c)) {
      await kubectlEnsure(c, ["-n", remoteNamespace, "create", "role", "remote", "--verb=create", "--resource=pods"])
      await kubectlEnsure(c, ["-n", remoteNamespace, "create", "rolebinding", "remote", "--role=remote", `--user=${userName.workflow}`])
    }
    // the controller: list/watch/delete only
    await kubectlEnsure(c, ["create", "clusterrole", `${prefix}-flotilla-remote`, "--verb=list,watch,delete", "--resource=pods,workflowtaskresults.argoproj.io"])
    await kubectlEnsure(c, ["create", "clusterrolebinding", `${prefix}-flotilla-remote`, `--clusterrole=${prefix}-flotilla-remote`, `--user=${userName.controller}`])
  }

  // the user's kubeconfig: contexts + users only, the user's token for every remote cluster
  const userKubeconfig = kubeconfigDoc({
    users: remotes.map((c) => ({ name: `workflow@${c}`, token: token(c, "workflow") })),
    contexts: remotes.map((c) => ({ name: c, cluster: c, user: `workflow@${c}`, namespace: remoteNamespace }))
  })
  const userFile = writePrivateFile(`${prefix}-workflow-kubeconfig`, userKubeconfig)
  for (const ns of setup.userSecretIn) {
    await kubectlEnsure(MAIN, ["-n", ns, "create", "secret", "generic", "workflow-kubeconfig", `--from-file=value=${userFile}`])
  }
}

export const getWorkflow = (name: string, namespace: string) => getJson<any>(MAIN, ["workflows.argoproj.io", name, "-n", namespace])

/** Deletes a workflow without waiting for its finalizer (removed first). */
export const forceDeleteWorkflow = async (name: string, namespace: string): Promise<void> => {
  if ((await getWorkflow(name, namespace)) === undefined) return
  await kubectlRaw(MAIN, ["patch", "workflows.argoproj.io", name, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'])
  await kubectlRaw(MAIN, ["delete", "workflows.argoproj.io", name, "-n", namespace, "--wait=true", "--ignore-not-found"])
}

/** Removes everything `applyIsolatedSetup` creates, and the given workflows first. */
export const cleanUpIsolatedSetup = async (
  setup: IsolatedSetup,
  workflows: ReadonlyArray<readonly [name: string, namespace: string]>
): Promise<void> => {
  for (const [name, ns] of workflows) await forceDeleteWorkflow(name, ns)
  for (const ns of [setup.systemNamespace, ...setup.workflowNamespaces]) {
    await kubectlRaw(MAIN, ["delete", "namespace", ns, "--ignore-not-found", "--wait=false"])
  }
  await kubectlRaw(MAIN, ["delete", "clusterrolebinding", `${setup.prefix}-flotilla-controller`, "--ignore-not-found"])
  for (const c of remoteClusters()) {
    await kubectlRaw(c, ["delete", "pods", "-n", setup.remoteNamespace, "--all", "--grace-period=0", "--force", "--ignore-not-found"])
    await kubectlRaw(c, ["delete", "namespace", setup.remoteNamespace, "--ignore-not-found", "--wait=false"])
    await kubectlRaw(c, ["delete", "clusterrolebinding", `${setup.prefix}-flotilla-remote`, "--ignore-not-found"])
    await kubectlRaw(c, ["delete", "clusterrole", `${setup.prefix}-flotilla-remote`, "--ignore-not-found"])
  }
  // namespaces being deleted cannot be re-created: wait until they are gone
  const gone = async (c: string, ns: string) => ((await getJson(c, ["namespace", ns])) === undefined ? true : undefined)
  for (const ns of [setup.systemNamespace, ...setup.workflowNamespaces]) {
    await waitFor(`namespace ${ns} gone on ${MAIN}`, () => gone(MAIN, ns), 90_000, 500)
  }
  for (const c of remoteClusters()) {
    await waitFor(`namespace ${setup.remoteNamespace} gone on ${c}`, () => gone(c, setup.remoteNamespace), 90_000, 500)
  }
}

/** Waits for the workflow to end; returns it with its nodes and its first pod node. */
export const finishedWorkflow = async (name: string, namespace: string, diagnostics: () => string, timeoutMs = 120_000) => {
  let last: unknown
  const wf = await waitFor(`workflow ${namespace}/${name} to end`, async () => {
    const w = await getWorkflow(name, namespace)
    last = w?.status
    return ["Succeeded", "Failed", "Error"].includes(w?.status?.phase) ? w : undefined
  }, timeoutMs, 500, () => `status: ${JSON.stringify(last, null, 2)}\n${diagnostics()}`)
  const nodes = Object.values<any>(wf.status.nodes ?? {})
  const podNode = nodes.find((n) => n.type === "Pod")
  return { wf, podNode, nodes }
}

/** Pods of a workflow in a cluster, any namespace. */
export const podsOfWorkflow = async (workflow: string, cluster: string): Promise<Array<any>> =>
  (await getJson<{ items: Array<any> }>(cluster, ["pods", "-A", "-l", `workflows.argoproj.io/workflow=${workflow}`]))?.items ?? []

/** Audit events of pod creations (not subresources) in `namespace` of a cluster, any answer. */
export const podCreates = (namespace: string, cluster: string) =>
  auditEvents(cluster).filter((e) =>
    e.stage === "ResponseComplete" && e.verb === "create" && e.objectRef?.resource === "pods" &&
    e.objectRef.subresource === undefined && e.objectRef.namespace === namespace
  )

/** A Workflow manifest (JSON) running as service account `workflow`, entrypoint `main`. */
export const workflowManifest = (name: string, namespace: string, templates: ReadonlyArray<Record<string, unknown>>): string =>
  JSON.stringify({
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Workflow",
    metadata: { name, namespace },
    spec: { entrypoint: "main", serviceAccountName: "workflow", templates }
  })

/** A one-template-per-step Workflow manifest (JSON) whose steps run one after another. */
export const sequentialWorkflow = (
  name: string,
  namespace: string,
  steps: ReadonlyArray<{ readonly name: string; readonly script: string; readonly cluster?: string; readonly namespace?: string }>
): string =>
  workflowManifest(name, namespace, [
    { name: "main", steps: steps.map((s) => [{ name: s.name, template: s.name }]) },
    ...steps.map((s) => ({
      name: s.name,
      ...(s.cluster ? { cluster: s.cluster } : {}),
      ...(s.namespace ? { namespace: s.namespace } : {}),
      container: { image: "alpine:3.7", command: ["sh", "-c"], args: [s.script] }
    }))
  ])
