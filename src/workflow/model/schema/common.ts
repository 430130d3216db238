/**
 * The building blocks of the Workflow schema that templates and the workflow
 * spec share: parameters, artifacts, arguments, inputs and outputs, retry
 * strategies, metadata. Field names and types follow upstream's Go types
 * (`pkg/apis/workflow/v1alpha1/workflow_types.go`, Argo v4).
 *
 * Shapes only, plus rules local to one object (a parameter has a name, a
 * retryPolicy is one of four). Rules that need the whole workflow (does this
 * template exist?) are not here: see `references.ts` and the linter.
 *
 * Every struct keeps unknown keys (upstream's CRD preserves unknown fields and
 * the engine passes pod fields through), and every optional field also takes
 * `null`, which is what YAML gives for `key:` with nothing after it and what Go
 * reads as absent.
 */
import { Option, Predicate, Schema, SchemaGetter, SchemaTransformation } from "effect"

/**
 * An optional field that may also be `null` (Go's `omitempty` pointer): a
 * `null` decodes as an absent key, so the decoded type has no nulls.
 */
export const opt = <S extends Schema.Top>(schema: S) =>
  Schema.optional(Schema.NullOr(schema)).pipe(Schema.decodeTo(
    Schema.optionalKey(Schema.toType(schema)),
    SchemaTransformation.transformOptional<S["Type"], S["Type"] | null | undefined>({
      decode: (o) => Option.filter(o, Predicate.isNotNullish),
      encode: (o) => o
    })
  ))

/** A struct that keeps the keys it does not name. */
export const open = <const Fields extends Schema.Struct.Fields>(fields: Fields) =>
  Schema.StructWithRest(Schema.Struct(fields), [Schema.Record(Schema.String, Schema.Unknown)])

/** Any JSON value (Kubernetes objects, items of withItems, plugin bodies). */
export const Any = Schema.Unknown

/** A Kubernetes object flotilla does not look into (affinity, tolerations, volumes...). */
export const KubeObject = Schema.Record(Schema.String, Schema.Unknown).annotate({ expected: "an object" })

export const StringMap = Schema.Record(Schema.String, Schema.String)

/** Upstream's `AnyString`: JSON strings, numbers and booleans all read as a string (`5` decodes as `"5"`). */
export const AnyString = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean]).annotate({ expected: "a string" }).pipe(
  Schema.decodeTo(Schema.String, {
    decode: SchemaGetter.transform((v: string | number | boolean) => String(v)),
    encode: SchemaGetter.passthrough()
  })
)

/** `intstr.IntOrString`. */
export const IntOrString = Schema.Union([Schema.Int, Schema.String]).annotate({ expected: "an integer or a string" })

/** A string that must be one of `values`; the message names the field's kind (`RetryPolicy`). */
export const oneOf = <const L extends ReadonlyArray<string>>(values: L, message: (value: string) => string) =>
  Schema.String.check(Schema.makeFilter((s: string) => values.includes(s) ? undefined : message(s))) as unknown as Schema.Codec<L[number]>

/** Names in a list must be unique: the second of two equal names is reported at `[i].name`. */
export const uniqueNames = <T extends { readonly name?: string | null | undefined }>(what: string) =>
  Schema.makeFilter((items: ReadonlyArray<T>) => {
    const seen = new Set<string>()
    const issues: Array<Schema.FilterIssue> = []
    items.forEach((item, i) => {
      const name = item.name
      if (typeof name !== "string") return
      if (seen.has(name)) issues.push({ path: [i, "name"], issue: `duplicate ${what} name "${name}"` })
      seen.add(name)
    })
    return issues
  })

export const Metadata = open({
  labels: opt(StringMap),
  annotations: opt(StringMap)
})
export type Metadata = typeof Metadata.Type

/** `ObjectMeta`, the parts a Workflow's metadata uses; the rest is kept. */
export const ObjectMeta = open({
  name: opt(Schema.String),
  generateName: opt(Schema.String),
  namespace: opt(Schema.String),
  uid: opt(Schema.String),
  resourceVersion: opt(Schema.String),
  creationTimestamp: opt(Schema.String),
  labels: opt(StringMap),
  annotations: opt(StringMap),
  finalizers: opt(Schema.Array(Schema.String)),
  ownerReferences: opt(Schema.Array(KubeObject))
})
export type ObjectMeta = typeof ObjectMeta.Type

