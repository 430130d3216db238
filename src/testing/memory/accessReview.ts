/**
 * SubjectAccessReviews: the server answers whether the user a review names
 * may make the request it describes, from that identity's rules (`rbac.ts`),
 * as the real server's RBAC authorizer does; nothing is stored. Groups are
 * kept in the answer but grant nothing: the in-memory server binds rules to
 * identities only. An identity the cluster does not know has no rights.
 */
import { type KubeObject, type ResourceKind, resources } from "../../kube/api/Resources.js"
import { isRecord } from "../../util/records.js"
import type { Verb } from "./api.js"
import { fail } from "./errors.js"
import { rbacNamespaceOf, ruleAllows } from "./rbac.js"
import type { Ctx, Request } from "./state.js"

const verbs: ReadonlySet<string> = new Set<Verb>(["get", "list", "watch", "create", "update", "patch", "delete"])

/** The review `object` with its `status` filled in, or Invalid as the real server words it. */
export const answerAccessReview = (ctx: Ctx, object: KubeObject): KubeObject => {
  const spec = isRecord(object["spec"]) ? object["spec"] : {}
  const user = typeof spec["user"] === "string" ? spec["user"] : ""
  const groups = Array.isArray(spec["groups"]) ? spec["groups"] : []
  const attributes = isRecord(spec["resourceAttributes"]) ? spec["resourceAttributes"] : undefined
  const problems: Array<string> = []
  if (user === "" && groups.length === 0) problems.push("spec.user: Invalid value: \"\": at least one of user or group must be specified")
  if (attributes === undefined && !isRecord(spec["nonResourceAttributes"])) {
    problems.push("spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified")
  }
  if (problems.length > 0) throw fail(ctx, "Invalid", `SubjectAccessReview.authorization.k8s.io "" is invalid: ${problems.join(", ")}`)
  const allowed = attributes !== undefined && allows(ctx, user, attributes)
  return {
    ...object,
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    metadata: object.metadata ?? {},
    status: { allowed, ...(allowed ? { reason: `RBAC: allowed by the rules of "${user}"` } : {}) }
  }
}

const allows = (ctx: Ctx, user: string, attributes: Record<string, unknown>): boolean => {
  const str = (k: string) => (typeof attributes[k] === "string" && attributes[k] !== "" ? attributes[k] as string : undefined)
  const resource = str("resource")
  const verb = str("verb")
  const group = str("group") ?? ""
  if (resource === undefined || verb === undefined || !verbs.has(verb) || !(resource in resources)) return false
  const kind = resource as ResourceKind
  if (resources[kind].group !== group) return false
  const identity = ctx.c.identities.get(user)
  if (identity === undefined) return false
  const subresource = str("subresource")
  const req: Request = {
    verb: verb as Verb,
    kind,
    ...(subresource !== undefined ? { subresource } : {}),
    namespace: resources[kind].namespaced ? str("namespace") : undefined,
    name: str("name")
  }
  return identity.rules.some((rule) => ruleAllows(rule, req, rbacNamespaceOf(req)))
}
