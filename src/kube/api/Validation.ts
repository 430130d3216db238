/**
 * The name, label key and label value validations of the Kubernetes API
 * server (k8s.io/apimachinery/pkg/util/validation): the in-memory API applies
 * them on writes, the controller to configuration that ends up in labels.
 */
const qualifiedNamePart = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** Why `name` is not a valid RFC 1123 subdomain (most object names), or undefined when it is. */
export const validateSubdomain = (name: string): string | undefined => {
  if (name.length > 253) return "must be no more than 253 characters"
  if (!dns1123Subdomain.test(name)) {
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
  }
  return undefined
}

/** Why `name` is not a valid RFC 1123 label (namespace names), or undefined when it is. */
export const validateDnsLabel = (name: string): string | undefined => {
  if (name.length > 63) return "must be no more than 63 characters"
  if (!dns1123Label.test(name)) {
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
  }
  return undefined
}

/** Why `key` is not a valid label key (`[prefix/]name`), or undefined when it is. */
export const validateLabelKey = (key: string): string | undefined => {
  const parts = key.split("/")
  if (parts.length > 2) {
    return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/'"
  }
  const name = parts.length === 2 ? parts[1] : parts[0]
  if (parts.length === 2) {
    const prefix = parts[0]
    if (prefix.length === 0) return "prefix part must be non-empty"
    const bad = validateSubdomain(prefix)
    if (bad !== undefined) return `prefix part ${bad}`
  }
  if (name.length === 0) return "name part must be non-empty"
  if (name.length > 63) return "name part must be no more than 63 characters"
  if (!qualifiedNamePart.test(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
  }
  return undefined
}

/** Why `value` is not a valid label value, or undefined when it is. Empty is valid. */
export const validateLabelValue = (value: string): string | undefined => {
  if (value.length === 0) return undefined
  if (value.length > 63) return "must be no more than 63 characters"
  if (!qualifiedNamePart.test(value)) {
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
  }
  return undefined
}

/**
 * Why `token` cannot be sent as `Authorization: Bearer <token>`, or undefined
 * when it can. Only visible ASCII is accepted: a CR or LF would split the
 * header (Node refuses it only when the request is made, as a thrown error), a
 * space or tab makes the API server read a different token (it splits the
 * header on spaces), and anything else is not a token any API server issues.
 * The reason names the kind of character, never the token itself.
 */
export const validateBearerToken = (token: string): string | undefined => {
  if (token.length === 0) return "token is empty"
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i)
    if (code >= 0x21 && code <= 0x7e) continue
    const kind = code === 0x0a || code === 0x0d
      ? "a line break (CR or LF)"
      : code === 0x20 || code === 0x09
      ? "whitespace"
      : code < 0x20 || code === 0x7f
      ? "a control character"
      : "a non-ASCII character"
    return `token contains ${kind} at position ${i + 1}, which cannot be sent in an Authorization header; only visible ASCII characters are allowed`
  }
  return undefined
}
