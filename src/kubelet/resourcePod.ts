/**
 * A resource template's pod on the local kubelet: its main container is
 * Argo's executor running `argoexec resource <action>` (engine/pod.ts), which
 * the kubelet does itself (resourceAction.ts) with the credentials of the
 * pod's service account in the pod's cluster, as the real executor would with
 * its projected token, then reports as a real kubelet and argoexec do: the
 * task result with the output parameters, and the pod Succeeded, or Failed
 * with the executor's message as main's termination message (exit code 64,
 * argoexec's for an error).
 *
 * With `manifestFrom` the pod's init work comes first, as upstream's init
 * container: its secret volumes mounted and its input artifacts loaded
 * (artifacts/executor.ts) into a staging directory; the manifest is then the
 * named artifact's file (argoexec's `kubectl -f <artifact path>`). A load
 * that fails fails the pod as a failed init container does.
 *
 * It never acts with the kubelet's own identity: without a service-account
 * client the pod fails, saying so. On a real cluster the client holds a token
 * bound to the pod, got through the TokenRequest API (boundToken.ts); a token
 * the API server refuses to issue fails the pod with the server's message.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Duration, Effect } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { parseDurationMs } from "../util/goDuration.js"
import { isoSeconds } from "../util/time.js"
import { initErrorExitCode } from "./artifactPod.js"
import { stagedInputRefusal } from "./artifacts/archive.js"
import type { ArtifactEgress } from "./artifacts/egress.js"
import { type ArtifactTemplate, loadInputs } from "./artifacts/executor.js"
import type { ArtifactStore } from "./artifacts/S3Store.js"
import { mountSecretVolumes } from "./artifacts/secretVolumes.js"
import type { PodServiceAccountClient } from "./boundToken.js"
import { removeDir } from "./processSpec.js"
import type { Outcome } from "./outcome.js"
import { containerEnv, mainContainer, podTemplate } from "./PodPlan.js"
import { argoexecErrorExitCode, type makeStatusReporter } from "./podStatus.js"
import { type ResourceResult, type ResourceTemplate, runResource } from "./resourceAction.js"

/** A client acting as `system:serviceaccount:<namespace>:<name>` in the kubelet's cluster, if the kubelet can get one. */
export type ServiceAccountClient = (namespace: string, serviceAccountName: string) => KubeClientShape | undefined

/** A pod's client from a `ServiceAccountClient` (the embedded runtime's fixed service-account tokens). */
export const fromServiceAccountClient = (f: ServiceAccountClient): PodServiceAccountClient => (_pod, namespace, serviceAccount) =>
  Effect.suspend(() => {
    const client = f(namespace, serviceAccount)
    return client !== undefined ? Effect.succeed(client) : Effect.fail(
      new KubeError({
        reason: "Unauthorized",
        cluster: "",
        verb: "create",
        resource: "serviceaccounts/token",
        namespace,
        name: serviceAccount,
        detail: "it has no token for that service account"
      })
    )
  })

/** upstream's RESOURCE_STATE_CHECK_INTERVAL default. */
const defaultCheckIntervalMs = 5000

/** The pod's resource template (from `ARGO_TEMPLATE`), when it is a resource template's pod. */
export const resourceTemplateOf = (pod: KubeObject): ResourceTemplate | undefined => {
  const template = podTemplate(pod) as ResourceTemplate | undefined
  return template?.resource !== undefined && typeof template.resource.action === "string" ? template : undefined
}

export interface ResourcePodDeps {
  /** How the pod gets its service account's client; undefined: it cannot, and fails. */
  readonly podClient: PodServiceAccountClient | undefined
  readonly reporter: ReturnType<typeof makeStatusReporter>
  readonly storeLogs: (pod: KubeObject, text: string) => Effect.Effect<void>
  /** What loading the inputs of a `manifestFrom` pod takes; undefined: such a pod fails, saying so. */
  readonly artifacts?: ResourceArtifactDeps | undefined
}

export interface ResourceArtifactDeps {
  /** The kubelet's own client: only to read the pod's secret volumes. */
  readonly client: KubeClientShape
  readonly store: ArtifactStore
  readonly egress: ArtifactEgress
  /** Parent of the per-pod staging directories. */
  readonly workDir: string
}

/**
 * argoexec's init for a `manifestFrom` pod, then the manifest: the named input artifact's file as
 * loaded. Fails with the init container's message.
 */
