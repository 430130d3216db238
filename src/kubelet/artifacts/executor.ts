/**
 * What argoexec does for artifacts, done by the local kubelet for a pod it
 * runs: `loadArtifacts` (the init container: each input artifact fetched
 * from its repository into a staging directory on the host, unpacked when it
 * is a tarball or `archive.tar` says so, `mode` applied; the kubelet then
 * shows it to main at the artifact's path, as upstream's `input-artifacts`
 * volume with subPath <name>) and `SaveArtifacts` (the wait container: each
 * output artifact, as the pod left it and the kubelet copied it out, packed
 * as tar+gzip unless `archive.none`, uploaded to its key, and reported with
 * its location in the task result), and `SaveLogs` (with `archiveLogs`, the
 * wait container also uploads each main container's log, from a file, as
 * artifact `<container>-logs` at `<archive key>/<container>.log`).
 *
 * Artifacts are streamed between the repository and the host's disk and
 * never held whole in memory: an input goes to a file (its http body or
 * S3 object capped by `maxHttpBytes` / the store's maximum), is sniffed as a
 * tarball from its first bytes, and is unpacked by a streaming reader capped
 * at `maxDecompressedBytes`; an output is packed by a streaming tar writer
 * and gzip into a scratch file and uploaded from it. Transfers are bounded
 * by idle time, the whole of the pod's artifact work by its deadline
 * (artifactPod.ts). Of http `auth`, `basicAuth` is sent (from the pod's
 * mounted secrets); the other kinds fail the input, never go unauthenticated.
 * http redirects are followed by hand (each hop passes the egress check) and
 * as Go's client follows them (301, 302, 303, 307, 308; at most 10): the
 * given headers go to every hop, except the credential ones (Authorization,
 * Cookie, Proxy-Authorization, ...), dropped for good once a hop leaves the
 * first host and its subdomains.
 *
 * Messages follow argoexec's (`artifact <name> failed to load: ...`,
 * `required artifact '<name>' not supplied`) and name the repository (bucket,
 * endpoint, key, or URL) and the cause. Credentials come only from the pod's
 * mounted secrets (secretVolumes.ts), never from the kubelet's environment.
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Duration, Effect } from "effect"
import * as http from "node:http"
import * as https from "node:https"
import type { LookupFunction } from "node:net"
import { type ArtifactEgress, blockedMessage, checkS3Endpoint, checkUrl } from "./egress.js"
import { ArchiveError, chmodTree, defaultMaxDecompressedBytes, filesUnder, isTarGzFile, tarGzToFile, untarGzFile } from "./archive.js"
import {
  type Artifact,
  type ArtifactLocation,
  cleanPath,
  describeRepository,
  hasLocationOrKey,
  locationKind,
  outputArchive,
  placeLog,
  placeOutput,
  relocate
} from "./location.js"
import { type ArtifactStore, type ArtifactStoreError, bodyToFile, defaultMaxObjectBytes, type Downloaded, type S3Target } from "./S3Store.js"
import { readSecret, type SecretFiles } from "./secretVolumes.js"

/** The template fields the executor reads (`ARGO_TEMPLATE`). */
export interface ArtifactTemplate {
  readonly inputs?: { readonly artifacts?: ReadonlyArray<Artifact> | undefined } | undefined
  readonly outputs?: { readonly artifacts?: ReadonlyArray<Artifact> | undefined } | undefined
  readonly archiveLocation?: ArtifactLocation | undefined
}

export interface ArtifactDeps {
  readonly store: ArtifactStore
  readonly secrets: SecretFiles
  /** Where http inputs and S3 calls may go (egress.ts). */
  readonly egress: ArtifactEgress
  /** Bound on an http download staying silent: no answer, or no body byte, for this long fails it (not a total). */
  readonly httpTimeout: Duration.Duration
  /** Bound on an http body (bytes). Default 10 GiB. */
  readonly maxHttpBytes?: number | undefined
  /** Bound on an input's decompressed size when it is unpacked (bytes). Default 10 GiB. */
  readonly maxDecompressedBytes?: number | undefined
  /** Where outputs are packed before upload; default the system's temp folder. */
  readonly scratchDir?: string | undefined
}

/** An input loaded on the host: `hostPath` is shown to main at `podPath`. */
export interface StagedInput {
  readonly name: string
  readonly podPath: string
  readonly hostPath: string
}

