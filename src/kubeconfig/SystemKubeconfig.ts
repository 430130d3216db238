/**
 * Validates the controller's own kubeconfig (secret `argo-kubeconfig` in the
 * system namespace, item `value`). It is operator-owned and trusted: bearer
 * tokens, inline client certificates, CA data, `insecure-skip-tls-verify` and
 * exec plugins are all fine. File references are inlined only when the caller
 * passes `readFile`.
 *
 * The document must have exactly one context per cluster, named after the
 * cluster (`contexts[i].name == contexts[i].context.cluster`). The context's
 * namespace, when set, restricts the controller to that namespace.
 *
 * One bad context never hides the good ones: each context yields either a
 * ConnectionSpec or a KubeconfigError.
 */
import { Effect, Redacted } from "effect"
import type { ClusterAuth, ClusterEndpoint, ConnectionSpec } from "../kube/api/Connection.js"
import { validateBearerToken } from "../kube/api/Validation.js"
import {
  errorCodeSuffix,
  errorsFor,
  findEntry,
  indexByName,
  indexList,
  isSet,
  normalizeBase64,
  setString,
  toBase64,
  toUtf8
} from "./internal.js"
import { type Kubeconfig, type NamedCluster, type NamedUser, parseKubeconfig } from "./Kubeconfig.js"
import { KubeconfigError } from "./KubeconfigError.js"

export interface SystemKubeconfigOptions {
  /** Where the document came from, e.g. `secret argo/argo-kubeconfig`; used in every error. */
  readonly source: string
  /**
   * Reads a file named by the kubeconfig (`tokenFile`, `client-certificate`,
   * `client-key`, `certificate-authority`). May throw. Without it such
   * references are errors asking the operator to inline the data.
   */
  readonly readFile?: (path: string) => string | Uint8Array
}

export interface SystemKubeconfig {
  /** One spec per valid context, in document order. */
  readonly clusters: ReadonlyArray<ConnectionSpec>
  /** One error per rejected context (or one for the document when it has no contexts). */
  readonly errors: ReadonlyArray<KubeconfigError>
}

type Fail = ReturnType<typeof errorsFor>

const ALLOWED_PROTOCOLS = new Set(["https:", "http:", "memory:"])

export const validateSystemKubeconfig = (doc: Kubeconfig, options: SystemKubeconfigOptions): SystemKubeconfig => {
  const contexts = doc.contexts ?? []
  if (contexts.length === 0) {
    return {
      clusters: [],
      errors: [errorsFor(options.source)("contexts", "kubeconfig has no contexts: add one context per cluster")]
    }
  }

  // cluster -> indexes of the contexts that claim it (by context.cluster, else by name); every map
  // is built once, so the whole document is validated in linear time however many entries share a name.
  const byCluster = new Map<string, Array<number>>()
  contexts.forEach((named, index) => {
    const key = named.context?.cluster ?? named.name
    if (!isSet(key)) return
    const indexes = byCluster.get(key as string)
    if (indexes === undefined) byCluster.set(key as string, [index])
    else indexes.push(index)
  })
  const byName = indexByName(contexts)
  const clusterIndex = indexByName(doc.clusters)
  const userIndex = indexByName(doc.users)

  const clusters: Array<ConnectionSpec> = []
  const errors: Array<KubeconfigError> = []
  contexts.forEach((named, index) => {
    const at = `contexts[${index}]`
    const name = setString(named.name)
    const fail = errorsFor(options.source, name)
    const result = ((): ConnectionSpec | KubeconfigError => {
      if (name === undefined) return fail(`${at}.name`, "context has no name")
      const context = named.context
      if (!context) return fail(`${at}.context`, "context has no body (cluster, user, namespace)")
      const cluster = setString(context.cluster)
      if (cluster === undefined) return fail(`${at}.context.cluster`, "context names no cluster")
      if (cluster !== name) {
        return fail(
          `${at}.context.cluster`,
          `context name "${name}" differs from its cluster "${cluster}"; each context must be named after its cluster`
        )
      }
      const sameCluster = byCluster.get(cluster) ?? []
      if (sameCluster.length > 1) {
        return fail(
          at,
          `cluster "${cluster}" has ${sameCluster.length} contexts (${
            indexList("contexts", sameCluster)
          }); exactly one context per cluster is allowed`
        )
      }
      const sameName = byName.get(name) ?? []
      if (sameName.length > 1) {
        return fail(at, `context name "${name}" is used by ${indexList("contexts", sameName)}`)
      }
      const userName = setString(context.user)
      if (userName === undefined) return fail(`${at}.context.user`, "context names no user")

      const clusterEntry = findEntry("clusters", doc.clusters, cluster, fail, clusterIndex)
      if (clusterEntry instanceof KubeconfigError) return clusterEntry
      const userEntry = findEntry("users", doc.users, userName, fail, userIndex)
      if (userEntry instanceof KubeconfigError) return userEntry

      const endpoint = systemEndpoint(clusterEntry.entry, `clusters[${clusterEntry.index}].cluster`, fail, options)
      if (endpoint instanceof KubeconfigError) return endpoint
      const auth = systemAuth(userEntry.entry, `users[${userEntry.index}].user`, fail, options)
      if (auth instanceof KubeconfigError) return auth

      const namespace = setString(context.namespace)
      return { cluster, namespace, user: userName, endpoint, auth }
    })()
    if (result instanceof KubeconfigError) errors.push(result)
    else clusters.push(result)
  })
  return { clusters, errors }
}

