/** Helpers shared by the system and user kubeconfig validators. Not exported from the package. */
import { KubeconfigError } from "./KubeconfigError.js"

/** `null`, `undefined`, `""` and `[]` all mean "not set" in a kubeconfig. */
export const isSet = (value: unknown): boolean =>
  value !== null && value !== undefined && value !== "" && !(Array.isArray(value) && value.length === 0)

/** The value when it is set (see {@link isSet}), else undefined. */
export const setString = (value: string | null | undefined): string | undefined => (isSet(value) ? (value as string) : undefined)

/** Strips whitespace and checks the text is standard base64; returns undefined when it is not. */
export const normalizeBase64 = (text: string): string | undefined => {
  const compact = text.replace(/\s+/g, "")
  if (compact.length === 0 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return undefined
  return compact
}

export const toBase64 = (content: string | Uint8Array): string =>
  (typeof content === "string" ? Buffer.from(content, "utf8") : Buffer.from(content)).toString("base64")

export const toUtf8 = (content: string | Uint8Array): string =>
  typeof content === "string" ? content : Buffer.from(content).toString("utf8")

/** ` (ENOENT)`: the code of a failed file read, for a message naming the file; empty when it has none. */
export const errorCodeSuffix = (error: unknown): string =>
  typeof error === "object" && error !== null && "code" in error ? ` (${String(error.code)})` : ""

/** Builds errors for one source and, optionally, one context. */
export const errorsFor = (source: string, context?: string) =>
(field: string | undefined, detail: string): KubeconfigError =>
  new KubeconfigError({ source, context, field, detail })

/** How many indexes {@link indexList} names before it says "and N more". */
const listedIndexes = 10

/**
 * `contexts[1], contexts[4]`: at most ten, then "and N more", so that n
 * entries sharing one name give n errors of bounded length, not n² text.
 */
export const indexList = (prefix: string, indexes: ReadonlyArray<number>): string => {
  const shown = indexes.slice(0, listedIndexes).map((index) => `${prefix}[${index}]`).join(", ")
  return indexes.length > listedIndexes ? `${shown} and ${indexes.length - listedIndexes} more` : shown
}

/** Indexes of the entries of a list by name, built once so that each lookup is constant time. */
export const indexByName = <A extends { readonly name?: string | null | undefined }>(
  entries: ReadonlyArray<A> | null | undefined
): ReadonlyMap<string, ReadonlyArray<number>> => {
  const byName = new Map<string, Array<number>>()
  ;(entries ?? []).forEach((entry, index) => {
    if (typeof entry.name !== "string") return
    const indexes = byName.get(entry.name)
    if (indexes === undefined) byName.set(entry.name, [index])
    else indexes.push(index)
  })
  return byName
}

/**
 * The one entry of `clusters` or `users` named `name`, with its index; or the
 * error saying there is none or several. Pass `index` (from {@link indexByName})
 * when looking up many names in the same list.
 */
export const findEntry = <A extends { readonly name?: string | null | undefined }>(
  list: "clusters" | "users",
  entries: ReadonlyArray<A> | null | undefined,
  name: string,
  fail: (field: string, detail: string) => KubeconfigError,
  index: ReadonlyMap<string, ReadonlyArray<number>> = indexByName(entries)
): { readonly index: number; readonly entry: A } | KubeconfigError => {
  const indexes = index.get(name) ?? []
  if (indexes.length === 0) return fail(list, `no ${list} entry named "${name}"`)
  if (indexes.length > 1) return fail(list, `several ${list} entries named "${name}": ${indexList(list, indexes)}`)
  return { index: indexes[0], entry: (entries ?? [])[indexes[0]] }
}

/** Servers compare equal when they differ only by a trailing slash or letter case of scheme/host. */
export const sameServer = (a: string, b: string): boolean => {
  const normalize = (server: string): string => {
    try {
      const url = new URL(server)
      return `${url.protocol}//${url.username}:${url.password}@${url.host}${url.pathname.replace(/\/+$/, "")}${url.search}`
    } catch {
      return server.replace(/\/+$/, "")
    }
  }
  return normalize(a) === normalize(b)
}
