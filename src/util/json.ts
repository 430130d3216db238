/** Comparing JSON values (objects as decoded from the API, never with cycles). */

/** Deep equality of JSON values, whatever the order of object keys (an undefined member counts as absent, as in JSON). */
export const sameJson = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false
    return true
  }
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  let count = 0
  for (const k in x) {
    if (x[k] === undefined) continue
    count++
    if (!Object.hasOwn(y, k) || !sameJson(x[k], y[k])) return false
  }
  for (const k in y) if (y[k] !== undefined) count--
  return count === 0
}
