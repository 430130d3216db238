/**
 * An artifact repository as upstream configures one (`ArtifactRepository`,
 * pkg/apis/workflow/v1alpha1/artifact_repository_types.go): the controller
 * configmap's `artifactRepository` key and the values of an
 * `artifact-repositories` ConfigMap (`spec.artifactRepositoryRef`) share this
 * parser, so both report a malformed field by its path. S3 is the only kind
 * flotilla's runtimes move (the embedded driver and argoexec on real nodes);
 * the other kinds are refused at their field rather than passed on to an
 * executor that may not have them.
 *
 * Pure: no I/O. It also turns a repository into the `archiveLocation` a pod's
 * template carries (upstream's `ToArtifactLocation`, keyFormat not yet
 * substituted).
 */
import { isRecord } from "../../util/records.js"

export interface SecretKeySelector {
  readonly name: string
  readonly key: string
  readonly optional?: boolean
}

/** `S3ArtifactRepository`: an `S3Bucket` (inline) plus `keyFormat` / `keyPrefix`. */
export interface S3Repository {
  readonly bucket: string
  readonly endpoint?: string
  readonly region?: string
  readonly insecure?: boolean
  readonly accessKeySecret?: SecretKeySelector
  readonly secretKeySecret?: SecretKeySelector
  readonly sessionTokenSecret?: SecretKeySelector
  readonly caSecret?: SecretKeySelector
  readonly roleARN?: string
  readonly useSDKCreds?: boolean
  readonly createBucketIfNotPresent?: { readonly objectLocking?: boolean }
  readonly encryptionOptions?: Readonly<Record<string, unknown>>
  readonly keyFormat?: string
  readonly keyPrefix?: string
}

export interface ArtifactRepository {
  readonly archiveLogs?: boolean
  readonly s3?: S3Repository
}

/** `ArtifactRepositoryRefStatus` as upstream stores it in `status.artifactRepositoryRef`. */
export interface ArtifactRepositoryRefStatus {
  readonly configMap?: string
  readonly key?: string
  readonly namespace?: string
  readonly default?: boolean
  readonly artifactRepository?: ArtifactRepository
}

export interface RepositoryProblem {
  /** Dotted path from the value's root, with the caller's prefix: `artifactRepository.s3.bucket`. */
  readonly path: string
  readonly detail: string
}

/** Upstream's default key layout (`DefaultArchivePattern`). */
export const defaultArchivePattern = "{{workflow.name}}/{{pod.name}}"

/** The kinds upstream knows and flotilla does not move. */
const otherKinds = ["artifactory", "hdfs", "oss", "gcs", "azure", "plugin"] as const

const s3Strings = ["bucket", "endpoint", "region", "roleARN", "keyFormat", "keyPrefix"] as const
const s3Booleans = ["insecure", "useSDKCreds"] as const
const s3Secrets = ["accessKeySecret", "secretKeySecret", "sessionTokenSecret", "caSecret"] as const
const s3Known = new Set<string>([...s3Strings, ...s3Booleans, ...s3Secrets, "createBucketIfNotPresent", "encryptionOptions"])

/** A `SecretKeySelector` (`{name, key}`), or the problems with it. */
export const parseSecretKeySelector = (value: unknown, path: string, problems: Array<RepositoryProblem>): SecretKeySelector | undefined => {
  if (!isRecord(value)) {
    problems.push({ path, detail: "must be a secret key selector {name, key}" })
    return undefined
  }
  const name = value["name"]
  const key = value["key"]
  let ok = true
  if (typeof name !== "string" || name === "") {
    problems.push({ path: `${path}.name`, detail: "must be a non-empty string (the Secret's name)" })
    ok = false
  }
  if (typeof key !== "string" || key === "") {
    problems.push({ path: `${path}.key`, detail: "must be a non-empty string (the key in the Secret)" })
    ok = false
  }
  if (!ok) return undefined
  return { name: name as string, key: key as string, ...(value["optional"] === true ? { optional: true } : {}) }
}

