/**
 * The controller's own connections: the local cluster (in-cluster identity)
 * plus one per context of `argo-kubeconfig` in the system namespace. Each
 * remote cluster lives in its own scope with its own informers (pods and
 * WorkflowTaskResults carrying this cluster's label), so a dead, hung or
 * misconfigured cluster never blocks another: its watch retries on its own
 * schedule and its state is visible (`states`).
 *
 * These connections are only ever used to list/watch/delete (and, locally, to
 * manage workflows). Pods outside the workflow's own namespace are created
 * with the workflow owner's credentials (`UserClients`), never with these.
 *
 * The pool follows the secret: when `argo-kubeconfig` changes, contexts whose
 * connection changed are rebuilt, removed ones are closed, untouched ones keep
 * running. A cluster answering 401 has its credentials reloaded (the secret is
 * re-read; exec credentials are re-run), at most once per `reloadBackoff`.
 */
import { Clock, Context, Duration, Effect, Exit, Layer, Option, PubSub, Ref, References, Schema, Scope, Semaphore, Stream } from "effect"
import { type ConnectionSpec, fingerprintOf } from "./api/Connection.js"
import { type Indexers, type Informer, Informer as Informers } from "./cache/Informer.js"
import { slimPod } from "./cache/transforms.js"
import type { KubeClientShape } from "./api/KubeClient.js"
import { KubeConnector } from "./api/KubeConnector.js"
import type { Supervisor } from "../runtime/Supervisor.js"
import type { KubeError } from "./api/KubeError.js"
import type { KubeObject, ResourceKind } from "./api/Resources.js"
import type { WatchResourceOptions, WatchState } from "./cache/Watch.js"
import { parseKubeconfig } from "../kubeconfig/Kubeconfig.js"
import { validateSystemKubeconfig } from "../kubeconfig/SystemKubeconfig.js"
import { secretValue } from "../kubeconfig/UserKubeconfig.js"
import { clusterLabelValue, inClusterName } from "../workflow/engine/targeting.js"

export const argoKubeconfigSecret = "argo-kubeconfig"

export const Labels = {
  workflow: "workflows.argoproj.io/workflow",
  cluster: "workflows.argoproj.io/cluster",
  completed: "workflows.argoproj.io/completed",
  instanceId: "workflows.argoproj.io/controller-instanceid"
} as const

export type ClusterState =
  | { readonly _tag: "Connecting" }
  | {
    readonly _tag: "Connected"
    /** When (clock millis) this cluster's watches last became connected. */
    readonly since: number
    /**
     * True when this connection follows an outage (a watch failed, before or after the first
     * connect, or the connection was rebuilt): the API server may have just restarted, and one that has serves requests before its RBAC cache
     * has synced, answering 403 to what its users may do.
     */
    readonly afterOutage: boolean
  }
  | { readonly _tag: "Retrying"; readonly attempt: number; readonly lastError: string; readonly reason: string }
  | { readonly _tag: "Failed"; readonly error: string }

/** One cluster as the controller sees it. */
export interface ClusterView {
  /** Cluster name (`main` for the local one, else the context name). */
  readonly name: string
  readonly local: boolean
  /** undefined = all namespaces. */
  readonly managedNamespace: string | undefined
  /** Endpoint + controller credentials; user connections borrow the endpoint. */
  readonly spec: ConnectionSpec
  readonly client: KubeClientShape
  readonly pods: Informer
  readonly taskResults: Informer
}

export interface PoolChange {
  readonly cluster: string
  readonly kind: ResourceKind
  readonly type: "upsert" | "delete"
  /** For an upsert the new object; for a delete the object's last known state. */
  readonly object: KubeObject
  /**
   * What the cache held before this change, if anything: an upsert without it is an add. Lets a
   * consumer skip updates that change nothing it reads (see controller/significantChange.ts).
   */
  readonly previous?: KubeObject
}

export class ClusterNotAvailable extends Schema.TaggedError<ClusterNotAvailable>()("ClusterNotAvailable", {
  cluster: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `cluster "${this.cluster}": ${this.detail}`
  }
}

