/**
 * Memoization caches, the controller's half, as upstream's ConfigMap cache
 * (workflow/controller/cache): a template's `memoize.cache.configMap` is a ConfigMap in the
 * workflow's namespace labelled `workflows.argoproj.io/configmap-type: Cache`, one entry per key,
 * JSON `{nodeID, outputs, creationTimestamp, lastHitTimestamp}`. The engine decides (hit, miss,
 * what to store: workflow/engine/memoize.ts); this reads the caches it asks for and writes the
 * entries it stores (creating the ConfigMap with its label when missing, as upstream), with the
 * controller's identity in the given namespace only (a name that is no ConfigMap name, `other/name`
 * say, is never read or written; the engine refuses it). A hit updates the entry's
 * `lastHitTimestamp`, best effort.
 */
import { Context, Effect, Layer, Schedule } from "effect"
import { KubeClient } from "../kube/api/KubeClient.js"
import { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { validateSubdomain } from "../kube/api/Validation.js"
import { cacheLabelError, configMapTypeCache, labelConfigMapType } from "../workflow/engine/memoize.js"
import type { CacheRead, MemoRequests } from "../workflow/engine/syncTypes.js"

const isoSeconds = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z")

export class Memoization extends Context.Service<Memoization, {
  /** The caches named, as they are now (absent ones `found: false`). */
  readonly read: (namespace: string, names: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, CacheRead>, KubeError>
  /** Stores the entries the engine asks for and marks its hits; fails when an entry could not be stored. */
  readonly apply: (namespace: string, requests: MemoRequests, now: number) => Effect.Effect<void, KubeError>
}>()("flotilla/controller/Memoization") {
  static readonly layer = Layer.effect(Memoization, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const client = yield* KubeClient

  const getCache = (namespace: string, name: string) =>
    client.get("configmaps", namespace, name).pipe(
      Effect.map((cm): KubeObject | undefined => cm),
      Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(undefined) : Effect.fail(e))
    )

  const read = (namespace: string, names: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const out = new Map<string, CacheRead>()
      for (const name of names) {
        // only `namespace`'s: a name that is no ConfigMap name (`other/name`, say) is never asked for
        const cm = validateSubdomain(name) === undefined ? yield* getCache(namespace, name) : undefined
        out.set(
          name,
          cm === undefined
            ? { found: false }
            : {
              found: true,
              data: (cm["data"] ?? {}) as Record<string, string>,
              labels: cm.metadata.labels ?? {},
              annotations: cm.metadata.annotations ?? {}
            }
        )
      }
      return out as ReadonlyMap<string, CacheRead>
    })

  /** Changes one entry of cache `name` (made when missing); a Conflict is tried again on a fresh copy. */
  const update = (namespace: string, name: string, change: (data: Record<string, string>) => boolean, create: boolean) =>
    Effect.gen(function*() {
      const invalidName = validateSubdomain(name)
      if (invalidName !== undefined) {
        return yield* Effect.fail(new KubeError({ reason: "Invalid", cluster: client.cluster, verb: "update", resource: "configmaps", namespace, name, detail: invalidName }))
      }
      let cm = yield* getCache(namespace, name)
      if (cm === undefined) {
        if (!create) return
        cm = yield* client.create("configmaps", namespace, {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name, namespace, labels: { [labelConfigMapType]: configMapTypeCache } }
        }).pipe(Effect.catchTag("KubeError", (e) => e.reason === "AlreadyExists" ? client.get("configmaps", namespace, name) : Effect.fail(e)))
      } else {
        const invalid = cacheLabelError(cm.metadata.labels)
        if (invalid !== undefined) return yield* Effect.fail(new KubeError({ reason: "Invalid", cluster: client.cluster, verb: "update", resource: "configmaps", namespace, name, detail: invalid }))
      }
      const data = { ...((cm["data"] ?? {}) as Record<string, string>) }
      if (!change(data)) return
      yield* client.replace("configmaps", namespace, {
        ...cm,
        metadata: { ...cm.metadata, labels: { ...cm.metadata.labels, [labelConfigMapType]: configMapTypeCache } },
        data
      })
    }).pipe(
      Effect.retry({ while: (e) => e.reason === "Conflict", schedule: Schedule.recurs(4) })
    )

  const apply = (namespace: string, requests: MemoRequests, now: number) =>
    Effect.gen(function*() {
      const stamp = isoSeconds(now)
      for (const s of requests.save) {
        yield* update(namespace, s.cache, (data) => {
          data[s.key] = JSON.stringify({ nodeID: s.nodeId, outputs: s.outputs, creationTimestamp: stamp, lastHitTimestamp: stamp })
          return true
        }, true)
      }
      for (const h of requests.hit) {
        yield* update(namespace, h.cache, (data) => {
          const raw = data[h.key]
          if (raw === undefined) return false
          try {
            data[h.key] = JSON.stringify({ ...JSON.parse(raw), lastHitTimestamp: stamp })
            return true
          } catch {
            return false
          }
        }, false).pipe(Effect.catchTag("KubeError", (e) =>
          Effect.logWarning("memoization: could not mark a cache hit").pipe(Effect.annotateLogs({ cache: h.cache, key: h.key, error: e.message }))))
      }
    })

  return Memoization.of({ read, apply })
})
