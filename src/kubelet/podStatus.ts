/**
 * How the local kubelet reports a pod back, the way a real kubelet and
 * argoexec do: the pod's phase, conditions and container states (Running,
 * then Succeeded or Failed with each container's terminated state) through
 * the status subresource, and the `WorkflowTaskResult` with the outputs.
 * Reports are retried like a kubelet's status sync, so an API server outage
 * or restart never leaves a finished pod Running forever.
 */
import { Clock, Effect, Schedule } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { isTransient, type KubeError } from "../kube/api/KubeError.js"
import type { KubeObject, OwnerReference } from "../kube/api/Resources.js"
import { executorEnvOf } from "../workflow/engine/pod.js"
import { deadlineExceeded } from "./activeDeadline.js"
import { annotations, labels, type Outcome } from "./outcome.js"
import { mainContainer, podContainers } from "./PodPlan.js"

/** Doubling from 200ms up to 10s between attempts to report a pod's state. */
const reportSchedule = Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("10 seconds")])
/** How long a refusal (401/403) is retried: a restarted API server refuses until its RBAC caches are synced. */
const refusalRetryMillis = 120_000

/**
 * Reports a pod's state (status, task result) the way a kubelet's status sync
 * does: for as long as the API server is unreachable or overloaded (an outage
 * or a restart must not leave a finished pod Running forever), and for
 * `refusalRetryMillis` when it refuses us; anything else fails at once.
 */
const retryReport = <A>(effect: Effect.Effect<A, KubeError>): Effect.Effect<A, KubeError> =>
  Effect.flatMap(Clock.currentTimeMillis, (started) =>
    effect.pipe(Effect.retry({
      schedule: reportSchedule,
      while: (error: KubeError) =>
        Effect.map(Clock.currentTimeMillis, (now) =>
          isTransient(error) ||
          ((error.reason === "Forbidden" || error.reason === "Unauthorized") && now - started < refusalRetryMillis))
    })))

/**
 * argoexec's exit code for an error of its own (`os.Exit(64)` in
 * cmd/argoexec/main.go): the wait container's when saving outputs fails, main's
 * when a data, resource or artifact GC executor fails.
 */
export const argoexecErrorExitCode = 64

