/**
 * http templates' requests, made by the controller (engine/http.ts lists
 * them, judges the responses).
 *
 * Why in the controller and not a pod, as upstream's agent pod does: the
 * agent is argoexec watching WorkflowTaskSets, a CRD and RBAC flotilla does
 * not install; the embedded runtime's sandboxed pods have a loopback-only
 * network of their own, so a pod could not reach a server on the host; and a
 * request is a small, bounded piece of I/O: a timeout (`timeoutSeconds`,
 * default 60 s, at most 10 min), a capped response body, at most 10
 * redirects. Since the controller's network is not a tenant's, where a
 * request may go is the operator's `httpPolicy.ts` (no loopback, link-local
 * or private address unless the configmap allows it, names judged by what
 * they resolve to), and a redirect may not lead to a local or private host
 * other than the one the URL named, whatever the policy. Headers'
 * `secretKeyRef`s are read in the workflow's namespace of the local cluster
 * with the controller's client, but only once the API server has said (a
 * SubjectAccessReview, `secretReader`) that the workflow's service account may
 * get that secret: upstream's agent pod reads it as that account, so a user
 * who may create workflows but not read a namespace's secrets must not get
 * one into a request header through the controller's rights.
 *
 * Each node's request is made once (a node ID in flight or answered is not
 * asked again); when it completes, its workflow is requeued. At most
 * `maxInFlight` requests run at once, `maxInFlightPerWorkflow` of one
 * workflow, so a wide loop of slow requests cannot take every socket. An
 * answer is kept until the engine no longer lists its node (it was recorded)
 * or the workflow is forgotten. Never fails: a request that could not be made
 * is a `Failure` result with the reason.
 */
import { Context, Duration, Effect, Fiber, Layer, Semaphore, Stream } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type { HttpRequest, HttpResult } from "../workflow/engine/contract.js"
import { reviewAccess, serviceAccountSubject } from "../kube/api/AccessReview.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { ClusterPool } from "../kube/ClusterPool.js"
import { ControllerSettings, timingOf } from "./ControllerSettings.js"
import { guardedLookup, hostBlockedReason, type HttpAddressPolicy, isLocalOrPrivateHost } from "./httpPolicy.js"
import { type Bounded, boundedBy } from "./RequestTimeout.js"

const defaultTimeoutSeconds = 60
/** A template's `timeoutSeconds` above this is cut to it. */
export const maxTimeoutSeconds = 600
export const maxInFlight = 32
export const maxInFlightPerWorkflow = 4
const maxRedirects = 10
/** Bytes of a response body kept as `outputs.result` (a parameter, stored in the Workflow's status). */
export const maxBodyBytes = 256 * 1024

/**
 * Reads key `key` of secret `name` in `namespace` for service account `serviceAccount` of that
 * namespace (the workflow's), or says why it cannot.
 */
export type SecretReader = (namespace: string, name: string, key: string, serviceAccount: string) => Effect.Effect<string, string>

/** The service account an http template's secrets are read for when the workflow names none. */
export const defaultServiceAccount = "default"

const methods = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"])