/** An input fetched to the host path it was asked to go to (a file, or a folder of a "directory" key's objects). */
type Fetched = { readonly _tag: "Fetched"; readonly kind: Downloaded } | { readonly _tag: "NotFound"; readonly message: string }

const inputArtifacts = (t: ArtifactTemplate) => t.inputs?.artifacts ?? []
const outputArtifacts = (t: ArtifactTemplate) => t.outputs?.artifacts ?? []

export const hasArtifacts = (t: ArtifactTemplate | undefined): boolean =>
  t !== undefined && (inputArtifacts(t).length > 0 || outputArtifacts(t).length > 0)

/** The S3 target of an artifact located in s3, its credentials read from the mounted secrets. */
export const s3Target = (a: Artifact, secrets: SecretFiles): S3Target | string => {
  const s3 = a.s3!
  let accessKey: string | undefined
  let secretKey: string | undefined
  let sessionToken: string | undefined
  if (s3.accessKeySecret?.name !== undefined && s3.accessKeySecret.name !== "") {
    const access = readSecret(secrets, s3.accessKeySecret.name, s3.accessKeySecret.key ?? "")
    if (typeof access !== "string") return access.error
    const secret = readSecret(secrets, s3.secretKeySecret?.name ?? "", s3.secretKeySecret?.key ?? "")
    if (typeof secret !== "string") return secret.error
    accessKey = access
    secretKey = secret
    if (s3.sessionTokenSecret?.name !== undefined && s3.sessionTokenSecret.name !== "") {
      const token = readSecret(secrets, s3.sessionTokenSecret.name, s3.sessionTokenSecret.key ?? "")
      if (typeof token !== "string") return token.error
      sessionToken = token
    }
  }
  return {
    endpoint: s3.endpoint ?? "",
    bucket: s3.bucket ?? "",
    key: s3.key ?? "",
    region: s3.region,
    insecure: s3.insecure,
    accessKey,
    secretKey,
    sessionToken,
    createBucketIfNotPresent: s3.createBucketIfNotPresent !== undefined
  }
}

const maxRedirects = 10

/** One GET through the egress check's lookup, its body streamed to `dest`; redirects are the caller's. */
const getOnce = (
  url: URL,
  headers: HeaderValues,
  lookup: LookupFunction | undefined,
  signal: AbortSignal,
  dest: string,
  limits: { readonly maxBytes: number; readonly idleMs: number }
) =>
  new Promise<{ status: number; statusText: string; location: string | undefined }>((resolve, reject) => {
    const mod = url.protocol === "https:" ? https : http
    const req = mod.request(url, { method: "GET", headers, signal, ...(lookup !== undefined ? { lookup, agent: false } : {}) }, (res) => {
      const status = res.statusCode ?? 0
      const statusText = res.statusMessage ?? ""
      const location = typeof res.headers.location === "string" ? res.headers.location : undefined
      if (status < 200 || status >= 300) {
        res.resume()
        return resolve({ status, statusText, location })
      }
      const length = Number(res.headers["content-length"])
      const tooLarge = () => new Error(`the body is larger than the limit of ${limits.maxBytes} bytes`)
      if (Number.isFinite(length) && length > limits.maxBytes) {
        res.destroy()
        return reject(tooLarge())
      }
      bodyToFile(res, dest, limits.maxBytes, limits.idleMs, tooLarge, () => new Error(`no data for ${limits.idleMs} ms`))
        .then(() => resolve({ status, statusText, location }), reject)
    })
    // No answer (headers) for the idle bound: cut.
    req.setTimeout(limits.idleMs, () => req.destroy(new Error(`no answer within ${limits.idleMs} ms`)))
    req.on("error", reject)
    req.end()
  })

/** Request headers, by name as sent; a name given more than once is sent once per value (Go's `Header.Add`). */
type HeaderValues = Record<string, Array<string>>

/**
 * What Go's net/http client (client.go `makeHeadersCopier`) drops on a
 * redirect to a host that is neither the first request's nor a subdomain of
 * it; every other header is sent again on every hop.
 */
const sensitiveHeaders: ReadonlySet<string> = new Set([
  "authorization",
  "www-authenticate",
  "cookie",
  "cookie2",
  "proxy-authorization",
  "proxy-authenticate"
])

