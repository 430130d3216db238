/**
 * `workflow-controller-configmap`, read the way Argo reads it: every key at the
 * top level holds a YAML string, or everything is nested under the old single
 * `config` key (both forms are accepted, top-level keys win). Unknown keys are
 * kept so the configmap of an existing Argo install loads unchanged.
 *
 * A malformed key is reported with the configmap and key named, and the
 * controller falls back to the default for that key rather than refusing to
 * start: one typo must not take every workflow down.
 */
import { type HttpAddressPolicy, strictPolicy } from "./httpPolicy.js"
import { Schema } from "effect"
import * as YAML from "yaml"
import type { ImageEntrypoint } from "../images/ImageEntrypoints.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { validateLabelValue } from "../kube/api/Validation.js"
import { type ArtifactRepository, parseArtifactRepository } from "../workflow/engine/artifactRepository.js"
import { defaultEngineLimits, type EngineLimitsInput } from "../workflow/engine/limits.js"
import { inClusterName } from "../workflow/engine/targeting.js"
import { isRecord } from "../util/records.js"

export { type ImageEntrypoint, lookupImage } from "../images/ImageEntrypoints.js"

export interface ControllerConfig {
  /** This cluster's unique name (key `cluster`). Pods carry it as `workflows.argoproj.io/cluster`. */
  readonly cluster: string
  /** Key `namespace`: only workflows in this namespace are managed (undefined = all). */
  readonly namespace?: string
  readonly instanceId?: string
  readonly executorImage: string
  readonly images: Readonly<Record<string, ImageEntrypoint>>
  /** Key `parallelism`: running workflows at most (0 = unlimited). */
  readonly parallelism: number
  /** Key `namespaceParallelism`: running workflows of one namespace at most (0 = unlimited). */
  readonly namespaceParallelism: number
  /** Opt-in for `insecure-skip-tls-verify` in users' kubeconfig secrets (key `userKubeconfig`). */
  readonly allowInsecureSkipTlsVerify: boolean
  /** Key `limits` (flotilla's own): overrides of the engine's bounds on one workflow. */
  readonly limits: EngineLimitsInput
  /** Key `workflowDefaults`, merged under every workflow's spec. */
  readonly workflowDefaults?: Readonly<Record<string, unknown>>
  /** Key `httpTemplates` (flotilla's own): where http templates' requests may go (httpPolicy.ts); default neither local nor private addresses. */
  readonly httpTemplates: HttpAddressPolicy
  /**
   * Key `artifactRepository`: where artifacts go when a workflow names no repository (S3 only;
   * workflow/engine/artifactRepository.ts). Absent: none configured (or the key was malformed).
   */
  readonly artifactRepository?: ArtifactRepository
  /**
   * Key `metricsConfig.metricsTTL` (upstream's `MetricsTTL`: `<n>s|m|h|d`): custom metric series
   * not updated for this long are dropped, checked every as long (observability/CustomMetrics.ts).
   * 0 (the default, as upstream): never.
   */
  readonly metricsTtlMs: number
  /** Everything else, as parsed, for keys flotilla passes through. */
  readonly raw: Readonly<Record<string, unknown>>
}

export class ConfigMapError extends Schema.TaggedError<ConfigMapError>()("ConfigMapError", {
  configMap: Schema.String,
  key: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `configmap ${this.configMap} key "${this.key}": ${this.detail}`
  }
}

export const defaultExecutorImage = "quay.io/argoproj/argoexec:v3.6.19"
/** The name when `cluster` is unset; the multi-cluster set-up tells operators to set it. */
export const defaultClusterName = inClusterName

/**
 * Keys that say which pods are this controller's: with a wrong value in them it
 * would claim (and sweep) another controller's pods, so the controller does not
 * start rather than fall back to the default.
 */
export const identityKeys: ReadonlyArray<string> = ["cluster", "instanceID"]

export const defaults: ControllerConfig = {
  cluster: defaultClusterName,
  executorImage: defaultExecutorImage,
  images: {},
  parallelism: 0,
  namespaceParallelism: 0,
  allowInsecureSkipTlsVerify: false,
  limits: {},
  httpTemplates: strictPolicy,
  metricsTtlMs: 0,
  raw: {}
}

const parseValue = (text: string): unknown => {
  const doc = YAML.parseDocument(text, { prettyErrors: false })
  if (doc.errors.length > 0) throw new Error(doc.errors[0]!.message)
  return doc.toJS()
}

/**
 * Parses the configmap's `data`. Returns the config and every problem found;
 * problems never throw away the keys that were fine.
 */
