/**
 * Artifacts, the controller's half (upstream's executor, or flotilla's embedded
 * driver, moves the bytes): which repository a workflow's artifacts go to
 * (`status.artifactRepositoryRef`, resolved once), binding a call's artifacts
 * to the callee's inputs (`common.ProcessArgs`), resolving `from` /
 * `fromExpression` against the outputs of earlier steps and tasks and the
 * workflow's global outputs (`wfScope.resolveArtifact`), the `archiveLocation`
 * a pod's template carries (`addArchiveLocation`, `IsArchiveLogs`, the
 * repository's keyFormat substituted), and output artifacts with a
 * `globalName` (`addArtifactToGlobalScope`).
 *
 * An artifact's location is data in the node's status, so a pod in one cluster
 * reads the key a pod in another cluster wrote: nothing here knows clusters.
 * Never any I/O: the `artifact-repositories` ConfigMap is read by the
 * controller when the engine asks for it (configMapParams.ts).
 */
import * as YAML from "yaml"
import { isRecord } from "../../util/records.js"
import type { Artifact, Template, TemplateCall } from "../model/Workflow.js"
import {
  archiveLocationOf,
  type ArtifactRepository,
  type ArtifactRepositoryRefStatus,
  joinKey,
  parseArtifactRepository,
  problemsMessage
} from "./artifactRepository.js"
import { invalidConfigMapName, readConfigMap, readControllerConfigMap } from "./configMapParams.js"
import { type Failure, isFailure, type Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { evaluate, type Scope, substitute, substituteTemplate } from "./scope.js"

/** The ConfigMap `spec.artifactRepositoryRef` names when it names none. */
export const defaultRepositoriesConfigMap = "artifact-repositories"
/** Its annotation naming the default key. */
export const annotationDefaultRepository = "workflows.argoproj.io/default-artifact-repository"

/** The executor's mount for artifact credentials, one directory per Secret (upstream's `SecretVolMountPath`). */
export const secretVolMountPath = "/argo/secret"
/** Where init loads input artifacts, shared with main through the `input-artifacts` volume. */
export const executorArtifactBaseDir = "/argo/inputs/artifacts"
/** Where init and wait see main's volumes. */
export const executorMainFilesystemDir = "/mainctrfs"

/** The location kinds upstream knows (an artifact has at most one). */
const locationKinds = ["s3", "git", "http", "artifactory", "hdfs", "raw", "oss", "gcs", "azure", "plugin"] as const
/** The kinds flotilla's runtimes move. */
const supportedKinds = new Set<string>(["s3", "http", "raw"])

const record = (v: unknown): Record<string, unknown> | undefined => isRecord(v) ? v : undefined
const str = (v: unknown): string => typeof v === "string" ? v : ""

/** The kind of an artifact's location, or undefined when it has none. */
export const locationKind = (art: Artifact): string | undefined =>
  locationKinds.find((k) => art[k] !== undefined && art[k] !== null)

/** Upstream's `HasLocation`: a location complete enough to read or write without the repository. */
export const hasLocation = (art: { readonly [k: string]: unknown }): boolean => {
  const s3 = record(art["s3"])
  if (s3 !== undefined) return str(s3["bucket"]) !== "" && str(s3["key"]) !== "" && str(s3["endpoint"]) !== ""
  if (record(art["raw"]) !== undefined) return true
  const http = record(art["http"])
  if (http !== undefined) return str(http["url"]) !== ""
  const git = record(art["git"])
  if (git !== undefined) return str(git["repo"]) !== ""
  return locationKinds.some((k) => k !== "s3" && k !== "raw" && k !== "http" && k !== "git" && record(art[k]) !== undefined)
}

/** Upstream's `HasKey`: a key that the repository completes (key-only artifacts). */
export const hasKey = (art: { readonly [k: string]: unknown }): boolean => {
  for (const k of locationKinds) {
    const loc = record(art[k])
    if (loc !== undefined && (str(loc["key"]) !== "" || str(loc["path"]) !== "" && k === "hdfs")) return true
  }
  return false
}

export const hasLocationOrKey = (art: Artifact): boolean => hasLocation(art) || hasKey(art)

// ---------------------------------------------------------------------------------------------
// The repository

const resolved = new WeakMap<OperationState, { readonly repository: ArtifactRepository | undefined } | Failure | "pending">()

/**
 * The workflow's artifact repository (upstream's v4.0.5 `artifactRepositories.Resolve`): the one
 * recorded in `status.artifactRepositoryRef` once resolved; else, with `spec.artifactRepositoryRef`,
 * its ConfigMap (`artifact-repositories` when it names none) in the workflow's namespace, then in
 * the controller's namespace (`EngineConfig.controllerNamespace`): its key, else the ConfigMap's
 * `workflows.argoproj.io/default-artifact-repository` annotation, else "" (which no ConfigMap has);
 * a ConfigMap not found or missing the key means the next place, and none found is an error naming
 * the ConfigMap, the places and the key; without a ref, the namespace's `artifact-repositories`
 * when its annotation names a key it has, else the controller configmap's `artifactRepository`.
 * "pending" while a ConfigMap is being read (the controller's namespace's through a request of its
 * own, `EngineOutput.needControllerConfigMaps`). A ConfigMap name that is no valid name (a `/` in
 * it, say) is an error, never read (upstream's Get refuses it).
 */
export const repositoryOf = (op: OperationState): { readonly repository: ArtifactRepository | undefined } | Failure | "pending" => {
  const known = resolved.get(op)
  if (known !== undefined) return known
  const r = resolveRepository(op)
  if (r !== "pending") resolved.set(op, r)
  return r
}

const resolveRepository = (op: OperationState): { readonly repository: ArtifactRepository | undefined } | Failure | "pending" => {
  const stored = record(op.status["artifactRepositoryRef"])
  if (stored !== undefined) {
    if (stored["artifactRepository"] !== undefined) {
      const parsed = parseArtifactRepository(stored["artifactRepository"], "status.artifactRepositoryRef.artifactRepository")
      if (parsed.repository === undefined) return { error: problemsMessage(parsed.problems) }
      return { repository: parsed.repository }
    }
    if (stored["default"] === true) return { repository: op.config.artifactRepository }
  }
  const ref = record(op.wf.spec.artifactRepositoryRef)
  const namespace = op.wf.metadata.namespace
  const configMap = str(ref?.["configMap"]) || defaultRepositoriesConfigMap
  const invalidName = invalidConfigMapName(configMap)
  if (invalidName !== undefined) return { error: `spec.artifactRepositoryRef.configMap: ${invalidName}` }
  const read = readConfigMap(op, configMap)
  if (read === "pending") return "pending"
  const record_ = (status: ArtifactRepositoryRefStatus) => {
    op.status["artifactRepositoryRef"] = status
  }
  if (ref === undefined) {
    const key = read.found ? read.annotations?.[annotationDefaultRepository] : undefined
    if (!read.found || key === undefined || read.data[key] === undefined) {
      record_({ default: true, ...(op.config.artifactRepository !== undefined ? { artifactRepository: op.config.artifactRepository } : {}) })
      return { repository: op.config.artifactRepository }
    }
    const repository = repositoryIn(configMap, key, read.data[key])
    if (isFailure(repository)) return repository
    record_({ namespace, configMap, key, artifactRepository: repository })
    return { repository }
  }
  const at = "spec.artifactRepositoryRef"
  const places = [namespace, op.config.controllerNamespace].filter((n, i, all): n is string =>
    n !== undefined && n !== "" && all.indexOf(n) === i
  )
  const misses: Array<string> = []
  for (const [i, place] of places.entries()) {
    const here = i === 0 ? read : readControllerConfigMap(op, configMap)
    if (here === "pending") return "pending"
    if (!here.found) {
      misses.push(`ConfigMap "${configMap}" not found in namespace "${place}"`)
      continue
    }
    const key = str(ref["key"]) || here.annotations?.[annotationDefaultRepository] || ""
    const value = here.data[key]
    if (value === undefined) {
      misses.push(`config map missing key "${key}" (ConfigMap "${configMap}" in namespace "${place}")`)
      continue
    }
    const repository = repositoryIn(configMap, key, value)
    if (isFailure(repository)) return { error: `${repository.error} (namespace "${place}")` }
    record_({ namespace: place, configMap, key, artifactRepository: repository })
    return { repository }
  }
  return { error: `${at}: failed to find any artifact repository: ${misses.join("; ")}` }
}

const repositoryIn = (configMap: string, key: string, text: string): ArtifactRepository | Failure => {
  const where = `ConfigMap "${configMap}" key "${key}"`
  let value: unknown
  try {
    const doc = YAML.parseDocument(text, { prettyErrors: false })
    if (doc.errors.length > 0) return { error: `${where}: invalid YAML: ${doc.errors[0]!.message}` }
    value = doc.toJS()
  } catch (e) {
    return { error: `${where}: invalid YAML: ${(e as Error).message}` }
  }
  const parsed = parseArtifactRepository(value, key)
  if (parsed.repository === undefined) {
    return { error: `${where}: ${parsed.problems.length > 0 ? problemsMessage(parsed.problems) : "is empty"}` }
  }
  return parsed.repository
}

// ---------------------------------------------------------------------------------------------
// Binding and resolving

const globalArtifactPrefix = "workflow.outputs.artifacts."

/** `{{steps.a.outputs.artifacts.b}}` -> `steps.a.outputs.artifacts.b` (`=expr` kept with its `=`). */
const tagOf = (from: string): string => from.trim().replace(/^\{\{/, "").replace(/\}\}$/, "").trim()

/**
 * `wfScope.resolveArtifact`: the artifact a `from` or `fromExpression` names in the scope (a
 * step's or task's output, `workflow.outputs.artifacts.*`, the template's `inputs.artifacts.*`),
 * with `subPath` appended to its key. A message with upstream's "Unable to resolve" when it is
 * not there.
 */
export const resolveArtifactRef = (op: OperationState, art: Artifact, scope: Scope): Artifact | Failure | undefined => {
  if ((art.from ?? "") === "" && (art.fromExpression ?? "") === "") return undefined
  // The workflow's global artifacts are looked up here, never put in the scope templates are substituted
  // with: a `{{workflow.outputs.artifacts.x}}` there must stay a reference, not become the artifact's JSON.
  const withGlobals = (): Scope => {
    if (op.globalArtifacts.length === 0) return scope
    const m = new Map(scope)
    for (const a of op.globalArtifacts) if (!m.has(`${globalArtifactPrefix}${a.name}`)) m.set(`${globalArtifactPrefix}${a.name}`, a)
    return m
  }
  let value: unknown
  if ((art.fromExpression ?? "") !== "") {
    const r = evaluate(art.fromExpression!, withGlobals(), op.limits.expression)
    if (!r.ok) return { error: r.error.message }
    value = r.value
    if (value === null || value === undefined) return { error: `Unable to resolve: ${JSON.stringify(art.fromExpression)}` }
  } else {
    const tag = tagOf(art.from!)
    if (tag.startsWith("=")) {
      const r = evaluate(tag.slice(1), withGlobals(), op.limits.expression)
      if (!r.ok || r.value === null || r.value === undefined) return { error: `Unable to resolve: ${JSON.stringify(tag)}` }
      value = r.value
    } else {
      const global = tag.startsWith(globalArtifactPrefix) ? op.globalArtifacts.find((a) => a.name === tag.slice(globalArtifactPrefix.length)) : undefined
      if (!scope.has(tag) && global === undefined) return { error: `Unable to resolve: ${JSON.stringify(tag)}` }
      value = scope.has(tag) ? scope.get(tag) : global
    }
  }
  if (!isRecord(value) || typeof value["name"] !== "string") {
    return { error: `Variable {{${art.from ?? art.fromExpression}}} is not an artifact` }
  }
  const found = value as Artifact
  if ((art.subPath ?? "") === "") return found
  const sub = substitute(art.subPath!, scope, false, op.limits.expression)
  if (!sub.ok) return { error: sub.error.message }
  const kind = locationKind(found)
  const loc = kind === undefined ? undefined : record(found[kind])
  if (kind === undefined || loc === undefined || str(loc["key"]) === "") {
    return art.optional === true ? found : { error: `artifact '${found.name}' has no key to append subPath '${sub.value}' to` }
  }
  return { ...found, [kind]: { ...loc, key: joinKey(str(loc["key"]), sub.value) } } as Artifact
}

/**
 * A step's, task's or hook's `arguments.artifacts` (upstream's `resolveReferences` /
 * `resolveDependencyReferences`): those with a `from` or `fromExpression` resolved against
 * the scope (an optional one that does not resolve is left out), the others substituted.
 */
export const resolveArgArtifacts = (op: OperationState, call: Pick<TemplateCall, "arguments">, scope: Scope): ReadonlyArray<Artifact> | Failure => {
  const out: Array<Artifact> = []
  for (const art of call.arguments?.artifacts ?? []) {
    if ((art.from ?? "") === "" && (art.fromExpression ?? "") === "") {
      const sub = substituteTemplate(art, scope, op.limits.expression)
      if (!sub.ok) return { error: sub.error.message }
      out.push(sub.value)
      continue
    }
    const r = resolveArtifactRef(op, art, scope)
    if (isFailure(r)) {
      if (art.optional === true) continue
      return { error: `unable to resolve references: ${r.error}` }
    }
    if (r !== undefined) out.push(withoutOutputFields({ ...r, name: art.name }))
  }
  return out
}

/** An output's fields that say nothing about where it is read from, dropped when it becomes an input. */
const withoutOutputFields = (art: Artifact): Artifact => {
  const { globalName: _g, path: _p, mode: _m, archive: _a, artifactGC: _gc, deleted: _d, ...rest } = art
  return rest as Artifact
}

/**
 * `common.ProcessArgs` for artifacts: each input takes the argument of its name (keeping its own
 * `path`, `mode` and `recurseMode`); an input with no location or key of its own and no
 * argument is an error unless `optional`. Strings are substituted with the template's scope.
 */
export const bindInputArtifacts = (
  op: OperationState,
  tmpl: Template,
  args: ReadonlyArray<Artifact> | undefined,
  scope: Scope
): ReadonlyArray<Artifact> | Failure | undefined => {
  const inputs = tmpl.inputs?.artifacts
  if (inputs === undefined) return undefined
  const out: Array<Artifact> = []
  for (const input of inputs) {
    const arg = args?.find((a) => a.name === input.name)
    if (input.optional !== true && !hasLocationOrKey(input)) {
      if (arg === undefined) return { error: `inputs.artifacts.${input.name} was not supplied` }
      if ((arg.from ?? "") === "" && (arg.fromExpression ?? "") === "" && !hasLocationOrKey(arg)) {
        return { error: `inputs.artifacts.${input.name} missing location information` }
      }
    }
    let bound: Artifact = input
    if (arg !== undefined) {
      const { path: _p, mode: _m, recurseMode: _r, ...given } = arg
      bound = {
        ...given,
        ...(input.path !== undefined ? { path: input.path } : {}),
        ...(input.mode !== undefined ? { mode: input.mode } : {}),
        ...(input.recurseMode !== undefined ? { recurseMode: input.recurseMode } : {}),
        // an input's `optional` stays: upstream reads it from the input when mounting
        ...(input.optional === true ? { optional: true } : {})
      } as Artifact
    }
    const sub = substituteTemplate(bound, scope, op.limits.expression)
    if (!sub.ok) return { error: sub.error.message }
    out.push(sub.value)
  }
  return out
}

/** A completed step's or task's output artifacts in its scope: `<prefix>.<name>.outputs.artifacts.<artifact>`. */
export const addArtifactsToScope = (scope: Map<string, unknown>, key: string, node: Node): void => {
  for (const art of node.outputs?.artifacts ?? []) scope.set(`${key}.outputs.artifacts.${art.name}`, art)
}

/**
 * A Steps/DAG template's `outputs.artifacts`, resolved against its children's scope and its own
 * inputs (`getTemplateOutputsFromScope`): an optional one that does not resolve is left out.
 */
export const templateOutputArtifacts = (op: OperationState, tmpl: Template, scope: Scope): ReadonlyArray<Artifact> | Failure | undefined => {
  const outputs = tmpl.outputs?.artifacts
  if (outputs === undefined || outputs.length === 0) return undefined
  const withInputs = new Map(scope)
  for (const a of tmpl.inputs?.artifacts ?? []) withInputs.set(`inputs.artifacts.${a.name}`, a)
  const out: Array<Artifact> = []
  for (const art of outputs) {
    const r = resolveArtifactRef(op, art, withInputs)
    if (isFailure(r)) {
      if (r.error.includes("Unable to resolve") && art.optional === true) continue
      return { error: `unable to resolve outputs from scope: ${r.error}` }
    }
    if (r === undefined) continue
    out.push({ ...withoutOutputFields(r), name: art.name, ...(art.globalName !== undefined ? { globalName: art.globalName } : {}) } as Artifact)
  }
  return out
}

/**
 * `addArtifactToGlobalScope`: an artifact with a `globalName` becomes `status.outputs.artifacts`, which
 * `from: "{{workflow.outputs.artifacts.<globalName>}}"` reads (`resolveArtifactRef`).
 */
export const exportGlobalArtifacts = (op: OperationState, artifacts: ReadonlyArray<Artifact> | undefined): void => {
  for (const art of artifacts ?? []) {
    if (art.globalName === undefined || art.globalName === "") continue
    // upstream drops the path too: where it was in the pod says nothing to a reader
    const { globalName, path: _path, ...rest } = art
    const entry = { ...rest, name: globalName } as Artifact
    const i = op.globalArtifacts.findIndex((g) => g.name === globalName)
    if (i >= 0) op.globalArtifacts[i] = entry
    else op.globalArtifacts.push(entry)
  }
}

// ---------------------------------------------------------------------------------------------
// The pod's template

/** `IsArchiveLogs`: the repository's `archiveLogs` wins; else the template's `archiveLocation.archiveLogs` over `spec.archiveLogs`. */
export const isArchiveLogs = (op: OperationState, tmpl: Template, repository: ArtifactRepository | undefined): boolean => {
  if (repository?.archiveLogs === true) return true
  const location = record(tmpl.archiveLocation)
  if (typeof location?.["archiveLogs"] === "boolean") return location["archiveLogs"]
  return op.wf.spec.archiveLogs === true
}

/** Whether a pod template's artifacts or logs may need the repository (so that it is read only then). */
const mayNeedRepository = (op: OperationState, tmpl: Template): boolean =>
  dataSourceOf(tmpl) !== undefined || (tmpl.inputs?.artifacts ?? []).length > 0 || (tmpl.outputs?.artifacts ?? []).length > 0 ||
  op.wf.spec.archiveLogs === true || record(tmpl.archiveLocation) !== undefined ||
  op.wf.spec.artifactRepositoryRef !== undefined || op.config.artifactRepository?.archiveLogs === true

/** Upstream's executor message when a pod needs a repository and none is configured. */
export const noRepositoryMessage =
  "You need to configure artifact storage. More information on how to do this can be found in the docs: https://argo-workflows.readthedocs.io/en/latest/configure-artifact-repository/"

/** strftime characters upstream offers as `workflow.creationTimestamp.<c>` (for keyFormat). */
const creationTimestampVars = (iso: string | undefined): ReadonlyArray<readonly [string, string]> => {
  const t = iso === undefined ? NaN : Date.parse(iso)
  if (!Number.isFinite(t)) return []
  const d = new Date(t)
  const p = (n: number, w = 2) => String(n).padStart(w, "0")
  const start = Date.UTC(d.getUTCFullYear(), 0, 1)
  return [
    ["Y", String(d.getUTCFullYear())],
    ["y", p(d.getUTCFullYear() % 100)],
    ["m", p(d.getUTCMonth() + 1)],
    ["d", p(d.getUTCDate())],
    ["H", p(d.getUTCHours())],
    ["M", p(d.getUTCMinutes())],
    ["S", p(d.getUTCSeconds())],
    ["j", p(Math.floor((t - start) / 86_400_000) + 1, 3)],
    ["s", String(Math.floor(t / 1000))]
  ]
}

/**
 * The template a pod runs with its artifacts ready for the executor (`addArchiveLocation`): kinds
 * flotilla does not move refused at their field; when an artifact has no complete location of its
 * own or the logs are archived, `archiveLocation` is the repository's (its keyFormat substituted
 * with the workflow's variables and `pod.name`) with `archiveLogs` set. "pending" while the
 * repository's ConfigMap is read.
 */
export const prepareArtifacts = (op: OperationState, tmpl: Template, podName: string): Template | Failure | "pending" => {
  // A resource template's inputs (manifestFrom) and a data template's source are the executor's too.
  const executorOnly = tmpl.resource !== undefined || tmpl.data !== undefined
  if (tmpl.container === undefined && tmpl.script === undefined && tmpl.containerSet === undefined && !executorOnly) return tmpl
  const dataSource = dataSourceOf(tmpl)
  const dataKind = dataSource === undefined ? undefined : locationKind(dataSource)
  if (dataKind !== undefined && dataKind !== "s3") {
    return { error: `templates.${tmpl.name ?? ""}.data.source.artifactPaths.${dataKind}: listing ${dataKind} artifacts is not supported (only s3)` }
  }
  if (executorOnly && dataSource === undefined && (tmpl.inputs?.artifacts ?? []).length === 0) return tmpl
  for (const [where, list] of [["inputs", tmpl.inputs?.artifacts], ["outputs", tmpl.outputs?.artifacts]] as const) {
    for (const art of list ?? []) {
      const kind = locationKind(art)
      if (kind !== undefined && !supportedKinds.has(kind)) {
        return { error: `templates.${tmpl.name ?? ""}.${where}.artifacts.${art.name}.${kind}: ${kind} artifacts are not supported (only s3, http and raw)` }
      }
    }
  }
  if (!mayNeedRepository(op, tmpl)) return tmpl
  const userLocation = record(tmpl.archiveLocation)
  if (userLocation !== undefined && hasLocation(userLocation)) return tmpl
  const r = repositoryOf(op)
  if (r === "pending") return "pending"
  if (isFailure(r)) return r
  // The executor of a resource or data pod saves no logs (flotilla's resource pods have no wait container).
  const archiveLogs = !executorOnly && isArchiveLogs(op, tmpl, r.repository)
  const artifacts = [...(tmpl.inputs?.artifacts ?? []), ...(tmpl.outputs?.artifacts ?? []), ...(dataSource !== undefined ? [dataSource] : [])]
  const needLocation = archiveLogs || artifacts.some((a) => !hasLocation(a))
  if (!needLocation) return tmpl
  const location = archiveLocationOf(r.repository)
  if (location === undefined) {
    const why = archiveLogs ? archiveLogsField(op, tmpl, r.repository) : `templates.${tmpl.name ?? ""} artifacts`
    return { error: `${why}: artifact storage is not configured (configmap key artifactRepository or spec.artifactRepositoryRef). ${noRepositoryMessage}` }
  }
  const scope = new Map<string, unknown>([...op.globals, ["pod.name", podName]])
  for (const [c, v] of creationTimestampVars(op.wf.metadata.creationTimestamp)) scope.set(`workflow.creationTimestamp.${c}`, v)
  const s3 = location["s3"] as Record<string, unknown>
  const key = substitute(String(s3["key"]), scope, false, op.limits.expression)
  if (!key.ok) return { error: `archiveLocation.s3.key (the repository's keyFormat): ${key.error.message}` }
  return { ...tmpl, archiveLocation: { archiveLogs, s3: { ...s3, key: key.value } } }
}

/** A data template's source artifact (`GetArtifactIfNeeded`): the location its executor lists. */
export const dataSourceOf = (tmpl: Template): Artifact | undefined => {
  const source = record(tmpl.data?.source)
  const art = record(source?.["artifactPaths"])
  return art === undefined ? undefined : art as unknown as Artifact
}

/** The field that asks for archived logs, for a message. */
const archiveLogsField = (op: OperationState, tmpl: Template, repository: ArtifactRepository | undefined): string => {
  if (repository?.archiveLogs === true) return "artifactRepository.archiveLogs"
  const location = record(tmpl.archiveLocation)
  if (typeof location?.["archiveLogs"] === "boolean") return `templates.${tmpl.name ?? ""}.archiveLocation.archiveLogs`
  return op.wf.spec.archiveLogs === true ? "spec.archiveLogs" : `templates.${tmpl.name ?? ""}`
}

/** Whether the template's pod reports artifacts in its task result (outputs, or its archived logs). */
export const reportsArtifacts = (op: OperationState, tmpl: Template): boolean =>
  (tmpl.outputs?.artifacts ?? []).length > 0 || isArchiveLogs(op, tmpl, op.config.artifactRepository)
