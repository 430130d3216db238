/**
 * `flotilla ARGS...` as a real process (the CLI through tsx, as bin/flotilla.mjs
 * runs it), for the CLI tests: exit code, stdout and stderr.
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as path from "node:path"

export const root = path.resolve(import.meta.dirname, "..", "..")
const tsx = path.join(root, "node_modules", ".bin", "tsx")

export const flotilla = (...args: Array<string>) =>
  Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = execFile(tsx, [path.join(root, "src", "cli", "main.ts"), ...args], { cwd: root, timeout: 90_000 }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    })
    return Effect.sync(() => child.kill())
  })
