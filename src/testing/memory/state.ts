/**
 * The in-memory server's state: per cluster, the objects of each kind by
 * namespace and name, each kind's watch history and open watchers, the uid and
 * owner indexes, identities, injected failures, the audit and change logs and
 * pod logs; and the context of one call (`Ctx`: cluster, caller, time,
 * randomness, request). Plain mutable structures, only touched synchronously
 * inside one call, which is what makes every call atomic.
 */
import { type Cause, type Duration, Latch, type Queue, type Random } from "effect"
import type { KubeError, KubeErrorReason } from "../../kube/api/KubeError.js"
import { type KubeObject, type ResourceKind, resources } from "../../kube/api/Resources.js"
import type { AuditEntry, ChangeRecord, PolicyRule, Verb } from "./api.js"

/** The server's options, resolved; every cluster carries them. */
export interface Limits {
  readonly bookmarkInterval: Duration.Duration
  readonly maxHistory: number
  readonly maxLog: number
  readonly garbageCollection: boolean
}

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED"

export interface HistoryEntry {
  readonly rv: number
  readonly type: ChangeType
  readonly ns: string
  readonly object: KubeObject
  readonly prev: KubeObject | undefined
}

export type Item =
  | { readonly type: ChangeType; readonly object: KubeObject }
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }
  | { readonly type: "OPENED" }

/** Bookmarks and the opening marker carry no object: not counted as delivered changes. */
export const isChange = (item: Item): item is Extract<Item, { object: KubeObject }> =>
  item.type !== "BOOKMARK" && item.type !== "OPENED"

export interface Watcher {
  /** The cluster name the watching client reports, for errors. */
  readonly label: string
  readonly ns: string | undefined
  readonly match: (object: KubeObject) => boolean
  readonly queue: Queue.Queue<Item, KubeError | Cause.Done>
  queued: number
  delivered: number
  failure: KubeError | undefined
}

export interface KindStore {
  readonly byNs: Map<string, Map<string, KubeObject>>
  history: Array<HistoryEntry>
  /** Watches from versions below this fail with Gone. */
  compactedRv: number
  readonly watchers: Set<Watcher>
}

export interface Identity {
  readonly name: string
  readonly token: string
  rules: Array<PolicyRule>
}

export interface Injected {
  readonly verb: Verb | "*"
  readonly resource: ResourceKind | "*"
  readonly reason: KubeErrorReason
  readonly detail: string | undefined
  remaining: number
}

export interface UidRef {
  readonly kind: ResourceKind
  readonly ns: string
  readonly name: string
}

export interface ClusterState {
  readonly name: string
  readonly limits: Limits
  rv: number
  readonly kinds: Record<ResourceKind, KindStore>
  readonly byUid: Map<string, UidRef>
  /** owner uid -> dependent uids */
  readonly dependents: Map<string, Set<string>>
  readonly identities: Map<string, Identity>
  readonly tokens: Map<string, Identity>
  reachable: boolean
  readonly running: Latch.Latch
  injected: Array<Injected>
  requests: Array<AuditEntry>
  changes: Array<ChangeRecord>
  seq: number
  /** Watch deliveries held back by `holdWatchEvents`, in order; undefined when not held. */
  heldEvents: Array<{ readonly watcher: Watcher; readonly item: Item }> | undefined
  /** "ns/pod" -> container -> text */
  readonly logs: Map<string, Map<string, string>>
}


export const allKinds = Object.keys(resources) as Array<ResourceKind>

export const makeClusterState = (name: string, limits: Limits): ClusterState => {
  const kinds = {} as Record<ResourceKind, KindStore>
  for (const kind of allKinds) {
    kinds[kind] = { byNs: new Map(), history: [], compactedRv: 0, watchers: new Set() }
  }
  return {
    name,
    limits,
    rv: 0,
    kinds,
    byUid: new Map(),
    dependents: new Map(),
    identities: new Map(),
    tokens: new Map(),
    reachable: true,
    running: Latch.makeUnsafe(true),
    injected: [],
    requests: [],
    changes: [],
    seq: 0,
    heldEvents: undefined,
    logs: new Map()
  }
}

/** Audit and change logs keep their last `maxLog` entries (trimmed in batches). */
export const trimLog = <A>(c: ClusterState, log: Array<A>): Array<A> =>
  log.length > c.limits.maxLog + (c.limits.maxLog >> 1) ? log.slice(log.length - c.limits.maxLog) : log

export interface ClientRef {
  /** The in-memory cluster name. */
  readonly clusterName: string
  /** The cluster name reported in errors (spec.cluster for connected clients). */
  readonly label: string
  readonly auth: { readonly _tag: "Admin" } | { readonly _tag: "Token"; readonly token: string }
  /** Present for connector clients, whose scope can close. */
  readonly session?: Session
  /** The server's clusters, by name. */
  readonly clusters: ReadonlyMap<string, ClusterState>
}

export interface Session {
  closed: boolean
  readonly watches: Set<() => void>
}

export interface Request {
  readonly verb: Verb
  readonly kind: ResourceKind
  readonly subresource?: string
  /** The namespace of the request path (undefined: all namespaces / cluster scope). */
  readonly namespace: string | undefined
  readonly name: string | undefined
}

export interface Ctx {
  readonly c: ClusterState
  readonly label: string
  readonly identity: string
  readonly now: number
  readonly random: Random.Random
  readonly req: Request
}

export const adminIdentity = "admin"
export const gcIdentity = "system:garbage-collector"
export const harnessIdentity = "harness"

export const lookup = (c: ClusterState, kind: ResourceKind, ns: string, name: string): KubeObject | undefined =>
  c.kinds[kind].byNs.get(ns)?.get(name)

export const namespaceOf = (object: KubeObject): string => object.metadata.namespace ?? ""
