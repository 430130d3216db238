/**
 * An artifact store (get, put, delete, exists by location) and its S3
 * implementation on `@aws-sdk/client-s3`, as argoexec's S3 driver behaves:
 * path-style addressing, the endpoint from the location (`insecure` → http),
 * credentials given by the caller (read from the pod's mounted secrets), a
 * key that names no object but a "directory" of objects loaded as a
 * directory, a local directory saved object by object, and the bucket made
 * first when `createBucketIfNotPresent` says so.
 *
 * Every call is bounded in time, so a dead or black-holed endpoint fails
 * the pod instead of hanging it: each HTTP attempt by the SDK's connection
 * timeout and socket idle timeout (real timers; the SDK's `requestTimeout`
 * alone only logs a warning, and an idle socket with no `socketTimeout` is
 * waited on for ever). Calls without a body (list, stat, delete, create
 * bucket, in-memory get/put), their attempts and retries together, are also
 * bounded by an `Effect.timeout` on the Effect clock. Transfers of
 * artifacts (`download`, `upload`, `uploadDirectory`) stream between the
 * host's disk and S3, never holding an object whole: they are bounded by
 * idle time only (no byte for `idleTimeoutMs`), so a large artifact on a
 * slow link goes through, and by `maxObjectBytes` on download; the pod's
 * active deadline bounds them as a whole (artifactPod.ts). Every failure is
 * one `ArtifactStoreError` whose `reason` says what S3 answered.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand
} from "@aws-sdk/client-s3"
import { Duration, Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as http from "node:http"
import * as https from "node:https"
import type { LookupFunction } from "node:net"
import * as path from "node:path"
import type { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { byteCap, idleCap } from "./archive.js"

export const ArtifactStoreReason = Schema.Literals([
  "NotFound",
  "BucketNotFound",
  "AccessDenied",
  "Timeout",
  "Unavailable",
  "Unknown"
])
export type ArtifactStoreReason = typeof ArtifactStoreReason.Type

export class ArtifactStoreError extends Schema.TaggedError<ArtifactStoreError>()("ArtifactStoreError", {
  reason: ArtifactStoreReason,
  /** What was being done: "get", "put", "delete", "list", "create bucket". */
  verb: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `failed to ${this.verb}: ${this.detail}`
  }
}

export interface S3Target {
  /** host:port, or a URL with its scheme. */
  readonly endpoint: string
  readonly bucket: string
  readonly key: string
  readonly region?: string | undefined
  readonly insecure?: boolean | undefined
  readonly accessKey?: string | undefined
  readonly secretKey?: string | undefined
  readonly sessionToken?: string | undefined
  readonly createBucketIfNotPresent?: boolean | undefined
  /**
   * The name lookup its connections use (egress.ts: one refusing addresses
   * the pod may not reach); the system's when undefined.
   */
  readonly lookup?: LookupFunction | undefined
}

/** What a key holds: one object, or the objects under `<key>/` (relative names). */
export type Loaded =
  | { readonly _tag: "File"; readonly data: Uint8Array }
  | { readonly _tag: "Directory"; readonly files: ReadonlyArray<{ readonly rel: string; readonly data: Uint8Array }> }

/** What `download` wrote: one file at the destination, or a folder of the objects under `<key>/`. */
export type Downloaded = "File" | "Directory"

/** A host file to upload, under `<key>/<rel>` for a directory. */
export interface LocalFile {
  readonly rel: string
  readonly file: string
}

export interface ArtifactStore {
  /**
   * Streams the object (or the "directory" of objects under `<key>/`) to the
   * host path `dest`, never holding it whole; fails when a body is larger
   * than the store's maximum object size.
   */
  readonly download: (target: S3Target, dest: string) => Effect.Effect<Downloaded, ArtifactStoreError>
  /** Streams the host file `file` to the key (multipart when large). */
  readonly upload: (target: S3Target, file: string) => Effect.Effect<void, ArtifactStoreError>
  /** Each host file at `<key>/<rel>`, streamed. */
  readonly uploadDirectory: (target: S3Target, files: ReadonlyArray<LocalFile>) => Effect.Effect<void, ArtifactStoreError>
  /** In-memory get (small objects: tests, tools); pods' artifacts use `download`. */
  readonly get: (target: S3Target) => Effect.Effect<Loaded, ArtifactStoreError>
  readonly put: (target: S3Target, data: Uint8Array) => Effect.Effect<void, ArtifactStoreError>
  /** Each file at `<key>/<rel>`. */
  readonly putDirectory: (target: S3Target, files: ReadonlyArray<{ readonly rel: string; readonly data: Uint8Array }>) => Effect.Effect<void, ArtifactStoreError>
  /** A key ending in `/` deletes every object under it, as upstream's Delete. */
  readonly delete: (target: S3Target) => Effect.Effect<void, ArtifactStoreError>
  readonly exists: (target: S3Target) => Effect.Effect<boolean, ArtifactStoreError>
  /**
   * The keys of the objects under the key taken as a folder (`<key>/`; the
   * whole bucket for an empty key), in S3's order, without folder markers
   * (keys ending in `/`): what argoexec's `ListObjects` lists for a data
   * template. None is no error here (a key naming one object has none).
   */
  readonly list: (target: S3Target) => Effect.Effect<ReadonlyArray<string>, ArtifactStoreError>
}

