/**
 * The embedded runtime: in-memory clusters set up exactly as the multi-cluster
 * set-up of upstream Argo asks an operator to (argo-kubeconfig with one
 * context per cluster, the configmap's `cluster` key, a workflow user allowed
 * only to create pods remotely, the user's `<sa>-kubeconfig` secret), plus a
 * local kubelet per cluster and the controller. Nothing takes a shortcut: the
 * controller only gets list/watch/delete in remote clusters, so every remote
 * pod really is created with the user's credentials.
 *
 * Used by `flotilla run` when no kubeconfig is given, by the conformance suite
 * and by in-memory tests.
 */
import { Context, Effect, Layer, PubSub, Redacted, References, Scope } from "effect"
import * as YAML from "yaml"
import { Controller, type ControllerOptions } from "../controller/Controller.js"
import type { ConnectionSpec } from "../kube/api/Connection.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { type KubeObject, resources } from "../kube/api/Resources.js"
import type { ArtifactStore } from "../kubelet/artifacts/S3Store.js"
import * as LocalKubelet from "../kubelet/LocalKubelet.js"
import { defaultImages, type Images } from "../kubelet/images.js"
import { targetOf } from "../kubelet/resourceAction.js"
import * as Scheduler from "../kubelet/Scheduler.js"
import { nodeObject } from "../kubelet/scheduling.js"
import { InMemoryKube, type PolicyRule, serverUrl, type Verb } from "../testing/InMemoryKube.js"

export const localClusterName = "main"
export const systemNamespace = "argo"

export const tokens = {
  controller: "controller-token",
  workflowUser: "workflow-user-token",
  kubelet: "kubelet-token",
  scheduler: "scheduler-token"
} as const

export interface Placement {
  readonly clusters: ReadonlySet<string>
  /** Namespaces per cluster that pods may be created in. */
  readonly namespaces: ReadonlyMap<string, ReadonlySet<string>>
  /** Workflow namespaces (where the user kubeconfig secrets go), with the service accounts used. */
  readonly workflowNamespaces: ReadonlyMap<string, ReadonlySet<string>>
  /**
   * What the workflows' resource templates do, per cluster: the rights their
   * pods' service accounts get there (resourceGrants). Absent: none.
   */
  readonly resourceRules?: ReadonlyMap<string, ReadonlyArray<PolicyRule>>
}

/** The user name of a service account, as the API server reports it. */
export const serviceAccountUser = (namespace: string, name: string): string => `system:serviceaccount:${namespace}:${name}`
/** The token the embedded runtime's kubelets give a pod of `namespace` running as service account `name` in `cluster`. */
export const serviceAccountToken = (cluster: string, namespace: string, name: string): string =>
  `service-account-token:${cluster}:${namespace}:${name}`

/** The verbs `argoexec resource <action>` needs (kubectl's calls, plus get to wait and read outputs). */
const resourceVerbs: Readonly<Record<string, ReadonlyArray<Verb>>> = {
  create: ["create", "get"],
  apply: ["get", "create", "patch"],
  patch: ["get", "patch", "update"],
  replace: ["get", "update"],
  delete: ["delete"],
  get: ["get"]
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined)

/** Every cluster and namespace the workflows name, and where their owners live. */
/** Templates and the inline templates their steps and DAG tasks carry, however deep. */
const withInlineTemplates = (templates: ReadonlyArray<Record<string, unknown>>): Array<Record<string, unknown>> => {
  const out: Array<Record<string, unknown>> = []
  const visit = (t: unknown, depth: number) => {
    if (typeof t !== "object" || t === null || Array.isArray(t) || depth > 100) return
    const template = t as Record<string, unknown>
    out.push(template)
    const calls: Array<unknown> = []
    if (Array.isArray(template["steps"])) {
      for (const group of template["steps"] as Array<unknown>) {
        const steps = Array.isArray(group) ? group : (group as { steps?: unknown } | null)?.steps
        if (Array.isArray(steps)) calls.push(...steps)
      }
    }
    const dag = template["dag"] as { tasks?: unknown } | undefined
    if (dag !== undefined && dag !== null && Array.isArray(dag.tasks)) calls.push(...dag.tasks)
    for (const call of calls) visit((call as { inline?: unknown } | null)?.inline, depth + 1)
  }
  for (const t of templates) visit(t, 0)
  return out
}

