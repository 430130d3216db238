/**
 * A data template's pod on the local kubelet: its main container is Argo's executor running
 * `argoexec data <data>` (engine/pod.ts lays it out as upstream's executeData), which the kubelet
 * does itself as upstream's workflow/executor/data.go and workflow/data/data.go do: the source
 * artifact (`data.source.artifactPaths`, its connection relocated onto the template's archive
 * location when it is not complete, its own bucket and key listed, as upstream's) listed (the
 * keys of the objects under its key, as the S3 driver's `ListObjects`), each `transformation` expression applied in turn to `data` (expr-lang, with
 * only `data` in its environment; the expressions are the template's, the keys are data), and
 * the result reported as the node's `outputs.result` (JSON) in its task result.
 *
 * Credentials come only from the pod's mounted secrets (read with the kubelet's identity, in the
 * pod's namespace, as for any secret volume), and the S3 calls go only where the pod's egress
 * allows. A failure fails the pod with argoexec's message, as main's termination message.
 */
import { Clock, Effect } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { isoSeconds } from "../util/time.js"
import { toExpressionError } from "../workflow/expressions/errors.js"
import { evaluateRaw } from "../workflow/expressions/evaluate.js"
import { defaultExpressionLimits } from "../workflow/expressions/limits.js"
import { fromScopeValue, goJson } from "../workflow/expressions/values.js"
import type { ArtifactEgress } from "./artifacts/egress.js"
import { guardedS3, s3Target } from "./artifacts/executor.js"
import { type Artifact, type ArtifactLocation, hasLocation, locationKind } from "./artifacts/location.js"
import type { ArtifactStore } from "./artifacts/S3Store.js"
import { mountSecretVolumes } from "./artifacts/secretVolumes.js"
import { mainContainer, podTemplate } from "./PodPlan.js"
import type { makeStatusReporter } from "./podStatus.js"

/** The fields of the pod's template (`ARGO_TEMPLATE`) the data executor reads. */
export interface DataTemplate {
  readonly data: {
    readonly source?: { readonly artifactPaths?: Artifact | undefined } | undefined
    readonly transformation?: ReadonlyArray<{ readonly expression?: string | undefined }> | undefined
  }
  readonly archiveLocation?: ArtifactLocation | undefined
}

/**
 * The pod's data template, when the pod is a data template's: its template has `data` AND its
 * main container runs `argoexec data` (behind the emissary). A user's container merely carrying
 * such a template runs as any other container.
 */
export const dataTemplateOf = (pod: KubeObject): DataTemplate | undefined => {
  const template = podTemplate(pod) as { data?: unknown } | undefined
  if (template === undefined || template.data === null || typeof template.data !== "object") return undefined
  const command = (mainContainer(pod) as { command?: ReadonlyArray<string> } | undefined)?.command ?? []
  const at = command.indexOf("argoexec")
  return at >= 0 && command[at + 1] === "data" ? template as DataTemplate : undefined
}

export interface DataPodDeps {
  /** The kubelet's own client: only to read the pod's secret volumes. */
  readonly client: KubeClientShape
  readonly store: ArtifactStore
  /** Where the listing may go (egress.ts). */
  readonly egress: ArtifactEgress
  readonly reporter: ReturnType<typeof makeStatusReporter>
  readonly storeLogs: (pod: KubeObject, text: string) => Effect.Effect<void>
}

/**
 * `Relocate` as the executor does it for the source (`newDriverArt`): a location that is not
 * complete takes the archive location's, keeping its own key, which may be empty (the whole bucket).
 */
const relocateSource = (a: Artifact, archive: ArtifactLocation | undefined): Artifact | string => {
  if (hasLocation(a)) return a
  if (archive === undefined) return "template artifact location not set"
  if (archive.s3 === undefined) return `artifact '${a.name}' needs an s3 archive location, the template's has ${locationKind(archive) ?? "none"}`
  return { ...a, s3: { ...archive.s3, key: a.s3?.key ?? "" } }
}

