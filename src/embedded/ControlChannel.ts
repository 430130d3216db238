/**
 * The control channel of an embedded run: how `flotilla suspend|resume|stop|terminate NAME`
 * reaches the workflows a `flotilla run` process holds in its in-memory clusters.
 *
 * Each run serves a small HTTP API on a Unix socket (never TCP) in a per-user directory of mode
 * 0700 (`$XDG_RUNTIME_DIR/flotilla`, else `${TMPDIR:-/tmp}/flotilla-<uid>`), one socket per
 * process (`run-<pid>.sock`), removed when the run ends. Only this user can reach it: the
 * directory's mode is the access check, as for ssh-agent's or gpg-agent's sockets. A socket whose
 * process is gone (a run that was killed) is removed by the next run or client that finds it.
 *
 * Two requests, both POST with a small JSON body (at most `maxBodyBytes`, decoded with Schema):
 * - `/v1/lookup` `{name, namespace?}`: the namespaces in which this run has a workflow of that name;
 * - `/v1/control` `{namespace, name, action}`: the action applied (src/cli/control.ts: with
 *   `applyControl`, the same write `flotilla resume` does on a real cluster, on the run's admin
 *   client); the answer's outcome is `done`, `refused` (the reason, as upstream words it),
 *   `notFound` or `failed`.
 *
 * The client side (`controlEmbedded`) asks every live run which has the workflow, and acts on the
 * one that has it. Both sides check the directory the same way first (`checkDirectory`: a
 * directory, not a link, this user's, mode 0700; the client never changes it) and only talk to
 * Unix sockets of this user's in it: a directory planted by another user (`/tmp/flotilla-<uid>`
 * made before this user's first run) is an error naming it, never a channel.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ByteSize, Config, Effect, Option, Schema, Scope } from "effect"
import {
  HttpClient,
  HttpClientRequest,
  HttpClientResponse,
  HttpIncomingMessage,
  HttpRouter,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import type { ControlAction as Action } from "../workflow/control.js"

/** Request bodies larger than this are refused (413) before they are parsed. */
export const maxBodyBytes = 4096

export const ControlAction: Schema.Codec<Action> = Schema.Literals(["suspend", "resume", "stop", "terminate"])

/** A Kubernetes object name (or namespace), as far as this channel cares. */
const Name = Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(253)))

export const LookupRequest = Schema.Struct({ name: Name, namespace: Schema.optional(Name) })
export type LookupRequest = typeof LookupRequest.Type
export const LookupAnswer = Schema.Struct({ namespaces: Schema.Array(Schema.String) })

export const ControlRequest = Schema.Struct({ namespace: Name, name: Name, action: ControlAction })
export type ControlRequest = typeof ControlRequest.Type
export const ControlOutcome = Schema.Literals(["done", "refused", "notFound", "failed"])
export const ControlAnswer = Schema.Struct({ outcome: ControlOutcome, message: Schema.String })
export type ControlAnswer = typeof ControlAnswer.Type

/** The channel cannot be set up or used (directory, socket, no run has the workflow...). */
export class ControlChannelError extends Schema.TaggedError<ControlChannelError>()("ControlChannelError", {
  message: Schema.String
}) {}

// Where the sockets live -----------------------------------------------------------------------

const optionalVar = (name: string) =>
  Config.option(Config.String(name)).pipe(Config.map(Option.filter((v) => v !== "")))

/** `$XDG_RUNTIME_DIR/flotilla`, else `${TMPDIR:-/tmp}/flotilla-<uid>`. */
export const directoryConfig: Config.Config<string> = Config.all({
  runtime: optionalVar("XDG_RUNTIME_DIR"),
  tmp: optionalVar("TMPDIR")
}).pipe(Config.map(({ runtime, tmp }) =>
  Option.isSome(runtime)
    ? path.join(runtime.value, "flotilla")
    : path.join(Option.getOrElse(tmp, () => "/tmp"), `flotilla-${process.getuid?.() ?? 0}`)
))

const fail = (message: string) => new ControlChannelError({ message })

/**
 * The control directory is not one this user can trust: not a directory, someone else's, or open
 * to others. Another local user could have planted it (e.g. `/tmp/flotilla-<uid>` before this
 * user's first run): neither a run nor a client uses it.
 */
export class ControlDirectoryError extends Schema.TaggedError<ControlDirectoryError>()("ControlDirectoryError", {
  message: Schema.String
}) {}

const reason = (e: unknown) => e instanceof Error ? e.message : String(e)

/**
 * The one check of the directory, for run and client alike (read-only: lstat, never chmod):
 * `false` when it does not exist; otherwise it must be a directory (not a symlink) of this user's
 * with no rights for group or others.
 */
