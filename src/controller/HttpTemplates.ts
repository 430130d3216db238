/**
 * http templates' requests, made by the controller (engine/http.ts lists
 * them, judges the responses).
 *
 * Why in the controller and not a pod, as upstream's agent pod does: the
 * agent is argoexec watching WorkflowTaskSets, a CRD and RBAC flotilla does
 * not install; the embedded runtime's sandboxed pods have a loopback-only
 * network of their own, so a pod could not reach a server on the host; and a
 * request is a small, bounded piece of I/O: a timeout (`timeoutSeconds`,
 * default 60 s), a capped response body, at most 10 redirects, none of which
 * may lead to a loopback, private or link-local address unless the URL named
 * that host itself (so a public URL cannot be turned against the controller's
 * network). Headers' `secretKeyRef`s are read in the workflow's namespace of
 * the local cluster with the controller's client (upstream's controller reads
 * secrets in workflows' namespaces too; its agent reads them as the executor).
 *
 * Each node's request is made once (a node ID in flight or answered is not
 * asked again); when it completes, its workflow is requeued. Responses are
 * kept until the workflow is forgotten. Never fails: a request that could
 * not be made is a `Failure` result with the reason.
 */
import { Context, Duration, Effect, Fiber, Layer, Stream } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import { NodeHttpClient } from "@effect/platform-node"
import { isIP } from "node:net"
import type { HttpRequest, HttpResult } from "../workflow/engine/contract.js"
import { ClusterPool } from "../kube/ClusterPool.js"

const defaultTimeoutSeconds = 60
const maxRedirects = 10
/** Bytes of a response body kept as `outputs.result` (a parameter, stored in the Workflow's status). */
export const maxBodyBytes = 256 * 1024

/** Reads key `key` of secret `name` in `namespace`, or says why it cannot. */
export type SecretReader = (namespace: string, name: string, key: string) => Effect.Effect<string, string>

const methods = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"])

/** Loopback, private, link-local, unique-local and unspecified addresses, and `localhost`. */
export const isPrivateHost = (host: string): boolean => {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  if (h === "localhost" || h.endsWith(".localhost")) return true
  if (isIP(h) === 4) {
    const [a, b] = h.split(".").map(Number)
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127)
  }
  if (isIP(h) === 6) {
    if (h === "::1" || h === "::") return true
    if (h.startsWith("fc") || h.startsWith("fd") || h.startsWith("fe80")) return true
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)
    return mapped !== null && isPrivateHost(mapped[1])
  }
  return false
}

/** Make one request: headers resolved, redirects followed under the rules above, the body capped. */
export const perform = (client: HttpClient.HttpClient, readSecret: SecretReader, req: HttpRequest): Effect.Effect<HttpResult> =>
  Effect.gen(function*() {
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
    const headers: Array<[string, string]> = []
    for (const h of req.headers) {
      if (h.secretKeyRef !== undefined) {
        const value = yield* readSecret(req.namespace, h.secretKeyRef.name, h.secretKeyRef.key).pipe(Effect.result)
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
        if (next.hostname !== originalHost && isPrivateHost(next.hostname)) {
          return failure(`redirect from ${url.host} to a private address ${next.host} refused`)
        }
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
      duration: Duration.seconds(req.timeoutSeconds ?? defaultTimeoutSeconds),
      orElse: () => Effect.succeed(failure(`http request timed out after ${req.timeoutSeconds ?? defaultTimeoutSeconds}s`))
    }),
    Effect.catch((e) => Effect.succeed(failure(e.message)))
  )

const failure = (message: string): HttpResult => ({ _tag: "Failure", message })

export class HttpTemplates extends Context.Service<HttpTemplates, {
  /** The responses known for workflow `key`, by node ID. */
  readonly results: (key: string) => ReadonlyMap<string, HttpResult>
  /** Makes the requests not yet made for `key`; `onDone(key)` runs when one is answered. */
  readonly request: (key: string, requests: ReadonlyArray<HttpRequest>, onDone: (key: string) => Effect.Effect<void>) => Effect.Effect<void>
  /** Drops what is kept for `key` and stops its requests in flight. */
  readonly forget: (key: string) => Effect.Effect<void>
}>()("flotilla/controller/HttpTemplates") {
  static readonly make = (client: HttpClient.HttpClient, readSecret: SecretReader) =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const answered = new Map<string, Map<string, HttpResult>>()
      const inFlight = new Map<string, Map<string, Fiber.Fiber<void>>>()
      const forget = (key: string) =>
        Effect.suspend(() => {
          const fibers = [...(inFlight.get(key)?.values() ?? [])]
          inFlight.delete(key)
          answered.delete(key)
          return Effect.forEach(fibers, Fiber.interrupt, { discard: true })
        })
      yield* Effect.addFinalizer(() => Effect.forEach([...inFlight.keys()], forget, { discard: true }))
      return HttpTemplates.of({
        results: (key) => answered.get(key) ?? new Map(),
        request: (key, requests, onDone) =>
          Effect.forEach(requests, (req) =>
            Effect.suspend(() => {
              if (answered.get(key)?.has(req.nodeId) === true || inFlight.get(key)?.has(req.nodeId) === true) return Effect.void
              return perform(client, readSecret, req).pipe(
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
            }), { discard: true }),
        forget
      })
    })

  /** With Node's http client; secrets read with the local cluster's client. */
  static readonly layer = Layer.effect(
    HttpTemplates,
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      const pool = yield* ClusterPool
      const local = pool.local.client
      const readSecret: SecretReader = (namespace, name, key) =>
        local.get("secrets", namespace, name).pipe(
          Effect.mapError((e) => `secret ${namespace}/${name}: ${e instanceof Error ? e.message : String(e)}`),
          Effect.flatMap((secret) => {
            const data = (secret as { data?: Record<string, string> }).data?.[key]
            return data === undefined ? Effect.fail(`secret ${namespace}/${name} has no key '${key}'`) : Effect.succeed(Buffer.from(data, "base64").toString("utf8"))
          })
        )
      return yield* HttpTemplates.make(client, readSecret)
    })
  ).pipe(Layer.provide(NodeHttpClient.layerNodeHttp))
}
