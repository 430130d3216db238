/**
 * The parts of a pod that say whose pod it is: the controller's
 * `workflows.argoproj.io/` labels and annotations (workflow, namespace, node,
 * cluster, instance...; other keys of that domain, such as upstream's
 * `workflows.argoproj.io/kill-cmd-<container>`, stay the user's),
 * the executor's containers (`init`, `wait`), the environment the executor
 * reads (`ARGO_*`) and the volumes it shares with `main`. The controller
 * writes them; a workflow may not, or one tenant's pod could pose as
 * another's, or hide from the controller's watch. A workflow that sets any of
 * them errors with the field path, before a pod is made.
 *
 * Checked where users write pod metadata and pod specs: `spec.podMetadata`,
 * `spec.templateDefaults.metadata`, each template's `metadata`, and
 * `podSpecPatch` (workflow and template level; checked again after
 * substitution, since a parameter may carry the patch).
 */
import * as YAML from "yaml"
import { argoKeyDomain, podIdentityKeys } from "../../util/argoKeys.js"
import { isRecord } from "../../util/records.js"

export const reservedKeyDomain = argoKeyDomain
/** The label and annotation keys the controller writes on pods and reads to know whose a pod is (util/argoKeys.ts spells them). */
export const reservedKeys: ReadonlySet<string> = new Set(podIdentityKeys)
/** The executor's own containers in every workflow pod. */
export const reservedContainerNames: ReadonlySet<string> = new Set(["init", "wait"])
/** Environment variables the executor reads to know its workflow, node and pod. */
export const reservedEnvPrefix = "ARGO_"
/** Volumes the executor shares with the main container. */
export const reservedVolumeNames: ReadonlySet<string> = new Set(["var-run-argo", "tmp-dir-argo", "argo-staging"])

export interface ReservedViolation {
  readonly path: string
  readonly message: string
}

/** One of the controller's keys, in any letter case (a label prefix is case-insensitive DNS). */
export const isReservedKey = (key: string): boolean => {
  const slash = key.indexOf("/")
  return slash >= 0 && reservedKeys.has(`${key.slice(0, slash).toLowerCase()}/${key.slice(slash + 1)}`)
}

const keyPath = (path: string, key: string) => `${path}[${JSON.stringify(key)}]`

/** Reserved keys among a metadata object's `labels` and `annotations`. */
export const reservedMetadataKeys = (metadata: unknown, path: string): ReadonlyArray<ReservedViolation> => {
  if (!isRecord(metadata)) return []
  const out: Array<ReservedViolation> = []
  for (const kind of ["labels", "annotations"] as const) {
    const map = metadata[kind]
    if (!isRecord(map)) continue
    for (const key of Object.keys(map)) {
      if (isReservedKey(key)) {
        out.push({
          path: keyPath(`${path}.${kind}`, key),
          message: `${kind === "labels" ? "label" : "annotation"} "${key}" is reserved for the controller (it says whose pod a pod is)`
        })
      }
    }
  }
  return out
}

/** A podSpecPatch parsed as upstream accepts it: JSON or YAML, a mapping. */
export const parsePodSpecPatch = (text: string): { readonly ok: true; readonly value: Record<string, unknown> } | { readonly ok: false; readonly error: string } => {
  let parsed: unknown
  try {
    // YAML 1.1, as upstream's Go parser reads it (0644 is octal, yes/no are booleans)
    const doc = YAML.parseDocument(text, { prettyErrors: false, logLevel: "error", version: "1.1" })
    if (doc.errors.length > 0) return { ok: false, error: `not JSON or YAML: ${doc.errors[0]!.message}` }
    parsed = doc.toJS({ maxAliasCount: 100 })
  } catch (e) {
    return { ok: false, error: `not JSON or YAML: ${(e as Error).message}` }
  }
  if (parsed === null || parsed === undefined) return { ok: true, value: {} }
  if (!isRecord(parsed)) return { ok: false, error: "must be a pod spec (a mapping)" }
  return { ok: true, value: parsed }
}

