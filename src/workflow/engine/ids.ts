/**
 * Argo's deterministic identities: node IDs and pod names (POD_NAMES v1/v2).
 * A retried create after a crash must hit AlreadyExists rather than make a
 * twin, so these must match upstream byte for byte.
 */

/** FNV-1a 32-bit hash of the UTF-8 bytes of `s`, as an unsigned integer. */
export const fnv32a = (s: string): number => {
  let h = 0x811c9dc5
  for (const b of new TextEncoder().encode(s)) {
    h ^= b
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

/** `(*Workflow).NodeID`: the workflow's own node keeps the workflow name. */
export const nodeId = (wfName: string, nodeName: string): string =>
  nodeName === wfName ? wfName : `${wfName}-${fnv32a(nodeName)}`

const maxK8sResourceNameLength = 253
const k8sNamingHashLength = 10
const maxPrefixLength = maxK8sResourceNameLength - k8sNamingHashLength

/** `util.GeneratePodName`. */
export const podName = (
  wfName: string,
  nodeName: string,
  templateName: string,
  id: string,
  version: "v1" | "v2"
): string => {
  if (version === "v1") return id
  if (wfName === nodeName) return wfName
  let prefix = templateName === "" ? wfName : `${wfName}-${templateName}`
  if (prefix.length > maxPrefixLength - 1) prefix = prefix.slice(0, maxPrefixLength - 1)
  return `${prefix}-${fnv32a(nodeName)}`
}
