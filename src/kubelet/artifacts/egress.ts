/**
 * Where the kubelet may make a pod's artifact calls (http inputs, S3 get,
 * put and delete). The kubelet makes them from the node's network, not the
 * pod's, so for a pod without `hostNetwork` the address policy is strict
 * (httpPolicy.ts: no loopback, link-local such as 169.254.169.254, private
 * or reserved address, names judged by what they resolve to, IPv4 inside
 * IPv6 as IPv4), except for endpoints the operator allows explicitly: the
 * configured artifact repository (and, in the embedded runtime, the servers
 * it names). A `hostNetwork` pod reaches the node's network itself, so its
 * calls are judged by the open policy.
 */
import type { LookupFunction } from "node:net"
import { guardedLookup, hostBlockedReason, type HttpAddressPolicy, openPolicy, strictPolicy } from "../../controller/httpPolicy.js"

export interface ArtifactEgress {
  readonly policy: HttpAddressPolicy
  /** Endpoints (`host:port`, lower case, IPv6 in brackets) reached whatever the policy. */
  readonly allowed: ReadonlySet<string>
}

const defaultPort = (protocol: string) => (protocol === "https:" ? "443" : "80")

/** `host:port` of a URL. */
export const endpointOf = (url: URL): string => `${url.hostname.toLowerCase()}:${url.port === "" ? defaultPort(url.protocol) : url.port}`

/**
 * `host:port` of an endpoint written as a URL or as `host[:port]` (S3's
 * form, `insecure` choosing the default port), or undefined when unparseable.
 */
export const normalizeEndpoint = (endpoint: string, insecure?: boolean): string | undefined => {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `${insecure === true ? "http" : "https"}://${endpoint}`
  try {
    return endpointOf(new URL(text))
  } catch {
    return undefined
  }
}

/** The egress of a pod: open with hostNetwork, else `policy` (default strict) with `allowEndpoints`. */
export const artifactEgress = (
  hostNetwork: boolean,
  allowEndpoints: ReadonlyArray<string> = [],
  policy: HttpAddressPolicy = strictPolicy
): ArtifactEgress => ({
  policy: hostNetwork ? openPolicy : policy,
  allowed: new Set(allowEndpoints.map((e) => normalizeEndpoint(e, true)).filter((e): e is string => e !== undefined))
})

/** Any address, for tests and callers that make no tenant's calls. */
export const openEgress: ArtifactEgress = { policy: openPolicy, allowed: new Set() }

export type EgressDecision =
  | { readonly _tag: "Allowed"; readonly lookup: LookupFunction | undefined }
  | { readonly _tag: "Refused"; readonly reason: string }

/**
 * May `url` be reached? Explicitly allowed endpoints are reached as they
 * resolve; otherwise an IP literal or `localhost` is judged now and a name at
 * connection time, by the returned `lookup`.
 */
export const checkUrl = (url: URL, egress: ArtifactEgress): EgressDecision => {
  if (egress.allowed.has(endpointOf(url))) return { _tag: "Allowed", lookup: undefined }
  const blocked = hostBlockedReason(url.hostname, egress.policy)
  if (blocked !== undefined) {
    return { _tag: "Refused", reason: `${url.host} is not allowed: ${blocked.replace(/ \(configmap [^)]*\)$/, "")} (only the configured artifact repository may be on such an address)` }
  }
  return { _tag: "Allowed", lookup: egress.policy === openPolicy ? undefined : guardedLookup(egress.policy) }
}

/** The same for an S3 endpoint (`host[:port]` or a URL). */
export const checkS3Endpoint = (endpoint: string, insecure: boolean | undefined, egress: ArtifactEgress): EgressDecision => {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `${insecure === true ? "http" : "https"}://${endpoint}`
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { _tag: "Refused", reason: `invalid S3 endpoint ${JSON.stringify(endpoint)}` }
  }
  return checkUrl(url, egress)
}

/** The message of an error from a guarded connection: says "not allowed" when the lookup refused the address. */
export const blockedMessage = (e: unknown): string | undefined => {
  let cur: unknown = e
  for (let i = 0; i < 4 && cur !== undefined && cur !== null; i++) {
    const err = cur as { code?: unknown; message?: unknown; cause?: unknown }
    if (err.code === "EADDRBLOCKED") return `not allowed: ${String(err.message).replace(/ \(configmap [^)]*\)$/, "")}`
    cur = err.cause
  }
  return undefined
}
