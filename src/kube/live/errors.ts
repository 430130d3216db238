/**
 * Failures of a live connection as `KubeError`s: the context every error names
 * (cluster, verb, resource, namespace, name), network failures mapped to a
 * reason, and a Kubernetes `Status` body read into a reason and a message, so
 * every caller sees the server's own words rather than a bare HTTP code.
 */
import * as http from "node:http"
import { KubeError, type KubeErrorReason, reasonFromStatus } from "../api/KubeError.js"

export interface ErrorContext {
  readonly cluster: string
  readonly verb: string
  readonly resource: string
  readonly namespace?: string | undefined
  readonly name?: string | undefined
}

export const makeError = (ctx: ErrorContext, reason: KubeErrorReason, detail: string): KubeError =>
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

export const describe = (error: unknown): string => {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const cause = (error as { cause?: unknown }).cause
    const causeText = cause instanceof Error && cause.message !== error.message ? ` (${cause.message})` : ""
    return `${typeof code === "string" ? `${code}: ` : ""}${error.message}${causeText}`
  }
  return String(error)
}

/** Reads a Kubernetes `Status` body (or any text) into a reason and message. */
export const statusError = (ctx: ErrorContext, statusCode: number, body: string): KubeError => {
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