/**
 * Go's `isDomainOrSubdomain`, on WHATWG hostnames (lower case, IDNA ASCII,
 * no port; IPv6 in brackets): `sub` is `parent` or ends in "." + `parent`;
 * an IPv6 address (or zone) matches only itself.
 */
export const isDomainOrSubdomain = (sub: string, parent: string): boolean =>
  sub === parent || (!/[:%]/.test(sub) && sub.endsWith(`.${parent}`))

/**
 * The headers of the request to `dest`, a redirect hop from a chain that
 * began at `initial`, as Go's client sends them: all of the first request's,
 * less the credential ones once any hop has gone to a host that is not
 * `initial`'s or a subdomain of it (ports are not compared). Dropping is
 * sticky: a later hop back to the first host does not get them again
 * (Go 1.23.5+, CVE-2024-45336). Returns whether they are now dropped.
 */
export const redirectHeaders = (
  headers: HeaderValues,
  initial: URL,
  dest: URL,
  alreadyStripped: boolean
): { readonly headers: HeaderValues; readonly stripped: boolean } => {
  const stripped = alreadyStripped || !isDomainOrSubdomain(dest.hostname, initial.hostname)
  return {
    headers: stripped ? Object.fromEntries(Object.entries(headers).filter(([name]) => !sensitiveHeaders.has(name.toLowerCase()))) : headers,
    stripped
  }
}

/** The statuses Go's client follows (`redirectBehavior`); any other 3xx is the answer. */
const redirectStatuses: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

/** Headers Go's client never sends from `Header` (Request.Write: the request's own Host and framing are written instead). */
const notSentFromHeaders: ReadonlySet<string> = new Set(["host", "content-length", "transfer-encoding", "trailer"])

/**
 * An http artifact's request headers as argoexec builds them: each of
 * `headers:` added (names case-insensitive, values kept in order; Host and
 * the framing headers left out, as Go's client leaves them out), then
 * `auth`'s `Authorization` set over any given one.
 */
const requestHeaders = (given: ReadonlyArray<{ readonly name?: string | undefined; readonly value?: string | undefined }>, auth: Record<string, string>): HeaderValues => {
  const byName = new Map<string, { name: string; values: Array<string> }>()
  const add = (name: string, value: string, replace: boolean) => {
    const entry = byName.get(name.toLowerCase())
    if (entry === undefined || replace) byName.set(name.toLowerCase(), { name, values: [value] })
    else entry.values.push(value)
  }
  for (const h of given) {
    if (h.name !== undefined && h.name !== "" && !notSentFromHeaders.has(h.name.toLowerCase())) add(h.name, h.value ?? "", false)
  }
  for (const [name, value] of Object.entries(auth)) add(name, value, true)
  return Object.fromEntries([...byName.values()].map((e) => [e.name, e.values]))
}

