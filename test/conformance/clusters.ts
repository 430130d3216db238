/**
 * Conformance suite (see suite.ts) on the REAL clusters started by
 * scripts/clusters/up.sh (main, cluster-1, cluster-2; state dir
 * FLOTILLA_CLUSTERS_DIR, default <repo>/.clusters), the same runs and checks
 * as the embedded driver (run.ts):
 *
 *  - set-up with kubectl, idempotent (a second run on the same clusters
 *    works), as the embedded runtime provisions its clusters and as upstream's
 *    multi-cluster set-up asks an operator to: namespaces (and their `default`
 *    service account), the controller's RBAC on main, argo-kubeconfig (one
 *    context per remote cluster with the controller identity's token),
 *    workflow-controller-configmap (`cluster: main`, image entrypoints), in
 *    each workflow namespace the `<serviceAccount>-kubeconfig` secret (the
 *    workflow user's token), in cluster-2/remote a role letting the workflow
 *    user create pods, and list/watch/delete for the controller there; in
 *    every cluster the rights the examples' resource templates need, for the
 *    pods' service accounts where those pods run (`grantResourceTemplates`);
 *  - the controller (`flotilla controller`) and one node agent
 *    (`flotilla kubelet`) per cluster as processes, their output in
 *    <state>/e2e/conformance-*.log;
 *  - the examples' WorkflowTemplates, ClusterWorkflowTemplates and ConfigMaps
 *    applied on main with kubectl as admin (as written in `argo`, their
 *    multi-cluster copies in `argo-mc`), before any run;
 *  - every run submitted with kubectl as admin (FLOTILLA_CONFORMANCE_CONCURRENCY
 *    at a time), followed through a watch of the Workflows on main;
 *  - at the end every Workflow is deleted: they must all be gone (finalizers
 *    released), with no pod or task result of theirs left in the remote
 *    cluster; otherwise a `FAIL cleanup ...` line (counted as a failure).
 *
 * With FLOTILLA_CONFORMANCE_NODES=real the pods run on the clusters' real
 * nodes (kubelet + containerd, scripts/clusters/node.sh) instead of node
 * agents: every namespace where pods run is labelled for the clusters'
 * host-network admission policy, the pods' service accounts get upstream's
 * executor role (argoexec's wait container writes the task results), the
 * configmap names argoexec v4.0.5 and the shipped configmap's image
 * entrypoints, and no node agent is started; each example runs once there,
 * as its multi-cluster variant, unless FLOTILLA_CONFORMANCE_VARIANTS says
 * otherwise.
 *
 * Artifacts: one real S3 server (SeaweedFS, test/support/s3Server.ts) for the
 * run, on this machine's 127.0.0.1 (the node agents make the transfers in
 * their processes here; on the real nodes the pods are on the host network
 * and argoexec v4.0.5 makes them), a bucket, the configmap's
 * `artifactRepository` naming it, and its credentials Secret created as an
 * operator does in every namespace where pods run, in every cluster (never
 * copied by the controller), with the executor's artifact GC rights there
 * (upstream's executor role, k8s/rbac/remote-cluster.yaml); the examples' `s3`
 * header lines move their own locations to that server (buckets, objects and
 * the Secrets they name made as run.ts makes them).
 *
 * Examples whose header says `embedded-only <reason>` are not run: `SKIP
 * <run>: <reason>` per run, then `N skipped` after the counts (never counted
 * as passed). The loopback server of the `url` header lines runs in this
 * process (the controller runs on this machine and reaches it).
 *
 * Prints `PASS <run>` / `FAIL <run>: <reason>` per workflow run, then
 * `N passed, N failed`, and exits non-zero when anything failed. Progress goes
 * to stderr. Env: see suite.ts (FLOTILLA_CONFORMANCE_TIMEOUT defaults to 300
 * seconds here).
 */
import { PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as YAML from "yaml"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { type KubeObject, resources } from "../../src/kube/api/Resources.js"
import { defaultImages } from "../../src/kubelet/images.js"
import { caData, clusterNames, clustersUp, ensureNamespace, ensureServiceAccount, getJson } from "../e2e/support/clusters.js"
import { kubeconfigDoc, kubeconfigPath, kubectl, kubectlEnsure, kubectlRaw, nodeName } from "../e2e/support/clusters.js"
import { type Proc, repoRoot, server, startFlotilla, stateDir, tailLogs, token, userName, waitFor, watchEvents, writePrivateFile } from "../e2e/support/clusters.js"
import { ensureArtifactGCTasksCrd, ensureRepositorySecret } from "../e2e/support/artifactRepository.js"
import { type S3ServerHandle, startS3Server } from "../support/s3Server.js"
import { type Example, exitWith, judge, loadExamples, manifestOf, placementHints, report, runVariants, s3SecretsOf, startLoopbackServer, supportObjects, timedOut, timeoutFor, timeoutSeconds, type Variant, variantChoice, variantsOf } from "./suite.js"

const MAIN = Embedded.localClusterName
const SYSTEM_NS = Embedded.systemNamespace
const WORKFLOWS = "workflows.argoproj.io"
const TASK_RESULTS = "workflowtaskresults.argoproj.io"
const timeout = timeoutSeconds(300)
/** Pods on the real nodes (kubelet + containerd + argoexec) instead of flotilla's node agents. */
const realNodes = process.env["FLOTILLA_CONFORMANCE_NODES"] === "real"
const realNodesLabel = "flotilla.dev/real-nodes=true"
/** What argoexec needs where pods run (upstream's executor role). */
const executorRole = ["create", "role", "executor", "--verb=create,patch", `--resource=${TASK_RESULTS}`]
const GC_TASKS = "workflowartifactgctasks.argoproj.io"
/** The artifact repository's bucket on the run's S3 server. */
const BUCKET = "flotilla-conformance"
/** The shipped configmap's keys (k8s/manager/configmap.yaml): what an operator deploys. */
const shippedImages = (): string =>
  (YAML.parse(fs.readFileSync(`${repoRoot}/k8s/manager/configmap.yaml`, "utf8")) as { data: { images: string } }).data.images

/** In real-node mode: the namespace's pods go to the real nodes, and its service accounts may write task results. */
const prepareForRealNodes = async (cluster: string, ns: string, serviceAccounts: Iterable<string>) => {
  if (!realNodes) {
    // A real-node run on the same clusters left the label: without it the pods go to the node agents again.
    await kubectlRaw(cluster, ["label", "namespace", ns, `${realNodesLabel.split("=")[0]}-`])
    return
  }
  await kubectl(cluster, ["label", "namespace", ns, realNodesLabel, "--overwrite"])
  await kubectlEnsure(cluster, ["-n", ns, ...executorRole])
  for (const sa of serviceAccounts) {
    await kubectlEnsure(cluster, ["-n", ns, "create", "rolebinding", `executor-${sa}`, "--role=executor", `--serviceaccount=${ns}:${sa}`])
  }
}

/**
 * The artifact repository where pods run in `cluster`/`ns`: its credentials
 * Secret and those the examples' own S3 locations name, created by hand as the
 * seed's step 3 says (the controller never copies one), and upstream's
 * executor artifact GC rights for the pods' service accounts (the GC pods list
 * their tasks and patch their status: argoexec on the real nodes, the node
 * agent with the pod's bound token otherwise).
 */
const prepareArtifacts = async (cluster: string, ns: string, serviceAccounts: Iterable<string>, s3: S3ServerHandle, examples: ReadonlyArray<Example>) => {
  await ensureRepositorySecret(cluster, ns, s3, Embedded.artifactSecretName)
  for (const secret of new Map(examples.flatMap((ex) => s3SecretsOf(ex)).map((s) => [s.name, s])).values()) {
    await ensureRepositorySecret(cluster, ns, s3, secret.name, secret.keys)
  }
  await kubectlEnsure(cluster, ["-n", ns, "create", "role", "artifactgc", "--verb=list,watch", `--resource=${GC_TASKS}`])
  await kubectlEnsure(cluster, ["-n", ns, "create", "role", "artifactgc-status", "--verb=patch", `--resource=${GC_TASKS}/status`])
  for (const sa of serviceAccounts) {
    await kubectlEnsure(cluster, ["-n", ns, "create", "rolebinding", `artifactgc-${sa}`, "--role=artifactgc", `--serviceaccount=${ns}:${sa}`])
    await kubectlEnsure(cluster, ["-n", ns, "create", "rolebinding", `artifactgc-status-${sa}`, "--role=artifactgc-status", `--serviceaccount=${ns}:${sa}`])
  }
}

const progress = (line: string) => console.error(`[conformance ${new Date().toISOString().slice(11, 19)}] ${line}`)

type Placement = ReturnType<typeof Embedded.placementOf>

const namespacesIn = (placement: Placement, cluster: string): ReadonlyArray<string> => [...(placement.namespaces.get(cluster) ?? [])].sort()
const remoteClustersOf = (placement: Placement): ReadonlyArray<string> => [...placement.clusters].filter((c) => c !== MAIN).sort()

/** Everything the runs need, created or updated in place (the same objects, names and contents as seed.e2e where they overlap). */
const setUp = async (placement: Placement, s3: S3ServerHandle, examples: ReadonlyArray<Example>): Promise<void> => {
  const remotes = remoteClustersOf(placement)
  for (const c of remotes) {
    if (!clusterNames().includes(c)) throw new Error(`the suite needs cluster ${c}; the clusters up are ${clusterNames().join(", ")}`)
  }
  // The node agents' rights as this checkout has them (up.sh applied them when the clusters came up; they may have grown since:
  // create on serviceaccounts/token, for resource templates' pods).
  if (!realNodes) {
    for (const c of clusterNames()) await kubectl(c, ["apply", "-f", `${repoRoot}/scripts/clusters/node-agent-rbac.yaml`])
  }
  // ---------------------------------------------------------------- main
  for (const ns of new Set([SYSTEM_NS, ...namespacesIn(placement, MAIN)])) await ensureNamespace(MAIN, ns)
  // The controller's identity: upstream's workflow-controller role (it creates the pods of as-written runs) + leader election.
  await kubectl(MAIN, ["apply", "-f", `${repoRoot}/k8s/rbac/role.yaml`, "-f", `${repoRoot}/k8s/rbac/leader_election_role.yaml`])
  await kubectlEnsure(MAIN, ["create", "clusterrolebinding", "flotilla-controller-user", "--clusterrole=flotilla-controller", `--user=${userName.controller}`])
  await kubectlEnsure(MAIN, ["-n", SYSTEM_NS, "create", "rolebinding", "flotilla-leader-election-user", "--role=flotilla-leader-election", `--user=${userName.controller}`])
  await kubectl(MAIN, ["apply", "-f", `${repoRoot}/k8s/rbac/pod_identity_role.yaml`])
  await kubectlEnsure(MAIN, ["-n", SYSTEM_NS, "create", "rolebinding", "flotilla-pod-identity-user", "--role=flotilla-pod-identity", `--user=${userName.controller}`])
  // argo-kubeconfig: one context per remote cluster, named after it, the controller identity's token.
  const systemKubeconfig = kubeconfigDoc({
    clusters: remotes.map((c) => ({ name: c, server: server(c), caData: caData(c) })),
    users: remotes.map((c) => ({ name: `flotilla-controller@${c}`, token: token(c, "controller") })),
    contexts: remotes.map((c) => {
      const namespaces = namespacesIn(placement, c)
      return { name: c, cluster: c, user: `flotilla-controller@${c}`, ...(namespaces.length === 1 ? { namespace: namespaces[0]! } : {}) }
    })
  })
  await kubectlEnsure(MAIN, ["-n", SYSTEM_NS, "create", "secret", "generic", "argo-kubeconfig", `--from-file=value=${writePrivateFile("conformance-argo-kubeconfig", systemKubeconfig)}`])
  // The configmap: this cluster's name, and the image entrypoints the embedded runtime configures too.
  await kubectlEnsure(MAIN, [
    "-n", SYSTEM_NS, "create", "configmap", "workflow-controller-configmap",
    `--from-literal=cluster=${MAIN}`,
    ...(realNodes
      ? [`--from-literal=images=${shippedImages()}`, "--from-literal=executor=image: quay.io/argoproj/argoexec:v4.0.5"]
      : [`--from-literal=images=${YAML.stringify(defaultImages)}`]),
    // The controller runs on this machine: the examples' http templates call the suite's loopback server.
    "--from-literal=httpTemplates=allowLoopbackAndLinkLocal: true",
    // The run's S3 server (its Secret is made below where pods run).
    `--from-literal=artifactRepository=${Embedded.artifactRepositoryYaml({ endpoint: s3.endpoint, bucket: BUCKET, accessKey: "", secretKey: "", region: "us-east-1" })}`
  ])
  // The user's kubeconfig per workflow namespace and service account: contexts + users only, the workflow user's token.
  const userKubeconfig = kubeconfigDoc({
    users: remotes.map((c) => ({ name: `workflow@${c}`, token: token(c, "workflow") })),
    contexts: remotes.map((c) => ({ name: c, cluster: c, user: `workflow@${c}` }))
  })
  const userKubeconfigFile = writePrivateFile("conformance-workflow-kubeconfig", userKubeconfig)
  const serviceAccounts = new Set<string>()
  for (const [ns, sas] of placement.workflowNamespaces) {
    for (const sa of sas) {
      serviceAccounts.add(sa)
      await ensureServiceAccount(MAIN, ns, sa)
      await kubectlEnsure(MAIN, ["-n", ns, "create", "secret", "generic", `${sa}-kubeconfig`, `--from-file=value=${userKubeconfigFile}`])
    }
  }
  for (const ns of namespacesIn(placement, MAIN)) {
    await prepareForRealNodes(MAIN, ns, [...serviceAccounts, "default"])
    await prepareArtifacts(MAIN, ns, [...serviceAccounts, "default"], s3, examples)
  }
  await grantResourceTemplates(placement, MAIN, [...new Set([...serviceAccounts, "default"])])
  // ---------------------------------------------------------------- remote clusters
  for (const c of remotes) {
    await ensureArtifactGCTasksCrd(c)
    for (const ns of namespacesIn(placement, c)) {
      await ensureNamespace(c, ns)
      // the pods run as the workflow's service account
      for (const sa of serviceAccounts) await ensureServiceAccount(c, ns, sa)
      // the workflow user may only create pods there ...
      await kubectlEnsure(c, ["-n", ns, "create", "role", "remote", "--verb=create", "--resource=pods"])
      await kubectlEnsure(c, ["-n", ns, "create", "rolebinding", "remote", "--role=remote", `--user=${userName.workflow}`])
      // ... and the artifact GC tasks beside the GC pods it makes there
      await kubectlEnsure(c, ["-n", ns, "create", "role", "remote-gc-tasks", "--verb=create", `--resource=${GC_TASKS}`])
      await kubectlEnsure(c, ["-n", ns, "create", "rolebinding", "remote-gc-tasks", "--role=remote-gc-tasks", `--user=${userName.workflow}`])
      await prepareForRealNodes(c, ns, [...serviceAccounts, "default"])
      await prepareArtifacts(c, ns, [...serviceAccounts, "default"], s3, examples)
    }
    await grantResourceTemplates(placement, c, [...new Set([...serviceAccounts, "default"])])
    // ... and the controller may only list/watch/delete pods and task results.
    await kubectlEnsure(c, ["create", "clusterrole", "flotilla-remote", "--verb=list,watch,delete", `--resource=pods,${TASK_RESULTS}`])
    await kubectlEnsure(c, ["create", "clusterrolebinding", "flotilla-remote", "--clusterrole=flotilla-remote", `--user=${userName.controller}`])
    // artifact GC: the tasks are read and deleted where their pods ran
    await kubectlEnsure(c, ["create", "clusterrole", "flotilla-remote-artifact-gc", "--verb=get,list,watch,delete", `--resource=${GC_TASKS}`])
    await kubectlEnsure(c, ["create", "clusterrolebinding", "flotilla-remote-artifact-gc", "--clusterrole=flotilla-remote-artifact-gc", `--user=${userName.controller}`])
  }
}

/** The name of the roles granting the resource templates' rights (a Role per namespace, a ClusterRole for cluster-scoped kinds). */
const resourceTemplatesRole = "flotilla-conformance-resource-templates"

/**
 * What the examples' resource templates do in `cluster` (the embedded
 * runtime's `resourceRules`: the verbs of each action on the kinds its
 * manifests and flags target, in the namespaces they target), granted as an
 * Argo operator grants their users' service accounts: to the pods' service
 * accounts of the namespaces where pods run there, and nothing more. The
 * pods act as those accounts: a node agent with a token bound to the pod
 * (TokenRequest), argoexec on a real node with its projected token.
 */
const grantResourceTemplates = async (placement: Placement, cluster: string, serviceAccounts: ReadonlyArray<string>): Promise<void> => {
  const rules = placement.resourceRules?.get(cluster) ?? []
  if (rules.length === 0) return
  const subjects = namespacesIn(placement, cluster).flatMap((ns) => serviceAccounts.map((name) => ({ kind: "ServiceAccount", name, namespace: ns })))
  const rbac = "rbac.authorization.k8s.io/v1"
  const byNamespace = new Map<string | undefined, Array<{ apiGroups: Array<string>; resources: Array<string>; verbs: Array<string> }>>()
  for (const rule of rules) {
    for (const ns of rule.namespaces ?? [undefined]) {
      const list = byNamespace.get(ns) ?? []
      for (const kind of rule.resources) {
        if (kind === "*" || kind === "serviceaccounts/token") continue
        list.push({ apiGroups: [resources[kind].group], resources: [kind], verbs: [...rule.verbs] })
      }
      byNamespace.set(ns, list)
    }
  }
  const items: Array<Record<string, unknown>> = []
  for (const [ns, nsRules] of byNamespace) {
    const metadata = ns === undefined ? { name: resourceTemplatesRole } : { name: resourceTemplatesRole, namespace: ns }
    const roleKind = ns === undefined ? "ClusterRole" : "Role"
    items.push({ apiVersion: rbac, kind: roleKind, metadata, rules: nsRules })
    items.push({
      apiVersion: rbac,
      kind: ns === undefined ? "ClusterRoleBinding" : "RoleBinding",
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: roleKind, name: resourceTemplatesRole },
      subjects
    })
  }
  await kubectl(cluster, ["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items }) })
}

const selectorOf = (names: ReadonlyArray<string>) => `workflows.argoproj.io/workflow in (${names.join(",")})`

/** The suite's pods (or task results) still in each cluster/namespace where pods may run. */
const leftovers = async (
  placement: Placement,
  resource: "pods" | typeof TASK_RESULTS,
  names: ReadonlyArray<string>,
  clusters: ReadonlyArray<string>
): Promise<Array<string>> => {
  const out: Array<string> = []
  for (const c of clusters) {
    for (const ns of namespacesIn(placement, c)) {
      const list = await getJson<{ items: Array<KubeObject> }>(c, [resource, "-n", ns, "-l", selectorOf(names)])
      for (const item of list?.items ?? []) out.push(`${c}/${ns}/${item.metadata.name}`)
    }
  }
  return out
}

/** The suite's Workflows that exist. */
const existingWorkflows = async (variants: ReadonlyArray<Variant>): Promise<Array<KubeObject>> => {
  const out: Array<KubeObject> = []
  for (const ns of new Set(variants.map((v) => v.wf.metadata.namespace!))) {
    const list = await getJson<{ items: Array<KubeObject> }>(MAIN, [WORKFLOWS, "-n", ns])
    const names = new Set(variants.filter((v) => v.wf.metadata.namespace === ns).map((v) => v.wf.metadata.name!))
    out.push(...(list?.items ?? []).filter((wf) => names.has(wf.metadata.name!)))
  }
  return out
}

const describeWorkflow = (wf: KubeObject): string =>
  `${wf.metadata.namespace}/${wf.metadata.name} [finalizers: ${(wf.metadata.finalizers ?? []).join(",") || "none"}]`

const deleteWorkflows = async (variants: ReadonlyArray<Variant>): Promise<void> => {
  for (const ns of new Set(variants.map((v) => v.wf.metadata.namespace!))) {
    const names = variants.filter((v) => v.wf.metadata.namespace === ns).map((v) => v.wf.metadata.name!)
    await kubectl(MAIN, ["delete", WORKFLOWS, "-n", ns, "--ignore-not-found", "--wait=false", ...names])
  }
}

/** Removes what an earlier (interrupted) run left behind, before any flotilla process runs. */
const clearLeftovers = async (placement: Placement, variants: ReadonlyArray<Variant>): Promise<void> => {
  for (const wf of await existingWorkflows(variants)) {
    const ns = wf.metadata.namespace!
    const name = wf.metadata.name!
    await kubectlRaw(MAIN, ["patch", WORKFLOWS, name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'])
    await kubectlRaw(MAIN, ["delete", WORKFLOWS, name, "-n", ns, "--ignore-not-found", "--wait=false"])
  }
  await waitFor("workflows of an earlier run to be gone", async () => ((await existingWorkflows(variants)).length === 0 ? true : undefined), 120_000, 500)
  const names = [...new Set(variants.map((v) => v.wf.metadata.name!))]
  for (const c of placement.clusters) {
    for (const ns of namespacesIn(placement, c)) {
      await kubectlRaw(c, ["delete", "pods", "-n", ns, "-l", selectorOf(names), "--force", "--grace-period=0", "--ignore-not-found"])
      await kubectlRaw(c, ["delete", TASK_RESULTS, "-n", ns, "-l", selectorOf(names), "--ignore-not-found"])
    }
  }
  for (const c of clusterNames()) await kubectlRaw(c, ["delete", "node", nodeName(c), "--ignore-not-found"])
}

/** Follows the Workflows on main through one watch; runs wait on it. */
const workflowWatcher = () => {
  interface Waiter {
    readonly uid: string
    readonly done: (wf: KubeObject | undefined) => boolean
  }
  const waiters = new Set<Waiter>()
  // The last state seen of each Workflow (by uid; null once deleted): a run may complete before its waiter is added.
  const latest = new Map<string, KubeObject | null>()
  const handle = watchEvents(MAIN, `/apis/argoproj.io/v1alpha1/workflows`, (type, object: KubeObject) => {
    const uid = object.metadata.uid ?? ""
    latest.set(uid, type === "DELETED" ? null : object)
    for (const w of waiters) {
      if (uid !== w.uid) continue
      if (w.done(type === "DELETED" ? undefined : object)) waiters.delete(w)
    }
  })
  /**
   * Resolves with the Workflow `uid` once completed (undefined if it is gone
   * first), or "timeout". Besides the watch, polls every 10s (an event between
   * two watch connections is not seen again).
   */
  const completion = (ns: string, name: string, uid: string, timeoutMs: number): Promise<KubeObject | undefined | "timeout"> =>
    new Promise((resolve) => {
      let settled = false
      const settle = (result: KubeObject | undefined | "timeout") => {
        if (settled) return true
        settled = true
        clearTimeout(timer)
        clearInterval(poll)
        waiters.delete(waiter)
        resolve(result)
        return true
      }
      const waiter: Waiter = {
        uid,
        done: (wf) => (wf === undefined || Embedded.isCompleted(wf) ? settle(wf) : false)
      }
      waiters.add(waiter)
      const timer = setTimeout(() => settle("timeout"), timeoutMs)
      const poll = setInterval(() => {
        getJson<KubeObject>(MAIN, [WORKFLOWS, name, "-n", ns]).then(
          (wf) => {
            if (wf === undefined || wf.metadata.uid !== uid) settle(undefined)
            else waiter.done(wf)
          },
          () => undefined
        )
      }, 10_000)
      const seen = latest.get(uid)
      if (seen !== undefined) waiter.done(seen ?? undefined)
    })
  return { completion, stop: handle.stop }
}

/** The flotilla processes this run started (stopped at the end, or when this process is told to stop). */
const procs: Array<Proc> = []
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping the controller and node agents`)
    void Promise.all(procs.map((p) => p.stop())).finally(() => process.exit(1))
  })
}

const main = async (): Promise<number> => {
  if (!(await clustersUp())) throw new Error(`no clusters up in ${stateDir} (run scripts/clusters/up.sh)`)
  // The controller runs on this machine: the examples' http templates reach the loopback server their `url` lines name.
  const server = await startLoopbackServer()
  // The artifact repository, and the S3 server the examples' own locations are moved to (as run.ts).
  const s3 = await startS3Server()
  try {
    return await withS3(server, s3)
  } finally {
    await s3.stop()
  }
}

const withS3 = async (server: Awaited<ReturnType<typeof startLoopbackServer>>, s3: S3ServerHandle): Promise<number> => {
  await s3.createBucket(BUCKET)
  const all = loadExamples(server.base, s3)
  for (const bucketOrObject of [...new Set(all.flatMap((ex) => (ex.expect.s3 ?? []).map((l) => JSON.stringify([l.bucket, l.key]))))]) {
    const [b, key] = JSON.parse(bucketOrObject) as [string, string | null]
    await s3.createBucket(b).catch((e: Error) => /BucketAlready/.test(e.message) ? undefined : Promise.reject(e))
    if (key !== null) {
      const client = s3.client()
      await client.send(new PutObjectCommand({ Bucket: b, Key: key, Body: "an object put by the conformance suite\n" })).finally(() => client.destroy())
    }
  }
  // `embedded-only` examples cannot work here (see their headers): reported SKIP, never run nor counted as passed.
  // So are `not-on-real-nodes` examples when the pods run on the real nodes.
  const skip = (ex: (typeof all)[number]) => ex.expect.embeddedOnly !== undefined || (realNodes && ex.expect.notOnRealNodes !== undefined)
  const skipped = all.filter(skip)
  const examples = all.filter((ex) => !skip(ex))
  // On the real nodes one run per example by default: its multi-cluster variant, whose pods the workflow's user
  // creates in cluster-2/remote (the product's path, with the executor's secrets and rights there); both
  // variants of every example run on the node agents, and main's real node runs the deploy and demo tests' pods.
  const choice = variantChoice(realNodes ? "multi-cluster" : "both")
  const variants = variantsOf(examples, choice)
  const support = supportObjects()
  const placement = Embedded.placementOf([...variants.map((v) => v.wf), ...placementHints(support)])
  const remotes = remoteClustersOf(placement)
  const t0 = Date.now()

  await clearLeftovers(placement, variants)
  await setUp(placement, s3, examples)
  // The templates and configmaps the examples use, before any run (apply: a second run on the same clusters updates them).
  if (support.length > 0) {
    await kubectl(MAIN, ["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: support.map((o) => o.object) }) })
  }
  progress(`set up in ${((Date.now() - t0) / 1000).toFixed(1)}s; ${variants.length} runs (${choice}), timeout ${timeout}s each`)

  const watcher = workflowWatcher()
  try {
    const agents = realNodes ? [] : clusterNames()
    for (const c of agents) {
      procs.push(startFlotilla(`conformance-kubelet-${c}`, ["kubelet", "--kubeconfig", kubeconfigPath(c, "node-agent"), "--node-name", nodeName(c),
        // the repository and the examples' loopback URL server are on 127.0.0.1: allowed explicitly, nothing else there is
        "--artifact-allow-endpoint", `http://${s3.endpoint}`, "--artifact-allow-endpoint", server.base]))
    }
    const controller = startFlotilla("conformance-controller", [
      "controller", "--kubeconfig", kubeconfigPath(MAIN, "controller"), "--namespace", SYSTEM_NS,
      // no listeners: nothing to collide with another controller on this machine
      "--health-port", "0", "--metrics-port", "0"
    ])
    procs.push(controller)
    const diagnostics = () => tailLogs(procs)
    // generous: four tsx processes start at once, and the machine may be busy
    for (const c of agents) {
      await waitFor(`node ${nodeName(c)} registered in ${c}`, async () => (await getJson(c, ["node", nodeName(c)])) ?? undefined, 180_000, 500, diagnostics)
    }
    for (const c of remotes) {
      await waitFor(`controller log "msg=cluster cluster=${c}"`, () =>
        controller.log().split("\n").some((l) => new RegExp(`msg=cluster cluster=${c}(\\s|$)`).test(l)) ? true : undefined, 180_000, 250, diagnostics)
    }
    progress(`controller and ${realNodes ? "no node agents (real nodes)" : `${agents.length} node agents`} started (logs: ${procs.map((p) => p.logFile).join(", ")})`)

    let finished = 0
    const attempt = (v: Variant) =>
      Effect.promise(async () => {
        const ns = v.wf.metadata.namespace!
        const name = v.wf.metadata.name!
        const started = Date.now()
        const seconds = timeoutFor(v.ex, timeout)
        const created = JSON.parse(await kubectl(MAIN, ["create", "-f", "-", "-o", "json"], { input: JSON.stringify(manifestOf(v)) })) as KubeObject
        const result = await watcher.completion(ns, name, created.metadata.uid!, seconds * 1000)
        const outcome = result === "timeout"
          ? timedOut(v, await getJson<KubeObject>(MAIN, [WORKFLOWS, name, "-n", ns]), seconds)
          : judge(v, result, started)
        progress(`[${++finished}] ${v.label}: ${outcome.ok ? `${v.ex.expect.phase} as expected` : "not as expected"} in ${((Date.now() - started) / 1000).toFixed(1)}s`)
        return outcome
      })
    const remove = (v: Variant) =>
      Effect.promise(async () => {
        const ns = v.wf.metadata.namespace!
        const name = v.wf.metadata.name!
        await kubectlRaw(MAIN, ["delete", WORKFLOWS, name, "-n", ns, "--ignore-not-found", "--wait=false"])
        await waitFor(`workflow ${ns}/${name} to be gone`, async () =>
          (await getJson(MAIN, [WORKFLOWS, name, "-n", ns])) === undefined ? true : undefined, 60_000, 500).catch(() => undefined)
      })
    const outcomes = await Effect.runPromise(runVariants(variants, { attempt, remove }))
    progress(`all runs done in ${((Date.now() - t0) / 1000).toFixed(1)}s; deleting the workflows`)

    // Nothing may be left behind once the workflows are deleted: finalizers released, remote pods and task results gone.
    const cleanupFailures: Array<string> = []
    await deleteWorkflows(variants)
    let remaining: Array<KubeObject> = []
    const gone = await waitFor("the workflows to be gone", async () => {
      remaining = await existingWorkflows(variants)
      return remaining.length === 0 ? true : undefined
    }, 180_000, 1000).then(() => true, () => false)
    if (!gone) cleanupFailures.push(`cleanup: workflows still present 180s after their deletion: ${remaining.map(describeWorkflow).join("; ")}`)
    const names = [...new Set(variants.map((v) => v.wf.metadata.name!))]
    const pods = await leftovers(placement, "pods", names, remotes)
    if (pods.length > 0) cleanupFailures.push(`cleanup: pods left in remote clusters after their workflows were deleted: ${pods.join(", ")}`)
    const results = await leftovers(placement, TASK_RESULTS, names, remotes)
    if (results.length > 0) cleanupFailures.push(`cleanup: task results left in remote clusters after their workflows were deleted: ${results.join(", ")}`)
    if (cleanupFailures.length === 0) progress(`cleanup: every workflow gone, nothing of theirs left in ${remotes.join(", ")}`)
    for (const p of procs) if (p.exited()) cleanupFailures.push(`process ${p.name} exited during the run (see ${p.logFile})`)

    return report(examples, outcomes, cleanupFailures, skipped, choice)
  } finally {
    watcher.stop()
    await Promise.all(procs.map((p) => p.stop()))
    await server.close()
  }
}

exitWith(main())
