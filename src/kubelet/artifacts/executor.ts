/**
 * What argoexec does for artifacts, done by the local kubelet for a pod it
 * runs: `loadArtifacts` (the init container: each input artifact fetched
 * from its repository into a staging directory on the host, unpacked when it
 * is a tarball or `archive.tar` says so, `mode` applied; the kubelet then
 * shows it to main at the artifact's path, as upstream's `input-artifacts`
 * volume with subPath <name>) and `SaveArtifacts` (the wait container: each
 * output artifact, as the pod left it and the kubelet copied it out, packed
 * as tar+gzip unless `archive.none`, uploaded to its key, and reported with
 * its location in the task result).
 *
 * Messages follow argoexec's (`artifact <name> failed to load: ...`,
 * `required artifact '<name>' not supplied`) and name the repository (bucket,
 * endpoint, key, or URL) and the cause. Credentials come only from the pod's
 * mounted secrets (secretVolumes.ts), never from the kubelet's environment.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect } from "effect"
import * as http from "node:http"
import * as https from "node:https"
import type { LookupFunction } from "node:net"
import { type ArtifactEgress, blockedMessage, checkS3Endpoint, checkUrl, endpointOf } from "./egress.js"
import { ArchiveError, chmodTree, filesUnder, isTarGz, tarGz, untarGz } from "./archive.js"
import {
  type Artifact,
  type ArtifactLocation,
  cleanPath,
  describeRepository,
  hasLocationOrKey,
  locationKind,
  outputArchive,
  placeOutput,
  relocate
} from "./location.js"
import type { ArtifactStore, ArtifactStoreError, Loaded, S3Target } from "./S3Store.js"
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
  /** Bound on one http download. */
  readonly httpTimeout: Duration.Duration
}

/** An input loaded on the host: `hostPath` is shown to main at `podPath`. */
export interface StagedInput {
  readonly name: string
  readonly podPath: string
  readonly hostPath: string
}

type Fetched = { readonly _tag: "Fetched"; readonly loaded: Loaded } | { readonly _tag: "NotFound"; readonly message: string }

const inputArtifacts = (t: ArtifactTemplate) => t.inputs?.artifacts ?? []
const outputArtifacts = (t: ArtifactTemplate) => t.outputs?.artifacts ?? []

export const hasArtifacts = (t: ArtifactTemplate | undefined): boolean =>
  t !== undefined && (inputArtifacts(t).length > 0 || outputArtifacts(t).length > 0)

/** The S3 target of an artifact located in s3, its credentials read from the mounted secrets. */
const s3Target = (a: Artifact, secrets: SecretFiles): S3Target | string => {
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

/** One GET through the egress check's lookup; redirects are the caller's. */
const getOnce = (url: URL, headers: Record<string, string>, lookup: LookupFunction | undefined, signal: AbortSignal) =>
  new Promise<{ status: number; statusText: string; location: string | undefined; body: Uint8Array }>((resolve, reject) => {
    const mod = url.protocol === "https:" ? https : http
    const req = mod.request(url, { method: "GET", headers, signal, ...(lookup !== undefined ? { lookup, agent: false } : {}) }, (res) => {
      const status = res.statusCode ?? 0
      const location = typeof res.headers.location === "string" ? res.headers.location : undefined
      if (status >= 300 && status < 400) {
        res.resume()
        return resolve({ status, statusText: res.statusMessage ?? "", location, body: new Uint8Array(0) })
      }
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status, statusText: res.statusMessage ?? "", location, body: new Uint8Array(Buffer.concat(chunks)) }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end()
  })

const httpGet = (a: Artifact, deps: ArtifactDeps): Effect.Effect<Fetched, string> =>
  Effect.gen(function*() {
    const url = a.http?.url ?? ""
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return yield* Effect.fail(`invalid URL ${JSON.stringify(url)}`)
    }
    const headers = Object.fromEntries((a.http?.headers ?? []).filter((h) => h.name !== undefined).map((h) => [h.name!, h.value ?? ""]))
    return yield* Effect.tryPromise({
      try: async (signal) => {
        let current = parsed
        // Redirects by hand, each hop checked as the first: a public URL may not send the kubelet to a forbidden one.
        for (let hop = 0; ; hop++) {
          if (current.protocol !== "http:" && current.protocol !== "https:") throw new Error(`unsupported URL scheme ${current.protocol}`)
          const decision = checkUrl(current, deps.egress)
          if (decision._tag === "Refused") throw new Error(`refused ${current.href}: ${decision.reason}`)
          const res = await getOnce(current, hop === 0 || endpointOf(current) === endpointOf(parsed) ? headers : {}, decision.lookup, signal)
          if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
            if (hop + 1 >= maxRedirects) throw new Error(`loading content from ${url} failed: stopped after ${maxRedirects} redirects`)
            current = new URL(res.location, current)
            continue
          }
          if (res.status === 404) return { _tag: "NotFound", message: `${res.status} ${res.statusText}` } satisfies Fetched
          if (res.status < 200 || res.status >= 300) throw new Error(`loading content from ${current.href} failed with reason: ${res.status} ${res.statusText}`)
          return { _tag: "Fetched", loaded: { _tag: "File", data: res.body } } satisfies Fetched
        }
      },
      catch: (e) => blockedMessage(e) ?? (e instanceof Error ? e.message : String(e))
    }).pipe(
      Effect.timeoutOrElse({ duration: deps.httpTimeout, orElse: () => Effect.fail(`no answer from ${url} within ${Duration.format(deps.httpTimeout)}`) })
    )
  })

