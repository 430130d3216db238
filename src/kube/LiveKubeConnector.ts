/**
 * `KubeConnector` over real API servers, through @kubernetes/client-node.
 *
 * Every connection gets its own, freshly built `KubeConfig` holding exactly one
 * cluster, one user and one context made from the `ConnectionSpec`: a
 * KubeConfig is never shared between connections (switching the current
 * context of a shared object silently changes whose credentials are used) and
 * a user's kubeconfig file is never loaded as is.
 *
 * Plain requests go through node:http(s) with the options the KubeConfig
 * computes (`applyToHTTPSOptions`: CA, client certificate, bearer token, agent);
 * watches go through the library's `Watch` class. Exec credentials are run here
 * (never by client-node), with a timeout, and cached until they expire.
 *
 * Every failure is a `KubeError` naming cluster, verb, resource, namespace and
 * name, with the server's message; tokens are scrubbed from every detail.
 */
import { KubeConfig, Watch } from "@kubernetes/client-node"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import { Cause, Clock, Duration, Effect, Layer, Queue, Redacted, Scope, Semaphore, Stream } from "effect"
import type { ClusterAuth, ConnectionSpec } from "./Connection.js"
import type { KubeClientShape } from "./KubeClient.js"
import { KubeConnector } from "./KubeConnector.js"
import { KubeError, type KubeErrorReason, reasonFromStatus } from "./KubeError.js"
import { validateBearerToken } from "./Validation.js"
import {
  apiVersionOf,
  type DeleteOptions,
  type KubeObject,
  type ListOptions,
  type MergePatch,
  type ObjectList,
  type ResourceKind,
  resources,
  type WatchEvent,
  type WatchOptions
} from "./Resources.js"

export interface LiveKubeConnectorOptions {
  /** Timeout of one non-watch request. Default 60s. */
  readonly requestTimeout?: Duration.Input
  /** Timeout of one run of an exec credential command. Default 30s. */
  readonly execTimeout?: Duration.Input
  /** Page size of list requests. Default 500. */
  readonly listPageSize?: number
}

type ExecAuth = Extract<ClusterAuth, { readonly _tag: "Exec" }>

interface ErrorContext {
  readonly cluster: string
  readonly verb: string
  readonly resource: string
  readonly namespace?: string | undefined
  readonly name?: string | undefined
}

const makeError = (ctx: ErrorContext, reason: KubeErrorReason, detail: string): KubeError =>
  new KubeError({
    reason,
    cluster: ctx.cluster,
    verb: ctx.verb,
    resource: ctx.resource,
    ...(ctx.namespace !== undefined ? { namespace: ctx.namespace } : {}),
    ...(ctx.name !== undefined ? { name: ctx.name } : {}),
    detail
  })

