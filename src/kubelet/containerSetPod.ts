/**
 * A containerSet template's pod on the local kubelet: several main
 * containers, each started once the containers it depends on exited 0, as
 * argoexec's emissary does in each of them (it reads the set's graph from
 * ARGO_TEMPLATE, waits for `/var/run/argo/ctr/<dependency>/exitcode`, and
 * fails with "dependency ... exited with non-zero code" without running its
 * command otherwise). The set's `retryStrategy` re-runs a failing container's
 * command up to `retries` times in all, `duration` apart, as the emissary's
 * `retry.OnError` does. Each container's state is reported as it changes, so
 * the controller's Container nodes follow; the outputs (result, parameters)
 * are the `main` container's, as upstream's wait container collects them.
 *
 * Each container runs as its own process sandbox: the containers of a set do
 * not share the embedded runtime's files (emptyDir volumes have no
 * counterpart here), unlike a real pod.
 */
import { Clock, Deferred, Effect, Semaphore } from "effect"
import type { KubeObject } from "../kube/api/Resources.js"
import { parseDurationMs } from "../util/goDuration.js"
import { isoSeconds } from "../util/time.js"
import { lookupImage, type Images } from "./images.js"
import { collectOutputs, type Outcome } from "./outcome.js"
import { containerEnv, hostPathMounts, type PlanError, type PodPlan, podContainers, podTemplate, unwrapEmissary } from "./PodPlan.js"
import type { makeStatusReporter } from "./podStatus.js"

interface ContainerNodeLike {
  readonly name?: string
  readonly image?: string
  readonly command?: ReadonlyArray<string>
  readonly args?: ReadonlyArray<string>
  readonly workingDir?: string
  readonly dependencies?: ReadonlyArray<string>
}

export interface ContainerSetLike {
  readonly containers: ReadonlyArray<ContainerNodeLike>
  readonly retryStrategy?: { readonly retries?: number | string; readonly duration?: string }
}

/** The pod's containerSet (from ARGO_TEMPLATE), when it is a containerSet template's pod. */
export const containerSetOf = (pod: KubeObject): ContainerSetLike | undefined => {
  const set = (podTemplate(pod) as { containerSet?: ContainerSetLike } | undefined)?.containerSet
  return set !== undefined && Array.isArray(set.containers) && set.containers.length > 0 ? set : undefined
}

const nameOf = (c: ContainerNodeLike): string => c.name === undefined || c.name === "" ? "main" : c.name

export interface ContainerPlan {
  readonly name: string
  readonly dependencies: ReadonlyArray<string>
  readonly plan: PodPlan | PlanError
}

/** What each container of the set runs: like `planPod` for a container template, per container. */
export const planContainerSet = (pod: KubeObject, set: ContainerSetLike, images: Images): ReadonlyArray<ContainerPlan> => {
  const template = podTemplate(pod) as { outputs?: { parameters?: ReadonlyArray<{ name: string; valueFrom?: { path?: string; default?: unknown } }> } } | undefined
  const hostNetwork = (pod.spec as { hostNetwork?: unknown } | undefined)?.hostNetwork === true
  return set.containers.map((c) => {
    const name = nameOf(c)
    const podContainer = podContainers(pod).find((pc) => pc.name === name)
    const env = containerEnv(pod, podContainer)
    const image = c.image ?? podContainer?.image ?? ""
    const command = c.command !== undefined && c.command.length > 0 ? c.command : unwrapEmissary(podContainer?.command ?? [])
    const args = c.args ?? podContainer?.args
    let argv: ReadonlyArray<string> = [...command, ...(args ?? [])]
    if (command.length === 0) {
      const entry = lookupImage(images, image)
      argv = entry === undefined ? [] : [...(entry.cmd ?? []), ...(args ?? entry.args ?? [])]
    }
    const isMain = name === "main"
    const plan: PodPlan | PlanError = argv.length === 0
      ? { _tag: "PlanError", reason: "StartError", message: `image "${image}": no entrypoint known: set command, or add it to the configmap key "images"` }
      : {
        _tag: "PodPlan",
        image,
        argv,
        env,
        workingDir: c.workingDir ?? podContainer?.workingDir,
        outputParameters: isMain
          ? (template?.outputs?.parameters ?? []).flatMap((p) =>
            typeof p.valueFrom?.path === "string" && p.valueFrom.path !== ""
              ? [{ name: p.name, path: p.valueFrom.path, default: p.valueFrom.default === undefined || p.valueFrom.default === null ? undefined : String(p.valueFrom.default) }]
              : []
          )
          : [],
        captureResult: isMain && env.ARGO_INCLUDE_SCRIPT_OUTPUT === "true",
        hostNetwork,
        hostPaths: hostPathMounts(pod, podContainer)
      }
    return { name, dependencies: c.dependencies ?? [], plan }
  })
}

/** A container's terminated state. */
interface Terminated {
  readonly exitCode: number
  readonly reason: string
  readonly message?: string
  readonly startedAt: string
  readonly finishedAt: string
}

export interface ContainerSetPodDeps {
  readonly reporter: ReturnType<typeof makeStatusReporter>
  /** Runs one container's plan as a process; `stop` completing kills it. */
  readonly runProcess: (pod: KubeObject, plan: PodPlan, stop: Effect.Effect<void>) => Effect.Effect<Outcome>
  readonly storeLogs: (pod: KubeObject, text: string) => Effect.Effect<void>
  readonly images: Images
}

const now = Effect.map(Clock.currentTimeMillis, isoSeconds)

