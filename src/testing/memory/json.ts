/**
 * JSON as the wire has it: deep copies with JSON semantics (so no caller ever
 * shares a stored object), structural equality, RFC 7386 merge patches, and
 * the empty metadata lists and maps the real server omits.
 */
import { isRecord } from "../../util/records.js"

/** A deep copy with wire (JSON) semantics: undefined members dropped, no sharing. */
export const cloneJson = <A>(value: A): A => {
  if (Array.isArray(value)) {
    return value.map((v) => (v === undefined || typeof v === "function" ? null : cloneJson(v))) as A
  }
  if (value !== null && typeof value === "object") {
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
      return JSON.parse(JSON.stringify(value)) as A
    }
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      const v = (value as Record<string, unknown>)[key]
      if (v === undefined || typeof v === "function" || typeof v === "symbol") continue
      out[key] = cloneJson(v)
    }
    return out as A
  }
  if (typeof value === "number" && !Number.isFinite(value)) return null as A
  return value
}

export const deepEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false
    return true
  }
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    if (ka.length !== kb.length) return false
    for (const key of ka) {
      if (!Object.prototype.hasOwnProperty.call(b, key) || !deepEqual(a[key], b[key])) return false
    }
    return true
  }
  return false
}

/** RFC 7386 JSON merge patch. Never mutates its inputs. */
export const applyMergePatch = (target: unknown, patch: unknown): unknown => {
  if (!isRecord(patch)) return cloneJson(patch)
  const result: Record<string, unknown> = isRecord(target) ? { ...target } : {}
  for (const key of Object.keys(patch)) {
    const value = patch[key]
    if (value === null) delete result[key]
    else if (value !== undefined) result[key] = applyMergePatch(result[key], value)
  }
  return result
}

/** Drops empty lists/maps the server would omit. */
export const normalizeMeta = (meta: Record<string, unknown>): void => {
  for (const key of ["finalizers", "ownerReferences"]) {
    if (Array.isArray(meta[key]) && (meta[key] as Array<unknown>).length === 0) delete meta[key]
  }
  for (const key of ["labels", "annotations"]) {
    if (isRecord(meta[key]) && Object.keys(meta[key] as object).length === 0) delete meta[key]
  }
}
