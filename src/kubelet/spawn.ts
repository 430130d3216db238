/**
 * Starts one process for a pod runner and captures what a container log
 * would: stdout (the last 256 kB, Argo's `result`) and stdout and stderr
 * interleaved as they arrived (capped in memory), with the exit code, or
 * Kubernetes' StartError message when the command cannot start. Interrupting
 * it kills the whole process group and waits until the process is reaped;
 * so does its `stop` effect completing (the kubelet's active deadline), which
 * still returns what the process logged, with `stopped` set.
 */
import { spawn } from "node:child_process"
import * as os from "node:os"
import { Effect, Fiber } from "effect"

/** Kept like Argo's executor: the last 256 kB of stdout become `result`. */
const maxStdout = 256 * 1024
/** Logs are kept in memory; cap them so a chatty pod cannot exhaust it. */
const maxLog = 4 * 1024 * 1024

export interface Spawned {
  readonly exitCode: number
  readonly stdout: string
  readonly log: string
  readonly startError?: string | undefined
  /** The process was killed because `stop` completed (not because it exited, nor by interruption). */
  readonly stopped?: boolean | undefined
}

export interface SpawnOptions {
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string
  /** When this completes, the whole process group is SIGKILLed and the run returns what it has, `stopped` set. */
  readonly stop?: Effect.Effect<void> | undefined
}

/** Kills a detached child's whole process group; the child alone when the group is gone. */
const killGroup = (pid: number | undefined, kill: () => void): void => {
  try {
    if (pid === undefined) throw new Error("no pid")
    process.kill(-pid, "SIGKILL")
  } catch {
    try {
      kill()
    } catch {
      // Already gone; 'close' follows.
    }
  }
}

const signalExitCode = (signal: NodeJS.Signals | null): number =>
  signal === null ? 1 : 128 + (os.constants.signals[signal] ?? 9)

/** What `stop` reaches: the running child's kill, once it is spawned. */
interface StopHandle {
  requested: boolean
  kill: (() => void) | undefined
}

/**
 * Spawns argv in its own process group and waits for it. Interrupting the
 * effect SIGKILLs the whole group and waits until the process is reaped, so
 * a finished interruption means no process is left. `stop` completing does
 * the same kill, but the effect then returns the process's result.
 */
export const spawnAndWait = (argv: ReadonlyArray<string>, options: SpawnOptions): Effect.Effect<Spawned> => {
  const stop = options.stop
  if (stop === undefined) return spawnOnce(argv, options, undefined)
  return Effect.gen(function*() {
    const handle: StopHandle = { requested: false, kill: undefined }
    const stopper = yield* Effect.forkChild(Effect.andThen(stop, Effect.sync(() => {
      handle.requested = true
      handle.kill?.()
    })))
    return yield* spawnOnce(argv, options, handle).pipe(Effect.ensuring(Fiber.interrupt(stopper)))
  })
}

const spawnOnce = (argv: ReadonlyArray<string>, options: SpawnOptions, handle: StopHandle | undefined): Effect.Effect<Spawned> =>
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
    let stopped = false
    if (handle !== undefined) {
      handle.kill = () => {
        if (closed || stopped) return
        stopped = true
        killGroup(child.pid, () => child.kill("SIGKILL"))
      }
      if (handle.requested) handle.kill()
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
      finish({ exitCode: code ?? signalExitCode(signal), stdout: stdout.slice(-maxStdout), log, ...(stopped ? { stopped } : {}) })
    })
    return Effect.callback<void>((resumeKill) => {
      if (closed || child.pid === undefined) return resumeKill(Effect.void)
      onClosed.push(() => resumeKill(Effect.void))
      killGroup(child.pid, () => child.kill("SIGKILL"))
    })
  })