export const checkDirectory = (dir: string): Effect.Effect<boolean, ControlDirectoryError> =>
  Effect.suspend(() => {
    let st: fs.Stats
    try {
      st = fs.lstatSync(dir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return Effect.succeed(false)
      return Effect.fail(new ControlDirectoryError({ message: `control directory ${dir}: ${reason(e)}` }))
    }
    const refuse = (why: string) => Effect.fail(new ControlDirectoryError({ message: `control directory ${dir}: ${why}; not used (remove it, or set XDG_RUNTIME_DIR or TMPDIR)` }))
    if (!st.isDirectory()) return refuse(st.isSymbolicLink() ? "a symbolic link, not a directory" : "not a directory")
    const uid = process.getuid?.()
    if (uid !== undefined && st.uid !== uid) return refuse(`owned by uid ${st.uid}, not this user (${uid})`)
    if ((st.mode & 0o077) !== 0) return refuse(`mode ${(st.mode & 0o777).toString(8)}: open to group or others (0700 wanted)`)
    return Effect.succeed(true)
  })

/**
 * The run's side: the directory, created 0700 if missing; an existing one of this user's is made
 * 0700 first; then `checkDirectory`.
 */
export const ensureDirectory = (dir: string): Effect.Effect<string, ControlChannelError | ControlDirectoryError> =>
  Effect.gen(function*() {
    yield* Effect.try({
      try: () => {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
        const st = fs.lstatSync(dir)
        if (st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700)
      },
      catch: (e) => fail(`control directory ${dir}: ${reason(e)}`)
    })
    yield* checkDirectory(dir)
    return dir
  })

const socketPattern = /^run-(\d+)\.sock$/

/** A socket file's path for process `pid`. */
export const socketPath = (dir: string, pid: number): string => path.join(dir, `run-${pid}.sock`)

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const removeQuietly = (file: string) => {
  try {
    fs.unlinkSync(file)
  } catch {
    // already gone
  }
}

/**
 * The sockets of live runs in `dir` (checked with `checkDirectory` first), by pid: only Unix
 * sockets of this user's; files of dead processes are removed.
 */
export const liveSockets = (
  dir: string
): Effect.Effect<ReadonlyArray<{ readonly pid: number; readonly socket: string }>, ControlDirectoryError> =>
  Effect.gen(function*() {
    if (!(yield* checkDirectory(dir))) return []
    let entries: Array<string>
    try {
      entries = fs.readdirSync(dir)
    } catch {
      return []
    }
    const uid = process.getuid?.()
    const out: Array<{ pid: number; socket: string }> = []
    for (const entry of entries.sort()) {
      const m = socketPattern.exec(entry)
      if (m === null) continue
      const pid = Number(m[1])
      const socket = path.join(dir, entry)
      if (!alive(pid)) {
        removeQuietly(socket)
        continue
      }
      let st: fs.Stats
      try {
        st = fs.lstatSync(socket)
      } catch {
        continue
      }
      if (st.isSocket() && (uid === undefined || st.uid === uid)) out.push({ pid, socket })
    }
    return out
  })

// The run's side --------------------------------------------------------------------------------

const answer = (body: ControlAnswer | typeof LookupAnswer.Type, status = 200) => HttpServerResponse.jsonUnsafe(body, { status })

const badRequest = (message: string) => HttpServerResponse.jsonUnsafe({ error: message }, { status: 400 })

/** What a run does with the two requests (src/cli/control.ts's `embeddedControl` on its admin client). */
export interface Handlers {
  /** The namespaces in which the run has a workflow of that name. */
  readonly lookup: (request: LookupRequest) => Effect.Effect<ReadonlyArray<string>>
  readonly control: (request: ControlRequest) => Effect.Effect<ControlAnswer>
}

/** A handler reading a JSON body of at most `maxBodyBytes`, decoded with `schema`; 400/413 otherwise. */
const handle = <A>(schema: Schema.Codec<A, unknown>, respond: (body: A) => Effect.Effect<HttpServerResponse.HttpServerResponse>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"] ?? "0")
    if (declared > maxBodyBytes) return HttpServerResponse.jsonUnsafe({ error: `body over ${maxBodyBytes} bytes` }, { status: 413 })
    // read first (at most maxBodyBytes: beyond, the read fails), then decoded: not JSON or not the shape is 400
    const text = yield* request.text.pipe(Effect.result)
    if (text._tag === "Failure") return HttpServerResponse.jsonUnsafe({ error: `body unreadable or over ${maxBodyBytes} bytes` }, { status: 413 })
    const body = yield* Schema.decodeUnknownEffect(Schema.fromJsonString(schema))(text.success).pipe(Effect.result)
    if (body._tag === "Failure") return badRequest(body.failure.message)
    return yield* respond(body.success)
  }).pipe(Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)))

/**
 * Serves the channel of this run for as long as the scope is open: the socket's path. The socket
 * is removed when the scope closes; stale sockets of dead runs are removed first.
 */