export interface S3StoreOptions {
  /**
   * Bound on each store call (every request it makes, retries included), on
   * the Effect clock. Default 5 minutes: a large artifact still uploads, and
   * a silent endpoint is cut by `idleTimeoutMs` long before.
   */
  readonly callTimeout?: Duration.Input | undefined
  /** Bound on connecting to the endpoint, per attempt (real time). Default 10 s. */
  readonly connectTimeoutMs?: number | undefined
  /**
   * Bound on a connected request's socket staying silent (nothing sent or
   * received), per attempt (real time): the SDK's `socketTimeout`. Default 30 s (SeaweedFS is silent for ~9 s on the first write into a new bucket while it grows a volume).
   */
  readonly idleTimeoutMs?: number | undefined
  /** Bound on one object's size when downloading (bytes). Default 10 GiB. */
  readonly maxObjectBytes?: number | undefined
  /** Objects larger than this are uploaded in parts (multipart). Default 64 MiB. */
  readonly multipartThreshold?: number | undefined
  /**
   * Bound on the keys one listing may hold: a data template's `list`, a "directory" key's download
   * or get (held in memory; a huge public bucket would otherwise fill the node agent's). Default 100,000.
   */
  readonly maxListedKeys?: number | undefined
}

/** Default bound on the keys one listing may hold. */
export const defaultMaxListedKeys = 100_000

/** The failure of a listing past its bound. */
export const tooManyKeys = (verb: string, t: S3Target, max: number): ArtifactStoreError =>
  new ArtifactStoreError({
    reason: "Unknown",
    verb,
    detail: `more than ${max} keys under "${t.key}" (bucket "${t.bucket}"): the limit of keys one listing may hold`
  })

/** Default bound on a downloaded object: 10 GiB. */
export const defaultMaxObjectBytes = 10 * 1024 ** 3

/** S3's limits: at most 10,000 parts, each at least 5 MiB. */
const partSizeFor = (size: number) => Math.max(16 * 1024 * 1024, Math.ceil(size / 10_000))

/**
 * Streams `body` to the host file `dest`: failing (`tooLarge`) past
 * `maxBytes`, and (`idle`) when no byte came for `idleMs`.
 */
export const bodyToFile = (body: Readable | NodeJS.ReadableStream, dest: string, maxBytes: number, idleMs: number, tooLarge: () => Error, idle: () => Error) =>
  fsp.mkdir(path.dirname(dest), { recursive: true }).then(() =>
    pipeline(body, idleCap(idleMs, idle), byteCap(maxBytes, tooLarge), fs.createWriteStream(dest, { mode: 0o644 }))
  )

const endpointUrl = (t: S3Target): string =>
  /^[a-z]+:\/\//i.test(t.endpoint) ? t.endpoint : `${t.insecure === true ? "http" : "https"}://${t.endpoint}`

interface SdkError {
  readonly name?: string
  readonly Code?: string
  readonly message?: string
  readonly code?: string
  readonly $metadata?: { readonly httpStatusCode?: number }
}