export const placementOf = (workflows: ReadonlyArray<KubeObject>, defaultNamespace = "default"): Placement => {
  const clusters = new Set<string>([localClusterName])
  const namespaces = new Map<string, Set<string>>()
  const workflowNamespaces = new Map<string, Set<string>>()
  const resourceRules = new Map<string, Array<PolicyRule>>()
  const add = (cluster: string, ns: string) => {
    clusters.add(cluster)
    const set = namespaces.get(cluster) ?? new Set<string>()
    set.add(ns)
    namespaces.set(cluster, set)
  }
  for (const wf of workflows) {
    const wfNs = wf.metadata.namespace ?? defaultNamespace
    const spec = (wf["spec"] ?? {}) as {
      templates?: ReadonlyArray<Record<string, unknown>>
      templateDefaults?: Record<string, unknown>
      serviceAccountName?: string
    }
    const sas = workflowNamespaces.get(wfNs) ?? new Set<string>()
    sas.add(spec.serviceAccountName || "default")
    workflowNamespaces.set(wfNs, sas)
    add(localClusterName, wfNs)
    const templates = [...withInlineTemplates(spec.templates ?? []), ...(spec.templateDefaults ? [spec.templateDefaults] : [])]
    const clusterNames = new Set<string>()
    const named = new Set<string>()
    let unnamedNamespace = false
    const defaults = spec.templateDefaults ?? {}
    for (const t of templates) {
      const c = str(t["cluster"])
      const n = str(t["namespace"])
      if (c) clusterNames.add(c)
      if (n) named.add(n)
      else if (t["container"] !== undefined || t["script"] !== undefined || t["resource"] !== undefined) unnamedNamespace = true
      const resource = t["resource"] as { action?: unknown; manifest?: unknown; manifestFrom?: unknown; flags?: unknown; mergeStrategy?: unknown } | undefined
      if (resource !== undefined) {
        // manifestFrom: the manifest of a raw input artifact is known here too (another kind's is only known in the pod).
        const fromName = (resource.manifestFrom as { artifact?: { name?: unknown } } | undefined)?.artifact?.name
        const fromArtifact = fromName === undefined ? undefined : ((t["inputs"] as { artifacts?: ReadonlyArray<{ name?: unknown; raw?: { data?: unknown } }> } | undefined)?.artifacts ?? [])
          .find((a) => a.name === fromName)
        const manifest = fromArtifact !== undefined ? fromArtifact.raw?.data : resource.manifest
        // The resource pod's service account gets what its action needs on the kind it acts on, where it acts:
        // the manifest's, or the object its flags name (no manifest; for a patch, a JSON patch or a manifest without kind).
        const cluster = c ?? str(defaults["cluster"]) ?? localClusterName
        const podNs = n ?? str(defaults["namespace"]) ?? wfNs
        const flags = Array.isArray(resource.flags) ? resource.flags.filter((f): f is string => typeof f === "string") : []
        // The same choice the resource pod makes (resourceAction.ts): by flags whenever the manifest is empty.
        const target = targetOf({
          action: String(resource.action),
          flags,
          ...(typeof manifest === "string" ? { manifest } : {}),
          ...(typeof resource.mergeStrategy === "string" ? { mergeStrategy: resource.mergeStrategy } : {})
        })
        const verbs = resourceVerbs[String(resource.action)]
        if (target !== undefined && verbs !== undefined) {
          const ns = resources[target.kind].namespaced ? target.namespace ?? podNs : undefined
          if (ns !== undefined) add(cluster, ns)
          const rules = resourceRules.get(cluster) ?? []
          rules.push({ verbs, resources: [target.kind], ...(ns !== undefined ? { namespaces: [ns] } : {}) })
          resourceRules.set(cluster, rules)
        }
        if (c !== undefined) clusters.add(c)
        add(cluster, podNs)
      }
      const sa = str(t["serviceAccountName"])
      if (sa !== undefined) sas.add(sa)
    }
    // Inheritance can combine any named cluster with any named namespace; a
    // template naming no namespace runs in the workflow's.
    const remoteNamespaces = named.size > 0 ? new Set(named) : new Set([wfNs])
    if (unnamedNamespace) remoteNamespaces.add(wfNs)
    for (const n of named) add(localClusterName, n)
    for (const c of clusterNames) for (const n of remoteNamespaces) add(c, n)
  }
  return { clusters, namespaces, workflowNamespaces, resourceRules }
}

