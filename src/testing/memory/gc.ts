/**
 * Writes that change an object's lifecycle: update (server-owned metadata
 * enforced, generation bumped on spec changes; removing the last finalizer of
 * a deleted object completes its deletion), deletion (finalizers hold an
 * object with a deletionTimestamp; Orphan, Background and Foreground
 * propagation), namespaces that terminate once empty, and owner-reference
 * garbage collection (dependents of a removed owner, objects created with
 * only dangling owners). One module because these call each other: a removal
 * cascades through updates and deletions of dependents and owners.
 */
import { apiVersionOf, type DeleteOptions, type KubeObject, type ResourceKind, resources } from "../../kube/api/Resources.js"
import { isoSeconds } from "../../util/time.js"
import { invalid } from "./errors.js"
import { deepEqual, normalizeMeta } from "./json.js"
import { allKinds, type ClusterState, type Ctx, gcIdentity, lookup, namespaceOf } from "./state.js"
import { asServed, indexOwners, nextRv, ownerExists, record, store, unindexOwners, unstore, withMeta } from "./store.js"
import { validateLabels } from "./validation.js"

export const gcCtx = (ctx: Ctx): Ctx => ({ ...ctx, identity: gcIdentity })

/** Removes an object for good (DELETED), then cascades. */
export const remove = (ctx: Ctx, kind: ResourceKind, object: KubeObject): KubeObject => {
  const c = ctx.c
  const final = withMeta(object, { resourceVersion: nextRv(c) })
  unstore(c, kind, final)
  const uid = final.metadata.uid!
  c.byUid.delete(uid)
  unindexOwners(c, final)
  if (kind === "pods") c.logs.delete(`${namespaceOf(final)}/${final.metadata.name}`)
  record(ctx, kind, "DELETED", final, undefined)
  if (c.limits.garbageCollection) {
    const dependents = c.dependents.get(uid)
    c.dependents.delete(uid)
    for (const depUid of dependents ?? []) {
      const ref = c.byUid.get(depUid)
      if (ref === undefined) continue
      const dependent = lookup(c, ref.kind, ref.ns, ref.name)
      if (dependent === undefined) continue
      if (kind !== "namespaces" && resources[kind].namespaced && ref.ns !== namespaceOf(final)) continue
      if ((dependent.metadata.ownerReferences ?? []).some((r) => r.uid !== uid && ownerExists(c, dependent, r))) {
        // Another owner still exists: drop the reference to the removed owner.
        const kept = (dependent.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid)
        update(gcCtx(ctx), ref.kind, dependent, withMeta(dependent, { ownerReferences: kept }))
        continue
      }
      markOrRemove(gcCtx(ctx), ref.kind, dependent, undefined)
    }
  }
  // Foreground owners waiting on this dependent.
  for (const ownerRef of final.metadata.ownerReferences ?? []) {
    const where = c.byUid.get(ownerRef.uid)
    if (where === undefined) continue
    const owner = lookup(c, where.kind, where.ns, where.name)
    if (
      owner !== undefined && owner.metadata.deletionTimestamp !== undefined &&
      (owner.metadata.finalizers ?? []).includes("foregroundDeletion") &&
      (c.dependents.get(ownerRef.uid)?.size ?? 0) === 0
    ) {
      const finalizers = (owner.metadata.finalizers ?? []).filter((f) => f !== "foregroundDeletion")
      update(gcCtx(ctx), where.kind, owner, withMeta(owner, { finalizers }))
    }
  }
  // A terminating namespace goes away once empty.
  if (kind !== "namespaces" && resources[kind].namespaced) finishNamespaceIfEmpty(ctx, namespaceOf(final))
  return final
}

export const namespaceEmpty = (c: ClusterState, ns: string): boolean =>
  allKinds.every((k) => k === "namespaces" || (c.kinds[k].byNs.get(ns)?.size ?? 0) === 0)

export const finishNamespaceIfEmpty = (ctx: Ctx, ns: string): void => {
  const namespace = lookup(ctx.c, "namespaces", "", ns)
  if (
    namespace !== undefined && namespace.metadata.deletionTimestamp !== undefined &&
    (namespace.metadata.finalizers ?? []).length === 0 && namespaceEmpty(ctx.c, ns)
  ) {
    remove(ctx, "namespaces", namespace)
  }
}

