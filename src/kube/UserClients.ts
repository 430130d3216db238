/**
 * Clients that act as the workflow's owner: built from the secret
 * `<serviceAccountName>-kubeconfig` (item `value`) in the workflow's
 * namespace, with the untrusted-kubeconfig policy of `kubeconfig/UserKubeconfig`
 * (allowlisted credentials only; the endpoint is always the operator's).
 * Pods outside the workflow's own namespace are created with these and with
 * nothing else.
 *
 * The secret is read on every request (a deleted or changed secret counts at
 * once); its parsed kubeconfig is kept per secret and reused while the text is
 * the same (parsing YAML was about 1 ms per remote pod: issue 14's bench). Clients are shared in an `RcMap` keyed
 * by the secret and a hash of the connection chosen from it (cluster,
 * namespace, endpoint, credentials), so concurrent first uses open one
 * connection, and a secret whose content changed gets a new client on the next
 * request. A client nobody holds is closed after `idleTimeToLive`; that is also
 * how the client of an older version of a secret goes away, since closing it
 * at once could cut a request still running on it. A failed connection is not
 * kept: the next request tries again. Plaintext credentials are never part of
 * a key (only their SHA-256).
 */
import { Context, type Duration, Effect, Equal, Hash, Layer, RcMap, Schema, type Scope } from "effect"
import { type Kubeconfig, parseKubeconfig } from "../kubeconfig/Kubeconfig.js"
import { secretValue, userConnection } from "../kubeconfig/UserKubeconfig.js"
import { type ConnectionSpec, fingerprintOf } from "./api/Connection.js"
import { KubeClient, type KubeClientShape } from "./api/KubeClient.js"
import { KubeConnector } from "./api/KubeConnector.js"
import { isTransient } from "./api/KubeError.js"
import * as ParsedKubeconfigs from "./ParsedKubeconfigs.js"

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

export interface UserClientsOptions {
  /**
   * How long a client stays open after its last use (default 5 minutes). Must outlast the longest
   * request made with a client from `clientFor`, which holds no reference to it.
   */
  readonly idleTimeToLive?: Duration.Input
  /** Where the secrets' parsed kubeconfigs are kept (default: a new one, bounded by `ParsedKubeconfigs.defaultLimits`). */
  readonly parsedKubeconfigs?: ParsedKubeconfigs.ParsedKubeconfigs<Kubeconfig>
}

export const defaultIdleTimeToLive: Duration.Input = "5 minutes"

/** How many secrets' parsed kubeconfigs are kept (the least recently used goes first), and their texts' bytes at most. */
export const parsedKubeconfigsKept = ParsedKubeconfigs.defaultLimits.maxEntries
export const parsedKubeconfigsMaxTotalBytes = ParsedKubeconfigs.defaultLimits.maxTotalBytes
/** A kubeconfig text larger than this is parsed on every use, never kept. */
export const parsedKubeconfigMaxBytes = ParsedKubeconfigs.defaultLimits.maxEntryBytes

/**
 * One user connection in the map. Equal and hashed by `id` alone (the secret and a SHA-256 of the
 * connection spec); `spec` rides along for the lookup and keeps its credentials `Redacted`.
 */
class ConnectionKey implements Equal.Equal {
  constructor(
    readonly secretKey: string,
    readonly id: string,
    readonly spec: ConnectionSpec
  ) {}
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof ConnectionKey && that.id === this.id
  }
  [Hash.symbol](): number {
    return Hash.string(this.id)
  }
}

