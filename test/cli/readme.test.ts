/**
 * Every `npx ...` line in the README's shell blocks, run exactly as
 * printed, from a user's shell: the machine's own `node` and `npx` first on
 * PATH (not the project's node_modules/.bin that npm scripts and vitest add).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..", "..")

/** The commands of the README's ```sh blocks that start with `prefix`, comments dropped. */
export const readmeCommands = (prefix: string): Array<string> => {
  const text = fs.readFileSync(path.join(root, "README.md"), "utf8")
  const out: Array<string> = []
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split("\n")) {
      const command = line.replace(/\s+#.*$/, "").trim()
      if (command.startsWith(prefix)) out.push(command)
    }
  }
  return out
}

/** PATH as a user's shell has it: without the node_modules/.bin entries npm added for this test run. */
const userPath = (process.env["PATH"] ?? "").split(path.delimiter).filter((p) => !p.includes(`node_modules${path.sep}.bin`)).join(path.delimiter)

const sh = (command: string) =>
  Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
    const env: Record<string, string | undefined> = { ...process.env, PATH: userPath }
    for (const key of Object.keys(env)) if (key.startsWith("npm_")) delete env[key]
    const child = execFile("/bin/sh", ["-c", command], { cwd: root, env, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    })
    return Effect.sync(() => child.kill())
  })

describe("the README's flotilla commands", () => {
  const commands = readmeCommands("npx ")

  it("lists the CLI's commands", () => {
    for (const sub of ["run", "lint", "controller", "kubelet"]) {
      assert.isTrue(commands.some((c) => c.startsWith(`npx flotilla ${sub}`)), `no "npx flotilla ${sub}" in the README`)
    }
  })

  for (const command of commands) {
    it.live(`${command}: exit 0 from a user's shell`, () =>
      Effect.gen(function*() {
        const r = yield* sh(command)
        assert.strictEqual(r.code, 0, `${command}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`)
        if (command.includes(" run ")) assert.match(r.stdout, /Status:\s+Succeeded/)
      }), 180_000)
  }
})
