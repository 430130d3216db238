/**
 * The one error every Kubernetes call can fail with. `reason` says what the
 * API server (real or in-memory) answered, so callers branch on meaning
 * (NotFound, Conflict, Gone...) rather than on HTTP codes. Messages name the
 * cluster, namespace and object; they must never contain a token or a secret value.
 */
import { Schema } from "effect"

export const KubeErrorReason = Schema.Literals([
  "NotFound",
  "AlreadyExists",
  "Conflict",
  "Forbidden",
  "Unauthorized",
  "Gone",
  "Invalid",
  "Unavailable",
  "Timeout",
  "Unknown"
])
export type KubeErrorReason = typeof KubeErrorReason.Type

export class KubeError extends Schema.TaggedError<KubeError>()("KubeError", {
  reason: KubeErrorReason,
  cluster: Schema.String,
  verb: Schema.String,
  resource: Schema.String,
  namespace: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    const where = [
      `cluster=${this.cluster}`,
      this.namespace ? `namespace=${this.namespace}` : undefined,
      `${this.resource}${this.name ? `/${this.name}` : ""}`
    ].filter(Boolean).join(" ")
    return `${this.verb} ${where}: ${this.reason}: ${this.detail}`
  }
}

/** Errors worth retrying: the server may answer differently next time. */
export const isTransient = (error: KubeError): boolean =>
  error.reason === "Unavailable" || error.reason === "Timeout" || error.reason === "Unknown" || rbacNotReady(error)

/**
 * A 403 that names an RBAC role or binding the authorizer cannot find: what a
 * kube-apiserver answers for a while after it starts, before its RBAC cache
 * has synced (it serves requests before that), though the role exists. Worth
 * retrying; a role that really is missing keeps failing until the caller's
 * own deadline.
 */
export const rbacNotReady = (error: KubeError): boolean =>
  error.reason === "Forbidden" && /RBAC: (cluster)?role(binding)?\.rbac\.authorization\.k8s\.io "[^"]*" not found/.test(error.detail)

/**
 * The API server refused a create for lack of quota: a ResourceQuota is full
 * (403 "exceeded quota"), or the quota's own update conflicted or timed out.
 * Upstream Argo keeps such a node Pending and tries again until quota frees or
 * the workflow's deadline passes; so do we.
 */
export const quotaExceeded = (error: KubeError): boolean =>
  (error.reason === "Forbidden" && /exceeded quota/.test(error.detail)) ||
  (error.reason === "Conflict" && /Operation cannot be fulfilled on resourcequotas?\b/.test(error.detail)) ||
  /resource quota evaluation timed out/.test(error.detail)

/** The server refused the caller: who it is (401) or what it may do (403). */
export const refused = (error: KubeError): boolean => error.reason === "Forbidden" || error.reason === "Unauthorized"

/** Maps an HTTP status code from the API server to a reason. */
export const reasonFromStatus = (code: number | undefined): KubeErrorReason => {
  switch (code) {
    case 401:
      return "Unauthorized"
    case 403:
      return "Forbidden"
    case 404:
      return "NotFound"
    case 409:
      return "Conflict"
    case 410:
      return "Gone"
    case 422:
      return "Invalid"
    case 408:
    case 504:
      return "Timeout"
    case 429:
    case 500:
    case 502:
    case 503:
      return "Unavailable"
    default:
      return code === undefined ? "Unavailable" : "Unknown"
  }
}