const controllerLocalRules: ReadonlyArray<PolicyRule> = [{ verbs: ["*"], resources: ["*"] }]
/** What a workflow's service account may read in its own namespace of the local cluster (http templates' secrets). */
export const workflowSecretsRule = (namespace: string): PolicyRule => ({ verbs: ["get"], resources: ["secrets"], namespaces: [namespace] })
/** What the seed grants the controller in a remote cluster: list/watch/delete, nothing else. */
const controllerRemoteRules = (namespace: string | undefined): ReadonlyArray<PolicyRule> => [
  {
    verbs: ["list", "watch", "delete"],
    resources: ["pods", "workflowtaskresults"],
    ...(namespace ? { namespaces: [namespace] } : {})
  },
  // artifact GC: the tasks' results are read, and the tasks deleted, where their pods ran
  { verbs: ["get", "list", "watch", "delete"], resources: ["workflowartifactgctasks"], ...(namespace ? { namespaces: [namespace] } : {}) }
]
/** What upstream's executor role grants an artifact GC pod's service account (its tasks, their status). */
const artifactGCRule = (namespace: string): PolicyRule => ({
  verbs: ["list", "watch", "patch"],
  resources: ["workflowartifactgctasks"], // (the in-memory API server checks a status patch as a patch of the task)
  namespaces: [namespace]
})
/** kube-scheduler's rights, as far as binding pods goes. */
const schedulerRules: ReadonlyArray<PolicyRule> = [
  { verbs: ["get", "list", "watch"], resources: ["nodes"] },
  { verbs: ["get", "list", "watch", "update", "patch"], resources: ["pods"] }
]
const kubeletRules: ReadonlyArray<PolicyRule> = [
  { verbs: ["get", "list", "watch", "patch", "update", "delete"], resources: ["pods"] },
  // the secrets its pods mount (the artifact repository's credentials), as the Node authorizer allows a kubelet
  { verbs: ["get"], resources: ["secrets"] },
  { verbs: ["get", "create", "update", "patch"], resources: ["workflowtaskresults"] }
]

export const kubeconfigYaml = (
  contexts: ReadonlyArray<{ readonly name: string; readonly namespace?: string | undefined; readonly token: string; readonly server?: string }>,
  withClusters: boolean
): string =>
  YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    preferences: {},
    ...(withClusters
      ? { clusters: contexts.map((c) => ({ name: c.name, cluster: { server: c.server ?? serverUrl(c.name) } })) }
      : {}),
    contexts: contexts.map((c) => ({
      name: c.name,
      context: { cluster: c.name, user: c.name, ...(c.namespace ? { namespace: c.namespace } : {}) }
    })),
    ...(contexts[0] ? { "current-context": contexts[0].name } : {}),
    users: contexts.map((c) => ({ name: c.name, user: { token: c.token } }))
  })

const secret = (namespace: string, name: string, value: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { namespace, name },
  type: "Opaque",
  data: { value: Buffer.from(value, "utf8").toString("base64") }
})

const upsert = (client: KubeClientShape, kind: "secrets" | "configmaps", object: KubeObject) =>
  client.create(kind, object.metadata.namespace, object).pipe(
    Effect.catchTag("KubeError", (e) =>
      e.reason === "AlreadyExists"
        ? client.get(kind, object.metadata.namespace, object.metadata.name!).pipe(
          Effect.flatMap((current) => client.replace(kind, object.metadata.namespace, { ...object, metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion! } }))
        )
        : Effect.fail(e))
  )

/**
 * The artifact repository of an embedded run: an S3 server (or what stands in
 * for one, `store`), written into the controller configmap as an operator
 * would, its credentials in a Secret of every namespace pods run in.
 */
export interface ArtifactRepositoryOptions {
  /** `host:port`, without a scheme (argo's `s3.endpoint`). */
  readonly endpoint: string
  readonly bucket: string
  readonly accessKey: string
  readonly secretKey: string
  readonly region?: string | undefined
  /** Plain HTTP (default true: a server on this machine). */
  readonly insecure?: boolean | undefined
  /** What the kubelets load and save artifacts with (default: the S3 store). */
  readonly store?: ArtifactStore | undefined
}

/** The Secret holding the embedded repository's keys (`accessKey`, `secretKey`), in every namespace pods run in. */
export const artifactSecretName = "flotilla-artifact-repository"

/** The configmap's `artifactRepository` for `repo`. */
export const artifactRepositoryYaml = (repo: ArtifactRepositoryOptions): string =>
  YAML.stringify({
    s3: {
      endpoint: repo.endpoint,
      bucket: repo.bucket,
      insecure: repo.insecure ?? true,
      ...(repo.region !== undefined ? { region: repo.region } : {}),
      accessKeySecret: { name: artifactSecretName, key: "accessKey" },
      secretKeySecret: { name: artifactSecretName, key: "secretKey" }
    }
  })

