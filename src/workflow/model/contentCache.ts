/**
 * A pure decoding kept by the content of its input: the workflow's spec and
 * the templates its status stores come as fresh objects at every reconcile
 * (each watch event is parsed anew) but seldom change, and decoding them
 * through the Schema costs about 50 times what hashing their JSON does.
 *
 * Results are kept by the SHA-256 of the input's JSON (not the JSON itself,
 * which for a large spec would be kept twice), least recently used first,
 * at most `capacity` of them. They are shared by equal inputs, so they must
 * be immutable.
 */
import { createHash } from "node:crypto"

export const cachedByContent = <A>(decode: (input: unknown) => A, capacity: number): ((input: unknown) => A) => {
  const cache = new Map<string, A>()
  return (input) => {
    const key = createHash("sha256").update(JSON.stringify(input) ?? "").digest("base64")
    if (cache.has(key)) {
      const hit = cache.get(key) as A
      cache.delete(key)
      cache.set(key, hit)
      return hit
    }
    const result = decode(input)
    cache.set(key, result)
    if (cache.size > capacity) cache.delete(cache.keys().next().value!)
    return result
  }
}