/** Runs the containerSet pod `pod` (already marked Running at `startedAt`) until its containers are done or `deadline` passes. */
export const runContainerSetPod = (
  deps: ContainerSetPodDeps,
  pod: KubeObject,
  set: ContainerSetLike,
  startedAt: string,
  deadline: Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const { reporter } = deps
    const plans = planContainerSet(pod, set, deps.images)
    const retries = Math.max(1, Number(set.retryStrategy?.retries ?? 1) || 1)
    const backoffMs = parseDurationMs(set.retryStrategy?.duration) ?? 0
    const exits = new Map(yield* Effect.forEach(plans, (p) => Effect.map(Deferred.make<number>(), (d) => [p.name, d] as const)))
    const states = new Map<string, { running?: { startedAt: string }; terminated?: Terminated }>()
    const outcomes = new Map<string, Outcome>()
    const logs: Array<string> = []
    const report = yield* Semaphore.make(1)

    // The containers' states as they stand, the wait container running until the end.
    const publish = report.withPermits(1)(
      reporter.patchStatus(pod, {
        containerStatuses: reporter.containerStatuses(pod, true, (name) => {
          const s = name === undefined ? undefined : states.get(name)
          if (s?.terminated !== undefined) return { terminated: { ...s.terminated, containerID: reporter.containerId(pod, name ?? "") } }
          if (s?.running !== undefined || name === "wait") return { running: s?.running ?? { startedAt } }
          return { waiting: { reason: "PodInitializing" } }
        })
      }).pipe(Effect.catchTag("KubeError", (e) => Effect.logDebug(`containerSet status update failed: ${e.message}`)))
    )

    const runOne = (c: ContainerPlan) =>
      Effect.gen(function*() {
        const started = yield* now
        for (const dep of c.dependencies) {
          const code = yield* Deferred.await(exits.get(dep)!)
          if (code !== 0) {
            const message = `dependency "${dep}" exited with non-zero code: ${code}`
            states.set(c.name, { terminated: { exitCode: code, reason: "Error", message, startedAt: started, finishedAt: yield* now } })
            logs.push(`${message}\n`)
            return code
          }
        }
        if (c.plan._tag === "PlanError") {
          const at = yield* now
          states.set(c.name, { terminated: { exitCode: 128, reason: c.plan.reason, message: c.plan.message, startedAt: at, finishedAt: at } })
          logs.push(`${c.plan.message}\n`)
          return 128
        }
        const runningAt = yield* now
        states.set(c.name, { running: { startedAt: runningAt } })
        yield* publish
        let outcome: Outcome | undefined
        for (let attempt = 0; attempt < retries; attempt++) {
          if (attempt > 0 && backoffMs > 0) yield* Effect.sleep(backoffMs)
          outcome = yield* deps.runProcess(pod, c.plan, deadline)
          if (outcome.exitCode === 0 || outcome.deadlineExceeded === true) break
        }
        const o = outcome!
        outcomes.set(c.name, o)
        logs.push(o.log)
        states.set(c.name, {
          terminated: {
            exitCode: o.exitCode,
            reason: o.startFailure?.reason ?? (o.exitCode === 0 ? "Completed" : "Error"),
            ...(o.startFailure !== undefined ? { message: o.startFailure.message } : {}),
            startedAt: runningAt,
            finishedAt: yield* now
          }
        })
        return o.exitCode
      }).pipe(
        Effect.flatMap((code) => Effect.andThen(Deferred.succeed(exits.get(c.name)!, code), publish))
      )

    yield* Effect.forEach(plans, runOne, { concurrency: "unbounded", discard: true })

    const finishedAt = yield* now
    const main = outcomes.get("main")
    const mainPlan = plans.find((p) => p.name === "main")?.plan
    yield* deps.storeLogs(pod, logs.join(""))
    const deadlineHit = [...outcomes.values()].some((o) => o.deadlineExceeded === true)
    const failedName = plans.find((p) => (states.get(p.name)?.terminated?.exitCode ?? 0) !== 0)?.name
    const failedCode = failedName === undefined ? 0 : states.get(failedName)!.terminated!.exitCode
    const outcome: Outcome = {
      exitCode: main?.exitCode ?? failedCode,
      stdout: main?.stdout ?? "",
      log: main?.log ?? "",
      files: main?.files ?? {},
      ...(deadlineHit ? { deadlineExceeded: true } : {})
    }
    const { failure, outputs } = collectOutputs(mainPlan?._tag === "PodPlan" ? mainPlan : undefined, outcome, false)
    yield* reporter.writeTaskResult(pod, outputs)
    if (deadlineHit) return yield* reporter.markFinished(pod, startedAt, finishedAt, outcome, failure)
    const failed = failedName !== undefined || failure !== undefined
    const message = failedName !== undefined ? `${failedName}: Error (exit code ${failedCode})` : failure
    yield* reporter.patchStatus(pod, {
      phase: failed ? "Failed" : "Succeeded",
      ...(failed && message !== undefined ? { message } : {}),
      conditions: reporter.conditions(false, finishedAt, "PodCompleted"),
      containerStatuses: reporter.containerStatuses(pod, false, (name) => {
        const t = name === undefined ? undefined : states.get(name)?.terminated
        const terminated = t ?? {
          exitCode: name === "wait" && failure !== undefined ? 1 : 0,
          reason: name === "wait" && failure !== undefined ? "Error" : "Completed",
          ...(name === "wait" && failure !== undefined ? { message: failure } : {}),
          startedAt,
          finishedAt
        }
        return { terminated: { ...terminated, containerID: reporter.containerId(pod, name ?? "") } }
      })
    })
  })