export interface ProvisionOptions {
  readonly images?: Images
  /** Extra configmap data (YAML strings). */
  readonly configData?: Readonly<Record<string, string>>
  /** The artifact repository (none: artifacts fail as with no repository configured). */
  readonly artifactRepository?: ArtifactRepositoryOptions | undefined
}

/** Creates clusters, identities, namespaces, secrets and the configmap for `placement`. */
export const provision = Effect.fnUntraced(function*(placement: Placement, options: ProvisionOptions = {}) {
  const kube = yield* InMemoryKube
  for (const cluster of placement.clusters) {
    yield* kube.addCluster(cluster)
    const namespaces = placement.namespaces.get(cluster) ?? new Set<string>()
    for (const ns of namespaces) yield* kube.ensureNamespace(cluster, ns)
    const local = cluster === localClusterName
    const scoped = !local && namespaces.size === 1 ? [...namespaces][0] : undefined
    yield* kube.addIdentity(cluster, {
      name: "controller",
      token: tokens.controller,
      rules: local ? controllerLocalRules : controllerRemoteRules(scoped)
    })
    yield* kube.addIdentity(cluster, {
      name: "workflow",
      token: tokens.workflowUser,
      // pods, and the artifact GC tasks their GC pods read (made with the user's credentials, as the pods)
      rules: [{ verbs: ["create"], resources: ["pods", "workflowartifactgctasks"], namespaces: [...namespaces] }]
    })
    yield* kube.addIdentity(cluster, { name: "kubelet", token: tokens.kubelet, rules: kubeletRules })
    // The workflows' service accounts in each namespace their pods may run in: the identity a resource
    // template's pod acts with, granted what the workflows' resource templates do in this cluster.
    const serviceAccounts = new Set<string>(["default"])
    for (const sas of placement.workflowNamespaces.values()) for (const sa of sas) serviceAccounts.add(sa)
    const rules = placement.resourceRules?.get(cluster) ?? []
    for (const ns of namespaces) {
      // An http template's header from a secret is read for its workflow's service account (the
      // controller asks the server first). One user owns every embedded namespace: the workflows'
      // service accounts may get the secrets of their own namespace.
      const own = local && placement.workflowNamespaces.has(ns) ? [workflowSecretsRule(ns)] : []
      for (const sa of serviceAccounts) {
        yield* kube.addIdentity(cluster, { name: serviceAccountUser(ns, sa), token: serviceAccountToken(cluster, ns, sa), rules: [...rules, ...own, artifactGCRule(ns)] })
      }
    }
  }
  const admin = kube.adminClient(localClusterName)
  yield* kube.ensureNamespace(localClusterName, systemNamespace)

  // (1) argo-kubeconfig: one context per remote cluster, named after it (none without remote
  // clusters: a kubeconfig with no context is invalid, as an operator with no remote cluster
  // would not create the secret either).
  const remote = [...placement.clusters].filter((c) => c !== localClusterName).sort()
  if (remote.length > 0) yield* upsert(admin, "secrets", secret(systemNamespace, "argo-kubeconfig", kubeconfigYaml(
    remote.map((name) => {
      const namespaces = placement.namespaces.get(name) ?? new Set<string>()
      return { name, namespace: namespaces.size === 1 ? [...namespaces][0] : undefined, token: tokens.controller }
    }),
    true
  )))
  // (2) the configmap names this cluster.
  yield* upsert(admin, "configmaps", {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { namespace: systemNamespace, name: "workflow-controller-configmap" },
    data: {
      cluster: localClusterName,
      images: YAML.stringify(options.images ?? defaultImages),
      // The embedded "clusters" are this machine: http templates may call its own servers.
      httpTemplates: "allowLoopbackAndLinkLocal: true\nallowPrivateNetworks: true\n",
      ...(options.artifactRepository !== undefined ? { artifactRepository: artifactRepositoryYaml(options.artifactRepository) } : {}),
      ...options.configData
    }
  })
  // (3) the repository's credentials where the pods run, in every cluster: the executor reads them there,
  // and the controller never copies a secret from one cluster to another.
  const repo = options.artifactRepository
  if (repo !== undefined) {
    for (const cluster of placement.clusters) {
      const namespaces = new Set(placement.namespaces.get(cluster) ?? [])
      if (cluster === localClusterName) for (const ns of placement.workflowNamespaces.keys()) namespaces.add(ns)
      for (const ns of namespaces) {
        yield* upsert(kube.adminClient(cluster), "secrets", {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { namespace: ns, name: artifactSecretName },
          type: "Opaque",
          data: { accessKey: Buffer.from(repo.accessKey, "utf8").toString("base64"), secretKey: Buffer.from(repo.secretKey, "utf8").toString("base64") }
        })
      }
    }
  }
  // (6) the user's kubeconfig, users and contexts only, in each workflow namespace.
  for (const [ns, serviceAccounts] of placement.workflowNamespaces) {
    const contexts: Array<{ name: string; namespace?: string; token: string }> = []
    for (const cluster of placement.clusters) {
      // One context per cluster with no namespace: the remote cluster's RBAC decides where pods may go.
      contexts.push({ name: cluster, token: tokens.workflowUser })
    }
    for (const sa of serviceAccounts) {
      yield* upsert(admin, "secrets", secret(ns, `${sa}-kubeconfig`, kubeconfigYaml(contexts, false)))
    }
  }
})

