/**
 * The TokenRequest API of the in-memory server
 * (`POST /api/v1/namespaces/{ns}/serviceaccounts/{sa}/token`): what a kubelet
 * calls to give a pod its projected service-account token. The caller needs
 * `create` on `serviceaccounts/token` in the namespace; the service account
 * is an identity named `system:serviceaccount:<ns>:<sa>` (there is no
 * ServiceAccount kind here); the token authenticates as that identity (with
 * its rules, as they change) for as long as the object it is bound to exists
 * with the same uid and it has not expired, as the real server checks a bound
 * token on every request. Audited as `create serviceaccounts/token`.
 */
import { Clock, Effect, Random } from "effect"
import { KubeError, type KubeErrorReason } from "../../kube/api/KubeError.js"
import type { AuditEntry } from "./api.js"
import { audit, awaitRunning, clusterFor } from "./calls.js"
import { bindToken, boundTokenValid } from "./boundTokens.js"
import { adminIdentity, type ClientRef, type Identity, lookup } from "./state.js"
import type { TokenRequests, TokenRequestSpec, TokenRequestStatus } from "../../kube/api/TokenRequest.js"

/** The API server's default audience and its limits on a token's lifetime (`--service-account-max-token-expiration` unset). */
export const defaultAudiences: ReadonlyArray<string> = ["https://kubernetes.default.svc"]
const minExpirationSeconds = 600
const defaultExpirationSeconds = 3600

const tokenError = (client: ClientRef, namespace: string, name: string, reason: KubeErrorReason, detail: string) =>
  new KubeError({ reason, cluster: client.label, verb: "create", resource: "serviceaccounts/token", namespace, name, detail })

/** `POST .../serviceaccounts/{name}/token` as `client`. */
export const requestToken = (
  client: ClientRef,
  namespace: string,
  serviceAccount: string,
  spec: TokenRequestSpec
): Effect.Effect<TokenRequestStatus, KubeError> =>
  Effect.gen(function*() {
    const c = yield* clusterFor(client, { verb: "create", kind: "pods", namespace, name: serviceAccount })
    yield* awaitRunning(c)
    const now = yield* Clock.currentTimeMillis
    const random = (yield* Random.nextIntBetween(0, 2 ** 31)).toString(16)
    const failWith = (reason: KubeErrorReason, detail: string) => Effect.fail(tokenError(client, namespace, serviceAccount, reason, detail))
    if (client.session?.closed === true) return yield* failWith("Unavailable", `the client for cluster ${client.label} has been closed`)
    if (!c.reachable) return yield* failWith("Unavailable", `cluster ${client.label} (memory://${c.name}) is unreachable`)
    const target = { verb: "create" as const, resource: "serviceaccounts" as const, subresource: "token", namespace, name: serviceAccount }
    let caller: Identity | undefined
    if (client.auth._tag === "Token") {
      caller = c.tokens.get(client.auth.token)
      if (caller === undefined || !boundTokenValid(c, client.auth.token, now)) {
        audit(c, { identity: "system:anonymous", ...target, allowed: false, outcome: "Unauthorized" })
        return yield* failWith("Unauthorized", "Unauthorized")
      }
    }
    const callerName = caller?.name ?? adminIdentity
    const entry = audit(c, { identity: callerName, ...target, allowed: true, outcome: "Success" }) as {
      -readonly [K in keyof AuditEntry]: AuditEntry[K]
    }
    const end = (reason: KubeErrorReason, detail: string) => {
      entry.outcome = reason
      if (reason === "Forbidden") entry.allowed = false
      return failWith(reason, detail)
    }
    const allowed = caller === undefined || caller.rules.some((rule) =>
      (rule.verbs.includes("*") || rule.verbs.includes("create")) &&
      (rule.resources.includes("*") || rule.resources.includes("serviceaccounts/token")) &&
      (rule.namespaces === undefined || rule.namespaces.includes(namespace))
    )
    if (!allowed) {
      return yield* end(
        "Forbidden",
        `serviceaccounts "${serviceAccount}" is forbidden: User "${callerName}" cannot create resource "serviceaccounts/token" in API group "" in the namespace "${namespace}"`
      )
    }
    const identity = c.identities.get(`system:serviceaccount:${namespace}:${serviceAccount}`)
    if (identity === undefined) return yield* end("NotFound", `serviceaccounts "${serviceAccount}" not found`)
    const expirationSeconds = spec.expirationSeconds ?? defaultExpirationSeconds
    if (expirationSeconds < minExpirationSeconds) {
      return yield* end("Invalid", `TokenRequest.authentication.k8s.io "${serviceAccount}" is invalid: spec.expirationSeconds: Invalid value: ${expirationSeconds}: may not specify a duration less than 10 minutes`)
    }
    const audiences = spec.audiences ?? []
    if (audiences.length > 0 && !audiences.every((a) => defaultAudiences.includes(a))) {
      // This server authenticates its own audience only: a token for another would be refused on every call.
      return yield* end("Invalid", `TokenRequest.authentication.k8s.io "${serviceAccount}" is invalid: spec.audiences: this in-memory server only issues tokens for ${defaultAudiences.join(", ")}`)
    }
    const ref = spec.boundObjectRef
    if (ref === undefined || ref.kind !== "Pod") {
      // Tokens bound to other objects (Secret, Node) are not modelled: they would never be revoked.
      return yield* end("Invalid", `TokenRequest.authentication.k8s.io "${serviceAccount}" is invalid: spec.boundObjectRef: the in-memory server only binds tokens to pods`)
    }
    const pod = lookup(c, "pods", namespace, ref.name)
    if (pod === undefined) return yield* end("NotFound", `pods "${ref.name}" not found`)
    if (ref.uid !== undefined && ref.uid !== "" && ref.uid !== pod.metadata.uid) {
      return yield* end("Conflict", `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`)
    }
    const podServiceAccount = (pod.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName || "default"
    if (podServiceAccount !== serviceAccount) {
      return yield* end("Invalid", `TokenRequest.authentication.k8s.io "${serviceAccount}" is invalid: pod "${ref.name}" runs as service account "${podServiceAccount}"`)
    }
    const token = `bound-token:${c.name}:${namespace}:${serviceAccount}:${now.toString(16)}${random}`
    const expiresAt = now + expirationSeconds * 1000
    bindToken(c, token, { namespace, pod: ref.name, uid: pod.metadata.uid ?? "", identity, expiresAt }, now)
    entry.name = serviceAccount
    return { token, expirationTimestamp: new Date(expiresAt).toISOString().replace(/\.\d+Z$/, "Z") }
  })
