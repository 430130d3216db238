/**
 * What the controller is started with: its options (`ControllerOptions`, `ControllerTiming`) and
 * the configmap as read once at start (`ControllerSettings`). A changed cluster name needs a
 * restart: pods carry it. A configmap whose identity keys (`cluster`, `instanceID`) are invalid
 * stops the start; other invalid keys are logged. `timingOf` spells every interval's default
 * once, so the controller's parts cannot disagree about them.
 */
import { Context, Duration, Effect, Layer, Option, type Schedule } from "effect"
import type { ConnectionSpec } from "../kube/api/Connection.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeError } from "../kube/api/KubeError.js"
import type { EngineConfig } from "../workflow/engine/contract.js"
import { type ControllerConfig, identityKeys, parseControllerConfig } from "./ControllerConfig.js"

export const configMapName = "workflow-controller-configmap"

export interface ControllerOptions {
  /** The controller's own client on its cluster (in-cluster identity). */
  readonly localClient: KubeClientShape
  /** Endpoint of the local cluster, lent to users' contexts that name it. */
  readonly localSpec: ConnectionSpec
  /** Namespace holding the configmap and argo-kubeconfig (Argo's system namespace). */
  readonly systemNamespace?: string
  /** The controller configmap's name (Argo's `--configmap`); default `workflow-controller-configmap`. */
  readonly configMapName?: string
  readonly workers?: number
  readonly resync?: Duration.Input
  readonly orphanSweepInterval?: Duration.Input
  /** Argo's pod name scheme (`POD_NAMES`, read by the CLI through `EnvConfig.podNamesConfig`). Default v2. */
  readonly podNameVersion?: "v1" | "v2"
  /** How long a pod may wait for an unreachable cluster before its node errors. */
  readonly createTimeout?: Duration.Input
  readonly watch?: {
    readonly openTimeout?: Duration.Input
    readonly idleTimeout?: Duration.Input
    /** Backoff between failed watch attempts (default: ~1s doubling up to 5 min, jittered). */
    readonly schedule?: Schedule.Schedule<unknown, KubeError>
  }
  /** Intervals and timeouts; the defaults suit production, tests pass small ones. */
  readonly timing?: ControllerTiming
}

export interface ControllerTiming {
  /** Requeue delay while a cluster's cache is being filled. Default 1s. */
  readonly cacheWait?: Duration.Input
  /** Requeue delay after a transient failure (create waiting for a cluster, failed reconcile, finalizer write). Default 5s. */
  readonly retry?: Duration.Input
  /** Finalizer release backoff: first delay (doubling) and cap. Default 1s and 30s. */
  readonly leaseBackoff?: Duration.Input
  readonly leaseBackoffMax?: Duration.Input
  /** Bound on one API call made while reconciling; a hung cluster turns into a (transient) Timeout. Default 30s. */
  readonly requestTimeout?: Duration.Input
  /** How often clusters added at runtime are checked for a filled cache. Default 2s. */
  readonly clusterCheck?: Duration.Input
  /** Delay before the first orphan sweep. Default 5s. */
  readonly firstOrphanSweep?: Duration.Input
  /**
   * For this long after a cluster's connection came back from an outage (and while it is down), a
   * 401 or 403 to a pod create is retried rather than failing the node: an API server that just
   * restarted serves requests before its RBAC cache has synced and refuses what users may do,
   * with the same message as a real refusal. Default 30s.
   */
  readonly refusalGrace?: Duration.Input
  /**
   * How long failing artifact GC work of one workflow (a GC pod that cannot be made, a GC task that
   * cannot be deleted, on top of a GC pod's deadline one that does not end) is tried again before
   * it is given up with an `ArtifactGCError` condition (ArtifactGC.ts). Default 10 minutes.
   */
  readonly artifactGCGiveUp?: Duration.Input
  /**
   * How long one round of a workflow may spend creating its pods, and how many it may create, before
   * it writes what it did and goes on in the next round (as upstream's 30 s per operation): a
   * 10,000-item loop shows progress, and its worker goes back to the queue. Default 10 seconds, 1,000.
   */
  readonly createRound?: Duration.Input
  readonly maxCreatesPerRound?: number
}