const readInline = (
  path: string,
  field: string,
  dataField: string,
  fail: Fail,
  options: SystemKubeconfigOptions
): string | Uint8Array | KubeconfigError => {
  if (!options.readFile) {
    return fail(
      field,
      `refers to a file, which the controller does not read from argo-kubeconfig; inline the content as ${dataField}`
    )
  }
  try {
    return options.readFile(path)
  } catch (error) {
    return fail(field, `cannot read file "${path}"${errorCodeSuffix(error)}`)
  }
}

/**
 * The endpoint of one `clusters[]` entry of an operator-owned kubeconfig (also of the
 * controller's own kubeconfig file: LocalKubeconfig.ts); `at` is the entry's field path.
 */
export const systemEndpoint = (
  named: NamedCluster,
  at: string,
  fail: Fail,
  options: SystemKubeconfigOptions
): ClusterEndpoint | KubeconfigError => {
  const cluster = named.cluster
  if (!cluster) return fail(at, "cluster entry has no body")
  const server = setString(cluster.server)
  if (server === undefined) return fail(`${at}.server`, "cluster has no server")
  // The URL parser would silently drop tabs and line breaks (and trim spaces); refuse them instead.
  if (/[\u0000-\u0020\u007f]/.test(server)) {
    return fail(`${at}.server`, "server contains whitespace or a control character")
  }
  let url: URL
  try {
    url = new URL(server)
  } catch {
    return fail(`${at}.server`, "server is not a valid URL")
  }
  if (!ALLOWED_PROTOCOLS.has(url.protocol)) {
    return fail(`${at}.server`, `server must be an https:// (or http://, memory://) URL, not ${url.protocol}`)
  }
  if (url.username !== "" || url.password !== "") {
    return fail(`${at}.server`, "server URL must not contain credentials")
  }
  if (isSet(cluster["proxy-url"])) {
    return fail(`${at}.proxy-url`, "proxy-url is not supported")
  }

  let certificateAuthorityData: string | undefined
  const caData = cluster["certificate-authority-data"]
  const caFile = cluster["certificate-authority"]
  if (isSet(caData) && isSet(caFile)) {
    return fail(`${at}.certificate-authority`, "both certificate-authority and certificate-authority-data are set; keep one")
  }
  if (isSet(caData)) {
    certificateAuthorityData = normalizeBase64(caData as string)
    if (certificateAuthorityData === undefined) {
      return fail(`${at}.certificate-authority-data`, "is not valid base64")
    }
  } else if (isSet(caFile)) {
    const content = readInline(caFile as string, `${at}.certificate-authority`, "certificate-authority-data", fail, options)
    if (content instanceof KubeconfigError) return content
    certificateAuthorityData = toBase64(content)
  }

  const endpoint: {
    server: string
    certificateAuthorityData?: string
    tlsServerName?: string
    insecureSkipTlsVerify?: boolean
  } = { server }
  if (certificateAuthorityData !== undefined) endpoint.certificateAuthorityData = certificateAuthorityData
  if (isSet(cluster["tls-server-name"])) endpoint.tlsServerName = cluster["tls-server-name"] as string
  if (cluster["insecure-skip-tls-verify"] === true) endpoint.insecureSkipTlsVerify = true
  return endpoint
}

/**
 * What flotilla's connections cannot do, in a `users[]` entry: an auth-provider, basic
 * authentication, impersonation. An error for the first one set, else undefined.
 */
export const unsupportedAuth = (user: NonNullable<NamedUser["user"]>, at: string, fail: Fail): KubeconfigError | undefined => {
  if (isSet(user["auth-provider"])) {
    return fail(`${at}.auth-provider`, "auth-provider is not supported; use an exec credential plugin")
  }
  for (const key of ["username", "password"] as const) {
    if (isSet(user[key])) return fail(`${at}.${key}`, "basic authentication is not supported")
  }
  for (const key of ["as", "as-uid", "as-groups", "as-user-extra"] as const) {
    if (isSet(user[key])) return fail(`${at}.${key}`, "impersonation is not supported")
  }
  return undefined
}