const timeoutCodes = new Set(["ETIMEDOUT", "ESOCKETTIMEDOUT", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"])

/** Maps a network-level failure (no HTTP status) to a reason. */
export const reasonFromNetworkError = (error: unknown): KubeErrorReason => {
  const err = error as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | undefined
  const code = typeof err?.code === "string" ? err.code : typeof err?.cause?.code === "string" ? err.cause.code : undefined
  if (err?.name === "TimeoutError" || (code !== undefined && timeoutCodes.has(code))) return "Timeout"
  return "Unavailable"
}

const describe = (error: unknown): string => {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const cause = (error as { cause?: unknown }).cause
    const causeText = cause instanceof Error && cause.message !== error.message ? ` (${cause.message})` : ""
    return `${typeof code === "string" ? `${code}: ` : ""}${error.message}${causeText}`
  }
  return String(error)
}

/** Reads a Kubernetes `Status` body (or any text) into a reason and message. */
const statusError = (ctx: ErrorContext, statusCode: number, body: string): KubeError => {
  let reason = reasonFromStatus(statusCode)
  let message = body.trim().slice(0, 1000) || http.STATUS_CODES[statusCode] || `HTTP ${statusCode}`
  try {
    const status = JSON.parse(body) as { kind?: string; message?: string; reason?: string }
    if (status && typeof status === "object" && status.kind === "Status") {
      if (typeof status.message === "string" && status.message !== "") message = status.message
      if (status.reason === "AlreadyExists") reason = "AlreadyExists"
    }
  } catch {
    // not JSON: keep the text
  }
  return makeError(ctx, reason, `${statusCode}: ${message}`)
}

// --- exec credentials -----------------------------------------------------------

export interface ExecCredential {
  readonly token: Redacted.Redacted<string>
  /** Epoch millis; undefined when the plugin gave no expiry. */
  readonly expiresAt: number | undefined
}

/**
 * Runs an exec credential plugin (kubectl's `users[].user.exec`) and reads its
 * ExecCredential. The command gets the process environment plus `auth.env`
 * and `KUBERNETES_EXEC_INFO`; it is killed (with its process group) when it
 * overruns `timeout` or the caller is interrupted.
 */
export const runExecCredential = (
  auth: ExecAuth,
  options: { readonly cluster: string; readonly timeout?: Duration.Input }
): Effect.Effect<ExecCredential, KubeError> => {
  const ctx: ErrorContext = { cluster: options.cluster, verb: "exec", resource: "credentials" }
  const timeout = Duration.fromInputUnsafe(options.timeout ?? "30 seconds")
  const run = Effect.callback<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }, KubeError>(
    (resume) => {
      let child: ReturnType<typeof spawn>
      try {
        child = spawn(auth.command, [...auth.args], {
          env: {
            ...process.env,
            ...auth.env,
            KUBERNETES_EXEC_INFO: JSON.stringify({
              apiVersion: auth.apiVersion,
              kind: "ExecCredential",
              spec: { interactive: false }
            })
          },
          stdio: ["ignore", "pipe", "pipe"],
          detached: true
        })
      } catch (error) {
        resume(Effect.fail(makeError(ctx, "Unauthorized", `cannot run ${auth.command}: ${describe(error)}`)))
        return
      }
      const stdout: Array<Buffer> = []
      const stderr: Array<Buffer> = []
      let stdoutSize = 0
      child.stdout?.on("data", (chunk: Buffer) => {
        stdoutSize += chunk.length
        if (stdoutSize <= 1024 * 1024) stdout.push(chunk)
      })
      child.stderr?.on("data", (chunk: Buffer) => {
        if (stderr.reduce((n, b) => n + b.length, 0) < 4096) stderr.push(chunk)
      })
      child.on("error", (error) => {
        resume(Effect.fail(makeError(ctx, "Unauthorized", `cannot run ${auth.command}: ${describe(error)}`)))
      })
      child.on("close", (code) => {
        resume(Effect.succeed({
          code,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8")
        }))
      })
      return Effect.sync(() => {
        // interrupted (timeout or caller gone): kill the whole process group
        try {
          if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
        } catch {
          try {
            child.kill("SIGKILL")
          } catch {
            // already gone
          }
        }
      })
    }
  )
  return run.pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(makeError(ctx, "Timeout", `${auth.command} did not answer within ${Duration.toMillis(timeout)}ms`))
    }),
    Effect.flatMap(({ code, stdout, stderr }) => {
      if (code !== 0) {
        return Effect.fail(
          makeError(ctx, "Unauthorized", `${auth.command} exited with ${code}: ${stderr.trim().slice(0, 500)}`)
        )
      }
      return parseExecCredential(stdout, ctx, auth.command)
    })
  )
}

