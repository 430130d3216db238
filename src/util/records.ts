/**
 * Narrowing of untyped data (parsed YAML or JSON, a Kubernetes object's free-form fields) to a
 * string-keyed record. One definition, so every reader agrees that a list is not a record.
 */

/** Whether `u` is a non-null object that is not an array (a JSON/YAML mapping). */
export const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
