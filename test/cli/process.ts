/**
 * `flotilla ARGS...` as a real process (the CLI through tsx, as bin/flotilla.mjs
 * runs it), for the CLI tests: exit code, stdout and stderr; or started in the
 * background, its output awaited line by line (`spawnFlotilla`).
 */
import { Deferred, Effect } from "effect"
import { execFile, spawn } from "node:child_process"
import * as path from "node:path"

export const root = path.resolve(import.meta.dirname, "..", "..")
const tsx = path.join(root, "node_modules", ".bin", "tsx")

export const flotilla = (...args: Array<string>) => flotillaWith(process.env, ...args)

/** The environment of a CLI process: no kubeconfig at all (so control commands go to embedded runs), `extra` on top. */
export const embeddedEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env["KUBECONFIG"]
  delete env["KUBERNETES_SERVICE_HOST"]
  return env
}

export interface Running {
  /** Succeeds once the process's stdout (or stderr) matches (checked on every chunk); fails if it exits first. */
  readonly waitFor: (pattern: RegExp, from?: "stdout" | "stderr") => Effect.Effect<string, Error>
  /** The process's end. */
  readonly exit: Effect.Effect<{ code: number; stdout: string; stderr: string }>
}

/**
 * `flotilla ARGS...` started in the background for the scope (killed when it closes, if still
 * running): its output is watched as it comes, so a test waits for a line, never for a time.
 */
export const spawnFlotilla = (args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(tsx, [path.join(root, "src", "cli", "main.ts"), ...args], { cwd: root, env: env ?? process.env })),
      (c) => Effect.sync(() => { if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM") })
    )
    let stdout = ""
    let stderr = ""
    const changed = new Set<() => void>()
    const ended = yield* Deferred.make<{ code: number; stdout: string; stderr: string }>()
    const notify = () => { for (const f of [...changed]) f() }
    child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString("utf8"); notify() })
    child.stderr.on("data", (chunk: Buffer) => { stderr += chunk.toString("utf8"); notify() })
    child.on("close", (code) => {
      Deferred.doneUnsafe(ended, Effect.succeed({ code: code ?? 1, stdout, stderr }))
      notify()
    })
    const waitFor = (pattern: RegExp, from: "stdout" | "stderr" = "stdout"): Effect.Effect<string, Error> =>
      Effect.callback<string, Error>((resume) => {
        const check = () => {
          const m = pattern.exec(from === "stdout" ? stdout : stderr)
          if (m !== null) {
            changed.delete(check)
            resume(Effect.succeed(m[0]))
          } else if (child.exitCode !== null || child.signalCode !== null) {
            changed.delete(check)
            resume(Effect.fail(new Error(`flotilla ${args.join(" ")} ended before printing ${pattern}:\n${stdout}\n${stderr}`)))
          }
        }
        changed.add(check)
        check()
        return Effect.sync(() => changed.delete(check))
      })
    return { waitFor, exit: Deferred.await(ended) } satisfies Running
  })

/** `flotilla ARGS...` run to its end with `env`. */
export const flotillaWith = (env: NodeJS.ProcessEnv, ...args: Array<string>) =>
  Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = execFile(tsx, [path.join(root, "src", "cli", "main.ts"), ...args], { cwd: root, env, timeout: 90_000 }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    })
    return Effect.sync(() => child.kill())
  })
