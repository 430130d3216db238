/**
 * A Workflow template as a Schema: every kind flotilla runs (container,
 * script, resource, steps, dag, suspend, data, http, plugin, containerSet),
 * with the calls of steps and DAG tasks, which may carry an inline template.
 *
 * Field names and types follow upstream's `Template`, `WorkflowStep`,
 * `DAGTask`, `ScriptTemplate`, `ResourceTemplate`... (workflow_types.go);
 * `cluster` and `namespace` are flotilla's. Kubernetes parts (the container's
 * resources, volumes, affinity...) stay open objects: the engine passes them
 * to pods as written.
 */
import { Schema, SchemaGetter } from "effect"
import {
  Any,
  TemplateRef,
  Arguments,
  Artifact,
  Inputs,
  IntOrString,
  KubeObject,
  LifecycleHooks,
  Memoize,
  Metadata,
  open,
  opt,
  Outputs,
  RetryStrategy,
  uniqueNames
} from "./common.js"

/** The template kinds, in the order upstream's `GetType` tries them. */
export const templateKinds = ["container", "script", "steps", "dag", "suspend", "resource", "containerSet", "data", "http", "plugin"] as const
export type TemplateKind = typeof templateKinds[number]

export const EnvVar = open({
  name: Schema.String,
  value: opt(Schema.String),
  valueFrom: opt(KubeObject)
})

/** A core/v1 Container: what flotilla reads is typed, the rest is kept as written. */
export const containerFields = {
  name: opt(Schema.String),
  image: opt(Schema.String),
  command: opt(Schema.Array(Schema.String)),
  // Upstream's Go reads strings only; YAML numbers (`args: [1]`) have always been accepted here.
  args: opt(Schema.Array(Schema.Union([Schema.String, Schema.Finite, Schema.Boolean]).annotate({ expected: "a string" }))),
  workingDir: opt(Schema.String),
  env: opt(Schema.Array(EnvVar)),
  envFrom: opt(Schema.Array(KubeObject)),
  ports: opt(Schema.Array(KubeObject)),
  resources: opt(KubeObject),
  volumeMounts: opt(Schema.Array(KubeObject)),
  securityContext: opt(KubeObject),
  imagePullPolicy: opt(Schema.String)
}

export const Container = open(containerFields)
export type Container = typeof Container.Type

// `source` may be absent or empty: upstream then runs the container as is (and warns).
export const ScriptTemplate = open({ ...containerFields, source: opt(Schema.String) })
export type ScriptTemplate = typeof ScriptTemplate.Type

export const UserContainer = open({ ...containerFields, mirrorVolumeMounts: opt(Schema.Boolean) })

export const ContainerNode = open({ ...containerFields, dependencies: opt(Schema.Array(Schema.String)) })

export const ContainerSetTemplate = open({
  containers: Schema.Array(ContainerNode),
  volumeMounts: opt(Schema.Array(KubeObject)),
  retryStrategy: opt(open({ duration: opt(Schema.String), retries: IntOrString }))
})

export const ResourceTemplate = open({
  action: Schema.String,
  mergeStrategy: opt(Schema.String),
  manifest: opt(Schema.String),
  manifestFrom: opt(open({ artifact: Artifact })),
  setOwnerReference: opt(Schema.Boolean),
  successCondition: opt(Schema.String),
  failureCondition: opt(Schema.String),
  flags: opt(Schema.Array(Schema.String))
})

export const SuspendTemplate = open({ duration: opt(IntOrString) })

export const DataTemplate = open({
  source: open({ artifactPaths: opt(open({ name: opt(Schema.String) })) }),
  transformation: Schema.Array(open({ expression: Schema.String }))
})

export const HTTPTemplate = open({
  method: opt(Schema.String),
  url: Schema.String,
  headers: opt(Schema.Array(open({ name: Schema.String, value: opt(Schema.String), valueFrom: opt(KubeObject) }))),
  timeoutSeconds: opt(Schema.Int),
  successCondition: opt(Schema.String),
  body: opt(Schema.String),
  bodyFrom: opt(open({ bytes: opt(Schema.String) })),
  insecureSkipVerify: opt(Schema.Boolean)
})

