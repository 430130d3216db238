/**
 * What a CronWorkflow says and what the controller writes back, as upstream Argo reads and writes
 * them (pkg/apis/workflow/v1alpha1/cron_workflow_types.go, workflow/common/convert.go,
 * workflow/validate's CronWorkflow, workflow/cron/operator.go): the spec checked field by field
 * (a bad one is a SpecError naming the field), the Workflow a scheduled run creates, the
 * status's conditions and the `cronworkflow.*` variables of `when` and `stopStrategy`. Pure.
 */
import { Result } from "effect"
import type { KubeObject, OwnerReference } from "../../kube/api/Resources.js"
import { labelInstanceId } from "../../util/argoKeys.js"
import { isRecord } from "../../util/records.js"
import { evaluateBool, evaluateWhen, type Scope } from "../../workflow/expressions/index.js"
import { formatMetaTime, formatRfc3339, parseSchedule, type Schedule } from "./schedule.js"

/** On a workflow: the CronWorkflow that created it (its name). */
export const labelCronWorkflow = "workflows.argoproj.io/cron-workflow"
/** On a workflow: when its CronWorkflow scheduled it (RFC3339). */
export const annotationScheduledTime = "workflows.argoproj.io/scheduled-time"
/** On a CronWorkflow: `"true"` once its stopStrategy held; it is no longer scheduled. */
export const labelCronCompleted = "cronworkflows.argoproj.io/completed"
/** On a CronWorkflow: the schedules (with timezone) its last run used; a change means no catch-up run. */
export const annotationLastUsedSchedule = "cronworkflows.argoproj.io/last-used-schedule"

/** Upstream's limit: the workflow name appends `-<unix seconds>` and must fit 63 characters. */
export const maxCronNameLength = 52

/** CronWorkflow labels copied onto the workflows it creates (upstream's `labelsToPropagate`). */
const labelsToPropagate = [
  "workflows.argoproj.io/creator",
  "workflows.argoproj.io/creator-email",
  "workflows.argoproj.io/creator-preferred-username"
]

export type ConcurrencyPolicy = "Allow" | "Forbid" | "Replace"

export interface CronSpec {
  readonly schedules: ReadonlyArray<Schedule>
  /** Upstream's `GetScheduleWithTimezoneString`: what the last-used-schedule annotation holds. */
  readonly scheduleString: string
  readonly timeZone: string | undefined
  readonly concurrencyPolicy: ConcurrencyPolicy
  readonly suspend: boolean
  readonly startingDeadlineSeconds: number | undefined
  readonly successfulJobsHistoryLimit: number
  readonly failedJobsHistoryLimit: number
  readonly when: string
  readonly stopExpression: string | undefined
  readonly workflowSpec: Readonly<Record<string, unknown>>
  readonly workflowMetadata: Readonly<Record<string, unknown>> | undefined
}

export interface Condition {
  readonly type: string
  readonly status: string
  readonly message?: string
}

export interface ObjectReference {
  readonly kind: string
  readonly apiVersion: string
  readonly name: string
  readonly namespace: string
  readonly uid: string
  readonly resourceVersion?: string
}

export interface CronStatus {
  readonly active?: ReadonlyArray<ObjectReference> | null
  readonly lastScheduledTime?: string | null
  readonly conditions?: ReadonlyArray<Condition> | null
  readonly succeeded?: number
  readonly failed?: number
  readonly phase?: string
}

export const specOf = (cron: KubeObject): Record<string, unknown> => (isRecord(cron["spec"]) ? cron["spec"] : {})
export const statusOf = (cron: KubeObject): CronStatus => (isRecord(cron["status"]) ? cron["status"] as CronStatus : {})

const schedulesField = (spec: Record<string, unknown>): Result.Result<ReadonlyArray<readonly [string, string]>, string> => {
  const list = spec["schedules"]
  const single = spec["schedule"]
  const hasList = Array.isArray(list) && list.length > 0
  const hasSingle = typeof single === "string" && single !== ""
  if (list !== undefined && list !== null && !Array.isArray(list)) return Result.fail("spec.schedules: expected a list of cron schedules")
  if (hasList && hasSingle) return Result.fail("spec.schedule and spec.schedules: only one may be set (spec.schedule is upstream's older, single form)")
  if (single !== undefined && single !== null && typeof single !== "string") return Result.fail("spec.schedule: expected a string")
  if (hasSingle) return Result.succeed([["spec.schedule", single]])
  if (!hasList) return Result.fail("spec.schedules: cron workflow must have at least one schedule")
  const out: Array<readonly [string, string]> = []
  for (const [i, s] of list.entries()) {
    if (typeof s !== "string") return Result.fail(`spec.schedules[${i}]: expected a string`)
    out.push([`spec.schedules[${i}]`, s])
  }
  return Result.succeed(out)
}