/** What a (parsed) podSpecPatch may not touch. */
export const reservedInPodSpecPatch = (patch: Record<string, unknown>, path: string): ReadonlyArray<ReservedViolation> => {
  const out: Array<ReservedViolation> = []
  for (const list of ["containers", "initContainers", "volumes"] as const) {
    if (list in patch && patch[list] === null) {
      out.push({ path: `${path}.${list}`, message: `may not be null: it would delete the executor's ${list === "volumes" ? "volumes" : "containers"}` })
    }
  }
  for (const list of ["containers", "initContainers", "ephemeralContainers"] as const) {
    const containers = patch[list]
    if (!Array.isArray(containers)) continue
    containers.forEach((c, i) => {
      if (!isRecord(c)) return
      const cp = `${path}.${list}[${i}]`
      if (typeof c["name"] === "string" && reservedContainerNames.has(c["name"])) {
        out.push({ path: `${cp}.name`, message: `container "${c["name"]}" is the executor's and may not be patched` })
      }
      for (const field of ["env", "volumeMounts", "command"] as const) {
        if (field in c && c[field] === null) {
          out.push({ path: `${cp}.${field}`, message: `may not be null: it would delete what the executor put there` })
        }
      }
      for (const envList of ["env", "envFrom"] as const) {
        const env = c[envList]
        if (!Array.isArray(env)) continue
        env.forEach((e, j) => {
          const name = isRecord(e) ? (envList === "env" ? e["name"] : e["prefix"]) : undefined
          if (typeof name === "string" && name.toUpperCase().startsWith(reservedEnvPrefix)) {
            out.push({ path: `${cp}.${envList}[${j}]`, message: `environment variable "${name}" is reserved for the executor (${reservedEnvPrefix}*)` })
          }
        })
      }
    })
  }
  const volumes = patch["volumes"]
  if (Array.isArray(volumes)) {
    volumes.forEach((v, i) => {
      if (isRecord(v) && typeof v["name"] === "string" && reservedVolumeNames.has(v["name"])) {
        out.push({ path: `${path}.volumes[${i}].name`, message: `volume "${v["name"]}" is the executor's and may not be patched` })
      }
    })
  }
  return out
}

/**
 * A podSpecPatch as written in the spec. A patch that only parses once its
 * `{{...}}` tags are substituted is checked then (see `buildPod`).
 */
export const checkPodSpecPatch = (value: unknown, path: string): ReadonlyArray<ReservedViolation> => {
  if (value === undefined || value === null) return []
  if (typeof value !== "string") return [{ path, message: "must be a string (a JSON or YAML pod spec)" }]
  if (value.trim() === "") return []
  if (value.includes("{{")) return [] // known once substituted: buildPod checks it then
  const parsed = parsePodSpecPatch(value)
  if (!parsed.ok) return [{ path, message: parsed.error }]
  return reservedInPodSpecPatch(parsed.value, path)
}

/** Every reserved field a workflow spec sets, with its path. */
export const reservedFieldsOfSpec = (spec: Record<string, unknown>): ReadonlyArray<ReservedViolation> => {
  const out: Array<ReservedViolation> = []
  out.push(...reservedMetadataKeys(spec["podMetadata"], "spec.podMetadata"))
  out.push(...checkPodSpecPatch(spec["podSpecPatch"], "spec.podSpecPatch"))
  const defaults = spec["templateDefaults"]
  if (isRecord(defaults)) {
    out.push(...reservedMetadataKeys(defaults["metadata"], "spec.templateDefaults.metadata"))
    out.push(...checkPodSpecPatch(defaults["podSpecPatch"], "spec.templateDefaults.podSpecPatch"))
  }
  const templates = spec["templates"]
  if (Array.isArray(templates)) {
    templates.forEach((t, i) => {
      if (!isRecord(t)) return
      out.push(...reservedMetadataKeys(t["metadata"], `spec.templates[${i}].metadata`))
      out.push(...checkPodSpecPatch(t["podSpecPatch"], `spec.templates[${i}].podSpecPatch`))
    })
  }
  return out
}
