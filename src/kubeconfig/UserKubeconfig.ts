/**
 * Turns a workflow's kubeconfig (secret `<serviceAccountName>-kubeconfig` in
 * the workflow's namespace, item `value`) into the connection used to create a
 * pod in (cluster, namespace).
 *
 * The document is untrusted, so:
 * - the endpoint (server, CA data, TLS server name) always comes from the
 *   system spec (argo-kubeconfig); a user `clusters` entry for the cluster may
 *   only repeat the same server;
 * - credentials pass through an allowlist: `token`, or
 *   `client-certificate-data` + `client-key-data`. Exec plugins, auth
 *   providers, file references, basic auth, impersonation, proxies and (unless
 *   the operator opted in) `insecure-skip-tls-verify` are rejected, as is any
 *   field of the user entry this module does not know;
 * - only the chosen context's user and cluster entries are looked at.
 */
import { Effect, Redacted } from "effect"
import type { ClusterAuth, ClusterEndpoint, ConnectionSpec } from "../kube/api/Connection.js"
import { validateBearerToken } from "../kube/api/Validation.js"
import { errorsFor, findEntry, isSet, normalizeBase64, sameServer, setString } from "./internal.js"
import { type Kubeconfig, MAX_KUBECONFIG_BYTES, type NamedContext, parseKubeconfig } from "./Kubeconfig.js"
import { KubeconfigError, secretSource } from "./KubeconfigError.js"

export interface UserConnectionOptions {
  /** Where the document came from, e.g. `secret local/workflow-kubeconfig`; used in every error. */
  readonly source: string
  /** The cluster the pod goes to. */
  readonly cluster: string
  /** The namespace the pod goes to. */
  readonly namespace: string
  /** The system (argo-kubeconfig) spec for `cluster`: the endpoint is taken from it. */
  readonly system: ConnectionSpec
  /** Operator opt-in (controller configmap): let user kubeconfigs set `insecure-skip-tls-verify: true`. */
  readonly allowInsecureSkipTlsVerify?: boolean
}

/** User entry fields that are refused, with the reason given to the user. */
const FORBIDDEN_USER_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ["exec", "exec credential plugins are not allowed in a workflow kubeconfig (they would run a command in the controller)"],
  ["auth-provider", "auth-provider is not allowed in a workflow kubeconfig; use token or client-certificate-data"],
  ["tokenFile", "file references are not allowed in a workflow kubeconfig; put the token inline as token"],
  [
    "client-certificate",
    "file references are not allowed in a workflow kubeconfig; inline the certificate as client-certificate-data"
  ],
  ["client-key", "file references are not allowed in a workflow kubeconfig; inline the key as client-key-data"],
  ["username", "basic authentication (username/password) is not allowed in a workflow kubeconfig"],
  ["password", "basic authentication (username/password) is not allowed in a workflow kubeconfig"],
  ["as", "impersonation is not allowed in a workflow kubeconfig"],
  ["as-uid", "impersonation is not allowed in a workflow kubeconfig"],
  ["as-groups", "impersonation is not allowed in a workflow kubeconfig"],
  ["as-user-extra", "impersonation is not allowed in a workflow kubeconfig"]
]

/** User entry fields that are read, or harmless and ignored. */
const ALLOWED_USER_FIELDS = new Set(["token", "client-certificate-data", "client-key-data", "extensions"])

const describeContext = (named: NamedContext): string =>
  `"${named.name ?? ""}" (${isSet(named.context?.namespace) ? `namespace "${named.context?.namespace}"` : "all namespaces"})`