const optionalInt = (spec: Record<string, unknown>, key: string): Result.Result<number | undefined, string> => {
  const v = spec[key]
  if (v === undefined || v === null) return Result.succeed(undefined)
  if (typeof v !== "number" || !Number.isInteger(v)) return Result.fail(`spec.${key}: expected an integer`)
  return Result.succeed(v)
}

/** The spec, or a SpecError message naming the field (upstream's `validate.CronWorkflow`, field by field). */
export const parseCronSpec = (cron: KubeObject): Result.Result<CronSpec, string> => {
  const name = cron.metadata.name ?? ""
  if (name.length > maxCronNameLength) {
    return Result.fail(`metadata.name: cron workflow name "${name}" must not be more than ${maxCronNameLength} characters long (currently ${name.length})`)
  }
  const spec = specOf(cron)
  const tz = spec["timezone"]
  if (tz !== undefined && tz !== null && typeof tz !== "string") return Result.fail("spec.timezone: expected a string")
  const timeZone = typeof tz === "string" && tz !== "" ? tz : undefined
  if (timeZone !== undefined) {
    const check = parseSchedule("@hourly", timeZone)
    if (Result.isFailure(check)) return Result.fail(`spec.timezone: invalid timezone "${timeZone}": unknown time zone ${timeZone}`)
  }
  const fields = schedulesField(spec)
  if (Result.isFailure(fields)) return Result.fail(fields.failure)
  const schedules: Array<Schedule> = []
  for (const [path, text] of fields.success) {
    const parsed = parseSchedule(text, timeZone)
    if (Result.isFailure(parsed)) return Result.fail(`${path}: cron schedule ${text} is malformed: ${parsed.failure}`)
    schedules.push(parsed.success)
  }
  const policy = spec["concurrencyPolicy"] ?? ""
  if (policy !== "" && policy !== "Allow" && policy !== "Forbid" && policy !== "Replace") {
    return Result.fail(`spec.concurrencyPolicy: '${String(policy)}' is not a valid concurrencyPolicy (Allow, Forbid or Replace)`)
  }
  const deadline = optionalInt(spec, "startingDeadlineSeconds")
  if (Result.isFailure(deadline)) return Result.fail(deadline.failure)
  if (deadline.success !== undefined && deadline.success < 0) return Result.fail("spec.startingDeadlineSeconds: startingDeadlineSeconds must be positive")
  const succeededLimit = optionalInt(spec, "successfulJobsHistoryLimit")
  if (Result.isFailure(succeededLimit)) return Result.fail(succeededLimit.failure)
  const failedLimit = optionalInt(spec, "failedJobsHistoryLimit")
  if (Result.isFailure(failedLimit)) return Result.fail(failedLimit.failure)
  const suspend = spec["suspend"] ?? false
  if (typeof suspend !== "boolean") return Result.fail("spec.suspend: expected a boolean")
  const when = spec["when"] ?? ""
  if (typeof when !== "string") return Result.fail("spec.when: expected a string")
  const stop = spec["stopStrategy"]
  let stopExpression: string | undefined
  if (stop !== undefined && stop !== null) {
    if (!isRecord(stop) || typeof stop["expression"] !== "string") return Result.fail("spec.stopStrategy.expression: expected a string")
    stopExpression = stop["expression"]
  }
  const workflowSpec = spec["workflowSpec"]
  if (!isRecord(workflowSpec)) return Result.fail("spec.workflowSpec: expected an object (the spec of the Workflow to run)")
  const metadata = spec["workflowMetadata"]
  if (metadata !== undefined && metadata !== null && !isRecord(metadata)) return Result.fail("spec.workflowMetadata: expected an object")
  const withTz = (s: string) => (timeZone !== undefined ? `CRON_TZ=${timeZone} ${s}` : s)
  return Result.succeed({
    schedules,
    scheduleString: fields.success.map(([, s]) => withTz(s)).join(","),
    timeZone,
    concurrencyPolicy: policy === "" ? "Allow" : policy,
    suspend,
    startingDeadlineSeconds: deadline.success,
    // upstream: a negative limit means the default
    successfulJobsHistoryLimit: succeededLimit.success !== undefined && succeededLimit.success >= 0 ? succeededLimit.success : 3,
    failedJobsHistoryLimit: failedLimit.success !== undefined && failedLimit.success >= 0 ? failedLimit.success : 1,
    when,
    stopExpression,
    workflowSpec,
    workflowMetadata: isRecord(metadata) ? metadata : undefined
  })
}

