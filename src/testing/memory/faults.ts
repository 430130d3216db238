/**
 * Failure injection, as tests drive it: errors injected into the next
 * matching calls, unreachable clusters (every open watch fails), hung
 * clusters (calls wait), held watch events (a lagging informer), and
 * compaction (watches behind it fail with Gone).
 */
import type { KubeErrorReason } from "../../kube/api/KubeError.js"
import type { ResourceKind } from "../../kube/api/Resources.js"
import { serverUrl, type Verb } from "./api.js"
import { allKinds, type ClusterState, type Injected, type Request } from "./state.js"
import { failWatcher, offer } from "./watch.js"

/** The injected failure the request meets, if any (counted down; removed when used up). */
export const takeInjected = (c: ClusterState, req: Request): Injected | undefined => {
  const injectedIndex = c.injected.findIndex((i) =>
    (i.verb === "*" || i.verb === req.verb) && (i.resource === "*" || i.resource === req.kind)
  )
  if (injectedIndex < 0) return undefined
  const injected = c.injected[injectedIndex]
  injected.remaining--
  if (injected.remaining <= 0) c.injected.splice(injectedIndex, 1)
  return injected
}

export const injectFailure = (
  c: ClusterState,
  verb: Verb | "*",
  resource: ResourceKind | "*",
  reason: KubeErrorReason,
  count: number,
  detail: string | undefined
): void => {
  if (count > 0) c.injected.push({ verb, resource, reason, detail, remaining: count })
}

export const compactCluster = (c: ClusterState): void => {
  for (const kind of allKinds) {
    const kindStore = c.kinds[kind]
    kindStore.history = []
    kindStore.compactedRv = c.rv
    for (const watcher of [...kindStore.watchers]) {
      if (watcher.queued > watcher.delivered) {
        const detail = `too old resource version: the watch fell behind compaction at ${c.rv}`
        failWatcher(kindStore, watcher, kind, "Gone", detail)
      }
    }
  }
}

export const setReachable = (c: ClusterState, reachable: boolean): void => {
  c.reachable = reachable
  if (reachable) return
  for (const kind of allKinds) {
    const kindStore = c.kinds[kind]
    for (const watcher of [...kindStore.watchers]) {
      failWatcher(kindStore, watcher, kind, "Unavailable", `connection to ${serverUrl(c.name)} lost`)
    }
  }
}

export const holdWatchEvents = (c: ClusterState, held: boolean): void => {
  if (held) {
    c.heldEvents ??= []
    return
  }
  const pending = c.heldEvents ?? []
  c.heldEvents = undefined
  for (const { watcher, item } of pending) offer(watcher, item)
}

export const setHung = (c: ClusterState, hung: boolean): void => {
  if (hung) c.running.closeUnsafe()
  else c.running.openUnsafe()
}
