/**
 * Tokens the in-memory server issued through TokenRequest (tokens.ts), each
 * bound to a pod: checked on every request (calls.ts), as the real server
 * checks a bound token's object.
 */
import { type ClusterState, type Identity, lookup } from "./state.js"

/** The pod a token is bound to, and when it expires. */
export interface Binding {
  readonly namespace: string
  readonly pod: string
  readonly uid: string
  readonly identity: Identity
  readonly expiresAt: number
}

const bindings = new WeakMap<ClusterState, Map<string, Binding>>()

/**
 * Registers `token` as `binding.identity`'s until it expires or its pod goes.
 * The tokens bound before that are dead by `now` (expired, their pod gone or
 * replaced, their identity removed) are forgotten first, so a long run that
 * keeps issuing tokens does not keep every one it ever issued.
 */
export const bindToken = (c: ClusterState, token: string, binding: Binding, now: number): void => {
  const map = bindings.get(c) ?? new Map<string, Binding>()
  bindings.set(c, map)
  for (const old of [...map.keys()]) boundTokenValid(c, old, now)
  map.set(token, binding)
  c.tokens.set(token, binding.identity)
}

/** How many issued tokens the cluster still holds (tests). */
export const boundTokenCount = (c: ClusterState): number => bindings.get(c)?.size ?? 0

/**
 * Whether a token the cluster issued through TokenRequest is still good: its
 * bound pod exists with the same uid, its identity was not removed, and it has
 * not expired. True for tokens it did not issue (static identities).
 */
export const boundTokenValid = (c: ClusterState, token: string, now: number): boolean => {
  const binding = bindings.get(c)?.get(token)
  if (binding === undefined) return true
  const pod = lookup(c, "pods", binding.namespace, binding.pod)
  const ok = now < binding.expiresAt && pod !== undefined && pod.metadata.uid === binding.uid &&
    c.identities.get(binding.identity.name) === binding.identity
  if (!ok) {
    bindings.get(c)?.delete(token)
    c.tokens.delete(token)
  }
  return ok
}