export const serve = (
  handlers: Handlers,
  options: { readonly dir?: string; readonly pid?: number } = {}
): Effect.Effect<string, ControlChannelError | ControlDirectoryError | ServeError | Config.ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* ensureDirectory(options.dir ?? (yield* directoryConfig))
    yield* liveSockets(dir)
    const pid = options.pid ?? process.pid
    const socket = socketPath(dir, pid)
    // sun_path holds 108 bytes on Linux (104 on macOS): say so rather than fail obscurely
    if (Buffer.byteLength(socket) > 100) return yield* fail(`control socket path too long (${socket}): set XDG_RUNTIME_DIR or TMPDIR to a shorter directory`)
    // A socket of our pid is a dead earlier process's (pids are reused): replaced.
    yield* Effect.acquireRelease(Effect.sync(() => removeQuietly(socket)), () => Effect.sync(() => removeQuietly(socket)))
    const router = yield* HttpRouter.make
    yield* router.add("POST", "/v1/lookup", handle(LookupRequest as Schema.Codec<LookupRequest, unknown>, (body) =>
      Effect.map(handlers.lookup(body), (namespaces) => answer({ namespaces }))))
    yield* router.add("POST", "/v1/control", handle(ControlRequest as Schema.Codec<ControlRequest, unknown>, (body) =>
      Effect.map(handlers.control(body), (a) => answer(a))))
    const server = http.createServer()
    const node = yield* NodeHttpServer.make(() => server, { path: socket })
    yield* Effect.sync(() => fs.chmodSync(socket, 0o600))
    yield* node.serve(router.asHttpEffect())
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        server.close()
        server.closeAllConnections()
      })
    )
    return socket
  })

// The client's side -----------------------------------------------------------------------------

const post = <A>(socket: string, route: string, body: unknown, schema: Schema.Codec<A, unknown>) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(HttpClientRequest.post(`http://localhost${route}`).pipe(HttpClientRequest.bodyJsonUnsafe(body)))
    if (response.status !== 200) {
      const text = yield* response.text
      return yield* fail(`${route}: HTTP ${response.status}: ${text}`)
    }
    return yield* HttpClientResponse.schemaBodyJson(schema)(response)
  }).pipe(
    Effect.timeout("10 seconds"),
    Effect.mapError((e) => e instanceof ControlChannelError ? e : fail(`${socket}: ${e.message}`)),
    Effect.provide(NodeHttpClient.layerNodeHttpOptions({ socketPath: socket }))
  )

export interface EmbeddedTarget {
  readonly pid: number
  readonly socket: string
  readonly namespace: string
}

/**
 * The runs that have a workflow `name` (in `namespace` if given; only run `pid` if given); runs
 * that do not answer are skipped. A directory that fails `checkDirectory` is an error naming it.
 */
export const findRuns = (dir: string, name: string, namespace: string | undefined, pid?: number) =>
  Effect.gen(function*() {
    const found: Array<EmbeddedTarget> = []
    const sockets = (yield* liveSockets(dir)).filter((s) => pid === undefined || s.pid === pid)
    for (const { pid, socket } of sockets) {
      const request: LookupRequest = namespace === undefined ? { name } : { name, namespace }
      const reply = yield* post(socket, "/v1/lookup", request, LookupAnswer as Schema.Codec<typeof LookupAnswer.Type, unknown>).pipe(
        Effect.option
      )
      if (Option.isNone(reply)) continue // not listening (a pid reused by another process, a run ending)
      for (const ns of reply.value.namespaces) found.push({ pid, socket, namespace: ns })
    }
    return found
  })

/**
 * `flotilla ACTION NAME` against the embedded runs of this user: the one run that has the
 * workflow (in `namespace`, in run `pid`, if given) applies the action. None, or several (the
 * same name in two runs or namespaces), is a ControlChannelError saying so and where it looked.
 */
export const controlEmbedded = (
  name: string,
  namespace: string | undefined,
  action: Action,
  options: { readonly dir?: string; readonly pid?: number } = {}
): Effect.Effect<ControlAnswer, ControlChannelError | Config.ConfigError> =>
  Effect.gen(function*() {
    const dir = options.dir ?? (yield* directoryConfig)
    const where = `${namespace === undefined ? "" : ` in namespace ${namespace}`}${options.pid === undefined ? "" : ` in pid ${options.pid}`}`
    const found = yield* findRuns(dir, name, namespace, options.pid).pipe(
      Effect.mapError((e) => fail(e.message))
    )
    if (found.length === 0) return yield* fail(`no embedded run (flotilla run) has workflow ${name}${where} (looked for runs in ${dir})`)
    if (found.length > 1) {
      const list = found.map((t) => `${t.namespace}/${name} in pid ${t.pid}`).join(", ")
      return yield* fail(`workflow ${name}${where} is in several embedded runs: ${list}; give --namespace or --pid`)
    }
    const target = found[0]!
    return yield* post(target.socket, "/v1/control", { namespace: target.namespace, name, action } satisfies ControlRequest,
      ControlAnswer as Schema.Codec<ControlAnswer, unknown>)
  })
