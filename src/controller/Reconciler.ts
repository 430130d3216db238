/**
 * One reconcile of one workflow, Argo's operator split: the decisions are the pure engine's
 * (`workflow/engine`), this is the plumbing around it. For a key taken from the work queue:
 *
 *   load (informer cache) -> engine(workflow, observations, now) -> apply:
 *     create pods (`PodCreator`),
 *     write the status (`StatusWriter`, one Update, as Argo does),
 *     then delete / label pods (only after the status that records their completion is stored,
 *     so a restart never re-creates a finished pod),
 *     then the finalizer (`WorkflowCleanup`) and `spec.ttlStrategy` of a completed workflow.
 *
 * Before the engine runs: a gone workflow's state is dropped; a copy older than the controller's
 * own last write waits; a deleted one's finalizer is released; one whose clusters' caches are not
 * filled waits (and says why once a cluster failed); one that `parallelism` holds back stays
 * Pending (`Throttler`); one that may own pods elsewhere takes up its finalizer lease.
 *
 * Outcomes follow client-go: a failed round comes back after the key's growing backoff, a good
 * one forgets it.
 */
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import { isTransient } from "../kube/api/KubeError.js"
import { ClusterPool } from "../kube/ClusterPool.js"
import { KubeClient } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import * as CustomMetrics from "../observability/CustomMetrics.js"
import * as Instruments from "../observability/Metrics.js"
import { labelCompleted } from "../util/argoKeys.js"
import type { CacheRead } from "../workflow/engine/syncTypes.js"
import type { EngineAction } from "../workflow/engine/contract.js"
import type { TemplateLookup } from "../workflow/engine/contract.js"
import { execWorkflow, holderRefsIn, needsFinalizer, reconcile } from "../workflow/engine/index.js"
import { artifactGCPlan, finalizerArtifactGC } from "../workflow/engine/artifactGC.js"
import { statusNodes } from "../workflow/model/compressedNodes.js"
import type { NodeStatus } from "../workflow/model/Workflow.js"
import { ArtifactGC } from "./ArtifactGC.js"
import { decodeOnce } from "../workflow/engine/decodeOnce.js"
import { decodeWorkflow } from "../workflow/model/decode.js"
import { cacheWaitPrefix, ClusterReadiness } from "./ClusterReadiness.js"
import { ControllerSettings, timingOf } from "./ControllerSettings.js"
import { Memoization } from "./Memoization.js"
import { Expectations } from "./Expectations.js"
import { HttpTemplates } from "./HttpTemplates.js"
import { Observation, type OwnPod } from "./Observation.js"
import { parseWorkflowKey, workflowKey } from "./observe.js"
import { PodCreator } from "./PodCreator.js"
import { recordedPod, storedNodes } from "./PodIdentity.js"
import { PodOwnership } from "./PodOwnership.js"
import { boundedBy } from "./RequestTimeout.js"
import { recordingClient, StatusWriter } from "./StatusWriter.js"
import { semaphoreRecheck, Synchronization } from "./Synchronization.js"
import { TemplateCache } from "./TemplateCache.js"
import * as Throttler from "./Throttler.js"
import { hasFinalizer, isCompleted, isCompletedPhase, WorkflowCleanup } from "./WorkflowCleanup.js"
import { WorkflowCache } from "./WorkflowCache.js"
import { WorkQueue } from "./WorkQueue.js"

/** Argo's ttlStrategy: success/failure-specific seconds win over secondsAfterCompletion. */
export const ttlSecondsFor = (wf: KubeObject, phase: string): number | undefined => {
  const ttl = ((wf["spec"] ?? {}) as { ttlStrategy?: Record<string, unknown> }).ttlStrategy
  if (!ttl) return undefined
  const num = (v: unknown) => (typeof v === "number" && v >= 0 ? v : undefined)
  const specific = phase === "Succeeded" ? num(ttl["secondsAfterSuccess"]) : num(ttl["secondsAfterFailure"])
  return specific ?? num(ttl["secondsAfterCompletion"])
}

/**
 * The workflow as the cluster caches' readiness reads it (the clusters its templates name): with
 * the templates of the (Cluster)WorkflowTemplates it references beside its own.
 */
