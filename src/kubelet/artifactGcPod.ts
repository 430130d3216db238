/**
 * An artifact GC pod on the local kubelet: its main container is Argo's executor running
 * `argoexec artifact delete` (the controller's ArtifactGC.ts makes it), which the kubelet does
 * itself as upstream's cmd/argoexec/commands/artifact/delete.go does: as the pod's service account,
 * list the `WorkflowArtifactGCTask`s labelled with the pod's hash (`ARGO_ARTIFACT_POD_NAME`), delete
 * each artifact they list (relocated into its node's archive location) from its repository with the
 * credentials mounted into the pod (the Secrets of the pod's own namespace, read by the kubelet as
 * for any secret volume), and patch each task's status with one result per artifact.
 *
 * As upstream, an artifact that could not be deleted is a result with its error (the pod still
 * Succeeds: the controller turns the error into a condition); the pod Fails only when the executor
 * itself cannot work (no service-account client, the tasks not listed, a status not written).
 * It never acts with the kubelet's own identity on the API, except to read the pod's secret volumes.
 */
import { Clock, Effect, Schedule } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { isoSeconds } from "../util/time.js"
import { type Artifact, type ArtifactLocation, relocate } from "./artifacts/location.js"
import type { ArtifactEgress } from "./artifacts/egress.js"
import { guardedS3, s3Target as executorS3Target } from "./artifacts/executor.js"
import type { ArtifactStore, S3Target } from "./artifacts/S3Store.js"
import { mountSecretVolumes, type SecretFiles } from "./artifacts/secretVolumes.js"
import type { PodServiceAccountClient } from "./boundToken.js"
import { containerEnv, mainContainer } from "./PodPlan.js"
import type { makeStatusReporter } from "./podStatus.js"

const labelArtifactGCPodHash = "workflows.argoproj.io/artifact-gc-pod"

const labelComponent = "workflows.argoproj.io/component"
const annotationArtifactGCStrategy = "workflows.argoproj.io/artifact-gc-strategy"

/**
 * Whether the pod is an artifact GC pod: it carries what upstream's `createArtifactGCPod` sets on
 * one (label `workflows.argoproj.io/component=artifact-gc`, annotation
 * `workflows.argoproj.io/artifact-gc-strategy`) AND its main container runs `argoexec artifact
 * delete` (`args` starting `artifact delete`, the command being the image's argoexec entrypoint or
 * ending in `argoexec`). A user's container whose argv merely contains `artifact delete` runs as
 * any other container.
 */
export const isArtifactGcPod = (pod: KubeObject): boolean => {
  if (pod.metadata.labels?.[labelComponent] !== "artifact-gc") return false
  const strategy = pod.metadata.annotations?.[annotationArtifactGCStrategy]
  if (strategy === undefined || strategy === "") return false
  const main = mainContainer(pod) as { command?: ReadonlyArray<string>; args?: ReadonlyArray<string> } | undefined
  const command = main?.command ?? []
  const args = main?.args ?? []
  const argoexec = command.length === 0 || /(^|\/)argoexec$/.test(command[command.length - 1]!)
  return argoexec && args[0] === "artifact" && args[1] === "delete"
}

export interface ArtifactGcPodDeps {
  /** The kubelet's own client: only to read the pod's secret volumes. */
  readonly client: KubeClientShape
  readonly podClient: PodServiceAccountClient | undefined
  readonly store: ArtifactStore
  /** Where the deletes may go (egress.ts). */
  readonly egress: ArtifactEgress
  readonly reporter: ReturnType<typeof makeStatusReporter>
  readonly storeLogs: (pod: KubeObject, text: string) => Effect.Effect<void>
}

interface ArtifactResult {
  readonly name: string
  readonly success: boolean
  readonly error?: string
}

/** The s3 target of a (relocated) artifact (executor.ts's, as the upload used), its credentials from the mounted secrets. */
const s3Target = (a: Artifact, secrets: SecretFiles): S3Target | string =>
  a.s3 === undefined
    ? `artifact '${a.name}': only s3 artifacts can be deleted by flotilla's kubelet`
    : executorS3Target(a, secrets)

/** The pod with its main container seen as an executor container, whose secret volumes the kubelet mounts. */
const asExecutor = (pod: KubeObject): KubeObject => {
  const spec = (pod.spec ?? {}) as { containers?: ReadonlyArray<{ name?: string }> }
  return { ...pod, spec: { ...spec, containers: (spec.containers ?? []).map((c) => c.name === "main" ? { ...c, name: "wait" } : c) } }
}

