/**
 * The parsed kubeconfigs `UserClients` keeps, one per secret, so a remote pod's create does not
 * parse the secret's YAML again while its text is the same (parsing was about 1 ms per remote pod:
 * issue 14's bench).
 *
 * A kept parse is served only for the very text it came from (a SHA-256 of the text is compared on
 * every use): a changed secret is parsed again, never answered from its former text. Bounded by
 * count and by the size of the texts kept (the least recently used goes first); a text larger than
 * `maxEntryBytes` (a kubeconfig is a few KiB) is parsed every time and never kept. A text that
 * fails to parse leaves nothing of the key's former text behind.
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"

export interface Limits {
  /** How many keys' parses are kept at most. */
  readonly maxEntries: number
  /** The texts kept add up to at most this (their length in UTF-16 code units). */
  readonly maxTotalBytes: number
  /** A text longer than this is never kept. */
  readonly maxEntryBytes: number
}

export const defaultLimits: Limits = {
  maxEntries: 1024,
  maxTotalBytes: 16 * 2 ** 20,
  maxEntryBytes: 64 * 2 ** 10
}

export interface ParsedKubeconfigs<A> {
  /** `parse(text)`, or the parse kept for `key` if it came from this very text. */
  readonly parse: <E, R>(key: string, text: string, parse: (text: string) => Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Drops what is kept for `key` (its secret was deleted or must no longer be used). */
  readonly forget: (key: string) => void
  /** The keys kept, least recently used first. */
  readonly keys: () => ReadonlyArray<string>
  /** The size of the texts kept, in total. */
  readonly totalBytes: () => number
}

export const make = <A>(limits: Limits = defaultLimits): ParsedKubeconfigs<A> => {
  // A Map keeps insertion order: deleting and setting again on use makes it an LRU.
  const kept = new Map<string, { readonly digest: string; readonly value: A; readonly bytes: number }>()
  let totalBytes = 0
  const forget = (key: string) => {
    const entry = kept.get(key)
    if (entry === undefined) return
    kept.delete(key)
    totalBytes -= entry.bytes
  }
  const parse = <E, R>(key: string, text: string, parseText: (text: string) => Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      const bytes = text.length
      if (bytes > limits.maxEntryBytes) {
        forget(key)
        return parseText(text)
      }
      const digest = createHash("sha256").update(text).digest("hex")
      const hit = kept.get(key)
      if (hit !== undefined && hit.digest === digest) {
        kept.delete(key)
        kept.set(key, hit)
        return Effect.succeed(hit.value)
      }
      return parseText(text).pipe(
        Effect.tap((value) =>
          Effect.sync(() => {
            forget(key)
            kept.set(key, { digest, value, bytes })
            totalBytes += bytes
            while (kept.size > limits.maxEntries || totalBytes > limits.maxTotalBytes) {
              forget(kept.keys().next().value!)
            }
          })
        ),
        // a text that no longer parses keeps nothing of the former one
        Effect.tapError(() => Effect.sync(() => forget(key)))
      )
    })
  return { parse, forget, keys: () => [...kept.keys()], totalBytes: () => totalBytes }
}
