/**
 * Watch fan-out: what a change looks like to one watcher (a change that
 * stops or starts matching its selector is a DELETED or an ADDED), delivery
 * into the watcher's queue, a watch broken by the server (Gone, Unavailable),
 * and opening a watch: from "any" version (the current objects as ADDED), or
 * from a resourceVersion by replaying the kind's history (older than the
 * compacted part: Gone). The stream a client reads is built in `client.ts`.
 */
import { Cause, Queue } from "effect"
import { KubeError, type KubeErrorReason } from "../../kube/api/KubeError.js"
import { type KubeObject, type ResourceKind, resources, type WatchEvent, type WatchOptions } from "../../kube/api/Resources.js"
import { fail } from "./errors.js"
import { cloneJson } from "./json.js"
import { buildMatcher } from "./selectors.js"
import { type Ctx, type HistoryEntry, isChange, type Item, type KindStore, type Watcher } from "./state.js"

export const toItem = (entry: HistoryEntry, match: (o: KubeObject) => boolean): Item | undefined => {
  switch (entry.type) {
    case "ADDED":
    case "DELETED":
      return match(entry.object) ? { type: entry.type, object: entry.object } : undefined
    case "MODIFIED": {
      const now = match(entry.object)
      const before = entry.prev !== undefined && match(entry.prev)
      if (now && before) return { type: "MODIFIED", object: entry.object }
      if (now) return { type: "ADDED", object: entry.object }
      if (before) {
        // Stops matching: the watcher sees the last state it matched, at the new version.
        const prev = entry.prev!
        return {
          type: "DELETED",
          object: { ...prev, metadata: { ...prev.metadata, resourceVersion: entry.object.metadata.resourceVersion } }
        }
      }
      return undefined
    }
  }
}

export const offer = (watcher: Watcher, item: Item): void => {
  if (watcher.failure !== undefined) return
  if (isChange(item)) watcher.queued++
  Queue.offerUnsafe(watcher.queue, item)
}

/** Ends a watch of `kind` with a `reason` error, as a real server's broken watch does. */
export const failWatcher = (store: KindStore, watcher: Watcher, kind: ResourceKind, reason: KubeErrorReason, detail: string): void => {
  store.watchers.delete(watcher)
  if (watcher.failure !== undefined) return
  const error = new KubeError({ reason, cluster: watcher.label, verb: "watch", resource: kind, namespace: watcher.ns, detail })
  watcher.failure = error
  Queue.failCauseUnsafe(watcher.queue, Cause.fail(error))
}

export const openWatch = (
  ctx: Ctx,
  kind: ResourceKind,
  namespace: string | undefined,
  options: WatchOptions,
  queue: Queue.Queue<Item, KubeError | Cause.Done>
): Watcher => {
  const c = ctx.c
  const kindStore = c.kinds[kind]
  const match = buildMatcher(ctx, kind, options)
  const ns = resources[kind].namespaced ? namespace : undefined
  const watcher: Watcher = { label: ctx.label, ns, match, queue, queued: 0, delivered: 0, failure: undefined }
  const rvText = options.resourceVersion ?? ""
  if (rvText === "" || rvText === "0") {
    offer(watcher, { type: "OPENED" })
    // "Any" version: synthetic ADDED for the current state, then live.
    const buckets = ns !== undefined ? [kindStore.byNs.get(ns)] : [...kindStore.byNs.values()]
    for (const bucket of buckets) {
      for (const object of bucket?.values() ?? []) if (match(object)) offer(watcher, { type: "ADDED", object })
    }
  } else {
    if (!/^\d+$/.test(rvText)) throw fail(ctx, "Invalid", `invalid resource version: ${JSON.stringify(rvText)}`)
    const from = Number(rvText)
    if (from < kindStore.compactedRv) {
      throw fail(ctx, "Gone", `too old resource version: ${from} (${kindStore.compactedRv + 1})`)
    }
    offer(watcher, { type: "OPENED" })
    const history = kindStore.history
    let lo = 0
    let hi = history.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (history[mid].rv <= from) lo = mid + 1
      else hi = mid
    }
    for (let i = lo; i < history.length; i++) {
      const entry = history[i]
      if (ns !== undefined && entry.ns !== ns) continue
      const item = toItem(entry, match)
      if (item !== undefined) offer(watcher, item)
    }
  }
  kindStore.watchers.add(watcher)
  return watcher
}

export const toWatchEvent = (item: Item): WatchEvent =>
  isChange(item) ? { type: item.type, object: cloneJson(item.object) } : item
