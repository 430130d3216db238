/**
 * The verbs on objects, as the API server runs them once a call is
 * authorized: create (generateName, uid, validation, AlreadyExists), get,
 * replace and merge patch (preconditions, immutable fields), delete (uid
 * precondition, system namespaces) and list (sorted, selectors). Synchronous;
 * failures are thrown KubeErrors, turned into effects by `calls.ts`.
 */
import type { Random } from "effect"
import { apiVersionOf, type DeleteOptions, type KubeObject, type ListOptions, type MergePatch, type ObjectList, type ResourceKind, resources } from "../../kube/api/Resources.js"
import { isRecord } from "../../util/records.js"
import { isoSeconds } from "../../util/time.js"
import * as LabelSelector from "../LabelSelector.js"
import { fail, invalid, notFound, qualifiedResource, uidConflict } from "./errors.js"
import { collectIfDangling, markOrRemove, update } from "./gc.js"
import { applyMergePatch, cloneJson, normalizeMeta } from "./json.js"
import { buildMatcher } from "./selectors.js"
import { type Ctx, lookup } from "./state.js"
import { asServed, indexOwners, nextRv, record, store } from "./store.js"
import { checkPreconditions, checkTypeMeta, requestBody, requestNamespace, requireNamespaceExists, validateLabels } from "./validation.js"

export const newUid = (random: Random.Random): string => {
  let hex = ""
  for (let i = 0; i < 32; i++) hex += Math.floor(random.nextDoubleUnsafe() * 16).toString(16)
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

export const nameSuffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

export const randomSuffix = (random: Random.Random): string => {
  let out = ""
  for (let i = 0; i < 5; i++) out += nameSuffixAlphabet[Math.floor(random.nextDoubleUnsafe() * nameSuffixAlphabet.length)]
  return out
}

export const createObject = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, input: KubeObject): KubeObject => {
  const c = ctx.c
  const { ns, object } = requestBody(ctx, kind, namespace, input)
  if (resources[kind].namespaced) requireNamespaceExists(ctx, ns, true)
  if (object.metadata.resourceVersion !== undefined && object.metadata.resourceVersion !== "") {
    throw fail(ctx, "Invalid", "resourceVersion should not be set on objects to be created")
  }
  const generateName = object.metadata.generateName
  let name = object.metadata.name
  if ((name === undefined || name === "") && (generateName === undefined || generateName === "")) {
    throw invalid(ctx, kind, "", "metadata.name: Required value: name or generateName is required")
  }
  if (name === undefined || name === "") {
    const base = generateName!.length > 58 ? generateName!.slice(0, 58) : generateName!
    for (let attempt = 0; attempt < 16; attempt++) {
      name = base + randomSuffix(ctx.random)
      if (lookup(c, kind, ns, name) === undefined) break
    }
  }
  const badName = kind === "namespaces" ? LabelSelector.validateDnsLabel(name!) : LabelSelector.validateSubdomain(name!)
  if (badName !== undefined) throw invalid(ctx, kind, name!, `metadata.name: Invalid value: "${name}": ${badName}`)
  validateLabels(ctx, kind, name!, object)
  if (lookup(c, kind, ns, name!) !== undefined) {
    throw fail(ctx, "AlreadyExists", `${qualifiedResource(kind)} "${name}" already exists`, { namespace: ns || undefined, name })
  }
  const meta: Record<string, unknown> = {
    ...object.metadata,
    name,
    uid: newUid(ctx.random),
    resourceVersion: nextRv(c),
    creationTimestamp: isoSeconds(ctx.now)
  }
  if (resources[kind].namespaced) meta.namespace = ns
  else delete meta.namespace
  delete meta.deletionTimestamp
  delete meta.deletionGracePeriodSeconds
  if (kind === "pods") delete meta.generation
  else meta.generation = 1
  normalizeMeta(meta)
  let created: KubeObject = { ...object, apiVersion: apiVersionOf(kind), kind: resources[kind].kind, metadata: meta }
  if (kind === "namespaces") created = { ...created, status: { phase: "Active" } }
  created = asServed(created)
  store(c, kind, created)
  c.byUid.set(created.metadata.uid!, { kind, ns, name: name! })
  indexOwners(c, created)
  record(ctx, kind, "ADDED", created, undefined)
  collectIfDangling(ctx, kind, created)
  return created
}

export const getExisting = (ctx: Ctx, kind: ResourceKind, ns: string, name: string): KubeObject => {
  const object = lookup(ctx.c, kind, ns, name)
  if (object === undefined) throw notFound(ctx, kind, name, ns || undefined)
  return object
}

export const replaceObject = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, input: KubeObject): KubeObject => {
  const { ns, object } = requestBody(ctx, kind, namespace, input)
  const name = object.metadata.name
  if (name === undefined || name === "") throw invalid(ctx, kind, "", "metadata.name: Required value: name is required")
  const existing = getExisting(ctx, kind, ns, name)
  checkPreconditions(ctx, kind, existing, object.metadata)
  return update(ctx, kind, existing, object)
}

export const patchObject = (
  ctx: Ctx,
  kind: ResourceKind,
  namespace: string | undefined,
  name: string,
  patch: MergePatch
): KubeObject => {
  const ns = requestNamespace(ctx, kind, namespace)
  const existing = getExisting(ctx, kind, ns, name)
  if (!isRecord(patch)) throw fail(ctx, "Invalid", "a merge patch must be a JSON object")
  checkPreconditions(ctx, kind, existing, patch.metadata)
  const merged = applyMergePatch(existing, cloneJson(patch)) as KubeObject
  if (!isRecord(merged.metadata as unknown)) throw invalid(ctx, kind, name, "metadata: Required value")
  if (merged.metadata.name !== name) {
    throw invalid(ctx, kind, name, `metadata.name: Invalid value: "${String(merged.metadata.name)}": field is immutable`)
  }
  if (resources[kind].namespaced && merged.metadata.namespace !== existing.metadata.namespace) {
    throw invalid(ctx, kind, name, "metadata.namespace: Invalid value: field is immutable")
  }
  checkTypeMeta(ctx, kind, merged)
  return update(ctx, kind, existing, merged)
}

export const deleteObject = (
  ctx: Ctx,
  kind: ResourceKind,
  namespace: string | undefined,
  name: string,
  options: DeleteOptions | undefined
): void => {
  const ns = requestNamespace(ctx, kind, namespace)
  const existing = getExisting(ctx, kind, ns, name)
  if (options?.uid !== undefined && options.uid !== existing.metadata.uid) {
    throw uidConflict(ctx, kind, name, options.uid, existing)
  }
  if (kind === "namespaces" && (name === "default" || name === "kube-system" || name === "kube-public")) {
    throw fail(ctx, "Forbidden", `namespace ${name} is a system namespace and may not be deleted`)
  }
  markOrRemove(ctx, kind, existing, options?.propagationPolicy)
}

export const listObjects = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, options?: ListOptions): ObjectList => {
  const match = buildMatcher(ctx, kind, options)
  const byNs = ctx.c.kinds[kind].byNs
  const items: Array<KubeObject> = []
  const buckets = resources[kind].namespaced && namespace !== undefined
    ? [byNs.get(namespace)]
    : [...byNs.keys()].sort().map((ns) => byNs.get(ns))
  for (const bucket of buckets) {
    if (bucket === undefined) continue
    const names = [...bucket.keys()].sort()
    for (const name of names) {
      const object = bucket.get(name)!
      if (match(object)) items.push(cloneJson(object))
    }
  }
  return { items, resourceVersion: String(ctx.c.rv) }
}
