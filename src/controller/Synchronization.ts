/**
 * Synchronization locks (mutexes and semaphores), the controller's half, as upstream's sync
 * manager (workflow/sync): the locks are controller state, one table per controller. The pure
 * engine reads it (`EngineInput.sync`) and says what it took, waits for and released
 * (`EngineOutput.sync`); `run` does both in one synchronous step, so no other reconcile can take a
 * lock between the engine's decision and its commit.
 *
 * - Semaphore limits are read live from their ConfigMap key (the lock's `namespace`, else the
 *   workflow's) whenever the engine asks for one (a holder that waits or is about to take it):
 *   a changed limit applies. A raised limit wakes the waiting workflows; a lowered one lets the
 *   holders finish.
 * - The ConfigMaps of the managed namespace (or all) are watched, as upstream's
 *   `runConfigMapWatcher` / `notifySemaphoreConfigUpdate`: when a semaphore's key changes (raised,
 *   lowered, removed, or its ConfigMap deleted) the workflows waiting for it, and only those
 *   (`LockTable.configMapChanged`, by an index from ConfigMap to its semaphores), are queued at
 *   once. The watch keeps no cache (a ConfigMap's limit is read where it is needed), so it costs
 *   no memory per ConfigMap; a relist compares every watched semaphore with its last limit.
 *   A change that lands between a workflow's read of its limits and its commit as a waiter
 *   queues that workflow again (`run`), so no ordering of the two loses the change.
 *   The read is remembered per workflow key (`readLimits(key, …)`), not per Map of limits, so
 *   the caller may merge the limits it read over several passes.
 *   `semaphoreRecheck` remains as a slow safety net; while the watch is not connected (not
 *   listed yet, or refused by RBAC without `watch` on configmaps, retrying for as long as that
 *   lasts) a waiter is looked at again after `semaphoreRecheckUnwatched` (10 s) instead.
 * - Waiting holders are in line by priority, then creation time (`mayTake`, shared with the
 *   engine). A release (or a take that leaves room) queues the workflows of the first waiters
 *   that now fit at once: no polling delay.
 * - After a restart the holders recorded in the unfinished workflows'
 *   `status.synchronization` are taken up again before any workflow is reconciled (`restore`,
 *   upstream's `Initialize`), over the limit if need be, so nothing is granted twice.
 * - A workflow that is gone releases everything it held or waited for (`forget`).
 *
 * `LockTable` is the pure bookkeeping; `Synchronization` the service around it.
 */
import { Context, Effect, Layer, Option, Stream } from "effect"
import { KubeClient } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { watchResource, type WatchItem } from "../kube/cache/Watch.js"
import { Supervisor } from "../runtime/Supervisor.js"
import { isRecord } from "../util/records.js"
import type { EngineOutput } from "../workflow/engine/contract.js"
import { waiterBefore, workflowOfHolder } from "../workflow/engine/sync.js"
import type { LockState, LockWaiter, SemaphoreSource, SyncInput, SyncRequests } from "../workflow/engine/syncTypes.js"
import { ControllerSettings } from "./ControllerSettings.js"
import { WorkQueue } from "./WorkQueue.js"

interface Lock {
  readonly holders: Set<string>
  readonly waiting: Map<string, LockWaiter>
}

const isMutex = (lock: string): boolean => lock.split("/")[1] === "Mutex"

/** A semaphore lock's ConfigMap (`<ns>/<name>`) and key; undefined for a mutex. */
const configMapOf = (lock: string): { readonly configMap: string; readonly key: string } | undefined => {
  const parts = lock.split("/")
  if (parts[1] !== "ConfigMap" || parts.length < 4) return undefined
  return { configMap: `${parts[0]}/${parts[2]}`, key: parts.slice(3).join("/") }
}

/** What a semaphore's ConfigMap now says of one key: its limit, or undefined (no such key, a bad value, no ConfigMap). */
export type ReadKey = (key: string) => number | undefined

