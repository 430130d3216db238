/**
 * The node agent of the embedded runtime: the kubelet + Argo executor (runs
 * the main container of each pod bound to its node as a local process, or
 * simulates it, and reports back exactly what the controller reads from a
 * real cluster: the pod's phase and container states, and a
 * `WorkflowTaskResult` with the outputs). Alone (`bind`, the default) it is
 * also the scheduler of a one-node cluster; the embedded runtime runs a
 * `Scheduler` over its nodes instead.
 *
 * Guarantees:
 *  - a pod runs at most once: pods already Succeeded/Failed are left alone;
 *    the pod is marked Running before its process starts, so a Running pod
 *    this kubelet does not own (it was running when a previous kubelet
 *    stopped) is failed with a message instead of being started again;
 *  - the task result is written before the final phase, because the
 *    controller waits for both and takes a completed pod without a result as
 *    "no outputs";
 *  - one fibre per pod (FiberMap keyed by uid): deleting a pod interrupts its
 *    fibre, which kills its processes and reports nothing; closing the
 *    kubelet's scope kills every process it started.
 *  - `spec.activeDeadlineSeconds` is enforced as the kubelet does, counted
 *    from `status.startTime` and following changes to the spec: past it, the
 *    pod's processes are killed (its whole process group, or simulate mode's
 *    wait cut short) and the pod ends Failed with reason DeadlineExceeded
 *    (activeDeadline.ts).
 *
 * It never creates pods, and never writes a Workflow.
 *
 * Parts: podStatus.ts (reporting a pod's state and task result), outcome.ts
 * (outputs from what a run left), simulate.ts (simulate mode), PodProcess.ts
 * (running a process, sandboxed or not), PodPlan.ts (what to run),
 * activeDeadline.ts (the active deadline), scheduling.ts (which node takes a
 * pod), resourcePod.ts (a resource template's pod: the executor's API calls,
 * made as the pod's service account), boundToken.ts (that service account's
 * token, from the TokenRequest API, as a kubelet gets it).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Clock, Effect, FiberMap, Option, type Scope, Semaphore, Stream } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { watchResource } from "../kube/cache/Watch.js"
import { parseDurationMs } from "../util/goDuration.js"
import { isoSeconds } from "../util/time.js"
import { activeDeadlineSeconds, type DeadlineTracker, makeDeadlineTracker, startTimeMs } from "./activeDeadline.js"
import { defaultImages, hostCommand, type HostPrograms, type ImageEntrypoint, imagesPath } from "./images.js"
import { annotations, collectOutputs, labels, type Outcome } from "./outcome.js"
import { containerPath, mainContainer, planPod, type PodPlan } from "./PodPlan.js"
import { type Isolation, makeRunner, type ProcessResult, removeDir, type Runner } from "./PodProcess.js"
import { containerSetOf, runContainerSetPod } from "./containerSetPod.js"
import { makeStatusReporter } from "./podStatus.js"
import type { PodServiceAccountClient } from "./boundToken.js"
import { fromServiceAccountClient, resourceTemplateOf, runResourcePod, type ServiceAccountClient } from "./resourcePod.js"
import { nodeObject, place, type Taint, unschedulableCondition, unschedulableMessage } from "./scheduling.js"
import { simulate } from "./simulate.js"
import { type ArtifactRun, artifactTemplateOf, initErrorExitCode, runArtifactPod } from "./artifactPod.js"
import { isArtifactGcPod, runArtifactGcPod } from "./artifactGcPod.js"
import { dataTemplateOf, runDataPod } from "./dataPod.js"
import type { SavedOutputs } from "./artifacts/executor.js"
import { type ArtifactStore, makeS3Store } from "./artifacts/S3Store.js"
import type { HttpAddressPolicy } from "../controller/httpPolicy.js"
import { artifactEgress } from "./artifacts/egress.js"

export type { Isolation } from "./PodProcess.js"
export { annotations, labels } from "./outcome.js"

/**
 * Clients that can serve pod logs written by a kubelet (the in-memory
 * cluster) implement this next to `KubeClientShape.logs`; others get the logs
 * through `LocalKubelet.logs` only.
 */
export interface PodLogSink {
  readonly writeLogs: (namespace: string, name: string, container: string, text: string) => Effect.Effect<void>
}

