/**
 * Simulate mode of the local kubelet: a pod does not run, it follows its
 * `flotilla.dev/simulate-*` annotations (phase, exit code, duration, result,
 * output parameters), so workflows can be tested without running anything.
 */
import { Clock, Effect } from "effect"
import type { KubeObject } from "../kube/api/Resources.js"
import { parseDurationMs } from "../util/goDuration.js"
import { isRecord } from "../util/records.js"
import { annotations, type Outcome } from "./outcome.js"

/** Annotates a pod's log lines (cluster, node, pod). */
export type PodLog = (pod: KubeObject) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** The duration counts from `startMs`, so when the clock is read does not stretch it. */
export const simulate = (pod: KubeObject, startMs: number, log: PodLog): Effect.Effect<Outcome> =>
  Effect.gen(function*() {
    const a = pod.metadata.annotations ?? {}
    const duration = a[annotations.simulateDuration] !== undefined ? parseDurationMs(a[annotations.simulateDuration]) : undefined
    if (duration !== undefined && duration > 0) {
      const remaining = startMs + duration - (yield* Clock.currentTimeMillis)
      if (remaining > 0) yield* Effect.sleep(remaining)
    }
    const phase = a[annotations.simulatePhase] === "Failed" ? "Failed" : "Succeeded"
    const code = Number.parseInt(a[annotations.simulateExitCode] ?? "", 10)
    const exitCode = Number.isNaN(code) ? (phase === "Failed" ? 1 : 0) : code
    const stdout = a[annotations.simulateResult] ?? ""
    let parameters: Record<string, string> | undefined
    try {
      const raw: unknown = a[annotations.simulateParameters] !== undefined ? JSON.parse(a[annotations.simulateParameters]) : undefined
      if (isRecord(raw)) {
        parameters = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]))
      }
    } catch {
      yield* Effect.logWarning(`ignoring malformed ${annotations.simulateParameters}`).pipe(log(pod))
    }
    return {
      // A phase of Failed with exit code 0 still fails the pod.
      exitCode: phase === "Failed" && exitCode === 0 ? 1 : exitCode,
      stdout,
      log: stdout,
      files: {},
      parameters
    }
  })
