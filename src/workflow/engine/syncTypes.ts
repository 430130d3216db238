/**
 * What the engine and the controller exchange about synchronization (mutexes and semaphores)
 * and memoization: the controller's lock state and ConfigMap reads go in (`EngineInput.sync`,
 * `EngineInput.memo`), the locks the engine takes, waits for and releases, and the cache entries
 * it stores, come out (`EngineOutput.sync`, `EngineOutput.memo`). Names as upstream's
 * workflow/sync: a lock key is `<ns>/Mutex/<name>` or `<ns>/ConfigMap/<configmap>/<key>`, a
 * holder key `<ns>/<workflow>` (workflow level) or `<ns>/<workflow>/<nodeID>` (template level).
 */

/** One holder waiting for a lock, in line by priority (higher first), then creation time (older first). */
export interface LockWaiter {
  readonly holder: string
  readonly priority: number
  /** The workflow's creation time, epoch millis. */
  readonly created: number
}

/** The controller's state of one lock. */
export interface LockState {
  readonly holders: ReadonlyArray<string>
  readonly waiting: ReadonlyArray<LockWaiter>
}

/** A semaphore's limit source: key `key` of ConfigMap `namespace/name`. */
export interface SemaphoreSource {
  readonly lock: string
  readonly namespace: string
  readonly name: string
  readonly key: string
}

export interface SyncInput {
  /** The current state of a lock (a read of the controller's; undefined = nobody holds or waits). */
  readonly lock: (lockKey: string) => LockState | undefined
  /** Semaphore limits read from their ConfigMaps by lock key: the limit, or why it could not be read. */
  readonly limits: ReadonlyMap<string, number | { readonly error: string }>
}

export interface SyncRequests {
  /** Holders that took these locks now (all of them at once). */
  readonly acquire: ReadonlyArray<{ readonly holder: string; readonly locks: ReadonlyArray<string> }>
  /** Holders that wait for these locks (to be queued, in line). */
  readonly wait: ReadonlyArray<LockWaiter & { readonly locks: ReadonlyArray<string> }>
  /** Holders done with every lock they hold or wait for. */
  readonly release: ReadonlyArray<string>
  /** Every holder of the workflow (`<ns>/<name>` and `<ns>/<name>/...`) is done: it completed. */
  readonly releaseWorkflow: boolean
  /** Semaphores whose limit the engine needed and was not given: read them and run again. */
  readonly needLimits: ReadonlyArray<SemaphoreSource>
}

/** A memoization cache (ConfigMap in the workflow's namespace) as read. */
export type CacheRead =
  | { readonly found: false }
  | {
    readonly found: true
    readonly data: Readonly<Record<string, string>>
    readonly labels: Readonly<Record<string, string>>
    /** Read for the `artifact-repositories` ConfigMap's default key (artifacts.ts). */
    readonly annotations?: Readonly<Record<string, string>>
  }

export interface MemoInput {
  /** Memoization caches by ConfigMap name. */
  readonly caches: ReadonlyMap<string, CacheRead>
}

export interface MemoRequests {
  /** Outputs of nodes that just Succeeded, to store under `key` in cache `cache`. */
  readonly save: ReadonlyArray<{ readonly cache: string; readonly key: string; readonly nodeId: string; readonly outputs: unknown }>
  /** Entries that were hit now (upstream updates their `lastHitTimestamp`). */
  readonly hit: ReadonlyArray<{ readonly cache: string; readonly key: string }>
  /** Caches the engine needed and was not given: read them and run again. */
  readonly needCaches: ReadonlyArray<string>
}
