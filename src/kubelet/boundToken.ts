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
import { Clock, Effect, Exit, Redacted, Result, Scope } from "effect"
import type { ConnectionSpec } from "../kube/api/Connection.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeConnector } from "../kube/api/KubeConnector.js"
import { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { makeRequests } from "../kube/live/requests.js"
import { makeSession } from "../kube/live/session.js"
import { enc } from "../kube/live/paths.js"
import { makeError } from "../kube/live/errors.js"
import type { TokenRequests, TokenRequestSpec, TokenRequestStatus } from "../kube/api/TokenRequest.js"

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
 * Why the agent must not ask for a token for `serviceAccount` in `namespace`
 * on `pod`'s behalf, or undefined when it may: only for a pod bound to a node
 * (this agent's, when it is known), with a uid to bind the token to, and only
 * for the namespace and service account the pod's own spec names. The API
 * server lets the agent mint any service account's token (RBAC has no Node
 * authorizer's per-node limit: scripts/clusters/node-agent-rbac.yaml), so the
 * agent limits itself to what a kubelet may do.
 */
export const tokenRefusal = (
  pod: KubeObject,
  namespace: string,
  serviceAccount: string,
  nodeName: string | undefined
): string | undefined => {
  const spec = (pod.spec ?? {}) as { nodeName?: unknown; serviceAccountName?: unknown }
  const podName = pod.metadata.name ?? ""
  const podNamespace = pod.metadata.namespace ?? "default"
  const podAccount = typeof spec.serviceAccountName === "string" && spec.serviceAccountName !== "" ? spec.serviceAccountName : "default"
  const boundTo = typeof spec.nodeName === "string" ? spec.nodeName : ""
  if (podName === "" || (pod.metadata.uid ?? "") === "") return `pod "${podName}" has no name or uid to bind a token to`
  if (boundTo === "") return `pod "${podName}" is not bound to a node`
  if (nodeName !== undefined && boundTo !== nodeName) return `pod "${podName}" is bound to node "${boundTo}", not to this agent's node "${nodeName}"`
  if (namespace !== podNamespace) return `pod "${podName}" runs in namespace "${podNamespace}", not "${namespace}"`
  if (serviceAccount !== podAccount) return `pod "${podName}" runs as service account "${podAccount}", not "${serviceAccount}"`
  return undefined
}

/** When a token issued at `issuedAt` expiring at `expiresAt` is replaced: at 80% of its lifetime, as a kubelet rotates a projected token. */
export const refreshDelayMs = (issuedAt: number, expiresAt: number): number => Math.max(1000, Math.floor((expiresAt - issuedAt) * 0.8))

/** How long a failed refresh waits before the next try. */
const refreshRetryMs = 10_000

/**
 * Pods' clients from bound tokens: `requests` (the node agent's TokenRequest
 * API) issues the token, `connect` opens a connection to the node agent's
 * cluster (`connection`'s endpoint) authenticating with it alone. The token
 * is replaced at 80% of its lifetime for as long as the scope is open (a
 * resource template may wait on its conditions for hours): a new token, a new
 * connection, and the client's calls go to it from then on; the old one is
 * closed at the next refresh. A token is asked for only as `tokenRefusal`
 * allows; `nodeName` is the agent's node, when known.
 */
export const boundTokenClients = (options: {
  readonly requests: TokenRequests
  readonly connection: ConnectionSpec
  readonly connect: (spec: ConnectionSpec) => Effect.Effect<KubeClientShape, KubeError, Scope.Scope>
  readonly nodeName?: string | undefined
}): PodServiceAccountClient =>
(pod, namespace, serviceAccount) =>
  Effect.gen(function*() {
    const refusal = tokenRefusal(pod, namespace, serviceAccount, options.nodeName)
    if (refusal !== undefined) {
      return yield* Effect.fail(
        new KubeError({
          reason: "Forbidden",
          cluster: options.connection.cluster,
          verb: "create",
          resource: "serviceaccounts/token",
          namespace,
          name: serviceAccount,
          detail: `the node agent requests tokens only for its own pods' service accounts: ${refusal}`
        })
      )
    }
    const parent = yield* Effect.scope
    const seconds = tokenSecondsFor(pod)
    /** A new token and a connection holding it, in a scope of its own under the pod's. */
    const open = Effect.gen(function*() {
      const issuedAt = yield* Clock.currentTimeMillis
      const issued = yield* options.requests.requestToken(namespace, serviceAccount, {
        expirationSeconds: seconds,
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata.name ?? "", uid: pod.metadata.uid }
      })
      const parsed = Date.parse(issued.expirationTimestamp)
      const expiresAt = Number.isFinite(parsed) ? parsed : issuedAt + seconds * 1000
      const scope = yield* Scope.fork(parent, "sequential")
      const client = yield* options.connect({
        cluster: options.connection.cluster,
        namespace,
        user: serviceAccountUserName(namespace, serviceAccount),
        endpoint: options.connection.endpoint,
        auth: { _tag: "Token", token: Redacted.make(issued.token) }
      }).pipe(Scope.provide(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
      return { client, scope, refreshIn: refreshDelayMs(issuedAt, expiresAt) }
    })
    let current = yield* open
    let retired: Scope.Closeable | undefined
    yield* Effect.forkScoped(Effect.gen(function*() {
      let delay = current.refreshIn
      while (true) {
        yield* Effect.sleep(delay)
        if (retired !== undefined) yield* Scope.close(retired, Exit.void)
        retired = undefined
        const next = yield* Effect.result(open)
        if (Result.isFailure(next)) {
          yield* Effect.logWarning("local kubelet: could not refresh a pod's service-account token; trying again").pipe(
            Effect.annotateLogs({ pod: pod.metadata.name ?? "", namespace, serviceAccount, reason: next.failure.reason, detail: next.failure.detail })
          )
          delay = refreshRetryMs
          continue
        }
        // Calls already under way finish on the old connection: it is closed at the next refresh.
        retired = current.scope
        current = next.success
        delay = current.refreshIn
      }
    }))
    // Each call goes to the connection holding the newest token.
    return new Proxy(current.client, {
      get: (_target, property) => {
        const client = current.client
        const value = Reflect.get(client, property, client) as unknown
        return typeof value === "function" ? (value as (...args: Array<unknown>) => unknown).bind(client) : value
      }
    })
  })

/**
 * The pods' clients of a node agent connected with `connection` as `client`:
 * the client's own TokenRequest API if it has one, else the live cluster's.
 */
export const podServiceAccountClients = (
  client: KubeClientShape,
  connection: ConnectionSpec,
  /** The agent's node: tokens only for pods bound to it. */
  nodeName?: string
): Effect.Effect<PodServiceAccountClient, KubeError, Scope.Scope | KubeConnector> =>
  Effect.gen(function*() {
    const connector = yield* KubeConnector
    const requests = tokenRequestsOf(client) ?? (yield* liveTokenRequests(connection))
    return boundTokenClients({ requests, connection, connect: connector.connect, nodeName })
  })
