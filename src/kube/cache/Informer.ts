/**
 * A cache of one resource kind fed by `kube/cache/Watch`. The watch runs in a fibre
 * tied to the scope `make` is called in; closing that scope stops it.
 *
 * `changes` never misses a delete: when the watch has to relist (a 410 Gone,
 * or a reconnect after a failure), the new snapshot is diffed against the
 * cache and objects that vanished meanwhile are announced as deletes, new or
 * changed ones as upserts.
 *
 * Indexes, like client-go's Indexer: each named index function maps an
 * object to the values it is filed under (say, the workflow a pod belongs
 * to), kept up to date with the cache, so `byIndex` reads the objects of one
 * value without walking the whole cache.
 *
 * Transform, like client-go's `SetTransform`: each object the watch delivers
 * passes through `transform` before it is cached or announced, so fields the
 * controller never reads do not stay in memory for every cached object. The
 * default, `stripManagedFields`, drops `metadata.managedFields` (server-side
 * apply bookkeeping, often larger than the rest of the metadata). That is safe
 * for objects written back whole (a status update is a PUT of the cached
 * Workflow): an update without `managedFields` keeps the server's own.
 */
import { Deferred, Effect, Option, PubSub, Scope, Stream, SubscriptionRef } from "effect"
import type { KubeClientShape } from "../api/KubeClient.js"
import { type KubeObject, namespacedName, type ObjectMeta, type ResourceKind } from "../api/Resources.js"
import type { Supervisor } from "../../runtime/Supervisor.js"
import { type WatchItem, watchResource, type WatchResourceOptions, type WatchState } from "./Watch.js"

export interface InformerChange {
  readonly type: "upsert" | "delete"
  /** For an upsert the new object; for a delete the object's last known state. */
  readonly object: KubeObject
  /** What the cache held before this change, if anything. */
  readonly previous?: KubeObject
}

export interface Informer {
  readonly kind: ResourceKind
  /** The namespace watched; undefined means all namespaces. */
  readonly namespace: string | undefined
  /** `namespace` is ignored (use undefined) for cluster-scoped kinds. */
  readonly get: (namespace: string | undefined, name: string) => Effect.Effect<Option.Option<KubeObject>>
  readonly list: (predicate?: (object: KubeObject) => boolean) => Effect.Effect<ReadonlyArray<KubeObject>>
  /** Completes once the first snapshot is in the cache. */
  readonly synced: Effect.Effect<void>
  /** Changes from the moment the stream starts running. */
  readonly changes: Stream.Stream<InformerChange>
  /**
   * A subscription to changes that is live as soon as this effect returns, for
   * consumers that must subscribe before reading the cache (no gap).
   */
  readonly subscribe: Effect.Effect<PubSub.Subscription<InformerChange>, never, Scope.Scope>
  /** The watch's connection state (Connecting / Connected / Retrying). */
  readonly state: SubscriptionRef.SubscriptionRef<WatchState>
  /** The objects filed under `value` by index `index` (none when there is no such index). */
  readonly byIndex: (index: string, value: string) => Effect.Effect<ReadonlyArray<KubeObject>>
}

/** Named index functions: the values an object is filed under (none: not indexed). */
export type Indexers = Readonly<Record<string, (object: KubeObject) => ReadonlyArray<string>>>

export interface InformerOptions extends WatchResourceOptions {
  readonly indexers?: Indexers
  /**
   * Runs the watch loop as a supervised component (restarted, with a log naming the cluster and
   * kind, should it ever fail or die); without one, the loop is forked into the scope as is.
   */
  readonly supervisor?: Supervisor["Service"]
  /**
   * Applied to every object before it is cached or announced (default
   * `stripManagedFields`; pass `identity` to keep objects as delivered). Must
   * not mutate its argument, and must keep `metadata.name`, `namespace` and
   * `resourceVersion`.
   */
  readonly transform?: (object: KubeObject) => KubeObject
}

/** The object without `metadata.managedFields` (the same object when it has none). */
export const stripManagedFields = (object: KubeObject): KubeObject => {
  const given = object.metadata as ObjectMeta & { readonly managedFields?: unknown }
  if (given.managedFields === undefined) return object
  const { managedFields: _managedFields, ...metadata } = given
  return { ...object, metadata }
}

export const identity = (object: KubeObject): KubeObject => object

/**
 * The index structure: index name -> value -> cache keys. Most values file one object (a
 * workflow's task result, a single-pod workflow's pod): those keep the key itself, a Set
 * only once a second key joins (a Set per value was a few hundred bytes per cached object).
 */
class Indices {
  private readonly byName = new Map<string, Map<string, string | Set<string>>>()
  constructor(private readonly indexers: Indexers) {
    for (const name of Object.keys(indexers)) this.byName.set(name, new Map())
  }
  get empty(): boolean {
    return this.byName.size === 0
  }
  add(key: string, object: KubeObject): void {
    for (const [name, values] of this.byName) {
      for (const value of this.indexers[name]!(object)) {
        const keys = values.get(value)
        if (keys === undefined) values.set(value, key)
        else if (typeof keys === "string") {
          if (keys !== key) values.set(value, new Set([keys, key]))
        } else keys.add(key)
      }
    }
  }
  remove(key: string, object: KubeObject): void {
    for (const [name, values] of this.byName) {
      for (const value of this.indexers[name]!(object)) {
        const keys = values.get(value)
        if (keys === undefined) continue
        if (typeof keys === "string") {
          if (keys === key) values.delete(value)
          continue
        }
        keys.delete(key)
        if (keys.size === 1) values.set(value, keys.values().next().value!)
        else if (keys.size === 0) values.delete(value)
      }
    }
  }
  clear(): void {
    for (const values of this.byName.values()) values.clear()
  }
  keys(name: string, value: string): ReadonlyArray<string> | ReadonlySet<string> | undefined {
    const keys = this.byName.get(name)?.get(value)
    return typeof keys === "string" ? [keys] : keys
  }
}

