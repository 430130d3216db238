/**
 * Artifact garbage collection, the controller's half (upstream's workflow/controller/artifact_gc.go);
 * the engine says what is due (`EngineOutput.artifactGC`, engine/artifactGC.ts):
 *
 *  - the `workflows.argoproj.io/artifact-gc` finalizer goes on a workflow that collects artifacts
 *    while it runs, and comes off once every artifact it collects is `deleted`, or, with
 *    `spec.artifactGC.forceFinalizerRemoval`, once every GC pod has ended (its failures recorded);
 *  - a ready strategy gets, per place and identity its artifacts need (the cluster and namespace
 *    whose pods wrote them: the repository's Secrets are there and are never copied elsewhere; the
 *    service account and pod metadata), one `WorkflowArtifactGCTask` listing them and one pod
 *    running `argoexec artifact delete`, made there as the workflow's other pods are (outside the
 *    workflow's own cluster and namespace with the workflow owner's credentials, `UserClients`);
 *    the strategy is then recorded in `status.artifactGCStatus.strategiesProcessed`;
 *  - an ended GC pod is recouped: its task's status (written by the pod) marks each artifact
 *    `deleted` in its node's outputs, a failure becomes an `ArtifactGCError` condition, the pod goes
 *    into `status.artifactGCStatus.podsRecouped`, and in the same write its task is recorded in the
 *    annotation `flotilla.dev/artifact-gc-tasks-to-delete` (a remote one always: no owner reference
 *    reaches it; one at home, as upstream, only when all succeeded). The recorded tasks are then
 *    deleted (their pods, owned by them, go with them), each on its own, and the finalizer stays
 *    while one is recorded, so a failed delete or a crash between the writes leaves none behind;
 *  - a group whose task and pod cannot be made (cluster away, Forbidden, quota), a GC pod that
 *    does not end (`activeDeadlineSeconds`, then `artifactGCGiveUp` more) or is gone, and a task
 *    that cannot be deleted are tried again (the other groups go on) for `artifactGCGiveUp`
 *    (default 10 minutes), then given up: an `ArtifactGCError` condition, the pod counted as
 *    recouped, so that `forceFinalizerRemoval` releases the workflow.
 *
 * It decides from the informer's copy of the workflow and reads it afresh only to write it (every
 * call bounded by the request timeout). Everything it knows is in the workflow (status and that
 * annotation) and in the tasks and pods it made, so a controller restart loses nothing but the
 * give-up clocks, which then start again. Every workflow write is a Replace of a fresh copy (a
 * concurrent change is a Conflict, tried again), never a lost update.
 */
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import { ClusterPool } from "../kube/ClusterPool.js"
import { KubeClient, type KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { UserClients } from "../kube/UserClients.js"
import { annotationWorkflowNamespace, labelCluster, labelCompleted, labelInstanceId, labelWorkflow } from "../util/argoKeys.js"
import { isRecord } from "../util/records.js"
import { type ArtifactGCItem, type ArtifactGCPlan, artifactGCStrategy, type ArtifactGCStrategy, finalizerArtifactGC } from "../workflow/engine/artifactGC.js"
import { clusterLabelValue } from "../workflow/engine/targeting.js"
import type { Artifact, Workflow } from "../workflow/model/Workflow.js"
import { readStatusNodes, updateStatusNodes } from "../workflow/model/compressedNodes.js"
import { ControllerSettings, timingOf } from "./ControllerSettings.js"
import { Observation } from "./Observation.js"
import { parseWorkflowKey } from "./observe.js"
import { boundedBy } from "./RequestTimeout.js"

/** `common.LabelKeyComponent` value of a GC pod. */
export const componentArtifactGC = "artifact-gc"
export const labelComponent = "workflows.argoproj.io/component"
/** Labels a GC pod's tasks with the hash of its name (`common.LabelKeyArtifactGCPodHash`). */
export const labelArtifactGCPodHash = "workflows.argoproj.io/artifact-gc-pod"
/** The strategy a GC pod runs (`common.AnnotationKeyArtifactGCStrategy`). */
export const annotationArtifactGCStrategy = "workflows.argoproj.io/artifact-gc-strategy"
/** The env var that tells `argoexec artifact delete` its tasks' label value (`common.EnvVarArtifactGCPodHash`). */
export const envArtifactGCPodHash = "ARGO_ARTIFACT_POD_NAME"
/** `wfv1.ConditionTypeArtifactGCError`. */
export const conditionArtifactGCError = "ArtifactGCError"

/** How often ended GC pods are looked for while some run (their watch events come sooner). */
const pollMs = 2000
/**
 * `activeDeadlineSeconds` of a GC pod. Upstream's `createArtifactGCPod` (v4.0.5 artifact_gc.go)
 * sets none, so a GC pod that hangs holds the workflow's finalizer for ever; flotilla bounds it:
 * half an hour is far more than deleting a workflow's artifacts takes.
 */
export const gcPodDeadlineSeconds = 1800
/**
 * A GC pod not ended this long after it was made (its deadline, then `artifactGCGiveUp` more:
 * a Pending pod never starts its deadline; its cluster may be away) is given up.
 */
const podGiveUpMs = (giveUpMs: number) => gcPodDeadlineSeconds * 1000 + giveUpMs

/** Remote GC tasks still to delete (`cluster/namespace/name`, JSON): the finalizer stays until they are gone. */
export const annotationTasksToDelete = "flotilla.dev/artifact-gc-tasks-to-delete"

interface TaskRef {
  readonly cluster: string
  readonly namespace: string
  readonly name: string
}

const taskId = (t: TaskRef) => `${t.cluster}/${t.namespace}/${t.name}`

/**
 * Why `task` is not one this controller made for workflow `wfNamespace/wfName` (so must not be
 * deleted for it), or undefined when it is: its name is one of the workflow's GC pods' plus `-0`,
 * its pod-hash label that name's, its workflow label the workflow's name and its
 * workflow-namespace annotation the workflow's namespace.
 */
export const ownTaskRefusal = (task: KubeObject, wfName: string, wfNamespace: string): string | undefined => {
  const name = task.metadata.name ?? ""
  const podName = name.endsWith("-0") ? name.slice(0, -2) : ""
  if (!podName.startsWith(`${wfName}-artgc-`)) return `its name is no GC task name of workflow ${wfName}`
  if (task.metadata.labels?.[labelArtifactGCPodHash] !== podHashLabel(podName)) return `its ${labelArtifactGCPodHash} label is not its pod's`
  if (task.metadata.labels?.[labelWorkflow] !== wfName) return `its ${labelWorkflow} label is not ${wfName}`
  if (task.metadata.annotations?.[annotationWorkflowNamespace] !== wfNamespace) return `its ${annotationWorkflowNamespace} annotation is not ${wfNamespace}`
  return undefined
}

/** The tasks recorded in `annotationTasksToDelete`. */
export const tasksToDelete = (wfObject: KubeObject): ReadonlyArray<TaskRef> => {
  const text = wfObject.metadata.annotations?.[annotationTasksToDelete]
  if (text === undefined || text === "") return []
  try {
    const parsed: unknown = JSON.parse(text)
    return Array.isArray(parsed)
      ? parsed.flatMap((id) => {
        if (typeof id !== "string") return []
        const [cluster, namespace, name] = id.split("/")
        return cluster && namespace && name ? [{ cluster, namespace, name }] : []
      })
      : []
  } catch {
    return []
  }
}

const withTasksToDelete = (wfObject: KubeObject, tasks: ReadonlyArray<TaskRef>): KubeObject => {
  const { [annotationTasksToDelete]: _old, ...rest } = wfObject.metadata.annotations ?? {}
  const ids = [...new Set(tasks.map(taskId))].sort()
  const annotations = ids.length > 0 ? { ...rest, [annotationTasksToDelete]: JSON.stringify(ids) } : rest
  return { ...wfObject, metadata: { ...wfObject.metadata, annotations } }
}

/** FNV-1a, 32 bits, as Go's hash/fnv `New32a` (upstream names GC pods and labels tasks with it). */
export const fnv32a = (...parts: ReadonlyArray<string>): number => {
  let h = 0x811c9dc5
  for (const part of parts) {
    for (const b of Buffer.from(part, "utf8")) {
      h ^= b
      h = Math.imul(h, 0x01000193) >>> 0
    }
  }
  return h >>> 0
}

/** The label value that ties a GC pod to its tasks (`artifactGCPodLabel`). */
export const podHashLabel = (podName: string): string => String(fnv32a(podName))

interface PodMetadata {
  readonly labels: Record<string, string>
  readonly annotations: Record<string, string>
}

/** One GC pod to make: where, as whom, and what it deletes. */
export interface GCGroup {
  readonly podName: string
  readonly cluster: string
  readonly namespace: string
  readonly serviceAccountName: string | undefined
  readonly metadata: PodMetadata
  readonly items: Array<ArtifactGCItem>
}

const stringMap = (v: unknown): Record<string, string> =>
  isRecord(v) ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string")) : {}

/** `getArtifactGCPodInfo`: the workflow's `artifactGC.podMetadata`, then the artifact's over it. */
const podMetadataOf = (wf: Workflow, art: Artifact): PodMetadata => {
  const labels: Record<string, string> = {}
  const annotations: Record<string, string> = {}
  for (const gc of [wf.spec.artifactGC, art.artifactGC]) {
    const meta = isRecord(gc) ? gc["podMetadata"] : undefined
    if (!isRecord(meta)) continue
    Object.assign(labels, stringMap(meta["labels"]))
    Object.assign(annotations, stringMap(meta["annotations"]))
  }
  return { labels, annotations }
}

const abbreviation = (strategy: ArtifactGCStrategy) => strategy === "OnWorkflowCompletion" ? "wfcomp" : "wfdel"

/**
 * `artGCPodName`: `<workflow>-artgc-<wfcomp|wfdel>-<fnv of service account, labels, annotations>`,
 * and of the place too when it is not the workflow's own (two places, two pods, two names:
 * `podsRecouped` is keyed by name).
 */
export const gcPodName = (
  wfName: string,
  strategy: ArtifactGCStrategy,
  serviceAccount: string,
  metadata: PodMetadata,
  place: string | undefined
): string => {
  const parts = [serviceAccount]
  for (const k of Object.keys(metadata.labels).sort()) parts.push(k, metadata.labels[k]!)
  for (const k of Object.keys(metadata.annotations).sort()) parts.push(k, metadata.annotations[k]!)
  if (place !== undefined) parts.push(place)
  return `${wfName}-artgc-${abbreviation(strategy)}-${fnv32a(...parts)}`
}

/** The items of a ready strategy, one group per GC pod. */
export const groupItems = (
  wf: Workflow,
  wfName: string,
  wfNamespace: string,
  localCluster: string,
  strategy: ArtifactGCStrategy,
  items: ReadonlyArray<ArtifactGCItem>
): ReadonlyArray<GCGroup> => {
  const groups = new Map<string, GCGroup>()
  for (const item of items) {
    if (item.strategy !== strategy) continue
    const cluster = item.cluster ?? localCluster
    const namespace = item.namespace ?? wfNamespace
    const metadata = podMetadataOf(wf, item.artifact)
    const own = cluster === localCluster && namespace === wfNamespace
    const podName = gcPodName(wfName, strategy, item.serviceAccountName ?? "", metadata, own ? undefined : `${cluster}/${namespace}`)
    const group = groups.get(podName) ??
      { podName, cluster, namespace, serviceAccountName: item.serviceAccountName, metadata, items: [] }
    group.items.push(item)
    groups.set(podName, group)
  }
  return [...groups.values()]
}

const secretNames = (loc: unknown): ReadonlyArray<{ readonly name: string; readonly key: string }> => {
  const s3 = isRecord(loc) ? loc["s3"] : undefined
  if (!isRecord(s3)) return []
  const out: Array<{ name: string; key: string }> = []
  for (const field of ["accessKeySecret", "secretKeySecret", "sessionTokenSecret", "caSecret"]) {
    const sel = s3[field]
    if (isRecord(sel) && typeof sel["name"] === "string" && sel["name"] !== "" && typeof sel["key"] === "string") {
      out.push({ name: sel["name"], key: sel["key"] })
    }
  }
  return out
}

/** `createSecretVolumesAndMountsFromArtifactLocations`: each secret once, its keys as items, at /argo/secret/<name>. */
const secretVolumes = (locations: ReadonlyArray<unknown>) => {
  const byName = new Map<string, Set<string>>()
  for (const loc of locations) {
    for (const s of secretNames(loc)) byName.set(s.name, (byName.get(s.name) ?? new Set()).add(s.key))
  }
  const names = [...byName.keys()].sort()
  return {
    volumes: names.map((name) => ({ name, secret: { secretName: name, items: [...byName.get(name)!].sort().map((key) => ({ key, path: key })) } })),
    mounts: names.map((name) => ({ name, mountPath: `/argo/secret/${name}` }))
  }
}

/** The repository as an archive location (`ToArtifactLocation`): its s3 fields, without the key format. */
const repositoryLocation = (status: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined => {
  const ref = status["artifactRepositoryRef"]
  const repo = isRecord(ref) ? ref["artifactRepository"] : undefined
  const s3 = isRecord(repo) ? repo["s3"] : undefined
  if (!isRecord(s3)) return undefined
  const { keyFormat: _k, keyPrefix: _p, ...rest } = s3
  return { s3: rest }
}

/** The template's `archiveLocation` when it names a repository, else the workflow's. */
const archiveLocationOf = (wf: Workflow, templateName: unknown, status: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined => {
  const stored = isRecord(status["storedTemplates"]) ? Object.values(status["storedTemplates"]) : []
  const tmpl = [...wf.spec.templates, ...stored].find((t) => isRecord(t) && t["name"] === templateName) as Record<string, unknown> | undefined
  const own = tmpl?.["archiveLocation"]
  if (isRecord(own) && isRecord(own["s3"]) && typeof own["s3"]["bucket"] === "string") return own
  return repositoryLocation(status)
}

export interface GCObjects {
  readonly task: KubeObject
  /** The pod, without its owner reference to the task (the task's uid is known once it is made). */
  readonly pod: KubeObject
}

/** The task and the pod of one group (upstream's `addTemplateArtifactsToTasks` and `createArtifactGCPod`). */
export const gcObjects = (
  wfObject: KubeObject,
  wf: Workflow,
  status: Readonly<Record<string, unknown>>,
  strategy: ArtifactGCStrategy,
  group: GCGroup,
  settings: { readonly localCluster: string; readonly executorImage: string; readonly instanceId?: string | undefined; readonly now: number }
): GCObjects => {
  const nodes = readStatusNodes(status)
  const artifactsByNode: Record<string, { archiveLocation?: unknown; artifacts: Record<string, unknown> }> = {}
  const locations: Array<unknown> = []
  for (const item of group.items) {
    const node = nodes.ok ? nodes.nodes[item.nodeId] : undefined
    const archiveLocation = archiveLocationOf(wf, node?.["templateName"], status)
    const entry = artifactsByNode[item.nodeId] ?? { ...(archiveLocation ? { archiveLocation } : {}), artifacts: {} }
    entry.artifacts[item.artifact.name] = item.artifact
    artifactsByNode[item.nodeId] = entry
    locations.push(archiveLocation, item.artifact)
  }
  const wfName = wfObject.metadata.name!
  const wfNamespace = wfObject.metadata.namespace!
  const own = group.cluster === settings.localCluster && group.namespace === wfNamespace
  const hash = podHashLabel(group.podName)
  const task: KubeObject = {
    apiVersion: "argoproj.io/v1alpha1",
    kind: "WorkflowArtifactGCTask",
    metadata: {
      name: `${group.podName}-0`,
      namespace: group.namespace,
      labels: { [labelArtifactGCPodHash]: hash, [labelWorkflow]: wfName },
      // whose it is, checked before the controller deletes it (`ownTaskRefusal`)
      annotations: { [annotationWorkflowNamespace]: wfNamespace },
      // deleted with the workflow where an owner reference reaches it; elsewhere the controller deletes it
      ...(own && wfObject.metadata.uid
        ? { ownerReferences: [{ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: wfName, uid: wfObject.metadata.uid, controller: true, blockOwnerDeletion: true }] }
        : {})
    },
    spec: { artifactsByNode }
  }
  const { volumes, mounts } = secretVolumes(locations)
  const pod: KubeObject = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: group.podName,
      namespace: group.namespace,
      labels: {
        ...group.metadata.labels,
        [labelWorkflow]: wfName,
        [labelComponent]: componentArtifactGC,
        [labelCompleted]: "false",
        [labelCluster]: clusterLabelValue(settings.localCluster),
        ...(settings.instanceId ? { [labelInstanceId]: settings.instanceId } : {})
      },
      annotations: { ...group.metadata.annotations, [annotationArtifactGCStrategy]: strategy, [annotationWorkflowNamespace]: wfNamespace }
    },
    spec: {
      ...(group.serviceAccountName !== undefined ? { serviceAccountName: group.serviceAccountName } : {}),
      automountServiceAccountToken: true,
      restartPolicy: "Never",
      activeDeadlineSeconds: gcPodDeadlineSeconds,
      securityContext: { runAsNonRoot: true, runAsUser: 8737 },
      volumes,
      containers: [{
        name: "main",
        image: settings.executorImage,
        args: ["artifact", "delete", "--loglevel", "info", "--log-format", "text"],
        env: [
          { name: "ARGO_POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
          { name: "ARGO_TEMPLATE", value: "{}" },
          { name: "ARGO_DEADLINE", value: new Date(settings.now).toISOString().replace(/\.\d+Z$/, "Z") },
          { name: envArtifactGCPodHash, value: hash },
          { name: "ARGO_ARTIFACT_PLUGIN_NAMES", value: "" }
        ],
        securityContext: {
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ["ALL"] },
          seccompProfile: { type: "RuntimeDefault" }
        },
        resources: { limits: { cpu: "100m", memory: "64Mi" }, requests: { cpu: "50m", memory: "32Mi" } },
        volumeMounts: mounts
      }]
    }
  }
  return { task, pod }
}

// ---- the status -----------------------------------------------------------------------------

interface GCStatus {
  strategiesProcessed?: Record<string, boolean>
  podsRecouped?: Record<string, boolean>
  notSpecified?: boolean
}

const gcStatusOf = (status: Readonly<Record<string, unknown>>): GCStatus => {
  const gc = status["artifactGCStatus"]
  return isRecord(gc) ? { ...(gc as GCStatus) } : {}
}

/** `UpsertCondition`: one condition per type, the newest message. */
const upsertCondition = (status: Record<string, unknown>, message: string) => {
  const conditions = Array.isArray(status["conditions"]) ? (status["conditions"] as ReadonlyArray<Record<string, unknown>>) : []
  status["conditions"] = [...conditions.filter((c) => c["type"] !== conditionArtifactGCError), { type: conditionArtifactGCError, status: "True", message }]
}

/** What is still to delete: every Pod node's artifact collected by a strategy, not yet `deleted`. */
const undeleted = (wf: Workflow, status: Readonly<Record<string, unknown>>): ReadonlyArray<ArtifactGCStrategy> => {
  const nodes = readStatusNodes(status)
  if (!nodes.ok) return []
  const out: Array<ArtifactGCStrategy> = []
  for (const node of Object.values(nodes.nodes)) {
    if (node["type"] !== "Pod") continue
    const outputs = node["outputs"]
    const arts = isRecord(outputs) && Array.isArray(outputs["artifacts"]) ? (outputs["artifacts"] as ReadonlyArray<Artifact>) : []
    for (const art of arts) {
      const strategy = artifactGCStrategy(wf, art)
      if (strategy !== "Never" && art.deleted !== true) out.push(strategy)
    }
  }
  return out
}

/**
 * Whether the finalizer may come off (`processArtifactGCCompletion`): nothing is left to delete;
 * or `forceFinalizerRemoval` and what is left was tried (its strategy processed, every GC pod
 * recouped). Unlike upstream, a forced removal waits for a strategy not yet processed
 * (OnWorkflowDeletion while the workflow lives), and it is not held for ever by no pod at all.
 */
export const mayRelease = (wf: Workflow, status: Readonly<Record<string, unknown>>): boolean => {
  const left = undeleted(wf, status)
  if (left.length === 0) return true
  const force = isRecord(wf.spec.artifactGC) && wf.spec.artifactGC["forceFinalizerRemoval"] === true
  if (!force) return false
  const gc = gcStatusOf(status)
  return left.every((s) => gc.strategiesProcessed?.[s] === true) && Object.values(gc.podsRecouped ?? {}).every((r) => r === true)
}

export class ArtifactGC extends Context.Service<ArtifactGC, {
  /**
   * Does what artifact GC has due for the workflow of `key` (`object` the informer's copy, with the
   * status just written if any; `wf` as decoded; `plan` from the engine or `artifactGCPlan`): the
   * finalizer, the GC tasks and pods of ready strategies, the ended GC pods' results, the remote
   * tasks still to delete. It decides from `object` and reads the workflow afresh only to write it.
   * Returns when to look again (ms), if at all.
   */
  readonly collect: (key: string, wf: Workflow, plan: ArtifactGCPlan | undefined, object: KubeObject) => Effect.Effect<number | undefined>
}>()("flotilla/controller/ArtifactGC") {
  static readonly layer = Layer.effect(ArtifactGC, Effect.suspend(() => make))
}

const artifactGCStrategies: ReadonlyArray<ArtifactGCStrategy> = ["OnWorkflowCompletion", "OnWorkflowDeletion"]

const failedMessage = (strategy: string, pod: string) =>
  `Artifact Garbage Collection failed for strategy ${strategy}, pod ${pod} exited with non-zero exit code: check pod logs for more information`

const make = Effect.gen(function*() {
  const { config, options } = yield* ControllerSettings
  const timing = timingOf(options)
  const bounded = boundedBy(timing.requestTimeout)
  const retryAfterMs = Math.max(1, Duration.toMillis(timing.retry))
  const giveUpMs = Duration.toMillis(Duration.fromInputUnsafe(options.timing?.artifactGCGiveUp ?? "10 minutes"))
  const local = yield* KubeClient
  const pool = yield* ClusterPool
  const users = yield* UserClients
  const observation = yield* Observation

  /**
   * When each failing piece of GC work (`<workflow key> <what>`) first failed, in this process (a
   * restart gives it its time again): once `giveUpMs` has passed it is given up.
   */
  const firstFailure = new Map<string, number>()
  const failedFor = (id: string, now: number): number => {
    const first = firstFailure.get(id)
    if (first === undefined) {
      firstFailure.set(id, now)
      return 0
    }
    return now - first
  }
  const forgetWorkflow = (key: string) => {
    for (const id of firstFailure.keys()) if (id.startsWith(`${key} `)) firstFailure.delete(id)
  }

  /** The client that makes a group's task and pod: the controller's at home, the workflow owner's elsewhere. */
  const makerFor = (wfObject: KubeObject, group: GCGroup) =>
    Effect.gen(function*() {
      if (group.cluster === config.cluster && group.namespace === wfObject.metadata.namespace) return local
      const view = yield* pool.get(group.cluster)
      const serviceAccountName = ((wfObject["spec"] as { serviceAccountName?: string } | undefined)?.serviceAccountName) || "default"
      return yield* users.acquire({
        workflowNamespace: wfObject.metadata.namespace!,
        workflowName: wfObject.metadata.name!,
        serviceAccountName,
        cluster: group.cluster,
        namespace: group.namespace,
        system: view.spec,
        allowInsecureSkipTlsVerify: config.allowInsecureSkipTlsVerify
      })
    })

  const createOrFind = (client: KubeClientShape, kind: "pods" | "workflowartifactgctasks", object: KubeObject, cluster: string) =>
    bounded(client.create(kind, object.metadata.namespace, object), {
      cluster,
      verb: "create",
      resource: kind,
      namespace: object.metadata.namespace,
      name: object.metadata.name
    }).pipe(
      Effect.map(Option.some),
      // made before (a round whose status write did not land): there it is
      Effect.catchTag("KubeError", (e: KubeError) => e.reason === "AlreadyExists" ? Effect.succeed(Option.none<KubeObject>()) : Effect.fail(e))
    )

  /** Makes the task and pod of one group (idempotent), every call bounded. */
  const startGroup = (wfObject: KubeObject, wf: Workflow, status: Readonly<Record<string, unknown>>, strategy: ArtifactGCStrategy, group: GCGroup) =>
    Effect.scoped(Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const { pod, task } = gcObjects(wfObject, wf, status, strategy, group, {
        localCluster: config.cluster,
        executorImage: config.executorImage,
        instanceId: config.instanceId,
        now
      })
      const client = yield* makerFor(wfObject, group)
      const created = yield* createOrFind(client, "workflowartifactgctasks", task, group.cluster)
      // the controller's own identity reads it back where the maker may only create
      const taskUid = Option.isSome(created)
        ? created.value.metadata.uid
        : (yield* bounded((yield* pool.get(group.cluster)).client.get("workflowartifactgctasks", group.namespace, task.metadata.name!), {
          cluster: group.cluster,
          verb: "get",
          resource: "workflowartifactgctasks",
          namespace: group.namespace,
          name: task.metadata.name
        })).metadata.uid
      const owned: KubeObject = taskUid === undefined ? pod : {
        ...pod,
        metadata: {
          ...pod.metadata,
          // the pod goes with its task (same cluster and namespace, so the garbage collector reaches it)
          ownerReferences: [{ apiVersion: "argoproj.io/v1alpha1", kind: "WorkflowArtifactGCTask", name: task.metadata.name!, uid: taskUid, controller: true, blockOwnerDeletion: true }]
        }
      }
      yield* createOrFind(client, "pods", owned, group.cluster)
      yield* Effect.logInfo("artifact GC pod made").pipe(
        Effect.annotateLogs({ workflow: `${wfObject.metadata.namespace}/${wfObject.metadata.name}`, strategy, pod: `${group.cluster}/${group.namespace}/${group.podName}`, artifacts: group.items.length })
      )
    })).pipe(
      // the whole group bounded too (acquiring the owner's client may wait on a TokenRequest)
      Effect.timeoutOrElse({
        duration: Duration.times(timing.requestTimeout, 4),
        orElse: () => Effect.fail(new Error(`no answer from ${group.cluster} within ${Duration.format(Duration.times(timing.requestTimeout, 4))}`))
      })
    )

  const workflowCall = (verb: string, name: string, namespace: string) => ({ cluster: config.cluster, verb, resource: "workflows", namespace, name })

  /** Replaces the workflow with `change` applied to a fresh copy (Conflict: again, on a fresher one); every call bounded. */
  const update = (key: string, change: (wf: KubeObject) => KubeObject | undefined) =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const current = yield* bounded(local.get("workflows", ref.namespace, ref.name), workflowCall("get", ref.name, ref.namespace))
      const next = change(current)
      if (next === undefined) return current
      return yield* bounded(local.replace("workflows", ref.namespace, next), workflowCall("update", ref.name, ref.namespace))
    }).pipe(Effect.retry({ while: (e) => e.reason === "Conflict", times: 5 }))

  /**
   * Deletes one GC task (its pod goes with it): done when it is gone. The list is an annotation on
   * the Workflow, which whoever may edit the Workflow may write: a task is deleted only when it is
   * this workflow's (`ownTaskRefusal`), else it is left in place, logged, and dropped from the list.
   */
  const deleteTask = (key: string, t: TaskRef) =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const view = yield* pool.get(t.cluster)
      const call = (verb: string) => ({ cluster: t.cluster, verb, resource: "workflowartifactgctasks", namespace: t.namespace, name: t.name })
      const task = yield* bounded(view.client.get("workflowartifactgctasks", t.namespace, t.name), call("get")).pipe(
        Effect.map((o): KubeObject | undefined => o),
        Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(undefined) : Effect.fail(e))
      )
      if (task === undefined) return
      const refusal = ownTaskRefusal(task, ref.name, ref.namespace)
      if (refusal !== undefined) {
        return yield* Effect.logWarning("artifact GC: a listed WorkflowArtifactGCTask is not this workflow's, left in place").pipe(
          Effect.annotateLogs({ workflow: key, task: taskId(t), reason: refusal })
        )
      }
      yield* bounded(
        view.client.delete("workflowartifactgctasks", t.namespace, t.name, task.metadata.uid ? { uid: task.metadata.uid } : undefined),
        call("delete")
      ).pipe(Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.void : Effect.fail(e)))
    }).pipe(
      Effect.tapError((e) =>
        Effect.logWarning("could not delete WorkflowArtifactGCTask, will try again").pipe(
          Effect.annotateLogs({ workflow: key, task: taskId(t), error: String(e) })
        )
      )
    )

  interface Ended {
    readonly pod: string
    readonly strategy: string
    readonly failed: string | undefined
    readonly results: Record<string, Record<string, { readonly success?: boolean; readonly error?: string }>>
    readonly task: TaskRef
    readonly home: boolean
  }

  /** The ended (or given up) GC pods the status does not mark recouped, with their tasks' results. */
  const endedPods = (key: string, status: Readonly<Record<string, unknown>>, now: number) =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const recouped = gcStatusOf(status).podsRecouped ?? {}
      const out: Array<Ended> = []
      const seen = new Set<string>()
      let running = 0
      for (const { pod, view } of yield* observation.podsOfWorkflow(ref)) {
        if (pod.metadata.labels?.[labelComponent] !== componentArtifactGC) continue
        const name = pod.metadata.name!
        seen.add(name)
        if (recouped[name] === true) continue
        const phase = (pod["status"] as { phase?: string } | undefined)?.phase
        const strategy = pod.metadata.annotations?.[annotationArtifactGCStrategy] ?? ""
        const namespace = pod.metadata.namespace!
        const task: TaskRef = { cluster: view.name, namespace, name: `${name}-0` }
        const home = view.name === config.cluster && namespace === ref.namespace
        if (phase !== "Succeeded" && phase !== "Failed") {
          const made = Date.parse(pod.metadata.creationTimestamp ?? "")
          if (Number.isFinite(made) && now - made > podGiveUpMs(giveUpMs)) {
            out.push({
              pod: name,
              strategy,
              failed: `Artifact Garbage Collection failed for strategy ${strategy}, pod ${name} did not end within ${Math.round(podGiveUpMs(giveUpMs) / 1000)}s (phase ${phase ?? "unknown"})`,
              results: {},
              task,
              home: false // deleted wherever it is: it would run on
            })
          } else running++
          continue
        }
        const read = yield* bounded(view.client.get("workflowartifactgctasks", namespace, task.name), {
          cluster: view.name,
          verb: "get",
          resource: "workflowartifactgctasks",
          namespace,
          name: task.name
        }).pipe(
          Effect.map(Option.some),
          Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none<KubeObject>()) : Effect.fail(e))
        )
        const taskStatus = Option.isSome(read) && isRecord(read.value["status"]) ? read.value["status"] as Record<string, unknown> : {}
        const byNode = isRecord(taskStatus["artifactResultsByNode"])
          ? taskStatus["artifactResultsByNode"] as Record<string, { artifactResults?: Record<string, { success?: boolean; error?: string }> }>
          : {}
        const results = Object.fromEntries(Object.entries(byNode).map(([node, r]) => [node, r.artifactResults ?? {}]))
        out.push({ pod: name, strategy, failed: phase === "Failed" ? failedMessage(strategy, name) : undefined, results, task, home })
      }
      return { ended: out, running, seen }
    })

  /** Applies the ended pods' results to `status` (a fresh copy's); those already recouped there are left alone. */
  const recoup = (status: Record<string, unknown>, gc: GCStatus, ended: ReadonlyArray<Ended>): Record<string, unknown> => {
    const fresh = ended.filter((e) => gc.podsRecouped?.[e.pod] !== true)
    gc.podsRecouped = { ...gc.podsRecouped }
    for (const e of fresh) {
      gc.podsRecouped[e.pod] = true
      if (e.failed !== undefined) upsertCondition(status, e.failed)
    }
    const conditions: Array<string> = []
    const next = updateStatusNodes(status, (nodes) => {
      const out = { ...nodes }
      for (const e of fresh) {
        for (const [nodeId, results] of Object.entries(e.results)) {
          const node = out[nodeId]
          const outputs = node?.["outputs"]
          if (node === undefined || !isRecord(outputs) || !Array.isArray(outputs["artifacts"])) continue
          const artifacts = (outputs["artifacts"] as ReadonlyArray<Artifact>).map((a) => {
            const r = results[a.name]
            if (r === undefined) return a
            if (typeof r.error === "string") conditions.push(`${r.error} (artifactGCTask: ${e.task.name})`)
            return { ...a, deleted: r.success === true }
          })
          out[nodeId] = { ...node, outputs: { ...outputs, artifacts } }
        }
      }
      return out
    })
    for (const c of conditions) upsertCondition(next, c)
    return next
  }

  /** The tasks of ended pods that go: remote ones always (no owner reference reaches them); at home, as upstream, once all succeeded. */
  const toDelete = (ended: ReadonlyArray<Ended>): ReadonlyArray<TaskRef> =>
    ended.filter((e) => !e.home || (e.failed === undefined && Object.values(e.results).every((r) => Object.values(r).every((a) => a.success === true))))
      .map((e) => e.task)

  const collect = (key: string, wf: Workflow, plan: ArtifactGCPlan | undefined, object: KubeObject) =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const now = yield* Clock.currentTimeMillis
      // decided from the informer's copy; the workflow is read afresh only to be written
      const status = (object["status"] ?? {}) as Readonly<Record<string, unknown>>
      const has = (object.metadata.finalizers ?? []).includes(finalizerArtifactGC)
      const completed = ["Succeeded", "Failed", "Error"].includes(String(status["phase"] ?? ""))
      const deleting = object.metadata.deletionTimestamp !== undefined
      const pending = tasksToDelete(object)

      if (plan === undefined) {
        // nothing collected (any more): no finalizer of ours left behind, once no task is left to delete
        if (has && pending.length === 0) {
          yield* update(key, (cur) =>
            tasksToDelete(cur).length > 0 ? undefined : {
              ...cur,
              metadata: { ...cur.metadata, finalizers: (cur.metadata.finalizers ?? []).filter((f) => f !== finalizerArtifactGC) }
            })
          forgetWorkflow(key)
        }
        if (pending.length === 0) return undefined
      }

      // 1. the finalizer, while the workflow runs (one that completed or is going keeps what it has)
      if (plan !== undefined && !has && !completed && !deleting && plan.finalizer) {
        yield* update(key, (cur) =>
          (cur.metadata.finalizers ?? []).includes(finalizerArtifactGC) || cur.metadata.deletionTimestamp !== undefined ? undefined : {
            ...cur,
            metadata: { ...cur.metadata, finalizers: [...(cur.metadata.finalizers ?? []), finalizerArtifactGC] }
          })
        return undefined
      }
      if (!has && pending.length === 0) return undefined

      // 2. ready strategies: each group's task and pod, a failing group on its own (tried again,
      // given up after `giveUpMs` with a condition); a strategy is processed once every group was
      let failing = false
      const started: Array<string> = []
      const givenUp: Array<{ readonly pod: string; readonly message: string }> = []
      const processed: Array<ArtifactGCStrategy> = []
      const readyNow = (s: Readonly<Record<string, unknown>>) => {
        const gc = gcStatusOf(s)
        return (plan?.ready ?? []).filter((strategy) => gc.strategiesProcessed?.[strategy] !== true)
      }
      if (has && readyNow(status).length > 0) {
        // something to make: against a fresh copy (the informer's may not show a recent write yet)
        const fresh = yield* bounded(local.get("workflows", ref.namespace, ref.name), workflowCall("get", ref.name, ref.namespace))
        const freshStatus = (fresh["status"] ?? {}) as Readonly<Record<string, unknown>>
        const known = gcStatusOf(freshStatus).podsRecouped ?? {}
        for (const strategy of readyNow(freshStatus)) {
          let complete = true
          for (const group of groupItems(wf, ref.name, ref.namespace, config.cluster, strategy, plan!.items)) {
            if (known[group.podName] !== undefined) continue
            const result = yield* Effect.result(startGroup(fresh, wf, freshStatus, strategy, group))
            const id = `${key} start ${group.podName}`
            if (result._tag === "Success") {
              firstFailure.delete(id)
              started.push(group.podName)
              continue
            }
            const error = result.failure instanceof Error ? result.failure.message : String(result.failure)
            const elapsed = failedFor(id, now)
            if (elapsed >= giveUpMs) {
              firstFailure.delete(id)
              givenUp.push({
                pod: group.podName,
                message: `Artifact Garbage Collection failed for strategy ${strategy}, pod ${group.podName} could not be made in ${group.cluster}/${group.namespace}: ${error}`
              })
              continue // whatever part of it was made goes (below)
            }
            yield* Effect.logWarning("artifact GC: a GC pod could not be made, will try again").pipe(
              Effect.annotateLogs({ workflow: key, pod: `${group.cluster}/${group.namespace}/${group.podName}`, error, failingForMs: elapsed })
            )
            failing = true
            complete = false
          }
          if (complete) processed.push(strategy)
        }
      }

      // 3. ended (or given up) GC pods: their results
      const { ended, running, seen } = yield* endedPods(key, status, now)
      const groupsByPod = new Map<string, GCGroup>()
      for (const strategy of artifactGCStrategies) {
        for (const g of groupItems(wf, ref.name, ref.namespace, config.cluster, strategy, plan?.items ?? [])) groupsByPod.set(g.podName, g)
      }
      // a GC pod made (recorded not recouped) that no cluster shows for `giveUpMs` (deleted by
      // someone, its cluster gone): given up, or it would hold a forced release for ever
      let missing = 0
      for (const [pod, recouped] of Object.entries(gcStatusOf(status).podsRecouped ?? {})) {
        const id = `${key} missing ${pod}`
        if (recouped !== false || seen.has(pod) || started.includes(pod)) {
          firstFailure.delete(id)
          continue
        }
        if (failedFor(id, now) < giveUpMs) {
          missing++
          continue
        }
        firstFailure.delete(id)
        givenUp.push({ pod, message: `Artifact Garbage Collection failed for pod ${pod}: the pod is gone and its results with it` })
      }
      const givenUpTasks: Array<TaskRef> = givenUp.flatMap((g) => {
        const group = groupsByPod.get(g.pod)
        return group === undefined ? [] : [{ cluster: group.cluster, namespace: group.namespace, name: `${g.pod}-0` }]
      })

      // 4. one write: processed strategies, recouped pods and their results, conditions, the
      // remote tasks now to delete (recorded before they are deleted: a crash between leaves them
      // recorded, so they are deleted later), the finalizer while none is left to delete
      const newTasks = [...toDelete(ended), ...givenUpTasks]
      const mustWrite = processed.length > 0 || started.length > 0 || givenUp.length > 0 || ended.length > 0
      let wrote = object
      if (mustWrite) {
        wrote = yield* update(key, (cur) => {
          let next: Record<string, unknown> = { ...((cur["status"] ?? {}) as Record<string, unknown>) }
          const gc = gcStatusOf(next)
          gc.strategiesProcessed = { ...gc.strategiesProcessed }
          gc.podsRecouped = { ...gc.podsRecouped }
          for (const s of processed) gc.strategiesProcessed[s] = true
          for (const p of started) if (gc.podsRecouped[p] !== true) gc.podsRecouped[p] = false
          for (const g of givenUp) {
            if (gc.podsRecouped[g.pod] === true) continue
            gc.podsRecouped[g.pod] = true
            upsertCondition(next, g.message)
          }
          const freshEnded = ended.filter((e) => gc.podsRecouped![e.pod] !== true)
          const before = JSON.stringify(gcStatusOf((cur["status"] ?? {}) as Record<string, unknown>))
          next = recoup(next, gc, freshEnded)
          next["artifactGCStatus"] = gc
          const tasks = [...tasksToDelete(cur), ...toDelete(freshEnded), ...givenUpTasks]
          // nothing new (the informer's copy was behind): no write
          if (freshEnded.length === 0 && JSON.stringify(gc) === before && tasks.length === tasksToDelete(cur).length) return undefined
          return withTasksToDelete({ ...cur, status: next }, tasks)
        })
      }

      // 5. the tasks to delete go (their pods with them), each on its own; then recorded gone
      const all = [...new Map([...pending, ...newTasks].map((t) => [taskId(t), t])).values()]
      const gone: Array<TaskRef> = []
      for (const t of all) {
        const id = `${key} delete ${taskId(t)}`
        const result = yield* Effect.result(deleteTask(key, t))
        if (result._tag === "Success") {
          firstFailure.delete(id)
          gone.push(t)
        } else if (failedFor(id, now) >= giveUpMs) {
          // its cluster away for good: no longer held for it (logged; the OrphanSweeper does not know it)
          firstFailure.delete(id)
          gone.push(t)
          yield* Effect.logError("artifact GC: WorkflowArtifactGCTask given up, left in place").pipe(
            Effect.annotateLogs({ workflow: key, task: taskId(t) })
          )
        } else failing = true
      }

      // 6. the finalizer comes off once nothing is left to delete (or forceFinalizerRemoval and all was tried)
      const wroteStatus = (wrote["status"] ?? {}) as Readonly<Record<string, unknown>>
      const leftToDelete = tasksToDelete(wrote).filter((t) => !gone.some((g) => taskId(g) === taskId(t)))
      const mayGo = (completed || deleting) && plan !== undefined && mayRelease(wf, wroteStatus)
      const holds = (wrote.metadata.finalizers ?? []).includes(finalizerArtifactGC)
      if (gone.length > 0 || (holds && leftToDelete.length === 0 && (mayGo || plan === undefined))) {
        let released = false
        yield* update(key, (cur) => {
          const left = tasksToDelete(cur).filter((t) => !gone.some((g) => taskId(g) === taskId(t)))
          const curStatus = (cur["status"] ?? {}) as Readonly<Record<string, unknown>>
          const curCompleted = ["Succeeded", "Failed", "Error"].includes(String(curStatus["phase"] ?? ""))
          const release = left.length === 0 && (cur.metadata.finalizers ?? []).includes(finalizerArtifactGC) &&
            (plan === undefined || ((curCompleted || cur.metadata.deletionTimestamp !== undefined) && mayRelease(wf, curStatus)))
          if (!release && left.length === tasksToDelete(cur).length) return undefined
          released = release
          const next = withTasksToDelete(cur, left)
          return release
            ? { ...next, metadata: { ...next.metadata, finalizers: (cur.metadata.finalizers ?? []).filter((f) => f !== finalizerArtifactGC) } }
            : next
        }).pipe(
          // a workflow whose finalizer came off may be gone already
          Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(object) : Effect.fail(e))
        )
        if (released) {
          forgetWorkflow(key)
          yield* Effect.logInfo("artifact GC done, finalizer removed").pipe(Effect.annotateLogs({ workflow: key }))
        }
      }
      if (failing) return retryAfterMs
      return started.length > 0 || running > 0 || missing > 0 ? pollMs : undefined
    }).pipe(
      Effect.catchCause((cause) =>
        Effect.logWarning("artifact GC: will try again").pipe(
          Effect.annotateLogs({ workflow: key, error: String(cause) }),
          Effect.as(retryAfterMs)
        )
      )
    )

  return ArtifactGC.of({ collect })
})
