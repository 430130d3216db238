/**
 * The controller: plumbing only, the decisions are the pure engine's
 * (`workflow/engine`). For each workflow key taken from the work queue:
 *
 *   load (informer caches) -> engine(workflow, observations, now) -> apply:
 *     create pods (user credentials outside the workflow's namespace),
 *     write the status (one Update, as Argo does),
 *     then delete / label pods (only after the status that records their
 *     completion is stored, so a restart never re-creates a finished pod).
 *
 * Triggers: workflow changes, pod and task result changes in every cluster
 * (mapped back to their workflow by labels), the engine's requeueAfter, and a
 * periodic resync. A workflow that may own pods outside its namespace holds a
 * finalizer lease (`FinalizerLease`) until those pods are gone. A periodic
 * orphan sweep deletes pods of this cluster's workflows that no longer exist.
 *
 * Never: create a pod outside the workflow's own cluster+namespace with the
 * controller's identity; reconcile a workflow against a cluster whose cache
 * has not been filled yet (absence of a pod would be misread as its deletion).
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schedule, Schema, Scope, Stream } from "effect"
import type { ConnectionSpec } from "../kube/Connection.js"
import { ClusterNotAvailable, ClusterPool, type ClusterView } from "../kube/ClusterPool.js"
import { Informer as Informers, type Informer } from "../kube/Informer.js"
import { KubeClient, type KubeClientShape } from "../kube/KubeClient.js"
import { isTransient, KubeError, quotaExceeded, refused } from "../kube/KubeError.js"
import type { KubeObject } from "../kube/Resources.js"
import { UserClients } from "../kube/UserClients.js"
import type { EngineAction, EngineConfig, PodObservation, TaskResultObservation } from "../workflow/engine/contract.js"
import { needsFinalizer, reconcile } from "../workflow/engine/index.js"
import { executorEnvOf } from "../workflow/engine/pod.js"
import { updateStatusNodes } from "../workflow/model/compressedNodes.js"
import { decodeWorkflow } from "../workflow/model/decode.js"
import { type ControllerConfig, identityKeys, parseControllerConfig } from "./ControllerConfig.js"
import { Expectations } from "./Expectations.js"
import * as FinalizerLease from "./FinalizerLease.js"
import { observePod, observeTaskResult, ownerOfPod, parseWorkflowKey, type WorkflowRef, workflowKey } from "./observe.js"
import { acceptsTaskResult, judgePod, needsRecord, type PodRecord, recordedPod, storedNodes, withPodRecords } from "./PodIdentity.js"
import * as PodProof from "./PodProof.js"
import * as Throttler from "./Throttler.js"
import * as WorkQueue from "./WorkQueue.js"
import { Supervisor } from "../runtime/Supervisor.js"
import * as Instruments from "../observability/Metrics.js"

export const configMapName = "workflow-controller-configmap"
/** Start of the workflow message set while a cluster it needs cannot be watched. */
export const cacheWaitPrefix = "waiting for cluster cache:"

export interface ControllerOptions {
  /** The controller's own client on its cluster (in-cluster identity). */
  readonly localClient: KubeClientShape
  /** Endpoint of the local cluster, lent to users' contexts that name it. */
  readonly localSpec: ConnectionSpec
  /** Namespace holding the configmap and argo-kubeconfig (Argo's system namespace). */
  readonly systemNamespace?: string
  /** The controller configmap's name (Argo's `--configmap`); default `workflow-controller-configmap`. */
  readonly configMapName?: string
  readonly workers?: number
  readonly resync?: Duration.Input
  readonly orphanSweepInterval?: Duration.Input
  /** Argo's pod name scheme (`POD_NAMES`, read by the CLI through `EnvConfig.podNamesConfig`). Default v2. */
  readonly podNameVersion?: "v1" | "v2"
  /** How long a pod may wait for an unreachable cluster before its node errors. */
  readonly createTimeout?: Duration.Input
  readonly watch?: {
    readonly openTimeout?: Duration.Input
    readonly idleTimeout?: Duration.Input
    /** Backoff between failed watch attempts (default: ~1s doubling up to 5 min, jittered). */
    readonly schedule?: Schedule.Schedule<unknown, KubeError>
  }
  /** Intervals and timeouts; the defaults suit production, tests pass small ones. */
  readonly timing?: ControllerTiming
}

export interface ControllerTiming {
  /** Requeue delay while a cluster's cache is being filled. Default 1s. */
  readonly cacheWait?: Duration.Input
  /** Requeue delay after a transient failure (create waiting for a cluster, failed reconcile, finalizer write). Default 5s. */
  readonly retry?: Duration.Input
  /** Finalizer release backoff: first delay (doubling) and cap. Default 1s and 30s. */
  readonly leaseBackoff?: Duration.Input
  readonly leaseBackoffMax?: Duration.Input
  /** Bound on one API call made while reconciling; a hung cluster turns into a (transient) Timeout. Default 30s. */
  readonly requestTimeout?: Duration.Input
  /** How often clusters added at runtime are checked for a filled cache. Default 2s. */
  readonly clusterCheck?: Duration.Input
  /** Delay before the first orphan sweep. Default 5s. */
  readonly firstOrphanSweep?: Duration.Input
  /**
   * For this long after a cluster's connection came back from an outage (and while it is down), a
   * 401 or 403 to a pod create is retried rather than failing the node: an API server that just
   * restarted serves requests before its RBAC cache has synced and refuses what users may do,
   * with the same message as a real refusal. Default 30s.
   */
  readonly refusalGrace?: Duration.Input
}

export class Controller extends Context.Service<Controller, {
  readonly config: ControllerConfig
  readonly pool: ClusterPool["Service"]
  /** Queues one workflow for reconciliation. */
  readonly enqueue: (namespace: string, name: string) => Effect.Effect<void>
  /** Runs one reconcile now (tests and the CLI use it to step deterministically). */
  readonly reconcileNow: (namespace: string, name: string) => Effect.Effect<void>
  /** Deletes pods of workflows that no longer exist; returns how many. */
  readonly sweepOrphans: Effect.Effect<number>
  readonly workflows: Informer
  /** Keys waiting in the work queue (metric `argo_workflows_queue_depth_gauge`). */
  readonly queueDepth: Effect.Effect<number>
  /** Pods and task results that claimed a workflow's node but were not the ones made for it (see `PodIdentity`). */
  readonly ignored: Effect.Effect<{ readonly pods: number; readonly taskResults: number }>
  /** The controller's long-running components and whether each runs (`/readyz`). */
  readonly supervisor: Supervisor["Service"]
}>()("flotilla/controller/Controller") {
  /** Starts the controller in the current scope; it runs until the scope closes. */
  /**
   * The controller wired from its parts in the context (`partsLayer`): ControllerSettings,
   * Supervisor, ClusterPool, UserClients, WorkQueue, Expectations, KubeClient, KubeConnector.
   */
  static readonly layerFromParts = Layer.effect(Controller, Effect.suspend(() => make))
  /** The controller and its parts from `options` (needs a KubeConnector). */
  static readonly layer = (options: ControllerOptions) => Controller.layerFromParts.pipe(Layer.provide(partsLayer(options)))
  /** Starts the controller in the current scope (builds `layer(options)`). */
  static readonly make = (options: ControllerOptions) =>
    Layer.build(Controller.layer(options)).pipe(Effect.map((context) => Context.get(context, Controller)))
}