const parseExecCredential = (
  stdout: string,
  ctx: ErrorContext,
  command: string
): Effect.Effect<ExecCredential, KubeError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(stdout)
  } catch {
    return Effect.fail(makeError(ctx, "Unauthorized", `${command} did not print an ExecCredential (invalid JSON)`))
  }
  const credential = parsed as { kind?: unknown; status?: { token?: unknown; expirationTimestamp?: unknown } }
  if (!credential || typeof credential !== "object" || credential.kind !== "ExecCredential") {
    return Effect.fail(makeError(ctx, "Unauthorized", `${command} did not print an ExecCredential`))
  }
  const token = credential.status?.token
  if (typeof token !== "string" || token === "") {
    return Effect.fail(
      makeError(ctx, "Unauthorized", `${command} printed an ExecCredential without status.token (client certificates from exec are not supported)`)
    )
  }
  const bad = validateBearerToken(token)
  if (bad !== undefined) return Effect.fail(makeError(ctx, "Unauthorized", `${command} printed an ExecCredential whose status.token is unusable: ${bad}`))
  const expiry = credential.status?.expirationTimestamp
  let expiresAt: number | undefined
  if (typeof expiry === "string") {
    const millis = Date.parse(expiry)
    if (Number.isNaN(millis)) {
      return Effect.fail(makeError(ctx, "Unauthorized", `${command} printed an invalid expirationTimestamp`))
    }
    expiresAt = millis
  }
  return Effect.succeed({ token: Redacted.make(token), expiresAt })
}

/** How long a token read from a file is used before the file is read again (client-go: one minute). */
const tokenFileRefresh = 60_000

/**
 * Reads a bearer token file (a projected service-account token), to be read
 * again after `tokenFileRefresh` or a 401, so a rotated token takes effect.
 */
export const readTokenFile = (file: string, cluster: string): Effect.Effect<ExecCredential, KubeError> =>
  Effect.gen(function*() {
    const ctx: ErrorContext = { cluster, verb: "read", resource: "token file" }
    const text = yield* Effect.try({
      try: () => fs.readFileSync(file, "utf8").trim(),
      catch: (error) => makeError(ctx, "Unauthorized", `cannot read token file ${file}: ${describe(error)}`)
    })
    if (text === "") return yield* Effect.fail(makeError(ctx, "Unauthorized", `token file ${file} is empty`))
    const bad = validateBearerToken(text)
    if (bad !== undefined) return yield* Effect.fail(makeError(ctx, "Unauthorized", `token file ${file}: ${bad}`))
    const now = yield* Clock.currentTimeMillis
    return { token: Redacted.make(text), expiresAt: now + tokenFileRefresh + 10_000 }
  })

// --- KubeConfig -------------------------------------------------------------------

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

// --- paths --------------------------------------------------------------------------

const enc = encodeURIComponent