export interface LockTable {
  /** The state of a lock as the engine reads it. */
  readonly state: (lock: string) => LockState | undefined
  /** A semaphore's limit as last read (mutexes: 1). */
  readonly limitOf: (lock: string) => number | undefined
  /** Records a semaphore's limit as read now; returns the workflows to wake when it rose. */
  readonly setLimit: (lock: string, limit: number) => ReadonlyArray<string>
  /** Applies what the engine decided for workflow `workflowKey`; returns the other workflows to wake. */
  readonly commit: (workflowKey: string, requests: SyncRequests) => ReadonlyArray<string>
  /** Takes up a holder recorded in a workflow's status (after a restart), whatever the limit. */
  readonly restoreHolder: (lock: string, holder: string) => void
  /** Everything workflow `workflowKey` holds or waits for is released; returns the workflows to wake. */
  readonly forget: (workflowKey: string) => ReadonlyArray<string>
  /**
   * ConfigMap `configMap` (`<ns>/<name>`) changed and now reads as `read` says: the workflows waiting
   * for one of its semaphores whose limit is not the one last read, to look at again.
   */
  readonly configMapChanged: (configMap: string, read: ReadKey) => ReadonlyArray<string>
  /** The ConfigMaps (`<ns>/<name>`) of the semaphores somebody waits for. */
  readonly awaitedConfigMaps: () => ReadonlyArray<string>
}

export const makeLockTable = (): LockTable => {
  const locks = new Map<string, Lock>()
  const limits = new Map<string, number>()
  /** The semaphore locks in `locks` by their ConfigMap (`<ns>/<name>`): what a ConfigMap's change looks at. */
  const byConfigMap = new Map<string, Set<string>>()
  const lockOf = (key: string): Lock => {
    let l = locks.get(key)
    if (l === undefined) {
      locks.set(key, l = { holders: new Set(), waiting: new Map() })
      const cm = configMapOf(key)
      if (cm !== undefined) {
        let set = byConfigMap.get(cm.configMap)
        if (set === undefined) byConfigMap.set(cm.configMap, set = new Set())
        set.add(key)
      }
    }
    return l
  }
  const limitOf = (key: string) => isMutex(key) ? 1 : limits.get(key)
  /** The workflows of the first waiters that fit in the free places of `key`. */
  const wakeable = (key: string): Array<string> => {
    const l = locks.get(key)
    const limit = limitOf(key)
    if (l === undefined || limit === undefined || l.waiting.size === 0) return []
    const free = limit - l.holders.size
    if (free <= 0) return []
    return [...l.waiting.values()].sort((a, b) => (waiterBefore(a, b) ? -1 : 1)).slice(0, free).map((w) => workflowOfHolder(w.holder))
  }
  const tidy = (key: string) => {
    const l = locks.get(key)
    if (l !== undefined && l.holders.size === 0 && l.waiting.size === 0) {
      locks.delete(key)
      const cm = configMapOf(key)
      const set = cm === undefined ? undefined : byConfigMap.get(cm.configMap)
      if (set !== undefined) {
        set.delete(key)
        if (set.size === 0) byConfigMap.delete(cm!.configMap)
      }
    }
  }
  const releaseWhere = (match: (holder: string) => boolean): Set<string> => {
    const touched = new Set<string>()
    for (const [key, l] of locks) {
      for (const h of l.holders) {
        if (match(h)) {
          l.holders.delete(h)
          touched.add(key)
        }
      }
      for (const h of l.waiting.keys()) {
        if (match(h)) {
          l.waiting.delete(h)
          touched.add(key)
        }
      }
    }
    return touched
  }
  const wakeAll = (keys: Iterable<string>, except: string): Array<string> => {
    const out = new Set<string>()
    for (const key of keys) {
      for (const wf of wakeable(key)) if (wf !== except) out.add(wf)
      tidy(key)
    }
    return [...out]
  }
  const inWorkflow = (workflowKey: string) => (holder: string) => holder === workflowKey || holder.startsWith(`${workflowKey}/`)

  return {
    state: (key) => {
      const l = locks.get(key)
      return l === undefined ? undefined : { holders: [...l.holders], waiting: [...l.waiting.values()] }
    },
    limitOf,
    setLimit: (key, limit) => {
      const before = limits.get(key)
      limits.set(key, limit)
      return before !== undefined && limit > before ? wakeable(key) : []
    },
    commit: (workflowKey, requests) => {
      const touched = new Set<string>()
      if (requests.releaseWorkflow) for (const k of releaseWhere(inWorkflow(workflowKey))) touched.add(k)
      if (requests.release.length > 0) {
        const released = new Set(requests.release)
        for (const k of releaseWhere((h) => released.has(h))) touched.add(k)
      }
      if (!requests.releaseWorkflow) {
        for (const a of requests.acquire) {
          for (const key of a.locks) {
            const l = lockOf(key)
            l.holders.add(a.holder)
            l.waiting.delete(a.holder)
            touched.add(key)
          }
        }
        for (const w of requests.wait) {
          for (const key of w.locks) {
            const l = lockOf(key)
            if (!l.holders.has(w.holder)) l.waiting.set(w.holder, { holder: w.holder, priority: w.priority, created: w.created })
          }
        }
      }
      return wakeAll(touched, workflowKey)
    },
    restoreHolder: (key, holder) => {
      const l = lockOf(key)
      l.holders.add(holder)
      l.waiting.delete(holder)
    },
    forget: (workflowKey) => wakeAll(releaseWhere(inWorkflow(workflowKey)), workflowKey),
    configMapChanged: (configMap, read) => {
      const out = new Set<string>()
      for (const key of byConfigMap.get(configMap) ?? []) {
        const l = locks.get(key)
        if (l === undefined || l.waiting.size === 0) continue
        const limit = read(configMapOf(key)!.key)
        // Unchanged (another key of the ConfigMap was edited): nothing to look at again.
        if (limit !== undefined && limit === limits.get(key)) continue
        // Raised, lowered, or no longer readable: every waiter is looked at again (its reconcile
        // reads the limit itself, takes a free place in line order, or says why it cannot).
        for (const w of l.waiting.values()) out.add(workflowOfHolder(w.holder))
      }
      return [...out]
    },
    awaitedConfigMaps: () => {
      const out: Array<string> = []
      for (const [cm, keys] of byConfigMap) {
        for (const key of keys) {
          if ((locks.get(key)?.waiting.size ?? 0) > 0) {
            out.push(cm)
            break
          }
        }
      }
      return out
    }
  }
}

