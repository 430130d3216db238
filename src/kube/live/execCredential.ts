/**
 * Bearer tokens that a connection fetches itself: from an exec credential
 * plugin (kubectl's `users[].user.exec`), run under a timeout (client-node,
 * used before, ran it with none), and from a token
 * file (a projected service-account token) read again every minute so a
 * rotated token takes effect. This is the only module of the production
 * entry that starts a process.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { Clock, Duration, Effect, Redacted } from "effect"
import type { ClusterAuth } from "../api/Connection.js"
import type { KubeError } from "../api/KubeError.js"
import { validateBearerToken } from "../api/Validation.js"
import { describe, type ErrorContext, makeError } from "./errors.js"

export type ExecAuth = Extract<ClusterAuth, { readonly _tag: "Exec" }>

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