const check = (doc: Kubeconfig, options: UserConnectionOptions): ConnectionSpec | KubeconfigError => {
  const { cluster, namespace, source, system } = options
  const docFail = errorsFor(source)

  if (system.cluster !== cluster) {
    return docFail(undefined, `internal: system connection is for cluster "${system.cluster}", not "${cluster}"`)
  }
  if (system.namespace !== undefined && system.namespace !== namespace) {
    return docFail(
      undefined,
      `the controller manages only namespace "${system.namespace}" of cluster "${cluster}", not "${namespace}"`
    )
  }

  // Context selection: context.cluster == cluster, namespace exact (preferred) or empty.
  const contexts = (doc.contexts ?? []).map((named, index) => ({ named, index }))
  const forCluster = contexts.filter(({ named }) => named.context?.cluster === cluster)
  if (forCluster.length === 0) {
    return docFail("contexts", `no context for cluster "${cluster}"`)
  }
  const exact = forCluster.filter(({ named }) => named.context?.namespace === namespace)
  const anyNamespace = forCluster.filter(({ named }) => !isSet(named.context?.namespace))
  const pool = exact.length > 0 ? exact : anyNamespace
  if (pool.length === 0) {
    return docFail(
      "contexts",
      `no context for cluster "${cluster}" allows namespace "${namespace}" (contexts for that cluster: ${
        forCluster.map(({ named }) => describeContext(named)).join(", ")
      })`
    )
  }
  const chosen = pool.find(({ named }) => named.name === cluster) ?? pool[0]
  const at = `contexts[${chosen.index}]`
  const fail = errorsFor(source, isSet(chosen.named.name) ? (chosen.named.name as string) : at)

  // Cluster entries the chosen context points at: may not redirect or weaken the endpoint.
  let insecureSkipTlsVerify = false
  const clusterEntries = (doc.clusters ?? []).map((named, index) => ({ named, index }))
    .filter(({ named }) => named.name === cluster)
  for (const { index, named } of clusterEntries) {
    const body = named.cluster
    if (!body) continue
    const path = `clusters[${index}].cluster`
    if (isSet(body.server) && !sameServer(body.server as string, system.endpoint.server)) {
      return fail(
        `${path}.server`,
        `server differs from the controller's endpoint for cluster "${cluster}"; the endpoint always comes from argo-kubeconfig (remove server or make it match)`
      )
    }
    if (isSet(body["certificate-authority"])) {
      return fail(
        `${path}.certificate-authority`,
        "file references are not allowed in a workflow kubeconfig; the CA comes from argo-kubeconfig"
      )
    }
    if (isSet(body["proxy-url"])) {
      return fail(`${path}.proxy-url`, "proxy-url is not allowed in a workflow kubeconfig")
    }
    if (body["insecure-skip-tls-verify"] === true) {
      if (!options.allowInsecureSkipTlsVerify) {
        return fail(
          `${path}.insecure-skip-tls-verify`,
          "insecure-skip-tls-verify is not allowed in a workflow kubeconfig unless the controller configuration allows it"
        )
      }
      insecureSkipTlsVerify = true
    }
  }

  // The user entry: allowlisted credentials only.
  const userName = setString(chosen.named.context?.user)
  if (userName === undefined) return fail(`${at}.context.user`, "context names no user")
  const userEntry = findEntry("users", doc.users, userName, fail)
  if (userEntry instanceof KubeconfigError) return userEntry
  const userAt = `users[${userEntry.index}].user`
  const user = userEntry.entry.user
  const noCredential = `no usable credential: set token, or client-certificate-data and client-key-data`
  if (!user) return fail(userAt, noCredential)
  const fields = user as Readonly<Record<string, unknown>>
  for (const [key, reason] of FORBIDDEN_USER_FIELDS) {
    if (isSet(fields[key])) return fail(`${userAt}.${key}`, reason)
  }
  for (const key of Object.keys(fields)) {
    if (!ALLOWED_USER_FIELDS.has(key) && isSet(fields[key])) {
      return fail(
        `${userAt}.${key}`,
        "unsupported field in a workflow kubeconfig; only token, or client-certificate-data and client-key-data, are accepted"
      )
    }
  }

  const hasToken = isSet(user.token)
  const hasCert = isSet(user["client-certificate-data"])
  const hasKey = isSet(user["client-key-data"])
  let auth: ClusterAuth
  if (hasToken && (hasCert || hasKey)) {
    return fail(userAt, "both token and client certificate are set; keep exactly one credential")
  } else if (hasToken) {
    const bad = validateBearerToken(user.token as string)
    if (bad !== undefined) return fail(`${userAt}.token`, bad)
    auth = { _tag: "Token", token: Redacted.make(user.token as string) }
  } else if (hasCert || hasKey) {
    if (!hasKey) return fail(`${userAt}.client-key-data`, "client-certificate-data is set without client-key-data")
    if (!hasCert) return fail(`${userAt}.client-certificate-data`, "client-key-data is set without client-certificate-data")
    const certificateData = normalizeBase64(user["client-certificate-data"] as string)
    if (certificateData === undefined) return fail(`${userAt}.client-certificate-data`, "is not valid base64")
    const keyData = normalizeBase64(user["client-key-data"] as string)
    if (keyData === undefined) return fail(`${userAt}.client-key-data`, "is not valid base64")
    auth = { _tag: "ClientCertificate", certificateData, keyData: Redacted.make(keyData) }
  } else {
    return fail(userAt, noCredential)
  }

  const endpoint: ClusterEndpoint = insecureSkipTlsVerify
    ? { ...system.endpoint, insecureSkipTlsVerify: true }
    : system.endpoint
  return { cluster, namespace, user: userName, endpoint, auth }
}

