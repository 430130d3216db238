/**
 * Asking the API server whether someone else may do something: a
 * `SubjectAccessReview` (authorization.k8s.io/v1), created and answered in one
 * call, never stored. The controller uses it where it acts on a workflow's
 * behalf with its own identity (an http template's header from a secret), so
 * the workflow's service account's rights decide, not the controller's.
 *
 * The caller needs `create` on `subjectaccessreviews` (k8s/rbac/role.yaml).
 */
import { Effect } from "effect"
import type { KubeClientShape } from "./KubeClient.js"
import type { KubeError } from "./KubeError.js"
import type { KubeObject } from "./Resources.js"

/** Who is asked about: a user name and its groups, as an authenticator would report them. */
export interface AccessSubject {
  readonly user: string
  readonly groups: ReadonlyArray<string>
}

/** What is asked about: a resource request (core group when `group` is absent). */
export interface ResourceAttributes {
  readonly verb: string
  readonly resource: string
  readonly group?: string
  readonly namespace?: string
  readonly name?: string
  readonly subresource?: string
}

export interface AccessDecision {
  readonly allowed: boolean
  /** The authorizer's reason, when it gave one. */
  readonly reason?: string
  /** An authorizer that could not decide says why (the answer is then "not allowed"). */
  readonly evaluationError?: string
}

/** A service account as its tokens authenticate: `system:serviceaccount:<ns>:<name>` and the groups every one of them has. */
export const serviceAccountSubject = (namespace: string, name: string): AccessSubject => ({
  user: `system:serviceaccount:${namespace}:${name}`,
  groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"]
})

export const subjectAccessReview = (subject: AccessSubject, attributes: ResourceAttributes): KubeObject => ({
  apiVersion: "authorization.k8s.io/v1",
  kind: "SubjectAccessReview",
  metadata: {},
  spec: {
    user: subject.user,
    groups: [...subject.groups],
    resourceAttributes: {
      verb: attributes.verb,
      resource: attributes.resource,
      group: attributes.group ?? "",
      ...(attributes.namespace !== undefined ? { namespace: attributes.namespace } : {}),
      ...(attributes.name !== undefined ? { name: attributes.name } : {}),
      ...(attributes.subresource !== undefined ? { subresource: attributes.subresource } : {})
    }
  }
})

/** Whether `subject` may make the request `attributes` describes, as `client`'s API server judges it. */
export const reviewAccess = (
  client: KubeClientShape,
  subject: AccessSubject,
  attributes: ResourceAttributes
): Effect.Effect<AccessDecision, KubeError> =>
  client.create("subjectaccessreviews", undefined, subjectAccessReview(subject, attributes)).pipe(
    Effect.map((answered) => {
      const status = (answered["status"] ?? {}) as { allowed?: unknown; reason?: unknown; evaluationError?: unknown }
      return {
        allowed: status.allowed === true,
        ...(typeof status.reason === "string" && status.reason !== "" ? { reason: status.reason } : {}),
        ...(typeof status.evaluationError === "string" && status.evaluationError !== ""
          ? { evaluationError: status.evaluationError }
          : {})
      }
    })
  )