/** The controller's intervals with their defaults filled in. */
export interface Timing {
  readonly systemNamespace: string
  readonly cacheWait: Duration.Duration
  readonly retry: Duration.Duration
  readonly requestTimeout: Duration.Duration
  readonly leaseBackoff: Duration.Input
  readonly leaseBackoffMax: Duration.Input
  readonly clusterCheck: Duration.Input
  readonly firstOrphanSweep: Duration.Duration
  readonly createTimeoutMs: number
  readonly refusalGraceMs: number
  readonly createRoundMs: number
  readonly maxCreatesPerRound: number
  readonly resync: Duration.Input
  readonly orphanSweepInterval: Duration.Input
  readonly workers: number
}

export const timingOf = (options: ControllerOptions): Timing => {
  const timing = options.timing ?? {}
  return {
    systemNamespace: options.systemNamespace ?? "argo",
    cacheWait: Duration.fromInputUnsafe(timing.cacheWait ?? "1 second"),
    retry: Duration.fromInputUnsafe(timing.retry ?? "5 seconds"),
    requestTimeout: Duration.fromInputUnsafe(timing.requestTimeout ?? "30 seconds"),
    leaseBackoff: timing.leaseBackoff ?? "1 second",
    leaseBackoffMax: timing.leaseBackoffMax ?? "30 seconds",
    clusterCheck: timing.clusterCheck ?? "2 seconds",
    firstOrphanSweep: Duration.fromInputUnsafe(timing.firstOrphanSweep ?? "5 seconds"),
    createTimeoutMs: Duration.toMillis(Duration.fromInputUnsafe(options.createTimeout ?? "10 minutes")),
    refusalGraceMs: Duration.toMillis(Duration.fromInputUnsafe(timing.refusalGrace ?? "30 seconds")),
    createRoundMs: Duration.toMillis(Duration.fromInputUnsafe(timing.createRound ?? "10 seconds")),
    maxCreatesPerRound: Math.max(1, timing.maxCreatesPerRound ?? 1000),
    resync: options.resync ?? "20 minutes",
    orphanSweepInterval: options.orphanSweepInterval ?? "5 minutes",
    workers: options.workers ?? 32
  }
}

/** How long a created pod is expected before a create may be tried again (`Expectations`). */
export const expectationTtlMs = 60_000

export class ControllerSettings extends Context.Service<ControllerSettings, {
  readonly options: ControllerOptions
  readonly config: ControllerConfig
  readonly engineConfig: EngineConfig
}>()("flotilla/controller/ControllerSettings") {
  static readonly layer = (options: ControllerOptions) => Layer.effect(ControllerSettings, readSettings(options))
}

const readSettings = Effect.fnUntraced(function*(options: ControllerOptions) {
  const systemNamespace = options.systemNamespace ?? "argo"
  const local = options.localClient
  const configMap = yield* local.get("configmaps", systemNamespace, options.configMapName ?? configMapName).pipe(
    Effect.map(Option.some),
    Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none()) : Effect.fail(e))
  )
  const { config, errors } = parseControllerConfig(Option.getOrUndefined(configMap))
  for (const error of errors) {
    yield* Effect.logError("invalid controller configuration").pipe(Effect.annotateLogs({ error: error.message }))
  }
  const fatal = errors.find((e) => identityKeys.includes(e.key))
  if (fatal !== undefined) return yield* Effect.fail(fatal)
  const engineConfig: EngineConfig = {
    localCluster: config.cluster,
    podNameVersion: options.podNameVersion ?? "v2",
    executorImage: config.executorImage,
    images: config.images,
    limits: config.limits,
    ...(config.instanceId ? { instanceId: config.instanceId } : {}),
    ...(config.artifactRepository ? { artifactRepository: config.artifactRepository } : {}),
    controllerNamespace: options.systemNamespace ?? "argo"
  }
  return ControllerSettings.of({ options, config, engineConfig })
})