export class UserClients extends Context.Service<UserClients, {
  /**
   * A client for the request, open for at least `idleTimeToLive` after this call. Fails with
   * `UserCredentialsError` (`transient` when reading the secret or connecting may succeed later).
   */
  readonly clientFor: (request: UserClientRequest) => Effect.Effect<KubeClientShape, UserCredentialsError>
  /** As `clientFor`, and the client is not closed before the caller's scope is. */
  readonly acquire: (request: UserClientRequest) => Effect.Effect<KubeClientShape, UserCredentialsError, Scope.Scope>
  /**
   * Drops every client of a secret (when it was deleted or must no longer be used): an idle one
   * closes now, one held by a scope when that scope closes.
   */
  readonly invalidate: (namespace: string, secretName: string) => Effect.Effect<void>
}>()("flotilla/kube/UserClients") {
  /** `localClient` reads the secrets (the controller needs `get secrets` in workflow namespaces). */
  static readonly make = (localClient: KubeClientShape, options: UserClientsOptions = {}) => make(localClient, options)
  /** Reads the secrets with the `KubeClient` of the context. */
  static readonly layerWith = (options: UserClientsOptions = {}): Layer.Layer<UserClients, never, KubeClient | KubeConnector> =>
    Layer.effect(UserClients, Effect.flatMap(KubeClient, (local) => make(local, options)))
  static readonly layer: Layer.Layer<UserClients, never, KubeClient | KubeConnector> = UserClients.layerWith()
}

const make = Effect.fnUntraced(function*(localClient: KubeClientShape, options: UserClientsOptions) {
  const connector = yield* KubeConnector
  const clients = yield* RcMap.make({
    lookup: (key: ConnectionKey) =>
      connector.connect(key.spec).pipe(
        Effect.tap(() => Effect.logDebug("user client opened")),
        Effect.tap(() => Effect.addFinalizer(() => Effect.logDebug("user client closed"))),
        Effect.annotateLogs({ secret: key.secretKey, cluster: key.spec.cluster, namespace: key.spec.namespace ?? "" })
      ),
    idleTimeToLive: options.idleTimeToLive ?? defaultIdleTimeToLive
  })
  // reused while a secret's text is the same; dropped when the secret is found deleted
  const parsed = options.parsedKubeconfigs ?? ParsedKubeconfigs.make<Kubeconfig>()
  const forgetParsed = parsed.forget
  const parseCached = (secretKey: string, text: string, source: string) =>
    parsed.parse(secretKey, text, (text) => parseKubeconfig(text, source))

  const acquire = Effect.fnUntraced(function*(request: UserClientRequest): Effect.fn.Return<KubeClientShape, UserCredentialsError, Scope.Scope> {
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
      // a deleted secret's credentials are not kept on the heap either
      Effect.tapError((e) => e.reason === "NotFound" ? Effect.sync(() => forgetParsed(secretKey)) : Effect.void),
      Effect.mapError((e) =>
        fail(
          e.reason === "NotFound"
            ? `secret not found: create it in namespace "${request.workflowNamespace}" with item "value" holding a kubeconfig that has a context for cluster "${request.cluster}" and namespace "${request.namespace}"`
            : e.message,
          isTransient(e)
        )
      )
    )
    const source = `secret ${secretKey}`
    const spec = yield* secretValue(secret, "value", source).pipe(
      Effect.flatMap((text) => parseCached(secretKey, text, source)),
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
    const key = new ConnectionKey(secretKey, `${secretKey}|${fingerprintOf(spec)}`, spec)
    return yield* RcMap.get(clients, key).pipe(
      // A failed connection stays in the map until released; drop it so the next request retries.
      Effect.tapError(() => RcMap.invalidate(clients, key)),
      Effect.mapError((e) => fail(e.message, isTransient(e)))
    )
  })

  return UserClients.of({
    clientFor: (request) => Effect.scoped(acquire(request)),
    acquire,
    invalidate: (namespace, secretName) =>
      Effect.gen(function*() {
        const secretKey = `${namespace}/${secretName}`
        forgetParsed(secretKey)
        const keys = [...yield* RcMap.keys(clients)].filter((key) => key.secretKey === secretKey)
        yield* Effect.forEach(keys, (key) => RcMap.invalidate(clients, key), { discard: true })
      })
  })
})
