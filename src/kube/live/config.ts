/**
 * The options of a live connector and the transport of one connection: an
 * HTTP(S) agent made from the `ConnectionSpec` alone (its CA, client
 * certificate, TLS server name and verification setting), never shared with
 * another connection and never built from a user's kubeconfig file loaded as
 * is. The agent keeps its connections alive, so requests and watches of one
 * connection reuse their TLS sessions; closing the connection destroys it.
 *
 * Bearer tokens are not part of the transport: the session adds them per
 * request, as they may be fetched by an exec plugin or read again from a file.
 */
import * as http from "node:http"
import * as https from "node:https"
import { type Duration, Redacted } from "effect"
import type { ConnectionSpec } from "../api/Connection.js"
import type { RateLimit } from "./rateLimit.js"

export interface LiveKubeConnectorOptions {
  /** Timeout of one non-watch request, and of a watch request's answer (not of the watch). Default 60s. */
  readonly requestTimeout?: Duration.Input
  /**
   * How long an open watch may receive nothing (not even a bookmark) before the client ends it,
   * for its caller to resume. Default: the server-side timeout the watch asks for plus a minute
   * (`watchInactivityTimeoutMs` in watch.ts).
   */
  readonly watchInactivityTimeout?: Duration.Input
  /** Timeout of one run of an exec credential command. Default 30s. */
  readonly execTimeout?: Duration.Input
  /** Page size of list requests. Default 500. */
  readonly listPageSize?: number
  /**
   * Client-side rate limit of every connection (its own token buckets, as client-go's
   * `--qps`/`--burst`, one for argoproj.io and one for the rest as Argo's two clientsets):
   * every request and every watch opened takes a token. Default: none.
   */
  readonly rateLimit?: RateLimit | undefined
}

/** How one connection reaches its API server. */
export interface Transport {
  /** The server's URL without a trailing slash. */
  readonly server: string
  readonly agent: http.Agent
  /** node:http's or node:https's `request`, as the server's scheme says. */
  readonly request: typeof http.request
}

/**
 * The transport of one connection. Fails (throws) on a server URL that is not
 * http(s) or on certificate data that is not base64; TLS material that does
 * not parse as PEM fails the first request, with the TLS library's message.
 */
export const buildTransport = (spec: ConnectionSpec): Transport => {
  const { endpoint, auth } = spec
  const server = endpoint.server.replace(/\/+$/, "")
  const url = new URL(server)
  if (url.protocol === "http:") {
    return { server, agent: new http.Agent({ keepAlive: true }), request: http.request }
  }
  if (url.protocol !== "https:") throw new Error(`server must be an https:// or http:// URL, not ${url.protocol}`)
  const tls: https.AgentOptions = {
    keepAlive: true,
    // As client-go: the CA given replaces the system roots; without one the system roots are used.
    ...(endpoint.certificateAuthorityData ? { ca: base64(endpoint.certificateAuthorityData, "certificate-authority-data") } : {}),
    ...(endpoint.tlsServerName ? { servername: endpoint.tlsServerName } : {}),
    rejectUnauthorized: endpoint.insecureSkipTlsVerify !== true
  }
  if (auth._tag === "ClientCertificate") {
    Object.assign(tls, {
      cert: base64(auth.certificateData, "client-certificate-data"),
      key: base64(Redacted.value(auth.keyData), "client-key-data")
    })
  }
  return { server, agent: new https.Agent(tls), request: https.request }
}

const base64 = (data: string, field: string): Buffer => {
  const text = data.replace(/\s+/g, "")
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error(`${field} is not valid base64`)
  return Buffer.from(text, "base64")
}
