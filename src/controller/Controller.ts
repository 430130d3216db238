/**
 * The controller: wiring of small parts, as client-go's controllers are. Informers with indexes
 * (`WorkflowCache`, the `ClusterPool`'s pod and task result caches) feed a deduplicating work
 * queue (`WorkQueue`) with per-key exponential backoff; workers take keys from it and run one
 * reconcile each (`Reconciler`, which drives the pure engine and applies its decisions through
 * `PodCreator`, `StatusWriter` and `WorkflowCleanup`, reading through `Observation`).
 *
 * Triggers: workflow changes, pod and task result changes in every cluster (mapped back to their
 * workflow by labels), the engine's requeueAfter, and a periodic resync. A periodic orphan sweep
 * (`OrphanSweeper`) deletes pods of this cluster's workflows that no longer exist. CronWorkflows
 * are scheduled by `CronWorkflows`, in the same scope (only the leader runs them). Every
 * long-running fibre is a supervised component (`Supervisor`), so `/readyz` sees one that stops.
 *
 * Never: create a pod outside the workflow's own cluster+namespace with the controller's
 * identity (`PodCreator`); reconcile a workflow against a cluster whose cache has not been filled
 * yet (`ClusterReadiness`: absence of a pod would be misread as its deletion).
 */
import { Context, Effect, Layer, PubSub, Schedule, Scope } from "effect"
import { ClusterPool } from "../kube/ClusterPool.js"
import type { Informer } from "../kube/cache/Informer.js"
import { KubeClient } from "../kube/api/KubeClient.js"
import { UserClients } from "../kube/UserClients.js"
import * as Instruments from "../observability/Metrics.js"
import { Supervisor } from "../runtime/Supervisor.js"
import { labelWorkflow } from "../util/argoKeys.js"
import { byName, byWorkflow, byWorkflowName, podsByWorkflow, taskResultsByWorkflowName } from "./CacheIndexes.js"
import { ClusterReadiness } from "./ClusterReadiness.js"
import { CronWorkflows } from "./CronWorkflows.js"
import type { ControllerConfig } from "./ControllerConfig.js"
import { type ControllerOptions, ControllerSettings, expectationTtlMs, timingOf } from "./ControllerSettings.js"
import { Expectations } from "./Expectations.js"
import { Observation } from "./Observation.js"
import { podChangeOwners, workflowKey } from "./observe.js"
import { OrphanSweeper } from "./OrphanSweeper.js"
import { PodCreator } from "./PodCreator.js"
import { PodOwnership } from "./PodOwnership.js"
import { Reconciler } from "./Reconciler.js"
import { significantChange } from "./significantChange.js"
import { recordingClient, StatusWriter } from "./StatusWriter.js"
import { WorkflowCache } from "./WorkflowCache.js"
import { WorkflowCleanup } from "./WorkflowCleanup.js"
import * as WorkQueue from "./WorkQueue.js"

export { cacheWaitPrefix } from "./ClusterReadiness.js"
export { configMapName, type ControllerOptions, ControllerSettings, type ControllerTiming } from "./ControllerSettings.js"
export { ttlSecondsFor } from "./Reconciler.js"

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
  /**
   * The controller wired from its parts in the context (`partsLayer`): ControllerSettings,
   * Supervisor, ClusterPool, UserClients, WorkQueue, Expectations, KubeClient, KubeConnector.
   * It starts in the layer's scope and runs until that scope closes.
   */
  static readonly layerFromParts = Layer.effect(Controller, Effect.suspend(() => make)).pipe(
    Layer.provide(Layer.suspend(() => servicesLayer))
  )
  /**
   * The controller and its parts from `options` (needs a KubeConnector). Fresh: layers are shared
   * by reference within one build, and two controllers built together must not share parts.
   */
  static readonly layer = (options: ControllerOptions) =>
    Layer.fresh(Controller.layerFromParts).pipe(Layer.provide(partsLayer(options)))
  /** Starts the controller in the current scope (builds `layer(options)`); it runs until the scope closes. */
  static readonly make = (options: ControllerOptions) =>
    Layer.build(Controller.layer(options)).pipe(Effect.map((context) => Context.get(context, Controller)))
}

/** The cluster pool the settings call for: this cluster's name, managed namespace, instance, the controller's indexes. */
const poolLayer = Layer.unwrap(Effect.gen(function*() {
  const { config, options } = yield* ControllerSettings
  const supervisor = yield* Supervisor
  return ClusterPool.layer({
    supervisor,
    localCluster: config.cluster,
    localSpec: options.localSpec,
    localClient: options.localClient,
    systemNamespace: timingOf(options).systemNamespace,
    ...(config.namespace ? { managedNamespace: config.namespace } : {}),
    ...(config.instanceId ? { instanceId: config.instanceId } : {}),
    ...(options.watch ? { watch: options.watch } : {}),
    indexers: {
      pods: { [byWorkflow]: podsByWorkflow(config.cluster) },
      workflowtaskresults: { [byWorkflowName]: taskResultsByWorkflowName }
    }
  })
}))

/**
 * Everything the controller is wired from, built from `options`: settings, supervisor, cluster
 * pool, user clients, work queue and expectations (needs a KubeConnector). Embedders may build
 * their own from the parts.
 */
