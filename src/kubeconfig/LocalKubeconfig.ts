/**
 * The controller's own kubeconfig file (`--kubeconfig`, `KUBECONFIG`): the
 * operator's, trusted as argo-kubeconfig is, turned into the ConnectionSpec of
 * one context (`--context`, else the file's current-context).
 *
 * As kubectl reads it: `KUBECONFIG` may list several files (joined by `:`),
 * merged so that the first file naming a cluster, user or context wins and the
 * first current-context set is used; file references (`certificate-authority`,
 * `client-certificate`, `client-key`, `tokenFile`, and an exec command given as
 * a relative path with a directory) are relative to the file naming them.
 * Certificates and keys are read once and inlined; a `tokenFile` stays a file,
 * which the live connector reads again as it rotates (client-go does the same).
 * The cluster and the credential are checked as argo-kubeconfig's are
 * (SystemKubeconfig.ts: no auth-provider, basic auth, impersonation or proxy),
 * except that a user may keep several credentials, of which one is used as
 * client-go would prefer it: a tokenFile, else a token, else the client
 * certificate (an exec plugin beside any of them is refused).
 */
import { Effect } from "effect"
import * as path from "node:path"
import type { ConnectionSpec } from "../kube/api/Connection.js"
import { errorCodeSuffix, errorsFor, isSet, setString } from "./internal.js"
import { type Kubeconfig, type NamedCluster, type NamedContext, type NamedUser, parseKubeconfig } from "./Kubeconfig.js"
import { KubeconfigError } from "./KubeconfigError.js"
import { systemAuth, systemEndpoint, unsupportedAuth } from "./SystemKubeconfig.js"

export interface LocalKubeconfigFile {
  readonly path: string
  readonly text: string
}

export interface LocalKubeconfigOptions {
  /** The context to use; the merged current-context when undefined. */
  readonly context?: string | undefined
  /** Name to give the cluster (the configmap's `cluster`); the kubeconfig's cluster name when undefined. */
  readonly cluster?: string | undefined
  /** Reads a file the kubeconfig names (a certificate, a key); may throw. */
  readonly readFile: (path: string) => string | Uint8Array
  /** Throws when a token file cannot be read now (it is read again later, as it rotates). */
  readonly checkReadable: (path: string) => void
}

const resolveIn = (dir: string, file: string | null | undefined): string | null | undefined =>
  isSet(file) && !path.isAbsolute(file as string) ? path.resolve(dir, file as string) : file

/** The document with its file references made absolute, relative to the file's folder. */
const withAbsolutePaths = (doc: Kubeconfig, file: string): Kubeconfig => {
  const dir = path.dirname(path.resolve(file))
  return {
    ...doc,
    clusters: doc.clusters?.map((named) =>
      named.cluster
        ? { ...named, cluster: { ...named.cluster, "certificate-authority": resolveIn(dir, named.cluster["certificate-authority"]) } }
        : named
    ),
    users: doc.users?.map((named) => {
      const user = named.user
      if (!user) return named
      const command = user.exec?.command
      // an exec command is resolved only when given as a path with a folder (./bin/cred), not a bare name looked up in PATH
      const execCommand = isSet(command) && (command as string).includes("/") ? resolveIn(dir, command) : command
      return {
        ...named,
        user: {
          ...user,
          "client-certificate": resolveIn(dir, user["client-certificate"]),
          "client-key": resolveIn(dir, user["client-key"]),
          tokenFile: resolveIn(dir, user.tokenFile),
          ...(user.exec ? { exec: { ...user.exec, command: execCommand } } : {})
        }
      }
    })
  }
}

/** The first entry of each name, across the files in order (kubectl's merge: the first file wins). */
const mergeByName = <A extends { readonly name?: string | null | undefined }>(
  lists: ReadonlyArray<ReadonlyArray<A> | null | undefined>
): Array<A> => {
  const seen = new Set<string>()
  const merged: Array<A> = []
  for (const list of lists) {
    for (const entry of list ?? []) {
      if (typeof entry.name !== "string" || seen.has(entry.name)) continue
      seen.add(entry.name)
      merged.push(entry)
    }
  }
  return merged
}

