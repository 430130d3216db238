/**
 * Clients that act as the workflow's owner: built from the secret
 * `<serviceAccountName>-kubeconfig` (item `value`) in the workflow's
 * namespace, with the untrusted-kubeconfig policy of `kubeconfig/UserKubeconfig`
 * (allowlisted credentials only; the endpoint is always the operator's).
 * Pods outside the workflow's own namespace are created with these and with
 * nothing else.
 *
 * Clients are cached per (secret, secret resourceVersion, cluster, namespace,
 * endpoint); a new version of the secret evicts and closes the old clients, so
 * a rotated token takes effect on the next pod.
 */
import { Context, Effect, Exit, Layer, Ref, Schema, Scope } from "effect"
import { parseKubeconfig } from "../kubeconfig/Kubeconfig.js"
import { secretValue, userConnection } from "../kubeconfig/UserKubeconfig.js"
import type { ConnectionSpec } from "./Connection.js"
import type { KubeClientShape } from "./KubeClient.js"
import { KubeConnector } from "./KubeConnector.js"
import { isTransient } from "./KubeError.js"

export class UserCredentialsError extends Schema.TaggedError<UserCredentialsError>()("UserCredentialsError", {
  workflow: Schema.String,
  secret: Schema.String,
  cluster: Schema.String,
  namespace: Schema.String,
  detail: Schema.String,
  /**
   * The secret could not be read or the connection not opened for a reason that may go away
   * (API server unavailable, timeout): worth retrying, unlike a missing or invalid secret.
   */
  transient: Schema.optionalKey(Schema.Boolean)
}) {
  override get message(): string {
    return `workflow ${this.workflow}: cannot create pods in cluster "${this.cluster}" namespace "${this.namespace}" with secret ${this.secret}: ${this.detail}`
  }
}

export interface UserClientRequest {
  readonly workflowNamespace: string
  readonly workflowName: string
  readonly serviceAccountName: string
  readonly cluster: string
  readonly namespace: string
  /** The operator's connection for `cluster`: its endpoint is the only one users may reach. */
  readonly system: ConnectionSpec
  readonly allowInsecureSkipTlsVerify: boolean
}

export const userKubeconfigSecretName = (serviceAccountName: string): string => `${serviceAccountName}-kubeconfig`

interface Cached {
  readonly secretKey: string
  readonly version: string
  readonly client: KubeClientShape
  readonly scope: Scope.Closeable
}

const endpointKey = (spec: ConnectionSpec): string => JSON.stringify(spec.endpoint)

export class UserClients extends Context.Service<UserClients, {
  readonly clientFor: (request: UserClientRequest) => Effect.Effect<KubeClientShape, UserCredentialsError>
  /** Drops every cached client of a secret (called when it changes or is deleted). */
  readonly invalidate: (namespace: string, secretName: string) => Effect.Effect<void>
}>()("flotilla/kube/UserClients") {
  /** `localClient` reads the secrets (the controller needs `get secrets` in workflow namespaces). */
  static readonly make = (localClient: KubeClientShape) => make(localClient)
  static readonly layer = (localClient: KubeClientShape) => Layer.effect(UserClients, make(localClient))
}

const make = Effect.fnUntraced(function*(localClient: KubeClientShape) {
  const connector = yield* KubeConnector
  const cache = yield* Ref.make(new Map<string, Cached>())

  const evict = (predicate: (entry: Cached) => boolean) =>
    Effect.gen(function*() {
      const dropped: Array<Cached> = []
      yield* Ref.update(cache, (m) => {
        const next = new Map(m)
        for (const [key, entry] of m) {
          if (predicate(entry)) {
            dropped.push(entry)
            next.delete(key)
          }
        }
        return next
      })
      yield* Effect.forEach(dropped, (e) => Scope.close(e.scope, Exit.void), { discard: true })
    })

  yield* Effect.addFinalizer(() => evict(() => true))

  const clientFor = Effect.fnUntraced(function*(request: UserClientRequest): Effect.fn.Return<KubeClientShape, UserCredentialsError> {
    const secretName = userKubeconfigSecretName(request.serviceAccountName)
    const secretKey = `${request.workflowNamespace}/${secretName}`
    const fail = (detail: string, transient = false) =>
      new UserCredentialsError({
        workflow: `${request.workflowNamespace}/${request.workflowName}`,
        secret: secretKey,
        cluster: request.cluster,
        namespace: request.namespace,
        detail,
        transient
      })

    const secret = yield* localClient.get("secrets", request.workflowNamespace, secretName).pipe(
      Effect.mapError((e) =>
        fail(
          e.reason === "NotFound"
            ? `secret not found: create it in namespace "${request.workflowNamespace}" with item "value" holding a kubeconfig that has a context for cluster "${request.cluster}" and namespace "${request.namespace}"`
            : e.message,
          isTransient(e)
        )
      )
    )
    const version = secret.metadata.resourceVersion ?? ""
    const key = [secretKey, version, request.cluster, request.namespace, endpointKey(request.system)].join("|")
    const hit = (yield* Ref.get(cache)).get(key)
    if (hit) return hit.client

    // A newer version of the secret replaces every client built from an older one.
    yield* evict((e) => e.secretKey === secretKey && e.version !== version)

    const source = `secret ${secretKey}`
    const spec = yield* secretValue(secret, "value", source).pipe(
      Effect.flatMap((text) => parseKubeconfig(text, source)),
      Effect.flatMap((doc) =>
        userConnection(doc, {
          source,
          cluster: request.cluster,
          namespace: request.namespace,
          system: request.system,
          allowInsecureSkipTlsVerify: request.allowInsecureSkipTlsVerify
        })
      ),
      Effect.mapError((e) => fail(e.message))
    )
    const scope = yield* Scope.make()
    const client = yield* connector.connect(spec).pipe(
      Scope.provide(scope),
      Effect.tapError(() => Scope.close(scope, Exit.void)),
      Effect.mapError((e) => fail(e.message, isTransient(e)))
    )
    yield* Ref.update(cache, (m) => new Map(m).set(key, { secretKey, version, client, scope }))
    return client
  })

  return UserClients.of({
    clientFor,
    invalidate: (namespace, secretName) => evict((e) => e.secretKey === `${namespace}/${secretName}`)
  })
})

