/**
 * `flotilla run`'s artifact repository when none is configured: a local
 * directory (kubelet/artifacts/DirectoryStore.ts), so that artifact examples
 * run out of the box on a machine with no S3 server. The controller configmap
 * still names an S3 repository, as an operator's would: its endpoint
 * (`localEndpoint`) says that it is this machine's directory, and the
 * kubelets' store serves that endpoint from it (any other endpoint, one a
 * workflow names itself, still goes to S3).
 *
 * Objects are files: `<dir>/<bucket>/<key>`, where `<dir>` is
 * $FLOTILLA_ARTIFACT_DIR, else `${XDG_CACHE_HOME:-~/.cache}/flotilla/artifacts`.
 * They stay after the run (argo's artifacts outlive their workflow too);
 * `describe` says where each of a run's artifacts went, archived logs
 * (`archiveLogs`: `<workflow>/<pod>/main.log`, reported as `main-logs`)
 * among them.
 */
import { Config } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { KubeObject } from "../kube/api/Resources.js"
import { makeDirectoryStore } from "../kubelet/artifacts/DirectoryStore.js"
import { makeS3Store } from "../kubelet/artifacts/S3Store.js"
import { statusNodes } from "../workflow/model/compressedNodes.js"
import type { ArtifactRepositoryOptions } from "./EmbeddedRuntime.js"

/** The repository endpoint that stands for the local directory (no host has this name). */
export const localEndpoint = "local-directory.flotilla.invalid"
export const localBucket = "flotilla"

/** The directory: $FLOTILLA_ARTIFACT_DIR, else `${XDG_CACHE_HOME:-~/.cache}/flotilla/artifacts`. */
export const artifactDirConfig: Config.Config<string> = Config.all({
  dir: Config.String("FLOTILLA_ARTIFACT_DIR").pipe(Config.withDefault("")),
  cache: Config.String("XDG_CACHE_HOME").pipe(Config.withDefault(""))
}).pipe(Config.map(({ cache, dir }) =>
  dir !== "" ? path.resolve(dir) : path.join(cache !== "" ? cache : path.join(os.homedir(), ".cache"), "flotilla", "artifacts")
))

export interface LocalArtifacts {
  readonly dir: string
  readonly repository: ArtifactRepositoryOptions
}

/** The local directory's repository (its bucket folder made), for `Embedded.start`'s `artifactRepository`. */
export const repository = (dir: string): LocalArtifacts => {
  fs.mkdirSync(path.join(dir, localBucket), { recursive: true })
  return {
    dir,
    repository: {
      endpoint: localEndpoint,
      bucket: localBucket,
      insecure: true,
      // The Secret exists as an operator's would; the directory checks no keys.
      accessKey: "local",
      secretKey: "local",
      store: makeDirectoryStore({ root: dir, endpoint: localEndpoint, fallback: makeS3Store() })
    }
  }
}

type Json = Record<string, unknown>

/** Where one artifact is: its file for the local directory, else `s3://bucket/key` at its endpoint. */
const locationOf = (artifact: Json, local: LocalArtifacts): string | undefined => {
  const s3 = artifact["s3"] as Json | undefined
  if (s3 === undefined || typeof s3["key"] !== "string") return undefined
  const endpoint = typeof s3["endpoint"] === "string" && s3["endpoint"] !== "" ? s3["endpoint"] : local.repository.endpoint
  const bucket = typeof s3["bucket"] === "string" && s3["bucket"] !== "" ? s3["bucket"] : local.repository.bucket
  const key = s3["key"]
  return endpoint === localEndpoint ? path.join(local.dir, bucket, key) : `s3://${bucket}/${key} (endpoint ${endpoint})`
}

/**
 * The lines saying where the workflows' output artifacts (and archived logs,
 * `main-logs`) went (`Artifacts:`,
 * then `  <workflow> <node> <artifact>: <file or s3 URL>`); undefined when
 * none was saved.
 */
export const describe = (workflows: ReadonlyArray<KubeObject>, local: LocalArtifacts): string | undefined => {
  const lines: Array<string> = []
  const seen = new Set<string>()
  for (const wf of workflows) {
    for (const node of Object.values(statusNodes(wf["status"]))) {
      const artifacts = ((node as { outputs?: { artifacts?: unknown } }).outputs?.artifacts ?? []) as ReadonlyArray<Json>
      if (!Array.isArray(artifacts)) continue
      for (const artifact of artifacts) {
        const where = locationOf(artifact, local)
        if (where === undefined || seen.has(where)) continue
        seen.add(where)
        lines.push(`  ${wf.metadata.name}  ${String((node as { displayName?: unknown }).displayName ?? (node as { name?: unknown }).name)}  ${String(artifact["name"])}: ${where}`)
      }
    }
  }
  return lines.length === 0 ? undefined : [`Artifacts (repository: the directory ${path.join(local.dir, local.repository.bucket)}):`, ...lines].join("\n")
}