export const parseControllerConfig = (
  configMap: KubeObject | undefined
): { readonly config: ControllerConfig; readonly errors: ReadonlyArray<ConfigMapError> } => {
  const name = configMap
    ? `${configMap.metadata.namespace ?? ""}/${configMap.metadata.name ?? ""}`
    : "workflow-controller-configmap"
  const data = (configMap?.["data"] ?? {}) as Record<string, unknown>
  const errors: Array<ConfigMapError> = []
  const values: Record<string, unknown> = {}

  if (typeof data["config"] === "string") {
    try {
      const nested = parseValue(data["config"])
      if (isRecord(nested)) Object.assign(values, nested)
      else if (nested !== null && nested !== undefined) {
        errors.push(new ConfigMapError({ configMap: name, key: "config", detail: "must be a YAML mapping" }))
      }
    } catch (e) {
      errors.push(new ConfigMapError({ configMap: name, key: "config", detail: `invalid YAML: ${(e as Error).message}` }))
    }
  }
  for (const [key, value] of Object.entries(data)) {
    if (key === "config" || typeof value !== "string") continue
    try {
      values[key] = parseValue(value)
    } catch (e) {
      errors.push(new ConfigMapError({ configMap: name, key, detail: `invalid YAML: ${(e as Error).message}` }))
    }
  }

  const str = (key: string): string | undefined => {
    const v = values[key]
    if (v === undefined || v === null || v === "") return undefined
    if (typeof v === "string" || typeof v === "number") return String(v)
    errors.push(new ConfigMapError({ configMap: name, key, detail: `must be a string, got ${typeof v}` }))
    return undefined
  }

  const images: Record<string, ImageEntrypoint> = {}
  if (values["images"] !== undefined && values["images"] !== null) {
    if (!isRecord(values["images"])) {
      errors.push(new ConfigMapError({ configMap: name, key: "images", detail: "must map image names to {cmd, args}" }))
    } else {
      for (const [image, entry] of Object.entries(values["images"])) {
        const isStrings = (v: unknown) => v === undefined || (Array.isArray(v) && v.every((s) => typeof s === "string"))
        if (!isRecord(entry) || !isStrings(entry["cmd"]) || !isStrings(entry["args"])) {
          errors.push(
            new ConfigMapError({ configMap: name, key: `images.${image}`, detail: "must be {cmd: [strings], args: [strings]}" })
          )
          continue
        }
        images[image] = {
          ...(entry["cmd"] ? { cmd: entry["cmd"] as Array<string> } : {}),
          ...(entry["args"] ? { args: entry["args"] as Array<string> } : {})
        }
      }
    }
  }

  const count = (key: "parallelism" | "namespaceParallelism"): number => {
    if (values[key] === undefined) return 0
    const p = Number(values[key])
    if (Number.isInteger(p) && p >= 0) return p
    errors.push(new ConfigMapError({ configMap: name, key, detail: "must be a non-negative integer" }))
    return 0
  }
  const parallelism = count("parallelism")
  const namespaceParallelism = count("namespaceParallelism")

  const executor = values["executor"]
  const executorImage = isRecord(executor) && typeof executor["image"] === "string"
    ? executor["image"]
    : defaultExecutorImage

  const userKubeconfig = values["userKubeconfig"]
  const allowInsecureSkipTlsVerify = isRecord(userKubeconfig) && userKubeconfig["allowInsecureSkipTlsVerify"] === true

  const limits = parseLimits(values["limits"], (key, detail) => errors.push(new ConfigMapError({ configMap: name, key, detail })))

  const workflowDefaults = isRecord(values["workflowDefaults"]) ? values["workflowDefaults"] : undefined

  const httpTemplates = parseHttpTemplates(values["httpTemplates"], (detail) => errors.push(new ConfigMapError({ configMap: name, key: "httpTemplates", detail })))
  // one problem per bad field, each named (artifactRepository.s3.bucket...); a bad repository is none
  const repository = parseArtifactRepository(values["artifactRepository"], "artifactRepository")
  for (const p of repository.problems) errors.push(new ConfigMapError({ configMap: name, key: p.path, detail: p.detail }))
  const artifactRepository = repository.repository
  const metricsTtlMs = parseMetricsTtl(values["metricsConfig"], (key, detail) => errors.push(new ConfigMapError({ configMap: name, key, detail })))
  const namespace = str("namespace")
  /** Keys whose value ends up in pod labels and label selectors (`@in-cluster` is written as `in-cluster`). */
  const labelValue = (key: string): string | undefined => {
    const value = str(key)
    if (value === undefined) return undefined
    const bad = value === inClusterName ? undefined : validateLabelValue(value)
    if (bad === undefined) return value
    errors.push(new ConfigMapError({ configMap: name, key, detail: `"${value}" is not a valid label value: ${bad}` }))
    return undefined
  }
  const cluster = labelValue("cluster")
  const instanceId = labelValue("instanceID")

  return {
    config: {
      cluster: cluster ?? defaultClusterName,
      ...(namespace ? { namespace } : {}),
      ...(instanceId ? { instanceId } : {}),
      executorImage,
      images,
      parallelism,
      namespaceParallelism,
      allowInsecureSkipTlsVerify,
      limits,
      httpTemplates,
      metricsTtlMs,
      ...(workflowDefaults ? { workflowDefaults } : {}),
      ...(artifactRepository ? { artifactRepository } : {}),
      raw: values
    },
    errors
  }
}

