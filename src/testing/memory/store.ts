/**
 * Storage and resourceVersions: objects stored by kind, namespace and name,
 * the owner index (owner uid -> dependents) garbage collection reads, the
 * cluster-wide resourceVersion counter, and `record`, which appends a change
 * to the kind's watch history (compacting its oldest part, as etcd does) and
 * to the change log, and fans it out to the open watchers (or holds it while
 * watch events are held).
 */
import type { KubeObject, OwnerReference, ResourceKind } from "../../kube/api/Resources.js"
import { resources } from "../../kube/api/Resources.js"
import { isRecord } from "../../util/records.js"
import { normalizeMeta } from "./json.js"
import { type ChangeType, type ClusterState, type Ctx, type HistoryEntry, namespaceOf, trimLog } from "./state.js"
import { offer, toItem } from "./watch.js"

export const record = (ctx: Ctx, kind: ResourceKind, type: ChangeType, object: KubeObject, prev: KubeObject | undefined) => {
  const c = ctx.c
  const store = c.kinds[kind]
  const ns = namespaceOf(object)
  const entry: HistoryEntry = { rv: c.rv, type, ns, object, prev }
  store.history.push(entry)
  if (store.history.length > c.limits.maxHistory + (c.limits.maxHistory >> 1)) {
    const drop = store.history.length - c.limits.maxHistory
    store.compactedRv = Math.max(store.compactedRv, store.history[drop - 1].rv)
    store.history = store.history.slice(drop)
  }
  c.changes.push({
    resourceVersion: String(c.rv),
    type,
    resource: kind,
    ...(resources[kind].namespaced ? { namespace: ns } : {}),
    name: object.metadata.name!,
    uid: object.metadata.uid!,
    identity: ctx.identity
  })
  c.changes = trimLog(c, c.changes)
  for (const watcher of store.watchers) {
    if (watcher.ns !== undefined && watcher.ns !== ns) continue
    const item = toItem(entry, watcher.match)
    if (item === undefined) continue
    if (c.heldEvents !== undefined) c.heldEvents.push({ watcher, item })
    else offer(watcher, item)
  }
}

/**
 * Custom resources come back from a real API server with the keys of their maps sorted (they
 * are stored as unstructured JSON, which Go serialises in key order), whatever order the
 * client sent: a client comparing what it sent with what it reads must not rely on key order.
 */
export const asServed = (object: KubeObject): KubeObject => {
  if (typeof object.apiVersion !== "string" || !object.apiVersion.startsWith("argoproj.io/")) return object
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : isRecord(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
      : v
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(object)) out[k] = k === "metadata" ? v : sorted(v)
  return out as KubeObject
}

export const store = (c: ClusterState, kind: ResourceKind, object: KubeObject): void => {
  const ns = namespaceOf(object)
  const byNs = c.kinds[kind].byNs
  let bucket = byNs.get(ns)
  if (bucket === undefined) {
    bucket = new Map()
    byNs.set(ns, bucket)
  }
  bucket.set(object.metadata.name!, object)
}

export const unstore = (c: ClusterState, kind: ResourceKind, object: KubeObject): void => {
  const ns = namespaceOf(object)
  const bucket = c.kinds[kind].byNs.get(ns)
  if (bucket === undefined) return
  bucket.delete(object.metadata.name!)
  if (bucket.size === 0) c.kinds[kind].byNs.delete(ns)
}

export const indexOwners = (c: ClusterState, object: KubeObject): void => {
  for (const ref of object.metadata.ownerReferences ?? []) {
    let set = c.dependents.get(ref.uid)
    if (set === undefined) {
      set = new Set()
      c.dependents.set(ref.uid, set)
    }
    set.add(object.metadata.uid!)
  }
}

export const unindexOwners = (c: ClusterState, object: KubeObject): void => {
  for (const ref of object.metadata.ownerReferences ?? []) {
    const set = c.dependents.get(ref.uid)
    if (set === undefined) continue
    set.delete(object.metadata.uid!)
    if (set.size === 0) c.dependents.delete(ref.uid)
  }
}

/** Owner present for GC purposes: same namespace, or cluster-scoped. */
export const ownerExists = (c: ClusterState, dependent: KubeObject, ref: OwnerReference): boolean => {
  const owner = c.byUid.get(ref.uid)
  return owner !== undefined && (owner.ns === "" || owner.ns === namespaceOf(dependent))
}

export const nextRv = (c: ClusterState): string => String(++c.rv)

export const withMeta = (object: KubeObject, meta: Record<string, unknown>): KubeObject => {
  const metadata = { ...object.metadata, ...meta } as Record<string, unknown>
  for (const key of Object.keys(metadata)) if (metadata[key] === undefined) delete metadata[key]
  normalizeMeta(metadata)
  return { ...object, metadata }
}