export const controllerSpec = (cluster: string): ConnectionSpec => ({
  cluster,
  user: "controller",
  endpoint: { server: serverUrl(cluster) },
  auth: { _tag: "Token", token: Redacted.make(tokens.controller) }
})

export interface StartOptions extends ProvisionOptions {
  readonly mode?: "process" | "simulate"
  readonly workers?: number
  /** Controller tuning (intervals, timeouts), mainly for tests. */
  readonly controller?: ControllerTuning
  /**
   * Endpoints (`host:port` or URLs) the pods' artifact calls may reach on
   * loopback or private addresses, besides the artifact repository's (which
   * is always allowed): e.g. a test's http server on 127.0.0.1.
   */
  readonly artifactAllowedEndpoints?: ReadonlyArray<string> | undefined
}

/** Everything in `ControllerOptions` except the connection, which the embedded runtime provides. */
export type ControllerTuning = Partial<Omit<ControllerOptions, "localClient" | "localSpec" | "systemNamespace">>

const withScheme = (endpoint: string, insecure: boolean): string =>
  /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `${insecure ? "http" : "https"}://${endpoint}`

/**
 * The endpoints the kubelets' artifact calls may reach on loopback or private
 * addresses: the artifact repository (the option's, and the one the configmap
 * data given names, `artifactRepository.s3.endpoint`) and those allowed
 * explicitly; nothing else on this machine.
 */
export const repositoryEndpoints = (options: StartOptions): ReadonlyArray<string> => {
  const endpoints: Array<string> = []
  const repo = options.artifactRepository
  if (repo !== undefined) endpoints.push(withScheme(repo.endpoint, repo.insecure ?? true))
  const configured = options.configData?.["artifactRepository"]
  if (configured !== undefined) {
    try {
      const s3 = (YAML.parse(configured) as { s3?: { endpoint?: unknown; insecure?: unknown } } | null)?.s3
      if (typeof s3?.endpoint === "string" && s3.endpoint !== "") endpoints.push(withScheme(s3.endpoint, s3.insecure === true))
    } catch {
      // an unreadable repository is the controller's to report
    }
  }
  return [...endpoints, ...(options.artifactAllowedEndpoints ?? [])]
}

/** The node of a cluster's local kubelet. */
export const nodeNameOf = (cluster: string): string => `${cluster}-node`

/**
 * Starts, in the current scope, a node per cluster of `placement` (registered
 * with the labels a kubelet gives its node: hostname, os, arch), its local
 * kubelet, and a scheduler binding the cluster's pods to the nodes their
 * nodeSelector, node affinity and tolerations allow; a pod no node takes stays
 * Pending (Unschedulable) until one does.
 */
export const startKubelets = Effect.fnUntraced(function*(placement: Placement, options: StartOptions = {}) {
  const kube = yield* InMemoryKube
  const images = { ...defaultImages, ...options.images }
  for (const cluster of placement.clusters) {
    const nodeName = nodeNameOf(cluster)
    yield* kube.adminClient(cluster).create("nodes", undefined, nodeObject(nodeName)).pipe(
      Effect.catchTag("KubeError", (e) => (e.reason === "AlreadyExists" ? Effect.void : Effect.die(e)))
    )
    yield* kube.addIdentity(cluster, { name: "scheduler", token: tokens.scheduler, rules: schedulerRules })
    yield* LocalKubelet.start({
      client: kube.clientFor(cluster, tokens.kubelet),
      nodeName,
      mode: options.mode ?? "process",
      images,
      pathPrepend: ["/usr/games"],
      bind: false,
      serviceAccountClient: (namespace, serviceAccount) =>
        kube.clientFor(cluster, serviceAccountToken(cluster, namespace, serviceAccount)),
      logSink: { writeLogs: (ns, pod, container, text) => kube.setPodLog(cluster, ns, pod, container, text) },
      ...(options.artifactRepository?.store !== undefined ? { artifactStore: options.artifactRepository.store } : {}),
      // The kubelet makes the artifact calls from this machine's network: only the repository and the
      // endpoints allowed explicitly may be on loopback or private addresses.
      artifactAllowedEndpoints: repositoryEndpoints(options)
    })
    yield* Scheduler.start({ client: kube.clientFor(cluster, tokens.scheduler) })
  }
})

