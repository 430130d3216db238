/**
 * The plain verbs of a live client (get, list in pages, create, replace,
 * merge patch, delete with preconditions, pod logs): each names its cluster,
 * verb, resource, namespace and name in any failure, and gives objects back
 * with their type meta filled in.
 */
import { Effect } from "effect"
import type { KubeClientShape } from "../api/KubeClient.js"
import type { KubeError } from "../api/KubeError.js"
import { type DeleteOptions, type KubeObject, type ListOptions, type MergePatch, type ObjectList, resources } from "../api/Resources.js"
import type { ErrorContext } from "./errors.js"
import { collectionPath, namespaceFor, query, withTypeMeta } from "./paths.js"
import type { Requests } from "./requests.js"
import type { Session } from "./session.js"

export type Verbs = Pick<KubeClientShape, "get" | "list" | "create" | "replace" | "patch" | "delete" | "logs">

export const makeVerbs = (session: Session, requests: Requests): Verbs => {
  const { base, fail, pageSize } = session
  const { objectPath, request, requestJson } = requests

  const get: KubeClientShape["get"] = (kind, namespace, name) => {
    const ns = namespaceFor(kind, namespace)
    const ctx: ErrorContext = { ...base, verb: "get", resource: kind, namespace: ns, name }
    return objectPath(ctx, kind, ns, name).pipe(
      Effect.flatMap((path) => requestJson(ctx, { method: "GET", path })),
      Effect.map((object) => withTypeMeta(kind, object as KubeObject))
    )
  }

  const list: KubeClientShape["list"] = (kind, namespace, listOptions?: ListOptions) => {
    const ns = namespaceFor(kind, namespace)
    const ctx: ErrorContext = { ...base, verb: "list", resource: kind, namespace: ns }
    return Effect.gen(function*() {
      const items: Array<KubeObject> = []
      let resourceVersion = ""
      let continueToken: string | undefined
      do {
        const page = yield* requestJson(ctx, {
          method: "GET",
          path: collectionPath(kind, ns) + query({
            labelSelector: listOptions?.labelSelector,
            fieldSelector: listOptions?.fieldSelector,
            limit: pageSize,
            continue: continueToken
          })
        }) as Effect.Effect<{ items?: Array<KubeObject>; metadata?: { resourceVersion?: string; continue?: string } }, KubeError>
        for (const item of page.items ?? []) items.push(withTypeMeta(kind, item))
        resourceVersion = page.metadata?.resourceVersion ?? resourceVersion
        continueToken = page.metadata?.continue || undefined
      } while (continueToken !== undefined)
      const result: ObjectList = { items, resourceVersion }
      return result
    })
  }

  const create: KubeClientShape["create"] = (kind, namespace, object) => {
    const ns = namespaceFor(kind, namespace ?? object.metadata.namespace)
    const ctx: ErrorContext = { ...base, verb: "create", resource: kind, namespace: ns, name: object.metadata.name }
    if (resources[kind].namespaced && !ns) {
      return Effect.fail(fail(ctx, "Invalid", `${kind} are namespaced: a namespace is required`))
    }
    return requestJson(ctx, { method: "POST", path: collectionPath(kind, ns), body: withTypeMeta(kind, object) }).pipe(
      Effect.map((created) => withTypeMeta(kind, created as KubeObject))
    )
  }

  const replace: KubeClientShape["replace"] = (kind, namespace, object) => {
    const ns = namespaceFor(kind, namespace ?? object.metadata.namespace)
    const name = object.metadata.name ?? ""
    const ctx: ErrorContext = { ...base, verb: "update", resource: kind, namespace: ns, name }
    return objectPath(ctx, kind, ns, name).pipe(
      Effect.flatMap((path) => requestJson(ctx, { method: "PUT", path, body: withTypeMeta(kind, object) })),
      Effect.map((updated) => withTypeMeta(kind, updated as KubeObject))
    )
  }

  const patch: KubeClientShape["patch"] = (kind, namespace, name, mergePatch: MergePatch, patchOptions) => {
    const ns = namespaceFor(kind, namespace)
    const sub = patchOptions?.subresource
    const ctx: ErrorContext = { ...base, verb: "patch", resource: sub ? `${kind}/${sub}` : kind, namespace: ns, name }
    return objectPath(ctx, kind, ns, name).pipe(
      Effect.flatMap((path) =>
        requestJson(ctx, {
          method: "PATCH",
          path: sub ? `${path}/${sub}` : path,
          body: mergePatch,
          contentType: "application/merge-patch+json"
        })
      ),
      Effect.map((patched) => withTypeMeta(kind, patched as KubeObject))
    )
  }

  const del: KubeClientShape["delete"] = (kind, namespace, name, deleteOptions?: DeleteOptions) => {
    const ns = namespaceFor(kind, namespace)
    const ctx: ErrorContext = { ...base, verb: "delete", resource: kind, namespace: ns, name }
    const body = {
      apiVersion: "v1",
      kind: "DeleteOptions",
      ...(deleteOptions?.propagationPolicy ? { propagationPolicy: deleteOptions.propagationPolicy } : {}),
      ...(deleteOptions?.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: deleteOptions.gracePeriodSeconds } : {}),
      ...(deleteOptions?.uid ? { preconditions: { uid: deleteOptions.uid } } : {})
    }
    return objectPath(ctx, kind, ns, name).pipe(
      Effect.flatMap((path) => request(ctx, { method: "DELETE", path, body })),
      Effect.asVoid
    )
  }

  const logs: KubeClientShape["logs"] = (namespace, name, container) => {
    const ctx: ErrorContext = { ...base, verb: "get", resource: "pods/log", namespace, name }
    return objectPath(ctx, "pods", namespace, name).pipe(
      Effect.flatMap((path) => request(ctx, { method: "GET", path: `${path}/log${query({ container })}`, accept: "*/*" })),
      Effect.map((response) => response.body)
    )
  }

  return { get, list, create, replace, patch, delete: del, logs }
}