/** Make one request: headers resolved, redirects followed under the rules above, the body capped. */
export const perform = (
  client: HttpClient.HttpClient,
  readSecret: SecretReader,
  req: HttpRequest,
  policy: HttpAddressPolicy,
  serviceAccount: string = defaultServiceAccount
): Effect.Effect<HttpResult> => {
  const timeoutSeconds = Math.min(req.timeoutSeconds ?? defaultTimeoutSeconds, maxTimeoutSeconds)
  return Effect.gen(function*() {
    const method = req.method.toUpperCase()
    if (!methods.has(method)) return failure(`http.method: unsupported method '${req.method}'`)
    let url: URL
    try {
      url = new URL(req.url)
    } catch {
      return failure(`http.url: invalid URL '${req.url}'`)
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return failure(`http.url: only http and https URLs are supported, not ${url.protocol}`)
    if (req.insecureSkipVerify === true && url.protocol === "https:") return failure("http.insecureSkipVerify is not supported")
    const blocked = hostBlockedReason(url.hostname, policy)
    if (blocked !== undefined) return failure(`http.url: ${blocked}`)
    const headers: Array<[string, string]> = []
    for (const h of req.headers) {
      if (h.secretKeyRef !== undefined) {
        const value = yield* readSecret(req.namespace, h.secretKeyRef.name, h.secretKeyRef.key, serviceAccount).pipe(Effect.result)
        if (value._tag === "Failure") return failure(`http.headers.${h.name}: ${value.failure}`)
        headers.push([h.name, value.success])
      } else headers.push([h.name, h.value ?? ""])
    }
    const originalHost = url.hostname
    for (let hop = 0; hop <= maxRedirects; hop++) {
      let request = HttpClientRequest.make(method as "GET")(url)
      for (const [name, value] of headers) request = HttpClientRequest.setHeader(request, name, value)
      if (req.body !== undefined && method !== "GET" && method !== "HEAD") request = HttpClientRequest.bodyText(request, req.body)
      const response = yield* client.execute(request)
      if (response.status >= 300 && response.status < 400 && response.headers["location"] !== undefined) {
        const next = new URL(response.headers["location"], url)
        if (next.protocol !== "http:" && next.protocol !== "https:") return failure(`redirect to ${next.protocol} refused`)
        if (next.hostname !== originalHost && isLocalOrPrivateHost(next.hostname)) {
          return failure(`redirect from ${url.host} to a private address ${next.host} refused`)
        }
        const nextBlocked = hostBlockedReason(next.hostname, policy)
        if (nextBlocked !== undefined) return failure(`redirect from ${url.host} refused: ${nextBlocked}`)
        url = next
        continue
      }
      const chunks: Array<Uint8Array> = []
      let size = 0
      let tooLarge = false
      yield* response.stream.pipe(
        Stream.takeWhile((chunk) => {
          size += chunk.length
          if (size > maxBodyBytes) tooLarge = true
          else chunks.push(chunk)
          return !tooLarge
        }),
        Stream.runDrain
      )
      if (tooLarge) return failure(`response body exceeds ${maxBodyBytes} bytes`)
      const out: Record<string, Array<string>> = {}
      for (const [k, v] of Object.entries(response.headers)) {
        // Go's canonical header keys, as upstream's response.headers has them.
        const key = k.split("-").map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase()).join("-")
        out[key] = String(v).split(/,\s*/)
      }
      return { _tag: "Response", statusCode: response.status, body: Buffer.concat(chunks).toString("utf8"), headers: out } as const
    }
    return failure(`stopped after ${maxRedirects} redirects`)
  }).pipe(
    Effect.scoped,
    Effect.timeoutOrElse({
      duration: Duration.seconds(timeoutSeconds),
      orElse: () => Effect.succeed(failure(`http request timed out after ${timeoutSeconds}s`))
    }),
    Effect.catch((e) => Effect.succeed(failure(messageOf(e))))
  )
}

/** A failed request's reason, with the cause a transport error wraps (a refused address says why). */
const messageOf = (e: unknown): string => {
  const message = e instanceof Error ? e.message : String(e)
  const cause = e instanceof Error ? (e as { cause?: unknown }).cause : undefined
  const inner = cause instanceof Error ? cause.message : undefined
  return inner !== undefined && !message.includes(inner) ? `${message}: ${inner}` : message
}

const failure = (message: string): HttpResult => ({ _tag: "Failure", message })

