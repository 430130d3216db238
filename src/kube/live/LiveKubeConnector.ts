/**
 * `KubeConnector` over real API servers, through node:http(s).
 *
 * Every connection gets its own transport made from the `ConnectionSpec`
 * alone: an agent holding its CA, client certificate and TLS server name,
 * never shared between connections, so no request can leave with another
 * connection's credentials; a user's kubeconfig file is never loaded as is.
 * Requests and watches are plain HTTP on that agent (keep-alive), the bearer
 * token added per request. Exec credentials are run here, with a timeout,
 * and cached until they expire.
 *
 * Every failure is a `KubeError` naming cluster, verb, resource, namespace and
 * name, with the server's message; tokens are scrubbed from every detail.
 *
 * This module keeps the connector and `connect`; the parts live in `live/`:
 * `config` (options, transport), `session` (one connection's credentials and
 * lifetime), `execCredential` (exec plugins, token files), `requests` (one
 * HTTP request), `verbs` (get, list, create...), `watch`, `paths`, `errors`,
 * `rateLimit` (each connection's client-side token buckets: `rateLimit` option).
 * (@kubernetes/client-node did the TLS and watch parts before: it loads its
 * whole generated API, about 85 MB of the controller's RSS for the few
 * functions used; issue 14.)
 */
import { Effect, Layer, type Scope } from "effect"
import type { ConnectionSpec } from "../api/Connection.js"
import type { KubeClientShape } from "../api/KubeClient.js"
import { KubeConnector } from "../api/KubeConnector.js"
import type { KubeError } from "../api/KubeError.js"
import type { LiveKubeConnectorOptions } from "./config.js"
import { makeRequests } from "./requests.js"
import { makeSession } from "./session.js"
import { makeVerbs } from "./verbs.js"
import { makeWatch } from "./watch.js"

export { buildTransport, type LiveKubeConnectorOptions, type Transport } from "./config.js"
export { reasonFromNetworkError } from "./errors.js"
export { type ExecCredential, readTokenFile, runExecCredential } from "./execCredential.js"
export { type ConnectionBuckets, makeConnectionBuckets, makeTokenBucket, type RateLimit, type TokenBucket } from "./rateLimit.js"

/** Builds one live client; closing the scope aborts its watches and drops its connections. */
export const connect = (
  spec: ConnectionSpec,
  options: LiveKubeConnectorOptions = {}
): Effect.Effect<KubeClientShape, KubeError, Scope.Scope> =>
  Effect.gen(function*() {
    const session = yield* makeSession(spec, options)
    const verbs = makeVerbs(session, makeRequests(session))
    const watch = makeWatch(session)

    const identity = `${spec.user}@${spec.cluster}`
    const client: KubeClientShape = {
      cluster: spec.cluster,
      identity,
      get: verbs.get,
      list: verbs.list,
      watch,
      create: verbs.create,
      replace: verbs.replace,
      patch: verbs.patch,
      delete: verbs.delete,
      logs: verbs.logs
    }
    return client
  })

export const makeLayer = (options: LiveKubeConnectorOptions = {}): Layer.Layer<KubeConnector> =>
  Layer.succeed(KubeConnector, KubeConnector.of({ connect: (spec) => connect(spec, options) }))

export const LiveKubeConnector = {
  /** KubeConnector over real API servers, default timeouts. */
  layer: makeLayer(),
  /** The same with other timeouts, page size or a client-side rate limit (`rateLimit`). */
  layerWith: makeLayer,
  connect
} as const