/** Argo's ttlStrategy: success/failure-specific seconds win over secondsAfterCompletion. */
export const ttlSecondsFor = (wf: KubeObject, phase: string): number | undefined => {
  const ttl = ((wf["spec"] ?? {}) as { ttlStrategy?: Record<string, unknown> }).ttlStrategy
  if (!ttl) return undefined
  const num = (v: unknown) => (typeof v === "number" && v >= 0 ? v : undefined)
  const specific = phase === "Succeeded" ? num(ttl["secondsAfterSuccess"]) : num(ttl["secondsAfterFailure"])
  return specific ?? num(ttl["secondsAfterCompletion"])
}

class CreateFailure extends Schema.TaggedError<CreateFailure>()("CreateFailure", {
  transient: Schema.Boolean,
  /** Retried until it works or the workflow ends, not only for `createTimeout` (a full ResourceQuota, as upstream). */
  untilDeadline: Schema.optionalKey(Schema.Boolean),
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** Cache indexes: pods by their workflow's key, task results by their workflow's name label, workflows by name. */
const byWorkflow = "workflow"
const byWorkflowName = "workflowName"
const byName = "name"

/**
 * What the controller is started with: its options and the configmap as read once at start (a
 * changed cluster name needs a restart: pods carry it). A configmap whose identity keys
 * (`cluster`, `instanceID`) are invalid stops the start; other invalid keys are logged.
 */
export class ControllerSettings extends Context.Service<ControllerSettings, {
  readonly options: ControllerOptions
  readonly config: ControllerConfig
  readonly engineConfig: EngineConfig
}>()("flotilla/controller/ControllerSettings") {
  static readonly layer = (options: ControllerOptions) => Layer.effect(ControllerSettings, readSettings(options))
}

const readSettings = Effect.fnUntraced(function*(options: ControllerOptions) {
  const systemNamespace = options.systemNamespace ?? "argo"
  const local = options.localClient
  const configMap = yield* local.get("configmaps", systemNamespace, options.configMapName ?? configMapName).pipe(
    Effect.map(Option.some),
    Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none()) : Effect.fail(e))
  )
  const { config, errors } = parseControllerConfig(Option.getOrUndefined(configMap))
  for (const error of errors) {
    yield* Effect.logError("invalid controller configuration").pipe(Effect.annotateLogs({ error: error.message }))
  }
  const fatal = errors.find((e) => identityKeys.includes(e.key))
  if (fatal !== undefined) return yield* Effect.fail(fatal)
  const engineConfig: EngineConfig = {
    localCluster: config.cluster,
    podNameVersion: options.podNameVersion ?? "v2",
    executorImage: config.executorImage,
    images: config.images,
    limits: config.limits,
    ...(config.instanceId ? { instanceId: config.instanceId } : {})
  }
  return ControllerSettings.of({ options, config, engineConfig })
})

/** The cluster pool the settings call for: this cluster's name, managed namespace, instance, the controller's indexes. */
const poolLayer = Layer.unwrap(Effect.gen(function*() {
  const { config, options } = yield* ControllerSettings
  const supervisor = yield* Supervisor
  return ClusterPool.layer({
    supervisor,
    localCluster: config.cluster,
    localSpec: options.localSpec,
    localClient: options.localClient,
    systemNamespace: options.systemNamespace ?? "argo",
    ...(config.namespace ? { managedNamespace: config.namespace } : {}),
    ...(config.instanceId ? { instanceId: config.instanceId } : {}),
    ...(options.watch ? { watch: options.watch } : {}),
    indexers: {
      pods: { [byWorkflow]: (pod) => {
        const owner = ownerOfPod(pod, config.cluster)
        return owner === undefined ? [] : [workflowKey(owner)]
      } },
      workflowtaskresults: { [byWorkflowName]: (result) => {
        const name = result.metadata.labels?.["workflows.argoproj.io/workflow"]
        return name ? [name] : []
      } }
    }
  })
}))

const expectationTtlMs = 60_000

/**
 * Everything the controller is wired from, built from `options`: settings, supervisor, cluster
 * pool, user clients, work queue and expectations (needs a KubeConnector). Embedders may build
 * their own from the parts.
 */
export const partsLayer = (options: ControllerOptions) => {
  const settings = ControllerSettings.layer(options)
  const base = Layer.mergeAll(
    settings,
    Supervisor.layer,
    Layer.succeed(KubeClient, options.localClient),
    WorkQueue.WorkQueue.layer({
      onTake: (_key, waitedMs) => Instruments.recordQueueLatency(waitedMs),
      onDone: (_key, workedMs) => Instruments.recordWorkDuration(workedMs)
    }),
    Expectations.layer({ ttlMillis: expectationTtlMs })
  )
  return Layer.mergeAll(poolLayer, UserClients.layer).pipe(Layer.provideMerge(base))
}

