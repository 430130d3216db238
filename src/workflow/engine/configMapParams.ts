/**
 * Parameters whose value comes from a ConfigMap (`valueFrom.configMapKeyRef`), the engine's half:
 * workflow arguments (`workflow.parameters.*`, upstream's `setGlobalParameters`), template inputs
 * given no value (`common.ProcessArgs` / `substituteAndGetConfigMapValue`) and step or task
 * arguments. The ConfigMaps are read in the workflow's namespace by the controller, not here: a
 * ConfigMap the engine needs and was not given is listed in `EngineOutput.needConfigMaps`, and the
 * controller reads it and runs the engine again with it in `EngineInput.configMaps` (as semaphore
 * limits, sync.ts). Until then the lookup answers `pending`, and what the engine decided from it is
 * thrown away with that run's output.
 *
 * Upstream's informer only sees ConfigMaps labelled `workflows.argoproj.io/configmap-type:
 * Parameter` and `GetConfigMapValue` refuses an unlabelled one; the messages are upstream's.
 * Upstream ignores `configMapKeyRef.optional` here (a missing one is an error unless the
 * parameter has `valueFrom.default`), and so does this.
 *
 * A name that is no valid ConfigMap name (an RFC 1123 subdomain: no `/`, so never another
 * namespace's `ns/name`) is never asked for: upstream's informer lookup by `namespace/name` finds
 * nothing for it (NotFound, so `valueFrom.default` applies), and the message says why. The
 * controller's namespace is read only for the artifact repository (`readControllerConfigMap`), a
 * request of its own that nothing a user writes can emit.
 */
import { validateSubdomain } from "../../kube/api/Validation.js"
import type { Parameter } from "../model/Workflow.js"
import { labelConfigMapType } from "./memoize.js"
import type { ConfigMapRead } from "./contract.js"
import type { OperationState } from "./operation.js"
import { type Scope, substitute } from "./scope.js"

export const configMapTypeParameter = "Parameter"

/** The value of a ConfigMap key, or why there is none (`notFound`: upstream's CodeNotFound), or not read yet. */
export type ConfigMapValue =
  | { readonly _tag: "Value"; readonly value: string }
  | { readonly _tag: "Missing"; readonly notFound: boolean; readonly message: string }
  | { readonly _tag: "Pending"; readonly name: string }

const needs = new WeakMap<OperationState, Set<string>>()
const controllerNeeds = new WeakMap<OperationState, Set<string>>()

const need = (table: WeakMap<OperationState, Set<string>>, op: OperationState, name: string): void => {
  let set = table.get(op)
  if (set === undefined) table.set(op, set = new Set())
  set.add(name)
}

/** Why `name` is not a ConfigMap name (an RFC 1123 subdomain), or undefined when it is one. */
export const invalidConfigMapName = (name: string): string | undefined => {
  const problem = validateSubdomain(name)
  return problem === undefined ? undefined : `'${name}' is not a valid ConfigMap name: ${problem}`
}

/** The ConfigMaps the engine needed in this run and was not given (`EngineOutput.needConfigMaps`). */
export const configMapsNeeded = (op: OperationState): ReadonlyArray<string> => [...(needs.get(op) ?? [])]

/** The controller namespace's ConfigMaps needed and not given (`EngineOutput.needControllerConfigMaps`). */
export const controllerConfigMapsNeeded = (op: OperationState): ReadonlyArray<string> => [...(controllerNeeds.get(op) ?? [])]

/**
 * A ConfigMap of the workflow's namespace as the controller read it, or "pending" (then listed in
 * `EngineOutput.needConfigMaps`): also the `artifact-repositories` ConfigMap (artifacts.ts). A name
 * that is no valid ConfigMap name is never asked for: it reads as not found.
 */
export const readConfigMap = (op: OperationState, name: string): ConfigMapRead | "pending" => {
  if (invalidConfigMapName(name) !== undefined) return { found: false }
  const read = op.input.configMaps?.get(name)
  if (read !== undefined) return read
  need(needs, op, name)
  return "pending"
}

/**
 * A ConfigMap of the controller's namespace (`EngineConfig.controllerNamespace`) as the controller
 * read it, or "pending" (then listed in `EngineOutput.needControllerConfigMaps`). For the artifact
 * repository's resolution only (artifacts.ts); not found without a controller namespace or for a
 * name that is no valid ConfigMap name.
 */
