/**
 * A real S3 server for tests: SeaweedFS's `weed server -s3` (built from the
 * Go module proxy by scripts/s3/build.sh, cached by version beside the
 * Kubernetes binaries), started on 127.0.0.1 with free ports, a temporary
 * data directory and one access key / secret key pair, so that every request
 * is really authenticated (a wrong key is refused, anonymous access too).
 *
 * Two shapes of the same thing:
 * - `s3Server(options)`: a scoped Effect (`Effect.acquireRelease`), for tests;
 * - `startS3Server(options)`: a Promise with a `stop()`, for the plain tsx
 *   scripts (test/conformance/*.ts).
 *
 * What a client must know (argoexec included):
 * - path-style addressing (`forcePathStyle: true`; argo does it by itself for
 *   an endpoint that is an IP address), region `us-east-1`, plain HTTP
 *   (argo: `endpoint: 127.0.0.1:PORT` without scheme, `insecure: true`);
 * - buckets are never created on upload (`-s3.autoCreateBucket=false`), so a
 *   missing bucket is `NoSuchBucket` as on AWS: call `createBucket` first.
 *
 * The server's output goes to `<dir>/weed.log`; its tail is in every start
 * error, and is printed when the scope closes on a failure. Nothing listens
 * on anything but 127.0.0.1 (or `bindIp`), and the process group is killed (SIGKILL: the
 * data is thrown away anyway) and the directory removed when it stops; the
 * group is also killed if the test process exits first.
 */
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException
} from "@aws-sdk/client-s3"
import { Context, Effect, Exit, Layer, Schema, type Scope } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export class S3ServerError extends Schema.TaggedError<S3ServerError>()("S3ServerError", {
  message: Schema.String
}) {}

export interface S3ServerOptions {
  /** Parent of the server's temporary directory (default: the OS temp dir). */
  readonly parentDir?: string
  readonly accessKey?: string
  readonly secretKey?: string
  /** How long to wait until the server serves S3 (default 60 s). */
  readonly startTimeoutMs?: number
  /**
   * The one address every listener binds to (default 127.0.0.1). Another
   * address of this machine's own (a test host's veth, say) is for pods in a
   * network namespace of their own, which cannot reach the host's loopback.
   */
  readonly bindIp?: string
}

interface S3ServerInfo {
  /** `127.0.0.1:PORT` (`bindIp:PORT`), without a scheme: argo's `s3.endpoint` (with `insecure: true`). */
  readonly endpoint: string
  /** `http://127.0.0.1:PORT`, for SDK clients. */
  readonly url: string
  readonly region: string
  readonly accessKey: string
  readonly secretKey: string
  /** The server's temporary directory (removed when it stops). */
  readonly dir: string
  readonly logFile: string
  /** A client for this server; other credentials to test refusals. */
  readonly client: (credentials?: { readonly accessKey: string; readonly secretKey: string }) => S3Client
  /** The last lines of the server's log. */
  readonly logTail: (lines?: number) => string
}

/** The scoped variant: `createBucket` is an Effect. */
export interface S3Server extends S3ServerInfo {
  readonly createBucket: (name: string) => Effect.Effect<void, S3ServerError>
}

/** The plain async variant, for tsx scripts. */
export interface S3ServerHandle extends S3ServerInfo {
  readonly createBucket: (name: string) => Promise<void>
  readonly stop: () => Promise<void>
}

export const region = "us-east-1"

const repoRoot = path.resolve(import.meta.dirname, "..", "..")
const buildScript = "scripts/s3/build.sh"

/**
 * The `weed` binary: $FLOTILLA_WEED, else where scripts/s3/build.sh puts it.
 * Missing is an error that says how to build it (never a silent skip:
 * `npm test` builds it first, in its pretest).
 */
export const weedBinary = (): string => {
  const fromEnv = process.env["FLOTILLA_WEED"]
  let bin = fromEnv
  if (bin === undefined || bin === "") {
    const out = execFileSync("bash", [path.join(repoRoot, buildScript), "--print-env"], { encoding: "utf8" })
    const m = /^WEED=(.*)$/m.exec(out)
    if (!m) throw new S3ServerError({ message: `${buildScript} --print-env names no WEED` })
    bin = m[1]!.replace(/^'(.*)'$/, "$1")
  }
  try {
    fs.accessSync(bin, fs.constants.X_OK)
  } catch {
    throw new S3ServerError({
      message: `the S3 server's binary (SeaweedFS weed) is not at ${bin}${fromEnv ? " ($FLOTILLA_WEED)" : ""}: ` +
        `run \`bash ${buildScript}\` (npm test's pretest does)`
    })
  }
  return bin
}

/** Free ports on `ip`, all held at once so that no two are the same. */
const freePorts = async (ip: string, count: number): Promise<Array<number>> => {
  const servers = await Promise.all(Array.from({ length: count }, () =>
    new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer()
      s.once("error", reject)
      s.listen(0, ip, () => resolve(s))
    })))
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done()))))
  return ports
}