export const partsLayer = (options: ControllerOptions) => {
  const settings = ControllerSettings.layer(options)
  const base = Layer.mergeAll(
    settings,
    Layer.fresh(Supervisor.layer),
    Layer.succeed(KubeClient, options.localClient),
    WorkQueue.WorkQueue.layer({
      onTake: (_key, waitedMs) => Instruments.recordQueueLatency(waitedMs),
      onDone: (_key, workedMs) => Instruments.recordWorkDuration(workedMs)
    }),
    Expectations.layer({ ttlMillis: expectationTtlMs })
  )
  return Layer.mergeAll(Layer.fresh(poolLayer), Layer.fresh(UserClients.layer)).pipe(Layer.provideMerge(base))
}

/**
 * The controller's own services over the parts, built one after the other (each from those
 * before it): the proof key is read and the workflow watch opened before anything reconciles,
 * and closing the scope stops them in the reverse order (the finalizer leases after the workers).
 */
const servicesLayer = Reconciler.layer.pipe(
  Layer.provideMerge(CronWorkflows.layer),
  Layer.provideMerge(OrphanSweeper.layer),
  // its finalizer Updates are recorded: a reconcile's stand-in copy is never older than them
  Layer.provideMerge(WorkflowCleanup.layer.pipe(Layer.provide(recordingClient))),
  Layer.provideMerge(PodCreator.layer),
  Layer.provideMerge(StatusWriter.layer),
  Layer.provideMerge(Observation.layer),
  Layer.provideMerge(ClusterReadiness.layer),
  Layer.provideMerge(WorkflowCache.layer),
  Layer.provideMerge(PodOwnership.layer)
)

const make = Effect.gen(function*() {
  const { options, config } = yield* ControllerSettings
  const timing = timingOf(options)
  const scope = yield* Effect.scope
  const supervisor = yield* Supervisor
  const pool = yield* ClusterPool
  const queue = yield* WorkQueue.WorkQueue
  const workflows = yield* WorkflowCache
  const readiness = yield* ClusterReadiness
  const observation = yield* Observation
  const sweeper = yield* OrphanSweeper
  const { countRunning, reconcile } = yield* Reconciler

  const resync = Effect.gen(function*() {
    for (const wf of yield* workflows.list()) {
      yield* queue.add(workflowKey({ namespace: wf.metadata.namespace!, name: wf.metadata.name! }))
    }
  })

  // Wire the triggers. Each is a supervised component of this controller's scope; one that restarts
  // subscribes first, then queues every workflow again (changes may have come while it was down).
  const trigger = <A>(
    name: string,
    subscribe: Effect.Effect<PubSub.Subscription<A>, never, Scope.Scope>,
    handle: (item: A) => Effect.Effect<void>
  ) => {
    let runs = 0
    return supervisor.superviseScoped(name, Effect.scoped(Effect.gen(function*() {
      const subscription = yield* subscribe
      if (runs++ > 0) yield* resync
      return yield* Effect.forever(Effect.flatMap(PubSub.takeAll(subscription), (items) => Effect.forEach(items, handle, { discard: true })))
    })))
  }
  yield* trigger("workflow-trigger", workflows.subscribe, (change) =>
    queue.add(workflowKey({ namespace: change.object.metadata.namespace!, name: change.object.metadata.name! })))
  yield* trigger("cluster-trigger", pool.subscribe, (change) => {
    // An update that changes nothing a reconcile reads wakes no workflow (significantChange.ts).
    const significant = significantChange(change)
    if (change.kind === "pods") {
      if (!significant) return Effect.void
      return Effect.forEach(podChangeOwners(change, config.cluster), (owner) => queue.add(workflowKey(owner)), { discard: true })
    }
    // A task result names its workflow; it lives in the pod's namespace, which may not be the workflow's.
    const name = change.object.metadata.labels?.[labelWorkflow]
    if (!name) return Effect.void
    return Effect.gen(function*() {
      const candidates = yield* workflows.byIndex(byName, name)
      // Kept only for a workflow that exists: anyone may write results naming made-up owners.
      const owner = change.object.metadata.ownerReferences?.find((o) => o.kind === "Workflow")?.uid
      if (owner !== undefined && candidates.some((wf) => wf.metadata.uid === owner)) yield* observation.retainReported(change.cluster, change.object)
      if (!significant) return
      for (const wf of candidates) yield* queue.add(workflowKey({ namespace: wf.metadata.namespace!, name }))
    })
  })

  // Cache readiness per cluster, also for clusters added later.
  yield* readiness.trackAll
  yield* supervisor.superviseScoped("cache-tracker", readiness.trackAll.pipe(Effect.repeat(Schedule.spaced(timing.clusterCheck))))

  yield* workflows.synced
  // parallelism: the workflows already running count before any waiting one is taken
  yield* countRunning(yield* workflows.list())
  yield* queue.run(timing.workers, reconcile).pipe(Scope.provide(scope))

  yield* resync
  yield* supervisor.superviseScoped("resync", resync.pipe(Effect.delay(timing.resync), Effect.forever))
  yield* supervisor.superviseScoped("orphan-sweep", sweeper.sweep.pipe(
    Effect.delay(timing.firstOrphanSweep),
    Effect.repeat(Schedule.spaced(timing.orphanSweepInterval))
  ))

  return Controller.of({
    config,
    pool,
    enqueue: (namespace, name) => queue.add(workflowKey({ namespace, name })),
    reconcileNow: (namespace, name) => reconcile(workflowKey({ namespace, name })),
    sweepOrphans: sweeper.sweep,
    workflows,
    queueDepth: queue.depth,
    ignored: observation.ignored,
    supervisor
  })
})