const loadManifest = (deps: ResourceArtifactDeps, pod: KubeObject, template: ResourceTemplate, name: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      fs.mkdirSync(deps.workDir, { recursive: true })
      return fs.mkdtempSync(path.join(deps.workDir, `${pod.metadata.uid ?? "pod"}-manifest-`))
    }),
    (dir) =>
      Effect.gen(function*() {
        const secrets = yield* mountSecretVolumes(deps.client, pod).pipe(Effect.mapError((e) => e.message))
        const artifactDeps = { store: deps.store, secrets, egress: deps.egress, httpTimeout: Duration.seconds(60) }
        const staged = yield* loadInputs(artifactDeps, template as ArtifactTemplate, dir)
        const input = staged.find((i) => i.name === name)
        // Not loaded: an optional artifact not supplied; kubectl then finds no file at its path.
        const podPath = input?.podPath ?? (template as ArtifactTemplate).inputs?.artifacts?.find((a) => a.name === name)?.path ?? ""
        if (input === undefined) return yield* Effect.fail(`error: the path "${podPath}" does not exist`)
        // read by the node agent itself, which follows links: one leading out of its stage folder is refused
        const refused = stagedInputRefusal(input.hostPath)
        if (refused !== undefined) return yield* Effect.fail(`error: reading "${podPath}": ${refused}`)
        const manifest = yield* Effect.try({
          try: () =>
            fs.statSync(input.hostPath).isDirectory()
              ? undefined
              : fs.readFileSync(input.hostPath, "utf8"),
          catch: (e) => `error: reading "${podPath}": ${e instanceof Error ? e.message : String(e)}`
        })
        if (manifest === undefined) {
          return yield* Effect.fail(`resource.manifestFrom: artifact ${name} at "${podPath}" is a directory; the embedded runtime reads one manifest file`)
        }
        return { manifest, path: podPath }
      }),
    (dir) => Effect.sync(() => removeDir(dir))
  )

/** Runs the resource pod `pod` (already marked Running at `startedAt`) until done or `deadline` passes. */
export const runResourcePod = (
  deps: ResourcePodDeps,
  pod: KubeObject,
  template: ResourceTemplate,
  startedAt: string,
  deadline: Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const namespace = pod.metadata.namespace ?? "default"
    const spec = (pod.spec ?? {}) as { serviceAccountName?: string }
    const serviceAccount = spec.serviceAccountName !== undefined && spec.serviceAccountName !== "" ? spec.serviceAccountName : "default"
    const env = containerEnv(pod, mainContainer(pod))
    const interval = parseDurationMs(env["RESOURCE_STATE_CHECK_INTERVAL"] ?? "") ?? defaultCheckIntervalMs
    const cannot = (why: string): ResourceResult => ({
      error: `resource templates need the credentials of service account "${serviceAccount}" in namespace "${namespace}", ` +
        `which this kubelet cannot obtain (${why}; it never acts on a pod's behalf with its own identity)`,
      parameters: [],
      log: ""
    })
    const podClient = deps.podClient
    // manifestFrom: init's work first; a failure there is init's, and main never starts.
    const fromName = template.resource?.manifestFrom === undefined
      ? undefined
      : String((template.resource.manifestFrom as { artifact?: { name?: unknown } }).artifact?.name ?? "")
    let loaded: { readonly manifest: string; readonly path: string } | undefined
    if (fromName !== undefined) {
      const artifacts = deps.artifacts
      const got = artifacts === undefined
        ? ({ error: "resource.manifestFrom: this kubelet cannot load artifacts" } as const)
        : yield* loadManifest(artifacts, pod, template, fromName).pipe(
          Effect.map((m) => ({ ok: m }) as const),
          Effect.catch((error: string) => Effect.succeed({ error } as const))
        )
      if ("error" in got) {
        yield* deps.storeLogs(pod, "")
        return yield* deps.reporter.markInitFailed(pod, startedAt, isoSeconds(yield* Clock.currentTimeMillis), initErrorExitCode, got.error)
      }
      loaded = got.ok
    }
    // The pod's connection lives as long as its run (its scope closes with it).
    const run: Effect.Effect<ResourceResult> = podClient === undefined
      ? Effect.succeed(cannot("it has no way to"))
      : Effect.scoped(
        podClient(pod, namespace, serviceAccount).pipe(
          Effect.matchEffect({
            onFailure: (e) => Effect.succeed(cannot(`${e.reason}: ${e.detail}`)),
            onSuccess: (client) => runResource(client, namespace, template, Math.max(interval, 10), loaded)
          })
        )
      )
    const result = yield* Effect.raceFirst(run, deadline.pipe(Effect.as("deadline" as const)))
    const finishedAt = isoSeconds(yield* Clock.currentTimeMillis)
    if (result === "deadline") {
      const outcome: Outcome = { exitCode: 137, stdout: "", log: "", files: {}, deadlineExceeded: true }
      yield* deps.storeLogs(pod, "")
      yield* deps.reporter.writeTaskResult(pod, { exitCode: "137" })
      return yield* deps.reporter.markFinished(pod, startedAt, finishedAt, outcome, undefined)
    }
    const exitCode = result.error === undefined ? 0 : argoexecErrorExitCode
    yield* deps.storeLogs(pod, result.log)
    yield* deps.reporter.writeTaskResult(pod, {
      ...(result.parameters.length > 0 ? { parameters: result.parameters } : {}),
      exitCode: String(exitCode)
    })
    return yield* deps.reporter.finishExecutorPod(pod, startedAt, finishedAt, result.error)
  })
