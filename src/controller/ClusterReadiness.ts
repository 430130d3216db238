/**
 * Whether the clusters a workflow may have pods in can be trusted for it. Never reconcile a
 * workflow against a cluster whose pod cache has not been filled yet: the absence of a pod would
 * be misread as its deletion (`cachesReady`). Never let go of a workflow's pods (its finalizer)
 * while a watch has stopped following its cluster: a pod created meanwhile would be left behind
 * (`watchesLive`).
 *
 * Readiness is tracked per view, not per cluster name: a cluster rebuilt after an
 * argo-kubeconfig change gets a new view whose caches start empty, and must not pass for synced
 * because its predecessor was.
 */
import { Context, Effect, Layer, Option } from "effect"
import { ClusterPool, type ClusterView } from "../kube/ClusterPool.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { ControllerSettings } from "./ControllerSettings.js"
import { storedNodes } from "./PodIdentity.js"

/** Start of the workflow message set while a cluster it needs cannot be watched. */
export const cacheWaitPrefix = "waiting for cluster cache:"

export class ClusterReadiness extends Context.Service<ClusterReadiness, {
  /** Starts waiting for a view's caches to fill (once per view); returns at once. */
  readonly track: (view: ClusterView) => Effect.Effect<void>
  /** Starts tracking every cluster of the pool, also those added since the last call. */
  readonly trackAll: Effect.Effect<void>
  /** True once the view's pod and task result caches have been filled. */
  readonly synced: (view: ClusterView) => boolean
  /** True when every configured cluster the workflow names has a filled cache (tracking those that do not). */
  readonly cachesReady: (wf: KubeObject) => Effect.Effect<boolean>
  /**
   * True when the watches of every cluster the workflow may have pods in are connected now (not
   * only filled once).
   */
  readonly watchesLive: (wf: KubeObject) => Effect.Effect<boolean>
  /** Why a cluster the workflow needs has no usable cache, when it failed (not merely connecting). */
  readonly cacheProblem: (wf: KubeObject) => Effect.Effect<string | undefined>
}>()("flotilla/controller/ClusterReadiness") {
  /** The waits it forks live as long as the layer. */
  static readonly layer = Layer.effect(ClusterReadiness, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const { config } = yield* ControllerSettings
  const pool = yield* ClusterPool
  const scope = yield* Effect.scope

  const syncedViews = new WeakSet<ClusterView>()
  const trackedViews = new WeakSet<ClusterView>()
  const track = (view: ClusterView): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (trackedViews.has(view)) return Effect.void
      trackedViews.add(view)
      return Effect.andThen(view.pods.synced, view.taskResults.synced).pipe(
        Effect.andThen(Effect.sync(() => void syncedViews.add(view))),
        Effect.forkIn(scope),
        Effect.asVoid
      )
    })

  /** Clusters a workflow's templates name (a superset of where its pods can be). */
  const clustersNamed = (wf: KubeObject): ReadonlySet<string> => {
    const spec = (wf["spec"] ?? {}) as { templates?: ReadonlyArray<{ cluster?: unknown }>; templateDefaults?: { cluster?: unknown } }
    const names = new Set<string>([config.cluster])
    for (const t of spec.templates ?? []) if (typeof t?.cluster === "string" && t.cluster) names.add(t.cluster)
    if (typeof spec.templateDefaults?.cluster === "string") names.add(spec.templateDefaults.cluster)
    return names
  }

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

  const cachesReady = (wf: KubeObject) =>
    Effect.gen(function*() {
      let ready = true
      for (const name of clustersNamed(wf)) {
        const view = yield* pool.get(name).pipe(Effect.option)
        if (Option.isSome(view) && !syncedViews.has(view.value)) {
          yield* track(view.value)
          ready = false
        }
      }
      return ready
    })

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

  const trackAll = Effect.gen(function*() {
    for (const view of yield* pool.all) yield* track(view)
  })

  return ClusterReadiness.of({
    track,
    trackAll,
    synced: (view) => syncedViews.has(view),
    cachesReady,
    watchesLive,
    cacheProblem
  })
})
