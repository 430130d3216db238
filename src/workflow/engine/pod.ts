/**
 * The pod manifest for a container, script or resource template, laid out the
 * way Argo's controller builds it (`workflowpod.go`): init + wait + main with
 * the emissary wrapper, so a real cluster runs it with upstream's argoexec
 * image. The user's container and template-level pod fields pass through
 * unchanged. A resource template's pod has no wait container: its main is the
 * executor itself (`argoexec resource <action>`), locked down as upstream does;
 * a data template's pod likewise runs `argoexec data <data as JSON>` as main
 * (upstream's executeData), with the secrets of its source artifact mounted.
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import type { Container, Template, Workflow } from "../model/Workflow.js"
import { lookupImage as lookupEntrypoint } from "../../images/ImageEntrypoints.js"
import { parsePodSpecPatch, reservedInPodSpecPatch } from "../model/reserved.js"
import {
  annotationNodeId,
  annotationNodeName,
  annotationPodGC,
  annotationWorkflowNamespace,
  labelCluster,
  labelCompleted,
  labelInstanceId,
  labelOnExit,
  labelWorkflow
} from "../../util/argoKeys.js"
import { isRecord } from "../../util/records.js"
import { executorArtifactBaseDir, executorMainFilesystemDir, hasLocationOrKey, secretVolMountPath } from "./artifacts.js"
import type { EngineConfig } from "./contract.js"
import { clusterLabelValue, isLocalTarget, type Target } from "./targeting.js"

export const annotationDefaultContainer = "kubectl.kubernetes.io/default-container"

const varRunArgo = "/var/run/argo"
/** Go's zero time.Time in RFC 3339: upstream's ARGO_DEADLINE when a pod has no deadline. */
const noDeadline = "0001-01-01T00:00:00Z"
const scriptSourcePath = "/argo/staging/script"
const volumeMountVarArgo = { name: "var-run-argo", mountPath: varRunArgo }

/**
 * Upstream's `MinimalCtrSC`, which its controller gives the executor containers of a
 * resource template's pod (the main one also a read-only root: the manifest goes to /tmp).
 */
const resourceSecurityContext = (readOnlyRoot: boolean): Record<string, unknown> => ({
  capabilities: { drop: ["ALL"] },
  privileged: false,
  runAsNonRoot: true,
  runAsUser: 8737,
  ...(readOnlyRoot ? { readOnlyRootFilesystem: true } : {}),
  allowPrivilegeEscalation: false,
  seccompProfile: { type: "RuntimeDefault" }
})

export interface PodRequest {
  readonly workflow: Workflow
  readonly config: EngineConfig
  readonly nodeId: string
  readonly nodeName: string
  readonly podName: string
  /** The template after argument and variable substitution. */
  readonly template: Template
  readonly target: Target
  readonly onExit: boolean
  readonly includeScriptOutput: boolean
  readonly activeDeadlineSeconds?: number
  /** `workflows.argoproj.io/pod-gc-strategy` value, when spec.podGC is set. */
  readonly podGCAnnotation?: string
  readonly deadline?: string
  /** `spec.podSpecPatch` after the workflow's global variables were substituted into it. */
  readonly workflowPodSpecPatch?: string
}

/** The entrypoint of an image per config.images (the configmap's `images` key). */
export const lookupImage = (config: EngineConfig, image: string | undefined) => lookupEntrypoint(config.images, image)

/** The labels every pod of this node carries (also used by podGC label selectors). */
export const podLabels = (workflow: Workflow, config: EngineConfig, template: Template, onExit: boolean): Record<string, string> => {
  // The user's first, the controller's last: a reserved key (refused at decode) could never win anyway.
  const labels: Record<string, string> = { ...workflow.spec.podMetadata?.labels, ...template.metadata?.labels }
  labels[labelWorkflow] = workflow.metadata.name
  labels[labelCompleted] = "false"
  labels[labelCluster] = clusterLabelValue(config.localCluster)
  if (onExit) labels[labelOnExit] = "true"
  if (config.instanceId !== undefined && config.instanceId !== "") labels[labelInstanceId] = config.instanceId
  return labels
}

