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
 * It never acts with the kubelet's own identity: without a service-account
 * client the pod fails, saying so. On a real cluster the client holds a token
 * bound to the pod, got through the TokenRequest API (boundToken.ts); a token
 * the API server refuses to issue fails the pod with the server's message.
 */
import { Clock, Effect } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { parseDurationMs } from "../util/goDuration.js"
import { isoSeconds } from "../util/time.js"
import type { PodServiceAccountClient } from "./boundToken.js"
import type { Outcome } from "./outcome.js"
import { containerEnv, mainContainer, podTemplate } from "./PodPlan.js"
import type { makeStatusReporter } from "./podStatus.js"
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

/** argoexec's exit code for an error it reports (`os.Exit(64)` in cmd/argoexec). */
export const executorErrorExitCode = 64

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
}

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
    // The pod's connection lives as long as its run (its scope closes with it).
    const run: Effect.Effect<ResourceResult> = podClient === undefined
      ? Effect.succeed(cannot("it has no way to"))
      : Effect.scoped(
        podClient(pod, namespace, serviceAccount).pipe(
          Effect.matchEffect({
            onFailure: (e) => Effect.succeed(cannot(`${e.reason}: ${e.detail}`)),
            onSuccess: (client) => runResource(client, namespace, template, Math.max(interval, 10))
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
    const exitCode = result.error === undefined ? 0 : executorErrorExitCode
    yield* deps.storeLogs(pod, result.log)
    yield* deps.reporter.writeTaskResult(pod, {
      ...(result.parameters.length > 0 ? { parameters: result.parameters } : {}),
      exitCode: String(exitCode)
    })
    const main = mainContainer(pod)
    // As a real kubelet: no pod-level message; main's termination message is the executor's.
    return yield* deps.reporter.patchStatus(pod, {
      phase: result.error === undefined ? "Succeeded" : "Failed",
      conditions: deps.reporter.conditions(false, finishedAt, "PodCompleted"),
      containerStatuses: deps.reporter.containerStatuses(pod, false, (name) => ({
        terminated: {
          exitCode: name === main?.name ? exitCode : 0,
          reason: name === main?.name && result.error !== undefined ? "Error" : "Completed",
          ...(name === main?.name && result.error !== undefined ? { message: result.error } : {}),
          startedAt,
          finishedAt,
          containerID: deps.reporter.containerId(pod, name ?? "")
        }
      }))
    })
  })