const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? ""}/${name}`

const sameVersion = (a: KubeObject, b: KubeObject): boolean => {
  const va = a.metadata.resourceVersion
  const vb = b.metadata.resourceVersion
  if (va && vb) return va === vb
  return JSON.stringify(a) === JSON.stringify(b)
}

/**
 * Starts an informer; its watch lives as long as the surrounding scope.
 */
export const make = (
  client: KubeClientShape,
  kind: ResourceKind,
  namespace: string | undefined,
  options: InformerOptions = {}
): Effect.Effect<Informer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const cache = new Map<string, KubeObject>()
    const transform = options.transform ?? stripManagedFields
    const indices = new Indices(options.indexers ?? {})
    const store = (key: string, object: KubeObject) => {
      const previous = cache.get(key)
      if (!indices.empty && previous !== undefined) indices.remove(key, previous)
      cache.set(key, object)
      if (!indices.empty) indices.add(key, object)
    }
    const drop = (key: string) => {
      const previous = cache.get(key)
      if (previous === undefined) return
      if (!indices.empty) indices.remove(key, previous)
      cache.delete(key)
    }
    const pubsub = yield* PubSub.unbounded<InformerChange>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
    const state = yield* SubscriptionRef.make<WatchState>({ _tag: "Connecting" })
    const firstSync = yield* Deferred.make<void>()

    const publish = (changes: ReadonlyArray<InformerChange>) =>
      changes.length === 0 ? Effect.void : PubSub.publishAll(pubsub, changes)

    const apply = (item: WatchItem): Effect.Effect<void> =>
      Effect.suspend(() => {
        const changes: Array<InformerChange> = []
        switch (item._tag) {
          case "Synced": {
            const next = new Map<string, KubeObject>()
            for (const delivered of item.items) {
              const object = transform(delivered)
              next.set(namespacedName(object), object)
            }
            for (const [key, old] of cache) {
              if (!next.has(key)) changes.push({ type: "delete", object: old, previous: old })
            }
            for (const [key, object] of next) {
              const previous = cache.get(key)
              if (previous === undefined) changes.push({ type: "upsert", object })
              else if (!sameVersion(previous, object)) changes.push({ type: "upsert", object, previous })
            }
            cache.clear()
            indices.clear()
            for (const [key, object] of next) store(key, object)
            return publish(changes).pipe(Effect.andThen(Deferred.succeed(firstSync, undefined)), Effect.asVoid)
          }
          case "Upsert": {
            const object = transform(item.object)
            const key = namespacedName(object)
            const previous = cache.get(key)
            store(key, object)
            if (previous !== undefined && sameVersion(previous, object)) return Effect.void
            return publish([
              previous === undefined ? { type: "upsert", object } : { type: "upsert", object, previous }
            ])
          }
          case "Delete": {
            const object = transform(item.object)
            const key = namespacedName(object)
            const previous = cache.get(key)
            drop(key)
            return publish([
              previous === undefined ? { type: "delete", object } : { type: "delete", object, previous }
            ])
          }
        }
      })

    const { supervisor, indexers: _indexers, transform: _transform, ...watchOptions } = options
    const loop = watchResource(client, kind, namespace, {
      ...watchOptions,
      onState: (next) =>
        SubscriptionRef.set(state, next).pipe(
          Effect.andThen(options.onState ? options.onState(next) : Effect.void)
        )
    }).pipe(
      Stream.runForEach(apply),
      Effect.annotateLogs({ informer: kind, cluster: client.cluster })
    )
    if (supervisor === undefined) yield* Effect.forkScoped(loop)
    else {
      yield* supervisor.superviseScoped(`informer/${client.cluster}/${kind}`, loop, {
        annotations: { cluster: client.cluster, informer: kind }
      })
    }

    const informer: Informer = {
      kind,
      namespace,
      get: (objectNamespace, name) => Effect.sync(() => Option.fromUndefinedOr(cache.get(keyOf(objectNamespace, name)))),
      list: (predicate) =>
        Effect.sync(() => {
          const all = Array.from(cache.values())
          return predicate ? all.filter(predicate) : all
        }),
      byIndex: (index, value) =>
        Effect.sync(() => {
          const out: Array<KubeObject> = []
          for (const key of indices.keys(index, value) ?? []) {
            const object = cache.get(key)
            if (object !== undefined) out.push(object)
          }
          return out
        }),
      synced: Deferred.await(firstSync),
      changes: Stream.fromPubSub(pubsub),
      subscribe: PubSub.subscribe(pubsub),
      state
    }
    return informer
  })

/** `Informer.make(...)` for callers that import `{ Informer }`. */
export const Informer = { make } as const