/** The S3 target with the egress check applied: refused, or with the lookup its connections must use. */
export const guardedS3 = (target: S3Target, egress: ArtifactEgress): S3Target | string => {
  const decision = checkS3Endpoint(target.endpoint, target.insecure, egress)
  if (decision._tag === "Refused") return `refused S3 endpoint ${target.endpoint}: ${decision.reason}`
  return decision.lookup !== undefined ? { ...target, lookup: decision.lookup } : target
}

/** Fetches an input from its (relocated) repository. */
const fetchInput = (a: Artifact, deps: ArtifactDeps): Effect.Effect<Fetched, string> => {
  switch (locationKind(a)) {
    case "s3": {
      const unchecked = s3Target(a, deps.secrets)
      if (typeof unchecked === "string") return Effect.fail(unchecked)
      const target = guardedS3(unchecked, deps.egress)
      if (typeof target === "string") return Effect.fail(target)
      return deps.store.get(target).pipe(
        Effect.map((loaded): Fetched => ({ _tag: "Fetched", loaded })),
        Effect.catchIf((e: ArtifactStoreError) => e.reason === "NotFound", (e) => Effect.succeed<Fetched>({ _tag: "NotFound", message: e.message })),
        Effect.mapError((e) => e.message)
      )
    }
    case "http":
      return httpGet(a, deps)
    case "raw":
      return Effect.succeed({ _tag: "Fetched", loaded: { _tag: "File", data: new TextEncoder().encode(a.raw?.data ?? "") } })
    default:
      return Effect.fail(`${locationKind(a) ?? "unknown"} artifacts are not supported by flotilla's kubelet (s3, http and raw are)`)
  }
}

const writeLoaded = (loaded: Loaded, dest: string) => {
  if (loaded._tag === "File") {
    fs.writeFileSync(dest, loaded.data, { mode: 0o644 })
    return
  }
  fs.mkdirSync(dest, { recursive: true })
  const root = path.resolve(dest)
  for (const f of loaded.files) {
    const target = path.join(root, path.normalize(f.rel))
    if (!target.startsWith(root + path.sep)) throw new ArchiveError(`illegal file path: ${f.rel}`)
    fs.mkdirSync(path.dirname(target), { recursive: true })
    fs.writeFileSync(target, f.data, { mode: 0o644 })
  }
}

/** Puts a fetched artifact at `dest` as argoexec does: unpacked if a tarball (or `archive.tar`), as is otherwise. */
const place = (a: Artifact, loaded: Loaded, dest: string) => {
  const tmp = `${dest}.tmp`
  fs.rmSync(tmp, { recursive: true, force: true })
  fs.rmSync(dest, { recursive: true, force: true })
  writeLoaded(loaded, tmp)
  const isFile = fs.statSync(tmp).isFile()
  const explicitTar = a.archive?.tar !== undefined
  const isTar = a.archive?.none !== undefined ? false : explicitTar ? true : isFile && isTarGz(fs.readFileSync(tmp))
  if (a.archive?.zip !== undefined) throw new ArchiveError("zip archives are not supported by flotilla's kubelet")
  if (isTar) {
    if (!isFile) throw new ArchiveError("archive.tar given, but the artifact is a directory")
    try {
      untarGz(fs.readFileSync(tmp), dest)
    } finally {
      fs.rmSync(tmp, { force: true })
    }
  } else {
    fs.renameSync(tmp, dest)
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
      const fetched = yield* fetchInput(located, deps).pipe(Effect.mapError(failed))
      if (fetched._tag === "NotFound") {
        if (art.optional === true) continue
        return yield* Effect.fail(failed(fetched.message))
      }
      const dest = path.join(stageDir, `${staged.length}-${art.name.replace(/[^A-Za-z0-9._-]/g, "_")}`)
      yield* Effect.try({ try: () => place(art, fetched.loaded, dest), catch: (e) => failed(e instanceof Error ? e.message : String(e)) })
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
          // As TarGzToWriter: the entries are named after the path in the pod, not the host copy.
          const data = yield* Effect.try({
            try: () => tarGz(source, archive.level, path.posix.basename(podPath)),
            catch: (e) => (e instanceof Error ? e.message : String(e))
          })
          return yield* deps.store.put(target, data).pipe(Effect.mapError((e) => e.message))
        }
        if (fs.statSync(source).isDirectory()) {
          const files = filesUnder(source).map((f) => ({ rel: f.rel, data: fs.readFileSync(f.file) }))
          return yield* deps.store.putDirectory(target, files).pipe(Effect.mapError((e) => e.message))
        }
        return yield* deps.store.put(target, fs.readFileSync(source)).pipe(Effect.mapError((e) => e.message))
      })
      const result = yield* Effect.result(upload)
      if (result._tag === "Failure") errors.push(failed(result.failure))
      else saved.push(placed)
    }
    return { artifacts: saved, ...(errors.length > 0 ? { error: errors.join("; ") } : {}) }
  })