const indexOfName = <A extends { readonly name?: string | null | undefined }>(list: ReadonlyArray<A>, name: string): number =>
  list.findIndex((entry) => entry.name === name)

/** The connection of the chosen context of the (merged) kubeconfig files. */
export const loadLocalKubeconfig = (
  files: ReadonlyArray<LocalKubeconfigFile>,
  options: LocalKubeconfigOptions
): Effect.Effect<ConnectionSpec, KubeconfigError> =>
  Effect.gen(function*() {
    const source = files.map((file) => file.path).join(path.delimiter)
    const docs: Array<Kubeconfig> = []
    for (const file of files) docs.push(withAbsolutePaths(yield* parseKubeconfig(file.text, file.path), file.path))
    const clusters: Array<NamedCluster> = mergeByName(docs.map((doc) => doc.clusters))
    const users: Array<NamedUser> = mergeByName(docs.map((doc) => doc.users))
    const contexts: Array<NamedContext> = mergeByName(docs.map((doc) => doc.contexts))

    const contextName = options.context ?? docs.map((doc) => setString(doc["current-context"])).find((name) => name !== undefined)
    if (contextName === undefined) {
      return yield* errorsFor(source)("current-context", "no current-context is set: set one, or pass --context")
    }
    const fail = errorsFor(source, contextName)
    const contextIndex = indexOfName(contexts, contextName)
    if (contextIndex < 0) return yield* fail("contexts", `no context named "${contextName}"`)
    const context = contexts[contextIndex].context
    const clusterName = setString(context?.cluster)
    if (clusterName === undefined) return yield* fail(`contexts[${contextIndex}].context.cluster`, "context names no cluster")
    const clusterIndex = indexOfName(clusters, clusterName)
    if (clusterIndex < 0) return yield* fail("clusters", `no clusters entry named "${clusterName}"`)
    const userName = setString(context?.user)
    const userIndex = userName === undefined ? -1 : indexOfName(users, userName)
    if (userName !== undefined && userIndex < 0) return yield* fail("users", `no users entry named "${userName}"`)

    const validation = { source, readFile: options.readFile }
    const endpoint = systemEndpoint(clusters[clusterIndex], `clusters[${clusterIndex}].cluster`, fail, validation)
    if (endpoint instanceof KubeconfigError) return yield* endpoint
    if (!endpoint.server.startsWith("https:") && !endpoint.server.startsWith("http:")) {
      return yield* fail(`clusters[${clusterIndex}].cluster.server`, "server must be an https:// or http:// URL")
    }

    const named = userIndex < 0 ? { name: userName ?? "" } : users[userIndex]
    const user = named.user
    const at = `users[${userIndex}].user`
    let auth: ConnectionSpec["auth"]
    if (user === undefined || user === null) {
      auth = { _tag: "Anonymous" }
    } else {
      const unsupported = unsupportedAuth(user, at, fail)
      if (unsupported !== undefined) return yield* unsupported
      if (isSet(user.tokenFile) && !isSet(user.exec)) {
        // client-go: a tokenFile is read again as it rotates and wins over a token; a client
        // certificate beside it is left out (a connection carries one credential)
        const tokenFile = user.tokenFile as string
        try {
          options.checkReadable(tokenFile)
        } catch (error) {
          return yield* fail(`${at}.tokenFile`, `cannot read file "${tokenFile}"${errorCodeSuffix(error)}`)
        }
        auth = { _tag: "TokenFile", path: tokenFile }
      } else {
        // a token wins over a client certificate kept beside it (as client-node did; `kubectl config
        // set-credentials --token` keeps the certificate fields already there)
        const credential = isSet(user.token) && !isSet(user.exec)
          ? { ...named, user: { token: user.token } }
          : named
        const checked = systemAuth(credential, at, fail, validation)
        if (checked instanceof KubeconfigError) return yield* checked
        auth = checked
      }
    }
    return {
      cluster: options.cluster ?? clusterName,
      user: userName ?? "",
      endpoint,
      auth
    } satisfies ConnectionSpec
  })