export interface ClusterPoolOptions {
  /** This cluster's unique name (configmap key `cluster`). */
  readonly localCluster: string
  /** Connection of the local cluster (its endpoint is lent to users' contexts naming it). */
  readonly localSpec: ConnectionSpec
  /** The controller's own client on the local cluster. */
  readonly localClient: KubeClientShape
  /** Namespace of argo-kubeconfig and the configmap. */
  readonly systemNamespace: string
  /** Managed namespace on the local cluster (configmap `namespace`); undefined = all. */
  readonly managedNamespace?: string
  readonly instanceId?: string
  /** Minimum time between two credential reloads of one cluster after a 401. */
  readonly reloadBackoff?: Duration.Input
  /** Watch tuning, mainly for tests. */
  readonly watch?: Pick<WatchResourceOptions, "openTimeout" | "idleTimeout" | "schedule">
  /** Supervises every cluster's watch loops (see `Informer`). */
  readonly supervisor?: Supervisor["Service"]
  /** Indexes of every cluster's pod and task result caches (see `Informer.byIndex`). */
  readonly indexers?: { readonly pods?: Indexers; readonly workflowtaskresults?: Indexers }
}

interface Entry {
  readonly view: ClusterView
  readonly scope: Scope.Closeable
}

export class ClusterPool extends Context.Service<ClusterPool, {
  readonly localCluster: string
  readonly local: ClusterView
  /** A cluster by name; fails when it is not configured or its config is invalid. */
  readonly get: (cluster: string) => Effect.Effect<ClusterView, ClusterNotAvailable>
  /** Every connected cluster, the local one first. */
  readonly all: Effect.Effect<ReadonlyArray<ClusterView>>
  readonly states: Effect.Effect<ReadonlyMap<string, ClusterState>>
  /** Pod and task result changes of every cluster. */
  readonly changes: Stream.Stream<PoolChange>
  /** Subscribes before returning, so nothing between subscribing and reading caches is missed. */
  readonly subscribe: Effect.Effect<PubSub.Subscription<PoolChange>, never, Scope.Scope>
  /** Re-reads argo-kubeconfig and rebuilds what changed. */
  readonly reload: Effect.Effect<void>
  /** Waits until every configured cluster's informers delivered a first snapshot. */
  readonly synced: Effect.Effect<void>
}>()("flotilla/kube/ClusterPool") {
  static readonly make = (options: ClusterPoolOptions) => make(options)
  /** The pool as a scoped layer (needs a KubeConnector). */
  static readonly layer = (options: ClusterPoolOptions) => Layer.effect(ClusterPool, make(options))
}

/** Label selector for the pods this controller owns in any cluster. */
export const podSelector = (localCluster: string, instanceId: string | undefined): string =>
  [
    Labels.workflow,
    `${Labels.cluster}=${clusterLabelValue(localCluster)}`,
    instanceId ? `${Labels.instanceId}=${instanceId}` : `!${Labels.instanceId}`
  ].join(",")

const stateFromWatch = (
  state: WatchState | Extract<ClusterState, { _tag: "Failed" }>,
  previous: ClusterState | undefined,
  now: number,
  hadOutage: boolean
): ClusterState => {
  switch (state._tag) {
    case "Connecting":
    case "Failed":
      return state
    case "Connected":
      return previous?._tag === "Connected" ? previous : { _tag: "Connected", since: now, afterOutage: hadOutage }
    case "Retrying":
      return {
        _tag: "Retrying",
        attempt: state.attempt,
        lastError: state.lastError.message,
        reason: state.lastError.reason
      }
  }
}