/** The `Authorization` header of an http artifact's `auth`, from the pod's mounted secrets; unsupported kinds fail clearly. */
const httpAuthHeader = (a: Artifact, secrets: SecretFiles): Record<string, string> | string => {
  const auth = a.http?.auth as Record<string, unknown> | undefined
  if (auth === undefined || auth === null) return {}
  const kinds = Object.keys(auth).filter((k) => auth[k] !== undefined && auth[k] !== null)
  if (kinds.length === 0) return {}
  const unsupported = kinds.filter((k) => k !== "basicAuth")
  if (unsupported.length > 0) return `http.auth.${unsupported[0]} is not supported by flotilla's kubelet (http.auth.basicAuth is)`
  const basic = auth.basicAuth as { usernameSecret?: { name?: string; key?: string }; passwordSecret?: { name?: string; key?: string } }
  const read = (sel: { name?: string; key?: string } | undefined) =>
    sel?.name !== undefined && sel.name !== "" ? readSecret(secrets, sel.name, sel.key ?? "") : ""
  const user = read(basic.usernameSecret)
  if (typeof user !== "string") return user.error
  const password = read(basic.passwordSecret)
  if (typeof password !== "string") return password.error
  // As argoexec's http driver: SetBasicAuth only when both a username and a password are there.
  if (user === "" || password === "") return {}
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` }
}

const httpGet = (a: Artifact, deps: ArtifactDeps, dest: string): Effect.Effect<Fetched, string> =>
  Effect.gen(function*() {
    const url = a.http?.url ?? ""
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return yield* Effect.fail(`invalid URL ${JSON.stringify(url)}`)
    }
    const auth = httpAuthHeader(a, deps.secrets)
    if (typeof auth === "string") return yield* Effect.fail(auth)
    const headers = requestHeaders(a.http?.headers ?? [], auth)
    const limits = { maxBytes: deps.maxHttpBytes ?? defaultMaxObjectBytes, idleMs: Duration.toMillis(deps.httpTimeout) }
    return yield* Effect.tryPromise({
      try: async (signal) => {
        let current = parsed
        let stripped = false
        // Redirects by hand, each hop checked as the first: a public URL may not send the kubelet to a forbidden one.
        // Headers go along as Go's client sends them: credentials only to the first host and its subdomains.
        for (let hop = 0; ; hop++) {
          if (current.protocol !== "http:" && current.protocol !== "https:") throw new Error(`unsupported URL scheme ${current.protocol}`)
          const decision = checkUrl(current, deps.egress)
          if (decision._tag === "Refused") throw new Error(`refused ${current.href}: ${decision.reason}`)
          const hopHeaders = redirectHeaders(headers, parsed, current, stripped)
          stripped = hopHeaders.stripped
          const res = await getOnce(current, hopHeaders.headers, decision.lookup, signal, dest, limits)
          if (redirectStatuses.has(res.status) && res.location !== undefined && res.location !== "") {
            if (hop + 1 >= maxRedirects) throw new Error(`loading content from ${url} failed: stopped after ${maxRedirects} redirects`)
            current = new URL(res.location, current)
            continue
          }
          if (res.status === 404) return { _tag: "NotFound", message: `${res.status} ${res.statusText}` } satisfies Fetched
          if (res.status < 200 || res.status >= 300) throw new Error(`loading content from ${current.href} failed with reason: ${res.status} ${res.statusText}`)
          return { _tag: "Fetched", kind: "File" } satisfies Fetched
        }
      },
      catch: (e) => blockedMessage(e) ?? (e instanceof Error ? e.message : String(e))
    })
  })

/** The S3 target with the egress check applied: refused, or with the lookup its connections must use. */
export const guardedS3 = (target: S3Target, egress: ArtifactEgress): S3Target | string => {
  const decision = checkS3Endpoint(target.endpoint, target.insecure, egress)
  if (decision._tag === "Refused") return `refused S3 endpoint ${target.endpoint}: ${decision.reason}`
  return decision.lookup !== undefined ? { ...target, lookup: decision.lookup } : target
}

/** Fetches an input from its (relocated) repository to the host path `dest`, streamed. */
const fetchInput = (a: Artifact, deps: ArtifactDeps, dest: string): Effect.Effect<Fetched, string> => {
  switch (locationKind(a)) {
    case "s3": {
      const unchecked = s3Target(a, deps.secrets)
      if (typeof unchecked === "string") return Effect.fail(unchecked)
      const target = guardedS3(unchecked, deps.egress)
      if (typeof target === "string") return Effect.fail(target)
      return deps.store.download(target, dest).pipe(
        Effect.map((kind): Fetched => ({ _tag: "Fetched", kind })),
        Effect.catchIf((e: ArtifactStoreError) => e.reason === "NotFound", (e) => Effect.succeed<Fetched>({ _tag: "NotFound", message: e.message })),
        Effect.mapError((e) => e.message)
      )
    }
    case "http":
      return httpGet(a, deps, dest)
    case "raw":
      return Effect.tryPromise({
        try: () => fsp.writeFile(dest, a.raw?.data ?? "", { mode: 0o644 }).then((): Fetched => ({ _tag: "Fetched", kind: "File" })),
        catch: (e) => (e instanceof Error ? e.message : String(e))
      })
    default:
      return Effect.fail(`${locationKind(a) ?? "unknown"} artifacts are not supported by flotilla's kubelet (s3, http and raw are)`)
  }
}