export class HttpTemplates extends Context.Service<HttpTemplates, {
  /** The responses known for workflow `key`, by node ID. */
  readonly results: (key: string) => ReadonlyMap<string, HttpResult>
  /**
   * Makes the requests not yet made for `key`; `onDone(key)` runs when one is answered. Secrets
   * are read for `serviceAccount` (the workflow's `serviceAccountName`; default `default`).
   */
  readonly request: (
    key: string,
    requests: ReadonlyArray<HttpRequest>,
    onDone: (key: string) => Effect.Effect<void>,
    serviceAccount?: string
  ) => Effect.Effect<void>
  /** Drops what is kept for `key` and stops its requests in flight. */
  readonly forget: (key: string) => Effect.Effect<void>
}>()("flotilla/controller/HttpTemplates") {
  static readonly make = (client: HttpClient.HttpClient, readSecret: SecretReader, policy: HttpAddressPolicy) =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const answered = new Map<string, Map<string, HttpResult>>()
      const inFlight = new Map<string, Map<string, Fiber.Fiber<void>>>()
      const all = yield* Semaphore.make(maxInFlight)
      const perWorkflow = new Map<string, Semaphore.Semaphore>()
      const forget = (key: string) =>
        Effect.suspend(() => {
          const fibers = [...(inFlight.get(key)?.values() ?? [])]
          inFlight.delete(key)
          answered.delete(key)
          perWorkflow.delete(key)
          return Effect.forEach(fibers, Fiber.interrupt, { discard: true })
        })
      const limiterOf = (key: string): Semaphore.Semaphore => {
        let s = perWorkflow.get(key)
        if (s === undefined) perWorkflow.set(key, s = Semaphore.makeUnsafe(maxInFlightPerWorkflow))
        return s
      }
      yield* Effect.addFinalizer(() => Effect.forEach([...inFlight.keys()], forget, { discard: true }))
      return HttpTemplates.of({
        results: (key) => answered.get(key) ?? new Map(),
        request: (key, requests, onDone, serviceAccount = defaultServiceAccount) =>
          Effect.suspend(() => {
            // The engine lists the requests whose nodes still wait: an answer it no longer needs was recorded.
            const kept = answered.get(key)
            if (kept !== undefined) {
              const wanted = new Set(requests.map((r) => r.nodeId))
              for (const nodeId of [...kept.keys()]) if (!wanted.has(nodeId)) kept.delete(nodeId)
              if (kept.size === 0) answered.delete(key)
            }
            return Effect.forEach(requests, (req) =>
            Effect.suspend(() => {
              if (answered.get(key)?.has(req.nodeId) === true || inFlight.get(key)?.has(req.nodeId) === true) return Effect.void
              return perform(client, readSecret, req, policy, serviceAccount).pipe(
                limiterOf(key).withPermits(1),
                all.withPermits(1),
                Effect.flatMap((result) =>
                  Effect.suspend(() => {
                    inFlight.get(key)?.delete(req.nodeId)
                    let m = answered.get(key)
                    if (m === undefined) answered.set(key, m = new Map())
                    m.set(req.nodeId, result)
                    return onDone(key)
                  })
                ),
                Effect.forkIn(scope),
                Effect.map((fiber) => {
                  let m = inFlight.get(key)
                  if (m === undefined) inFlight.set(key, m = new Map())
                  if (!answered.get(key)?.has(req.nodeId)) m.set(req.nodeId, fiber)
                })
              )
            }), { discard: true })
          }),
        forget
      })
    })

  /** With Node's http client under the configmap's address policy (names checked as they resolve); secrets read with the local cluster's client, for the workflow's service account (`secretReader`). */
  static readonly layer = Layer.unwrap(Effect.gen(function*() {
    const { config, options } = yield* ControllerSettings
    const policy = config.httpTemplates
    const bounded = boundedBy(timingOf(options).requestTimeout)
    return Layer.effect(
    HttpTemplates,
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      const pool = yield* ClusterPool
      return yield* HttpTemplates.make(client, secretReader(pool.local.client, bounded), policy)
    })
    ).pipe(
      Layer.provide(NodeHttpClient.layerNodeHttpNoAgent),
      Layer.provide(NodeHttpClient.layerAgentOptions({ lookup: guardedLookup(policy) }))
    )
  }))
}

/**
 * Reads secrets with `client` (the controller's) for a service account: first a
 * SubjectAccessReview asks the API server whether `system:serviceaccount:<ns>:<sa>` may `get`
 * that secret; only if it may is the secret read. Each call is bounded by `bounded` (a hung API
 * server fails the header, and so the node, with the reason; it never holds the request). The
 * failures name the secret and the service account, never a value.
 */
export const secretReader = (client: KubeClientShape, bounded: Bounded): SecretReader => (namespace, name, key, serviceAccount) => {
  const secret = `secret ${namespace}/${name}`
  const subject = serviceAccountSubject(namespace, serviceAccount)
  const describe = (e: unknown) => (e instanceof Error ? e.message : String(e))
  return bounded(
    reviewAccess(client, subject, { verb: "get", resource: "secrets", namespace, name }),
    { cluster: client.cluster, verb: "create", resource: "subjectaccessreviews" }
  ).pipe(
    Effect.mapError((e) => `${secret}: cannot check whether service account ${subject.user} may get it: ${describe(e)}`),
    Effect.flatMap((decision) =>
      decision.allowed
        ? bounded(client.get("secrets", namespace, name), { cluster: client.cluster, verb: "get", resource: "secrets", namespace, name }).pipe(
          Effect.mapError((e) => `${secret}: ${describe(e)}`)
        )
        : Effect.fail(
          `${secret}: forbidden: service account ${subject.user} may not get it${
            decision.evaluationError !== undefined ? ` (${decision.evaluationError})` : ""
          } (an http template's secrets are read with the workflow's service account's rights)`
        )
    ),
    Effect.flatMap((object) => {
      const data = (object as { data?: Record<string, string> }).data?.[key]
      return data === undefined ? Effect.fail(`${secret} has no key '${key}'`) : Effect.succeed(Buffer.from(data, "base64").toString("utf8"))
    })
  )
}
