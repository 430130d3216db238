/**
 * Informer transforms (`InformerOptions.transform`): what of each object a
 * cache keeps. An executor pod is mostly spec the controller never reads
 * after creating it (volumes, mounts, resources, probes, `valueFrom`
 * references, the template repeated in each container's `ARGO_TEMPLATE`).
 *
 * What the controller reads of a cached pod, and so what `slimPod` keeps:
 * all of `metadata` (but `managedFields`); of `status`, everything but the
 * address lists `hostIPs` and `podIPs` (`hostIP` and `podIP` stay), of each
 * container status its `name`, `state` and `lastState` (not the image, ids,
 * readiness and restart count; nor a terminated state's `containerID`), of
 * each condition its `type`, `status`, `reason` and `message`; of `spec`,
 * `nodeName` and every other plain field (strings, numbers, booleans), and of
 * each container and init container its `name`, `image`, `command`, `args` and
 * `env` entries' `name` and `value` (the pod proof's digest, `PodProof.ts`, and
 * the executor environment, `executorEnvOf` in `workflow/engine/pod.ts`).
 * Everything else of `spec` is dropped. The controller never writes a cached
 * pod back whole (its pod writes are creates, patches and deletes), so nothing
 * dropped here can be lost on the server.
 *
 * Equal env values within one pod (the template, the workflow's name and uid
 * in each container) are kept as one string: a JSON parser makes a string per
 * occurrence.
 */
import type { KubeObject } from "../api/Resources.js"
import { stripManagedFields } from "./Informer.js"

type Json = Record<string, unknown>

const isRecord = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

const slimContainer = (container: unknown, strings: Map<string, string>): unknown => {
  if (!isRecord(container)) return container
  const out: Json = {}
  for (const key of ["name", "image", "command", "args"] as const) {
    if (container[key] !== undefined) out[key] = container[key]
  }
  if (Array.isArray(container["env"])) {
    out["env"] = container["env"].map((e: unknown) => {
      if (!isRecord(e)) return e
      const value = e["value"]
      if (typeof value !== "string") return { name: e["name"] }
      let shared = strings.get(value)
      if (shared === undefined) strings.set(value, shared = value)
      return { name: e["name"], value: shared }
    })
  }
  return out
}

const pick = (value: Json, keys: ReadonlyArray<string>): Json => {
  const out: Json = {}
  for (const key of keys) if (value[key] !== undefined) out[key] = value[key]
  return out
}

const slimState = (state: unknown): unknown => {
  if (!isRecord(state) || !isRecord(state["terminated"]) || state["terminated"]["containerID"] === undefined) return state
  const { containerID: _containerID, ...terminated } = state["terminated"]
  return { ...state, terminated }
}

const slimContainerStatus = (status: unknown): unknown => {
  if (!isRecord(status)) return status
  const out = pick(status, ["name"])
  if (status["state"] !== undefined) out["state"] = slimState(status["state"])
  if (status["lastState"] !== undefined) out["lastState"] = slimState(status["lastState"])
  return out
}

const slimStatus = (status: Json): Json => {
  const out: Json = {}
  for (const [key, value] of Object.entries(status)) {
    if (key === "hostIPs" || key === "podIPs") continue
    if ((key === "containerStatuses" || key === "initContainerStatuses" || key === "ephemeralContainerStatuses") && Array.isArray(value)) {
      out[key] = value.map(slimContainerStatus)
    } else if (key === "conditions" && Array.isArray(value)) {
      out[key] = value.map((c: unknown) => isRecord(c) ? pick(c, ["type", "status", "reason", "message"]) : c)
    } else out[key] = value
  }
  return out
}

/** A pod as the controller's pod caches keep it (see the module doc); without managedFields. */
export const slimPod = (pod: KubeObject): KubeObject => {
  const stripped = stripManagedFields(pod)
  const status = stripped["status"]
  const object = isRecord(status) ? { ...stripped, status: slimStatus(status) } : stripped
  const spec = object["spec"]
  if (!isRecord(spec)) return object
  const strings = new Map<string, string>()
  const slim: Json = {}
  for (const [key, value] of Object.entries(spec)) {
    if (key === "containers" || key === "initContainers") {
      if (Array.isArray(value)) slim[key] = value.map((c) => slimContainer(c, strings))
    } else if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") slim[key] = value
  }
  return { ...object, spec: slim }
}
