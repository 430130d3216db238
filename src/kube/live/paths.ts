/**
 * The API server paths and query strings of each resource kind, and the type
 * meta (apiVersion, kind) that list items and some answers leave out.
 */
import { apiVersionOf, type KubeObject, type ResourceKind, resources } from "../api/Resources.js"

export const enc = encodeURIComponent

export const apiBase = (kind: ResourceKind): string => {
  const info = resources[kind]
  return info.group === "" ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`
}

export const collectionPath = (kind: ResourceKind, namespace: string | undefined): string =>
  resources[kind].namespaced && namespace
    ? `${apiBase(kind)}/namespaces/${enc(namespace)}/${kind}`
    : `${apiBase(kind)}/${kind}`

export const query = (params: Record<string, string | number | boolean | undefined>): string => {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) search.set(key, String(value))
  }
  const text = search.toString()
  return text === "" ? "" : `?${text}`
}

export const withTypeMeta = (kind: ResourceKind, object: KubeObject): KubeObject => ({
  ...object,
  apiVersion: object.apiVersion ?? apiVersionOf(kind),
  kind: object.kind ?? resources[kind].kind
})

export const namespaceFor = (kind: ResourceKind, namespace: string | undefined): string | undefined =>
  resources[kind].namespaced ? namespace : undefined
