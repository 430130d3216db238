/**
 * The options of a live connector and the `KubeConfig` of one connection:
 * always a fresh object with exactly one cluster, user and context made from
 * the `ConnectionSpec`, never shared (switching the current context of a
 * shared object silently changes whose credentials are used) and never a
 * user's kubeconfig file loaded as is.
 */
import { KubeConfig } from "@kubernetes/client-node"
import { type Duration, Redacted } from "effect"
import type { ConnectionSpec } from "../api/Connection.js"
import type { RateLimit } from "./rateLimit.js"

export interface LiveKubeConnectorOptions {
  /** Timeout of one non-watch request, and of a watch request's answer (not of the watch). Default 60s. */
  readonly requestTimeout?: Duration.Input
  /** Timeout of one run of an exec credential command. Default 30s. */
  readonly execTimeout?: Duration.Input
  /** Page size of list requests. Default 500. */
  readonly listPageSize?: number
  /**
   * Client-side rate limit of every connection (its own token buckets, as client-go's
   * `--qps`/`--burst`, one for argoproj.io and one for the rest as Argo's two clientsets):
   * every request and every watch opened takes a token. Default: none.
   */
  readonly rateLimit?: RateLimit | undefined
}

/**
 * A fresh KubeConfig with a single cluster/user/context made from the spec.
 * Exec auth gets a user with no credential; the bearer token is added per
 * request by the connection (see `connect`).
 */
export const buildKubeConfig = (spec: ConnectionSpec): KubeConfig => {
  const { endpoint, auth } = spec
  const user: Record<string, unknown> = { name: spec.user }
  switch (auth._tag) {
    case "Token":
      user.token = Redacted.value(auth.token)
      break
    case "ClientCertificate":
      user.certData = auth.certificateData
      user.keyData = Redacted.value(auth.keyData)
      break
    case "Exec":
    case "TokenFile":
    case "Anonymous":
      break
  }
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{
      name: spec.cluster,
      server: endpoint.server.replace(/\/+$/, ""),
      ...(endpoint.certificateAuthorityData ? { caData: endpoint.certificateAuthorityData } : {}),
      ...(endpoint.tlsServerName ? { tlsServerName: endpoint.tlsServerName } : {}),
      // plain http carries no TLS to verify; client-node refuses it otherwise
      skipTLSVerify: endpoint.insecureSkipTlsVerify === true || endpoint.server.startsWith("http:")
    }],
    users: [user],
    contexts: [{
      name: spec.cluster,
      cluster: spec.cluster,
      user: spec.user,
      ...(spec.namespace ? { namespace: spec.namespace } : {})
    }],
    currentContext: spec.cluster
  })
  return kc
}