/** Deletion as the server does it: finalizers hold the object (deletionTimestamp), otherwise it goes. */
export const markOrRemove = (
  ctx: Ctx,
  kind: ResourceKind,
  object: KubeObject,
  policy: DeleteOptions["propagationPolicy"]
): void => {
  const c = ctx.c
  if (object.metadata.deletionTimestamp !== undefined) return
  const uid = object.metadata.uid!
  const hasDependents = (c.dependents.get(uid)?.size ?? 0) > 0
  if (policy === "Orphan" && hasDependents) {
    for (const depUid of [...(c.dependents.get(uid) ?? [])]) {
      const ref = c.byUid.get(depUid)
      const dependent = ref && lookup(c, ref.kind, ref.ns, ref.name)
      if (ref === undefined || dependent === undefined) continue
      const kept = (dependent.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid)
      update(gcCtx(ctx), ref.kind, dependent, withMeta(dependent, { ownerReferences: kept }))
    }
  }
  const foreground = policy === "Foreground" && c.limits.garbageCollection && (c.dependents.get(uid)?.size ?? 0) > 0
  const finalizers = [...(object.metadata.finalizers ?? []), ...(foreground ? ["foregroundDeletion"] : [])]
  const terminatingNamespace = kind === "namespaces" && !namespaceEmpty(c, object.metadata.name!)
  if (finalizers.length === 0 && !terminatingNamespace) {
    remove(ctx, kind, object)
    return
  }
  const generation = object.metadata.generation
  let marked = withMeta(object, {
    resourceVersion: nextRv(c),
    deletionTimestamp: isoSeconds(ctx.now),
    deletionGracePeriodSeconds: 0,
    finalizers,
    ...(generation !== undefined ? { generation: generation + 1 } : {})
  })
  if (kind === "namespaces") marked = { ...marked, status: { ...(marked.status as object), phase: "Terminating" } }
  store(c, kind, marked)
  record(ctx, kind, "MODIFIED", marked, object)
  if (foreground) {
    for (const depUid of [...(c.dependents.get(uid) ?? [])]) {
      const ref = c.byUid.get(depUid)
      const dependent = ref && lookup(c, ref.kind, ref.ns, ref.name)
      if (ref !== undefined && dependent !== undefined) markOrRemove(gcCtx(ctx), ref.kind, dependent, "Foreground")
    }
  }
  if (terminatingNamespace) {
    const ns = object.metadata.name!
    for (const k of allKinds) {
      if (k === "namespaces") continue
      for (const child of [...(c.kinds[k].byNs.get(ns)?.values() ?? [])]) {
        const current = lookup(c, k, ns, child.metadata.name!)
        if (current !== undefined) markOrRemove(ctx, k, current, "Background")
      }
    }
    finishNamespaceIfEmpty(ctx, ns)
  }
}

/**
 * Stores `next` as the new state of `old` (same kind/namespace/name),
 * enforcing server-owned metadata. Returns the stored object (or the final
 * state when the update completed a deletion).
 */
export const update = (ctx: Ctx, kind: ResourceKind, old: KubeObject, candidate: KubeObject): KubeObject => {
  const c = ctx.c
  const name = old.metadata.name!
  const oldFinalizers = old.metadata.finalizers ?? []
  const newFinalizers = candidate.metadata.finalizers ?? []
  if (old.metadata.deletionTimestamp !== undefined) {
    const added = newFinalizers.filter((f) => !oldFinalizers.includes(f))
    if (added.length > 0) {
      throw invalid(
        ctx,
        kind,
        name,
        `metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${
          added.map((f) => JSON.stringify(f)).join(", ")
        }}`
      )
    }
  }
  validateLabels(ctx, kind, name, candidate)
  const meta: Record<string, unknown> = {
    ...candidate.metadata,
    name,
    uid: old.metadata.uid,
    creationTimestamp: old.metadata.creationTimestamp,
    deletionTimestamp: old.metadata.deletionTimestamp,
    deletionGracePeriodSeconds: (old.metadata as Record<string, unknown>).deletionGracePeriodSeconds,
    generation: old.metadata.generation,
    resourceVersion: old.metadata.resourceVersion,
    generateName: candidate.metadata.generateName ?? old.metadata.generateName
  }
  if (resources[kind].namespaced) meta.namespace = old.metadata.namespace
  else delete meta.namespace
  for (const key of Object.keys(meta)) if (meta[key] === undefined) delete meta[key]
  normalizeMeta(meta)
  let next: KubeObject = { ...candidate, apiVersion: apiVersionOf(kind), kind: resources[kind].kind, metadata: meta }
  if (deepEqual(next, old)) return old
  if (old.metadata.generation !== undefined) {
    const { metadata: _m1, status: _s1, ...oldBody } = old
    const { metadata: _m2, status: _s2, ...newBody } = next
    if (!deepEqual(oldBody, newBody)) next = withMeta(next, { generation: old.metadata.generation + 1 })
  }
  if (next.metadata.deletionTimestamp !== undefined && (next.metadata.finalizers ?? []).length === 0) {
    if (kind !== "namespaces" || namespaceEmpty(c, name)) {
      unindexOwners(c, old)
      indexOwners(c, next)
      return remove(ctx, kind, next)
    }
  }
  next = asServed(withMeta(next, { resourceVersion: nextRv(c) }))
  unindexOwners(c, old)
  indexOwners(c, next)
  store(c, kind, next)
  record(ctx, kind, "MODIFIED", next, old)
  collectIfDangling(ctx, kind, next)
  return next
}

/** Objects whose owners are all gone are collected, as the real garbage collector would. */
export const collectIfDangling = (ctx: Ctx, kind: ResourceKind, object: KubeObject): void => {
  if (!ctx.c.limits.garbageCollection) return
  const refs = object.metadata.ownerReferences ?? []
  if (refs.length === 0) return
  if (refs.some((ref) => ownerExists(ctx.c, object, ref))) return
  const current = lookup(ctx.c, kind, namespaceOf(object), object.metadata.name!)
  if (current !== undefined) markOrRemove(gcCtx(ctx), kind, current, "Background")
}