/** The schedule part of the spec (what the scheduler's timer depends on), to restart it only when that changes. */
export const scheduleKey = (cron: KubeObject): string => {
  const spec = specOf(cron)
  return JSON.stringify([spec["schedules"] ?? null, spec["schedule"] ?? null, spec["timezone"] ?? null, cron.metadata.uid ?? ""])
}

/** The workflow's name for a run scheduled at `scheduledMs`: deterministic, so a second create of it is AlreadyExists. */
export const childName = (cronName: string, scheduledMs: number): string => `${cronName}-${Math.floor(scheduledMs / 1000)}`

export const cronOwnerReference = (cron: KubeObject): OwnerReference => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "CronWorkflow",
  name: cron.metadata.name!,
  uid: cron.metadata.uid!,
  controller: true,
  blockOwnerDeletion: true
})

const stringMap = (u: unknown): Record<string, string> => {
  if (!isRecord(u)) return {}
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(u)) if (typeof v === "string") out[k] = v
  return out
}

/**
 * Upstream's `toWorkflow` (workflow/common/convert.go), shared by a scheduled run and by
 * `flotilla run` of a CronWorkflow: the workflow spec, the instance-id and cron-workflow labels,
 * `spec.workflowMetadata`'s labels, annotations and finalizers over the given ones, and the
 * CronWorkflow as controller owner when it is a stored object (has a uid).
 */
const toWorkflow = (
  cron: KubeObject,
  spec: CronSpec,
  meta: { readonly name?: string; readonly generateName?: string; readonly labels: Record<string, string>; readonly annotations: Record<string, string> }
): KubeObject => {
  const cronLabels = cron.metadata.labels ?? {}
  const labels: Record<string, string> = { ...meta.labels }
  if (cronLabels[labelInstanceId] !== undefined) labels[labelInstanceId] = cronLabels[labelInstanceId]
  labels[labelCronWorkflow] = cron.metadata.name!
  const workflowMetadata = spec.workflowMetadata
  Object.assign(labels, stringMap(workflowMetadata?.["labels"]))
  const annotations: Record<string, string> = { ...meta.annotations, ...stringMap(workflowMetadata?.["annotations"]) }
  const finalizers = Array.isArray(workflowMetadata?.["finalizers"])
    ? (workflowMetadata["finalizers"] as Array<unknown>).filter((f): f is string => typeof f === "string")
    : []
  return {
    apiVersion: cron.apiVersion ?? "argoproj.io/v1alpha1",
    kind: "Workflow",
    metadata: {
      ...(meta.name !== undefined ? { name: meta.name } : {}),
      ...(meta.generateName !== undefined ? { generateName: meta.generateName } : {}),
      ...(cron.metadata.namespace !== undefined ? { namespace: cron.metadata.namespace } : {}),
      labels,
      annotations,
      ...(finalizers.length > 0 ? { finalizers } : {}),
      ...(cron.metadata.uid !== undefined ? { ownerReferences: [cronOwnerReference(cron)] } : {})
    },
    spec: structuredClone(spec.workflowSpec)
  }
}

/** Upstream's `ConvertCronWorkflowToWorkflowWithProperties`: the Workflow one scheduled run creates. */
export const workflowFor = (cron: KubeObject, spec: CronSpec, scheduledMs: number): KubeObject => {
  const cronLabels = cron.metadata.labels ?? {}
  const labels: Record<string, string> = {}
  for (const key of labelsToPropagate) if (cronLabels[key] !== undefined) labels[key] = cronLabels[key]
  return toWorkflow(cron, spec, {
    name: childName(cron.metadata.name!, scheduledMs),
    labels,
    annotations: { [annotationScheduledTime]: formatRfc3339(scheduledMs, spec.timeZone) }
  })
}

/**
 * Upstream's `ConvertCronWorkflowToWorkflow`, what `argo submit --from cronwf/NAME` creates: named
 * by `generateName: <cron>-`, scheduled "now" (RFC3339 in the machine's zone, as upstream's
 * `time.Now()`), no creator labels of the CronWorkflow (the submitter's are upstream's business).
 */