/** The holders a workflow's `status.synchronization` records, by lock. */
export const recordedHolders = (wf: KubeObject): Array<{ readonly lock: string; readonly holder: string }> => {
  const sync = (wf["status"] as { synchronization?: unknown } | undefined)?.synchronization
  if (!isRecord(sync)) return []
  const out: Array<{ lock: string; holder: string }> = []
  const sem = isRecord(sync["semaphore"]) ? sync["semaphore"] : {}
  for (const h of Array.isArray(sem["holding"]) ? sem["holding"] : []) {
    if (!isRecord(h) || typeof h["semaphore"] !== "string") continue
    for (const holder of Array.isArray(h["holders"]) ? h["holders"] : []) {
      if (typeof holder === "string") out.push({ lock: h["semaphore"], holder })
    }
  }
  const mtx = isRecord(sync["mutex"]) ? sync["mutex"] : {}
  for (const h of Array.isArray(mtx["holding"]) ? mtx["holding"] : []) {
    if (isRecord(h) && typeof h["mutex"] === "string" && typeof h["holder"] === "string") out.push({ lock: h["mutex"], holder: h["holder"] })
  }
  return out
}

/** A semaphore's limit from its ConfigMap key (upstream's getSyncLimit), or why it cannot be had. */
const parseLimit = (cm: KubeObject, source: SemaphoreSource): number | { readonly error: string } => {
  const data = (cm["data"] ?? {}) as Record<string, unknown>
  const raw = data[source.key]
  if (typeof raw !== "string") return { error: `failed to initialize semaphore ${source.lock} with limit` }
  const n = Number.parseInt(raw.trim(), 10)
  if (!Number.isFinite(n) || String(n) !== raw.trim()) return { error: `failed to initialize semaphore ${source.lock} with limit` }
  return n
}

/**
 * How often a workflow waiting for a semaphore is looked at again: only a safety net, the ConfigMap
 * watch queues it as soon as the limit changes (see the module comment for why it stays).
 */