type Env = { readonly name: string; readonly value?: string; readonly valueFrom?: unknown }

const pick = (template: Template, workflow: Workflow, tKey: string, wKey: string = tKey): unknown => {
  const t = template[tKey]
  if (t !== undefined && t !== null && !(Array.isArray(t) && t.length === 0)) return t
  const w = workflow.spec[wKey]
  if (w !== undefined && w !== null && !(Array.isArray(w) && w.length === 0)) return w
  return undefined
}

export const buildPod = (req: PodRequest): KubeObject => {
  const { config, template, workflow } = req
  const isScript = template.script !== undefined
  const resource = template.resource
  const data = template.data
  const source: Container = template.script ?? template.container ?? {}

  // The template the executor reads: inputs.parameters are already substituted.
  const simplified: Record<string, unknown> = { ...template }
  simplified.inputs = template.inputs?.artifacts !== undefined ? { artifacts: template.inputs.artifacts } : {}
  const templateJson = JSON.stringify(simplified)

  const execEnv: ReadonlyArray<Env> = [
    { name: "ARGO_POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
    { name: "ARGO_POD_UID", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.uid" } } },
    { name: "ARGO_WORKFLOW_NAME", value: workflow.metadata.name },
    { name: "ARGO_WORKFLOW_UID", value: workflow.metadata.uid ?? "" },
    ...(config.instanceId ? [{ name: "ARGO_INSTANCE_ID", value: config.instanceId }] : [])
  ]
  const commonEnv = (containerName: string): ReadonlyArray<Env> => [
    { name: "ARGO_CONTAINER_NAME", value: containerName },
    { name: "ARGO_TEMPLATE", value: templateJson },
    { name: "ARGO_NODE_ID", value: req.nodeId },
    // A data template's result is its output: upstream always includes it.
    { name: "ARGO_INCLUDE_SCRIPT_OUTPUT", value: String(req.includeScriptOutput || data !== undefined) },
    // Always set, as upstream does: argoexec (v3.5+) refuses to start without it; no deadline is Go's zero time.
    { name: "ARGO_DEADLINE", value: req.deadline ?? noDeadline }
  ]

  const execContainer = (name: "init" | "wait") => ({
    name,
    image: config.executorImage,
    command: ["argoexec", name],
    env: [...execEnv, ...commonEnv(name)],
    resources: {},
    ...(resource !== undefined ? { securityContext: resourceSecurityContext(false) } : {}),
    volumeMounts: [
      ...(name === "wait" ? [{ name: "tmp-dir-argo", mountPath: "/tmp", subPath: "0" }] : []),
      volumeMountVarArgo,
      ...(name === "init" && isScript ? [{ name: "argo-staging", mountPath: "/argo/staging" }] : [])
    ]
  })

  // main: every user field passes through; only name, command and env are extended.
  const { source: _source, ...userContainer } = source
  let command = source.command
  let args = source.args
  if (command === undefined || command.length === 0) {
    const found = lookupImage(config, source.image)
    if (found !== undefined) {
      command = found.cmd ?? []
      if (args === undefined) args = found.args
    }
  }
  // Without a source the script template runs its container as is (upstream warns, and stages nothing to run).
  if (isScript && (template.script?.source ?? "") !== "") args = [...(args ?? []), scriptSourcePath]
  const main: Record<string, unknown> = {
    ...userContainer,
    name: "main",
    command: [`${varRunArgo}/argoexec`, "emissary", "--", ...(command ?? [])],
    env: [
      ...(source.env ?? []),
      ...execEnv.filter((e) => e.name === "ARGO_POD_NAME" || e.name === "ARGO_WORKFLOW_NAME"),
      ...commonEnv("main")
    ],
    volumeMounts: [
      ...(source.volumeMounts ?? []),
      volumeMountVarArgo,
      ...(isScript ? [{ name: "argo-staging", mountPath: "/argo/staging" }] : [])
    ]
  }
  if (args !== undefined) main.args = args
  else delete main.args
  // A resource template's main is the executor, wrapped by the emissary like any main (upstream's executeResource);
  // its /tmp (where the manifest is staged) is the executor's tmp volume, as for the executor image's containers.
  const resourceMain: Record<string, unknown> | undefined = resource === undefined ? undefined : {
    name: "main",
    image: config.executorImage,
    command: [`${varRunArgo}/argoexec`, "emissary", "--", "argoexec", "resource", resource.action],
    env: [...execEnv, ...commonEnv("main")],
    resources: {},
    securityContext: resourceSecurityContext(true),
    volumeMounts: [{ name: "tmp-dir-argo", mountPath: "/tmp", subPath: "0" }, volumeMountVarArgo]
  }

  // A data template's main is the executor too (upstream's executeData: no security context of its own).
  const dataMain: Record<string, unknown> | undefined = data === undefined ? undefined : {
    name: "main",
    image: config.executorImage,
    command: [`${varRunArgo}/argoexec`, "emissary", "--", "argoexec", "data", JSON.stringify(data)],
    env: [...execEnv, ...commonEnv("main")],
    resources: {},
    volumeMounts: [{ name: "tmp-dir-argo", mountPath: "/tmp", subPath: "0" }, volumeMountVarArgo]
  }
  const executorMain = resourceMain ?? dataMain

  const mains = template.containerSet === undefined ? [main] : containerSetMains(template, config, (name) => [
    ...execEnv.filter((e) => e.name === "ARGO_POD_NAME" || e.name === "ARGO_WORKFLOW_NAME"),
    ...commonEnv(name)
  ])

  const podMetadata = workflow.spec.podMetadata
  const annotations: Record<string, string> = {
    // Upstream: "main" when there is one, else the last container (a containerSet without a main).
    [annotationDefaultContainer]: mains.some((c) => c.name === "main") ? "main" : String(mains[mains.length - 1]?.name ?? "main"),
    ...podMetadata?.annotations,
    ...template.metadata?.annotations
  }
  annotations[annotationNodeName] = req.nodeName
  annotations[annotationNodeId] = req.nodeId
  annotations[annotationWorkflowNamespace] = workflow.metadata.namespace
  if (req.podGCAnnotation !== undefined) annotations[annotationPodGC] = req.podGCAnnotation

  const local = isLocalTarget(req.target, workflow, config.localCluster)
  const metadata: Record<string, unknown> = {
    name: req.podName,
    namespace: req.target.namespace,
    labels: podLabels(workflow, config, template, req.onExit),
    annotations
  }
  if (local) {
    metadata.ownerReferences = [{
      apiVersion: workflow.apiVersion ?? "argoproj.io/v1alpha1",
      kind: workflow.kind ?? "Workflow",
      name: workflow.metadata.name,
      uid: workflow.metadata.uid ?? "",
      controller: true,
      blockOwnerDeletion: true
    }]
  }

  const init = execContainer("init")
  const wait = execContainer("wait")
  const initContainers: Array<unknown> = [init]
  const containers: Array<unknown> = executorMain !== undefined ? [executorMain] : [wait, ...mains]
  // A resource template's inputs (manifestFrom) are loaded by init and shown to its executor main, as any main's.
  const artifactVolumes = addArtifactMounts(template, init, wait, executorMain !== undefined ? [executorMain] : mains)
  const spec: Record<string, unknown> = {
    restartPolicy: "Never",
    initContainers,
    containers,
    volumes: [
      { name: "var-run-argo", emptyDir: {} },
      { name: "tmp-dir-argo", emptyDir: {} },
      ...(template.volumes ?? []),
      ...artifactVolumes,
      ...(isScript ? [{ name: "argo-staging", emptyDir: {} }] : [])
    ]
  }
  const set = (key: string, value: unknown) => {
    if (value !== undefined) spec[key] = value
  }
  set("serviceAccountName", pick(template, workflow, "serviceAccountName"))
  set("automountServiceAccountToken", pick(template, workflow, "automountServiceAccountToken"))
  set("nodeSelector", pick(template, workflow, "nodeSelector"))
  set("affinity", pick(template, workflow, "affinity"))
  set("tolerations", pick(template, workflow, "tolerations"))
  set("schedulerName", pick(template, workflow, "schedulerName"))
  set("priorityClassName", pick(template, workflow, "priorityClassName", "podPriorityClassName"))
  set("priority", pick(template, workflow, "priority", "podPriority"))
  set("securityContext", pick(template, workflow, "securityContext"))
  set("imagePullSecrets", workflow.spec.imagePullSecrets)
  set("hostNetwork", workflow.spec.hostNetwork)
  set("dnsPolicy", workflow.spec.dnsPolicy)
  set("dnsConfig", workflow.spec.dnsConfig)
  set("activeDeadlineSeconds", req.activeDeadlineSeconds)
  set("resources", pick(template, workflow, "podResources"))
  const hostAliases = [
    ...(workflow.spec.hostAliases ?? []),
    ...(template.hostAliases ?? [])
  ]
  if (hostAliases.length > 0) spec.hostAliases = hostAliases
  if (template.initContainers !== undefined) initContainers.push(...template.initContainers)
  if (template.sidecars !== undefined) containers.push(...template.sidecars)

  const templateIndex = workflow.spec.templates.findIndex((t) => t.name === template.name)
  const patched = applyPodSpecPatch(spec, [
    { path: "spec.podSpecPatch", value: req.workflowPodSpecPatch ?? workflow.spec.podSpecPatch },
    { path: templateIndex >= 0 ? `spec.templates[${templateIndex}].podSpecPatch` : `template "${template.name}" podSpecPatch`, value: template.podSpecPatch }
  ])
  return { apiVersion: "v1", kind: "Pod", metadata, spec: patched } as KubeObject
}

type Mount = { readonly name: string; readonly mountPath: string; readonly subPath?: string; readonly readOnly?: boolean }

/** The secret key selectors of an artifact location that the executor reads as files (`createSecretVolumesFromArtifactLocations`). */
const locationSecrets = (location: unknown): ReadonlyArray<{ readonly name: string; readonly key: string }> => {
  if (!isRecord(location)) return []
  const out: Array<unknown> = []
  const s3 = location["s3"]
  const http = location["http"]
  if (isRecord(s3)) {
    out.push(s3["accessKeySecret"], s3["secretKeySecret"], s3["sessionTokenSecret"], s3["caSecret"])
    const enc = s3["encryptionOptions"]
    if (isRecord(enc) && enc["enableEncryption"] === true) out.push(enc["serverSideCustomerKeySecret"])
  } else if (isRecord(http) && isRecord(http["auth"])) {
    const auth = http["auth"]
    const part = (k: string) => isRecord(auth[k]) ? auth[k] as Record<string, unknown> : {}
    out.push(part("basicAuth")["usernameSecret"], part("basicAuth")["passwordSecret"])
    out.push(part("clientCert")["clientCertSecret"], part("clientCert")["clientKeySecret"])
    out.push(part("oauth2")["clientIDSecret"], part("oauth2")["clientSecretSecret"], part("oauth2")["tokenURLSecret"])
  }
  return out.filter((s): s is { name: string; key: string } =>
    isRecord(s) && typeof s["name"] === "string" && s["name"] !== "" && typeof s["key"] === "string" && s["key"] !== ""
  )
}

/** A data template's source artifact (`GetArtifactIfNeeded`), whose location the executor lists. */
const dataSourceArtifact = (template: Template): Record<string, unknown> | undefined => {
  const source = template.data?.source as { readonly artifactPaths?: unknown } | undefined
  return isRecord(source?.artifactPaths) ? source.artifactPaths : undefined
}

/** The volume mounts of a template's main container(s) as written (`GetVolumeMounts`). */
const userVolumeMounts = (template: Template): ReadonlyArray<Mount> =>
  ((template.container ?? template.script)?.volumeMounts ?? template.containerSet?.volumeMounts ?? []) as ReadonlyArray<Mount>

/** Whether an artifact's path lies in a volume the user mounts (`FindOverlappingVolume`): init loads it there instead. */
const overlapsUserVolume = (template: Template, path: string): boolean =>
  userVolumeMounts(template).some((m) => path === m.mountPath || path.startsWith(m.mountPath.endsWith("/") ? m.mountPath : `${m.mountPath}/`))

/**
 * Upstream's artifact layout of a pod (`createSecretVolumesAndMounts`, `addInputArtifactsVolumes`,
 * `addOutputArtifactsVolumes`): every Secret the artifacts' locations name, mounted read-only at
 * `/argo/secret/<secret>` (one volume per Secret, its keys as files) in init and wait; with input
 * artifacts, the `input-artifacts` emptyDir at `/argo/inputs/artifacts` in init (with main's own
 * mounts under `/mainctrfs`, for artifacts that land in a user volume) and at each artifact's path
 * (`subPath` its name) in main; with output artifacts or archived logs, main's mounts mirrored
 * under `/mainctrfs` in wait, where the executor collects outputs. The containers are changed in
 * place; the volumes to add are returned (Secrets by name, so the manifest is deterministic).
 */
const addArtifactMounts = (
  template: Template,
  init: { volumeMounts: Array<unknown> },
  wait: { volumeMounts: Array<unknown> },
  mains: ReadonlyArray<Record<string, unknown>>
): Array<unknown> => {
  const inputs = template.inputs?.artifacts ?? []
  const outputs = template.outputs?.artifacts ?? []
  const location = template.archiveLocation
  const archiveLogs = isRecord(location) && location["archiveLogs"] === true
  const dataSource = dataSourceArtifact(template)
  if (inputs.length === 0 && outputs.length === 0 && !isRecord(location) && dataSource === undefined) return []
  const secrets = new Map<string, Set<string>>()
  for (const s of [location, ...outputs, ...inputs, ...(dataSource !== undefined ? [dataSource] : [])].flatMap(locationSecrets)) {
    let keys = secrets.get(s.name)
    if (keys === undefined) secrets.set(s.name, keys = new Set())
    keys.add(s.key)
  }
  const names = [...secrets.keys()].sort()
  const volumes: Array<unknown> = names.map((name) => ({
    name,
    secret: { secretName: name, items: [...secrets.get(name)!].map((key) => ({ key, path: key })) }
  }))
  const secretMounts = names.map((name) => ({ name, mountPath: `${secretVolMountPath}/${name}`, readOnly: true }))
  wait.volumeMounts.push(...secretMounts)
  init.volumeMounts.push(...secretMounts)
  const main = mains.find((c) => c.name === "main")
  // The data executor lists the source itself, in main.
  if (template.data !== undefined && main !== undefined) (main.volumeMounts as Array<unknown>).push(...secretMounts)
  if (inputs.length > 0) {
    volumes.push({ name: "input-artifacts", emptyDir: {} })
    init.volumeMounts.push({ name: "input-artifacts", mountPath: executorArtifactBaseDir })
    for (const m of userVolumeMounts(template)) init.volumeMounts.push({ ...m, mountPath: `${executorMainFilesystemDir}${m.mountPath}` })
    if (main !== undefined) {
      const mounts = main.volumeMounts as Array<unknown>
      for (const art of inputs) {
        if (art.path === undefined || art.path === "") continue
        if (art.optional === true && !hasLocationOrKey(art)) continue
        if (overlapsUserVolume(template, art.path)) continue
        mounts.push({ name: "input-artifacts", mountPath: art.path, subPath: art.name })
      }
    }
  }
  if ((outputs.length > 0 || archiveLogs) && main !== undefined) {
    for (const m of main.volumeMounts as ReadonlyArray<Mount>) {
      wait.volumeMounts.push({ ...m, mountPath: `${executorMainFilesystemDir}${m.mountPath}`, readOnly: false })
    }
  }
  return volumes
}

/**
 * A containerSet template's main containers, as upstream's pod builder makes
 * them (`ContainerSetTemplate.GetContainers`): each container as written under
 * its own name ("main" when it has none), the set's `volumeMounts` added, its
 * command wrapped by the emissary, which reads the set's graph from
 * ARGO_TEMPLATE and starts a container once its `dependencies` exited 0.
 */
const containerSetMains = (
  template: Template,
  config: EngineConfig,
  env: (containerName: string) => ReadonlyArray<Env>
): Array<Record<string, unknown>> =>
  (template.containerSet?.containers ?? []).map((c) => {
    const { dependencies: _deps, ...container } = c
    const name = c.name === undefined || c.name === "" ? "main" : c.name
    let command = c.command
    let args = c.args
    if (command === undefined || command.length === 0) {
      const found = lookupImage(config, c.image)
      if (found !== undefined) {
        command = found.cmd ?? []
        if (args === undefined) args = found.args
      }
    }
    const out: Record<string, unknown> = {
      ...container,
      name,
      command: [`${varRunArgo}/argoexec`, "emissary", "--", ...(command ?? [])],
      env: [...(c.env ?? []), ...env(name)],
      volumeMounts: [...(c.volumeMounts ?? []), ...(template.containerSet?.volumeMounts ?? []), volumeMountVarArgo]
    }
    if (args !== undefined) out.args = args
    else delete out.args
    return out
  })

/** A podSpecPatch that cannot be applied: the node errors with this message, before any pod is made. */
export class PodSpecPatchError extends Error {
  constructor(readonly path: string, readonly detail: string) {
    super(`${path}: ${detail}`)
  }
}

/**
 * podSpecPatch (JSON or YAML, as upstream accepts) as a strategic merge
 * patch, as upstream applies it: maps merge, and the lists Kubernetes merges
 * by key do so here (containers and volumes by name, env by name,
 * volumeMounts by mountPath, ports by containerPort); other lists and
 * scalars are replaced, and `null` deletes. Checked after substitution: a patch that does not parse,
 * or that touches the executor's containers, `ARGO_*` variables or volumes
 * (`model/reserved.ts`), throws `PodSpecPatchError`.
 */
const applyPodSpecPatch = (spec: Record<string, unknown>, patches: ReadonlyArray<{ readonly path: string; readonly value: unknown }>): Record<string, unknown> => {
  let out = spec
  for (const { path, value } of patches) {
    if (value === undefined || value === null) continue
    if (typeof value !== "string") throw new PodSpecPatchError(path, "must be a string (a JSON or YAML pod spec)")
    if (value.trim() === "") continue
    const parsed = parsePodSpecPatch(value)
    if (!parsed.ok) throw new PodSpecPatchError(path, parsed.error)
    const reserved = reservedInPodSpecPatch(parsed.value, path)
    if (reserved.length > 0) throw new PodSpecPatchError(reserved[0]!.path, reserved[0]!.message)
    out = mergeSpec(out, parsed.value)
  }
  return out
}

/** The merge key of each list a strategic merge patch merges (Kubernetes' `patchMergeKey`s for a PodSpec). */
const mergeKeys: Readonly<Record<string, string>> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  env: "name",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  ports: "containerPort",
  imagePullSecrets: "name",
  hostAliases: "ip"
}

const mergeSpec = (base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(patch)) {
    const key = mergeKeys[k]
    if (v === null) delete out[k]
    else if (key !== undefined && Array.isArray(v) && Array.isArray(out[k])) {
      const list = [...(out[k] as Array<unknown>)]
      for (const item of v as Array<unknown>) {
        const i = isRecord(item) ? list.findIndex((c) => isRecord(c) && c[key] === item[key]) : -1
        if (i >= 0) list[i] = mergeSpec(list[i] as Record<string, unknown>, item as Record<string, unknown>)
        else list.push(item)
      }
      out[k] = list
    } else if (isRecord(v) && isRecord(out[k])) out[k] = mergeSpec(out[k] as Record<string, unknown>, v)
    else out[k] = v
  }
  return out
}

/** The plain-valued env of the pod's executor container (`wait`, else `init`). */
export const executorEnvOf = (pod: KubeObject): Record<string, string> => {
  const spec = (pod.spec ?? {}) as { containers?: Array<{ name?: string; env?: Array<{ name: string; value?: string }> }>; initContainers?: Array<{ name?: string; env?: Array<{ name: string; value?: string }> }> }
  const container = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].find((c) => c.name === "wait" || c.name === "init")
  const out: Record<string, string> = {}
  for (const e of container?.env ?? []) if (typeof e.value === "string") out[e.name] = e.value
  return out
}