const randomKey = (bytes: number, alphabet: string) =>
  Array.from(crypto.randomBytes(bytes), (b) => alphabet[b % alphabet.length]).join("")

const tail = (file: string, lines: number): string => {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n")
  } catch {
    return "(no log)"
  }
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms))

const killGroup = (child: ChildProcess) => {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, "SIGKILL")
  } catch {
    child.kill("SIGKILL")
  }
}

/**
 * `weed server -s3` argv for the ports in `p`. Every listener is bound to
 * 127.0.0.1 (`-ip.bind`; `-ip` is also the address the parts tell each
 * other), every port is explicit (the gRPC ones would otherwise be the HTTP
 * port + 10000), and the optional listeners that default to fixed ports
 * (Iceberg 8181, Lance 9101) and the usage telemetry are off.
 */
const weedArgs = (dir: string, ip: string, p: Ports): Array<string> => [
  "-logtostderr",
  "server",
  `-ip=${ip}`,
  `-ip.bind=${ip}`,
  `-dir=${path.join(dir, "data")}`,
  `-master.port=${p.master}`,
  `-master.port.grpc=${p.masterGrpc}`,
  "-master.telemetry=false",
  "-master.volumeSizeLimitMB=64",
  "-volume.max=100",
  `-volume.port=${p.volume}`,
  `-volume.port.grpc=${p.volumeGrpc}`,
  "-volume.preStopSeconds=0",
  "-filer",
  `-filer.port=${p.filer}`,
  `-filer.port.grpc=${p.filerGrpc}`,
  `-filer.localSocket=${path.join(dir, "filer.sock")}`,
  "-s3",
  `-s3.port=${p.s3}`,
  `-s3.port.grpc=${p.s3Grpc}`,
  "-s3.port.iceberg=0",
  "-s3.port.lance=0",
  "-s3.iam=false",
  "-s3.autoCreateBucket=false",
  `-s3.config=${path.join(dir, "s3.json")}`,
  `-s3.localSocket=${path.join(dir, "s3.sock")}`
]

interface Ports {
  readonly master: number
  readonly masterGrpc: number
  readonly volume: number
  readonly volumeGrpc: number
  readonly filer: number
  readonly filerGrpc: number
  readonly s3: number
  readonly s3Grpc: number
}

const makeClient = (url: string, accessKey: string, secretKey: string) =>
  new S3Client({
    endpoint: url,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    maxAttempts: 1
  })

const errorText = (e: unknown) =>
  e instanceof S3ServiceException ? `${e.name}: ${e.message}` : e instanceof Error ? e.message : String(e)

