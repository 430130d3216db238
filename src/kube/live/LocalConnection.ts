/**
 * The controller's connection to its own cluster: an operator-supplied
 * kubeconfig file (`--kubeconfig`, `KUBECONFIG`, see kubeconfig/LocalKubeconfig.ts)
 * or, without one, the pod's service account (in-cluster). This is
 * operator-owned configuration, so certificate and CA files are read here once
 * and inlined; token files (the projected service-account token in a pod) stay
 * files that the live connector reads again as they rotate, and exec plugins
 * are kept for it to run under a timeout.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { errorCodeSuffix } from "../../kubeconfig/internal.js"
import { loadLocalKubeconfig } from "../../kubeconfig/LocalKubeconfig.js"
import type { ConnectionSpec } from "../api/Connection.js"

export class LocalConnectionError extends Schema.TaggedError<LocalConnectionError>()("LocalConnectionError", {
  source: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.source}: ${this.detail}`
  }
}

/** Where a pod's service account is mounted (token, ca.crt, namespace). */
export const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

/**
 * In a pod: the API server from `KUBERNETES_SERVICE_HOST`/`_PORT`, the
 * service account's CA and its projected token file, as client-go's
 * `InClusterConfig` reads them.
 */
const inCluster = (options: { readonly cluster?: string | undefined; readonly inClusterPathPrefix?: string | undefined }) =>
  Effect.gen(function*() {
    const source = "in-cluster config"
    const host = process.env["KUBERNETES_SERVICE_HOST"]
    const port = process.env["KUBERNETES_SERVICE_PORT"]
    if (!host || !port) {
      return yield* new LocalConnectionError({
        source,
        detail: "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running in a pod): pass --kubeconfig or set KUBECONFIG"
      })
    }
    const dir = options.inClusterPathPrefix === undefined ? serviceAccountDir : path.join(options.inClusterPathPrefix, serviceAccountDir)
    const caFile = path.join(dir, "ca.crt")
    const tokenFile = path.join(dir, "token")
    const certificateAuthorityData = yield* Effect.try({
      try: () => fs.readFileSync(caFile).toString("base64"),
      catch: (error) => new LocalConnectionError({ source, detail: `cannot read the service account's CA ${caFile}${errorCodeSuffix(error)}` })
    })
    // the token must be there at start (it is read again later, as the kubelet rotates it)
    yield* Effect.try({
      try: () => fs.accessSync(tokenFile, fs.constants.R_OK),
      catch: (error) =>
        new LocalConnectionError({ source, detail: `cannot read the service account's token ${tokenFile}${errorCodeSuffix(error)}` })
    })
    return {
      cluster: options.cluster ?? "inCluster",
      user: "inClusterUser",
      endpoint: { server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`, certificateAuthorityData },
      auth: { _tag: "TokenFile", path: tokenFile }
    } satisfies ConnectionSpec
  })

export const loadLocalConnection = (options: {
  readonly kubeconfig?: string | undefined
  readonly context?: string | undefined
  /** Name to give the cluster (the configmap's `cluster`); filled in later when unknown. */
  readonly cluster?: string | undefined
  /** Prefix of the service-account paths (/var/run/secrets/kubernetes.io/serviceaccount/...); tests only. */
  readonly inClusterPathPrefix?: string | undefined
}): Effect.Effect<ConnectionSpec, LocalConnectionError> => {
  const kubeconfig = options.kubeconfig ?? process.env["KUBECONFIG"]
  if (!kubeconfig) return inCluster(options)
  // KUBECONFIG may list several files; kubectl skips the ones that do not exist, a --kubeconfig must exist
  const paths = options.kubeconfig !== undefined ? [options.kubeconfig] : kubeconfig.split(path.delimiter).filter((p) => p !== "")
  return Effect.gen(function*() {
    const files: Array<{ path: string; text: string }> = []
    for (const file of paths) {
      const text = yield* Effect.try({
        try: () => fs.readFileSync(file, "utf8"),
        catch: (error) => error
      }).pipe(
        Effect.catch((error) =>
          options.kubeconfig === undefined && paths.length > 1 && errorCodeSuffix(error) === " (ENOENT)"
            ? Effect.succeed(undefined)
            : Effect.fail(new LocalConnectionError({ source: file, detail: `cannot read the kubeconfig${errorCodeSuffix(error)}` }))
        )
      )
      // kubectl reads an empty file of a KUBECONFIG list as an empty config
      if (text !== undefined && !(paths.length > 1 && text.trim() === "")) files.push({ path: file, text })
    }
    if (files.length === 0) {
      return yield* new LocalConnectionError({ source: kubeconfig, detail: "none of the kubeconfig files exists or has content" })
    }
    return yield* loadLocalKubeconfig(files, {
      context: options.context,
      cluster: options.cluster,
      readFile: (file) => fs.readFileSync(file),
      checkReadable: (file) => fs.accessSync(file, fs.constants.R_OK)
    }).pipe(
      Effect.mapError((error) =>
        new LocalConnectionError({
          source: error.source,
          detail: [error.context !== undefined ? `context ${JSON.stringify(error.context)}` : undefined, error.field, error.detail]
            .filter((part) => part !== undefined && part !== "")
            .join(": ")
        })
      )
    )
  })
}
