/**
 * Starts one process for a pod runner and captures what a container log
 * would: stdout (the last 256 kB, Argo's `result`) and stdout and stderr
 * interleaved as they arrived (capped in memory), with the exit code, or
 * Kubernetes' StartError message when the command cannot start. Interrupting
 * it kills the whole process group and waits until the process is reaped.
 */
import { spawn } from "node:child_process"
import * as os from "node:os"
import { Effect } from "effect"

/** Kept like Argo's executor: the last 256 kB of stdout become `result`. */
const maxStdout = 256 * 1024
/** Logs are kept in memory; cap them so a chatty pod cannot exhaust it. */
const maxLog = 4 * 1024 * 1024

export interface Spawned {
  readonly exitCode: number
  readonly stdout: string
  readonly log: string
  readonly startError?: string | undefined
}

const signalExitCode = (signal: NodeJS.Signals | null): number =>
  signal === null ? 1 : 128 + (os.constants.signals[signal] ?? 9)

/**
 * Spawns argv in its own process group and waits for it. Interrupting the
 * effect SIGKILLs the whole group and waits until the process is reaped, so
 * a finished interruption means no process is left.
 */
export const spawnAndWait = (
  argv: ReadonlyArray<string>,
  options: { readonly env: Readonly<Record<string, string>>; readonly cwd: string }
): Effect.Effect<Spawned> =>
  Effect.callback<Spawned>((resume) => {
    let stdout = ""
    let log = ""
    let settled = false
    let closed = false
    const onClosed: Array<() => void> = []
    const child = spawn(argv[0], argv.slice(1), {
      env: options.env,
      cwd: options.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    const append = (out: boolean) => (chunk: Buffer) => {
      const s = chunk.toString("utf8")
      if (out) {
        stdout += s
        if (stdout.length > 2 * maxStdout) stdout = stdout.slice(-maxStdout)
      }
      if (log.length < maxLog) log += s
    }
    child.stdout!.on("data", append(true))
    child.stderr!.on("data", append(false))
    const finish = (value: Spawned) => {
      if (settled) return
      settled = true
      resume(Effect.succeed(value))
    }
    child.on("error", (err: NodeJS.ErrnoException) => {
      closed = true
      onClosed.splice(0).forEach((f) => f())
      finish({
        exitCode: err.code === "ENOENT" ? 127 : 128,
        stdout,
        log,
        startError: err.code === "ENOENT"
          ? `exec: "${argv[0]}": executable file not found in $PATH`
          : `exec: "${argv[0]}": ${err.message}`
      })
    })
    child.on("close", (code, signal) => {
      closed = true
      onClosed.splice(0).forEach((f) => f())
      finish({ exitCode: code ?? signalExitCode(signal), stdout: stdout.slice(-maxStdout), log })
    })
    return Effect.callback<void>((resumeKill) => {
      if (closed || child.pid === undefined) return resumeKill(Effect.void)
      onClosed.push(() => resumeKill(Effect.void))
      try {
        process.kill(-child.pid, "SIGKILL")
      } catch {
        try {
          child.kill("SIGKILL")
        } catch {
          // Already gone; 'close' follows.
        }
      }
    })
  })