export interface LocalKubeletOptions {
  readonly client: KubeClientShape
  readonly nodeName: string
  /** Watch one namespace; undefined watches all. */
  readonly namespace?: string | undefined
  /** "process" runs commands; "simulate" follows the `flotilla.dev/simulate-*` annotations. */
  readonly mode: "process" | "simulate"
  /** Image entrypoints, on top of `defaultImages`. */
  readonly images?: Readonly<Record<string, ImageEntrypoint>> | undefined
  /** Put first on PATH; `imagesPath` (the stand-in entrypoints) is always appended to it. */
  readonly pathPrepend?: ReadonlyArray<string> | undefined
  /** Per-pod scratch directories live here. Default `<os tmpdir>/flotilla-kubelet`. */
  readonly workDir?: string | undefined
  /** Default "auto": overlay when the host allows it (see PodProcess). */
  readonly isolation?: Isolation | "auto" | undefined
  /** Where pod logs go besides memory; default: the client, when it implements `PodLogSink`. */
  readonly logSink?: PodLogSink | undefined
  /**
   * Schedule unscheduled pods, as the scheduler of a one-node cluster: bind
   * those this node takes (nodeSelector, required node affinity, taints), and
   * mark the others Unschedulable. Default true; false where a scheduler binds
   * (kube-scheduler on a real cluster, `Scheduler` in the embedded runtime).
   */
  readonly bind?: boolean | undefined
  /** This node's labels on top of the standard ones (hostname, os, arch), for `bind`. */
  readonly nodeLabels?: Readonly<Record<string, string>> | undefined
  /** This node's taints, for `bind`. */
  readonly nodeTaints?: ReadonlyArray<Taint> | undefined
  /**
   * A client acting as a pod's service account in this cluster (what a
   * kubelet's projected token gives the pod), for resource templates' pods,
   * which act on the API themselves (resourcePod.ts). Without it those pods
   * fail, saying why: the kubelet never lends them its own identity.
   */
  readonly serviceAccountClient?: ServiceAccountClient | undefined
  /**
   * The same from tokens got for each pod (boundToken.ts: the TokenRequest
   * API, as a kubelet gets a pod's projected token); takes precedence over
   * `serviceAccountClient`.
   */
  readonly podServiceAccountClient?: PodServiceAccountClient | undefined
  /** Where artifacts are loaded from and saved to; default S3 (`@aws-sdk/client-s3`, each call bounded in time). */
  readonly artifactStore?: ArtifactStore | undefined
  /**
   * Which addresses the artifact calls (http inputs, S3) of a pod without
   * `hostNetwork` may reach: the kubelet makes them from the node's network,
   * so by default the strict policy (no loopback, link-local such as the
   * cloud metadata address, private networks; names judged by what they
   * resolve to). A `hostNetwork` pod's are judged by the open policy.
   */
  readonly artifactHttpPolicy?: HttpAddressPolicy | undefined
  /**
   * Endpoints (`host:port` or URLs) a pod's artifact calls may reach whatever
   * the policy: the configured artifact repository's endpoint, and any server
   * the operator allows explicitly.
   */
  readonly artifactAllowedEndpoints?: ReadonlyArray<string> | undefined
}

export interface LocalKubelet {
  readonly nodeName: string
  /** Undefined in simulate mode. */
  readonly isolation: Isolation | undefined
  /** The combined stdout/stderr of a pod's main container, once it has finished. */
  readonly logs: (namespace: string, name: string) => Effect.Effect<Option.Option<string>>
  /** Pods whose fibre is running now. */
  readonly running: Effect.Effect<number>
}

const now = Effect.map(Clock.currentTimeMillis, isoSeconds)

/** Whether an executable `name` is in one of `dirs`. */
const onPath = (name: string, dirs: ReadonlyArray<string>): boolean =>
  dirs.some((dir) => {
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })

/** Durations as used in the simulate annotations ("2s", "1m30s", "500ms", or plain seconds), in milliseconds: util/goDuration.ts. */
export const parseGoDuration = (s: string): number | undefined => parseDurationMs(s)

