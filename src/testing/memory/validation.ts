/**
 * Admission checks of a request, before anything is stored: label keys and
 * values, apiVersion and kind matching the resource, the namespace of the
 * path against the object's, the namespace existing (and not terminating, for
 * creates), and the uid and resourceVersion preconditions of writes.
 */
import { apiVersionOf, type KubeObject, type ResourceKind, resources } from "../../kube/api/Resources.js"
import { isRecord } from "../../util/records.js"
import * as LabelSelector from "../LabelSelector.js"
import { conflictMessage, fail, invalid, staleMessage, uidConflict } from "./errors.js"
import { cloneJson } from "./json.js"
import { type Ctx, lookup } from "./state.js"

export const validateLabels = (ctx: Ctx, kind: ResourceKind, name: string, object: KubeObject): void => {
  for (const [key, value] of Object.entries(object.metadata.labels ?? {})) {
    const badKey = LabelSelector.validateLabelKey(key)
    if (badKey !== undefined) throw invalid(ctx, kind, name, `metadata.labels: Invalid value: "${key}": ${badKey}`)
    if (typeof value !== "string") {
      throw invalid(ctx, kind, name, `metadata.labels: Invalid value: label ${key} must be a string`)
    }
    const badValue = LabelSelector.validateLabelValue(value)
    if (badValue !== undefined) {
      throw invalid(ctx, kind, name, `metadata.labels: Invalid value: "${value}": ${badValue}`)
    }
  }
}

export const checkTypeMeta = (ctx: Ctx, kind: ResourceKind, object: KubeObject): void => {
  if (object.apiVersion !== undefined && object.apiVersion !== apiVersionOf(kind)) {
    throw fail(
      ctx,
      "Invalid",
      `the API version in the data (${object.apiVersion}) does not match the expected API version (${apiVersionOf(kind)})`
    )
  }
  if (object.kind !== undefined && object.kind !== resources[kind].kind) {
    throw fail(ctx, "Invalid", `the kind in the data (${object.kind}) does not match the expected kind (${resources[kind].kind})`)
  }
}

export const requestNamespace = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, object?: KubeObject): string => {
  if (!resources[kind].namespaced) return ""
  const objectNs = object?.metadata.namespace
  const ns = namespace ?? objectNs
  if (ns === undefined || ns === "") throw fail(ctx, "Invalid", `a namespace is required for ${kind}`)
  if (objectNs !== undefined && objectNs !== "" && objectNs !== ns) {
    throw fail(ctx, "Invalid", "the namespace of the provided object does not match the namespace sent on the request")
  }
  return ns
}

export const requireNamespaceExists = (ctx: Ctx, ns: string, forCreate: boolean): void => {
  const namespace = lookup(ctx.c, "namespaces", "", ns)
  if (namespace === undefined) throw fail(ctx, "NotFound", `namespaces "${ns}" not found`)
  if (forCreate && namespace.metadata.deletionTimestamp !== undefined) {
    throw fail(ctx, "Forbidden", `unable to create new content in namespace ${ns} because it is being terminated`)
  }
}

/** A copy of a create or update body, checked for metadata and type, with the namespace it goes to. */
export const requestBody = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, input: KubeObject) => {
  const object = cloneJson(input)
  if (!isRecord(object as unknown) || !isRecord(object.metadata as unknown)) {
    throw fail(ctx, "Invalid", "metadata is required")
  }
  checkTypeMeta(ctx, kind, object)
  return { object, ns: requestNamespace(ctx, kind, namespace, object) }
}

export const checkPreconditions = (ctx: Ctx, kind: ResourceKind, existing: KubeObject, meta: unknown): void => {
  if (!isRecord(meta)) return
  const uid = meta.uid
  if (typeof uid === "string" && uid !== "" && uid !== existing.metadata.uid) {
    throw uidConflict(ctx, kind, existing.metadata.name!, uid, existing)
  }
  const rv = meta.resourceVersion
  if (typeof rv === "string" && rv !== "" && rv !== existing.metadata.resourceVersion) {
    throw fail(ctx, "Conflict", conflictMessage(kind, existing.metadata.name!, staleMessage))
  }
}
