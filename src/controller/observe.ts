/**
 * Turns what the informers hold (pods and WorkflowTaskResults, in any
 * cluster) into the engine's observations. Pure: no I/O, no clock.
 *
 * A pod belongs to a workflow when it carries the workflow's name label, this
 * controller's cluster label and the workflow's namespace (annotation for
 * pods placed elsewhere, else the pod's own namespace). Anything else, such as
 * a pod of a same-named workflow from another cluster sharing a remote
 * namespace, is not ours and is never observed.
 */
import type { KubeObject } from "../kube/api/Resources.js"
import type { ContainerObservation, FailedPodStatuses, PodObservation, PodPhase, TaskResultObservation } from "../workflow/engine/contract.js"
import { clusterLabelValue } from "../workflow/engine/targeting.js"
import {
  annotationNodeId,
  annotationWorkflowNamespace,
  labelCluster,
  labelReportOutputsCompleted,
  labelWorkflow
} from "../util/argoKeys.js"

export interface WorkflowRef {
  readonly namespace: string
  readonly name: string
}

export const workflowKey = (ref: WorkflowRef): string => `${ref.namespace}/${ref.name}`

export const parseWorkflowKey = (key: string): WorkflowRef => {
  const slash = key.indexOf("/")
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) }
}

/** The workflow a pod belongs to, if it was made by the controller of `localCluster`. */
export const ownerOfPod = (pod: KubeObject, localCluster: string): WorkflowRef | undefined => {
  const labels = pod.metadata.labels ?? {}
  const name = labels[labelWorkflow]
  if (!name || labels[labelCluster] !== clusterLabelValue(localCluster)) return undefined
  const namespace = pod.metadata.annotations?.[annotationWorkflowNamespace] ?? pod.metadata.namespace
  if (!namespace) return undefined
  return { namespace, name }
}

/**
 * The workflows a pod change concerns: the pod's owner, and for an update that moved the pod to
 * another workflow (its labels or namespace annotation rewritten) the one it left, which has lost it.
 */
export const podChangeOwners = (
  change: { readonly object: KubeObject; readonly previous?: KubeObject },
  localCluster: string
): ReadonlyArray<WorkflowRef> => {
  const owner = ownerOfPod(change.object, localCluster)
  const before = change.previous === undefined ? undefined : ownerOfPod(change.previous, localCluster)
  if (before === undefined || (owner !== undefined && workflowKey(owner) === workflowKey(before))) return owner ? [owner] : []
  return owner ? [owner, before] : [before]
}

/** The workflow a task result belongs to: named by its label, in the pod's namespace. */
export const workflowNameOfTaskResult = (result: KubeObject): string | undefined =>
  result.metadata.labels?.[labelWorkflow]

interface ContainerState {
  readonly running?: { readonly startedAt?: string }
  readonly terminated?: {
    readonly exitCode?: number
    readonly reason?: string
    readonly message?: string
    readonly startedAt?: string
    readonly finishedAt?: string
  }
  readonly waiting?: { readonly reason?: string; readonly message?: string }
}

interface ContainerStatus {
  readonly name: string
  readonly state?: ContainerState
}

const phases: ReadonlySet<string> = new Set(["Pending", "Running", "Succeeded", "Failed", "Unknown"])