/** The credential of one `users[]` entry of an operator-owned kubeconfig; `at` as for {@link systemEndpoint}. */
export const systemAuth = (
  named: NamedUser,
  at: string,
  fail: Fail,
  options: SystemKubeconfigOptions
): ClusterAuth | KubeconfigError => {
  const user = named.user
  if (!user) return { _tag: "Anonymous" }
  const unsupported = unsupportedAuth(user, at, fail)
  if (unsupported !== undefined) return unsupported

  const hasToken = isSet(user.token) || isSet(user.tokenFile)
  const hasCert = isSet(user["client-certificate"]) || isSet(user["client-certificate-data"]) ||
    isSet(user["client-key"]) || isSet(user["client-key-data"])
  const hasExec = isSet(user.exec)
  const methods = [hasToken ? "token" : undefined, hasCert ? "client certificate" : undefined, hasExec ? "exec" : undefined]
    .filter((method): method is string => method !== undefined)
  if (methods.length > 1) {
    return fail(at, `more than one credential (${methods.join(", ")}); keep exactly one`)
  }

  if (hasToken) {
    if (isSet(user.token) && isSet(user.tokenFile)) {
      return fail(`${at}.tokenFile`, "both token and tokenFile are set; keep one")
    }
    let token: string
    if (isSet(user.token)) {
      token = user.token as string
      const bad = validateBearerToken(token)
      if (bad !== undefined) return fail(`${at}.token`, bad)
    } else {
      const content = readInline(user.tokenFile as string, `${at}.tokenFile`, "token", fail, options)
      if (content instanceof KubeconfigError) return content
      token = toUtf8(content).trim()
      if (token === "") return fail(`${at}.tokenFile`, "token file is empty")
      const bad = validateBearerToken(token)
      if (bad !== undefined) return fail(`${at}.tokenFile`, `the file's ${bad}`)
    }
    return { _tag: "Token", token: Redacted.make(token) }
  }

  if (hasCert) {
    const certificateData = pemData(user, "client-certificate", at, fail, options)
    if (certificateData instanceof KubeconfigError) return certificateData
    const keyData = pemData(user, "client-key", at, fail, options)
    if (keyData instanceof KubeconfigError) return keyData
    return { _tag: "ClientCertificate", certificateData, keyData: Redacted.make(keyData) }
  }

  if (hasExec) {
    const exec = user.exec!
    if (!isSet(exec.command)) return fail(`${at}.exec.command`, "exec plugin has no command")
    if (!isSet(exec.apiVersion)) {
      return fail(`${at}.exec.apiVersion`, "exec plugin has no apiVersion (e.g. client.authentication.k8s.io/v1beta1)")
    }
    const env: Record<string, string> = {}
    for (const variable of exec.env ?? []) env[variable.name] = variable.value
    return {
      _tag: "Exec",
      command: exec.command as string,
      args: [...(exec.args ?? [])],
      env,
      apiVersion: exec.apiVersion as string
    }
  }

  return { _tag: "Anonymous" }
}

/** `client-certificate(-data)` or `client-key(-data)` as base64 PEM, reading the file when allowed. */
const pemData = (
  user: NonNullable<NamedUser["user"]>,
  base: "client-certificate" | "client-key",
  at: string,
  fail: Fail,
  options: SystemKubeconfigOptions
): string | KubeconfigError => {
  const data = user[`${base}-data`]
  const file = user[base]
  if (isSet(data) && isSet(file)) return fail(`${at}.${base}`, `both ${base} and ${base}-data are set; keep one`)
  if (isSet(data)) {
    const normalized = normalizeBase64(data as string)
    return normalized ?? fail(`${at}.${base}-data`, "is not valid base64")
  }
  if (isSet(file)) {
    const content = readInline(file as string, `${at}.${base}`, `${base}-data`, fail, options)
    return content instanceof KubeconfigError ? content : toBase64(content)
  }
  const other = base === "client-certificate" ? "client-key" : "client-certificate"
  return fail(`${at}.${base}-data`, `${other} is set without ${base}; both are required`)
}

/**
 * Parses then validates the system kubeconfig text. Fails only when the
 * document as a whole is unusable (malformed YAML, wrong shape); per-context
 * problems are in `errors`.
 */
export const loadSystemKubeconfig = (
  text: string,
  options: SystemKubeconfigOptions
): Effect.Effect<SystemKubeconfig, KubeconfigError> =>
  Effect.map(parseKubeconfig(text, options.source), (doc) => validateSystemKubeconfig(doc, options))
