/**
 * The Argo Workflow model (argoproj.io/v1alpha1) as flotilla's engine reads it.
 *
 * The types are structural views over plain JSON: templates, containers and
 * pod-level fields are passed through to pods unchanged, so every field a
 * user wrote survives even when flotilla does not know it. Only the fields the
 * engine interprets are named here.
 */
import type { KubeObject } from "../../kube/Resources.js"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

export interface ValueFrom {
  readonly path?: string
  readonly default?: string
  readonly expression?: string
  readonly parameter?: string
  readonly jsonPath?: string
  readonly event?: string
  readonly supplied?: unknown
  readonly configMapKeyRef?: unknown
}

export interface Parameter {
  readonly name: string
  readonly value?: string
  readonly default?: string
  readonly enum?: ReadonlyArray<string>
  readonly valueFrom?: ValueFrom
  readonly globalName?: string
  readonly description?: string
}

export interface Arguments {
  readonly parameters?: ReadonlyArray<Parameter>
  readonly artifacts?: ReadonlyArray<unknown>
}

export interface Inputs {
  readonly parameters?: ReadonlyArray<Parameter>
  readonly artifacts?: ReadonlyArray<unknown>
}

export interface Outputs {
  readonly parameters?: ReadonlyArray<Parameter>
  readonly artifacts?: ReadonlyArray<unknown>
  readonly result?: string
  readonly exitCode?: string
}

export interface Backoff {
  readonly duration?: string | number
  readonly factor?: string | number
  readonly maxDuration?: string | number
  readonly cap?: string | number
}

export type RetryPolicy = "Always" | "OnFailure" | "OnError" | "OnTransientError"

export interface RetryStrategy {
  readonly limit?: string | number
  readonly retryPolicy?: RetryPolicy
  readonly backoff?: Backoff
  readonly expression?: string
  readonly affinity?: unknown
}

export interface ContinueOn {
  readonly failed?: boolean
  readonly error?: boolean
}

export interface LifecycleHook {
  readonly template?: string
  readonly arguments?: Arguments
  readonly expression?: string
}

export interface Sequence {
  readonly count?: string | number
  readonly start?: string | number
  readonly end?: string | number
  readonly format?: string
}

/** What steps and DAG tasks have in common: a call of a template. */
export interface TemplateCall {
  readonly name: string
  readonly template?: string
  readonly templateRef?: unknown
  readonly inline?: Template
  readonly arguments?: Arguments
  readonly when?: string
  readonly withItems?: ReadonlyArray<Json>
  readonly withParam?: string
  readonly withSequence?: Sequence
  readonly continueOn?: ContinueOn
  readonly onExit?: string
  readonly hooks?: Readonly<Record<string, LifecycleHook>>
}

export type WorkflowStep = TemplateCall

export interface DagTask extends TemplateCall {
  readonly dependencies?: ReadonlyArray<string>
  readonly depends?: string
}

export interface DagTemplate {
  readonly target?: string
  readonly tasks: ReadonlyArray<DagTask>
  readonly failFast?: boolean
}

export interface Container {
  readonly name?: string
  readonly image?: string
  readonly command?: ReadonlyArray<string>
  readonly args?: ReadonlyArray<string>
  readonly [key: string]: unknown
}

export interface ScriptTemplate extends Container {
  readonly source?: string
}

export interface Metadata {
  readonly labels?: Readonly<Record<string, string>>
  readonly annotations?: Readonly<Record<string, string>>
}

export interface Template {
  readonly name: string
  readonly inputs?: Inputs
  readonly outputs?: Outputs
  readonly container?: Container
  readonly script?: ScriptTemplate
  readonly steps?: ReadonlyArray<ReadonlyArray<WorkflowStep>>
  readonly dag?: DagTemplate
  readonly suspend?: unknown
  readonly resource?: unknown
  readonly containerSet?: unknown
  readonly data?: unknown
  readonly http?: unknown
  readonly plugin?: unknown
  readonly metadata?: Metadata
  readonly retryStrategy?: RetryStrategy
  readonly parallelism?: number
  readonly failFast?: boolean
  readonly activeDeadlineSeconds?: string | number
  readonly timeout?: string
  readonly serviceAccountName?: string
  /** flotilla: the cluster the template's pod runs in (absent = local cluster). */
  readonly cluster?: string
  /** flotilla: the namespace the template's pod runs in (absent = the workflow's). */
  readonly namespace?: string
  readonly [key: string]: unknown
}

