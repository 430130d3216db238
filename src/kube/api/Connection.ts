/**
 * What it takes to open a connection to one cluster, after a kubeconfig has
 * been validated: an endpoint and one credential. Nothing in here points at a
 * file or a command unless the kubeconfig was operator-owned (system), which is
 * the only place exec credentials may come from.
 */
import { Redacted } from "effect"
import { createHash } from "node:crypto"

export interface ClusterEndpoint {
  /** `https://host:port`, or `memory://<cluster>` for the in-memory runtime. */
  readonly server: string
  /** Base64 PEM, as in kubeconfig's `certificate-authority-data`. */
  readonly certificateAuthorityData?: string
  readonly tlsServerName?: string
  readonly insecureSkipTlsVerify?: boolean
}

export type ClusterAuth =
  | { readonly _tag: "Token"; readonly token: Redacted.Redacted<string> }
  | {
    readonly _tag: "ClientCertificate"
    /** Base64 PEM. */
    readonly certificateData: string
    readonly keyData: Redacted.Redacted<string>
  }
  | {
    /** Only ever built from the system (operator-owned) kubeconfig. */
    readonly _tag: "Exec"
    readonly command: string
    readonly args: ReadonlyArray<string>
    readonly env: Readonly<Record<string, string>>
    readonly apiVersion: string
  }
  | {
    /**
     * A bearer token read from a file and read again while it is in use, as
     * client-go does for a projected service-account token (the kubelet
     * rotates it). Only from the controller's own operator-owned connection.
     */
    readonly _tag: "TokenFile"
    readonly path: string
  }
  | { readonly _tag: "Anonymous" }

export interface ConnectionSpec {
  /** The cluster name (= context name in argo-kubeconfig). */
  readonly cluster: string
  /** The context's namespace; undefined means all namespaces. */
  readonly namespace?: string
  /** The kubeconfig user entry's name, for logs. Not a secret. */
  readonly user: string
  readonly endpoint: ClusterEndpoint
  readonly auth: ClusterAuth
}

/**
 * A hash of everything that identifies a connection, credentials included, so a rotated token
 * makes another connection. Redacted values must be unwrapped before JSON.stringify (their toJSON
 * hides them, which made every token look the same); the result is hashed so no plaintext copy
 * of a credential is kept.
 */
export const fingerprintOf = (spec: ConnectionSpec): string => {
  const reveal = (value: unknown): unknown => {
    if (Redacted.isRedacted(value)) return { redacted: Redacted.value(value) }
    if (Array.isArray(value)) return value.map(reveal)
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]))
    }
    return value
  }
  return createHash("sha256").update(JSON.stringify(reveal(spec))).digest("hex")
}
