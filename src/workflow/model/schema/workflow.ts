/**
 * The Workflow object (`argoproj.io/v1alpha1` `Workflow`) as a Schema: its
 * metadata and spec, as upstream's `Workflow` and `WorkflowSpec` have them;
 * `status` is the controller's and stays an open object here.
 */
import { Schema } from "effect"
import {
  Arguments,
  KubeObject,
  LifecycleHooks,
  Metadata,
  ObjectMeta,
  oneOf,
  open,
  opt,
  RetryStrategy,
  StringMap,
  uniqueNames
} from "./common.js"
import { Container, containerFields, NamedTemplate, Template } from "./template.js"

export const podGCStrategies = ["OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"] as const

export const PodGC = open({
  strategy: opt(Schema.Union([
    Schema.Literal(""),
    oneOf(podGCStrategies, (s) => `unknown strategy "${s}": must be one of ${podGCStrategies.join(", ")}`)
  ]).annotate({ expected: "a string" })),
  labelSelector: opt(KubeObject),
  deleteDelayDuration: opt(Schema.String)
})
export type PodGC = typeof PodGC.Type

export const TTLStrategy = open({
  secondsAfterCompletion: opt(Schema.Int),
  secondsAfterSuccess: opt(Schema.Int),
  secondsAfterFailure: opt(Schema.Int)
})
export type TTLStrategy = typeof TTLStrategy.Type

export const WorkflowMetadata = open({
  labels: opt(StringMap),
  annotations: opt(StringMap),
  labelsFrom: opt(Schema.Record(Schema.String, open({ expression: Schema.String })))
})

/**
 * `spec.templateDefaults`: a template whose fields are merged under every
 * template, so it needs no type of its own (and its container may lack what
 * the template gives).
 */
export const TemplateDefaults = open({
  metadata: opt(Metadata),
  container: opt(Container),
  script: opt(open({ ...containerFields, source: opt(Schema.String) })),
  retryStrategy: opt(RetryStrategy),
  podSpecPatch: opt(Schema.String),
  cluster: opt(Schema.String),
  namespace: opt(Schema.String)
})
export type TemplateDefaults = typeof TemplateDefaults.Type

/** `spec.workflowTemplateRef`: run a (Cluster)WorkflowTemplate's spec, merged under this one's. */
export const WorkflowTemplateRef = open({
  name: Schema.String.check(Schema.makeFilter((s: string) => s === "" ? "a WorkflowTemplate name is required" : undefined)),
  clusterScope: opt(Schema.Boolean)
})
export type WorkflowTemplateRef = typeof WorkflowTemplateRef.Type

export const WorkflowSpec = open({
  templates: Schema.Array(NamedTemplate).check(uniqueNames("template")),
  entrypoint: opt(Schema.String),
  arguments: opt(Arguments),
  serviceAccountName: opt(Schema.String),
  automountServiceAccountToken: opt(Schema.Boolean),
  executor: opt(open({ serviceAccountName: opt(Schema.String) })),
  volumes: opt(Schema.Array(KubeObject)),
  volumeClaimTemplates: opt(Schema.Array(KubeObject)),
  parallelism: opt(Schema.Int),
  artifactRepositoryRef: opt(KubeObject),
  suspend: opt(Schema.Boolean),
  nodeSelector: opt(StringMap),
  affinity: opt(KubeObject),
  tolerations: opt(Schema.Array(KubeObject)),
  imagePullSecrets: opt(Schema.Array(KubeObject)),
  hostNetwork: opt(Schema.Boolean),
  dnsPolicy: opt(Schema.String),
  dnsConfig: opt(KubeObject),
  onExit: opt(Schema.String),
  ttlStrategy: opt(TTLStrategy),
  activeDeadlineSeconds: opt(Schema.Int),
  priority: opt(Schema.Int),
  schedulerName: opt(Schema.String),
  podGC: opt(PodGC),
  podPriorityClassName: opt(Schema.String),
  hostAliases: opt(Schema.Array(KubeObject)),
  securityContext: opt(KubeObject),
  podSpecPatch: opt(Schema.String),
  podDisruptionBudget: opt(KubeObject),
  metrics: opt(KubeObject),
  shutdown: opt(Schema.String),
  workflowTemplateRef: opt(WorkflowTemplateRef),
  synchronization: opt(KubeObject),
  volumeClaimGC: opt(KubeObject),
  retryStrategy: opt(RetryStrategy),
  podMetadata: opt(Metadata),
  templateDefaults: opt(TemplateDefaults),
  archiveLogs: opt(Schema.Boolean),
  hooks: opt(LifecycleHooks),
  workflowMetadata: opt(WorkflowMetadata),
  artifactGC: opt(KubeObject)
})
export type WorkflowSpec = typeof WorkflowSpec.Type

const workflowFields = {
  apiVersion: opt(Schema.String),
  kind: opt(Schema.String),
  metadata: ObjectMeta.check(Schema.makeFilter((m) =>
    typeof m.name === "string" && m.name !== "" ? undefined : { path: ["name"], issue: "a name is required" }
  )),
  status: opt(KubeObject)
}

export const Workflow = open({ ...workflowFields, spec: WorkflowSpec })
export type Workflow = typeof Workflow.Type

/**
 * A Workflow without its spec: what changes at every status write. Decoding
 * checks it, and decodes the spec (which seldom changes, and costs most) on
 * its own against `WorkflowSpec`, so that a decoded spec can be reused.
 */
export const WorkflowEnvelope = open({ ...workflowFields, spec: Schema.optional(Schema.Unknown) })

export { Template }