export const readControllerConfigMap = (op: OperationState, name: string): ConfigMapRead | "pending" => {
  const namespace = op.config.controllerNamespace
  if (namespace === undefined || namespace === "" || invalidConfigMapName(name) !== undefined) return { found: false }
  const read = op.input.controllerConfigMaps?.get(name)
  if (read !== undefined) return read
  need(controllerNeeds, op, name)
  return "pending"
}

/** Upstream's `GetConfigMapValue` over the ConfigMaps the controller read (in the workflow's namespace). */
export const configMapValue = (op: OperationState, name: string, key: string): ConfigMapValue => {
  const invalid = invalidConfigMapName(name)
  if (invalid !== undefined) return { _tag: "Missing", notFound: true, message: `ConfigMap '${name}' does not exist: ${invalid}` }
  const read = op.input.configMaps?.get(name)
  if (read === undefined) {
    need(needs, op, name)
    return { _tag: "Pending", name }
  }
  if (!read.found) {
    return {
      _tag: "Missing",
      notFound: true,
      message: `ConfigMap '${name}' does not exist. Please make sure it has the label ${labelConfigMapType}: ${configMapTypeParameter} to be detectable by the controller`
    }
  }
  if (read.labels[labelConfigMapType] !== configMapTypeParameter) {
    return {
      _tag: "Missing",
      notFound: false,
      message: `ConfigMap '${name}' needs to have the label ${labelConfigMapType}: ${configMapTypeParameter} to load parameters`
    }
  }
  const value = read.data[key]
  if (value === undefined) return { _tag: "Missing", notFound: true, message: `ConfigMap '${name}' does not have the key '${key}'` }
  return { _tag: "Value", value }
}

/** The `configMapKeyRef` of a parameter, or undefined. */
export const configMapKeyRefOf = (p: Parameter): { readonly name: string; readonly key: string } | undefined => {
  const ref = p.valueFrom?.configMapKeyRef
  if (ref === undefined || ref === null) return undefined
  return { name: ref.name ?? "", key: ref.key }
}

const pendingMessage = (name: string) => `waiting for ConfigMap '${name}' to be read`

/**
 * A workflow argument's value from its ConfigMap (`setGlobalParameters`): `valueFrom.default` when it
 * cannot be read, else upstream's error.
 */
export const globalParameterFromConfigMap = (op: OperationState, p: Parameter): { readonly value: string } | { readonly error: string } => {
  const ref = configMapKeyRefOf(p)!
  const r = configMapValue(op, ref.name, ref.key)
  if (r._tag === "Value") return { value: r.value }
  if (r._tag === "Pending") return { error: pendingMessage(r.name) }
  const dflt = p.valueFrom?.default
  if (dflt !== undefined && dflt !== null) return { value: String(dflt) }
  return {
    error: `failed to set global parameter ${p.name} from configmap with name ${ref.name} and key ${ref.key}: ${r.message}`
  }
}

/**
 * An input parameter's value from its ConfigMap (`substituteAndGetConfigMapValue`): the name and key
 * substituted with the global variables first, `valueFrom.default` when the ConfigMap or key does
 * not exist, else upstream's error.
 */
export const inputParameterFromConfigMap = (
  op: OperationState,
  p: Parameter,
  globals: Scope
): { readonly value: string } | { readonly error: string } => {
  const ref = configMapKeyRefOf(p)!
  const name = substitute(ref.name, globals, false, op.limits.expression)
  if (!name.ok) return { error: `failed to substitute configMapKeyRef: ${name.error.message}` }
  const key = substitute(ref.key, globals, false, op.limits.expression)
  if (!key.ok) return { error: `failed to substitute configMapKeyRef: ${key.error.message}` }
  const r = configMapValue(op, name.value, key.value)
  if (r._tag === "Value") return { value: r.value }
  if (r._tag === "Pending") return { error: pendingMessage(r.name) }
  const dflt = p.valueFrom?.default
  if (r.notFound && dflt !== undefined && dflt !== null) return { value: String(dflt) }
  return { error: `unable to retrieve inputs.parameters.${p.name} from ConfigMap: ${r.message}` }
}