export const semaphoreRecheck = "5 minutes"

/** The recheck while the ConfigMap watch has not synced yet or is failing (refused by RBAC, server away). */
export const semaphoreRecheckUnwatched = "10 seconds"

/** What a ConfigMap's `data` says of a semaphore key: its limit, or undefined. */
const readKeyOf = (cm: KubeObject | undefined): ReadKey => (key) => {
  if (cm === undefined) return undefined
  const limit = parseLimit(cm, { lock: "", namespace: "", name: "", key })
  return typeof limit === "number" ? limit : undefined
}

export class Synchronization extends Context.Service<Synchronization, {
  /**
   * Reads the limits of the semaphores named (live, from their ConfigMaps) for workflow `key`;
   * wakes waiters of a raised one. The read is remembered for `key` until its `run` has every
   * limit it needs, so a ConfigMap change in between queues `key` again.
   */
  readonly readLimits: (
    key: string,
    sources: ReadonlyArray<SemaphoreSource>
  ) => Effect.Effect<ReadonlyMap<string, number | { readonly error: string }>>
  /**
   * Runs the engine for workflow `key` against the lock table (with the limits read) and commits
   * its lock requests in the same step; the workflows a release leaves room for are queued, and
   * `key` itself when it now waits for a semaphore whose ConfigMap changed since `readLimits(key, …)`
   * (or, while the ConfigMap watch is not connected, after `semaphoreRecheckUnwatched`).
   */
  readonly run: (
    key: string,
    limits: ReadonlyMap<string, number | { readonly error: string }>,
    engine: (sync: SyncInput) => EngineOutput
  ) => Effect.Effect<EngineOutput>
  /** After a restart, before any workflow is taken: the holders the unfinished workflows record. */
  readonly restore: (workflows: ReadonlyArray<KubeObject>) => Effect.Effect<void>
  /** The workflow is gone: everything it held or waited for is released. */
  readonly forget: (key: string) => Effect.Effect<void>
}>()("flotilla/controller/Synchronization") {
  static readonly layer = Layer.effect(Synchronization, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const client = yield* KubeClient
  const queue = yield* WorkQueue
  const { config, options } = yield* ControllerSettings
  const supervisor = yield* Supervisor
  const table = makeLockTable()
  const wake = (keys: ReadonlyArray<string>) => Effect.forEach(keys, queue.add, { discard: true })

  /*
   * Which ConfigMap changed when, by a sequence number of watch events, so that `run` can tell
   * whether one a workflow read its limits from changed before it was recorded as a waiter (the
   * watch then found nobody to wake). Bounded: past `maxTracked` names (or on a relist) it starts
   * over from `floor`, and a read older than that counts as overtaken. `readAt` holds, per workflow
   * key, the earliest read since its last complete `run` and the ConfigMaps read (one entry per
   * workflow in a round, dropped by that `run` or `forget`).
   */
  let seq = 0
  let floor = 0
  const lastChange = new Map<string, number>()
  const maxTracked = 10_000
  const readAt = new Map<string, { readonly seq: number; readonly configMaps: Set<string> }>()
  const overtaken = (key: string): boolean => {
    const read = readAt.get(key)
    if (read === undefined) return false
    if (floor > read.seq) return true
    for (const cm of read.configMaps) if ((lastChange.get(cm) ?? 0) > read.seq) return true
    return false
  }
  /** Whether the ConfigMap watch is connected (listed, or resumed): until then only the recheck sees a change. */
  let watching = false

  const onWatch = (item: WatchItem): Effect.Effect<void> =>
    Effect.suspend(() => {
      seq += 1
      const woken = new Set<string>()
      const changed = (configMap: string, read: ReadKey) => {
        for (const k of table.configMapChanged(configMap, read)) woken.add(k)
      }
      const cmKey = (o: KubeObject) => `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`
      switch (item._tag) {
        case "Synced": {
          // A (re)list: whatever changed while the watch was away.
          floor = seq
          lastChange.clear()
          const listed = new Map(item.items.map((o) => [cmKey(o), o] as const))
          for (const cm of table.awaitedConfigMaps()) changed(cm, readKeyOf(listed.get(cm)))
          break
        }
        case "Upsert":
        case "Delete": {
          const cm = cmKey(item.object)
          if (lastChange.size >= maxTracked) {
            floor = seq
            lastChange.clear()
          }
          lastChange.set(cm, seq)
          changed(cm, readKeyOf(item._tag === "Upsert" ? item.object : undefined))
          break
        }
      }
      return wake([...woken])
    })

  yield* supervisor.superviseScoped(
    `semaphore-configmaps/${client.cluster}`,
    watchResource(client, "configmaps", config.namespace, {
      ...options.watch,
      onState: (state) => Effect.sync(() => void (watching = state._tag === "Connected"))
    }).pipe(Stream.runForEach(onWatch), Effect.ensuring(Effect.sync(() => void (watching = false)))),
    { annotations: { cluster: client.cluster, informer: "configmaps" } }
  )

  const readLimit = (source: SemaphoreSource) =>
    client.get("configmaps", source.namespace, source.name).pipe(
      Effect.map((cm) => parseLimit(cm, source)),
      Effect.catchTag("KubeError", (e) => Effect.succeed({ error: `failed to get semaphore limit for ${source.lock}: ${e.message}` })),
      Effect.option,
      Effect.map(Option.getOrElse(() => ({ error: `failed to initialize semaphore ${source.lock} with limit` })))
    )

  const readLimits = (key: string, sources: ReadonlyArray<SemaphoreSource>) =>
    Effect.gen(function*() {
      const out = new Map<string, number | { readonly error: string }>()
      const read = readAt.get(key) ?? { seq, configMaps: new Set<string>() }
      for (const x of sources) read.configMaps.add(`${x.namespace}/${x.name}`)
      readAt.set(key, read)
      for (const source of sources) {
        const limit = yield* readLimit(source)
        out.set(source.lock, limit)
        if (typeof limit === "number") yield* wake(table.setLimit(source.lock, limit))
      }
      return out as ReadonlyMap<string, number | { readonly error: string }>
    })

  const run = (key: string, limits: ReadonlyMap<string, number | { readonly error: string }>, engine: (sync: SyncInput) => EngineOutput) =>
    Effect.suspend(() => {
      const output = engine({ lock: table.state, limits })
      const woken = output.sync === undefined ? [] : [...table.commit(key, output.sync)]
      const waitsForSemaphore = (output.sync?.wait ?? []).some((w) => w.locks.some((l) => configMapOf(l) !== undefined))
      // It now waits for a semaphore, but a ConfigMap changed after its limits were read: look again.
      if (waitsForSemaphore && overtaken(key)) woken.push(key)
      // Every limit it asked for was read: this round's reads are done (another pass reads more, and keeps the earliest).
      if ((output.sync?.needLimits ?? []).every((s) => limits.has(s.lock))) readAt.delete(key)
      const recheck = waitsForSemaphore && !watching ? queue.addAfter(key, semaphoreRecheckUnwatched) : Effect.void
      return Effect.as(Effect.andThen(wake(woken), recheck), output)
    })

  const restore = (workflows: ReadonlyArray<KubeObject>) =>
    Effect.sync(() => {
      for (const wf of workflows) {
        const phase = (wf["status"] as { phase?: unknown } | undefined)?.phase
        if (phase === "Succeeded" || phase === "Failed" || phase === "Error") continue
        // status is writable by whoever may update the workflow: only its own holders of its own namespace's locks count
        // (a forged `{lock: "other-ns/Mutex/x", holder: "other-ns/ghost"}` would otherwise hold another tenant's lock for ever).
        const self = `${wf.metadata.namespace ?? ""}/${wf.metadata.name ?? ""}`
        for (const { holder, lock } of recordedHolders(wf)) {
          if ((holder === self || holder.startsWith(`${self}/`)) && lock.startsWith(`${wf.metadata.namespace ?? ""}/`)) table.restoreHolder(lock, holder)
        }
      }
    })

  const forget = (key: string) =>
    Effect.suspend(() => {
      readAt.delete(key)
      return wake(table.forget(key))
    })

  return Synchronization.of({ readLimits, run, restore, forget })
})