/** Puts a fetched artifact (at `tmp`) at `dest` as argoexec does: unpacked if a tarball (or `archive.tar`), as is otherwise. */
const place = async (a: Artifact, kind: Downloaded, tmp: string, dest: string, maxDecompressedBytes: number, signal: AbortSignal) => {
  await fsp.rm(dest, { recursive: true, force: true })
  const isFile = kind === "File"
  if (a.archive?.zip !== undefined) throw new ArchiveError("zip archives are not supported by flotilla's kubelet")
  const explicitTar = a.archive?.tar !== undefined
  const isTar = a.archive?.none !== undefined ? false : explicitTar ? true : isFile && (await isTarGzFile(tmp))
  if (isTar) {
    if (!isFile) throw new ArchiveError("archive.tar given, but the artifact is a directory")
    try {
      await untarGzFile(tmp, dest, { maxBytes: maxDecompressedBytes, signal })
    } finally {
      await fsp.rm(tmp, { force: true })
    }
  } else {
    await fsp.rename(tmp, dest)
  }
  if (a.mode !== undefined) chmodTree(dest, a.mode, a.recurseMode === true)
}

/**
 * `loadArtifacts`: every input artifact under `stageDir` (a fresh host
 * directory), or the message the init container would end with.
 */
export const loadInputs = (
  deps: ArtifactDeps,
  template: ArtifactTemplate,
  stageDir: string
): Effect.Effect<ReadonlyArray<StagedInput>, string> =>
  Effect.gen(function*() {
    const staged: Array<StagedInput> = []
    for (const art of inputArtifacts(template)) {
      if (!hasLocationOrKey(art)) {
        if (art.optional === true) continue
        return yield* Effect.fail(`required artifact '${art.name}' not supplied`)
      }
      const podPath = cleanPath(art)
      if (typeof podPath !== "string") return yield* Effect.fail(podPath.error)
      const located = relocate(art, template.archiveLocation)
      if (typeof located === "string") return yield* Effect.fail(`failed to load artifact '${art.name}': ${located}`)
      const failed = (cause: string) => `artifact ${art.name} failed to load from ${describeRepository(located)}: ${cause}`
      const dest = path.join(stageDir, `${staged.length}-${art.name.replace(/[^A-Za-z0-9._-]/g, "_")}`)
      const tmp = `${dest}.tmp`
      yield* Effect.promise(() => fsp.rm(tmp, { recursive: true, force: true }))
      const fetched = yield* fetchInput(located, deps, tmp).pipe(
        Effect.mapError(failed),
        Effect.onError(() => Effect.promise(() => fsp.rm(tmp, { recursive: true, force: true })))
      )
      if (fetched._tag === "NotFound") {
        yield* Effect.promise(() => fsp.rm(tmp, { recursive: true, force: true }))
        if (art.optional === true) continue
        return yield* Effect.fail(failed(fetched.message))
      }
      yield* Effect.tryPromise({
        try: (signal) => place(art, fetched.kind, tmp, dest, deps.maxDecompressedBytes ?? defaultMaxDecompressedBytes, signal),
        catch: (e) => failed(e instanceof Error ? e.message : String(e))
      }).pipe(Effect.ensuring(Effect.promise(() => fsp.rm(tmp, { recursive: true, force: true }))))
      staged.push({ name: art.name, podPath, hostPath: dest })
    }
    return staged
  })

/** The outcome of `SaveArtifacts`: what was saved (for the task result) and the aggregated error, if any. */
export interface SavedOutputs {
  readonly artifacts: ReadonlyArray<Artifact>
  readonly error?: string | undefined
}

/**
 * `SaveArtifacts`: every output artifact found (`copied(podPath)`: the host
 * copy of what the pod left there, or undefined when it left nothing) packed
 * and uploaded; missing optional ones skipped; errors joined with "; " as
 * argoexec's aggregate.
 */