/** Starts one server; a port taken in the meantime by someone else is retried with new ports. */
export const startS3Server = async (options: S3ServerOptions = {}): Promise<S3ServerHandle> => {
  const bin = weedBinary()
  const accessKey = options.accessKey ?? randomKey(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
  const secretKey = options.secretKey ??
    randomKey(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
  const timeoutMs = options.startTimeoutMs ?? 60_000
  for (let attempt = 1;; attempt++) {
    try {
      return await startOnce(bin, accessKey, secretKey, timeoutMs, options.bindIp ?? "127.0.0.1", options.parentDir)
    } catch (e) {
      if (attempt < 3 && e instanceof PortTaken) continue
      throw e
    }
  }
}

class PortTaken extends Error {}

const startOnce = async (
  bin: string,
  accessKey: string,
  secretKey: string,
  timeoutMs: number,
  ip: string,
  parentDir: string | undefined
): Promise<S3ServerHandle> => {
  const dir = fs.mkdtempSync(path.join(parentDir ?? os.tmpdir(), "flotilla-s3-"))
  const logFile = path.join(dir, "weed.log")
  fs.mkdirSync(path.join(dir, "data"))
  fs.writeFileSync(
    path.join(dir, "s3.json"),
    JSON.stringify({
      identities: [{
        name: "flotilla-test",
        credentials: [{ accessKey, secretKey }],
        actions: ["Admin", "Read", "List", "Tagging", "Write"]
      }]
    }),
    { mode: 0o600 }
  )
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = await freePorts(ip, 8)
  const ports: Ports = { master: master!, masterGrpc: masterGrpc!, volume: volume!, volumeGrpc: volumeGrpc!, filer: filer!, filerGrpc: filerGrpc!, s3: s3!, s3Grpc: s3Grpc! }
  const log = fs.openSync(logFile, "a")
  const argv = weedArgs(dir, ip, ports)
  fs.writeSync(log, `$ ${bin} ${argv.join(" ")}\n`)
  // Its own process group, so that stop() kills whatever it forks; HOME and
  // the working directory are the temp dir, so that no master.toml,
  // security.toml or filer.toml of the developer's is read.
  const child = spawn(bin, argv, { cwd: dir, env: { ...process.env, HOME: dir }, detached: true, stdio: ["ignore", log, log] })
  fs.closeSync(log)
  const onExit = () => killGroup(child)
  process.on("exit", onExit)
  let exited: string | undefined
  const gone = new Promise<void>((done) => {
    child.once("exit", (code, signal) => {
      exited = signal ? `signal ${signal}` : `exit code ${code}`
      done()
    })
    child.once("error", (err) => {
      exited = err.message
      done()
    })
  })
  const url = `http://${ip}:${ports.s3}`
  const logTail = (lines = 40) => tail(logFile, lines)
  const stop = async () => {
    process.off("exit", onExit)
    killGroup(child)
    await Promise.race([gone, sleep(10_000)])
    fs.rmSync(dir, { recursive: true, force: true })
    // weed puts its gRPC unix sockets at fixed paths in /tmp (no flag moves
    // them) and a killed weed leaves them behind.
    for (const [name, port] of [["master", ports.masterGrpc], ["volume", ports.volumeGrpc], ["filer", ports.filerGrpc], ["s3", ports.s3Grpc]] as const) {
      fs.rmSync(`/tmp/seaweedfs-${name}-grpc-${port}.sock`, { force: true })
    }
  }
  const client = (credentials?: { readonly accessKey: string; readonly secretKey: string }) =>
    makeClient(url, credentials?.accessKey ?? accessKey, credentials?.secretKey ?? secretKey)

  // Serving means: an object can be written. An authenticated ListBuckets
  // answers after about 2 s, but the first write then still waits (about 8 s)
  // until the filer has registered with the master and the lock ring is set:
  // SeaweedFS's fixed start-up delays, with no flag to shorten them. A probe
  // bucket takes that wait here, once, and is removed again.
  const probe = client()
  const probeBucket = "flotilla-s3-ready-probe"
  const started = Date.now()
  let last = "no answer yet"
  let stage: "list" | "bucket" | "put" = "list"
  try {
    for (;;) {
      if (exited !== undefined) {
        const text = logTail()
        if (/address already in use/i.test(text)) throw new PortTaken(text)
        throw new S3ServerError({ message: `SeaweedFS (${bin}) ended before it served S3 (${exited}); log ${logFile}:\n${text}` })
      }
      const left = timeoutMs - (Date.now() - started)
      if (left <= 0) {
        throw new S3ServerError({
          message: `SeaweedFS did not serve S3 on ${url} within ${timeoutMs} ms (waiting for: ${stage}; last: ${last}); log ${logFile}:\n${logTail()}`
        })
      }
      const abortSignal = AbortSignal.timeout(Math.min(left, stage === "put" ? 20_000 : 2_000))
      try {
        if (stage === "list") {
          await probe.send(new ListBucketsCommand({}), { abortSignal })
          stage = "bucket"
        }
        if (stage === "bucket") {
          await probe.send(new CreateBucketCommand({ Bucket: probeBucket }), { abortSignal }).catch((e: unknown) => {
            if (!(e instanceof S3ServiceException && e.name === "BucketAlreadyOwnedByYou")) throw e
          })
          stage = "put"
        }
        await probe.send(new PutObjectCommand({ Bucket: probeBucket, Key: "ready", Body: "ready" }), { abortSignal })
        await probe.send(new DeleteObjectCommand({ Bucket: probeBucket, Key: "ready" }), { abortSignal })
        await probe.send(new DeleteBucketCommand({ Bucket: probeBucket }), { abortSignal })
        break
      } catch (e) {
        last = errorText(e)
        await sleep(100)
      }
    }
  } catch (e) {
    await stop()
    throw e
  } finally {
    probe.destroy()
  }

  const createBucket = async (name: string) => {
    const c = client()
    try {
      await c.send(new CreateBucketCommand({ Bucket: name }))
    } catch (e) {
      throw new S3ServerError({ message: `cannot create bucket ${name} on ${url}: ${errorText(e)}` })
    } finally {
      c.destroy()
    }
  }
  return { endpoint: `${ip}:${ports.s3}`, url, region, accessKey, secretKey, dir, logFile, client, logTail, createBucket, stop }
}

const toError = (e: unknown) => e instanceof S3ServerError ? e : new S3ServerError({ message: errorText(e) })

/**
 * A SeaweedFS S3 server for the enclosing scope. When the scope closes on a
 * failure, the tail of the server's log is printed before it is removed.
 */
export const s3Server = (options: S3ServerOptions = {}): Effect.Effect<S3Server, S3ServerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => startS3Server(options), catch: toError }),
    (server, exit) =>
      Effect.promise(async () => {
        if (Exit.isFailure(exit)) {
          console.error(`--- SeaweedFS log (${server.logFile}), last lines ---\n${server.logTail(60)}\n---`)
        }
        await server.stop()
      })
  ).pipe(Effect.map(({ createBucket, stop: _stop, ...server }): S3Server => ({
    ...server,
    createBucket: (name) => Effect.tryPromise({ try: () => createBucket(name), catch: toError })
  })))

/** One server shared by the tests of a `layer(TestS3.layer)` block. */
export class TestS3 extends Context.Service<TestS3, S3Server>()("flotilla/test/TestS3") {
  static readonly layer = Layer.effect(TestS3, s3Server())
}