const make = Effect.fnUntraced(function*(options: ClusterPoolOptions) {
  const connector = yield* KubeConnector
  const poolScope = yield* Effect.scope
  const changes = yield* PubSub.unbounded<PoolChange>()
  const entries = yield* Ref.make(new Map<string, Entry>())
  const failures = yield* Ref.make(new Map<string, string>())
  const states = yield* Ref.make(new Map<string, ClusterState>())
  const lastReload = yield* Ref.make(new Map<string, number>())
  const reloadBackoff = Duration.toMillis(Duration.fromInputUnsafe(options.reloadBackoff ?? "30 seconds"))
  const selector = podSelector(options.localCluster, options.instanceId)
  const watchOptions = options.watch ?? {}

  /** Clusters whose connection was lost, rebuilt or retried at least once (see `afterOutage`). */
  const hadOutage = new Set<string>()
  /** Each informer's own watch state, by cluster: the cluster is as connected as its least connected watch. */
  const watchStates = new Map<string, Map<ResourceKind, WatchState>>()
  const watched: ReadonlyArray<ResourceKind> = ["pods", "workflowtaskresults"]

  const setState = (cluster: string, state: WatchState | Extract<ClusterState, { _tag: "Failed" }>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* Ref.update(states, (m) => {
        const previous = m.get(cluster)
        // a connection lost, or one that had to be retried before it first came up (the API server
        // may be the one restarting: a controller or cluster started together with it)
        if ((state._tag !== "Connected" && previous?._tag === "Connected") || state._tag === "Retrying") hadOutage.add(cluster)
        return new Map(m).set(cluster, stateFromWatch(state, previous, now, hadOutage.has(cluster)))
      })
    })

  /** A (re)connection starts over: every watch of the cluster is connecting. */
  const startConnecting = (cluster: string) => {
    watchStates.set(cluster, new Map())
    return setState(cluster, { _tag: "Connecting" })
  }

  const setWatchState = (cluster: string, kind: ResourceKind, state: WatchState) => {
    const byKind = watchStates.get(cluster) ?? new Map<ResourceKind, WatchState>()
    watchStates.set(cluster, byKind.set(kind, state))
    const all = watched.map((k) => byKind.get(k))
    const retrying = all.find((s) => s?._tag === "Retrying")
    const combined: WatchState = retrying ?? (all.every((s) => s?._tag === "Connected") ? state : { _tag: "Connecting" })
    return setState(cluster, combined)
  }

  // Starts the informers of one cluster inside `scope` and forwards their changes.
  const startCluster = Effect.fnUntraced(function*(
    name: string,
    local: boolean,
    spec: ConnectionSpec,
    client: KubeClientShape,
    managedNamespace: string | undefined,
    scope: Scope.Scope
  ): Effect.fn.Return<ClusterView> {
    const onState = (kind: ResourceKind) => (state: WatchState): Effect.Effect<void> =>
      Effect.gen(function*() {
        yield* setWatchState(name, kind, state)
        if (state._tag === "Retrying") {
          yield* Effect.logWarning("cluster unavailable").pipe(
            Effect.annotateLogs({ cluster: name, attempt: state.attempt, reason: state.lastError.reason, error: state.lastError.message })
          )
          if (state.lastError.reason === "Unauthorized" && !local) {
            // Credentials may have been rotated: reload them, but not in a tight loop.
            // (without the informer's log annotations: its `msg=cluster` line keeps Argo's exact format)
            yield* reloadCredentials(name).pipe(
              Effect.provideService(References.CurrentLogAnnotations, {}),
              Effect.forkIn(poolScope)
            )
          }
        } else if (state._tag === "Connected") {
          yield* Effect.logDebug("cluster connected").pipe(Effect.annotateLogs({ cluster: name }))
        }
      })
    const pods = yield* Informers.make(client, "pods", managedNamespace, {
      ...watchOptions,
      onState: onState("pods"),
      // the pod cache keeps only what the controller reads of a pod (kube/cache/transforms.ts)
      transform: slimPod,
      ...(options.supervisor ? { supervisor: options.supervisor } : {}),
      labelSelector: selector,
      ...(options.indexers?.pods ? { indexers: options.indexers.pods } : {})
    }).pipe(Scope.provide(scope))
    const taskResults = yield* Informers.make(client, "workflowtaskresults", managedNamespace, {
      ...watchOptions,
      onState: onState("workflowtaskresults"),
      ...(options.supervisor ? { supervisor: options.supervisor } : {}),
      ...(options.indexers?.workflowtaskresults ? { indexers: options.indexers.workflowtaskresults } : {}),
      labelSelector: Labels.workflow
    }).pipe(Scope.provide(scope))
    for (const [kind, informer] of [["pods", pods], ["workflowtaskresults", taskResults]] as const) {
      yield* informer.changes.pipe(
        Stream.runForEach((change) =>
          PubSub.publish(changes, {
            cluster: name,
            kind,
            type: change.type,
            object: change.object,
            ...(change.previous !== undefined ? { previous: change.previous } : {})
          })
        ),
        Effect.forkIn(scope)
      )
    }
    const view: ClusterView = { name, local, managedNamespace, spec, client, pods, taskResults }
    return view
  })

  const closeEntry = (entry: Entry) => Scope.close(entry.scope, Exit.void)

  const connectRemote = Effect.fnUntraced(function*(spec: ConnectionSpec): Effect.fn.Return<Entry, KubeError> {
    const scope = yield* Scope.make()
    const built: ClusterView = yield* Effect.gen(function*() {
      const client = yield* connector.connect(spec).pipe(Scope.provide(scope))
      return yield* startCluster(spec.cluster, false, spec, client, spec.namespace, scope)
    }).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
    return { view: built, scope } satisfies Entry
  })

  const readSystemKubeconfig: Effect.Effect<
    { readonly specs: ReadonlyArray<ConnectionSpec>; readonly errors: ReadonlyArray<{ cluster?: string; message: string }> }
  > = Effect.gen(function*() {
    const source = `secret ${options.systemNamespace}/${argoKubeconfigSecret}`
    const secret = yield* options.localClient.get("secrets", options.systemNamespace, argoKubeconfigSecret).pipe(
      Effect.map(Option.some),
      Effect.catchTag("KubeError", (e: KubeError) =>
        e.reason === "NotFound" ? Effect.succeed(Option.none<KubeObject>()) : Effect.fail(e))
    )
    if (Option.isNone(secret)) return { specs: [], errors: [] }
    const text = yield* secretValue(secret.value, "value", source)
    const doc = yield* parseKubeconfig(text, source)
    const result = validateSystemKubeconfig(doc, { source })
    return {
      specs: result.clusters,
      errors: result.errors.map((e) => ({ ...(e.context ? { cluster: e.context } : {}), message: e.message }))
    }
  }).pipe(
    Effect.catch((e: { readonly message: string }) => Effect.succeed({ specs: [], errors: [{ message: e.message }] }))
  )

  // Applies the secret's current content: builds new/changed clusters, closes removed ones.
  const apply = Effect.fnUntraced(function*(only?: string): Effect.fn.Return<void> {
    const { specs, errors } = yield* readSystemKubeconfig
    const current = yield* Ref.get(entries)
    const next = new Map(current)
    const failed = new Map<string, string>()
    for (const error of errors) {
      yield* Effect.logError("invalid cluster configuration").pipe(
        Effect.annotateLogs({ ...(error.cluster ? { cluster: error.cluster } : {}), error: error.message })
      )
      if (error.cluster) failed.set(error.cluster, error.message)
      else failed.set("*", error.message)
    }
    const wanted = new Set<string>()
    for (const spec of specs) {
      if (spec.cluster === options.localCluster || spec.cluster === inClusterName) {
        // The local cluster is always reached in-cluster; a context of the same name would be a second identity.
        yield* Effect.logWarning("ignoring argo-kubeconfig context for the local cluster").pipe(
          Effect.annotateLogs({ cluster: spec.cluster })
        )
        continue
      }
      wanted.add(spec.cluster)
      if (only !== undefined && spec.cluster !== only) continue
      const existing = current.get(spec.cluster)
      if (existing && fingerprintOf(existing.view.spec) === fingerprintOf(spec) && only === undefined) continue
      if (existing) {
        yield* closeEntry(existing)
        next.delete(spec.cluster)
      }
      // Before the informers start: they report Connected, which must not be overwritten.
      yield* startConnecting(spec.cluster)
      const entry = yield* connectRemote(spec).pipe(Effect.result)
      if (entry._tag === "Success") {
        next.set(spec.cluster, entry.success)
        yield* Effect.logInfo("cluster").pipe(
          Effect.annotateLogs({ cluster: spec.cluster, managedNamespace: spec.namespace ?? "" })
        )
      } else {
        const message = entry.failure.message
        failed.set(spec.cluster, message)
        yield* setState(spec.cluster, { _tag: "Failed", error: message })
        yield* Effect.logError("cluster connection failed").pipe(
          Effect.annotateLogs({ cluster: spec.cluster, error: message })
        )
      }
    }
    if (only === undefined) {
      for (const [name, entry] of current) {
        if (!wanted.has(name)) {
          yield* closeEntry(entry)
          next.delete(name)
          yield* Ref.update(states, (m) => {
            const copy = new Map(m)
            copy.delete(name)
            return copy
          })
          yield* Effect.logInfo("cluster removed").pipe(Effect.annotateLogs({ cluster: name }))
        }
      }
      yield* Ref.set(failures, failed)
    } else {
      yield* Ref.update(failures, (m) => {
        const copy = new Map(m)
        copy.delete(only)
        for (const [k, v] of failed) copy.set(k, v)
        return copy
      })
    }
    for (const [name, message] of failed) {
      if (name !== "*") yield* setState(name, { _tag: "Failed", error: message })
    }
    yield* Ref.set(entries, next)
  })

  // Serialise rebuilds: a 401 storm and a secret change must not race each other.
  const lock = yield* Semaphore.make(1)
  const reload = lock.withPermits(1)(apply())

  const reloadCredentials = (cluster: string): Effect.Effect<void> =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const last = (yield* Ref.get(lastReload)).get(cluster) ?? -Infinity
      if (now - last < reloadBackoff) return
      yield* Ref.update(lastReload, (m) => new Map(m).set(cluster, now))
      yield* Effect.logInfo("reloading cluster credentials after 401").pipe(Effect.annotateLogs({ cluster }))
      yield* lock.withPermits(1)(apply(cluster))
    })

  // The local cluster: the controller's in-cluster identity.
  const localScope = yield* Scope.fork(poolScope)
  yield* startConnecting(options.localCluster)
  const local = yield* startCluster(
    options.localCluster,
    true,
    options.localSpec,
    options.localClient,
    options.managedNamespace,
    localScope
  )

  yield* reload
  yield* Effect.logInfo("cluster").pipe(
    Effect.annotateLogs({ cluster: inClusterName, managedNamespace: options.managedNamespace ?? "" })
  )

  // Follow the secret.
  const secrets = yield* Informers.make(options.localClient, "secrets", options.systemNamespace, {
    ...watchOptions,
    ...(options.supervisor ? { supervisor: options.supervisor } : {}),
    fieldSelector: `metadata.name=${argoKubeconfigSecret}`
  })
  yield* secrets.synced
  if (options.supervisor) {
    // a restarted follower subscribes, then reloads once: a change may have come while it was down
    let runs = 0
    yield* options.supervisor.superviseScoped("argo-kubeconfig", Effect.scoped(Effect.gen(function*() {
      const subscription = yield* secrets.subscribe
      if (runs++ > 0) yield* reload
      return yield* Effect.forever(Effect.andThen(PubSub.take(subscription), reload))
    }))).pipe(Scope.provide(poolScope))
  } else yield* Effect.forkIn(secrets.changes.pipe(Stream.runForEach(() => reload)), poolScope)

  yield* Effect.addFinalizer(() =>
    Ref.get(entries).pipe(Effect.flatMap((m) => Effect.forEach(m.values(), closeEntry, { discard: true })))
  )

  const get = (cluster: string): Effect.Effect<ClusterView, ClusterNotAvailable> =>
    Effect.gen(function*() {
      if (cluster === options.localCluster) return local
      const entry = (yield* Ref.get(entries)).get(cluster)
      if (entry) return entry.view
      const failure = (yield* Ref.get(failures)).get(cluster) ?? (yield* Ref.get(failures)).get("*")
      return yield* new ClusterNotAvailable({
        cluster,
        detail: failure
          ? `its context in secret ${options.systemNamespace}/${argoKubeconfigSecret} is invalid: ${failure}`
          : `no context named "${cluster}" in secret ${options.systemNamespace}/${argoKubeconfigSecret}`
      })
    })

  const all: Effect.Effect<ReadonlyArray<ClusterView>> = Ref.get(entries).pipe(Effect.map((m) => [local, ...[...m.values()].map((e) => e.view)]))

  const synced = Effect.gen(function*() {
    const views = yield* all
    yield* Effect.forEach(views, (v) => Effect.andThen(v.pods.synced, v.taskResults.synced), {
      concurrency: "unbounded",
      discard: true
    })
  })

  return ClusterPool.of({
    localCluster: options.localCluster,
    local,
    get,
    all,
    states: Ref.get(states),
    changes: Stream.fromPubSub(changes),
    subscribe: PubSub.subscribe(changes),
    reload,
    synced
  })
})