export interface PodGC {
  readonly strategy?: "OnPodCompletion" | "OnPodSuccess" | "OnWorkflowCompletion" | "OnWorkflowSuccess" | ""
  readonly labelSelector?: { readonly matchLabels?: Readonly<Record<string, string>>; readonly matchExpressions?: ReadonlyArray<unknown> }
  readonly deleteDelayDuration?: string
}

export interface WorkflowSpec {
  readonly entrypoint?: string
  readonly templates: ReadonlyArray<Template>
  readonly arguments?: Arguments
  readonly onExit?: string
  readonly hooks?: Readonly<Record<string, LifecycleHook>>
  readonly serviceAccountName?: string
  readonly parallelism?: number
  readonly activeDeadlineSeconds?: number
  readonly podGC?: PodGC
  readonly templateDefaults?: Readonly<Record<string, unknown>>
  readonly shutdown?: string
  readonly suspend?: boolean
  readonly [key: string]: unknown
}

export type NodePhase = "Pending" | "Running" | "Succeeded" | "Skipped" | "Failed" | "Error" | "Omitted"
export type NodeType = "Pod" | "Container" | "Steps" | "StepGroup" | "DAG" | "TaskGroup" | "Retry" | "Skipped" | "Suspend" | "HTTP" | "Plugin"
export type WorkflowPhase = "" | "Pending" | "Running" | "Succeeded" | "Failed" | "Error"

/** A node's outputs have the template's shape (upstream's NodeStatus.Outputs is an Outputs too). */
export type NodeOutputs = Outputs

/** Argo's NodeStatus JSON (the fields flotilla writes). */
export interface NodeStatus {
  readonly id: string
  readonly name: string
  readonly displayName: string
  readonly type: NodeType
  readonly templateName?: string
  readonly templateScope?: string
  readonly phase: NodePhase
  readonly boundaryID?: string
  readonly message?: string
  readonly startedAt?: string
  readonly finishedAt?: string
  readonly progress?: string
  readonly podIP?: string
  readonly hostNodeName?: string
  readonly nodeFlag?: { readonly hooked?: boolean; readonly retried?: boolean }
  readonly inputs?: Inputs
  readonly outputs?: NodeOutputs
  readonly children?: ReadonlyArray<string>
  readonly outboundNodes?: ReadonlyArray<string>
  readonly [key: string]: unknown
}

export interface Workflow {
  readonly apiVersion?: string
  readonly kind?: string
  readonly metadata: {
    readonly name: string
    readonly namespace: string
    readonly uid?: string
    readonly creationTimestamp?: string
    readonly labels?: Readonly<Record<string, string>>
    readonly annotations?: Readonly<Record<string, string>>
  }
  readonly spec: WorkflowSpec
  readonly status?: Readonly<Record<string, unknown>>
  /** The object as stored, for ownerReferences and pass-through. */
  readonly raw: KubeObject
}

export const fulfilledPhases: ReadonlySet<NodePhase> = new Set(["Succeeded", "Skipped", "Failed", "Error", "Omitted"])
export const isFulfilled = (phase: NodePhase | undefined): boolean => phase !== undefined && fulfilledPhases.has(phase)
export const isFailedOrError = (phase: NodePhase | undefined): boolean => phase === "Failed" || phase === "Error"
export const isWorkflowCompleted = (phase: unknown): boolean =>
  phase === "Succeeded" || phase === "Failed" || phase === "Error"

export type TemplateType = "Container" | "Script" | "Steps" | "DAG" | "Suspend" | "Resource" | "ContainerSet" | "Data" | "HTTP" | "Plugin"

export const templateTypeOf = (t: Template): TemplateType | undefined => {
  if (t.container !== undefined) return "Container"
  if (t.script !== undefined) return "Script"
  if (t.steps !== undefined) return "Steps"
  if (t.dag !== undefined) return "DAG"
  if (t.suspend !== undefined) return "Suspend"
  if (t.resource !== undefined) return "Resource"
  if (t.containerSet !== undefined) return "ContainerSet"
  if (t.data !== undefined) return "Data"
  if (t.http !== undefined) return "HTTP"
  if (t.plugin !== undefined) return "Plugin"
  return undefined
}

export const isPodTemplate = (t: Template): boolean => {
  const type = templateTypeOf(t)
  return type === "Container" || type === "Script"
}