const parseS3 = (value: unknown, path: string, problems: Array<RepositoryProblem>): S3Repository | undefined => {
  if (!isRecord(value)) {
    problems.push({ path, detail: "must be a mapping (bucket, endpoint, region, insecure, keyFormat, accessKeySecret, secretKeySecret...)" })
    return undefined
  }
  const before = problems.length
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    if (!s3Known.has(key)) problems.push({ path: `${path}.${key}`, detail: "unknown field" })
  }
  for (const key of s3Strings) {
    const v = value[key]
    if (v === undefined || v === null) continue
    if (typeof v !== "string") problems.push({ path: `${path}.${key}`, detail: `must be a string, got ${JSON.stringify(v)}` })
    else if (v !== "") out[key] = v
  }
  if (out["bucket"] === undefined) problems.push({ path: `${path}.bucket`, detail: "is required" })
  for (const key of s3Booleans) {
    const v = value[key]
    if (v === undefined || v === null) continue
    if (typeof v !== "boolean") problems.push({ path: `${path}.${key}`, detail: `must be true or false, got ${JSON.stringify(v)}` })
    else out[key] = v
  }
  for (const key of s3Secrets) {
    const v = value[key]
    if (v === undefined || v === null) continue
    const s = parseSecretKeySelector(v, `${path}.${key}`, problems)
    if (s !== undefined) out[key] = s
  }
  const create = value["createBucketIfNotPresent"]
  if (create !== undefined && create !== null) {
    if (!isRecord(create)) problems.push({ path: `${path}.createBucketIfNotPresent`, detail: "must be a mapping ({objectLocking: bool})" })
    else if (create["objectLocking"] !== undefined && typeof create["objectLocking"] !== "boolean") {
      problems.push({ path: `${path}.createBucketIfNotPresent.objectLocking`, detail: "must be true or false" })
    } else out["createBucketIfNotPresent"] = create["objectLocking"] === undefined ? {} : { objectLocking: create["objectLocking"] }
  }
  const enc = value["encryptionOptions"]
  if (enc !== undefined && enc !== null) {
    if (!isRecord(enc)) problems.push({ path: `${path}.encryptionOptions`, detail: "must be a mapping" })
    else out["encryptionOptions"] = enc
  }
  return problems.length > before ? undefined : out as unknown as S3Repository
}

/**
 * An `ArtifactRepository` value (already parsed from YAML): the repository, or every problem
 * with it, each at its path under `root` (`artifactRepository`, or a ConfigMap key).
 */
export const parseArtifactRepository = (
  value: unknown,
  root: string
): { readonly repository?: ArtifactRepository; readonly problems: ReadonlyArray<RepositoryProblem> } => {
  const problems: Array<RepositoryProblem> = []
  if (value === undefined || value === null) return { problems }
  if (!isRecord(value)) {
    problems.push({ path: root, detail: "must be a mapping (archiveLogs, s3)" })
    return { problems }
  }
  const out: { archiveLogs?: boolean; s3?: S3Repository } = {}
  for (const key of Object.keys(value)) {
    if ((otherKinds as ReadonlyArray<string>).includes(key)) {
      if (value[key] !== undefined && value[key] !== null) {
        problems.push({ path: `${root}.${key}`, detail: `${key} artifact repositories are not supported (only s3)` })
      }
    } else if (key !== "archiveLogs" && key !== "s3") problems.push({ path: `${root}.${key}`, detail: "unknown field" })
  }
  const archiveLogs = value["archiveLogs"]
  if (archiveLogs !== undefined && archiveLogs !== null) {
    if (typeof archiveLogs !== "boolean") problems.push({ path: `${root}.archiveLogs`, detail: `must be true or false, got ${JSON.stringify(archiveLogs)}` })
    else out.archiveLogs = archiveLogs
  }
  if (value["s3"] !== undefined && value["s3"] !== null) {
    const s3 = parseS3(value["s3"], `${root}.s3`, problems)
    if (s3 !== undefined) out.s3 = s3
  }
  return problems.length > 0 ? { problems } : { repository: out, problems }
}

/** The problems as one message: `a.b: detail; c: detail`. */
export const problemsMessage = (problems: ReadonlyArray<RepositoryProblem>): string => problems.map((p) => `${p.path}: ${p.detail}`).join("; ")

/**
 * Upstream's `ToArtifactLocation`: where a template's artifacts without a location of their own
 * go, the key still the repository's `keyFormat` (or `keyPrefix` + the default layout) with its
 * `{{...}}` unsubstituted. Undefined for a repository of no kind (nothing configured).
 */
export const archiveLocationOf = (repository: ArtifactRepository | undefined): Record<string, unknown> | undefined => {
  const s3 = repository?.s3
  if (s3 === undefined) return undefined
  const { keyFormat, keyPrefix, ...bucket } = s3
  const key = keyFormat !== undefined && keyFormat !== "" ? keyFormat : joinKey(keyPrefix ?? "", defaultArchivePattern)
  return { s3: { ...bucket, key } }
}

/** Go's `path.Join` for keys: empty parts dropped, one slash between. */
export const joinKey = (...parts: ReadonlyArray<string>): string =>
  parts.flatMap((p) => p.split("/")).filter((p) => p !== "" && p !== ".").join("/")