export const ConfigMapKeySelector = open({
  name: opt(Schema.String),
  key: Schema.String,
  optional: opt(Schema.Boolean)
})

export const ValueFrom = open({
  path: opt(Schema.String),
  jsonPath: opt(Schema.String),
  jqFilter: opt(Schema.String),
  event: opt(Schema.String),
  parameter: opt(Schema.String),
  supplied: opt(KubeObject),
  configMapKeyRef: opt(ConfigMapKeySelector),
  default: opt(AnyString),
  expression: opt(Schema.String)
})
export type ValueFrom = typeof ValueFrom.Type

export const Parameter = open({
  name: Schema.String.check(Schema.makeFilter((s: string) => s === "" ? "a parameter name is required" : undefined)),
  default: opt(AnyString),
  value: opt(AnyString),
  valueFrom: opt(ValueFrom),
  globalName: opt(Schema.String),
  enum: opt(Schema.Array(AnyString)),
  description: opt(AnyString)
})
export type Parameter = typeof Parameter.Type

export const Parameters = Schema.Array(Parameter).check(uniqueNames("parameter"))

/** An artifact: its name and where it lives (s3, git, http, raw... kept as written). */
export const Artifact = open({
  name: Schema.String,
  path: opt(Schema.String),
  mode: opt(Schema.Int),
  from: opt(Schema.String),
  fromExpression: opt(Schema.String),
  archiveLogs: opt(Schema.Boolean),
  globalName: opt(Schema.String),
  archive: opt(KubeObject),
  optional: opt(Schema.Boolean),
  subPath: opt(Schema.String),
  recurseMode: opt(Schema.Boolean),
  deleted: opt(Schema.Boolean),
  artifactGC: opt(KubeObject),
  s3: opt(KubeObject),
  git: opt(KubeObject),
  http: opt(KubeObject),
  artifactory: opt(KubeObject),
  hdfs: opt(KubeObject),
  raw: opt(KubeObject),
  oss: opt(KubeObject),
  gcs: opt(KubeObject),
  azure: opt(KubeObject),
  plugin: opt(KubeObject)
})
export type Artifact = typeof Artifact.Type

export const Artifacts = Schema.Array(Artifact)

export const Arguments = open({
  parameters: opt(Parameters),
  artifacts: opt(Artifacts)
})
export type Arguments = typeof Arguments.Type

export const Inputs = open({
  parameters: opt(Parameters),
  artifacts: opt(Artifacts)
})
export type Inputs = typeof Inputs.Type

export const Outputs = open({
  parameters: opt(Parameters),
  artifacts: opt(Artifacts),
  result: opt(Schema.String),
  exitCode: opt(Schema.String)
})
export type Outputs = typeof Outputs.Type

export const retryPolicies = ["Always", "OnFailure", "OnError", "OnTransientError"] as const

export const Backoff = open({
  duration: opt(IntOrString),
  factor: opt(IntOrString),
  maxDuration: opt(IntOrString),
  cap: opt(IntOrString)
})
export type Backoff = typeof Backoff.Type

export const RetryStrategy = open({
  limit: opt(IntOrString),
  retryPolicy: opt(oneOf(retryPolicies, (p) => `"${p}" is not a valid RetryPolicy: must be one of ${retryPolicies.join(", ")}`)),
  backoff: opt(Backoff),
  affinity: opt(KubeObject),
  expression: opt(Schema.String)
})
export type RetryStrategy = typeof RetryStrategy.Type

/**
 * A call of a template of a WorkflowTemplate (or, with `clusterScope`, a
 * ClusterWorkflowTemplate) of the workflow's namespace: upstream's `TemplateRef`.
 */
export const TemplateRef = open({
  name: Schema.String.check(Schema.makeFilter((s: string) => s === "" ? "resource name is required" : undefined)),
  template: Schema.String.check(Schema.makeFilter((s: string) => s === "" ? "template name is required" : undefined)),
  clusterScope: opt(Schema.Boolean)
})
export type TemplateRef = typeof TemplateRef.Type

export const LifecycleHook = open({
  template: opt(Schema.String),
  arguments: opt(Arguments),
  templateRef: opt(TemplateRef),
  expression: opt(Schema.String)
})
export type LifecycleHook = typeof LifecycleHook.Type

export const LifecycleHooks = Schema.Record(Schema.String, LifecycleHook)

export const Memoize = open({
  key: Schema.String,
  cache: KubeObject,
  maxAge: opt(Schema.String)
})