/** Starts the kubelet in the current scope and returns a handle on it. */
export const start = (options: LocalKubeletOptions): Effect.Effect<LocalKubelet, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { client, nodeName } = options
    const images: Readonly<Record<string, ImageEntrypoint>> = { ...defaultImages, ...options.images }
    // Pods see a container's PATH, not this process's: the kubelet's folders come first, and with them the
    // folder of the node binary running the kubelet (the project's Node 24) for node images, as a fresh host has no other.
    const nodeDir = path.dirname(process.execPath)
    const ownNode = path.basename(process.execPath) === "node" && !containerPath.split(":").includes(nodeDir) ? [nodeDir] : []
    const pathPrepend = [...(options.pathPrepend ?? []), imagesPath, ...ownNode]
    const workDir = options.workDir ?? path.join(os.tmpdir(), "flotilla-kubelet")
    // Programs that stand in for an image's own (images/ImageCommands.ts), looked for where pods look.
    const hostPrograms: HostPrograms = { busybox: onPath("busybox", [...pathPrepend, ...containerPath.split(":")]) }
    if (options.mode === "process" && !hostPrograms.busybox) {
      yield* Effect.logWarning(
        "local kubelet: busybox is not installed (Debian: apt-get install busybox-static); busybox and alpine images' sh is the host's"
      )
    }
    const runner: Runner | undefined = options.mode === "process"
      ? yield* makeRunner(workDir, options.isolation ?? "auto", pathPrepend)
      : undefined
    const sink: PodLogSink | undefined = options.logSink ??
      (typeof (client as Partial<PodLogSink>).writeLogs === "function" ? (client as unknown as PodLogSink) : undefined)
    /** Without isolation, pods that read back output files take turns. */
    const outputsLock = yield* Semaphore.make(1)
    const logStore = new Map<string, string>()
    /** Names per-pod scratch directories uniquely, also across kubelets sharing a workDir. */
    let runs = 0
    /** Pods this kubelet has taken (uid); never taken twice. */
    const owned = new Set<string>()
    const fibers = yield* FiberMap.make<string>()
    /** The active deadline of each running pod (uid), following its spec. */
    const deadlines = new Map<string, DeadlineTracker>()

    const log = (pod: KubeObject) => Effect.annotateLogs({ cluster: client.cluster, node: nodeName, pod: `${pod.metadata.namespace}/${pod.metadata.name}` })

    const reporter = makeStatusReporter(client)
    const podClient = options.podServiceAccountClient ??
      (options.serviceAccountClient !== undefined ? fromServiceAccountClient(options.serviceAccountClient) : undefined)
    const { conditions, containerId, containerStatuses, markFinished, markInitFailed, markRunning, patchStatus, writeTaskResult } = reporter
    const artifactStore = options.artifactStore ?? makeS3Store()
    const egressOf = (hostNetwork: boolean) => artifactEgress(hostNetwork, options.artifactAllowedEndpoints ?? [], options.artifactHttpPolicy)

    const storeLogs = (pod: KubeObject, text: string) =>
      Effect.gen(function*() {
        const key = `${pod.metadata.namespace}/${pod.metadata.name}`
        logStore.set(key, text)
        if (sink !== undefined) {
          yield* sink.writeLogs(pod.metadata.namespace ?? "", pod.metadata.name ?? "", mainContainer(pod)?.name ?? "main", text)
        }
      })

    // ---- running ---------------------------------------------------------

    /**
     * The pod's environment: its spec's variables and what a kubelet adds,
     * never this process's own (the controller's or node agent's secrets,
     * KUBECONFIG, NODE_OPTIONS...). PATH is the kubelet's entrypoint folders,
     * then the spec's PATH or a container runtime's default.
     */
    const podEnv = (pod: KubeObject, plan: PodPlan): Record<string, string> => {
      const env: Record<string, string> = { ...plan.env }
      const defaults: Record<string, string | undefined> = {
        HOSTNAME: pod.metadata.name,
        ARGO_POD_NAME: pod.metadata.name,
        ARGO_POD_UID: pod.metadata.uid,
        ARGO_NODE_ID: pod.metadata.annotations?.[annotations.nodeId],
        ARGO_WORKFLOW_NAME: pod.metadata.labels?.[labels.workflow],
        ARGO_CONTAINER_NAME: "main"
      }
      for (const [k, v] of Object.entries(defaults)) if (v !== undefined && plan.env[k] === undefined) env[k] = v
      env.PATH = [...pathPrepend, plan.env.PATH ?? containerPath].join(":")
      return env
    }

    /** Runs the plan; `stop` completing (the active deadline) kills the pod's processes. */
    const runProcess = (pod: KubeObject, plan: PodPlan, stop: Effect.Effect<void>, artifacts?: ArtifactRun): Effect.Effect<Outcome> => {
      const r = runner!
      runs += 1
      const podDir = path.join(workDir, `${pod.metadata.uid}-${process.pid}-${runs}`)
      const exec = r.run({
        argv: hostCommand(plan.image, plan.argv, hostPrograms),
        env: podEnv(pod, plan),
        workingDir: plan.workingDir,
        scriptSource: plan.scriptSource,
        outputPaths: plan.outputParameters.map((p) => p.path),
        podDir,
        hostname: pod.metadata.name,
        hostNetwork: plan.hostNetwork,
        hostPaths: plan.hostPaths,
        stop,
        ...(artifacts !== undefined ? artifacts : {})
      }).pipe(
        Effect.map((res: ProcessResult): Outcome => ({
          exitCode: res.exitCode,
          stdout: res.stdout,
          log: res.startError !== undefined ? `${res.log}${res.startError}\n` : res.log,
          startFailure: res.startError !== undefined ? { reason: "StartError", message: res.startError } : undefined,
          files: res.files,
          ...(res.artifacts !== undefined ? { artifacts: res.artifacts } : {}),
          ...(res.stopped === true ? { deadlineExceeded: true } : {})
        })),
        Effect.ensuring(Effect.sync(() => removeDir(podDir)))
      )
      const hostFiles = plan.outputParameters.length > 0 || (artifacts !== undefined && (artifacts.inputs.length > 0 || artifacts.artifactPaths.length > 0))
      return r.isolation === "none" && hostFiles ? outputsLock.withPermits(1)(exec) : exec
    }

    const runPod = (pod: KubeObject) =>
      Effect.gen(function*() {
        const startMs = yield* Clock.currentTimeMillis
        const startedAt = isoSeconds(startMs)
        const running = yield* markRunning(pod, startedAt)
        const simulated = options.mode === "simulate"
        // Counted from status.startTime, as the kubelet does; the watch keeps it up to date with the spec.
        const deadline = yield* makeDeadlineTracker(startTimeMs(running) ?? startMs, activeDeadlineSeconds(running))
        const uid = running.metadata.uid ?? ""
        deadlines.set(uid, deadline)
        yield* Effect.addFinalizer(() => Effect.sync(() => deadlines.delete(uid)))
        const simulateUntilDeadline = Effect.raceFirst(
          simulate(running, startMs, log),
          deadline.passed.pipe(Effect.as<Outcome>({ exitCode: 137, stdout: "", log: "", files: {}, deadlineExceeded: true }))
        )
        // An artifact GC pod (`argoexec artifact delete`): the executor's deletions, done here (artifactGcPod.ts).
        if (isArtifactGcPod(running)) {
          return yield* runArtifactGcPod({ client, podClient, store: artifactStore, egress: egressOf((running.spec as { hostNetwork?: unknown } | undefined)?.hostNetwork === true), reporter, storeLogs }, running, startedAt, deadline.passed)
        }
        // A resource template's pod: the executor acts on the API as the pod's service account.
        const resourceTemplate = resourceTemplateOf(running)
        if (resourceTemplate !== undefined) {
          return yield* runResourcePod(
            { podClient, reporter, storeLogs, artifacts: { client, store: artifactStore, egress: egressOf((running.spec as { hostNetwork?: unknown } | undefined)?.hostNetwork === true), workDir } },
            running,
            resourceTemplate,
            startedAt,
            deadline.passed
          )
        }
        // A data template's pod (`argoexec data`): the executor's listing and transformation, done here (dataPod.ts).
        const dataTemplate = dataTemplateOf(running)
        if (dataTemplate !== undefined) {
          return yield* runDataPod({ client, store: artifactStore, egress: egressOf((running.spec as { hostNetwork?: unknown } | undefined)?.hostNetwork === true), reporter, storeLogs }, running, dataTemplate, startedAt, deadline.passed)
        }
        // A containerSet template's pod: several main containers in dependency order (containerSetPod.ts).
        const containerSet = simulated ? undefined : containerSetOf(running)
        if (containerSet !== undefined) {
          return yield* runContainerSetPod({ reporter, runProcess, storeLogs, images }, running, containerSet, startedAt, deadline.passed)
        }
        const plan = planPod(running, images)
        let outcome: Outcome
        let planOk: PodPlan | undefined
        let saved: SavedOutputs | undefined
        if (plan._tag === "PlanError") {
          outcome = {
            exitCode: 128,
            stdout: "",
            log: `${plan.message}\n`,
            startFailure: { reason: plan.reason, message: plan.message },
            files: {}
          }
          if (simulated) outcome = yield* simulateUntilDeadline
        } else {
          planOk = plan
          // Artifacts: argoexec's init (inputs) and wait (outputs) work around main (artifactPod.ts).
          const artifactTemplate = simulated ? undefined : artifactTemplateOf(running)
          if (artifactTemplate !== undefined) {
            runs += 1
            const result = yield* runArtifactPod(
              { client, store: artifactStore, egress: egressOf(planOk.hostNetwork), isolation: runner!.isolation, workDir },
              running,
              artifactTemplate,
              `${running.metadata.uid}-${process.pid}-${runs}-artifacts`,
              (extra) => runProcess(running, plan, deadline.passed, extra),
              deadline.passed
            )
            if (result._tag === "InitFailed") {
              yield* Effect.logInfo(`init failed: ${result.message}`).pipe(log(running))
              yield* storeLogs(running, "")
              return yield* markInitFailed(running, startedAt, yield* now, initErrorExitCode, result.message)
            }
            outcome = result.outcome
            saved = result.saved
          } else {
            outcome = simulated ? yield* simulateUntilDeadline : yield* runProcess(running, plan, deadline.passed)
          }
        }
        if (outcome.deadlineExceeded === true) {
          yield* Effect.logInfo(`killed at its active deadline (${activeDeadlineSeconds(running) ?? "?"}s)`).pipe(log(running))
        }
        const finishedAt = yield* now
        const collected = collectOutputs(planOk, outcome, simulated)
        const outputs = saved !== undefined && saved.artifacts.length > 0 ? { ...collected.outputs, artifacts: saved.artifacts } : collected.outputs
        const failure = collected.failure ?? saved?.error
        yield* storeLogs(running, outcome.log)
        yield* writeTaskResult(running, outputs)
        yield* markFinished(running, startedAt, finishedAt, outcome, failure)
      }).pipe(
        Effect.scoped,
        Effect.catchTag("KubeError", (e) =>
          e.reason === "NotFound"
            ? Effect.logDebug("pod vanished while running").pipe(log(pod))
            : Effect.logError(`reporting pod status failed: ${e.message}`).pipe(log(pod))),
        Effect.catchDefect((d) => Effect.logError("local kubelet: pod run crashed", d).pipe(log(pod)))
      )

    // ---- scheduling ------------------------------------------------------

    const failLost = (pod: KubeObject) =>
      Effect.gen(function*() {
        const at = yield* now
        yield* Effect.logWarning("failing a pod that was running when the kubelet restarted").pipe(log(pod))
        const message = `pod was running on node ${nodeName} when its kubelet stopped; its process is lost and is not started twice`
        yield* patchStatus(pod, {
          phase: "Failed",
          message,
          reason: "NodeLost",
          conditions: conditions(false, at, "PodCompleted"),
          containerStatuses: containerStatuses(pod, false, (name) => ({
            terminated: { exitCode: 137, reason: "Error", message, finishedAt: at, containerID: containerId(pod, name ?? "") }
          }))
        })
      })

    /** This node as `bind` schedules onto it. */
    const self = nodeObject(nodeName, { labels: options.nodeLabels, taints: options.nodeTaints })

    const bind = (pod: KubeObject) =>
      client.replace("pods", pod.metadata.namespace, {
        ...pod,
        spec: { ...(pod.spec as Record<string, unknown> | undefined), nodeName }
      }).pipe(
        Effect.map(Option.some),
        // Conflict: the pod changed or another scheduler bound it; the watch brings it back.
        Effect.catchTag("KubeError", (e) =>
          e.reason === "Conflict" || e.reason === "NotFound" ? Effect.succeed(Option.none()) : Effect.fail(e))
      )

    const forget = (uid: string) => FiberMap.remove(fibers, uid)

    /** The pod is gone: no longer owned, and its process (if any) stopped. */
    const drop = (uid: string) =>
      Effect.suspend(() => {
        owned.delete(uid)
        return forget(uid)
      })

    const consider = (pod: KubeObject) =>
      Effect.gen(function*() {
        const uid = pod.metadata.uid
        if (uid === undefined) return
        const spec = pod.spec as { nodeName?: string } | undefined
        const status = pod.status as { phase?: string } | undefined
        if (spec?.nodeName !== undefined && spec.nodeName !== "" && spec.nodeName !== nodeName) return
        if (pod.metadata.deletionTimestamp !== undefined) {
          // Being deleted: stop its process, then finish the graceful deletion as a kubelet does
          // (grace period 0), or the pod would stay Terminating forever on a real cluster.
          yield* forget(uid)
          if (spec?.nodeName === nodeName) {
            yield* client.delete("pods", pod.metadata.namespace, pod.metadata.name ?? "", { gracePeriodSeconds: 0, uid }).pipe(
              Effect.catchTag("KubeError", (e) =>
                e.reason === "NotFound" || e.reason === "Conflict"
                  ? Effect.void
                  : Effect.logWarning(`local kubelet: cannot finish deleting pod: ${e.message}`).pipe(log(pod)))
            )
          }
          return
        }
        if (owned.has(uid)) {
          // The active deadline may be set or lowered on a running pod.
          const deadline = deadlines.get(uid)
          if (deadline !== undefined) yield* deadline.set(activeDeadlineSeconds(pod))
          return
        }
        const phase = status?.phase
        if (phase === "Succeeded" || phase === "Failed") return
        if (phase === "Running") {
          if (spec?.nodeName === nodeName) {
            owned.add(uid)
            yield* failLost(pod)
          }
          return
        }
        let bound = pod
        if (spec?.nodeName === undefined || spec.nodeName === "") {
          if (options.bind === false) return
          const placement = place(pod, [self])
          if (placement._tag === "Unschedulable") {
            // As kube-scheduler: the pod waits, Pending, saying why.
            if (unschedulableMessage(pod) !== placement.message) {
              yield* client.patch("pods", pod.metadata.namespace, pod.metadata.name ?? "", {
                status: { phase: "Pending", conditions: [unschedulableCondition(placement.message, yield* now)] }
              }, { subresource: "status" })
            }
            return
          }
          const result = yield* bind(pod)
          if (Option.isNone(result)) return
          bound = result.value
        }
        owned.add(uid)
        yield* FiberMap.run(fibers, uid, runPod(bound), { onlyIfMissing: true })
      }).pipe(
        Effect.catchTag("KubeError", (e) => Effect.logWarning(`local kubelet: ${e.message}`).pipe(log(pod)))
      )

    const loop = watchResource(client, "pods", options.namespace).pipe(
      Stream.runForEach((item) =>
        Effect.gen(function*() {
          switch (item._tag) {
            case "Synced": {
              const present = new Set(item.items.map((p) => p.metadata.uid))
              // Deleted while we were not watching.
              for (const uid of [...owned]) {
                if (!present.has(uid)) yield* drop(uid)
              }
              for (const pod of item.items) yield* consider(pod)
              return
            }
            case "Upsert":
              return yield* consider(item.object)
            case "Delete": {
              const uid = item.object.metadata.uid
              if (uid !== undefined) yield* drop(uid)
              return
            }
          }
        })
      )
    )
    yield* Effect.forkScoped(loop)

    return {
      nodeName,
      isolation: runner?.isolation,
      logs: (namespace, name) => Effect.sync(() => Option.fromNullishOr(logStore.get(`${namespace}/${name}`))),
      running: FiberMap.size(fibers)
    } satisfies LocalKubelet
  })

/** Runs the kubelet until interrupted; see the module comment. */
export const run = (options: LocalKubeletOptions): Effect.Effect<never, never, Scope.Scope> =>
  Effect.flatMap(start(options), () => Effect.never)