export const Sequence = open({
  count: opt(IntOrString),
  start: opt(IntOrString),
  end: opt(IntOrString),
  format: opt(Schema.String)
}).check(Schema.makeFilter((s) => {
  const has = (v: unknown) => v !== undefined && v !== null
  if (has(s.count) && has(s.end)) return "only one of count or end can be defined in withSequence"
  if (!has(s.count) && !has(s.end)) return "either count or end is required"
  return undefined
}))
export type Sequence = typeof Sequence.Type

export const ContinueOn = open({ error: opt(Schema.Boolean), failed: opt(Schema.Boolean) })

export { TemplateRef } from "./common.js"

/** What a step and a DAG task have in common: a call of a template. */
const callFields = {
  name: Schema.String,
  template: opt(Schema.String),
  inline: opt(Schema.suspend((): Schema.Codec<Template, TemplateEncoded> => Template)),
  arguments: opt(Arguments),
  templateRef: opt(TemplateRef),
  withItems: opt(Schema.Array(Any)),
  withParam: opt(Schema.String),
  withSequence: opt(Sequence),
  when: opt(Schema.String),
  continueOn: opt(ContinueOn),
  onExit: opt(Schema.String),
  hooks: opt(LifecycleHooks)
}

/** A call names what it runs: a template of its own workflow (or WorkflowTemplate), a `templateRef`, or an inline template. */
const callCheck = Schema.makeFilter((c: { readonly template?: unknown; readonly templateRef?: unknown; readonly inline?: unknown }) => {
  const has = (v: unknown) => v !== undefined && v !== null && v !== ""
  // upstream's validateTemplateHolder
  if (has(c.templateRef) && has(c.template)) return { path: ["template"], issue: "template name cannot be specified with templateRef" }
  if (!has(c.template) && !has(c.inline) && !has(c.templateRef)) return { path: ["template"], issue: "a template name is required" }
  return undefined
})

export const WorkflowStep = open(callFields).check(callCheck)
export type WorkflowStep = typeof WorkflowStep.Type

/** A step group: a list of steps, or upstream's `- steps: [...]` object form. */
const stepsOfGroup = <A>(g: ReadonlyArray<A> | { readonly steps: ReadonlyArray<A> }): ReadonlyArray<A> => Array.isArray(g) ? g : (g as { readonly steps: ReadonlyArray<A> }).steps

const StepGroup = Schema.Union([Schema.Array(WorkflowStep), open({ steps: Schema.Array(WorkflowStep) })])
  .annotate({ expected: "a list of steps" })
/** A step group as written; either form decodes as the plain list. */
export type ParallelStepsEncoded = typeof StepGroup.Encoded
export const ParallelSteps = StepGroup.pipe(Schema.decodeTo(Schema.toType(Schema.Array(WorkflowStep)), {
  decode: SchemaGetter.transform((g: typeof StepGroup.Type) => stepsOfGroup(g)),
  encode: SchemaGetter.passthrough()
}))
export type ParallelSteps = typeof ParallelSteps.Type

export const DAGTask = open({
  ...callFields,
  dependencies: opt(Schema.Array(Schema.String)),
  depends: opt(Schema.String)
}).check(callCheck)
export type DAGTask = typeof DAGTask.Type

export const DAGTemplate = open({
  target: opt(Schema.String),
  tasks: Schema.Array(DAGTask).check(uniqueNames("task")),
  failFast: opt(Schema.Boolean)
})
export type DAGTemplate = typeof DAGTemplate.Type

/** Step names are unique across all the groups of a template, as upstream's validator wants. */
const uniqueStepNames = Schema.makeFilter((groups: ReadonlyArray<ParallelSteps>) => {
  const seen = new Set<string>()
  const issues: Array<Schema.FilterIssue> = []
  groups.forEach((g, i) => {
    g.forEach((s, j) => {
      if (seen.has(s.name)) issues.push({ path: [i, j, "name"], issue: `duplicate step name "${s.name}"` })
      seen.add(s.name)
    })
  })
  return issues
})

