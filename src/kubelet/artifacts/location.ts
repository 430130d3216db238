/**
 * Artifacts as the executor sees them in the pod's template (`ARGO_TEMPLATE`):
 * their locations (s3, http, raw), `Relocate` onto the template's
 * `archiveLocation` for an artifact given only by key, the key of an output
 * artifact (the archive location's key joined with the file name argoexec
 * forms: `<name>.tgz` when archived, the path's base name with
 * `archive.none`), the key of a container's archived log (`archiveLogs`:
 * `<archive key>/<container>.log`), the path check (`CleanPath`) and the
 * words that name a repository in error messages. Pure: no I/O.
 */
import * as path from "node:path"

export interface SecretKeySelector {
  readonly name?: string | undefined
  readonly key?: string | undefined
}

export interface S3Location {
  readonly endpoint?: string | undefined
  readonly bucket?: string | undefined
  readonly region?: string | undefined
  readonly insecure?: boolean | undefined
  readonly key?: string | undefined
  readonly accessKeySecret?: SecretKeySelector | undefined
  readonly secretKeySecret?: SecretKeySelector | undefined
  readonly sessionTokenSecret?: SecretKeySelector | undefined
  readonly createBucketIfNotPresent?: { readonly objectLocking?: boolean } | undefined
  readonly useSDKCreds?: boolean | undefined
  readonly [k: string]: unknown
}

export interface HttpLocation {
  readonly url?: string | undefined
  readonly headers?: ReadonlyArray<{ readonly name?: string; readonly value?: string }> | undefined
  readonly auth?: unknown
}

export interface ArchiveStrategy {
  readonly none?: object | undefined
  readonly tar?: { readonly compressionLevel?: number | undefined } | undefined
  readonly zip?: object | undefined
}

export interface Artifact {
  readonly name: string
  readonly path?: string | undefined
  readonly mode?: number | undefined
  readonly recurseMode?: boolean | undefined
  readonly optional?: boolean | undefined
  readonly archive?: ArchiveStrategy | undefined
  readonly s3?: S3Location | undefined
  readonly http?: HttpLocation | undefined
  readonly raw?: { readonly data?: string | undefined } | undefined
  readonly [k: string]: unknown
}

export interface ArtifactLocation {
  readonly s3?: S3Location | undefined
  readonly archiveLogs?: boolean | undefined
  readonly [k: string]: unknown
}

/** The location kinds argoexec has drivers for; flotilla's kubelet drives s3, http and raw. */
const otherKinds = ["git", "artifactory", "hdfs", "oss", "gcs", "azure", "plugin"] as const

export const locationKind = (a: Artifact | ArtifactLocation): string | undefined => {
  if (a.s3 !== undefined) return "s3"
  if ((a as Artifact).http !== undefined) return "http"
  if ((a as Artifact).raw !== undefined) return "raw"
  return otherKinds.find((k) => a[k] !== undefined)
}

/** `HasLocation`: the artifact says where it is without the archive location's help. */
export const hasLocation = (a: Artifact): boolean => {
  if (a.s3 !== undefined) return a.s3.endpoint !== undefined && a.s3.endpoint !== "" && a.s3.bucket !== undefined && a.s3.bucket !== "" && hasKey(a)
  if (a.http !== undefined) return a.http.url !== undefined && a.http.url !== ""
  if (a.raw !== undefined) return true
  // Another kind (git, gcs, ...) says where it is: it is supplied, and the kubelet then says it cannot load it.
  return locationKind(a) !== undefined
}

export const hasKey = (a: Artifact): boolean => a.s3?.key !== undefined && a.s3.key !== ""

/** `HasLocationOrKey`: an input that was supplied at all. */
export const hasLocationOrKey = (a: Artifact): boolean => hasLocation(a) || hasKey(a)

/** `Relocate`: an artifact given only by key takes the archive location's repository. */
export const relocate = (a: Artifact, archive: ArtifactLocation | undefined): Artifact | string => {
  if (hasLocation(a)) return a
  if (archive === undefined) return "template artifact location not set"
  if (!hasKey(a)) return `artifact '${a.name}' has no key`
  if (archive.s3 === undefined) return `key-only artifact '${a.name}' needs an s3 archive location, the template's has ${locationKind(archive) ?? "none"}`
  return { ...a, s3: { ...archive.s3, key: a.s3!.key } }
}