/** Deletes what the pod's tasks list; the executor's error when it cannot work. */
const deleteListed = (deps: ArtifactGcPodDeps, api: KubeClientShape, pod: KubeObject, log: Array<string>) =>
  Effect.gen(function*() {
    const namespace = pod.metadata.namespace ?? "default"
    const hash = containerEnv(pod, mainContainer(pod))["ARGO_ARTIFACT_POD_NAME"]
    if (hash === undefined || hash === "") {
      log.push("no ARGO_ARTIFACT_POD_NAME: nothing to delete")
      return
    }
    const secrets = yield* mountSecretVolumes(deps.client, asExecutor(pod)).pipe(Effect.mapError((e) => e.message))
    const tasks = yield* api.list("workflowartifactgctasks", namespace, { labelSelector: `${labelArtifactGCPodHash}=${hash}` }).pipe(
      Effect.mapError((e) => `listing WorkflowArtifactGCTasks: ${e.message}`)
    )
    for (const task of tasks.items) {
      const byNode = (((task["spec"] ?? {}) as { artifactsByNode?: Record<string, { archiveLocation?: ArtifactLocation; artifacts?: Record<string, Artifact> }> })
        .artifactsByNode) ?? {}
      const resultsByNode: Record<string, { artifactResults: Record<string, ArtifactResult> }> = {}
      for (const [nodeId, spec] of Object.entries(byNode)) {
        const results: Record<string, ArtifactResult> = {}
        for (const [name, art] of Object.entries(spec.artifacts ?? {})) {
          const relocated = spec.archiveLocation !== undefined ? relocate({ ...art, name: art.name ?? name }, spec.archiveLocation) : art
          const unchecked = typeof relocated === "string" ? relocated : s3Target(relocated, secrets)
          const target = typeof unchecked === "string" ? unchecked : guardedS3(unchecked, deps.egress)
          const outcome: ArtifactResult = typeof target === "string"
            ? { name, success: false, error: target }
            : yield* deps.store.delete(target).pipe(
              // upstream retries a failed delete a few times (retry.DefaultRetry)
              Effect.retry({ times: 2, schedule: Schedule.spaced("200 millis"), while: (e) => e.reason === "Unavailable" || e.reason === "Timeout" }),
              Effect.match({
                onSuccess: (): ArtifactResult => ({ name, success: true }),
                onFailure: (e): ArtifactResult => ({ name, success: false, error: e.message })
              })
            )
          log.push(outcome.success ? `deleted artifact ${name} of node ${nodeId}` : `artifact ${name} of node ${nodeId}: ${outcome.error}`)
          results[name] = outcome
        }
        resultsByNode[nodeId] = { artifactResults: results }
      }
      yield* api.patch("workflowartifactgctasks", namespace, task.metadata.name!, { status: { artifactResultsByNode: resultsByNode } }, { subresource: "status" }).pipe(
        Effect.mapError((e) => `writing the status of WorkflowArtifactGCTask ${task.metadata.name}: ${e.message}`)
      )
    }
  })

/** Runs the GC pod `pod` (already marked Running at `startedAt`) until done or `deadline` passes. */
export const runArtifactGcPod = (deps: ArtifactGcPodDeps, pod: KubeObject, startedAt: string, deadline: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const namespace = pod.metadata.namespace ?? "default"
    const spec = (pod.spec ?? {}) as { serviceAccountName?: string }
    const serviceAccount = spec.serviceAccountName !== undefined && spec.serviceAccountName !== "" ? spec.serviceAccountName : "default"
    const log: Array<string> = []
    const work: Effect.Effect<string | undefined> = deps.podClient === undefined
      ? Effect.succeed(`artifact GC needs the credentials of service account "${serviceAccount}" in namespace "${namespace}", which this kubelet cannot obtain`)
      : Effect.scoped(
        deps.podClient(pod, namespace, serviceAccount).pipe(
          Effect.mapError((e) => `service account "${serviceAccount}" in namespace "${namespace}": ${e.reason}: ${e.detail}`),
          Effect.flatMap((api) => deleteListed(deps, api, pod, log)),
          Effect.match({ onSuccess: () => undefined, onFailure: (error) => error })
        )
      )
    const result = yield* Effect.raceFirst(work, deadline.pipe(Effect.as("deadline" as const)))
    const error = result === "deadline" ? "deadline exceeded" : result
    if (error !== undefined) log.push(`error: ${error}`)
    yield* deps.storeLogs(pod, log.map((l) => `${l}\n`).join(""))
    const finishedAt = isoSeconds(yield* Clock.currentTimeMillis)
    return yield* deps.reporter.finishExecutorPod(pod, startedAt, finishedAt, error)
  })