export const makeStatusReporter = (client: KubeClientShape) => {
  const patchStatus = (pod: KubeObject, status: Record<string, unknown>) =>
    retryReport(client.patch("pods", pod.metadata.namespace, pod.metadata.name ?? "", { status }, { subresource: "status" }))

  const conditions = (ready: boolean, at: string, reason?: string) => [
    { type: "PodReadyToStartContainers", status: "True", lastTransitionTime: at },
    { type: "Initialized", status: "True", lastTransitionTime: at },
    { type: "Ready", status: ready ? "True" : "False", lastTransitionTime: at, ...(reason ? { reason } : {}) },
    { type: "ContainersReady", status: ready ? "True" : "False", lastTransitionTime: at, ...(reason ? { reason } : {}) },
    { type: "PodScheduled", status: "True", lastTransitionTime: at }
  ]

  const containerId = (pod: KubeObject, name: string) => `flotilla://${pod.metadata.uid}/${name}`

  /** One status per container of the pod: ready and started, or neither; `state` by container name. */
  const containerStatuses = (pod: KubeObject, ready: boolean, state: (name: string | undefined) => unknown) =>
    podContainers(pod).map((c) => ({
      name: c.name,
      image: c.image ?? "",
      imageID: "",
      containerID: containerId(pod, c.name ?? ""),
      ready,
      started: ready,
      restartCount: 0,
      state: state(c.name)
    }))

  const markRunning = (pod: KubeObject, startedAt: string) =>
    patchStatus(pod, {
      phase: "Running",
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      startTime: startedAt,
      conditions: conditions(true, startedAt),
      ...initStatuses(pod, startedAt),
      containerStatuses: containerStatuses(pod, true, () => ({ running: { startedAt } }))
    })

  const initStatuses = (pod: KubeObject, at: string) => {
    const inits = ((pod.spec as { initContainers?: Array<{ name?: string; image?: string }> } | undefined)?.initContainers) ?? []
    if (inits.length === 0) return {}
    return {
      initContainerStatuses: inits.map((c) => ({
        name: c.name,
        image: c.image ?? "",
        imageID: "",
        containerID: containerId(pod, c.name ?? ""),
        ready: true,
        restartCount: 0,
        state: { terminated: { exitCode: 0, reason: "Completed", startedAt: at, finishedAt: at } }
      }))
    }
  }

  const markFinished = (
    pod: KubeObject,
    startedAt: string,
    finishedAt: string,
    outcome: Outcome,
    failure: string | undefined
  ) => {
    if (outcome.deadlineExceeded === true) return markDeadlineExceeded(pod, startedAt, finishedAt, outcome)
    const failed = outcome.exitCode !== 0 || failure !== undefined
    const main = mainContainer(pod)
    const hasWait = podContainers(pod).some((c) => c.name === "wait")
    const mainMessage = outcome.startFailure?.message ?? (hasWait ? undefined : failure)
    const message = outcome.startFailure?.message ??
      (outcome.exitCode !== 0 ? `Error (exit code ${outcome.exitCode})` : failure)
    const terminated = (name: string | undefined) => {
      if (name === main?.name || (main === undefined && name === "main")) {
        return {
          exitCode: outcome.exitCode,
          reason: outcome.startFailure?.reason ?? (outcome.exitCode === 0 ? "Completed" : "Error"),
          ...(mainMessage !== undefined ? { message: mainMessage } : {}),
          startedAt,
          finishedAt,
          containerID: containerId(pod, name ?? "")
        }
      }
      // The wait container is where upstream reports failures to collect outputs: argoexec exits 64 on an
      // error of its own (cmd/argoexec/main.go), its first error as the termination message.
      const waitFailed = name === "wait" && failure !== undefined && outcome.startFailure === undefined
      return {
        exitCode: waitFailed ? argoexecErrorExitCode : 0,
        reason: waitFailed ? "Error" : "Completed",
        ...(waitFailed ? { message: failure } : {}),
        startedAt,
        finishedAt,
        containerID: containerId(pod, name ?? "")
      }
    }
    return patchStatus(pod, {
      phase: failed ? "Failed" : "Succeeded",
      ...(failed && message !== undefined ? { message } : {}),
      conditions: conditions(false, finishedAt, "PodCompleted"),
      containerStatuses: containerStatuses(pod, false, (name) => ({ terminated: terminated(name) }))
    })
  }

  /**
   * A pod killed at its active deadline, as the kubelet reports one: Failed
   * with reason DeadlineExceeded and its message; every container killed
   * (SIGKILL: exit code 137, reason Error).
   */
  const markDeadlineExceeded = (pod: KubeObject, startedAt: string, finishedAt: string, outcome: Outcome) => {
    const main = mainContainer(pod)
    return patchStatus(pod, {
      phase: "Failed",
      reason: deadlineExceeded.reason,
      message: deadlineExceeded.message,
      conditions: conditions(false, finishedAt, "PodCompleted"),
      containerStatuses: containerStatuses(pod, false, (name) => ({
        terminated: {
          exitCode: name === main?.name ? outcome.exitCode : 137,
          reason: "Error",
          startedAt,
          finishedAt,
          containerID: containerId(pod, name ?? "")
        }
      }))
    })
  }

  /**
   * A pod whose main container is argoexec doing work the kubelet does itself
   * (a data, resource or artifact GC pod), ended: Succeeded, or Failed with
   * `error` as main's termination message and argoexec's exit code for an
   * error of its own (64); as a real kubelet, no pod-level message. Every
   * other container ended Completed (exit code 0).
   */
  const finishExecutorPod = (pod: KubeObject, startedAt: string, finishedAt: string, error: string | undefined) => {
    const main = mainContainer(pod)
    const failed = (name: string | undefined) => error !== undefined && name === main?.name
    return patchStatus(pod, {
      phase: error === undefined ? "Succeeded" : "Failed",
      conditions: conditions(false, finishedAt, "PodCompleted"),
      containerStatuses: containerStatuses(pod, false, (name) => ({
        terminated: {
          exitCode: failed(name) ? argoexecErrorExitCode : 0,
          reason: failed(name) ? "Error" : "Completed",
          ...(failed(name) ? { message: error } : {}),
          startedAt,
          finishedAt,
          containerID: containerId(pod, name ?? "")
        }
      }))
    })
  }

  /**
   * The executor's init container failed (input artifacts): as a kubelet
   * reports it, init terminated with argoexec's exit code and its message,
   * main never started, the pod Failed.
   */
  const markInitFailed = (pod: KubeObject, startedAt: string, finishedAt: string, exitCode: number, message: string) => {
    const inits = ((pod.spec as { initContainers?: Array<{ name?: string; image?: string }> } | undefined)?.initContainers) ?? []
    return patchStatus(pod, {
      phase: "Failed",
      conditions: conditions(false, finishedAt, "PodCompleted"),
      initContainerStatuses: inits.map((c) => ({
        name: c.name,
        image: c.image ?? "",
        imageID: "",
        containerID: containerId(pod, c.name ?? ""),
        ready: false,
        restartCount: 0,
        state: {
          terminated: c.name === "init"
            ? { exitCode, reason: "Error", message, startedAt, finishedAt, containerID: containerId(pod, "init") }
            : { exitCode: 0, reason: "Completed", startedAt, finishedAt }
        }
      })),
      containerStatuses: containerStatuses(pod, false, () => ({ waiting: { reason: "PodInitializing" } }))
    })
  }

  const writeTaskResult = (pod: KubeObject, outputs: Record<string, unknown>) =>
    Effect.gen(function*() {
      const nodeId = pod.metadata.annotations?.[annotations.nodeId]
      if (nodeId === undefined) return
      const workflow = pod.metadata.labels?.[labels.workflow]
      // As argoexec does: owned by the Workflow its executor env names (ARGO_WORKFLOW_NAME/UID), wherever
      // the pod runs; a result in another namespace or cluster thus has a dangling owner, as with argoexec.
      const executorEnv = executorEnvOf(pod)
      const ownerReferences: ReadonlyArray<OwnerReference> = executorEnv["ARGO_WORKFLOW_NAME"] && executorEnv["ARGO_WORKFLOW_UID"]
        ? [{ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: executorEnv["ARGO_WORKFLOW_NAME"], uid: executorEnv["ARGO_WORKFLOW_UID"] }]
        : (pod.metadata.ownerReferences ?? []).filter((o) => o.kind === "Workflow" && o.apiVersion.startsWith("argoproj.io/"))
      const object: KubeObject = {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "WorkflowTaskResult",
        metadata: {
          name: nodeId,
          namespace: pod.metadata.namespace,
          labels: {
            ...(workflow !== undefined ? { [labels.workflow]: workflow } : {}),
            [labels.reportOutputsCompleted]: "true"
          },
          ...(ownerReferences.length > 0 ? { ownerReferences } : {})
        },
        outputs
      }
      yield* retryReport(client.create("workflowtaskresults", pod.metadata.namespace, object)).pipe(
        Effect.catchTag("KubeError", (e) =>
          e.reason === "AlreadyExists"
            // A retried node reuses its ID upstream too: the newest outputs win.
            ? retryReport(client.patch("workflowtaskresults", pod.metadata.namespace, nodeId, {
              metadata: { labels: object.metadata.labels },
              outputs
            }))
            : Effect.fail(e))
      )
    })

  return { patchStatus, conditions, containerId, containerStatuses, markRunning, markFinished, markInitFailed, finishExecutorPod, writeTaskResult }
}