const withReferencedTemplates = (wf: KubeObject, templates: TemplateLookup | undefined): KubeObject => {
  if (templates === undefined) return wf
  const spec = (wf.spec ?? {}) as { templates?: ReadonlyArray<unknown> }
  const referenced = [...templates.workflowTemplates.values(), ...templates.clusterWorkflowTemplates.values()]
    .flatMap((o) => ((o.spec ?? {}) as { templates?: ReadonlyArray<unknown> }).templates ?? [])
  return referenced.length === 0 ? wf : { ...wf, spec: { ...spec, templates: [...(spec.templates ?? []), ...referenced] } }
}

/** The service account the workflow runs as (`spec.serviceAccountName`), if it names one. */
const serviceAccountOf = (wf: KubeObject): string | undefined => {
  const name = ((wf.spec ?? {}) as { serviceAccountName?: unknown }).serviceAccountName
  return typeof name === "string" && name !== "" ? name : undefined
}

/** How long a workflow waits for the template caches before its message says so. */
const templateWaitMessageAfterMs = 30_000

export class Reconciler extends Context.Service<Reconciler, {
  /** Reconciles the workflow of `key` once; failures requeue the key (never fails). */
  readonly reconcile: (key: string) => Effect.Effect<void>
  /**
   * Counts the started, unfinished workflows as running (parallelism): called once after the
   * workflow cache is filled, before the workers start, as upstream's throttler Init.
   */
  readonly countRunning: (workflows: ReadonlyArray<KubeObject>) => Effect.Effect<void>
}>()("flotilla/controller/Reconciler") {
  static readonly layer = Layer.effect(Reconciler, Effect.suspend(() => make)).pipe(
    Layer.provide(Layer.mergeAll(
      TemplateCache.layer,
      Synchronization.layer,
      Memoization.layer,
      HttpTemplates.layer,
      // its Updates of the workflow are recorded: a reconcile's stand-in copy is never older than them
      ArtifactGC.layer.pipe(Layer.provide(recordingClient))
    ))
  )
}