/**
 * The connection for creating a pod in (`options.cluster`, `options.namespace`)
 * with the credentials of a workflow's kubeconfig. `spec.user` is the user
 * entry's name and `spec.namespace` the target namespace.
 */
export const userConnection = (
  doc: Kubeconfig,
  options: UserConnectionOptions
): Effect.Effect<ConnectionSpec, KubeconfigError> =>
  Effect.suspend(() => {
    const result = check(doc, options)
    return result instanceof KubeconfigError ? Effect.fail(result) : Effect.succeed(result)
  })

/** A Secret as read from the API (a KubeObject fits). */
export interface SecretLike {
  readonly metadata?: { readonly name?: string; readonly namespace?: string }
  readonly [key: string]: unknown
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * The text of one item of a Secret: `stringData[item]` if present (as the API
 * server would merge it), else `data[item]` decoded from base64 as UTF-8.
 * `source` defaults to `secret <namespace>/<name>`. Errors never include the
 * item's content. An item over 1 MiB (more than a Secret can hold, so not
 * from a real API server) is refused before it is decoded.
 */
export const secretValue = (
  secret: SecretLike,
  item: string = "value",
  source: string = secretSource(secret.metadata?.namespace ?? "", secret.metadata?.name ?? "")
): Effect.Effect<string, KubeconfigError> =>
  Effect.suspend(() => {
    const fail = (field: string, detail: string) => Effect.fail(errorsFor(source)(field, detail))
    const tooLarge = (bytes: number) =>
      `secret item is ${bytes} bytes, more than the 1 MiB (${MAX_KUBECONFIG_BYTES} bytes) a Secret can hold`
    const stringData = secret["stringData"]
    if (typeof stringData === "object" && stringData !== null && item in stringData) {
      const value = (stringData as Record<string, unknown>)[item]
      if (typeof value !== "string") return fail(`stringData.${item}`, "secret item is not a string")
      if (value === "") return fail(`stringData.${item}`, "secret item is empty")
      const bytes = Buffer.byteLength(value, "utf8")
      if (bytes > MAX_KUBECONFIG_BYTES) return fail(`stringData.${item}`, tooLarge(bytes))
      return Effect.succeed(value)
    }
    const data = secret["data"]
    if (typeof data !== "object" || data === null || !(item in data)) {
      return fail(`data.${item}`, `secret has no item "${item}"`)
    }
    const encoded = (data as Record<string, unknown>)[item]
    if (typeof encoded !== "string") return fail(`data.${item}`, "secret item is not a string")
    if (encoded === "") return fail(`data.${item}`, "secret item is empty")
    const base64 = normalizeBase64(encoded)
    if (base64 === undefined) return fail(`data.${item}`, "secret item is not valid base64")
    const decodedBytes = (base64.length / 4) * 3 - (base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0)
    if (decodedBytes > MAX_KUBECONFIG_BYTES) return fail(`data.${item}`, tooLarge(decodedBytes))
    try {
      return Effect.succeed(utf8.decode(Buffer.from(base64, "base64")))
    } catch {
      return fail(`data.${item}`, "secret item is not UTF-8 text")
    }
  })

/** Parses a workflow's kubeconfig text, then picks the connection as {@link userConnection} does. */
export const loadUserConnection = (
  text: string,
  options: UserConnectionOptions
): Effect.Effect<ConnectionSpec, KubeconfigError> =>
  Effect.flatMap(parseKubeconfig(text, options.source), (doc) => userConnection(doc, options))
