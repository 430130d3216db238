/**
 * The Argo Workflow model (argoproj.io/v1alpha1) as flotilla's engine reads it.
 *
 * The types are structural views over plain JSON: templates, containers and
 * pod-level fields are passed through to pods unchanged, so every field a
 * user wrote survives even when flotilla does not know it. Only the fields the
 * engine interprets are named here.
 */
import type { KubeObject } from "../../kube/api/Resources.js"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

/*
 * The spec's types are the Workflow Schema's decoded types (schema/): one
 * source for decoding, linting and the engine. Decoding has already turned
 * `null` fields into absent ones, numbers and booleans of `AnyString` fields
 * into strings, and both forms of a step group into a list.
 */
export type {
  Arguments,
  Artifact,
  Backoff,
  Inputs,
  LifecycleHook,
  Metadata,
  Outputs,
  Parameter,
  RetryStrategy,
  ValueFrom
} from "./schema/common.js"
export type { Container, DAGTask as DagTask, DAGTemplate as DagTemplate, ScriptTemplate, Sequence, Template, WorkflowStep } from "./schema/template.js"
export type { PodGC, TemplateDefaults, WorkflowSpec } from "./schema/workflow.js"
import type { Inputs, Outputs } from "./schema/common.js"
import type { DAGTask, Template, WorkflowStep } from "./schema/template.js"
import type { WorkflowSpec } from "./schema/workflow.js"

export type RetryPolicy = "Always" | "OnFailure" | "OnError" | "OnTransientError"

/** What steps and DAG tasks have in common: a call of a template. */
export type TemplateCall = WorkflowStep | DAGTask

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

/** The inline template a step's or task's call carries, if it names neither a template nor a `templateRef`. */
export const inlineOf = (call: TemplateCall | undefined): Template | undefined => {
  if (call === undefined) return undefined
  if (call.template !== undefined && call.template !== "") return undefined
  if (call.templateRef !== undefined && call.templateRef !== null) return undefined
  return call.inline ?? undefined
}
