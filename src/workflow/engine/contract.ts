/**
 * The contract between the pure workflow engine and the controller that
 * applies its decisions. The engine sees a workflow, what was observed in the
 * clusters and the time, and answers with the next status and the actions to
 * take. It never performs I/O and never reads a clock.
 */
import type { KubeObject } from "../../kube/api/Resources.js"
import type { Artifact } from "../model/Workflow.js"
import type { ArtifactGCPlan } from "./artifactGC.js"
import type { ArtifactRepository } from "./artifactRepository.js"
import type { EngineLimitsInput } from "./limits.js"
import type { CacheRead, MemoInput, MemoRequests, SyncInput, SyncRequests } from "./syncTypes.js"

/** A ConfigMap of the workflow's namespace as the controller read it (or that it does not exist). */
export type ConfigMapRead = CacheRead

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown"

/** What the controller saw of one workflow pod, in whichever cluster it runs. */
export interface PodObservation {
  readonly nodeId: string
  readonly podName: string
  readonly cluster: string
  readonly namespace: string
  readonly phase: PodPhase
  readonly message?: string
  readonly reason?: string
  readonly startedAt?: string
  readonly finishedAt?: string
  /** Exit code of the `main` container once it terminated. */
  readonly exitCode?: number
  readonly hostNodeName?: string
  readonly podIP?: string
  /** The pod has a deletionTimestamp or was seen deleted before finishing. */
  readonly deleted?: boolean
  /** The state of each of its containers, for a containerSet's Container nodes (absent: not observed). */
  readonly containers?: ReadonlyArray<ContainerObservation>
  /**
   * A Failed pod's own message and every container's state, init containers
   * included, as upstream's `inferFailedReason` reads them (failedReason.ts).
   * Absent: not observed, and the node's message is made from `message`,
   * `reason` and `exitCode` alone.
   */
  readonly failedStatuses?: FailedPodStatuses
}

/** What `inferFailedReason` reads of a Failed pod: `status.message`, `initContainerStatuses`, `containerStatuses`. */
export interface FailedPodStatuses {
  /** The pod's `status.message` (set by the kubelet for an eviction or a deadline, say), not one made from its containers. */
  readonly podMessage?: string
  readonly initContainers: ReadonlyArray<ContainerObservation>
  readonly containers: ReadonlyArray<ContainerObservation>
}

/** What the controller saw of one container of a pod (its `containerStatuses` entry). */
export interface ContainerObservation {
  readonly name: string
  readonly state: "waiting" | "running" | "terminated"
  readonly exitCode?: number
  /** The terminated state's reason and message; in `failedStatuses`, also the waiting state's. */
  readonly reason?: string
  readonly message?: string
}

export interface OutputParameter {
  readonly name: string
  readonly value?: string
}

/** Outputs reported by the executor through a WorkflowTaskResult (name = node ID). */
export interface TaskResultObservation {
  readonly nodeId: string
  readonly outputs?: {
    readonly parameters?: ReadonlyArray<OutputParameter>
    readonly result?: string
    readonly exitCode?: string
    readonly artifacts?: ReadonlyArray<Artifact>
  }
  readonly progress?: string
  /** Label `workflows.argoproj.io/report-outputs-completed=true`. */
  readonly completed: boolean
}

export interface EngineConfig {
  /** This cluster's unique name (configmap key `cluster`). */
  readonly localCluster: string
  /** "v1" | "v2" (POD_NAMES); v2 is Argo's default. */
  readonly podNameVersion: "v1" | "v2"
  /** argoexec image for init/wait containers on real clusters. */
  readonly executorImage: string
  /** Controller instance id, carried into pod labels when set. */
  readonly instanceId?: string
  /**
   * Configmap key `images`: image -> entrypoint, used when a container has no
   * `command` (Argo's executor looks the entrypoint up the same way). Keys may
   * omit the `:latest` tag.
   */
  readonly images?: Readonly<Record<string, { readonly cmd?: ReadonlyArray<string>; readonly args?: ReadonlyArray<string> }>>
  /** Configmap key `limits`: bounds on what one workflow may ask of the engine (defaults in `limits.ts`). */
  readonly limits?: EngineLimitsInput
  /**
   * Configmap key `artifactRepository`: where artifacts go when the workflow names no repository
   * (`spec.artifactRepositoryRef`) and its namespace's `artifact-repositories` names no default.
   */
  readonly artifactRepository?: ArtifactRepository
  /**
   * The controller's (Argo's system) namespace: where `spec.artifactRepositoryRef`'s ConfigMap is
   * looked for when the workflow's namespace has none or it lacks the key (upstream's Resolve).
   */
  readonly controllerNamespace?: string
}

/**
 * The WorkflowTemplates and ClusterWorkflowTemplates as stored, for `templateRef` and
 * `spec.workflowTemplateRef`: at least those the workflow references (a missing one
 * errors the workflow, as upstream). Once resolved, a template is read from the
 * workflow's `status.storedTemplates` / `storedWorkflowTemplateSpec` instead.
 */
export interface TemplateLookup {
  /** WorkflowTemplates by `namespace/name`. */
  readonly workflowTemplates: ReadonlyMap<string, KubeObject>
  /** ClusterWorkflowTemplates by name. */
  readonly clusterWorkflowTemplates: ReadonlyMap<string, KubeObject>
}