const apiBase = (kind: ResourceKind): string => {
  const info = resources[kind]
  return info.group === "" ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`
}

const collectionPath = (kind: ResourceKind, namespace: string | undefined): string =>
  resources[kind].namespaced && namespace
    ? `${apiBase(kind)}/namespaces/${enc(namespace)}/${kind}`
    : `${apiBase(kind)}/${kind}`

const query = (params: Record<string, string | number | boolean | undefined>): string => {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) search.set(key, String(value))
  }
  const text = search.toString()
  return text === "" ? "" : `?${text}`
}

const withTypeMeta = (kind: ResourceKind, object: KubeObject): KubeObject => ({
  ...object,
  apiVersion: object.apiVersion ?? apiVersionOf(kind),
  kind: object.kind ?? resources[kind].kind
})

// --- the connection -----------------------------------------------------------------

interface HttpRequest {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
  readonly path: string
  readonly body?: unknown
  readonly contentType?: string
  readonly accept?: string
}

interface HttpResponse {
  readonly status: number
  readonly body: string
}

/** Builds one live client; closing the scope aborts its watches and drops its connections. */
export const connect = (
  spec: ConnectionSpec,
  options: LiveKubeConnectorOptions = {}
): Effect.Effect<KubeClientShape, KubeError, Scope.Scope> =>
  Effect.gen(function*() {
    const requestTimeout = Duration.fromInputUnsafe(options.requestTimeout ?? "60 seconds")
    const pageSize = options.listPageSize ?? 500
    const base = { cluster: spec.cluster }
    const kc = yield* Effect.try({
      try: () => buildKubeConfig(spec),
      catch: (error) => makeError({ ...base, verb: "connect", resource: "cluster" }, "Invalid", describe(error))
    })
    const server = spec.endpoint.server.replace(/\/+$/, "")

    // secrets that must never show up in an error
    const secrets: Array<string> = []
    if (spec.auth._tag === "Token") secrets.push(Redacted.value(spec.auth.token))
    if (spec.auth._tag === "ClientCertificate") secrets.push(Redacted.value(spec.auth.keyData))
    const scrub = (text: string): string =>
      secrets.reduce((acc, secret) => (secret.length >= 4 ? acc.split(secret).join("[redacted]") : acc), text)
    const fail = (ctx: ErrorContext, reason: KubeErrorReason, detail: string) => makeError(ctx, reason, scrub(detail))

    // --- bearer tokens from an exec plugin (cached until they expire) or a token file (read again every minute) ---
    let bearer: ExecCredential | undefined
    const auth = spec.auth
    const fetchBearer: Effect.Effect<ExecCredential, KubeError> | undefined = auth._tag === "Exec"
      ? runExecCredential(auth, {
        cluster: spec.cluster,
        ...(options.execTimeout !== undefined ? { timeout: options.execTimeout } : {})
      })
      : auth._tag === "TokenFile"
      ? readTokenFile(auth.path, spec.cluster)
      : undefined
    const bearerLock = yield* Semaphore.make(1)
    if (fetchBearer) {
      kc.addAuthenticator({
        isAuthProvider: (user) => user.name === spec.user,
        applyAuthentication: async (_user, opts) => {
          if (bearer === undefined) return
          opts.headers = { ...(opts.headers ?? {}), Authorization: `Bearer ${Redacted.value(bearer.token)}` }
        }
      })
    }
    const ensureCredentials: Effect.Effect<void, KubeError> = fetchBearer === undefined
      ? Effect.void
      : bearerLock.withPermit(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (bearer !== undefined && (bearer.expiresAt === undefined || bearer.expiresAt - 10_000 > now)) return
        const credential = yield* fetchBearer.pipe(
          // A token file that cannot be read right now: keep using the token read before (as client-go does).
          Effect.catch((error) => auth._tag === "TokenFile" && bearer !== undefined ? Effect.succeed(bearer) : Effect.fail(error))
        )
        const token = Redacted.value(credential.token)
        if (!secrets.includes(token)) secrets.push(token)
        bearer = credential
      }))
    /** After a 401 the cached token is dropped, so the next call runs the plugin or reads the file again. */
    const onUnauthorized = Effect.sync(() => {
      bearer = undefined
    })

    // --- lifetime ---
    let closed = false
    const watchControllers = new Set<AbortController>()
    const agents = new Set<http.Agent>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const controller of watchControllers) controller.abort()
        watchControllers.clear()
        for (const agent of agents) agent.destroy()
        agents.clear()
      })
    )

    const request = (ctx: ErrorContext, req: HttpRequest): Effect.Effect<HttpResponse, KubeError> =>
      Effect.gen(function*() {
        if (closed) return yield* Effect.fail(fail(ctx, "Unavailable", "client is closed"))
        yield* Effect.mapError(ensureCredentials, (error) => fail(ctx, error.reason, error.detail))
        const opts: https.RequestOptions = { method: req.method, headers: {} }
        yield* Effect.tryPromise({
          try: () => kc.applyToHTTPSOptions(opts),
          catch: (error) => fail(ctx, "Invalid", `cannot apply connection settings: ${describe(error)}`)
        })
        if (opts.agent instanceof http.Agent) agents.add(opts.agent)
        const headers: Record<string, string> = {
          ...(opts.headers as Record<string, string>),
          Accept: req.accept ?? "application/json"
        }
        let payload: string | undefined
        if (req.body !== undefined) {
          payload = JSON.stringify(req.body)
          headers["Content-Type"] = req.contentType ?? "application/json"
          headers["Content-Length"] = String(Buffer.byteLength(payload))
        }
        const url = new URL(server + req.path)
        const response = yield* Effect.callback<HttpResponse, KubeError>((resume, signal) => {
          const transport = url.protocol === "http:" ? http : https
          let outgoing: http.ClientRequest
          try {
            outgoing = transport.request(url, { ...opts, headers, signal }, (res) => {
              const chunks: Array<Buffer> = []
              res.on("data", (chunk: Buffer) => chunks.push(chunk))
              res.on("error", (error) => resume(Effect.fail(fail(ctx, reasonFromNetworkError(error), describe(error)))))
              res.on("end", () =>
                resume(Effect.succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
              )
            })
          } catch (error) {
            resume(Effect.fail(fail(ctx, "Invalid", describe(error))))
            return
          }
          outgoing.on("error", (error) => {
            if (!signal.aborted) resume(Effect.fail(fail(ctx, reasonFromNetworkError(error), describe(error))))
          })
          if (payload !== undefined) outgoing.write(payload)
          outgoing.end()
        }).pipe(
          Effect.timeoutOrElse({
            duration: requestTimeout,
            orElse: () => Effect.fail(fail(ctx, "Timeout", `no answer within ${Duration.toMillis(requestTimeout)}ms`))
          })
        )
        if (response.status >= 200 && response.status < 300) return response
        if (response.status === 401) yield* onUnauthorized
        const error = statusError(ctx, response.status, response.body)
        return yield* Effect.fail(fail(ctx, error.reason, error.detail))
      })

    const requestJson = (ctx: ErrorContext, req: HttpRequest): Effect.Effect<any, KubeError> =>
      Effect.flatMap(request(ctx, req), (response) =>
        Effect.try({
          try: () => JSON.parse(response.body) as unknown,
          catch: () => fail(ctx, "Unknown", `the server answered ${response.status} with a body that is not JSON`)
        }))

    const namespaceFor = (kind: ResourceKind, namespace: string | undefined): string | undefined =>
      resources[kind].namespaced ? namespace : undefined

    const objectPath = (
      ctx: ErrorContext,
      kind: ResourceKind,
      namespace: string | undefined,
      name: string
    ): Effect.Effect<string, KubeError> =>
      resources[kind].namespaced && !namespace
        ? Effect.fail(fail(ctx, "Invalid", `${kind} are namespaced: a namespace is required`))
        : name === ""
        ? Effect.fail(fail(ctx, "Invalid", "a name is required"))
        : Effect.succeed(`${collectionPath(kind, namespace)}/${enc(name)}`)

    const get: KubeClientShape["get"] = (kind, namespace, name) => {
      const ns = namespaceFor(kind, namespace)
      const ctx: ErrorContext = { ...base, verb: "get", resource: kind, namespace: ns, name }
      return objectPath(ctx, kind, ns, name).pipe(
        Effect.flatMap((path) => requestJson(ctx, { method: "GET", path })),
        Effect.map((object) => withTypeMeta(kind, object as KubeObject))
      )
    }

    const list: KubeClientShape["list"] = (kind, namespace, listOptions?: ListOptions) => {
      const ns = namespaceFor(kind, namespace)
      const ctx: ErrorContext = { ...base, verb: "list", resource: kind, namespace: ns }
      return Effect.gen(function*() {
        const items: Array<KubeObject> = []
        let resourceVersion = ""
        let continueToken: string | undefined
        do {
          const page = yield* requestJson(ctx, {
            method: "GET",
            path: collectionPath(kind, ns) + query({
              labelSelector: listOptions?.labelSelector,
              fieldSelector: listOptions?.fieldSelector,
              limit: pageSize,
              continue: continueToken
            })
          }) as Effect.Effect<{ items?: Array<KubeObject>; metadata?: { resourceVersion?: string; continue?: string } }, KubeError>
          for (const item of page.items ?? []) items.push(withTypeMeta(kind, item))
          resourceVersion = page.metadata?.resourceVersion ?? resourceVersion
          continueToken = page.metadata?.continue || undefined
        } while (continueToken !== undefined)
        const result: ObjectList = { items, resourceVersion }
        return result
      })
    }

    const create: KubeClientShape["create"] = (kind, namespace, object) => {
      const ns = namespaceFor(kind, namespace ?? object.metadata.namespace)
      const ctx: ErrorContext = { ...base, verb: "create", resource: kind, namespace: ns, name: object.metadata.name }
      if (resources[kind].namespaced && !ns) {
        return Effect.fail(fail(ctx, "Invalid", `${kind} are namespaced: a namespace is required`))
      }
      return requestJson(ctx, { method: "POST", path: collectionPath(kind, ns), body: withTypeMeta(kind, object) }).pipe(
        Effect.map((created) => withTypeMeta(kind, created as KubeObject))
      )
    }

    const replace: KubeClientShape["replace"] = (kind, namespace, object) => {
      const ns = namespaceFor(kind, namespace ?? object.metadata.namespace)
      const name = object.metadata.name ?? ""
      const ctx: ErrorContext = { ...base, verb: "update", resource: kind, namespace: ns, name }
      return objectPath(ctx, kind, ns, name).pipe(
        Effect.flatMap((path) => requestJson(ctx, { method: "PUT", path, body: withTypeMeta(kind, object) })),
        Effect.map((updated) => withTypeMeta(kind, updated as KubeObject))
      )
    }

    const patch: KubeClientShape["patch"] = (kind, namespace, name, mergePatch: MergePatch, patchOptions) => {
      const ns = namespaceFor(kind, namespace)
      const sub = patchOptions?.subresource
      const ctx: ErrorContext = { ...base, verb: "patch", resource: sub ? `${kind}/${sub}` : kind, namespace: ns, name }
      return objectPath(ctx, kind, ns, name).pipe(
        Effect.flatMap((path) =>
          requestJson(ctx, {
            method: "PATCH",
            path: sub ? `${path}/${sub}` : path,
            body: mergePatch,
            contentType: "application/merge-patch+json"
          })
        ),
        Effect.map((patched) => withTypeMeta(kind, patched as KubeObject))
      )
    }

    const del: KubeClientShape["delete"] = (kind, namespace, name, deleteOptions?: DeleteOptions) => {
      const ns = namespaceFor(kind, namespace)
      const ctx: ErrorContext = { ...base, verb: "delete", resource: kind, namespace: ns, name }
      const body = {
        apiVersion: "v1",
        kind: "DeleteOptions",
        ...(deleteOptions?.propagationPolicy ? { propagationPolicy: deleteOptions.propagationPolicy } : {}),
        ...(deleteOptions?.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: deleteOptions.gracePeriodSeconds } : {}),
        ...(deleteOptions?.uid ? { preconditions: { uid: deleteOptions.uid } } : {})
      }
      return objectPath(ctx, kind, ns, name).pipe(
        Effect.flatMap((path) => request(ctx, { method: "DELETE", path, body })),
        Effect.asVoid
      )
    }

    const logs: KubeClientShape["logs"] = (namespace, name, container) => {
      const ctx: ErrorContext = { ...base, verb: "get", resource: "pods/log", namespace, name }
      return objectPath(ctx, "pods", namespace, name).pipe(
        Effect.flatMap((path) => request(ctx, { method: "GET", path: `${path}/log${query({ container })}`, accept: "*/*" })),
        Effect.map((response) => response.body)
      )
    }

    const watch: KubeClientShape["watch"] = (kind, namespace, watchOptions: WatchOptions) => {
      const ns = namespaceFor(kind, namespace)
      const ctx: ErrorContext = { ...base, verb: "watch", resource: kind, namespace: ns }
      return Stream.callback<WatchEvent, KubeError>((queue) =>
        Effect.gen(function*() {
          if (closed) return yield* Effect.fail(fail(ctx, "Unavailable", "client is closed"))
          yield* Effect.mapError(ensureCredentials, (error) => fail(ctx, error.reason, error.detail))
          const failWith = (error: KubeError) => {
            Queue.failCauseUnsafe(queue, Cause.fail(error))
          }
          let stopped = false
          let opened = false
          let controller: AbortController | undefined
          const stop = () => {
            stopped = true
            if (controller) {
              controller.abort()
              watchControllers.delete(controller)
            }
          }
          yield* Effect.addFinalizer(() => Effect.sync(stop))
          const watcher = new Watch(kc)
          const params = {
            resourceVersion: watchOptions.resourceVersion,
            allowWatchBookmarks: watchOptions.allowBookmarks,
            timeoutSeconds: watchOptions.timeoutSeconds,
            labelSelector: watchOptions.labelSelector,
            fieldSelector: watchOptions.fieldSelector
          }
          const onEvent = (phase: string, object: any) => {
            if (stopped) return
            switch (phase) {
              case "ADDED":
              case "MODIFIED":
              case "DELETED":
                Queue.offerUnsafe(queue, { type: phase, object: object as KubeObject })
                return
              case "BOOKMARK":
                Queue.offerUnsafe(queue, { type: "BOOKMARK", resourceVersion: String(object?.metadata?.resourceVersion ?? "") })
                return
              case "ERROR": {
                const code = typeof object?.code === "number" ? object.code : undefined
                let reason: KubeErrorReason = code === undefined ? "Unknown" : reasonFromStatus(code)
                if (object?.reason === "Expired" || object?.reason === "Gone") reason = "Gone"
                const message = typeof object?.message === "string" ? object.message : JSON.stringify(object)
                failWith(fail(ctx, reason, `${code ?? "watch error"}: ${message}`))
                stop()
                return
              }
              default:
                return
            }
          }
          const onDone = (error: any) => {
            if (stopped) return
            stopped = true
            if (controller) watchControllers.delete(controller)
            if (!error) {
              Queue.endUnsafe(queue)
            } else if (opened && (error?.name === "TimeoutError" || error?.name === "AbortError")) {
              // the library ends a quiet watch; the caller resumes from its last version
              Queue.endUnsafe(queue)
            } else if (typeof error?.statusCode === "number") {
              if (error.statusCode === 401) bearer = undefined
              failWith(fail(ctx, reasonFromStatus(error.statusCode), `${error.statusCode}: ${describe(error)}`))
            } else {
              failWith(fail(ctx, reasonFromNetworkError(error), describe(error)))
            }
          }
          let started: Promise<AbortController>
          try {
            started = watcher.watch(collectionPath(kind, ns), params, onEvent, onDone)
          } catch (error) {
            return yield* Effect.fail(fail(ctx, reasonFromNetworkError(error), describe(error)))
          }
          started.then(
            (abort) => {
              opened = true
              controller = abort
              if (stopped || closed) abort.abort()
              else {
                watchControllers.add(abort)
                Queue.offerUnsafe(queue, { type: "OPENED" })
              }
            },
            (error) => {
              if (!stopped) {
                stopped = true
                failWith(fail(ctx, reasonFromNetworkError(error), describe(error)))
              }
            }
          )
        })
      )
    }

    const identity = `${spec.user}@${spec.cluster}`
    const client: KubeClientShape = {
      cluster: spec.cluster,
      identity,
      get,
      list,
      watch,
      create,
      replace,
      patch,
      delete: del,
      logs
    }
    return client
  })

export const makeLayer = (options: LiveKubeConnectorOptions = {}): Layer.Layer<KubeConnector> =>
  Layer.succeed(KubeConnector, KubeConnector.of({ connect: (spec) => connect(spec, options) }))

export const LiveKubeConnector = {
  /** KubeConnector over real API servers, default timeouts. */
  layer: makeLayer(),
  /** The same with other timeouts. */
  layerWith: makeLayer,
  connect
} as const
