/** Helpers shared by the system and user kubeconfig validators. Not exported from the package. */
import { KubeconfigError } from "./KubeconfigError.js"
import type { NamedCluster, NamedUser } from "./Kubeconfig.js"

/** `null`, `undefined`, `""` and `[]` all mean "not set" in a kubeconfig. */
export const isSet = (value: unknown): boolean =>
  value !== null && value !== undefined && value !== "" && !(Array.isArray(value) && value.length === 0)

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

/** Builds errors for one source and, optionally, one context. */
export const errorsFor = (source: string, context?: string) =>
(field: string | undefined, detail: string): KubeconfigError =>
  new KubeconfigError({ source, context, field, detail })

export type Lookup<A> =
  | { readonly _tag: "Found"; readonly index: number; readonly entry: A }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Ambiguous"; readonly indexes: ReadonlyArray<number> }

const lookup = <A extends { readonly name?: string | null | undefined }>(
  entries: ReadonlyArray<A> | null | undefined,
  name: string
): Lookup<A> => {
  const indexes: Array<number> = []
  ;(entries ?? []).forEach((entry, index) => {
    if (entry.name === name) indexes.push(index)
  })
  if (indexes.length === 0) return { _tag: "Missing" }
  if (indexes.length > 1) return { _tag: "Ambiguous", indexes }
  return { _tag: "Found", index: indexes[0], entry: (entries ?? [])[indexes[0]] }
}

export const lookupCluster = (entries: ReadonlyArray<NamedCluster> | null | undefined, name: string) =>
  lookup(entries, name)

export const lookupUser = (entries: ReadonlyArray<NamedUser> | null | undefined, name: string) => lookup(entries, name)

export const indexList = (prefix: string, indexes: ReadonlyArray<number>): string =>
  indexes.map((index) => `${prefix}[${index}]`).join(", ")

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