const make = Effect.gen(function*() {
  const { options, config, engineConfig } = yield* ControllerSettings
  const systemNamespace = options.systemNamespace ?? "argo"
  const timing = options.timing ?? {}
  const cacheWait = Duration.fromInputUnsafe(timing.cacheWait ?? "1 second")
  const retryDelay = Duration.fromInputUnsafe(timing.retry ?? "5 seconds")
  const requestTimeout = Duration.fromInputUnsafe(timing.requestTimeout ?? "30 seconds")
  const local = yield* KubeClient
  const scope = yield* Effect.scope
  // The long-running fibres below (watch loops, triggers, resync, sweep) are its components.
  const supervisor = yield* Supervisor
  const pool = yield* ClusterPool
  const users = yield* UserClients
  const proofKey = Option.getOrUndefined(yield* PodProof.loadKey(local, systemNamespace))
  const proven = (wf: KubeObject) => (pod: KubeObject, cluster: string, nodeId: string) =>
    proofKey !== undefined && proofKey.verify(pod, cluster, wf.metadata.uid ?? "", nodeId)
  /** When this controller started: pods without a proof created before it may be a previous version's (see `judgePod`). */
  const startedAt = yield* Clock.currentTimeMillis
  const legacy = (wf: KubeObject) => (pod: KubeObject, nodeId: string) => {
    if (pod.metadata.annotations?.[PodProof.proofAnnotation] !== undefined) return false
    const created = Date.parse(pod.metadata.creationTimestamp ?? "")
    const node = storedNodes(wf)[nodeId]
    const nodeStarted = Date.parse(String(node?.["startedAt"] ?? ""))
    // made by a controller before this one (proofs did not exist), for a node already started then
    return Number.isFinite(created) && created < startedAt && Number.isFinite(nodeStarted) && created >= nodeStarted - 1000 &&
      !(wf.metadata.uid !== undefined && pod.metadata.annotations?.["workflows.argoproj.io/node-id"] !== nodeId)
  }
  /**
   * Whether the controller may delete `pod` (or wait for it) for a workflow: when the workflow is
   * known, the pod must be its node's pod (`judgePod`); when it is gone, the pod must carry the
   * controller's proof for the workflow's last known uid, or sit in its namespace controlled by it.
   * Pods that merely carry its labels (anyone may write labels) are never deleted for it. Without
   * a proof key (the controller may not keep one) labels decide, as before pods had proofs.
   */
  const ownedBy = (
    pod: KubeObject,
    cluster: string,
    ref: WorkflowRef,
    wf: KubeObject | undefined,
    /** Records of pods created whose status write is still to come (`Expectations.pendingRecords`). */
    pending: ReadonlyMap<string, PodRecord>
  ): boolean => {
    if (wf !== undefined) {
      const stored = storedNodes(wf)
      const record = (nodeId: string) => pending.get(nodeId) ?? recordedPod(stored, nodeId)
      return judgePod(pod, cluster, wf, config.cluster, record, proven(wf), legacy(wf))._tag === "Accepted"
    }
    if (proofKey === undefined) return true
    const uid = uidByKey.get(workflowKey(ref))
    if (uid === undefined) return false
    const nodeId = pod.metadata.annotations?.["workflows.argoproj.io/node-id"] ?? ""
    if (proofKey.verify(pod, cluster, uid, nodeId)) return true
    return cluster === config.cluster && pod.metadata.namespace === ref.namespace &&
      (pod.metadata.ownerReferences ?? []).some((o) => o.kind === "Workflow" && o.uid === uid && o.controller === true)
  }
  const workflows = yield* Informers.make(local, "workflows", config.namespace, {
    ...options.watch,
    supervisor,
    indexers: { [byName]: (wf) => wf.metadata.name ? [wf.metadata.name] : [] }
  })
  const queue = yield* WorkQueue.WorkQueue

  // Clusters whose caches have been filled at least once (see the module header).
  // Tracked per view, not per name: a cluster rebuilt after an argo-kubeconfig change gets a new
  // view whose caches start empty, and must not pass for synced because its predecessor was.
  const syncedViews = new WeakSet<ClusterView>()
  const trackedViews = new WeakSet<ClusterView>()
  const trackView = (view: ClusterView): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (trackedViews.has(view)) return Effect.void
      trackedViews.add(view)
      return Effect.andThen(view.pods.synced, view.taskResults.synced).pipe(
        Effect.andThen(Effect.sync(() => void syncedViews.add(view))),
        Effect.forkIn(scope),
        Effect.asVoid
      )
    })

  // Creates the caches and the stored status do not show yet (expected pods, records, waiting and failed creates).
  const expectations = yield* Expectations
  // Which uid a key last had, so the per-node tables can be cleared when the workflow is gone.
  const uidByKey = new Map<string, string>()
  /** The resourceVersion each workflow's last status write replaced (see the stale-copy guard in reconcileKey). */
  const overwrittenVersion = new Map<string, { readonly version: string; readonly at: number }>()
  const staleWait = Duration.millis(50)
  const staleWaitMax = 10_000
  /** Objects already counted (and logged) as ignored, by uid; bounded. */
  const ignoredSeen = new Set<string>()
  const ignoredCounts = { pods: 0, taskResults: 0 }
  const noteIgnored = (kind: "pods" | "taskResults", key: string, cluster: string, object: KubeObject, reason: string) =>
    Effect.suspend(() => {
      const id = `${kind}/${object.metadata.uid ?? `${cluster}/${object.metadata.namespace}/${object.metadata.name}`}`
      if (ignoredSeen.has(id)) return Effect.void
      // bounded, oldest first out (a Set iterates in insertion order)
      if (ignoredSeen.size >= 10_000) ignoredSeen.delete(ignoredSeen.values().next().value!)
      ignoredSeen.add(id)
      ignoredCounts[kind]++
      return Effect.logWarning(kind === "pods" ? "ignoring a pod that is not the node's" : "ignoring a task result that is not the node's").pipe(
        Effect.annotateLogs({ workflow: key, cluster, namespace: object.metadata.namespace ?? "", name: object.metadata.name ?? "", reason })
      )
    })
  const createTimeoutMs = Duration.toMillis(Duration.fromInputUnsafe(options.createTimeout ?? "10 minutes"))
  const refusalGraceMs = Duration.toMillis(Duration.fromInputUnsafe(timing.refusalGrace ?? "30 seconds"))

  /**
   * True while a cluster's connection is down or came back from an outage less than `refusalGrace`
   * ago: its API server may have restarted and not yet synced its RBAC cache.
   */
  const settling = (cluster: string) =>
    Effect.gen(function*() {
      const state = (yield* pool.states).get(cluster)
      if (state === undefined) return false
      if (state._tag !== "Connected") return state._tag !== "Failed"
      if (!state.afterOutage) return false
      return (yield* Clock.currentTimeMillis) - state.since < refusalGraceMs
    })

  /** A failed pod create, classified: worth trying again (for how long), or final. */
  const createFailed = (cluster: string, e: KubeError) =>
    Effect.gen(function*() {
      if (quotaExceeded(e)) return new CreateFailure({ transient: true, untilDeadline: true, detail: e.detail })
      const transient = isTransient(e) || (refused(e) && (yield* settling(cluster)))
      return new CreateFailure({ transient, detail: e.message })
    })

  const podsOfWorkflow = (ref: { namespace: string; name: string }) =>
    Effect.gen(function*() {
      const views = yield* pool.all
      const out: Array<{ readonly view: ClusterView; readonly pod: KubeObject }> = []
      for (const view of views) {
        for (const pod of yield* view.pods.byIndex(byWorkflow, workflowKey(ref))) out.push({ view, pod })
      }
      return out
    })

  /** Clusters a workflow's templates name (a superset of where its pods can be). */
  const clustersNamed = (wf: KubeObject): ReadonlySet<string> => {
    const spec = (wf["spec"] ?? {}) as { templates?: ReadonlyArray<{ cluster?: unknown }>; templateDefaults?: { cluster?: unknown } }
    const names = new Set<string>([config.cluster])
    for (const t of spec.templates ?? []) if (typeof t?.cluster === "string" && t.cluster) names.add(t.cluster)
    if (typeof spec.templateDefaults?.cluster === "string") names.add(spec.templateDefaults.cluster)
    return names
  }

  /**
   * True when the watches of every cluster the workflow may have pods in are connected now (not
   * only filled once): letting go of its pods (the finalizer) on a cache that stopped following
   * its cluster would miss a pod created meanwhile, and leave it behind.
   */
  const watchesLive = (wf: KubeObject) =>
    Effect.gen(function*() {
      const states = yield* pool.states
      const names = new Set(clustersNamed(wf))
      for (const node of Object.values(storedNodes(wf))) if (typeof node["cluster"] === "string") names.add(node["cluster"])
      for (const name of names) {
        const state = states.get(name)
        if (state !== undefined && state._tag !== "Connected") return false
      }
      return true
    })

  /** True when every configured cluster the workflow names has a filled cache. */
  const cachesReady = (wf: KubeObject) =>
    Effect.gen(function*() {
      let ready = true
      for (const name of clustersNamed(wf)) {
        const view = yield* pool.get(name).pipe(Effect.option)
        if (Option.isSome(view) && !syncedViews.has(view.value)) {
          yield* trackView(view.value)
          ready = false
        }
      }
      return ready
    })

  /**
   * Bounds one call to a (possibly remote) cluster: a hung API server must not hold a worker, a
   * lease or the orphan sweep forever. The timeout is a transient KubeError like any other.
   */
  const bounded = <A>(
    call: Effect.Effect<A, KubeError>,
    where: { readonly cluster: string; readonly verb: string; readonly resource: string; readonly namespace?: string | undefined; readonly name?: string | undefined }
  ): Effect.Effect<A, KubeError> =>
    call.pipe(
      Effect.timeoutOrElse({
        duration: requestTimeout,
        orElse: () =>
          Effect.fail(
            new KubeError({
              reason: "Timeout",
              cluster: where.cluster,
              verb: where.verb,
              resource: where.resource,
              namespace: where.namespace,
              name: where.name,
              detail: `no answer within ${Duration.format(requestTimeout)}`
            })
          )
      })
    )

  /** Why a cluster the workflow needs has no usable cache, when it failed (not merely connecting). */
  const cacheProblem = (wf: KubeObject) =>
    Effect.gen(function*() {
      const states = yield* pool.states
      const problems: Array<string> = []
      for (const name of clustersNamed(wf)) {
        const state = states.get(name)
        if (state?._tag === "Retrying") problems.push(`cluster "${name}": ${state.lastError}`)
        else if (state?._tag === "Failed") problems.push(`cluster "${name}": ${state.error}`)
      }
      return problems.length === 0 ? undefined : `${cacheWaitPrefix} ${problems.join("; ")}`
    })

  const hasFinalizer = (wf: KubeObject) => (wf.metadata.finalizers ?? []).includes(FinalizerLease.finalizerName)
  const isCompletedPhase = (phase: unknown) => phase === "Succeeded" || phase === "Failed" || phase === "Error"
  const isCompleted = (wf: KubeObject) => isCompletedPhase((wf["status"] as { phase?: unknown } | undefined)?.phase)

  // Finalizer writes go through replace so a concurrent change is a Conflict, never a lost update.
  const updateFinalizers = (
    key: string,
    change: (finalizers: ReadonlyArray<string>, current: KubeObject) => ReadonlyArray<string>
  ) =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const current = yield* local.get("workflows", ref.namespace, ref.name)
      const before = current.metadata.finalizers ?? []
      const after = change(before, current)
      if (after.length === before.length && after.every((f, i) => f === before[i])) return
      yield* local.replace("workflows", ref.namespace, {
        ...current,
        metadata: { ...current.metadata, finalizers: after }
      })
    }).pipe(
      Effect.retry({ while: (e) => e.reason === "Conflict", times: 5 })
    )

  const leaseRetry = Schedule.min([
    Schedule.exponential(timing.leaseBackoff ?? "1 second", 2),
    Schedule.spaced(timing.leaseBackoffMax ?? "30 seconds")
  ]).pipe(Schedule.jittered)

  const deleteRemotePods = (key: string) =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const wf = yield* workflows.get(ref.namespace, ref.name)
      // Unreachable or never-synced clusters might hold pods we cannot see: do not release yet.
      if (Option.isSome(wf) && !(yield* cachesReady(wf.value))) {
        return yield* new CreateFailure({ transient: true, detail: "waiting for cluster caches" })
      }
      if (Option.isSome(wf) && !(yield* watchesLive(wf.value))) {
        return yield* new CreateFailure({ transient: true, detail: "waiting for cluster watches to reconnect" })
      }
      // Only the workflow's own pods: others that carry its labels are not its to delete, nor to wait for.
      const pending = Option.isSome(wf) ? yield* expectations.pendingRecords(wf.value.metadata.uid ?? "") : new Map<string, PodRecord>()
      const own = (listed: ReadonlyArray<{ readonly view: ClusterView; readonly pod: KubeObject }>) =>
        listed.filter(({ view, pod }) => ownedBy(pod, view.name, ref, Option.getOrUndefined(wf), pending))
      const pods = own(yield* podsOfWorkflow(ref))
      for (const { view, pod } of pods) {
        yield* bounded(
          view.client.delete("pods", pod.metadata.namespace, pod.metadata.name!, { uid: pod.metadata.uid! }),
          { cluster: view.name, verb: "delete", resource: "pods", namespace: pod.metadata.namespace, name: pod.metadata.name }
        ).pipe(
          Effect.catchTag("KubeError", (e) => e.reason === "NotFound" || e.reason === "Conflict" ? Effect.void : Effect.fail(e))
        )
      }
      const remaining = own(yield* podsOfWorkflow(ref))
      if (remaining.length > 0) {
        return yield* new CreateFailure({ transient: true, detail: `${remaining.length} pod(s) still terminating` })
      }
      yield* deleteTaskResults(ref)
    })

  const deleteTaskResults = (ref: { namespace: string; name: string }) =>
    Effect.gen(function*() {
      for (const view of yield* pool.all) {
        if (view.local) continue // local ones are owned by the Workflow and garbage-collected with it
        // Only results the workflow owns: a same-named workflow of another namespace may share this one.
        const uid = uidByKey.get(workflowKey(ref))
        const results = yield* view.taskResults.byIndex(byWorkflowName, ref.name)
        for (const r of results) {
          if (!(r.metadata.name ?? "").startsWith(ref.name)) continue
          if (uid === undefined || !(r.metadata.ownerReferences ?? []).some((o) => o.kind === "Workflow" && o.uid === uid)) continue
          yield* bounded(
            view.client.delete("workflowtaskresults", r.metadata.namespace, r.metadata.name!),
            { cluster: view.name, verb: "delete", resource: "workflowtaskresults", namespace: r.metadata.namespace, name: r.metadata.name }
          ).pipe(
            Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.void : Effect.fail(e))
          )
        }
      }
    })

  const leases = yield* FinalizerLease.make({
    // A completed workflow never gets the finalizer (back): its pods are no longer created, and a
    // lease taken from a stale cache after the release must not undo the release.
    acquire: (key) =>
      updateFinalizers(key, (f, current) =>
        f.includes(FinalizerLease.finalizerName) || isCompleted(current) || current.metadata.deletionTimestamp
          ? f
          : [...f, FinalizerLease.finalizerName]),
    release: (key) =>
      Effect.gen(function*() {
        yield* deleteRemotePods(key).pipe(
          Effect.tapError((e) => Effect.logWarning("holding finalizer").pipe(Effect.annotateLogs({ workflow: key, reason: e.message }))),
          Effect.retry(leaseRetry)
        )
        yield* updateFinalizers(key, (f) => f.filter((x) => x !== FinalizerLease.finalizerName)).pipe(
          Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.void : Effect.fail(e)),
          Effect.retry(leaseRetry)
        )
        yield* Effect.logInfo("finalizer released").pipe(Effect.annotateLogs({ workflow: key }))
      }).pipe(Effect.orDie)
  })

  const createPod = (
    wf: KubeObject,
    action: Extract<EngineAction, { _tag: "CreatePod" }>,
    record: (nodeId: string) => PodRecord | undefined
  ) =>
    Effect.gen(function*() {
      const wfNamespace = wf.metadata.namespace!
      const sameNamespace = action.cluster === config.cluster && action.namespace === wfNamespace
      const view = yield* pool.get(action.cluster).pipe(
        Effect.mapError((e: ClusterNotAvailable) => new CreateFailure({ transient: false, detail: e.message }))
      )
      let client: KubeClientShape
      if (sameNamespace) {
        client = local
      } else {
        const serviceAccountName = ((wf["spec"] as { serviceAccountName?: string } | undefined)?.serviceAccountName) || "default"
        client = yield* users.clientFor({
          workflowNamespace: wfNamespace,
          workflowName: wf.metadata.name!,
          serviceAccountName,
          cluster: action.cluster,
          namespace: action.namespace,
          system: view.spec,
          allowInsecureSkipTlsVerify: config.allowInsecureSkipTlsVerify
        }).pipe(Effect.mapError((e) => new CreateFailure({ transient: e.transient === true, detail: e.message })))
      }
      const podName = action.pod.metadata.name ?? ""
      const pod = proofKey === undefined ? action.pod : PodProof.withProof(action.pod, proofKey.sign({
        workflowUid: wf.metadata.uid ?? "",
        nodeId: action.nodeId,
        cluster: action.cluster,
        namespace: action.namespace,
        podName
      }, action.pod))
      const created = yield* bounded(
        client.create("pods", action.namespace, pod),
        { cluster: action.cluster, verb: "create", resource: "pods", namespace: action.namespace, name: podName }
      ).pipe(
        Effect.map((pod): PodRecord | undefined =>
          pod.metadata.uid ? { uid: pod.metadata.uid, cluster: action.cluster, namespace: action.namespace } : undefined
        ),
        Effect.catchTag("KubeError", (e: KubeError) =>
          e.reason === "AlreadyExists"
            ? nameTaken(wf, action, view, record)
            : Effect.flatMap(createFailed(action.cluster, e), Effect.fail))
      )
      return created
    })

  /**
   * The create found a pod of that name (names are deterministic). If it is the node's recorded
   * pod, the watch has not shown it yet: wait. If it claims this workflow's node but is not the
   * recorded one (a crash between create and status write, or a pod someone else made to pose as
   * ours), it is deleted and the node's pod made again. A pod of another workflow is never
   * touched: the node fails, naming the pod that holds the name.
   */
  const nameTaken = (
    wf: KubeObject,
    action: Extract<EngineAction, { _tag: "CreatePod" }>,
    view: ClusterView,
    record: (nodeId: string) => PodRecord | undefined
  ) =>
    Effect.gen(function*() {
      const podName = action.pod.metadata.name ?? ""
      const where = `${action.cluster}/${action.namespace}/${podName}`
      // The holder may carry none of our labels (the watch would not show it): ask for it by name.
      const listed = yield* bounded(
        view.client.list("pods", action.namespace, { fieldSelector: `metadata.name=${podName}` }),
        { cluster: action.cluster, verb: "list", resource: "pods", namespace: action.namespace, name: podName }
      ).pipe(Effect.mapError((e) => new CreateFailure({ transient: isTransient(e), detail: e.message })))
      const cached = listed.items.find((p) => p.metadata.name === podName)
      if (cached === undefined) {
        return yield* new CreateFailure({ transient: true, detail: `pod ${where} exists but could not be listed yet` })
      }
      const verdict = judgePod(cached, action.cluster, wf, config.cluster, record, proven(wf), legacy(wf))
      if (verdict._tag === "Accepted" && verdict.nodeId === action.nodeId) {
        // The node's own pod (recorded, controlled by the workflow, or carrying the proof): adopt it.
        return { uid: cached.metadata.uid!, cluster: action.cluster, namespace: action.namespace }
      }
      const owner = ownerOfPod(cached, config.cluster)
      const claimsNode = owner !== undefined && owner.name === wf.metadata.name && owner.namespace === wf.metadata.namespace &&
        cached.metadata.annotations?.["workflows.argoproj.io/node-id"] === action.nodeId
      if (!claimsNode) {
        return yield* new CreateFailure({
          transient: false,
          detail: `pod name ${where} is taken by a pod that is not this node's (${
            owner === undefined ? "not made by this controller" : `it belongs to workflow ${workflowKey(owner)}`
          })`
        })
      }
      yield* Effect.logWarning("replacing a pod this controller has no record of creating").pipe(
        Effect.annotateLogs({ workflow: workflowKey({ namespace: wf.metadata.namespace!, name: wf.metadata.name! }), pod: where, uid: cached.metadata.uid ?? "" })
      )
      yield* bounded(
        view.client.delete("pods", action.namespace, podName, { uid: cached.metadata.uid! }),
        { cluster: action.cluster, verb: "delete", resource: "pods", namespace: action.namespace, name: podName }
      ).pipe(Effect.catchTag("KubeError", (e) => e.reason === "NotFound" || e.reason === "Conflict" ? Effect.void : Effect.fail(new CreateFailure({ transient: isTransient(e), detail: e.message }))))
      return yield* new CreateFailure({ transient: true, detail: `replacing pod ${where}: it is not the pod created for this node` })
    })

  /**
   * Completed task results as last seen, by the uid of the workflow they name
   * as owner, then `cluster/namespace/name`. argoexec puts an owner reference
   * to the Workflow on each task result; where the Workflow kind exists but
   * that Workflow does not (a pod in another namespace of the workflow's own
   * cluster, or a remote cluster that runs Argo too), the garbage collector
   * deletes the result milliseconds after it is written, so a reconcile may
   * find it gone: what the watch delivered is kept until the workflow is.
   */
  const reportedResults = new Map<string, Map<string, KubeObject>>()
  const retainReported = (cluster: string, result: KubeObject) => {
    const uid = result.metadata.ownerReferences?.find((o) => o.kind === "Workflow")?.uid
    if (uid === undefined || result.metadata.labels?.["workflows.argoproj.io/report-outputs-completed"] !== "true") return
    let byKey = reportedResults.get(uid)
    if (byKey === undefined) reportedResults.set(uid, byKey = new Map())
    byKey.set(`${cluster}/${result.metadata.namespace}/${result.metadata.name}`, result)
  }

  const forgetNodes = (uid: string | undefined) =>
    Effect.suspend(() => {
      if (uid === undefined) return Effect.void
      reportedResults.delete(uid)
      return expectations.forget(uid)
    })

  const throttler = Throttler.make({ parallelism: config.parallelism, namespaceParallelism: config.namespaceParallelism })
  const admitted = (wf: KubeObject, key: string): boolean => {
    const spec = (wf["spec"] ?? {}) as { priority?: unknown }
    const status = (wf["status"] ?? {}) as { phase?: unknown }
    return throttler.admit({
      key,
      namespace: wf.metadata.namespace ?? "",
      priority: typeof spec.priority === "number" ? spec.priority : 0,
      created: Date.parse(wf.metadata.creationTimestamp ?? "") || 0,
      started: status.phase === "Running" || Object.keys(storedNodes(wf)).length > 0
    })
  }
  /** Frees a running place; the waiting workflows that may start now are looked at again. */
  const releaseSlot = (key: string) => Effect.forEach(throttler.release(key), queue.add, { discard: true })

  const reconcileKey = (key: string): Effect.Effect<void> =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const found = yield* workflows.get(ref.namespace, ref.name)
      if (Option.isNone(found)) {
        yield* releaseSlot(key)
        yield* leases.end(key)
        yield* forgetNodes(uidByKey.get(key))
        uidByKey.delete(key)
        overwrittenVersion.delete(key)
        return
      }
      const wf = found.value
      if (wf.metadata.uid) uidByKey.set(key, wf.metadata.uid)
      // A copy older than this controller's own last status write (the watch has not delivered the
      // write yet) would have the engine redo what that write recorded, such as creating again a pod
      // whose create failed for good: wait for the write to come back.
      const overwritten = overwrittenVersion.get(key)
      if (overwritten !== undefined) {
        // bounded: should the write's event never arrive, the copy is taken as it is after a while
        if (wf.metadata.resourceVersion === overwritten.version && (yield* Clock.currentTimeMillis) - overwritten.at < staleWaitMax) {
          yield* queue.addAfter(key, staleWait)
          return
        }
        overwrittenVersion.delete(key)
      }

      if (wf.metadata.deletionTimestamp) {
        yield* releaseSlot(key)
        if (hasFinalizer(wf)) {
          // The lease may not be held (e.g. deleted while no controller ran): take it up, then end it.
          // If that fails, nothing else would bring this workflow back until the resync: retry.
          const held = yield* leases.hold(key).pipe(Effect.result)
          if (held._tag === "Failure") {
            yield* Effect.logWarning("cannot take up finalizer of deleted workflow").pipe(
              Effect.annotateLogs({ workflow: key, error: String(held.failure) })
            )
            yield* queue.addAfter(key, retryDelay)
            return
          }
          yield* leases.end(key)
        }
        return
      }

      if (!(yield* cachesReady(wf))) {
        // Say why in the workflow's message (it would otherwise sit there with no status at all),
        // once a cluster it needs has actually failed rather than just being slow to list.
        const why = yield* cacheProblem(wf)
        const status = (wf["status"] ?? {}) as Record<string, unknown>
        if (why !== undefined && status["message"] !== why) {
          yield* local.replace("workflows", ref.namespace, { ...wf, status: { ...status, message: why } }).pipe(Effect.ignore)
        }
        yield* queue.addAfter(key, cacheWait)
        return
      }

      // parallelism / namespaceParallelism: one that may not start yet waits, Pending, as upstream
      if (isCompleted(wf)) yield* releaseSlot(key)
      else if (!admitted(wf, key)) {
        const status = (wf["status"] ?? {}) as Record<string, unknown>
        if (status["phase"] !== "Pending" || status["message"] !== Throttler.postponedMessage) {
          yield* local.replace("workflows", ref.namespace, {
            ...wf,
            status: { ...status, phase: "Pending", message: Throttler.postponedMessage }
          }).pipe(Effect.catchTag("KubeError", (e) => e.reason === "Conflict" || e.reason === "NotFound" ? Effect.void : Effect.fail(e)))
        }
        return
      }

      const decoded = decodeWorkflow(wf)
      // Once completed (and released) a workflow needs no finalizer any more: holding one again would
      // add and remove it on every reconcile.
      if (decoded.ok && ((needsFinalizer(decoded.value, config.cluster) && !isCompleted(wf)) || hasFinalizer(wf))) {
        const held = yield* leases.hold(key).pipe(Effect.result)
        if (held._tag === "Failure") {
          yield* Effect.logWarning("cannot add finalizer").pipe(Effect.annotateLogs({ workflow: key, error: String(held.failure) }))
          yield* queue.addAfter(key, retryDelay)
          return
        }
        if (!hasFinalizer(wf)) return // the finalizer write triggers the next reconcile
      }

      const now = yield* Clock.currentTimeMillis
      const wfUid = wf.metadata.uid ?? ""
      // Records the stored status already holds need no overlay any more.
      const stored = storedNodes(wf)
      const recordOf = yield* expectations.settleRecords(wfUid, (nodeId) => recordedPod(stored, nodeId))

      const observed = yield* podsOfWorkflow(ref)
      /** The node's own pods (as judged), the only ones ever deleted or labelled for it. */
      const accepted = new Map<string, { readonly cluster: string; readonly namespace: string; readonly name: string; readonly uid: string }>()
      const seen = new Map<string, PodObservation>()
      const locations = new Set<string>()
      for (const { view, pod } of observed) {
        const verdict = judgePod(pod, view.name, wf, config.cluster, recordOf, proven(wf), legacy(wf))
        if (verdict._tag === "Ignored") {
          yield* noteIgnored("pods", key, view.name, pod, verdict.reason)
          continue
        }
        accepted.set(verdict.nodeId, { cluster: view.name, namespace: pod.metadata.namespace ?? "", name: pod.metadata.name ?? "", uid: pod.metadata.uid ?? "" })
        if (verdict.unrecorded === true && pod.metadata.uid && needsRecord(wf, config.cluster, view.name, pod.metadata.namespace ?? "")) {
          // Created just before a restart (or by a previous version), before its record was stored: record it now.
          yield* expectations.record(wfUid, verdict.nodeId, { uid: pod.metadata.uid, cluster: view.name, namespace: pod.metadata.namespace! })
        }
        const obs = observePod(pod, view.name)
        if (obs) {
          seen.set(obs.nodeId, obs)
          locations.add(`${view.name}/${obs.namespace}`)
        }
      }
      // failed creates, and pods created but not delivered by their watch yet
      const pods = yield* expectations.overlay(wfUid, seen, now)
      const taskResults = new Map<string, TaskResultObservation>()
      const podOf = (nodeId: string) => pods.get(nodeId)
      // Results named after a node, sitting where its pod runs, that the workflow does not own.
      const foreignResults = new Map<string, string>()
      for (const view of yield* pool.all) {
        const results = (yield* view.taskResults.byIndex(byWorkflowName, ref.name)).filter((r) =>
          locations.has(`${view.name}/${r.metadata.namespace}`)
        )
        for (const r of results) {
          if (!pods.has(r.metadata.name ?? "")) continue
          if (!acceptsTaskResult(r, view.name, wf, podOf)) {
            yield* noteIgnored("taskResults", key, view.name, r, "not in the node's pod's cluster and namespace, or not owned by the workflow's UID")
            const pod = podOf(r.metadata.name!)
            if (pod?.cluster === view.name && pod.namespace === r.metadata.namespace) {
              foreignResults.set(r.metadata.name!, `${view.name}/${r.metadata.namespace}/${r.metadata.name}`)
            }
            continue
          }
          const obs = observeTaskResult(r)
          if (obs) taskResults.set(obs.nodeId, obs)
        }
      }
      for (const [resultKey, r] of reportedResults.get(wfUid) ?? []) {
        const obs = observeTaskResult(r)
        const cluster = resultKey.slice(0, resultKey.indexOf("/"))
        if (obs && !taskResults.get(obs.nodeId)?.completed && acceptsTaskResult(r, cluster, wf, podOf)) taskResults.set(obs.nodeId, obs)
      }
      // The executor patches a result that already exists, so one written first by someone else
      // (a co-tenant of a shared namespace) would keep the node waiting for ever: once its pod is
      // done, the node fails and says why. Its outputs are never read.
      for (const [nodeId, where] of foreignResults) {
        const pod = pods.get(nodeId)
        if (pod === undefined || taskResults.get(nodeId)?.completed || (pod.phase !== "Succeeded" && pod.phase !== "Failed")) continue
        pods.set(nodeId, {
          ...pod,
          phase: "Failed",
          message: `task result ${where} is not this workflow's (not owned by its UID): its outputs are not read`
        })
      }

      // A message left by the cache wait above is not the engine's: drop it before it carries it over.
      const previous = wf["status"] as Record<string, unknown> | undefined
      const engineInput = typeof previous?.["message"] === "string" && previous["message"].startsWith(cacheWaitPrefix)
        ? { ...wf, status: Object.fromEntries(Object.entries(previous).filter(([k]) => k !== "message")) }
        : wf
      const output = reconcile({ workflow: engineInput, pods, taskResults, now, config: engineConfig })

      // 1. create pods (in parallel, bounded)
      let retryCreates: number | undefined
      let failedNow = false
      yield* Effect.forEach(
        output.actions.filter((a): a is Extract<EngineAction, { _tag: "CreatePod" }> => a._tag === "CreatePod"),
        (action) =>
          createPod(wf, action, recordOf).pipe(
            Effect.tap((record) =>
              Effect.gen(function*() {
                yield* expectations.created(
                  wfUid,
                  action.nodeId,
                  {
                    nodeId: action.nodeId,
                    podName: action.pod.metadata.name ?? "",
                    cluster: action.cluster,
                    namespace: action.namespace,
                    phase: "Pending"
                  },
                  record !== undefined && needsRecord(wf, config.cluster, action.cluster, action.namespace) ? record : undefined,
                  now
                )
                // if the pod never shows up (deleted before it was seen), look again once the expectation lapsed
                yield* queue.addAfter(key, Duration.millis(expectationTtlMs + 1000))
              })
            ),
            Effect.catchTag("CreateFailure", (failure) =>
              Effect.gen(function*() {
                const since = (yield* expectations.waitingOf(wfUid)).get(action.nodeId)?.since ?? now
                if (failure.transient && (failure.untilDeadline === true || now - since < createTimeoutMs)) {
                  // A full quota is not the cluster's fault: its message is shown as upstream shows it.
                  yield* expectations.waiting(
                    wfUid,
                    action.nodeId,
                    now,
                    failure.untilDeadline === true ? failure.detail : `waiting for cluster: ${failure.detail}`
                  )
                  retryCreates = Duration.toMillis(retryDelay)
                  yield* Effect.logWarning("pod creation waiting for cluster").pipe(
                    Effect.annotateLogs({ workflow: key, cluster: action.cluster, error: failure.detail })
                  )
                  return
                }
                failedNow = true
                yield* expectations.failed(wfUid, action.nodeId, {
                  nodeId: action.nodeId,
                  podName: action.pod.metadata.name ?? "",
                  cluster: action.cluster,
                  namespace: action.namespace,
                  phase: "Failed",
                  reason: "CreateFailed",
                  message: failure.detail
                })
                yield* Effect.logError("pod creation failed").pipe(
                  Effect.annotateLogs({ workflow: key, cluster: action.cluster, namespace: action.namespace, error: failure.detail })
                )
              }))
          ),
        { concurrency: 8, discard: true }
      )
      if (failedNow) {
        // Fold the failures into the status right away.
        yield* queue.add(key)
      }

      // 2. write the status when it changed, with the records of the pods just created
      let status = withPodRecords(output.status, yield* expectations.pendingRecords(wfUid))
      const waitingHere = yield* expectations.waitingOf(wfUid)
      if (waitingHere.size > 0) {
        // in whichever form the status keeps its nodes (compressedNodes once it is large)
        status = updateStatusNodes(status, (nodes) => {
          const next = { ...nodes }
          for (const [nodeId, w] of waitingHere) {
            if (next[nodeId]) next[nodeId] = { ...next[nodeId], message: w.message }
          }
          return next
        })
      }
      const labels = { ...wf.metadata.labels, ...output.labels }
      const changed = JSON.stringify(status) !== JSON.stringify(wf["status"] ?? {}) ||
        JSON.stringify(labels) !== JSON.stringify(wf.metadata.labels ?? {})
      if (changed) {
        const written = yield* local.replace("workflows", ref.namespace, {
          ...wf,
          metadata: { ...wf.metadata, labels },
          status
        }).pipe(Effect.result)
        // (An update that changed nothing keeps its resourceVersion: then there is nothing to wait for.)
        if (
          written._tag === "Success" && wf.metadata.resourceVersion !== undefined &&
          written.success.metadata.resourceVersion !== wf.metadata.resourceVersion
        ) overwrittenVersion.set(key, { version: wf.metadata.resourceVersion, at: now })
        if (written._tag === "Failure") {
          const e = written.failure
          if (e.reason !== "Conflict" && e.reason !== "NotFound") {
            yield* Effect.logWarning("status update failed").pipe(Effect.annotateLogs({ workflow: key, error: e.message }))
          }
          // a Conflict (a newer copy is on its way) or a failed write: again after the key's backoff
          return "retry" as const
        }
      }

      // 3. only now that the status records their completion: delete / label pods
      // Only the node's own pod, by its uid: an observation the controller made up (a failed create,
      // a pod not seen yet) names a pod that may be anyone's.
      const ownPod = (action: { readonly nodeId: string; readonly cluster: string; readonly namespace: string; readonly podName: string }) => {
        const own = accepted.get(action.nodeId)
        return own !== undefined && own.cluster === action.cluster && own.namespace === action.namespace && own.name === action.podName &&
            own.uid !== ""
          ? own
          : undefined
      }
      for (const action of output.actions) {
        if (action._tag === "DeletePod") {
          const own = ownPod(action)
          if (own === undefined) continue
          const view = yield* pool.get(action.cluster).pipe(Effect.option)
          if (Option.isNone(view)) continue
          yield* bounded(
            view.value.client.delete("pods", action.namespace, action.podName, { uid: own.uid }),
            { cluster: action.cluster, verb: "delete", resource: "pods", namespace: action.namespace, name: action.podName }
          ).pipe(
            Effect.catchTag("KubeError", (e) =>
              e.reason === "NotFound" || e.reason === "Conflict"
                ? Effect.void
                : Effect.logWarning("pod deletion failed").pipe(
                  Effect.annotateLogs({ workflow: key, cluster: action.cluster, error: e.message }),
                  Effect.andThen(queue.addAfter(key, retryDelay))
                ))
          )
        } else if (action._tag === "LabelPodCompleted") {
          // Remote identities only have list/watch/delete: label only what we own locally.
          if (action.cluster !== config.cluster) continue
          const own = ownPod(action)
          if (own === undefined) continue
          const pod = yield* pool.local.pods.get(action.namespace, action.podName)
          if (Option.isNone(pod) || pod.value.metadata.uid !== own.uid || pod.value.metadata.labels?.["workflows.argoproj.io/completed"] === "true") continue
          // the uid makes the patch fail on any other pod that took the name meanwhile
          yield* local.patch("pods", action.namespace, action.podName, {
            metadata: { uid: own.uid, labels: { "workflows.argoproj.io/completed": "true" } }
          }).pipe(Effect.catchTag("KubeError", () => Effect.void))
        }
      }

      // 4. a completed workflow whose remote pods are gone no longer needs its finalizer
      const phase = (status["phase"] as string | undefined) ?? ""
      const completed = isCompletedPhase(phase)
      if (completed) {
        yield* releaseSlot(key)
        yield* expectations.clearFailures(wfUid)
        if (hasFinalizer(wf)) {
          const pendingRecords = yield* expectations.pendingRecords(wfUid)
          const remaining = (yield* podsOfWorkflow(ref)).filter(({ view, pod }) =>
            !(view.local && pod.metadata.namespace === ref.namespace) && ownedBy(pod, view.name, ref, wf, pendingRecords)
          )
          if (remaining.length === 0) {
            if (yield* watchesLive(wf)) {
              yield* deleteTaskResults(ref).pipe(Effect.ignore)
              yield* leases.end(key)
            } else yield* queue.addAfter(key, cacheWait)
          }
        }
      }

      // 5. spec.ttlStrategy: a completed workflow is deleted once its time is up.
      let after = retryCreates ?? output.requeueAfterMs
      const ttl = completed ? ttlSecondsFor(wf, phase) : undefined
      const finishedAt = Date.parse(String(status["finishedAt"] ?? ""))
      if (ttl !== undefined && Number.isFinite(finishedAt)) {
        const due = finishedAt + ttl * 1000
        if (now >= due) {
          yield* local.delete("workflows", ref.namespace, ref.name, { ...(wf.metadata.uid ? { uid: wf.metadata.uid } : {}) }).pipe(
            Effect.tap(() => Effect.logInfo("deleting workflow: TTL expired").pipe(Effect.annotateLogs({ workflow: key, ttlSeconds: ttl }))),
            Effect.catchTag("KubeError", (e) => e.reason === "NotFound" || e.reason === "Conflict" ? Effect.void : Effect.fail(e))
          )
        } else {
          after = after === undefined ? due - now : Math.min(after, due - now)
        }
      }
      if (after !== undefined) yield* queue.addAfter(key, Duration.millis(Math.max(after, 10)))
      return "done" as const
    }).pipe(
      Instruments.timeReconcileBy((outcome) => outcome === "retry" ? "requeue" : "success"),
      // client-go's pattern: a failed round comes back after the key's growing backoff, a good one forgets it
      Effect.flatMap((outcome) => outcome === "retry" ? queue.addRateLimited(key) : queue.forget(key)),
      Effect.catchCause((cause) =>
        Effect.logError("reconcile failed").pipe(
          Effect.annotateLogs({ workflow: key, error: String(cause) }),
          Effect.andThen(queue.addRateLimited(key))
        )
      ),
      Effect.withSpan("Controller.reconcile", { attributes: { workflow: key } })
    )


  const sweepOrphans: Effect.Effect<number> = Effect.gen(function*() {
    yield* workflows.synced
    let deleted = 0
    for (const view of yield* pool.all) {
      if (!syncedViews.has(view)) continue
      const pods = yield* view.pods.list()
      for (const pod of pods) {
        const owner = ownerOfPod(pod, config.cluster)
        if (!owner || pod.metadata.deletionTimestamp) continue
        // A namespaced controller only sees its namespace's workflows: others' pods are not orphans.
        if (config.namespace !== undefined && owner.namespace !== config.namespace) continue
        const wf = yield* workflows.get(owner.namespace, owner.name)
        if (proofKey === undefined) {
          if (Option.isSome(wf)) continue
        } else {
          // Labels can be written by anyone who may patch a pod: only a pod this controller made
          // (its proof, for the workflow uid its executor environment names, which cannot change)
          // is swept, once no workflow of that uid exists.
          // (a pod's spec cannot change after its creation)
          const uid = executorEnvOf(pod)["ARGO_WORKFLOW_UID"]
          const nodeId = pod.metadata.annotations?.["workflows.argoproj.io/node-id"] ?? ""
          if (uid === undefined || !proofKey.verify(pod, view.name, uid, nodeId)) continue
          if (Option.isSome(wf) && wf.value.metadata.uid === uid) continue
        }
        const result = yield* bounded(
          view.client.delete("pods", pod.metadata.namespace, pod.metadata.name!, { uid: pod.metadata.uid! }),
          { cluster: view.name, verb: "delete", resource: "pods", namespace: pod.metadata.namespace, name: pod.metadata.name }
        ).pipe(Effect.result)
        if (result._tag === "Success") {
          deleted++
          yield* Effect.logInfo("deleted orphan pod").pipe(
            Effect.annotateLogs({ cluster: view.name, namespace: pod.metadata.namespace ?? "", pod: pod.metadata.name ?? "", workflow: workflowKey(owner) })
          )
        }
      }
    }
    return deleted
  })

  const resync = Effect.gen(function*() {
    for (const wf of yield* workflows.list()) {
      yield* queue.add(workflowKey({ namespace: wf.metadata.namespace!, name: wf.metadata.name! }))
    }
  })

  // Wire the triggers. Each is a supervised component; one that restarts queues every workflow
  // again (changes may have come while it was down).
  let triggerRuns = 0
  const afterRestart = Effect.suspend(() => triggerRuns++ < 2 ? Effect.void : resync)
  yield* supervisor.supervise("workflow-trigger", Effect.andThen(afterRestart, workflows.changes.pipe(
    Stream.runForEach((change) => queue.add(workflowKey({ namespace: change.object.metadata.namespace!, name: change.object.metadata.name! })))
  )))
  yield* supervisor.supervise("cluster-trigger", Effect.andThen(afterRestart, pool.changes.pipe(
    Stream.runForEach((change) => {
      if (change.kind === "pods") {
        const owner = ownerOfPod(change.object, config.cluster)
        return owner ? queue.add(workflowKey(owner)) : Effect.void
      }
      // A task result names its workflow; it lives in the pod's namespace, which may not be the workflow's.
      const name = change.object.metadata.labels?.["workflows.argoproj.io/workflow"]
      if (!name) return Effect.void
      return Effect.gen(function*() {
        const candidates = yield* workflows.byIndex(byName, name)
        // Kept only for a workflow that exists: anyone may write results naming made-up owners.
        const owner = change.object.metadata.ownerReferences?.find((o) => o.kind === "Workflow")?.uid
        if (owner !== undefined && candidates.some((wf) => wf.metadata.uid === owner)) retainReported(change.cluster, change.object)
        for (const wf of candidates) yield* queue.add(workflowKey({ namespace: wf.metadata.namespace!, name }))
      })
    })
  )))

  // Cache readiness per cluster, also for clusters added later.
  const trackAll = Effect.gen(function*() {
    for (const view of yield* pool.all) yield* trackView(view)
  })
  yield* trackAll
  yield* supervisor.supervise("cache-tracker", trackAll.pipe(Effect.repeat(Schedule.spaced(timing.clusterCheck ?? "2 seconds"))))

  yield* workflows.synced
  yield* queue.run(options.workers ?? 32, reconcileKey).pipe(Scope.provide(scope))

  yield* resync
  yield* supervisor.supervise("resync", resync.pipe(Effect.delay(options.resync ?? "20 minutes"), Effect.forever))
  yield* supervisor.supervise("orphan-sweep", sweepOrphans.pipe(
    Effect.delay(Duration.fromInputUnsafe(timing.firstOrphanSweep ?? "5 seconds")),
    Effect.repeat(Schedule.spaced(options.orphanSweepInterval ?? "5 minutes"))
  ))

  return Controller.of({
    config,
    pool,
    enqueue: (namespace, name) => queue.add(workflowKey({ namespace, name })),
    reconcileNow: (namespace, name) => reconcileKey(workflowKey({ namespace, name })),
    sweepOrphans,
    workflows,
    queueDepth: queue.depth,
    ignored: Effect.sync(() => ({ ...ignoredCounts })),
    supervisor
  })
})
