/**
 * The control channel of an embedded run (src/embedded/ControlChannel.ts) with the in-memory
 * clusters: a run's socket in a directory of mode 0700, found by `controlEmbedded`, which applies
 * `applyControl` there (done, refused with upstream's reason, not found); two runs with the same
 * name are ambiguous (`pid` picks one); stale sockets of dead processes are removed; the socket goes
 * with the scope; a directory open to others, someone else's or a link is refused by client and run
 * alike, and a socket that is a link is not a run's; bodies are data: bad ones are 400, big ones 413
 * (with a Content-Length or chunked). Real Unix sockets: live clock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { embeddedControl } from "../../src/cli/control.js"
import * as ControlChannel from "../../src/embedded/ControlChannel.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const workflow = (name: string, namespace: string): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace },
  spec: { entrypoint: "main", templates: [{ name: "main", suspend: {} }] }
})

const setup = Effect.gen(function*() {
  const kube = yield* InMemoryKube
  yield* kube.addCluster("main")
  yield* kube.ensureNamespace("main", "local")
  yield* kube.ensureNamespace("main", "other")
  const admin = kube.adminClient("main")
  yield* admin.create("workflows", "local", workflow("approval", "local"))
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-channel-")), "flotilla")
  return { admin, dir }
})

/** A POST whose body is sent chunked (no Content-Length), in pieces of 1000 bytes: status, or the error that ended it. */
const chunkedPost = (socket: string, route: string, body: string) =>
  Effect.callback<{ status: number } | { error: string }>((resume) => {
    const req = http.request({ socketPath: socket, path: route, method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      res.resume()
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0 })))
    })
    req.on("error", (e) => resume(Effect.succeed({ error: e.message })))
    for (let i = 0; i < body.length; i += 1000) req.write(body.slice(i, i + 1000))
    req.end()
  })

/** A raw POST over the socket: status and body. */
const rawPost = (socket: string, route: string, body: string) =>
  Effect.callback<{ status: number; body: string }, Error>((resume) => {
    const req = http.request({ socketPath: socket, path: route, method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      let text = ""
      res.on("data", (c: Buffer) => { text += c.toString("utf8") })
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: text })))
    })
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end(body)
  })

