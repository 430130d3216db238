/**
 * The TokenRequest API (`authentication.k8s.io/v1`,
 * `POST /api/v1/namespaces/{ns}/serviceaccounts/{sa}/token`) as flotilla sees
 * it: what a node agent asks for a pod's service-account token
 * (kubelet/boundToken.ts), and what the in-memory API server answers
 * (testing/memory/tokens.ts).
 */
import type { Effect } from "effect"
import type { KubeError } from "./KubeError.js"

/** The `spec` of a TokenRequest. */
export interface TokenRequestSpec {
  /** Empty or absent: the API server's own audiences (what a pod's default projected token carries). */
  readonly audiences?: ReadonlyArray<string> | undefined
  readonly expirationSeconds?: number | undefined
  readonly boundObjectRef?: {
    readonly apiVersion?: string | undefined
    readonly kind: string
    readonly name: string
    readonly uid?: string | undefined
  } | undefined
}

/** The `status` of the TokenRequest the server answers with. */
export interface TokenRequestStatus {
  readonly token: string
  readonly expirationTimestamp: string
}

/** A client that can call the TokenRequest API (the in-memory clients can; a live one is made from a connection). */
export interface TokenRequests {
  readonly requestToken: (
    namespace: string,
    serviceAccount: string,
    spec: TokenRequestSpec
  ) => Effect.Effect<TokenRequestStatus, KubeError>
}