export interface EngineInput {
  /** The Workflow as stored (spec + current status); treated as immutable. */
  readonly workflow: KubeObject
  /** The (Cluster)WorkflowTemplates it may reference; absent = none exist. */
  readonly templates?: TemplateLookup
  readonly pods: ReadonlyMap<string, PodObservation>
  readonly taskResults: ReadonlyMap<string, TaskResultObservation>
  /** Current time, epoch milliseconds. */
  readonly now: number
  readonly config: EngineConfig
  /** The controller's locks and semaphore limits (synchronization); absent = no lock held, no limit read. */
  readonly sync?: SyncInput
  /** The memoization caches read for this workflow; absent = none read yet. */
  readonly memo?: MemoInput
  /**
   * The ConfigMaps of the workflow's namespace that parameters' `valueFrom.configMapKeyRef` name
   * (engine/configMapParams.ts), by name, as read for this run; absent = none read yet.
   */
  readonly configMaps?: ReadonlyMap<string, ConfigMapRead>
  /**
   * ConfigMaps of the controller's namespace (`EngineConfig.controllerNamespace`), by name, as read
   * for this run: only the artifact repository's resolution (`spec.artifactRepositoryRef`) asks for
   * these (`EngineOutput.needControllerConfigMaps`); absent = none read yet.
   */
  readonly controllerConfigMaps?: ReadonlyMap<string, ConfigMapRead>
  /**
   * The responses to the http templates' requests the controller made (engine/http.ts), by node ID.
   * Absent: the controller runs no http templates, and they error "not supported".
   */
  readonly httpResults?: ReadonlyMap<string, HttpResult>
}

/** What an http template asks for (after substitution); headers from secrets are read by the controller. */
export interface HttpRequest {
  readonly nodeId: string
  /** The workflow's namespace: where `valueFrom.secretKeyRef` secrets are read. */
  readonly namespace: string
  readonly method: string
  readonly url: string
  readonly headers: ReadonlyArray<{
    readonly name: string
    readonly value?: string
    readonly secretKeyRef?: { readonly name: string; readonly key: string }
  }>
  readonly body?: string
  readonly timeoutSeconds?: number
  readonly insecureSkipVerify?: boolean
}

/** The response to an http template's request, or why there is none. */
export type HttpResult =
  | {
    readonly _tag: "Response"
    readonly statusCode: number
    readonly body: string
    readonly headers: Readonly<Record<string, ReadonlyArray<string>>>
  }
  | { readonly _tag: "Failure"; readonly message: string }

export type EngineAction =
  | {
    readonly _tag: "CreatePod"
    readonly nodeId: string
    /** Target cluster name; equals config.localCluster when the template names none. */
    readonly cluster: string
    readonly namespace: string
    /** The complete pod manifest (name set, deterministic). */
    readonly pod: KubeObject
  }
  | {
    readonly _tag: "DeletePod"
    readonly nodeId: string
    readonly cluster: string
    readonly namespace: string
    readonly podName: string
  }
  | {
    /** Argo's "labelPodCompleted": mark a finished pod that is kept (not GC'd). */
    readonly _tag: "LabelPodCompleted"
    readonly nodeId: string
    readonly cluster: string
    readonly namespace: string
    readonly podName: string
  }

/**
 * A custom metric to record (a template's or the workflow's `metrics.prometheus`, engine/metrics.ts),
 * its name as written (exposed as `argo_workflows_<name>`) and help as upstream's.
 */
export interface MetricEmission {
  readonly name: string
  readonly help: string
  readonly labels: Readonly<Record<string, string>>
  readonly kind: "gauge" | "counter" | "histogram"
  /** The value to set (gauge), add (counter, gauge `Add`), subtract (gauge `Sub`) or observe (histogram). */
  readonly value?: number
  readonly operation?: "Add" | "Sub"
  /** A histogram's buckets (sorted). */
  readonly buckets?: ReadonlyArray<number>
  /** A realtime gauge: the seconds from `startedAt` until `finishedAt` (epoch ms), or until it is read. */
  readonly realtime?: { readonly startedAt: number; readonly finishedAt?: number }
}

export interface EngineOutput {
  /** The full next `status` object of the Workflow (Argo's WorkflowStatus JSON). */
  readonly status: Readonly<Record<string, unknown>>
  /** Labels to set on the Workflow (`workflows.argoproj.io/phase`, `completed`). */
  readonly labels: Readonly<Record<string, string>>
  readonly actions: ReadonlyArray<EngineAction>
  /** The http templates' requests still waiting for their response (made once per node by the controller). */
  readonly httpRequests?: ReadonlyArray<HttpRequest>
  /** When the engine next needs to run although nothing is observed (backoff, deadlines, podGC delay). */
  readonly requeueAfterMs?: number
  /** Locks taken, waited for and released (synchronization); absent when the workflow uses none. */
  readonly sync?: SyncRequests
  /** Memoization cache entries to store and reads still needed; absent when none. */
  readonly memo?: MemoRequests
  /**
   * ConfigMaps (in the workflow's namespace) that parameters read and that were not in
   * `EngineInput.configMaps`: read them and run the engine again (this output is provisional).
   */
  readonly needConfigMaps?: ReadonlyArray<string>
  /**
   * ConfigMaps of the controller's namespace (`EngineConfig.controllerNamespace`) that the artifact
   * repository's resolution needs and that were not in `EngineInput.controllerConfigMaps` (valid
   * ConfigMap names only; nothing a user writes can ask for another namespace): read them and run
   * the engine again (this output is provisional).
   */
  readonly needControllerConfigMaps?: ReadonlyArray<string>
  /** Custom metrics to record once this status is stored; absent when none. */
  readonly metrics?: ReadonlyArray<MetricEmission>
  /**
   * Artifact GC (engine/artifactGC.ts): whether the workflow needs the `workflows.argoproj.io/artifact-gc`
   * finalizer, the strategies ready and the artifacts they delete; absent when it collects nothing.
   */
  readonly artifactGC?: ArtifactGCPlan
}