describe("embedded control channel", () => {
  it.live("a run's workflows are found by name (any namespace, or the one given) and controlled there", () =>
    Effect.gen(function*() {
      const { admin, dir } = yield* setup
      const socket = yield* ControlChannel.serve(embeddedControl(admin), { dir })
      assert.strictEqual(socket, path.join(dir, `run-${process.pid}.sock`))
      assert.strictEqual(fs.statSync(dir).mode & 0o777, 0o700)
      assert.isTrue(fs.statSync(socket).isSocket())

      const suspended = yield* ControlChannel.controlEmbedded("approval", undefined, "suspend", { dir })
      assert.deepStrictEqual(suspended, { outcome: "done", message: "workflow approval suspended" })
      assert.strictEqual(((yield* admin.get("workflows", "local", "approval")).spec as any).suspend, true)
      const resumed = yield* ControlChannel.controlEmbedded("approval", "local", "resume", { dir })
      assert.strictEqual(resumed.outcome, "done")
      assert.notProperty((yield* admin.get("workflows", "local", "approval")).spec as object, "suspend")

      const elsewhere = yield* Effect.exit(ControlChannel.controlEmbedded("approval", "other", "resume", { dir }))
      assert.isTrue(Exit.isFailure(elsewhere))
      assert.include(String(elsewhere), "no embedded run (flotilla run) has workflow approval in namespace other")
      const missing = yield* Effect.exit(ControlChannel.controlEmbedded("nosuch", undefined, "stop", { dir }))
      assert.include(String(missing), `no embedded run (flotilla run) has workflow nosuch (looked for runs in ${dir})`)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("a completed workflow is refused with upstream's reason; a name in two runs is ambiguous", () =>
    Effect.gen(function*() {
      const { admin, dir } = yield* setup
      const stored = yield* admin.get("workflows", "local", "approval")
      yield* admin.replace("workflows", "local", { ...stored, status: { phase: "Succeeded" } })
      yield* ControlChannel.serve(embeddedControl(admin), { dir })
      const refused = yield* ControlChannel.controlEmbedded("approval", undefined, "terminate", { dir })
      assert.deepStrictEqual(refused, { outcome: "refused", message: "cannot shutdown a completed workflow: workflow approval is Succeeded" })
      // the handler itself: a workflow gone between lookup and control
      const gone = yield* embeddedControl(admin).control({ namespace: "local", name: "gone", action: "resume" })
      assert.deepStrictEqual(gone, { outcome: "notFound", message: "workflow local/gone not found" })

      // a second run (this process's parent pid is alive) with the same workflow
      yield* ControlChannel.serve(embeddedControl(admin), { dir, pid: process.ppid })
      const twice = yield* Effect.exit(ControlChannel.controlEmbedded("approval", undefined, "resume", { dir }))
      assert.include(String(twice), "workflow approval is in several embedded runs")
      assert.include(String(twice), "give --namespace or --pid")
      // --pid picks one (which answers as the first did)
      const picked = yield* ControlChannel.controlEmbedded("approval", undefined, "terminate", { dir, pid: process.ppid })
      assert.deepStrictEqual(picked, { outcome: "refused", message: "cannot shutdown a completed workflow: workflow approval is Succeeded" })
      const noRun = yield* Effect.exit(ControlChannel.controlEmbedded("approval", undefined, "resume", { dir, pid: 99999999 }))
      assert.include(String(noRun), "no embedded run (flotilla run) has workflow approval in pid 99999999")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("stale sockets of dead processes are removed; the run's socket goes with its scope", () =>
    Effect.gen(function*() {
      const { admin, dir } = yield* setup
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
      // beyond Linux's largest pid_max: never a live process
      const stale = path.join(dir, "run-99999999.sock")
      fs.writeFileSync(stale, "")
      const scope = yield* Scope.make()
      const socket = yield* ControlChannel.serve(embeddedControl(admin), { dir }).pipe(Scope.provide(scope))
      assert.isFalse(fs.existsSync(stale))
      // an existing directory of ours is made private
      assert.strictEqual(fs.statSync(dir).mode & 0o777, 0o700)
      assert.deepStrictEqual((yield* ControlChannel.liveSockets(dir)).map((s) => s.socket), [socket])
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(fs.existsSync(socket))
      const none = yield* Effect.exit(ControlChannel.controlEmbedded("approval", undefined, "resume", { dir }))
      assert.include(String(none), "no embedded run (flotilla run) has workflow approval")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("client and run alike refuse a directory open to others, someone else's, or a link; only this user's sockets count", () =>
    Effect.gen(function*() {
      const { admin, dir } = yield* setup
      const socket = yield* ControlChannel.serve(embeddedControl(admin), { dir })
      const refused = (exit: Exit.Exit<unknown, unknown>, why: string) => {
        assert.isTrue(Exit.isFailure(exit), String(exit))
        assert.include(String(exit), `control directory ${dir}: ${why}`)
      }

      // a socket that is a link (to a live run elsewhere) is not one of this directory's runs
      const other = path.join(path.dirname(dir), "other")
      const otherSocket = yield* ControlChannel.serve(embeddedControl(admin), { dir: other, pid: process.ppid })
      fs.symlinkSync(otherSocket, ControlChannel.socketPath(dir, process.ppid))
      assert.deepStrictEqual((yield* ControlChannel.liveSockets(dir)).map((s) => s.socket), [socket])
      assert.strictEqual((yield* ControlChannel.controlEmbedded("approval", undefined, "suspend", { dir })).outcome, "done")

      // open to others: the client neither uses nor repairs it
      fs.chmodSync(dir, 0o755)
      refused(yield* Effect.exit(ControlChannel.controlEmbedded("approval", undefined, "resume", { dir })), "mode 755")
      assert.strictEqual(fs.statSync(dir).mode & 0o777, 0o755)
      fs.chmodSync(dir, 0o700)

      // someone else's (as root in a test, a chown; otherwise not testable here)
      if (process.getuid?.() === 0) {
        fs.chownSync(dir, 65534, 65534)
        refused(yield* Effect.exit(ControlChannel.controlEmbedded("approval", undefined, "resume", { dir })), "owned by uid 65534")
        refused(yield* Effect.exit(ControlChannel.serve(embeddedControl(admin), { dir, pid: 99999998 })), "owned by uid 65534")
        fs.chownSync(dir, 0, 0)
      }

      // a link to a directory of ours
      const link = path.join(path.dirname(dir), "link")
      fs.symlinkSync(dir, link)
      const viaLink = yield* Effect.exit(ControlChannel.controlEmbedded("approval", undefined, "resume", { dir: link }))
      assert.include(String(viaLink), `control directory ${link}: a symbolic link, not a directory`)
      const served = yield* Effect.exit(ControlChannel.serve(embeddedControl(admin), { dir: link, pid: 99999998 }))
      assert.include(String(served), "ControlDirectoryError")
      // nothing was changed
      assert.property((yield* admin.get("workflows", "local", "approval")).spec as object, "suspend")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("request bodies are validated and capped", () =>
    Effect.gen(function*() {
      const { admin, dir } = yield* setup
      const socket = yield* ControlChannel.serve(embeddedControl(admin), { dir })
      const badAction = yield* rawPost(socket, "/v1/control", JSON.stringify({ namespace: "local", name: "approval", action: "delete" }))
      assert.strictEqual(badAction.status, 400)
      const notJson = yield* rawPost(socket, "/v1/lookup", "{")
      assert.strictEqual(notJson.status, 400)
      const big = yield* rawPost(socket, "/v1/lookup", JSON.stringify({ name: "x".repeat(ControlChannel.maxBodyBytes) }))
      assert.strictEqual(big.status, 413)
      // the same without a Content-Length: the read itself stops at the cap
      const chunked = yield* chunkedPost(socket, "/v1/lookup", JSON.stringify({ name: "x".repeat(ControlChannel.maxBodyBytes) }))
      assert.deepStrictEqual(chunked, { status: 413 })
      const unknown = yield* rawPost(socket, "/v1/other", "{}")
      assert.strictEqual(unknown.status, 404)
      // nothing changed
      assert.notProperty((yield* admin.get("workflows", "local", "approval")).spec as object, "suspend")
      const ok = yield* rawPost(socket, "/v1/lookup", JSON.stringify({ name: "approval" }))
      assert.deepStrictEqual({ status: ok.status, body: JSON.parse(ok.body) }, { status: 200, body: { namespaces: ["local"] } })
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})
