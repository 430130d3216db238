/**
 * What a pod run amounts to (`Outcome`, in process or simulate mode) and the
 * Argo outputs read from it: output parameters from the files the process
 * left (or their defaults), `result` from stdout, the exit code, and the
 * reason the pod fails when a declared output is missing, as argoexec does.
 * Also the annotations and labels the local kubelet reads and writes.
 */
import { annotationNodeId, labelReportOutputsCompleted, labelWorkflow } from "../util/argoKeys.js"
import type { PodPlan } from "./PodPlan.js"

export const annotations = {
  nodeId: annotationNodeId,
  simulatePhase: "flotilla.dev/simulate-phase",
  simulateExitCode: "flotilla.dev/simulate-exit-code",
  simulateDuration: "flotilla.dev/simulate-duration",
  simulateResult: "flotilla.dev/simulate-result",
  simulateParameters: "flotilla.dev/simulate-parameters"
} as const

export const labels = {
  workflow: labelWorkflow,
  reportOutputsCompleted: labelReportOutputsCompleted
} as const

export interface Outcome {
  readonly exitCode: number
  readonly stdout: string
  readonly log: string
  /** Reason of the main container's terminated state when it never started ("StartError"). */
  readonly startFailure?: { readonly reason: string; readonly message: string } | undefined
  readonly files: Readonly<Record<string, string | undefined>>
  /** Simulate mode: parameters given directly. */
  readonly parameters?: Readonly<Record<string, string>> | undefined
  /** The kubelet killed the pod at its `activeDeadlineSeconds`. */
  readonly deadlineExceeded?: boolean | undefined
  /** Host copies of what main left at the output artifacts' paths (artifactPod.ts). */
  readonly artifacts?: Readonly<Record<string, string | undefined>> | undefined
}

const trimOneNewline = (s: string): string => (s.endsWith("\n") ? s.slice(0, -1) : s)

/** Turns what the process left into Argo outputs, or the reason the pod fails. */
export const collectOutputs = (plan: PodPlan | undefined, outcome: Outcome, simulated: boolean) => {
  const outputs: Record<string, unknown> = {}
  let failure: string | undefined
  const parameters: Array<{ name: string; value: string }> = []
  for (const p of plan?.outputParameters ?? []) {
    const given = outcome.parameters?.[p.name]
    const content = given ?? outcome.files[p.path]
    if (content !== undefined) parameters.push({ name: p.name, value: given ?? trimOneNewline(content) })
    else if (p.default !== undefined) parameters.push({ name: p.name, value: p.default })
    else if (!simulated && outcome.startFailure === undefined && failure === undefined) {
      failure = `failed to save outputs: output parameter "${p.name}": open ${p.path}: no such file or directory`
    }
  }
  for (const [name, value] of Object.entries(outcome.parameters ?? {})) {
    if (!parameters.some((p) => p.name === name)) parameters.push({ name, value })
  }
  if (parameters.length > 0) outputs.parameters = parameters
  const captureResult = simulated ? outcome.stdout !== "" || plan?.captureResult === true : plan?.captureResult === true
  if (captureResult && outcome.startFailure === undefined) outputs.result = trimOneNewline(outcome.stdout)
  outputs.exitCode = String(outcome.exitCode)
  return { outputs, failure }
}
