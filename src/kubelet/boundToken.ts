/**
 * A resource template's pod acts on the API as its service account, with a
 * token the node agent gets for it exactly as a kubelet gets a pod's projected
 * service-account token: through the TokenRequest API
 * (`POST /api/v1/namespaces/{ns}/serviceaccounts/{sa}/token`), bound to the
 * pod (`boundObjectRef`: the API server refuses the token once the pod is gone
 * or replaced), for the API server's own audiences (none given), with an
 * expiration. The pod's client is a fresh connection holding only that token:
 * never the node agent's credentials, nor the controller's.
 *
 * The node agent needs `create` on `serviceaccounts/token` for that (a real
 * kubelet has it through the Node authorizer, for the pods bound to its node
 * only; scripts/clusters/node-agent-rbac.yaml).
 */
import { Effect, Redacted, type Scope } from "effect"
import type { ConnectionSpec } from "../kube/api/Connection.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeConnector } from "../kube/api/KubeConnector.js"
import type { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { makeRequests } from "../kube/live/requests.js"
import { makeSession } from "../kube/live/session.js"
import { enc } from "../kube/live/paths.js"
import { makeError } from "../kube/live/errors.js"

/** The `spec` of an `authentication.k8s.io/v1` TokenRequest. */
export interface TokenRequestSpec {
  /** Empty: the API server's own audiences (what a pod's default projected token carries). */
  readonly audiences?: ReadonlyArray<string> | undefined
  readonly expirationSeconds?: number | undefined
  readonly boundObjectRef?: {
    readonly apiVersion?: string | undefined
    readonly kind: string
    readonly name: string
    readonly uid?: string | undefined
  } | undefined
}

export interface TokenRequestStatus {
  readonly token: string
  readonly expirationTimestamp: string
}

/** The TokenRequest API of one cluster, called with the node agent's identity. */
export interface TokenRequests {
  readonly requestToken: (
    namespace: string,
    serviceAccount: string,
    spec: TokenRequestSpec
  ) => Effect.Effect<TokenRequestStatus, KubeError>
}

/**
 * A client acting as the pod's service account `serviceAccount` in `namespace`,
 * for as long as the scope is open (the pod's run).
 */
export type PodServiceAccountClient = (
  pod: KubeObject,
  namespace: string,
  serviceAccount: string
) => Effect.Effect<KubeClientShape, KubeError, Scope.Scope>

/** The user name a service account's token authenticates as. */
export const serviceAccountUserName = (namespace: string, name: string): string => `system:serviceaccount:${namespace}:${name}`

/** A kubelet's default projected token lifetime (`expirationSeconds` of the default projected volume). */
export const defaultTokenSeconds = 3600
/** At most a day, whatever the pod's active deadline. */
const maxTokenSeconds = 86_400

/** The lifetime asked for a pod's token: an hour, or its active deadline and ten minutes more when that is longer. */
export const tokenSecondsFor = (pod: KubeObject): number => {
  const deadline = (pod.spec as { activeDeadlineSeconds?: unknown } | undefined)?.activeDeadlineSeconds
  const wanted = typeof deadline === "number" && Number.isFinite(deadline) ? deadline + 600 : 0
  return Math.min(maxTokenSeconds, Math.max(defaultTokenSeconds, Math.ceil(wanted)))
}

/** The client's own TokenRequest API, when it has one (the in-memory clients do). */
export const tokenRequestsOf = (client: KubeClientShape): TokenRequests | undefined =>
  typeof (client as Partial<TokenRequests>).requestToken === "function" ? (client as unknown as TokenRequests) : undefined

/** The TokenRequest API of a live cluster, with the credentials of `spec` (the node agent's). */
export const liveTokenRequests = (spec: ConnectionSpec): Effect.Effect<TokenRequests, KubeError, Scope.Scope> =>
  Effect.gen(function*() {
    const session = yield* makeSession(spec, {})
    const { requestJson } = makeRequests(session)
    return {
      requestToken: (namespace, serviceAccount, tokenSpec) => {
        const ctx = { cluster: spec.cluster, verb: "create", resource: "serviceaccounts/token", namespace, name: serviceAccount }
        return requestJson(ctx, {
          method: "POST",
          path: `/api/v1/namespaces/${enc(namespace)}/serviceaccounts/${enc(serviceAccount)}/token`,
          body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: tokenSpec }
        }).pipe(
          Effect.flatMap((body: { status?: { token?: unknown; expirationTimestamp?: unknown } }) => {
            const token = body?.status?.token
            return typeof token === "string" && token !== ""
              ? Effect.succeed({ token, expirationTimestamp: String(body.status?.expirationTimestamp ?? "") })
              : Effect.fail(makeError(ctx, "Unknown", "the TokenRequest answer carries no token"))
          })
        )
      }
    } satisfies TokenRequests
  })

/**
 * Pods' clients from bound tokens: `requests` (the node agent's TokenRequest
 * API) issues the token, `connect` opens a connection to the node agent's
 * cluster (`connection`'s endpoint) authenticating with it alone.
 */
export const boundTokenClients = (options: {
  readonly requests: TokenRequests
  readonly connection: ConnectionSpec
  readonly connect: (spec: ConnectionSpec) => Effect.Effect<KubeClientShape, KubeError, Scope.Scope>
}): PodServiceAccountClient =>
(pod, namespace, serviceAccount) =>
  Effect.gen(function*() {
    const issued = yield* options.requests.requestToken(namespace, serviceAccount, {
      expirationSeconds: tokenSecondsFor(pod),
      boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata.name ?? "", uid: pod.metadata.uid }
    })
    return yield* options.connect({
      cluster: options.connection.cluster,
      namespace,
      user: serviceAccountUserName(namespace, serviceAccount),
      endpoint: options.connection.endpoint,
      auth: { _tag: "Token", token: Redacted.make(issued.token) }
    })
  })

/**
 * The pods' clients of a node agent connected with `connection` as `client`:
 * the client's own TokenRequest API if it has one, else the live cluster's.
 */
export const podServiceAccountClients = (
  client: KubeClientShape,
  connection: ConnectionSpec
): Effect.Effect<PodServiceAccountClient, KubeError, Scope.Scope | KubeConnector> =>
  Effect.gen(function*() {
    const connector = yield* KubeConnector
    const requests = tokenRequestsOf(client) ?? (yield* liveTokenRequests(connection))
    return boundTokenClients({ requests, connection, connect: connector.connect })
  })
