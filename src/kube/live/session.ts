/**
 * The state of one live connection, shared by its requests and its watches:
 * its own transport (an agent holding its TLS settings), the bearer token fetched by an exec plugin (cached
 * until it expires) or read from a token file (read again every minute), the
 * secrets that must never show up in an error, its rate limit (`rateLimit`),
 * and its lifetime: closing the
 * scope aborts its watches and drops its connections.
 */
import { Clock, Duration, Effect, Redacted, type Scope, Semaphore } from "effect"
import type { ConnectionSpec } from "../api/Connection.js"
import type { KubeError, KubeErrorReason } from "../api/KubeError.js"
import { buildTransport, type LiveKubeConnectorOptions, type Transport } from "./config.js"
import { describe, type ErrorContext, makeError } from "./errors.js"
import { type ExecCredential, readTokenFile, runExecCredential } from "./execCredential.js"
import { type ConnectionBuckets, makeConnectionBuckets } from "./rateLimit.js"

export interface Session {
  readonly spec: ConnectionSpec
  /** The server's URL without a trailing slash, the connection's agent and its `request`. */
  readonly transport: Transport
  readonly requestTimeout: Duration.Duration
  /** The option of that name; when undefined, each watch's own default (watch.ts). */
  readonly watchInactivityTimeout: Duration.Duration | undefined
  readonly pageSize: number
  readonly base: { readonly cluster: string }
  /** The connection's client-side rate limit: every request and every watch opened takes a token first. */
  readonly buckets: ConnectionBuckets
  /** A `KubeError` with every known secret scrubbed from its detail. */
  readonly fail: (ctx: ErrorContext, reason: KubeErrorReason, detail: string) => KubeError
  /** Fetches a bearer token when there is none or it is about to expire. */
  readonly ensureCredentials: Effect.Effect<void, KubeError>
  /** After a 401 the cached token is dropped, so the next call runs the plugin or reads the file again. */
  readonly onUnauthorized: Effect.Effect<void>
  readonly dropCredentials: () => void
  /** The headers carrying the connection's credential (a bearer token), if it has one; after `ensureCredentials`. */
  readonly authHeaders: () => Record<string, string>
  readonly isClosed: () => boolean
  readonly watchControllers: Set<AbortController>
}

export const makeSession = (
  spec: ConnectionSpec,
  options: LiveKubeConnectorOptions
): Effect.Effect<Session, KubeError, Scope.Scope> =>
  Effect.gen(function*() {
    const requestTimeout = Duration.fromInputUnsafe(options.requestTimeout ?? "60 seconds")
    const pageSize = options.listPageSize ?? 500
    const base = { cluster: spec.cluster }
    const transport = yield* Effect.try({
      try: () => buildTransport(spec),
      catch: (error) => makeError({ ...base, verb: "connect", resource: "cluster" }, "Invalid", describe(error))
    })

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
    const staticToken = auth._tag === "Token" ? { Authorization: `Bearer ${Redacted.value(auth.token)}` } : undefined
    const authHeaders = (): Record<string, string> =>
      staticToken ?? (bearer === undefined ? {} : { Authorization: `Bearer ${Redacted.value(bearer.token)}` })
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
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const controller of watchControllers) controller.abort()
        watchControllers.clear()
        transport.agent.destroy()
      })
    )

    return {
      spec,
      transport,
      requestTimeout,
      watchInactivityTimeout: options.watchInactivityTimeout === undefined
        ? undefined
        : Duration.fromInputUnsafe(options.watchInactivityTimeout),
      pageSize,
      base,
      buckets: makeConnectionBuckets(options.rateLimit),
      fail,
      ensureCredentials,
      onUnauthorized,
      dropCredentials: () => {
        bearer = undefined
      },
      authHeaders,
      isClosed: () => closed,
      watchControllers
    } satisfies Session
  })