export const saveOutputs = (
  deps: ArtifactDeps,
  template: ArtifactTemplate,
  copied: (podPath: string) => string | undefined
): Effect.Effect<SavedOutputs> =>
  Effect.gen(function*() {
    const saved: Array<Artifact> = []
    const errors: Array<string> = []
    for (const art of outputArtifacts(template)) {
      const podPath = cleanPath(art)
      if (typeof podPath !== "string") {
        errors.push(podPath.error)
        continue
      }
      const source = copied(podPath)
      if (source === undefined) {
        if (art.optional !== true) errors.push(`output artifact '${art.name}': ${podPath} no such file or directory`)
        continue
      }
      const placed = placeOutput(art, podPath, template.archiveLocation)
      if (typeof placed === "string") {
        errors.push(placed)
        continue
      }
      const driverArt = relocate(placed, template.archiveLocation)
      if (typeof driverArt === "string" || driverArt.s3 === undefined) {
        errors.push(`output artifact '${art.name}': ${typeof driverArt === "string" ? driverArt : "only s3 repositories are supported for outputs"}`)
        continue
      }
      const unchecked = s3Target(driverArt, deps.secrets)
      const target = typeof unchecked === "string" ? unchecked : guardedS3(unchecked, deps.egress)
      const failed = (cause: string) => `failed to save artifact '${art.name}' to ${describeRepository(driverArt)}: ${cause}`
      if (typeof target === "string") {
        errors.push(failed(target))
        continue
      }
      const archive = outputArchive(art)
      const upload = Effect.gen(function*() {
        if (archive._tag === "zip") return yield* Effect.fail("zip archives are not supported by flotilla's kubelet")
        if (archive._tag === "tar") {
          // Streamed: tar → gzip → a scratch file → the store (multipart when large); never whole in memory.
          return yield* Effect.acquireUseRelease(
            Effect.tryPromise({
              try: () => fsp.mkdtemp(path.join(deps.scratchDir ?? os.tmpdir(), "flotilla-out-")),
              catch: (e) => (e instanceof Error ? e.message : String(e))
            }),
            (dir) =>
              Effect.gen(function*() {
                const packed = path.join(dir, "artifact.tgz")
                // As TarGzToWriter: the entries are named after the path in the pod, not the host copy.
                yield* Effect.tryPromise({
                  try: (signal) => tarGzToFile(source, packed, archive.level, path.posix.basename(podPath), signal),
                  catch: (e) => (e instanceof Error ? e.message : String(e))
                })
                return yield* deps.store.upload(target, packed).pipe(Effect.mapError((e) => e.message))
              }),
            (dir) => Effect.promise(() => fsp.rm(dir, { recursive: true, force: true }))
          )
        }
        if (fs.statSync(source).isDirectory()) {
          return yield* deps.store.uploadDirectory(target, filesUnder(source)).pipe(Effect.mapError((e) => e.message))
        }
        return yield* deps.store.upload(target, source).pipe(Effect.mapError((e) => e.message))
      })
      const result = yield* Effect.result(upload)
      if (result._tag === "Failure") errors.push(failed(result.failure))
      else saved.push(placed)
    }
    return { artifacts: saved, ...(errors.length > 0 ? { error: errors.join("; ") } : {}) }
  })

/** A container's log, written to a file on the host: what argoexec's `saveLogToFile` leaves in `/tmp/argo/outputs/logs`. */
export interface ContainerLog {
  readonly container: string
  readonly file: string
}

/**
 * `SaveLogs` (with `archiveLogs`): each container's log file uploaded from
 * disk, as it is (no archive), to `<archive key>/<container>.log` in the
 * archive location's repository, and reported as argoexec reports it
 * (`<container>-logs`, key only: location.ts `placeLog`). A log that cannot
 * be saved is left out of the report and its error joined to the others, as
 * argoexec's `AddError`.
 */
export const saveLogs = (
  deps: ArtifactDeps,
  template: ArtifactTemplate,
  logs: ReadonlyArray<ContainerLog>
): Effect.Effect<SavedOutputs> =>
  Effect.gen(function*() {
    const saved: Array<Artifact> = []
    const errors: Array<string> = []
    for (const log of logs) {
      const placed = placeLog(log.container, template.archiveLocation)
      if (typeof placed === "string") {
        errors.push(placed)
        continue
      }
      const driverArt = relocate(placed, template.archiveLocation)
      if (typeof driverArt === "string" || driverArt.s3 === undefined) {
        errors.push(`logs of container '${log.container}': ${typeof driverArt === "string" ? driverArt : "only s3 repositories are supported"}`)
        continue
      }
      const unchecked = s3Target(driverArt, deps.secrets)
      const target = typeof unchecked === "string" ? unchecked : guardedS3(unchecked, deps.egress)
      const failed = (cause: string) => `failed to save the logs of container '${log.container}' to ${describeRepository(driverArt)}: ${cause}`
      if (typeof target === "string") {
        errors.push(failed(target))
        continue
      }
      const result = yield* Effect.result(deps.store.upload(target, log.file).pipe(Effect.mapError((e) => e.message)))
      if (result._tag === "Failure") errors.push(failed(result.failure))
      else saved.push(placed)
    }
    return { artifacts: saved, ...(errors.length > 0 ? { error: errors.join("; ") } : {}) }
  })