const templateFields = {
  name: opt(Schema.String),
  inputs: opt(Inputs),
  outputs: opt(Outputs),
  metadata: opt(Metadata),
  container: opt(Container),
  script: opt(ScriptTemplate),
  steps: opt(Schema.Array(ParallelSteps).check(uniqueStepNames)),
  dag: opt(DAGTemplate),
  suspend: opt(SuspendTemplate),
  resource: opt(ResourceTemplate),
  containerSet: opt(ContainerSetTemplate),
  data: opt(DataTemplate),
  http: opt(HTTPTemplate),
  plugin: opt(KubeObject),
  daemon: opt(Schema.Boolean),
  nodeSelector: opt(Schema.Record(Schema.String, Schema.String)),
  affinity: opt(KubeObject),
  tolerations: opt(Schema.Array(KubeObject)),
  volumes: opt(Schema.Array(KubeObject)),
  initContainers: opt(Schema.Array(UserContainer)),
  sidecars: opt(Schema.Array(UserContainer)),
  archiveLocation: opt(KubeObject),
  activeDeadlineSeconds: opt(IntOrString),
  retryStrategy: opt(RetryStrategy),
  parallelism: opt(Schema.Int),
  failFast: opt(Schema.Boolean),
  schedulerName: opt(Schema.String),
  priorityClassName: opt(Schema.String),
  serviceAccountName: opt(Schema.String),
  automountServiceAccountToken: opt(Schema.Boolean),
  executor: opt(open({ serviceAccountName: opt(Schema.String) })),
  hostAliases: opt(Schema.Array(KubeObject)),
  securityContext: opt(KubeObject),
  podSpecPatch: opt(Schema.String),
  metrics: opt(KubeObject),
  synchronization: opt(KubeObject),
  memoize: opt(Memoize),
  timeout: opt(Schema.String),
  annotations: opt(Schema.Record(Schema.String, Schema.String)),
  /** flotilla: the cluster the template's pod runs in (absent = local cluster). */
  cluster: opt(Schema.String),
  /** flotilla: the namespace the template's pod runs in (absent = the workflow's). */
  namespace: opt(Schema.String)
}

const present = (v: unknown) => v !== undefined && v !== null

/** The kinds a template defines (exactly one for a valid template). */
export const kindsOf = (t: { readonly [k: string]: unknown }): ReadonlyArray<TemplateKind> => templateKinds.filter((k) => present(t[k]))

/** A template has exactly one kind (upstream's "template ... type is unknown" / "multiple template types"). */
const oneKind = Schema.makeFilter((t: { readonly name?: string | null | undefined; readonly [k: string]: unknown }) => {
  const kinds = kindsOf(t)
  const name = t.name ?? "(inline)"
  if (kinds.length === 0) return `template "${name}" has no type: it must define one of ${templateKinds.join(", ")}`
  if (kinds.length > 1) return `template "${name}" defines more than one type: ${kinds.join(", ")}`
  return undefined
})

const TemplateStruct = open(templateFields)

/** A template: inline in a step or task, or (with a name) in `spec.templates`. */
export interface Template extends Schema.Schema.Type<typeof TemplateStruct> {}
/** A template as written (optional fields may be `null`). */
export interface TemplateEncoded extends Schema.Codec.Encoded<typeof TemplateStruct> {}
export const Template: Schema.Codec<Template, TemplateEncoded> = TemplateStruct.check(oneKind)

/** A template of `spec.templates`: it has a name, which steps and tasks call it by. */
export interface NamedTemplate extends Template {
  readonly name: string
}
// A check rather than `Schema.refine`, so that the problem is reported at `.name`;
// the check is what makes the narrowed type true.
export const NamedTemplate = Template.check(Schema.makeFilter((t: Template) =>
  typeof t.name === "string" && t.name !== "" ? undefined : { path: ["name"], issue: "a template name is required" }
)) as Schema.Codec<Template, TemplateEncoded> as Schema.Codec<NamedTemplate, TemplateEncoded>

/** Upstream's `TemplateType` of a template (the first kind it defines). */
export const templateKindOf = (t: Template): TemplateKind | undefined => kindsOf(t)[0]