export const submittedWorkflowFor = (cron: KubeObject, spec: CronSpec, nowMs: number): KubeObject =>
  toWorkflow(cron, spec, {
    generateName: `${cron.metadata.name!}-`,
    labels: {},
    annotations: { [annotationScheduledTime]: formatRfc3339(nowMs, undefined) }
  })

export const referenceTo = (wf: KubeObject): ObjectReference => ({
  kind: "Workflow",
  apiVersion: "argoproj.io/v1alpha1",
  name: wf.metadata.name!,
  namespace: wf.metadata.namespace!,
  uid: wf.metadata.uid!,
  ...(wf.metadata.resourceVersion ? { resourceVersion: wf.metadata.resourceVersion } : {})
})

/** The CronWorkflow that controls `wf` (its uid), if any: how children are grouped, as upstream's `groupWorkflows`. */
export const controllingCron = (wf: KubeObject): string | undefined =>
  wf.metadata.ownerReferences?.find((o) => o.controller === true && o.kind === "CronWorkflow")?.uid

export const workflowPhase = (wf: KubeObject): string =>
  isRecord(wf["status"]) && typeof wf["status"]["phase"] === "string" ? wf["status"]["phase"] : ""

/** Upstream's `WorkflowStatus.Fulfilled`. */
export const fulfilled = (phase: string): boolean => phase === "Succeeded" || phase === "Failed" || phase === "Error"

export const finishedAtMs = (wf: KubeObject): number => {
  const at = isRecord(wf["status"]) ? wf["status"]["finishedAt"] : undefined
  const ms = typeof at === "string" ? Date.parse(at) : Number.NaN
  return Number.isNaN(ms) ? 0 : ms
}

// Conditions --------------------------------------------------------------------------------------

export const upsertCondition = (conditions: ReadonlyArray<Condition>, condition: Condition): Array<Condition> => {
  const out = conditions.filter((c) => c.type !== condition.type)
  out.push(condition)
  return out
}

export const removeCondition = (conditions: ReadonlyArray<Condition>, type: string): Array<Condition> =>
  conditions.filter((c) => c.type !== type)

// Expressions -------------------------------------------------------------------------------------

/** Upstream's `expressionEnv`: the `cronworkflow.*` variables, flat as `when`'s `{{...}}` tags name them. */
export const cronScope = (cron: KubeObject, forExpr: boolean): Scope => {
  const status = statusOf(cron)
  const labels = cron.metadata.labels ?? {}
  const annotations = cron.metadata.annotations ?? {}
  const scope = new Map<string, unknown>([
    ["cronworkflow.name", cron.metadata.name ?? ""],
    ["cronworkflow.namespace", cron.metadata.namespace ?? ""],
    ["cronworkflow.labels", labels],
    ["cronworkflow.annotations", annotations],
    ["cronworkflow.failed", status.failed ?? 0],
    ["cronworkflow.succeeded", status.succeeded ?? 0],
    ["cronworkflow.lastScheduledTime", status.lastScheduledTime ?? null]
  ])
  // (in an expression `labels.json` would shadow the `labels` map: upstream keeps them apart there)
  if (!forExpr) {
    scope.set("cronworkflow.labels.json", JSON.stringify(labels))
    scope.set("cronworkflow.annotations.json", JSON.stringify(annotations))
  }
  return scope
}

/** `spec.when`: `{{cronworkflow.*}}` substituted, then govaluate, as upstream's `evalWhen`. */
export const evaluateCronWhen = (cron: KubeObject, when: string): Result.Result<boolean, string> => {
  if (when === "") return Result.succeed(true)
  const r = evaluateWhen(when, cronScope(cron, false))
  return r.ok ? Result.succeed(r.value) : Result.fail(r.error.message)
}

/** `spec.stopStrategy.expression` (expr-lang over `cronworkflow.*`), as upstream's `checkStopingCondition`. */
export const evaluateStop = (cron: KubeObject, expression: string | undefined): Result.Result<boolean, string> => {
  if (expression === undefined) return Result.succeed(false)
  const r = evaluateBool(expression, cronScope(cron, true))
  return r.ok ? Result.succeed(r.value) : Result.fail(`failed to evaluate stop expression: ${r.error.message}`)
}

export { formatMetaTime }