/** `ProcessArtifactPaths`: the keys under the source's key; none, and no object at the key, is argoexec's "no key found". */
const listSource = (deps: DataPodDeps, pod: KubeObject, template: DataTemplate): Effect.Effect<ReadonlyArray<string>, string> =>
  Effect.gen(function*() {
    const source = template.data.source?.artifactPaths
    if (source === undefined || source === null) return yield* Effect.fail("unable to process data source: no valid source is used for data template")
    const failed = (why: string) => `unable to process data source: unable to source artifact paths: ${why}`
    const kind = locationKind(source)
    if (kind !== undefined && kind !== "s3") return yield* Effect.fail(failed(`listing ${kind} artifacts is not supported by flotilla's kubelet (only s3)`))
    const located = relocateSource(source, template.archiveLocation)
    if (typeof located === "string") return yield* Effect.fail(failed(located))
    const secrets = yield* mountSecretVolumes(deps.client, pod).pipe(Effect.mapError((e) => failed(e.message)))
    const unchecked = s3Target(located, secrets)
    if (typeof unchecked === "string") return yield* Effect.fail(failed(unchecked))
    const driver = guardedS3(unchecked, deps.egress)
    if (typeof driver === "string") return yield* Effect.fail(failed(driver))
    // As upstream's ProcessArtifactPaths: the driver is made from the relocated artifact (its
    // endpoint, region and credentials), but ListObjects is given the source as written, so the
    // bucket and key listed are the source's own (its bucket may differ from the repository's).
    // A source naming no bucket lists the relocated one (upstream would fail on an empty name).
    const ownBucket = source.s3?.bucket
    const target = { ...driver, bucket: ownBucket !== undefined && ownBucket !== "" ? ownBucket : driver.bucket, key: source.s3?.key ?? "" }
    const keys = yield* deps.store.list(target).pipe(Effect.mapError((e) => failed(`failed to list directory: ${e.message}`)))
    if (keys.length > 0) return keys
    const exists = yield* deps.store.exists(target).pipe(
      Effect.mapError((e) => failed(`failed to check if key ${target.key} exists from bucket ${target.bucket}: ${e.message}`))
    )
    return exists ? keys : yield* Effect.fail(failed(`no key found of name ${target.key}`))
  })

/**
 * `processTransformation`: each step's expression with `data` the previous value; the result as
 * Go's `json.Marshal` writes it. Only `data` is in the expressions' environment, as upstream's.
 */
export const transform = (files: ReadonlyArray<string>, steps: DataTemplate["data"]["transformation"]): string | { readonly error: string } => {
  let data: unknown = fromScopeValue([...files])
  for (const [i, step] of (steps ?? []).entries()) {
    const expression = step.expression ?? ""
    if (expression === "") continue
    try {
      data = evaluateRaw(expression, { data }, defaultExpressionLimits)
    } catch (e) {
      return { error: `unable to process data transformation: error processing data step ${i}: ${toExpressionError(expression, e).message}` }
    }
  }
  try {
    return goJson(data)
  } catch (e) {
    return { error: `unable to process data transformation: ${toExpressionError("", e, "result").message}` }
  }
}

/** Runs the data pod `pod` (already marked Running at `startedAt`) until done or `deadline` passes. */
export const runDataPod = (deps: DataPodDeps, pod: KubeObject, template: DataTemplate, startedAt: string, deadline: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const work: Effect.Effect<{ readonly result: string } | { readonly error: string }> = listSource(deps, pod, template).pipe(
      Effect.map((files) => {
        const out = transform(files, template.data.transformation)
        return typeof out === "string" ? { result: out } : out
      }),
      Effect.catch((error: string) => Effect.succeed({ error }))
    )
    const raced = yield* Effect.raceFirst(work, deadline.pipe(Effect.as("deadline" as const)))
    const finishedAt = isoSeconds(yield* Clock.currentTimeMillis)
    if (raced === "deadline") {
      yield* deps.storeLogs(pod, "")
      return yield* deps.reporter.markFinished(pod, startedAt, finishedAt, { exitCode: 137, stdout: "", log: "", files: {}, deadlineExceeded: true }, undefined)
    }
    const error = "error" in raced ? `unable to process data template: ${raced.error}` : undefined
    yield* deps.storeLogs(pod, error !== undefined ? `${error}\n` : "")
    // As argoexec: the result is reported only when the data was processed.
    if ("result" in raced) yield* deps.reporter.writeTaskResult(pod, { result: raced.result, exitCode: "0" })
    return yield* deps.reporter.finishExecutorPod(pod, startedAt, finishedAt, error)
  })
