/**
 * The controller's connection to its own cluster: in-cluster service account
 * (the default inside a pod) or an operator-supplied kubeconfig file
 * (`--kubeconfig`, `KUBECONFIG`). This is operator-owned configuration, so
 * certificate and CA files are read here once and inlined; token files (the
 * projected service-account token in a pod) stay files that the live connector
 * reads again as they rotate, and exec plugins are kept for it to run under a
 * timeout.
 */
import { KubeConfig } from "@kubernetes/client-node"
import { Effect, Redacted, Schema } from "effect"
import * as fs from "node:fs"
import type { ClusterAuth, ConnectionSpec } from "../api/Connection.js"

export class LocalConnectionError extends Schema.TaggedError<LocalConnectionError>()("LocalConnectionError", {
  source: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.source}: ${this.detail}`
  }
}

const readBase64 = (path: string): string => fs.readFileSync(path).toString("base64")

/** A token file must be there at start (read again later, as it rotates): a missing one is a configuration error. */
const readableFile = (path: string): string => {
  fs.accessSync(path, fs.constants.R_OK)
  return path
}

export const loadLocalConnection = (options: {
  readonly kubeconfig?: string | undefined
  readonly context?: string | undefined
  /** Name to give the cluster (the configmap's `cluster`); filled in later when unknown. */
  readonly cluster?: string | undefined
  /** Prefix of the service-account paths (/var/run/secrets/kubernetes.io/serviceaccount/...); tests only. */
  readonly inClusterPathPrefix?: string | undefined
}): Effect.Effect<ConnectionSpec, LocalConnectionError> =>
  Effect.try({
    try: () => {
      const kc = new KubeConfig()
      const path = options.kubeconfig ?? process.env["KUBECONFIG"]
      if (path) kc.loadFromFile(path)
      else kc.loadFromCluster(options.inClusterPathPrefix)
      if (options.context) kc.setCurrentContext(options.context)
      const cluster = kc.getCurrentCluster()
      const user = kc.getCurrentUser()
      if (!cluster) throw new Error("no current cluster")
      if (!user) throw new Error("no current user")
      const u = user as unknown as Record<string, unknown>
      const authProvider = u["authProvider"] as { name?: string; config?: Record<string, string> } | undefined
      let auth: ClusterAuth
      if (user.token) auth = { _tag: "Token", token: Redacted.make(user.token) }
      else if (authProvider?.name === "tokenFile" && typeof authProvider.config?.["tokenFile"] === "string") {
        // What @kubernetes/client-node's loadFromCluster() describes the projected token as.
        auth = { _tag: "TokenFile", path: readableFile(authProvider.config["tokenFile"]) }
      } else if (authProvider !== undefined) {
        throw new Error(`auth-provider ${authProvider.name ?? ""} is not supported: use a token, a token file, a client certificate or an exec plugin`)
      } else if (user.exec) {
        const exec = user.exec as { command: string; args?: Array<string>; env?: Array<{ name: string; value: string }>; apiVersion?: string }
        auth = {
          _tag: "Exec",
          command: exec.command,
          args: exec.args ?? [],
          env: Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value])),
          apiVersion: exec.apiVersion ?? "client.authentication.k8s.io/v1"
        }
      } else if ((user.certData || user.certFile) && (user.keyData || user.keyFile)) {
        auth = {
          _tag: "ClientCertificate",
          certificateData: user.certData ?? readBase64(user.certFile!),
          keyData: Redacted.make(user.keyData ?? readBase64(user.keyFile!))
        }
      } else if (typeof u["tokenFile"] === "string") {
        auth = { _tag: "TokenFile", path: readableFile(u["tokenFile"]) }
      } else auth = { _tag: "Anonymous" }
      const caData = cluster.caData ?? (cluster.caFile ? readBase64(cluster.caFile) : undefined)
      return {
        cluster: options.cluster ?? cluster.name,
        user: user.name,
        endpoint: {
          server: cluster.server,
          ...(caData ? { certificateAuthorityData: caData } : {}),
          ...(cluster.skipTLSVerify ? { insecureSkipTlsVerify: true } : {}),
          ...(cluster.tlsServerName ? { tlsServerName: cluster.tlsServerName } : {})
        },
        auth
      } satisfies ConnectionSpec
    },
    catch: (e) =>
      new LocalConnectionError({
        source: options.kubeconfig ?? process.env["KUBECONFIG"] ?? "in-cluster config",
        detail: e instanceof Error ? e.message : String(e)
      })
  })
