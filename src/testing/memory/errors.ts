/**
 * The server's failures, worded as the real API server words them
 * (`pods "x" not found`, `Operation cannot be fulfilled on ...`, `... is
 * invalid: ...`), each a KubeError naming the cluster, verb, resource,
 * namespace and name of the request.
 */
import { KubeError, type KubeErrorReason } from "../../kube/api/KubeError.js"
import { type KubeObject, type ResourceKind, resources } from "../../kube/api/Resources.js"
import type { Ctx } from "./state.js"

export const qualifiedResource = (kind: ResourceKind): string => {
  const group = resources[kind].group
  return group === "" ? kind : `${kind}.${group}`
}

export const fail = (
  ctx: Pick<Ctx, "label" | "req">,
  reason: KubeErrorReason,
  detail: string,
  where?: { readonly namespace?: string | undefined; readonly name?: string | undefined }
): KubeError =>
  new KubeError({
    reason,
    cluster: ctx.label,
    verb: ctx.req.verb,
    resource: ctx.req.subresource ? `${ctx.req.kind}/${ctx.req.subresource}` : ctx.req.kind,
    namespace: where?.namespace ?? ctx.req.namespace,
    name: where?.name ?? ctx.req.name,
    detail
  })

export const notFound = (ctx: Ctx, kind: ResourceKind, name: string, ns?: string) =>
  fail(ctx, "NotFound", `${qualifiedResource(kind)} "${name}" not found`, { namespace: ns, name })

export const conflictMessage = (kind: ResourceKind, name: string, why: string) =>
  `Operation cannot be fulfilled on ${qualifiedResource(kind)} "${name}": ${why}`

export const staleMessage = "the object has been modified; please apply your changes to the latest version and try again"

/** A uid precondition (`metadata.uid` of an update or patch, `uid` of a delete) the stored object does not meet. */
export const uidConflict = (ctx: Ctx, kind: ResourceKind, name: string, uid: string, existing: KubeObject) =>
  fail(
    ctx,
    "Conflict",
    conflictMessage(kind, name, `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${existing.metadata.uid}`)
  )

export const invalid = (ctx: Ctx, kind: ResourceKind, name: string, detail: string) =>
  fail(ctx, "Invalid", `${resources[kind].kind} "${name}" is invalid: ${detail}`)