/**
 * Starts the controller on the provisioned clusters, in the current scope
 * (closing it stops the controller, as a crash or restart would).
 */
export const startController = Effect.fnUntraced(function*(options: Pick<StartOptions, "workers" | "controller"> = {}) {
  const kube = yield* InMemoryKube
  const localClient = kube.clientFor(localClusterName, tokens.controller)
  const controller = yield* Controller.make({
    ...options.controller,
    localClient,
    localSpec: controllerSpec(localClusterName),
    systemNamespace,
    ...(options.workers ? { workers: options.workers } : {})
  })
  const result: StartResult = { kube, controller, admin: kube.adminClient(localClusterName) }
  return result
})

/**
 * Provisions, starts a kubelet per cluster and the controller, in the current
 * scope. Requires InMemoryKube and KubeConnector (InMemoryKube.layer).
 */
export const start = Effect.fnUntraced(function*(placement: Placement, options: StartOptions = {}) {
  yield* provision(placement, options)
  yield* startKubelets(placement, options)
  return yield* startController(options)
})

export interface StartResult {
  readonly kube: InMemoryKube["Service"]
  readonly controller: Controller["Service"]
  /** Admin of the local cluster: plays the user submitting workflows. */
  readonly admin: KubeClientShape
}

/**
 * The embedded runtime as a layer: in-memory clusters provisioned for `placement`, a kubelet per
 * cluster and the controller, which runs while the layer's scope is open. Provide it beside your
 * own services (the in-memory counterpart of `FlotillaLive.layer`); `InMemoryKube` in the context
 * plays the clusters (`adminClient("main")` submits workflows).
 */
export const controllerLayer = (
  placement: Placement,
  options: StartOptions = {}
): Layer.Layer<
  Controller | InMemoryKube | import("../kube/api/KubeConnector.js").KubeConnector,
  import("../kube/api/KubeError.js").KubeError | import("../controller/ControllerConfig.js").ConfigMapError
> =>
  Layer.effectContext(
    Effect.map(start(placement, options), (started) => Context.make(Controller, started.controller))
  ).pipe(Layer.provideMerge(InMemoryKube.layer))

/** InMemoryKube + KubeConnector, for callers that build their own runtime. */
export const layer: Layer.Layer<InMemoryKube | import("../kube/api/KubeConnector.js").KubeConnector> = InMemoryKube.layer

export type { Scope }

/**
 * Waits until the workflow satisfies `predicate` (or is gone, when
 * `predicate(undefined)` is true), driven by the informer's changes: no polling.
 */
export const awaitWorkflow = (
  controller: Controller["Service"],
  namespace: string,
  name: string,
  predicate: (wf: KubeObject | undefined) => boolean
): Effect.Effect<KubeObject | undefined> =>
  Effect.scoped(Effect.gen(function*() {
    const subscription = yield* controller.workflows.subscribe
    const current = yield* controller.workflows.get(namespace, name)
    const now = current._tag === "Some" ? current.value : undefined
    if (predicate(now)) return now
    while (true) {
      const change = yield* PubSub.take(subscription)
      if (change.object.metadata.namespace !== namespace || change.object.metadata.name !== name) continue
      const wf = change.type === "delete" ? undefined : change.object
      if (predicate(wf)) return wf
    }
  }))

export const phaseOf = (wf: KubeObject | undefined): string =>
  ((wf?.["status"] as { phase?: string } | undefined)?.phase) ?? ""

export const isCompleted = (wf: KubeObject | undefined): boolean =>
  ["Succeeded", "Failed", "Error"].includes(phaseOf(wf))

/** Drops info/debug logs (benchmarks and batch runs). */
export const quietLogs = Layer.succeed(References.MinimumLogLevel, "Warn")
