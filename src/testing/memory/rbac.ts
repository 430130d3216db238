/**
 * RBAC: whether an identity's rules allow a request (namespaced rules, the
 * namespace a namespace object's own requests are checked in), and the real
 * server's Forbidden message.
 */
import { resources } from "../../kube/api/Resources.js"
import type { PolicyRule } from "./api.js"
import { qualifiedResource } from "./errors.js"
import type { Request } from "./state.js"

export const ruleAllows = (rule: PolicyRule, req: Request, rbacNamespace: string | undefined): boolean =>
  (rule.verbs.includes("*") || rule.verbs.includes(req.verb)) &&
  (rule.resources.includes("*") || rule.resources.includes(req.kind)) &&
  (rule.namespaces === undefined || (rbacNamespace !== undefined && rule.namespaces.includes(rbacNamespace)))

/** The namespace RBAC sees: a namespace object's own name for named namespace requests, as the real server does. */
export const rbacNamespaceOf = (req: Request): string | undefined => {
  if (req.kind === "namespaces") return req.name
  return resources[req.kind].namespaced ? req.namespace : undefined
}

export const forbiddenMessage = (identity: string, req: Request): string => {
  const qualified = qualifiedResource(req.kind)
  const subject = req.name !== undefined && req.verb !== "create" ? `${qualified} "${req.name}"` : qualified
  const resource = req.subresource ? `${req.kind}/${req.subresource}` : req.kind
  const ns = rbacNamespaceOf(req)
  const scope = ns !== undefined ? `in the namespace "${ns}"` : "at the cluster scope"
  return `${subject} is forbidden: User "${identity}" cannot ${req.verb} resource "${resource}" in API group "${
    resources[req.kind].group
  }" ${scope}`
}