/** `CleanPath`: the path, cleaned, or why it is refused. */
export const cleanPath = (a: Artifact): string | { readonly error: string } => {
  const p = a.path ?? ""
  if (p === "") return { error: `Artifact '${a.name}' did not specify a path` }
  let safeDir = ""
  const i = p.indexOf("/../")
  if (i !== -1) safeDir = p.slice(0, i)
  else if (p.endsWith("/..")) safeDir = p.slice(0, -3)
  const cleaned = path.posix.normalize(p).replace(/(.)\/$/, "$1")
  const withSlash = `${safeDir}/`
  if (safeDir !== "" && (!cleaned.startsWith(withSlash) || cleaned.length <= withSlash.length)) {
    return { error: `Artifact '${a.name}' attempted to use a path containing '..'. Directory traversal is not permitted` }
  }
  return cleaned
}

export type OutputArchive = { readonly _tag: "tar"; readonly level: number } | { readonly _tag: "none" } | { readonly _tag: "zip" }

/** The archive strategy of an output artifact: tar (gzip's default level) unless it says otherwise. */
export const outputArchive = (a: Artifact): OutputArchive => {
  if (a.archive?.none !== undefined) return { _tag: "none" }
  if (a.archive?.zip !== undefined) return { _tag: "zip" }
  const level = a.archive?.tar?.compressionLevel
  return { _tag: "tar", level: level ?? -1 }
}

/** The file name argoexec adds to the archive location's key: `<name>.tgz`, or the path's base name with `archive.none`. */
export const outputFileName = (a: Artifact, cleanedPath: string): string =>
  outputArchive(a)._tag === "none" ? path.posix.basename(cleanedPath) : outputArchive(a)._tag === "zip" ? `${a.name}.zip` : `${a.name}.tgz`

/**
 * The output artifact as reported in the task result: one with its own key
 * as it is; otherwise only the key `<archive key>/<file name>`, as
 * upstream's `SetType` (an empty S3Artifact) + `SetKey` leave it: readers
 * (`relocate`, the GC's archive location) put it back on their own archive
 * location, so no endpoint, bucket or secret names go into the status.
 */
export const placeOutput = (a: Artifact, cleanedPath: string, archive: ArtifactLocation | undefined): Artifact | string => {
  if (hasKey(a)) return a
  if (archive === undefined) return "template artifact location not set"
  if (archive.s3 === undefined) return `output artifact '${a.name}': the archive location has no s3 repository (${locationKind(archive) ?? "none"})`
  const baseKey = archive.s3.key ?? ""
  const key = path.posix.join(baseKey, outputFileName(a, cleanedPath))
  return { ...a, s3: { key } }
}

/** `SaveLogsAsArtifact` (`ArchiveLocation.IsArchiveLogs`): the pod's template says to save its containers' logs. */
export const isArchiveLogs = (archive: ArtifactLocation | undefined): boolean => archive?.archiveLogs === true

/**
 * The log of a container as argoexec's `saveContainerLogs` reports it:
 * artifact `<container>-logs`, key `<archive key>/<container>.log` (no path,
 * no archive strategy: `SetType` leaves an empty S3 artifact and `SetKey`
 * gives it the key), or why it cannot be placed.
 */
export const placeLog = (container: string, archive: ArtifactLocation | undefined): Artifact | string => {
  const name = `${container}-logs`
  if (archive === undefined) return "template artifact location not set"
  if (archive.s3 === undefined) return `logs of container '${container}': the archive location has no s3 repository (${locationKind(archive) ?? "none"})`
  return { name, s3: { key: path.posix.join(archive.s3.key ?? "", `${container}.log`) } }
}

/** How an error message names a repository: `s3 bucket "b" at endpoint "e"`, a URL, or "raw". */
export const describeRepository = (a: Artifact): string => {
  if (a.s3 !== undefined) {
    return `s3 bucket "${a.s3.bucket ?? ""}" at ${a.s3.endpoint ?? "(no endpoint)"}${a.s3.key !== undefined ? `, key "${a.s3.key}"` : ""}`
  }
  if (a.http !== undefined) return `http ${a.http.url ?? "(no url)"}`
  if (a.raw !== undefined) return "raw data"
  return locationKind(a) ?? "no repository"
}