const classify = (verb: string, t: S3Target, e: unknown): ArtifactStoreError => {
  if (e instanceof ArtifactStoreError) return e
  const err = (e ?? {}) as SdkError
  const code = err.Code ?? err.name ?? err.code ?? "Error"
  const status = err.$metadata?.httpStatusCode
  const reason: ArtifactStoreReason = code === "NoSuchKey" || code === "NotFound"
    ? "NotFound"
    : code === "NoSuchBucket"
    ? "BucketNotFound"
    : ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden"].includes(code) || status === 403
    ? "AccessDenied"
    : code === "TimeoutError" || code === "AbortError" || code === "ETIMEDOUT" || code === "RequestTimeout"
    ? "Timeout"
    : ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"].includes(code) || (status !== undefined && status >= 500)
    ? "Unavailable"
    : "Unknown"
  // The egress lookup's refusal (httpPolicy.guardedLookup: code EADDRBLOCKED, which the SDK may drop on the way up).
  const cause = (e as { cause?: { code?: string; message?: string } } | undefined)?.cause
  if (code === "EADDRBLOCKED" || cause?.code === "EADDRBLOCKED" || /\bresolves to \S+: \S+ is an? .*address/.test(err.message ?? "")) {
    const m = (cause?.code === "EADDRBLOCKED" ? cause.message : err.message) ?? ""
    return new ArtifactStoreError({
      reason: "AccessDenied",
      verb,
      detail: `endpoint ${endpointUrl(t)} not allowed: ${m.replace(/ \(configmap [^)]*\)$/, "")} (bucket "${t.bucket}", key "${t.key}")`
    })
  }
  const text = err.message !== undefined && err.message !== "" && err.message !== code ? `${code}: ${err.message}` : code
  return new ArtifactStoreError({ reason, verb, detail: `${text} (bucket "${t.bucket}", key "${t.key}", endpoint ${endpointUrl(t)})` })
}

const cleanPrefix = (key: string): string => key === "" ? "" : `${key.replace(/\/+$/, "")}/`

