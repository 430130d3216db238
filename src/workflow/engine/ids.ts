/**
 * Argo's deterministic identities: node IDs and pod names (POD_NAMES v1/v2).
 * A retried create after a crash must hit AlreadyExists rather than make a
 * twin, so these must match upstream byte for byte.
 */

const fnvPrime = 0x01000193

/**
 * FNV-1a 32-bit hash of the UTF-8 bytes of `s`, as an unsigned integer.
 * Called for every node name of every reconcile, so it encodes UTF-8 inline
 * instead of allocating a byte array per call (lone surrogates become U+FFFD,
 * as TextEncoder writes them).
 */
export const fnv32a = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      h = Math.imul(h ^ c, fnvPrime)
      continue
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00)
        i++
      } else c = 0xfffd
    }
    // The UTF-8 bytes of c, lead byte first.
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), fnvPrime)
    } else {
      if (c < 0x10000) h = Math.imul(h ^ (0xe0 | (c >> 12)), fnvPrime)
      else {
        h = Math.imul(h ^ (0xf0 | (c >> 18)), fnvPrime)
        h = Math.imul(h ^ (0x80 | ((c >> 12) & 0x3f)), fnvPrime)
      }
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), fnvPrime)
    }
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), fnvPrime)
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