export const observePod = (pod: KubeObject, cluster: string): PodObservation | undefined => {
  const nodeId = pod.metadata.annotations?.[annotationNodeId]
  if (!nodeId || !pod.metadata.name || !pod.metadata.namespace) return undefined
  const status = (pod["status"] ?? {}) as {
    readonly phase?: string
    readonly message?: string
    readonly reason?: string
    readonly startTime?: string
    readonly hostIP?: string
    readonly podIP?: string
    readonly containerStatuses?: ReadonlyArray<ContainerStatus>
    readonly initContainerStatuses?: ReadonlyArray<ContainerStatus>
    readonly conditions?: ReadonlyArray<{ readonly type?: string; readonly reason?: string; readonly message?: string }>
  }
  const spec = (pod["spec"] ?? {}) as { readonly nodeName?: string }
  const main = status.containerStatuses?.find((c) => c.name === "main")
  // The exit code as upstream's getExitCode: the first main container that terminated; a containerSet
  // pod's mains are its containers (no container is called main unless the set names one so).
  const firstMainTerminated = main?.state?.terminated !== undefined
    ? main
    : status.containerStatuses?.find((c) => c.name !== "wait" && c.state?.terminated !== undefined)
  const terminated = firstMainTerminated?.state?.terminated
  const waiting = main?.state?.waiting
  const phase = (status.phase && phases.has(status.phase) ? status.phase : "Pending") as PodPhase
  // A container stuck waiting (image pull, bad config) explains a Pending pod better than nothing.
  // So does the scheduler's condition of a pod no node takes (upstream's getPendingReason: "Unschedulable: 0/3 nodes...").
  const unschedulable = phase === "Pending" ? status.conditions?.find((c) => c.reason === "Unschedulable") : undefined
  const message = status.message ?? terminated?.message ?? (waiting?.reason ? [waiting.reason, waiting.message].filter(Boolean).join(": ") : undefined) ??
    (unschedulable ? [unschedulable.reason, unschedulable.message].filter(Boolean).join(": ") : undefined)
  const startedAt = status.startTime ?? main?.state?.running?.startedAt ?? terminated?.startedAt
  return {
    nodeId,
    podName: pod.metadata.name,
    cluster,
    namespace: pod.metadata.namespace,
    phase,
    ...(message ? { message } : {}),
    ...(status.reason ? { reason: status.reason } : {}),
    ...(startedAt ? { startedAt } : {}),
    ...(terminated?.finishedAt ? { finishedAt: terminated.finishedAt } : {}),
    ...(terminated?.exitCode !== undefined ? { exitCode: terminated.exitCode } : {}),
    ...(spec.nodeName ? { hostNodeName: spec.nodeName } : {}),
    ...(status.podIP ? { podIP: status.podIP } : {}),
    ...(pod.metadata.deletionTimestamp ? { deleted: true } : {}),
    ...containersOf(status.containerStatuses),
    ...(phase === "Failed" ? { failedStatuses: failedStatusesOf(status) } : {})
  }
}

/** One container's state with its reason and message, waiting included (upstream's inferFailedReason reads both). */
const containerState = (c: ContainerStatus): ContainerObservation => {
  const t = c.state?.terminated
  if (t !== undefined) {
    return {
      name: c.name,
      state: "terminated",
      ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}),
      ...(t.reason ? { reason: t.reason } : {}),
      ...(t.message ? { message: t.message } : {})
    }
  }
  if (c.state?.running !== undefined) return { name: c.name, state: "running" }
  const w = c.state?.waiting
  // A status with no state at all is taken as running: upstream skips it (neither waiting nor terminated).
  if (w === undefined) return { name: c.name, state: "running" }
  return { name: c.name, state: "waiting", ...(w.reason ? { reason: w.reason } : {}), ...(w.message ? { message: w.message } : {}) }
}

/** What a Failed pod's node is inferred from (workflow/engine/failedReason.ts). */
const failedStatusesOf = (status: {
  readonly message?: string
  readonly containerStatuses?: ReadonlyArray<ContainerStatus>
  readonly initContainerStatuses?: ReadonlyArray<ContainerStatus>
}): FailedPodStatuses => ({
  ...(status.message ? { podMessage: status.message } : {}),
  initContainers: (status.initContainerStatuses ?? []).map(containerState),
  containers: (status.containerStatuses ?? []).map(containerState)
})

/**
 * Each container's state, for a containerSet's Container nodes (a set may have
 * a single container named `main`, so every pod's are kept; the engine only
 * follows those a Container node names).
 */
const containersOf = (statuses: ReadonlyArray<ContainerStatus> | undefined): { containers?: ReadonlyArray<ContainerObservation> } => {
  if (statuses === undefined || statuses.length === 0) return {}
  return {
    containers: statuses.map((c): ContainerObservation => {
      const t = c.state?.terminated
      if (t !== undefined) {
        return {
          name: c.name,
          state: "terminated",
          ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}),
          ...(t.reason ? { reason: t.reason } : {}),
          ...(t.message ? { message: t.message } : {})
        }
      }
      return { name: c.name, state: c.state?.running !== undefined ? "running" : "waiting" }
    })
  }
}

export const observeTaskResult = (result: KubeObject): TaskResultObservation | undefined => {
  const nodeId = result.metadata.name
  if (!nodeId) return undefined
  const outputs = result["outputs"] as TaskResultObservation["outputs"] | undefined
  const progress = result["progress"]
  return {
    nodeId,
    ...(outputs ? { outputs } : {}),
    ...(typeof progress === "string" ? { progress } : {}),
    completed: result.metadata.labels?.[labelReportOutputsCompleted] === "true"
  }
}
