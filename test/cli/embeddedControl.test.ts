/**
 * `flotilla resume|stop NAME` against a `flotilla run` in another process (as a user does in a
 * second terminal): the run serves its control channel on a Unix socket in XDG_RUNTIME_DIR (one
 * per test, so runs of other tests or users are never found), prints how to resume while a
 * workflow waits, and ends as the command made it. No kubeconfig in either process's environment,
 * so the control commands go to the embedded runs (an error says so); `--pid` names one run. A
 * control directory of another user's stops the run. Every wait is for a line of output.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { noKubeconfig } from "../../src/cli/control.js"
import { embeddedEnv, flotillaWith, spawnFlotilla } from "./process.js"

const setup = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-ctl-"))
  const runtime = path.join(dir, "runtime")
  fs.mkdirSync(runtime, { mode: 0o700 })
  return { dir, env: embeddedEnv({ XDG_RUNTIME_DIR: runtime }), sockets: path.join(runtime, "flotilla") }
}

const write = (dir: string, name: string, lines: ReadonlyArray<string>) => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, lines.join("\n") + "\n")
  return file
}

/** A suspend template between two steps, and a workflow created with spec.suspend: true. */
const workflows = (dir: string) =>
  write(dir, "suspend.yaml", [
    "apiVersion: argoproj.io/v1alpha1",
    "kind: Workflow",
    "metadata: {name: approval, namespace: local}",
    "spec:",
    "  entrypoint: main",
    "  templates:",
    "  - name: main",
    "    steps:",
    "    - - {name: approve, template: approve}",
    "    - - {name: release, template: release}",
    "  - name: approve",
    "    suspend: {}",
    "  - name: release",
    "    container: {image: busybox, command: [echo, released]}",
    "---",
    "apiVersion: argoproj.io/v1alpha1",
    "kind: Workflow",
    "metadata: {name: held}",
    "spec:",
    "  suspend: true",
    "  entrypoint: main",
    "  templates:",
    "  - name: main",
    "    container: {image: busybox, command: [echo, held]}"
  ])

describe("flotilla resume|stop on a flotilla run in another process", () => {
  it.live("resume ends a suspend node and a spec.suspend workflow Succeeded; an unknown name fails clearly", () =>
    Effect.scoped(Effect.gen(function*() {
      const { dir, env, sockets } = setup()
      const run = yield* spawnFlotilla(["run", workflows(dir)], env)
      yield* run.waitFor(/workflow approval is suspended at node approve: run `flotilla resume approval` in another terminal/)
      yield* run.waitFor(/workflow held is suspended \(spec\.suspend\): run `flotilla resume held` in another terminal/)
      assert.deepStrictEqual(fs.readdirSync(sockets).filter((f) => f.endsWith(".sock")).length, 1)
      assert.strictEqual(fs.statSync(sockets).mode & 0o777, 0o700)

      // chosen because no kubeconfig was found: the error says so, and where it looked
      const missing = yield* flotillaWith(env, "resume", "nosuch")
      assert.strictEqual(missing.code, 1, missing.stdout)
      assert.include(missing.stderr, `nosuch: ${noKubeconfig}; no embedded run (flotilla run) has workflow nosuch (looked for runs in ${sockets})`)
      const asked = yield* flotillaWith(env, "resume", "nosuch", "--embedded")
      assert.include(asked.stderr, "nosuch: no embedded run (flotilla run) has workflow nosuch (looked for runs in")

      // --pid names the run
      const pid = Number(/^run-(\d+)\.sock$/.exec(fs.readdirSync(sockets).find((f) => f.endsWith(".sock"))!)![1])
      const elsewhere = yield* flotillaWith(env, "resume", "held", "--pid", String(pid + 1))
      assert.strictEqual(elsewhere.code, 1, elsewhere.stdout)
      assert.include(elsewhere.stderr, `held: no embedded run (flotilla run) has workflow held in pid ${pid + 1}`)
      const held = yield* flotillaWith(env, "resume", "held", "--pid", String(pid))
      assert.strictEqual(held.code, 0, held.stderr)
      assert.include(held.stdout, "workflow held resumed")

      const resumed = yield* flotillaWith(env, "resume", "approval")
      assert.strictEqual(resumed.code, 0, resumed.stderr)
      assert.include(resumed.stdout, "workflow approval resumed")

      const end = yield* run.exit
      assert.strictEqual(end.code, 0, end.stdout + end.stderr)
      assert.match(end.stdout, /Name:\s+approval\nNamespace:\s+local\nStatus:\s+Succeeded/)
      assert.match(end.stdout, /Name:\s+held\nNamespace:\s+default\nStatus:\s+Succeeded/)
      assert.match(end.stdout, /\n released\n|\nreleased\n/)
      // The hint is printed once per suspension, and the socket is gone with the run.
      assert.strictEqual(end.stdout.split("is suspended at node approve").length, 2)
      assert.deepStrictEqual(fs.readdirSync(sockets).filter((f) => f.endsWith(".sock")), [])
    })), 180_000)

  it.live("stop ends a suspended workflow Failed (exit 1); -o json prints no hint", () =>
    Effect.scoped(Effect.gen(function*() {
      const { dir, env } = setup()
      const file = write(dir, "stop.yaml", [
        "apiVersion: argoproj.io/v1alpha1",
        "kind: Workflow",
        "metadata: {name: stop-me}",
        "spec:",
        "  entrypoint: main",
        "  templates:",
        "  - name: main",
        "    suspend: {}"
      ])
      const run = yield* spawnFlotilla(["run", file, "--output", "json"], env)
      // logged once the channel serves and the workflows are created
      yield* run.waitFor(/control channel.*socket=/, "stderr")
      const stopped = yield* flotillaWith(env, "stop", "stop-me")
      assert.strictEqual(stopped.code, 0, stopped.stderr)
      assert.include(stopped.stdout, "workflow stop-me stopped")
      const end = yield* run.exit
      assert.strictEqual(end.code, 1, end.stderr)
      const wf = JSON.parse(end.stdout)
      assert.strictEqual(wf.status.phase, "Failed")
      // -o json prints the final object only: no hint
      assert.notInclude(end.stdout, "flotilla resume")
    })), 180_000)

  // Someone else's control directory (made here with chown, so only as root) is an error for the run, not a warning.
  it.live.skipIf(process.getuid?.() !== 0)("flotilla run refuses a control directory it does not own", () =>
    Effect.scoped(Effect.gen(function*() {
      const { dir, env, sockets } = setup()
      fs.mkdirSync(sockets, { mode: 0o700 })
      fs.chownSync(sockets, 65534, 65534)
      const run = yield* spawnFlotilla(["run", workflows(dir)], env)
      const end = yield* run.exit
      assert.notStrictEqual(end.code, 0, end.stdout)
      assert.include(end.stdout + end.stderr, `control directory ${sockets}: owned by uid 65534`)
      assert.notInclude(end.stdout, "is suspended")
    })), 180_000)
})
