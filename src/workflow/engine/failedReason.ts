/**
 * Upstream's `inferFailedReason` (workflow/controller/operator.go, v4.0.5):
 * the phase and message of the node whose pod Failed, from the pod's own
 * message, else its containers' states in order of preference: the init
 * containers, then the main containers, the wait container, the sidecars.
 * Pure: it reads only what was observed (contract.ts `FailedPodStatuses`).
 *
 * - The pod's `status.message` (an eviction, a deadline): Failed with it.
 * - A container still waiting: Error, "Pod failed before <c> container starts
 *   due to <reason>: <message>".
 * - A container that ended non-zero: "<name>: <reason> (exit code N)[: <message>]";
 *   Error for `init` and `wait`, Failed for a main container and a sidecar,
 *   except a sidecar killed by SIGKILL or SIGTERM (137, 143), which is
 *   ignored (argoexec kills them).
 * - Nothing failed: Succeeded when both main and wait ended with 0, else
 *   Failed saying which did not.
 */
import type { NodePhase } from "../model/Workflow.js"
import type { ContainerObservation, FailedPodStatuses } from "./contract.js"

export interface InferredFailure {
  readonly phase: NodePhase
  readonly message: string
}

const initContainerName = "init"
const waitContainerName = "wait"

/**
 * `mainContainerNames`: the template's (`GetMainContainerNames`: a
 * containerSet's containers, else `main`).
 */
export const inferFailedReason = (
  pod: { readonly podName: string; readonly namespace: string },
  statuses: FailedPodStatuses,
  mainContainerNames: ReadonlyArray<string>
): InferredFailure => {
  if (statuses.podMessage !== undefined && statuses.podMessage !== "") return { phase: "Failed", message: statuses.podMessage }
  const isMain = (name: string) => mainContainerNames.includes(name)
  const order = (name: string) => (isMain(name) ? 1 : name === waitContainerName ? 2 : 3)
  // Array.prototype.sort is stable: sidecars keep the pod's order.
  const ctrs: ReadonlyArray<ContainerObservation> = [
    ...statuses.initContainers,
    ...[...statuses.containers].sort((a, b) => order(a.name) - order(b.name))
  ]
  if (ctrs.length === 0) {
    return { phase: "Failed", message: `can't find failed message for pod ${pod.podName} namespace ${pod.namespace}` }
  }
  let mainSucceeded = false
  let waitSucceeded = false
  for (const c of ctrs) {
    if (c.state === "waiting") {
      return { phase: "Error", message: `Pod failed before ${c.name} container starts due to ${c.reason ?? ""}: ${c.message ?? ""}` }
    }
    // Running in a Failed pod: upstream warns and goes on.
    if (c.state !== "terminated") continue
    const exitCode = c.exitCode ?? 0
    if (exitCode === 0) {
      if (isMain(c.name)) mainSucceeded = true
      else if (c.name === waitContainerName) waitSucceeded = true
      continue
    }
    const base = `${c.reason ?? ""} (exit code ${exitCode})`
    const msg = `${c.name}: ${c.message !== undefined && c.message !== "" ? `${base}: ${c.message}` : base}`
    if (c.name === initContainerName) return { phase: "Error", message: msg }
    if (isMain(c.name)) return { phase: "Failed", message: msg }
    if (c.name === waitContainerName) return { phase: "Error", message: msg }
    if (exitCode === 137 || exitCode === 143) continue
    return { phase: "Failed", message: msg }
  }
  if (mainSucceeded) {
    return waitSucceeded
      ? { phase: "Succeeded", message: "" }
      : { phase: "Failed", message: "pod failed: wait container did not complete successfully" }
  }
  return waitSucceeded
    ? { phase: "Failed", message: "pod failed: main container did not complete successfully" }
    : { phase: "Failed", message: "pod failed: neither main nor wait container completed successfully" }
}
