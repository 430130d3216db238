/**
 * A workflow user whose remote credentials can be rotated and revoked while
 * the API servers keep running: a service account in the remote namespace,
 * allowed to create pods there, with tokens bound to an anchor Secret each
 * (TokenRequest `boundObjectRef`). Deleting the anchor revokes its token
 * (the API server checks the bound object on every request; its token cache
 * may accept it for up to 10 s more). The static tokens of
 * scripts/clusters/up.sh cannot be revoked without restarting the API server.
 */
import * as fs from "node:fs"
import * as https from "node:https"
import { caFile, kubectl, kubectlEnsure, server } from "./clusters.js"

export interface BoundToken {
  readonly cluster: string
  readonly namespace: string
  readonly serviceAccount: string
  /** The Secret the token is bound to: deleting it revokes the token. */
  readonly anchor: string
  readonly token: string
  /** The token's `jti`, which audit events carry as credential id `JTI=<jti>`. */
  readonly jti: string
}

/** Service account `name` in `cluster`/`namespace`, allowed to create pods there (and nothing else). */
export const ensureTokenUser = async (cluster: string, namespace: string, name: string): Promise<void> => {
  await kubectlEnsure(cluster, ["-n", namespace, "create", "serviceaccount", name])
  await kubectlEnsure(cluster, ["-n", namespace, "create", "role", `${name}-pods`, "--verb=create", "--resource=pods"])
  await kubectlEnsure(cluster, ["-n", namespace, "create", "rolebinding", `${name}-pods`, `--role=${name}-pods`, `--serviceaccount=${namespace}:${name}`])
}

/** A new token for the service account, bound to a new anchor Secret `anchor`. */
export const issueBoundToken = async (cluster: string, namespace: string, serviceAccount: string, anchor: string): Promise<BoundToken> => {
  await kubectlEnsure(cluster, ["-n", namespace, "create", "secret", "generic", anchor])
  const token = (await kubectl(cluster, [
    "-n", namespace, "create", "token", serviceAccount,
    "--bound-object-kind=Secret", `--bound-object-name=${anchor}`, "--duration=7200s"
  ])).trim()
  const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { jti?: string }
  if (claims.jti === undefined) throw new Error(`the token issued in ${cluster} has no jti claim`)
  return { cluster, namespace, serviceAccount, anchor, token, jti: claims.jti }
}

/** Revokes the token: deletes its anchor Secret. */
export const revokeBoundToken = async (t: BoundToken): Promise<void> => {
  await kubectl(t.cluster, ["-n", t.namespace, "delete", "secret", t.anchor, "--ignore-not-found"])
}

/** The API server's answer to GET /api with this token: 200 accepted, 401 refused, 0 no answer. */
export const tokenStatus = (cluster: string, token: string): Promise<number> =>
  new Promise((resolve) => {
    const req = https.get(new URL("/api", server(cluster)), {
      ca: fs.readFileSync(caFile()),
      headers: { authorization: `Bearer ${token}` },
      timeout: 3000
    }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resolve(0))
  })