/** The S3 store; a client per target and call, so credentials never leak between pods. */
export const makeS3Store = (options: S3StoreOptions = {}): ArtifactStore => {
  const callTimeout = options.callTimeout ?? Duration.minutes(5)
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000
  const maxObjectBytes = options.maxObjectBytes ?? defaultMaxObjectBytes
  const multipartThreshold = options.multipartThreshold ?? 64 * 1024 * 1024
  const maxListedKeys = options.maxListedKeys ?? defaultMaxListedKeys

  const clientFor = (t: S3Target, maxAttempts = 3) =>
    new S3Client({
      endpoint: endpointUrl(t),
      region: t.region !== undefined && t.region !== "" ? t.region : "us-east-1",
      forcePathStyle: true,
      maxAttempts,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // requestTimeout is left out: without throwOnRequestTimeout it only warns, and a whole-request bound
      // is the Effect timeout's; socketTimeout is what cuts an endpoint that accepts and never answers.
      requestHandler: {
        connectionTimeout: connectTimeoutMs,
        socketTimeout: idleTimeoutMs,
        ...(t.lookup !== undefined
          ? { httpAgent: new http.Agent({ keepAlive: true, lookup: t.lookup }), httpsAgent: new https.Agent({ keepAlive: true, lookup: t.lookup }) }
          : {})
      },
      credentials: {
        accessKeyId: t.accessKey ?? "",
        secretAccessKey: t.secretKey ?? "",
        ...(t.sessionToken !== undefined && t.sessionToken !== "" ? { sessionToken: t.sessionToken } : {})
      }
    })

  /** One bounded call with a fresh client, destroyed afterwards. */
  const call = <A>(verb: string, t: S3Target, f: (client: S3Client, signal: AbortSignal) => Promise<A>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => clientFor(t)),
      (client) =>
        Effect.tryPromise({ try: (signal) => f(client, signal), catch: (e) => classify(verb, t, e) }).pipe(
          Effect.timeoutOrElse({
            duration: callTimeout,
            orElse: () =>
              Effect.fail(new ArtifactStoreError({
                reason: "Timeout",
                verb,
                detail: `no answer within ${Duration.format(Duration.fromInputUnsafe(callTimeout))} (bucket "${t.bucket}", key "${t.key}", endpoint ${endpointUrl(t)})`
              }))
          })
        ),
      (client) => Effect.sync(() => client.destroy())
    )

  /**
   * A transfer with a fresh client: bounded by idle time (the SDK's socket
   * timeout, and the body's watchdog), not by a total, so a large artifact
   * on a slow link still goes through while a silent one is cut.
   */
  const transfer = <A>(verb: string, t: S3Target, f: (client: S3Client, signal: AbortSignal) => Promise<A>) =>
    Effect.acquireUseRelease(
      // One attempt per request: a stream body cannot be replayed by the SDK; `withRetries` retries with a fresh stream.
      Effect.sync(() => clientFor(t, 1)),
      (client) => Effect.tryPromise({ try: (signal) => f(client, signal), catch: (e) => classify(verb, t, e) }),
      (client) => Effect.sync(() => client.destroy())
    )

  const tooLarge = (t: S3Target, key: string) => () =>
    new ArtifactStoreError({
      reason: "Unknown",
      verb: "get file",
      detail: `object larger than the limit of ${maxObjectBytes} bytes (bucket "${t.bucket}", key "${key}", endpoint ${endpointUrl(t)})`
    })
  const idleError = () => Object.assign(new Error(`no data for ${idleTimeoutMs} ms`), { name: "TimeoutError" })

  const downloadObject = (t: S3Target, key: string, dest: string) =>
    transfer("get file", { ...t, key }, (c, abortSignal) => withRetries(async () => {
      const res = await c.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }), { abortSignal })
      if (res.ContentLength !== undefined && res.ContentLength > maxObjectBytes) {
        ;(res.Body as Readable | undefined)?.destroy?.()
        throw tooLarge(t, key)()
      }
      if (res.Body === undefined) return await fsp.writeFile(dest, new Uint8Array(0))
      await bodyToFile(res.Body as Readable, dest, maxObjectBytes, idleTimeoutMs, tooLarge(t, key), idleError)
    }, abortSignal))

  /** Up to 3 attempts of a request whose body is a fresh stream each time (the SDK's own retries would resend a consumed one). */
  const withRetries = async <A>(send: () => Promise<A>, signal: AbortSignal): Promise<A> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send()
      } catch (e) {
        const err = (e ?? {}) as SdkError
        const status = err.$metadata?.httpStatusCode
        const transient = status === undefined || status >= 500 || status === 429 ||
          ["ECONNRESET", "EPIPE", "ETIMEDOUT", "TimeoutError", "RequestTimeout", "SlowDown"].includes(err.code ?? err.name ?? "")
        const refused = err.code === "EADDRBLOCKED" || (e as { cause?: { code?: string } }).cause?.code === "EADDRBLOCKED"
        if (attempt >= 3 || signal.aborted || !transient || refused || e instanceof ArtifactStoreError) throw e
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt))
      }
    }
  }

  const uploadObject = (t: S3Target, key: string, file: string) =>
    transfer("put file", { ...t, key }, async (c, abortSignal) => {
      const size = (await fsp.stat(file)).size
      if (size <= multipartThreshold) {
        await withRetries(() => c.send(new PutObjectCommand({ Bucket: t.bucket, Key: key, Body: fs.createReadStream(file), ContentLength: size }), { abortSignal }), abortSignal)
        return
      }
      const created = await withRetries(() => c.send(new CreateMultipartUploadCommand({ Bucket: t.bucket, Key: key }), { abortSignal }), abortSignal)
      const uploadId = created.UploadId
      try {
        const partSize = partSizeFor(size)
        const parts: Array<{ ETag: string | undefined; PartNumber: number }> = []
        for (let n = 1, start = 0; start < size; n++, start += partSize) {
          const length = Math.min(partSize, size - start)
          const res = await withRetries(() => c.send(
            new UploadPartCommand({
              Bucket: t.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: n,
              ContentLength: length,
              Body: fs.createReadStream(file, { start, end: start + length - 1 })
            }),
            { abortSignal }
          ), abortSignal)
          parts.push({ ETag: res.ETag, PartNumber: n })
        }
        await withRetries(
          () => c.send(new CompleteMultipartUploadCommand({ Bucket: t.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal }),
          abortSignal
        )
      } catch (e) {
        await c.send(new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: key, UploadId: uploadId })).catch(() => undefined)
        throw e
      }
    })

  const download = (t: S3Target, dest: string): Effect.Effect<Downloaded, ArtifactStoreError> =>
    downloadObject(t, t.key, dest).pipe(
      Effect.as<Downloaded>("File"),
      Effect.catchIf(
        (e) => e.reason === "NotFound",
        (notFound) =>
          Effect.gen(function*() {
            // As upstream: a key that is no object may be a "directory" of objects.
            const prefix = cleanPrefix(t.key)
            const keys = yield* listKeys(t, prefix, undefined, maxListedKeys)
            if (keys.length === 0) return yield* Effect.fail(notFound)
            const root = path.resolve(dest)
            yield* Effect.promise(() => fsp.mkdir(root, { recursive: true }))
            for (const key of keys) {
              if (key.endsWith("/")) continue
              const target = path.join(root, path.normalize(key.slice(prefix.length)))
              if (!target.startsWith(root + path.sep)) {
                return yield* Effect.fail(new ArtifactStoreError({ reason: "Unknown", verb: "get file", detail: `illegal file path: ${key} (bucket "${t.bucket}")` }))
              }
              yield* downloadObject(t, key, target)
            }
            return "Directory" as const
          })
      )
    )

  const getObject = (t: S3Target, key: string) =>
    call("get file", { ...t, key }, async (c, abortSignal) => {
      const res = await c.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }), { abortSignal })
      return res.Body === undefined ? new Uint8Array(0) : await res.Body.transformToByteArray()
    })

  /** The keys under `prefix`: at most `limit` of them; more than `cap` fails (`tooManyKeys`) as soon as they are seen. */
  const listKeys = (t: S3Target, prefix: string, limit?: number, cap?: number) =>
    call("list", t, async (c, abortSignal) => {
      const keys: Array<string> = []
      let token: string | undefined
      do {
        const res = await c.send(
          new ListObjectsV2Command({ Bucket: t.bucket, Prefix: prefix, ContinuationToken: token, ...(limit !== undefined ? { MaxKeys: limit } : {}) }),
          { abortSignal }
        )
        for (const o of res.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key)
        if (cap !== undefined && keys.length > cap) throw tooManyKeys("list", t, cap)
        token = res.IsTruncated === true && (limit === undefined || keys.length < limit) ? res.NextContinuationToken : undefined
      } while (token !== undefined)
      return keys
    })

  const putObject = (t: S3Target, key: string, data: Uint8Array) =>
    call("put file", { ...t, key }, (c, abortSignal) =>
      c.send(new PutObjectCommand({ Bucket: t.bucket, Key: key, Body: data, ContentLength: data.length }), { abortSignal }).then(() => undefined))

  const ensureBucket = (t: S3Target) =>
    t.createBucketIfNotPresent !== true
      ? Effect.void
      : call("create bucket", t, (c, abortSignal) =>
        c.send(new CreateBucketCommand({ Bucket: t.bucket }), { abortSignal }).then(() => undefined).catch((e: SdkError) => {
          if (e.name === "BucketAlreadyOwnedByYou" || e.name === "BucketAlreadyExists" || e.Code === "BucketAlreadyOwnedByYou") return undefined
          throw e
        }))

  const get = (t: S3Target): Effect.Effect<Loaded, ArtifactStoreError> =>
    getObject(t, t.key).pipe(
      Effect.map((data): Loaded => ({ _tag: "File", data })),
      Effect.catchIf(
        (e) => e.reason === "NotFound",
        (notFound) =>
          Effect.gen(function*() {
            // As upstream: a key that is no object may be a "directory" of objects.
            const prefix = cleanPrefix(t.key)
            const keys = yield* listKeys(t, prefix, undefined, maxListedKeys)
            if (keys.length === 0) return yield* Effect.fail(notFound)
            const files: Array<{ rel: string; data: Uint8Array }> = []
            for (const key of keys) {
              if (key.endsWith("/")) continue
              files.push({ rel: key.slice(prefix.length), data: yield* getObject(t, key) })
            }
            return { _tag: "Directory", files } satisfies Loaded
          })
      )
    )

  return {
    download,
    upload: (t, file) => ensureBucket(t).pipe(Effect.andThen(uploadObject(t, t.key, file))),
    uploadDirectory: (t, files) =>
      ensureBucket(t).pipe(
        Effect.andThen(Effect.forEach(files, (f) => uploadObject(t, `${t.key.replace(/\/+$/, "")}/${f.rel}`, f.file), { discard: true }))
      ),
    get,
    put: (t, data) => ensureBucket(t).pipe(Effect.andThen(putObject(t, t.key, data))),
    putDirectory: (t, files) =>
      ensureBucket(t).pipe(
        Effect.andThen(Effect.forEach(files, (f) => putObject(t, `${t.key.replace(/\/+$/, "")}/${f.rel}`, f.data), { discard: true }))
      ),
    delete: (t) =>
      t.key.endsWith("/")
        ? listKeys(t, t.key).pipe(
          Effect.flatMap((keys) =>
            Effect.forEach(keys, (key) =>
              call("delete", { ...t, key }, (c, abortSignal) =>
                c.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: key }), { abortSignal }).then(() => undefined)), { discard: true })
          )
        )
        : call("delete", t, (c, abortSignal) => c.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: t.key }), { abortSignal }).then(() => undefined)),
    exists: (t) =>
      call("stat", t, (c, abortSignal) => c.send(new HeadObjectCommand({ Bucket: t.bucket, Key: t.key }), { abortSignal }).then(() => true)).pipe(
        Effect.catchIf((e) => e.reason === "NotFound", () =>
          listKeys(t, cleanPrefix(t.key), 1).pipe(Effect.map((keys) => keys.length > 0)))
      ),
    list: (t) => listKeys(t, cleanPrefix(t.key), undefined, maxListedKeys).pipe(Effect.map((keys) => keys.filter((k) => !k.endsWith("/"))))
  }
}