const make = Effect.gen(function*() {
  const { config, engineConfig, options } = yield* ControllerSettings
  const timing = timingOf(options)
  const bounded = boundedBy(timing.requestTimeout)
  const local = yield* KubeClient
  const pool = yield* ClusterPool
  const queue = yield* WorkQueue
  const workflows = yield* WorkflowCache
  const expectations = yield* Expectations
  const readiness = yield* ClusterReadiness
  const ownership = yield* PodOwnership
  const observation = yield* Observation
  const statusWriter = yield* StatusWriter
  const creator = yield* PodCreator
  const cleanup = yield* WorkflowCleanup
  const templateCache = yield* TemplateCache
  const synchronization = yield* Synchronization
  const memoization = yield* Memoization
  const httpTemplates = yield* HttpTemplates
  const artifactGC = yield* ArtifactGC
  // metricsConfig.metricsTTL: custom metric series not updated for that long are dropped (CustomMetrics.ts)
  yield* Effect.forkScoped(CustomMetrics.expireEvery(Duration.millis(config.metricsTtlMs)))

  const throttler = Throttler.make({ parallelism: config.parallelism, namespaceParallelism: config.namespaceParallelism })
  const started = (wf: KubeObject) => ((wf["status"] ?? {}) as { phase?: unknown }).phase === "Running" || Object.keys(storedNodes(wf)).length > 0
  const candidate = (wf: KubeObject, key: string): Throttler.Candidate => {
    const spec = (wf["spec"] ?? {}) as { priority?: unknown }
    return {
      key,
      namespace: wf.metadata.namespace ?? "",
      priority: typeof spec.priority === "number" ? spec.priority : 0,
      created: Date.parse(wf.metadata.creationTimestamp ?? "") || 0,
      started: started(wf)
    }
  }
  /** Whether the workflow may run now; the waiting ones a start leaves room for are looked at again. */
  const admitted = (wf: KubeObject, key: string) =>
    Effect.suspend(() => {
      const admission = throttler.admit(candidate(wf, key))
      return Effect.as(Effect.forEach(admission.wake, queue.add, { discard: true }), admission.admitted)
    })
  /** After a restart, before any workflow is taken: every started, unfinished workflow counts as running. */
  const countRunning = (all: ReadonlyArray<KubeObject>) =>
    // the locks they hold, too (upstream's sync manager Initialize)
    Effect.andThen(synchronization.restore(all), Effect.sync(() => {
      for (const wf of all) {
        if (!isCompleted(wf) && !wf.metadata.deletionTimestamp && started(wf)) {
          throttler.admit(candidate(wf, workflowKey({ namespace: wf.metadata.namespace!, name: wf.metadata.name! })))
        }
      }
    }))
  /** Frees a running place; the waiting workflows that may start now are looked at again. */
  const releaseSlot = (key: string) => Effect.forEach(throttler.release(key), queue.add, { discard: true })

  /** Since when a workflow has waited for the template caches, by key. */
  const templateWaitSince = new Map<string, number>()

  /** What was kept for a workflow uid (pods expected, task results reported): the workflow of that uid is gone. */
  const forgetUid = (uid: string) => Effect.andThen(observation.forgetReported(uid), expectations.forget(uid))

  /** The workflow is gone: drop what was kept for it. */
  const forgetWorkflow = (key: string) =>
    Effect.gen(function*() {
      const uid = ownership.lastUid(key)
      if (uid !== undefined) yield* forgetUid(uid)
      yield* ownership.forgetUid(key)
      yield* statusWriter.forget(key)
    })

  /** Pods (by uid) this controller labelled completed, newest last; bounded, oldest first out. */
  const labelledPods = new Set<string>()
  const rememberLabelled = (uid: string) => {
    if (labelledPods.size >= 10_000) labelledPods.delete(labelledPods.values().next().value!)
    labelledPods.add(uid)
  }

  /** Deletes and labels the node's own pods the engine is done with (by uid: a pod that took the name meanwhile is not touched). */
  const applyPodActions = (key: string, actions: ReadonlyArray<EngineAction>, accepted: ReadonlyMap<string, OwnPod>) =>
    Effect.gen(function*() {
      // Only the node's own pod, by its uid: an observation the controller made up (a failed create,
      // a pod not seen yet) names a pod that may be anyone's.
      const ownPod = (action: { readonly nodeId: string; readonly cluster: string; readonly namespace: string; readonly podName: string }) => {
        const own = accepted.get(action.nodeId)
        return own !== undefined && own.cluster === action.cluster && own.namespace === action.namespace && own.name === action.podName &&
            own.uid !== ""
          ? own
          : undefined
      }
      for (const action of actions) {
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
                  Effect.andThen(queue.addAfter(key, timing.retry))
                ))
          )
        } else if (action._tag === "LabelPodCompleted") {
          // Remote identities only have list/watch/delete: label only what we own locally.
          if (action.cluster !== config.cluster) continue
          const own = ownPod(action)
          if (own === undefined) continue
          // labelled already by this controller (the pod cache may not show it yet: no second patch)
          if (labelledPods.has(own.uid)) continue
          const pod = yield* pool.local.pods.get(action.namespace, action.podName)
          if (Option.isNone(pod) || pod.value.metadata.uid !== own.uid || pod.value.metadata.labels?.[labelCompleted] === "true") continue
          // the uid makes the patch fail on any other pod that took the name meanwhile
          yield* local.patch("pods", action.namespace, action.podName, {
            metadata: { uid: own.uid, labels: { [labelCompleted]: "true" } }
          }).pipe(
            Effect.tap(() => Effect.sync(() => rememberLabelled(own.uid))),
            Effect.catchTag("KubeError", () => Effect.void)
          )
        }
      }
    })

  const reconcileKey = (key: string): Effect.Effect<void> =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const found = yield* workflows.get(ref.namespace, ref.name)
      if (Option.isNone(found)) {
        yield* releaseSlot(key)
        yield* synchronization.forget(key)
        yield* cleanup.end(key)
        yield* forgetWorkflow(key)
        yield* httpTemplates.forget(key)
        templateWaitSince.delete(key)
        return
      }
      let wf = found.value
      if (wf.metadata.uid) {
        // A workflow deleted and made again under the same name between two rounds: the old one's
        // answers and locks are keyed by name (and its node IDs are the new one's), so drop them,
        // and what was kept for its uid. The uid a key had last is PodOwnership's (it also tells a
        // gone workflow's pods from a successor's).
        const before = ownership.lastUid(key)
        if (before !== undefined && before !== wf.metadata.uid) {
          yield* synchronization.forget(key)
          yield* httpTemplates.forget(key)
          yield* forgetUid(before)
        }
        yield* ownership.rememberUid(key, wf.metadata.uid)
      }
      // A copy older than this controller's own last Update of the workflow (the watch has not
      // delivered it yet) would have the engine redo what that write recorded: the copy the write
      // made stands in for it (waiting for the write to come back cost a pod's completion that wait).
      wf = yield* statusWriter.latest(key, wf)

      if (wf.metadata.deletionTimestamp) {
        yield* releaseSlot(key)
        yield* synchronization.forget(key)
        // artifact GC's OnWorkflowDeletion (and a completion strategy not yet done) holds the deletion (ArtifactGC.ts)
        if ((wf.metadata.finalizers ?? []).includes(finalizerArtifactGC)) {
          const decodedWf = decodeWorkflow(wf)
          const status = (wf["status"] ?? {}) as Record<string, unknown>
          const plan = decodedWf.ok
            ? artifactGCPlan(decodedWf.value, status, statusNodes(status) as Record<string, NodeStatus>, { completed: isCompleted(wf), deleting: true })
            : undefined
          const gcAfter = decodedWf.ok ? yield* artifactGC.collect(key, decodedWf.value, plan, wf) : undefined
          if (gcAfter !== undefined) yield* queue.addAfter(key, Duration.millis(gcAfter))
        }
        if (hasFinalizer(wf)) {
          // The lease may not be held (e.g. deleted while no controller ran): take it up, then end it.
          // If that fails, nothing else would bring this workflow back until the resync: retry.
          const held = yield* cleanup.hold(key).pipe(Effect.result)
          if (held._tag === "Failure") {
            yield* Effect.logWarning("cannot take up finalizer of deleted workflow").pipe(
              Effect.annotateLogs({ workflow: key, error: String(held.failure) })
            )
            yield* queue.addAfter(key, timing.retry)
            return
          }
          yield* cleanup.end(key)
        }
        return
      }

      // The (Cluster)WorkflowTemplates it names: until their caches are filled, one not seen may yet exist.
      const namesTemplates = holderRefsIn(wf.spec).length > 0 ||
        holderRefsIn((wf["status"] as { storedWorkflowTemplateSpec?: unknown } | undefined)?.storedWorkflowTemplateSpec).length > 0
      if (namesTemplates && !(yield* templateCache.ready)) {
        // Say why once it lasts (the controller may not be allowed to list them, or their CRD is missing).
        const nowMs = yield* Clock.currentTimeMillis
        const since = templateWaitSince.get(key) ?? nowMs
        templateWaitSince.set(key, since)
        if (nowMs - since >= templateWaitMessageAfterMs) {
          yield* statusWriter.showMessage(wf, "waiting for the controller's WorkflowTemplate and ClusterWorkflowTemplate caches to fill (can it list them? are their CRDs installed?)")
        }
        yield* queue.addAfter(key, timing.cacheWait)
        return
      }
      templateWaitSince.delete(key)
      const templates = namesTemplates ? yield* templateCache.lookupFor(wf) : undefined

      if (!(yield* readiness.cachesReady(withReferencedTemplates(wf, templates)))) {
        // Say why in the workflow's message (it would otherwise sit there with no status at all),
        // once a cluster it needs has actually failed rather than just being slow to list.
        const why = yield* readiness.cacheProblem(wf)
        if (why !== undefined) yield* statusWriter.showMessage(wf, why)
        yield* queue.addAfter(key, timing.cacheWait)
        return
      }

      // parallelism / namespaceParallelism: one that may not start yet waits, Pending, as upstream
      if (isCompleted(wf)) yield* releaseSlot(key)
      else if (!(yield* admitted(wf, key))) {
        yield* statusWriter.postpone(wf)
        return
      }

      const exec = execWorkflow(wf, templates)
      // decoded once per copy, shared with the engine's own decode of it (decodeOnce.ts)
      const decoded = decodeOnce(exec.ok ? exec.workflow : wf)
      // Once completed (and released) a workflow needs no finalizer any more: holding one again would
      // add and remove it on every reconcile.
      if (decoded.ok && ((needsFinalizer(decoded.value, config.cluster, templates) && !isCompleted(wf)) || hasFinalizer(wf))) {
        const held = yield* cleanup.hold(key).pipe(Effect.result)
        if (held._tag === "Failure") {
          yield* Effect.logWarning("cannot add finalizer").pipe(Effect.annotateLogs({ workflow: key, error: String(held.failure) }))
          yield* queue.addAfter(key, timing.retry)
          return
        }
        if (!hasFinalizer(wf)) return // the finalizer write triggers the next reconcile
      }

      const now = yield* Clock.currentTimeMillis
      const wfUid = wf.metadata.uid ?? ""
      // Records the stored status already holds need no overlay any more.
      const stored = storedNodes(wf)
      const recordOf = yield* expectations.settleRecords(wfUid, (nodeId) => recordedPod(stored, nodeId))
      const { accepted, pods, taskResults } = yield* observation.observe(key, wf, recordOf, now)

      // A message left by the cache wait or the parallelism wait above is not the engine's: drop it
      // before it carries it over (upstream clears it when the workflow starts running).
      const previous = wf["status"] as Record<string, unknown> | undefined
      const engineInput = typeof previous?.["message"] === "string" &&
          (previous["message"].startsWith(cacheWaitPrefix) || previous["message"] === Throttler.postponedMessage)
        ? { ...wf, status: Object.fromEntries(Object.entries(previous).filter(([k]) => k !== "message")) }
        : wf
      // The engine runs against the controller's locks (Synchronization); the semaphore limits,
      // memoization caches and parameters' ConfigMaps it asks for are read and it runs again (a few times at most).
      let limits: ReadonlyMap<string, number | { readonly error: string }> = new Map()
      let caches: ReadonlyMap<string, CacheRead> = new Map()
      let configMaps: ReadonlyMap<string, CacheRead> = new Map()
      let controllerConfigMaps: ReadonlyMap<string, CacheRead> = new Map()
      const runEngine = () =>
        synchronization.run(key, limits, (sync) =>
          reconcile({ workflow: engineInput, pods, taskResults, now, config: engineConfig, ...(templates ? { templates } : {}), sync, memo: { caches }, configMaps, controllerConfigMaps, httpResults: httpTemplates.results(key) }))
      let output = yield* runEngine()
      for (let pass = 0; pass < 3; pass++) {
        const needLimits = (output.sync?.needLimits ?? []).filter((s) => !limits.has(s.lock))
        const needCaches = (output.memo?.needCaches ?? []).filter((c) => !caches.has(c))
        const needConfigMaps = (output.needConfigMaps ?? []).filter((c) => !configMaps.has(c))
        const needControllerConfigMaps = (output.needControllerConfigMaps ?? []).filter((c) => !controllerConfigMaps.has(c))
        if (needLimits.length === 0 && needCaches.length === 0 && needConfigMaps.length === 0 && needControllerConfigMaps.length === 0) break
        if (needLimits.length > 0) limits = new Map([...limits, ...(yield* synchronization.readLimits(key, needLimits))])
        if (needCaches.length > 0) caches = new Map([...caches, ...(yield* memoization.read(ref.namespace, needCaches))])
        // parameters' ConfigMaps are read as the caches are: by name in the workflow's namespace (found or not)
        if (needConfigMaps.length > 0) configMaps = new Map([...configMaps, ...(yield* memoization.read(ref.namespace, needConfigMaps))])
        // the artifact repository's ConfigMap in the controller's namespace: that namespace only, never one a workflow names
        if (needControllerConfigMaps.length > 0) {
          const controllerNamespace = engineConfig.controllerNamespace
          controllerConfigMaps = new Map([
            ...controllerConfigMaps,
            ...(controllerNamespace === undefined || controllerNamespace === ""
              ? needControllerConfigMaps.map((c) => [c, { found: false }] as const)
              : yield* memoization.read(controllerNamespace, needControllerConfigMaps))
          ])
        }
        output = yield* runEngine()
      }
      // An output that still waits for a ConfigMap decided on a value it did not have: never applied.
      const unread = [...(output.needConfigMaps ?? []), ...(output.needControllerConfigMaps ?? [])]
      if (unread.length > 0) {
        yield* Effect.logWarning("parameters' ConfigMaps still unread after the engine's passes").pipe(
          Effect.annotateLogs({ workflow: key, configMaps: unread.join(",") })
        )
        return "retry" as const
      }

      // 1. create pods (in parallel, bounded)
      const retryCreates = yield* creator.createAll(
        key,
        wf,
        output.actions.filter((a): a is Extract<EngineAction, { _tag: "CreatePod" }> => a._tag === "CreatePod"),
        recordOf,
        now
      )

      // memoized nodes that Succeeded: their outputs are stored before the status records it
      // (a failure comes back, and the engine asks again)
      if (output.memo !== undefined && (output.memo.save.length > 0 || output.memo.hit.length > 0)) {
        const stored = yield* memoization.apply(ref.namespace, output.memo, now).pipe(Effect.result)
        if (stored._tag === "Failure") {
          yield* Effect.logWarning("memoization: could not store a cache entry").pipe(
            Effect.annotateLogs({ workflow: key, error: stored.failure.message })
          )
          // A transient failure (Conflict, Timeout...) is tried again; one that will not pass (Forbidden,
          // an entry too large for its ConfigMap) must not hold the workflow for ever: it goes on uncached.
          if (isTransient(stored.failure) || stored.failure.reason === "Conflict") return "retry" as const
        }
      }

      // 2. write the status when it changed, with the records of the pods just created
      const written = yield* statusWriter.write(key, wf, output, now)
      if (written._tag === "Retry") {
        // A Conflict is no failure: a newer copy is on its way (its event requeues the key, and this
        // looks again soon in case it does not). Charging it to the key's backoff and the shared
        // token bucket made busy workflows wait minutes behind a large one's stream of conflicts.
        if (written.conflict) {
          yield* queue.addAfter(key, "100 millis")
          return "done" as const
        }
        return "retry" as const
      }
      const status = written.status
      // custom metrics, once the status that records what they count is stored (a retried round emits them again only if not)
      if (output.metrics !== undefined) yield* CustomMetrics.recordAll(output.metrics)
      // http templates' requests, once the status records their nodes: each answer requeues the workflow.
      // Their secrets are read for the service account upstream's agent pod runs as: the workflow's
      // (or its workflowTemplateRef's) serviceAccountName, else `default`.
      if (output.httpRequests !== undefined) yield* httpTemplates.request(key, output.httpRequests, queue.add, serviceAccountOf(exec.ok ? exec.workflow : wf))

      // 3. only now that the status records their completion: delete / label pods
      yield* applyPodActions(key, output.actions, accepted)

      // 3b. artifact GC: its finalizer, the GC pods of ready strategies, their results (ArtifactGC.ts)
      const gcAfter = decoded.ok && (output.artifactGC !== undefined || (wf.metadata.finalizers ?? []).includes(finalizerArtifactGC))
        ? yield* artifactGC.collect(key, decoded.value, output.artifactGC, { ...wf, status })
        : undefined

      // 4. a completed workflow whose remote pods are gone no longer needs its finalizer
      const phase = (status["phase"] as string | undefined) ?? ""
      const completed = isCompletedPhase(phase)
      if (completed) {
        yield* releaseSlot(key)
        yield* expectations.clearFailures(wfUid)
        yield* cleanup.releaseCompleted(key, wf)
      }

      // 5. spec.ttlStrategy: a completed workflow is deleted once its time is up.
      let after = retryCreates ?? output.requeueAfterMs
      if (gcAfter !== undefined) after = after === undefined ? gcAfter : Math.min(after, gcAfter)
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
      // A pod expected but never seen (deleted before its watch delivered it) is looked for again once
      // its expectation lapses; the queue keeps one wake-up per key, so this is asked for every round.
      const lapse = yield* expectations.nextLapse(wfUid)
      if (lapse !== undefined) after = after === undefined ? lapse + 1000 - now : Math.min(after, lapse + 1000 - now)
      if (after !== undefined) yield* queue.addAfter(key, Duration.millis(Math.max(after, 10)))
      // waiting for a semaphore: its limit may be raised meanwhile
      if (!completed && (output.sync?.wait ?? []).some((w) => w.locks.some((l) => l.split("/")[1] === "ConfigMap"))) {
        yield* queue.addAfter(key, semaphoreRecheck)
      }
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

  return Reconciler.of({ reconcile: reconcileKey, countRunning })
})