/**
 * Key `limits`: a mapping of the engine's bounds (`maxNodes`, `maxLoopItems`,
 * `maxDepth`, `maxStatusBytes`, `maxReconcileSteps`) and `expression`
 * (`maxSteps`, `maxStringLength`, `maxCollectionLength`), each a positive
 * integer. A bad entry is reported and keeps its default; the others apply.
 */
const parseLimits = (value: unknown, report: (key: string, detail: string) => void): EngineLimitsInput => {
  if (value === undefined || value === null) return {}
  if (!isRecord(value)) {
    report("limits", "must be a mapping of limit names to positive integers")
    return {}
  }
  const pick = (from: Record<string, unknown>, known: object, prefix: string, skip: ReadonlySet<string>) => {
    const out: Record<string, number> = {}
    for (const [key, v] of Object.entries(from)) {
      if (skip.has(key)) continue
      if (!(key in known)) {
        report(`${prefix}.${key}`, `unknown limit (known: ${Object.keys(known).filter((k) => !skip.has(k)).join(", ")})`)
      } else if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
        report(`${prefix}.${key}`, `must be a positive integer, got ${JSON.stringify(v)}`)
      } else out[key] = v
    }
    return out
  }
  const top = pick(value, defaultEngineLimits, "limits", new Set(["expression"]))
  const expressionValue = value["expression"]
  let expression: Record<string, number> | undefined
  if (expressionValue !== undefined && expressionValue !== null) {
    if (isRecord(expressionValue)) expression = pick(expressionValue, defaultEngineLimits.expression, "limits.expression", new Set())
    else report("limits.expression", "must be a mapping of limit names to positive integers")
  }
  return { ...top, ...(expression ? { expression } : {}) }
}

/** Key `httpTemplates`: `allowLoopbackAndLinkLocal` and `allowPrivateNetworks`, booleans (default false). */
const parseHttpTemplates = (value: unknown, problem: (detail: string) => void): HttpAddressPolicy => {
  if (value === undefined) return strictPolicy
  if (!isRecord(value)) {
    problem("must be a mapping with allowLoopbackAndLinkLocal and allowPrivateNetworks")
    return strictPolicy
  }
  const flag = (key: keyof HttpAddressPolicy): boolean => {
    const v = value[key]
    if (v === undefined || typeof v === "boolean") return v === true
    problem(`${key} must be true or false`)
    return false
  }
  for (const key of Object.keys(value)) {
    if (key !== "allowLoopbackAndLinkLocal" && key !== "allowPrivateNetworks") problem(`unknown key ${key}`)
  }
  return { allowLoopbackAndLinkLocal: flag("allowLoopbackAndLinkLocal"), allowPrivateNetworks: flag("allowPrivateNetworks") }
}

const ttlUnits: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * Key `metricsConfig`, its `metricsTTL` only (the other fields are upstream's metrics server's):
 * a string as upstream's `config.TTL` reads it, an integer with `s`, `m`, `h` or `d` ("10m",
 * "1d"), or empty for 0. Anything else is reported and the TTL stays 0 (never).
 */
const parseMetricsTtl = (value: unknown, report: (key: string, detail: string) => void): number => {
  if (value === undefined || value === null) return 0
  if (!isRecord(value)) {
    report("metricsConfig", "must be a mapping")
    return 0
  }
  const ttl = value["metricsTTL"]
  if (ttl === undefined || ttl === null || ttl === "") return 0
  const m = typeof ttl === "string" ? /^(\d+)([smhd])$/.exec(ttl.trim()) : null
  if (m === null) {
    report("metricsConfig.metricsTTL", `must be a duration such as "10m", "1h" or "1d", got ${JSON.stringify(ttl)}`)
    return 0
  }
  return Number(m[1]) * ttlUnits[m[2]!]!
}
