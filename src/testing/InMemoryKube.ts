/**
 * An in-memory, multi-cluster Kubernetes API server with real API semantics:
 * resourceVersions, optimistic concurrency, finalizers, owner-reference
 * garbage collection, RBAC with the real server's wording, label and field
 * selectors, watches with replay, bookmarks, timeouts and compaction (410
 * Gone), plus failure injection (unreachable / hung clusters, injected
 * errors) and an audit log of every call.
 *
 * It backs the embedded runtime and every in-memory controller test, and is
 * exported as `flotilla/testing` for users' own tests.
 *
 * All state lives in plain mutable structures inside the service closure and
 * is only touched synchronously (one `Effect.suspend` per call), so every call
 * is atomic with respect to every other call and to watch registration.
 */
import { Array as Arr, Cause, Clock, Context, Duration, Effect, Latch, Layer, Queue, Random, Redacted, Result, Scope, Stream } from "effect"
import type { ConnectionSpec } from "../kube/Connection.js"
import type { KubeClientShape } from "../kube/KubeClient.js"
import { KubeConnector } from "../kube/KubeConnector.js"
import { KubeError, type KubeErrorReason } from "../kube/KubeError.js"
import {
  apiVersionOf,
  type DeleteOptions,
  type KubeObject,
  type ListOptions,
  type MergePatch,
  type ObjectList,
  type OwnerReference,
  type ResourceKind,
  resources,
  type WatchEvent,
  type WatchOptions
} from "../kube/Resources.js"
import { isRecord } from "../util/records.js"
import { isoSeconds } from "../util/time.js"
import * as LabelSelector from "./LabelSelector.js"

// ---------------------------------------------------------------------------
// Public types

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete"

export interface PolicyRule {
  readonly verbs: ReadonlyArray<Verb | "*">
  readonly resources: ReadonlyArray<ResourceKind | "*">
  /** Absent: cluster-wide (also allows list/watch across all namespaces and cluster-scoped resources). */
  readonly namespaces?: ReadonlyArray<string>
}

export interface IdentitySpec {
  /** The user name the server reports, e.g. `system:serviceaccount:argo:argo`. */
  readonly name: string
  /** The bearer token that authenticates as this identity. Never appears in messages. */
  readonly token: string
  readonly rules: ReadonlyArray<PolicyRule>
}

/** One API call as the server saw it, allowed or not. */
export interface AuditEntry {
  /** Increasing per cluster. */
  readonly seq: number
  /** The authenticated user, `system:anonymous` when the token was unknown. */
  readonly identity: string
  readonly verb: Verb
  readonly resource: ResourceKind
  /** `log` for `logs` calls (verb get on pods/log). */
  readonly subresource?: string
  readonly namespace?: string
  /** For create: the name the object got (after generateName). */
  readonly name?: string
  /** Whether authentication and RBAC let the call through. */
  readonly allowed: boolean
  /** "Success", or the reason it failed with. */
  readonly outcome: "Success" | KubeErrorReason
}

/** One stored change (what watchers saw), with who caused it. */
export interface ChangeRecord {
  readonly resourceVersion: string
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  readonly resource: ResourceKind
  readonly namespace?: string
  readonly name: string
  readonly uid: string
  /** The identity whose call caused the change; `system:garbage-collector` for cascades, `harness` for test set-up. */
  readonly identity: string
}

export interface InMemoryKubeOptions {
  /** How often watches opened with `allowBookmarks` get a BOOKMARK. Default 60 seconds. */
  readonly bookmarkInterval?: Duration.Input
  /**
   * Watch history kept per cluster and resource kind before the oldest part is
   * compacted away (as etcd does). Watches from older versions fail with Gone.
   * Default 100 000 changes.
   */
  readonly maxHistoryPerResource?: number
  /** Audit-log and change-log entries kept per cluster. Default 100 000 each. */
  readonly maxLogEntries?: number
  /**
   * Owner-reference garbage collection: dependents of removed owners are
   * deleted, and objects created with only dangling owner references are
   * deleted like the real garbage collector would. Default true.
   */
  readonly garbageCollection?: boolean
}

export interface InMemoryKubeShape {
  /** Creates the cluster (server `memory://<name>`) with namespaces `default` and `kube-system`. Idempotent. */
  readonly addCluster: (name: string) => Effect.Effect<void>
  readonly clusters: Effect.Effect<ReadonlyArray<string>>
  /** Creates the namespace if missing. */
  readonly ensureNamespace: (cluster: string, namespace: string) => Effect.Effect<void>
  /** Adds (or replaces) an identity. */
  readonly addIdentity: (cluster: string, identity: IdentitySpec) => Effect.Effect<void>
  /** Removes an identity: its token becomes Unauthorized. */
  readonly removeIdentity: (cluster: string, name: string) => Effect.Effect<void>
  /** Adds rules to an identity. */
  readonly grant: (cluster: string, name: string, rules: ReadonlyArray<PolicyRule>) => Effect.Effect<void>
  /** Removes the given rules (structurally equal) from an identity, or all its rules when omitted. */
  readonly revoke: (cluster: string, name: string, rules?: ReadonlyArray<PolicyRule>) => Effect.Effect<void>
  /** A client with every right, identity `admin`. Calls are audited. */
  readonly adminClient: (cluster: string) => KubeClientShape
  /** A client authenticating with `token` (checked on every call). */
  readonly clientFor: (cluster: string, token: string) => KubeClientShape
  /** Forgets all history up to the current resourceVersion; see the module docs on Gone. */
  readonly compact: (cluster: string) => Effect.Effect<void>
  /** Unreachable: every call fails with Unavailable and every open watch fails. */
  readonly setReachable: (cluster: string, reachable: boolean) => Effect.Effect<void>
  /** Hung: calls and watch opening do not complete until unhung. */
  readonly setHung: (cluster: string, hung: boolean) => Effect.Effect<void>
  /**
   * Lagging watches: while held, changes are applied (gets and lists see them)
   * but open watches receive none; releasing delivers them in order. Models
   * an informer that has not caught up with a write yet.
   */
  readonly holdWatchEvents: (cluster: string, held: boolean) => Effect.Effect<void>
  /**
   * The next `count` (default 1) authorized calls matching verb and resource fail with `reason`,
   * and `detail` as the server's message when given (say, a ResourceQuota's "exceeded quota").
   */
  readonly failNext: (
    cluster: string,
    verb: Verb | "*",
    resource: ResourceKind | "*",
    reason: KubeErrorReason,
    count?: number,
    detail?: string
  ) => Effect.Effect<void>
  /** Every call made against the cluster, oldest first. */
  readonly requests: (cluster: string) => Effect.Effect<ReadonlyArray<AuditEntry>>
  readonly clearRequests: (cluster: string) => Effect.Effect<void>
  /** Every stored change, oldest first (not affected by compaction). */
  readonly history: (cluster: string) => Effect.Effect<ReadonlyArray<ChangeRecord>>
  /** The cluster's current resourceVersion. */
  readonly resourceVersion: (cluster: string) => Effect.Effect<string>
  /** Current objects, bypassing RBAC and the audit log. `namespace` undefined = all. */
  readonly objects: (cluster: string, kind: ResourceKind, namespace?: string) => Effect.Effect<ReadonlyArray<KubeObject>>
  readonly setPodLog: (cluster: string, namespace: string, pod: string, container: string, text: string) => Effect.Effect<void>
  readonly appendPodLog: (cluster: string, namespace: string, pod: string, container: string, text: string) => Effect.Effect<void>
  /** Open watches on the cluster (to check that watchers do not leak). */
  readonly openWatches: (cluster: string) => Effect.Effect<number>
  /**
   * `KubeConnector.connect`: finds the cluster by `spec.endpoint.server`
   * (`memory://<name>`; unknown -> Unavailable) and authenticates with the
   * spec's Token (other credential kinds -> Unauthorized). The client reports
   * `spec.cluster` as its cluster. Closing the scope ends the client's
   * watches; later calls through it fail with Unavailable.
   */
  readonly connect: (spec: ConnectionSpec) => Effect.Effect<KubeClientShape, KubeError, Scope.Scope>
}

/** The server URL of an in-memory cluster. */
export const serverUrl = (cluster: string): string => `memory://${cluster}`

const serverPrefix = "memory://"

// ---------------------------------------------------------------------------
// Internal state

type ChangeType = "ADDED" | "MODIFIED" | "DELETED"

interface HistoryEntry {
  readonly rv: number
  readonly type: ChangeType
  readonly ns: string
  readonly object: KubeObject
  readonly prev: KubeObject | undefined
}

type Item =
  | { readonly type: ChangeType; readonly object: KubeObject }
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }
  | { readonly type: "OPENED" }

/** Bookmarks and the opening marker carry no object: not counted as delivered changes. */
const isChange = (item: Item): item is Extract<Item, { object: KubeObject }> =>
  item.type !== "BOOKMARK" && item.type !== "OPENED"

interface Watcher {
  /** The cluster name the watching client reports, for errors. */
  readonly label: string
  readonly ns: string | undefined
  readonly match: (object: KubeObject) => boolean
  readonly queue: Queue.Queue<Item, KubeError | Cause.Done>
  queued: number
  delivered: number
  failure: KubeError | undefined
}

interface KindStore {
  readonly byNs: Map<string, Map<string, KubeObject>>
  history: Array<HistoryEntry>
  /** Watches from versions below this fail with Gone. */
  compactedRv: number
  readonly watchers: Set<Watcher>
}

interface Identity {
  readonly name: string
  readonly token: string
  rules: Array<PolicyRule>
}

interface Injected {
  readonly verb: Verb | "*"
  readonly resource: ResourceKind | "*"
  readonly reason: KubeErrorReason
  readonly detail: string | undefined
  remaining: number
}

interface UidRef {
  readonly kind: ResourceKind
  readonly ns: string
  readonly name: string
}

interface ClusterState {
  readonly name: string
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

const allKinds = Object.keys(resources) as Array<ResourceKind>

const makeClusterState = (name: string): ClusterState => {
  const kinds = {} as Record<ResourceKind, KindStore>
  for (const kind of allKinds) {
    kinds[kind] = { byNs: new Map(), history: [], compactedRv: 0, watchers: new Set() }
  }
  return {
    name,
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

// ---------------------------------------------------------------------------
// JSON helpers

/** A deep copy with wire (JSON) semantics: undefined members dropped, no sharing. */
const cloneJson = <A>(value: A): A => {
  if (Array.isArray(value)) {
    return value.map((v) => (v === undefined || typeof v === "function" ? null : cloneJson(v))) as A
  }
  if (value !== null && typeof value === "object") {
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
      return JSON.parse(JSON.stringify(value)) as A
    }
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      const v = (value as Record<string, unknown>)[key]
      if (v === undefined || typeof v === "function" || typeof v === "symbol") continue
      out[key] = cloneJson(v)
    }
    return out as A
  }
  if (typeof value === "number" && !Number.isFinite(value)) return null as A
  return value
}

const deepEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false
    return true
  }
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    if (ka.length !== kb.length) return false
    for (const key of ka) {
      if (!Object.prototype.hasOwnProperty.call(b, key) || !deepEqual(a[key], b[key])) return false
    }
    return true
  }
  return false
}

/** RFC 7386 JSON merge patch. Never mutates its inputs. */
export const applyMergePatch = (target: unknown, patch: unknown): unknown => {
  if (!isRecord(patch)) return cloneJson(patch)
  const result: Record<string, unknown> = isRecord(target) ? { ...target } : {}
  for (const key of Object.keys(patch)) {
    const value = patch[key]
    if (value === null) delete result[key]
    else if (value !== undefined) result[key] = applyMergePatch(result[key], value)
  }
  return result
}

/** Drops empty lists/maps the server would omit. */
const normalizeMeta = (meta: Record<string, unknown>): void => {
  for (const key of ["finalizers", "ownerReferences"]) {
    if (Array.isArray(meta[key]) && (meta[key] as Array<unknown>).length === 0) delete meta[key]
  }
  for (const key of ["labels", "annotations"]) {
    if (isRecord(meta[key]) && Object.keys(meta[key] as object).length === 0) delete meta[key]
  }
}

// ---------------------------------------------------------------------------
// Operations (synchronous; failures are thrown KubeErrors)

interface ClientRef {
  /** The in-memory cluster name. */
  readonly clusterName: string
  /** The cluster name reported in errors (spec.cluster for connected clients). */
  readonly label: string
  readonly auth: { readonly _tag: "Admin" } | { readonly _tag: "Token"; readonly token: string }
  /** Present for connector clients, whose scope can close. */
  readonly session?: Session
}

interface Session {
  closed: boolean
  readonly watches: Set<() => void>
}

interface Request {
  readonly verb: Verb
  readonly kind: ResourceKind
  readonly subresource?: string
  /** The namespace of the request path (undefined: all namespaces / cluster scope). */
  readonly namespace: string | undefined
  readonly name: string | undefined
}

interface Ctx {
  readonly c: ClusterState
  readonly label: string
  readonly identity: string
  readonly now: number
  readonly random: Random.Random
  readonly req: Request
}

const adminIdentity = "admin"
const gcIdentity = "system:garbage-collector"
const harnessIdentity = "harness"

const qualifiedResource = (kind: ResourceKind): string => {
  const group = resources[kind].group
  return group === "" ? kind : `${kind}.${group}`
}

const fail = (
  ctx: Pick<Ctx, "label" | "req">,
  reason: KubeErrorReason,
  detail: string,
  where?: { readonly namespace?: string | undefined; readonly name?: string | undefined }
): KubeError =>
  new KubeError({
    reason,
    cluster: ctx.label,
    verb: ctx.req.verb,
    resource: ctx.req.subresource ? `${ctx.req.kind}/${ctx.req.subresource}` : ctx.req.kind,
    namespace: where?.namespace ?? ctx.req.namespace,
    name: where?.name ?? ctx.req.name,
    detail
  })

const notFound = (ctx: Ctx, kind: ResourceKind, name: string, ns?: string) =>
  fail(ctx, "NotFound", `${qualifiedResource(kind)} "${name}" not found`, { namespace: ns, name })

const conflictMessage = (kind: ResourceKind, name: string, why: string) =>
  `Operation cannot be fulfilled on ${qualifiedResource(kind)} "${name}": ${why}`

const staleMessage = "the object has been modified; please apply your changes to the latest version and try again"

/** A uid precondition (`metadata.uid` of an update or patch, `uid` of a delete) the stored object does not meet. */
const uidConflict = (ctx: Ctx, kind: ResourceKind, name: string, uid: string, existing: KubeObject) =>
  fail(
    ctx,
    "Conflict",
    conflictMessage(kind, name, `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${existing.metadata.uid}`)
  )

const invalid = (ctx: Ctx, kind: ResourceKind, name: string, detail: string) =>
  fail(ctx, "Invalid", `${resources[kind].kind} "${name}" is invalid: ${detail}`)

const nsKey = (kind: ResourceKind, namespace: string | undefined): string =>
  resources[kind].namespaced ? namespace ?? "" : ""

const lookup = (c: ClusterState, kind: ResourceKind, ns: string, name: string): KubeObject | undefined =>
  c.kinds[kind].byNs.get(ns)?.get(name)

const namespaceOf = (object: KubeObject): string => object.metadata.namespace ?? ""

const newUid = (random: Random.Random): string => {
  let hex = ""
  for (let i = 0; i < 32; i++) hex += Math.floor(random.nextDoubleUnsafe() * 16).toString(16)
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

const nameSuffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

const randomSuffix = (random: Random.Random): string => {
  let out = ""
  for (let i = 0; i < 5; i++) out += nameSuffixAlphabet[Math.floor(random.nextDoubleUnsafe() * nameSuffixAlphabet.length)]
  return out
}

// --- field selectors --------------------------------------------------------

const commonFields = ["metadata.name", "metadata.namespace"]
const kindFields: Partial<Record<ResourceKind, ReadonlyArray<string>>> = {
  pods: [
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName"
  ],
  events: [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type"
  ],
  secrets: ["type"],
  namespaces: ["status.phase"]
}

const fieldValue = (object: KubeObject, field: string): string => {
  let current: unknown = object
  for (const part of field.split(".")) {
    if (!isRecord(current)) return ""
    current = current[part]
  }
  if (typeof current === "string") return current
  if (typeof current === "number" || typeof current === "boolean") return String(current)
  if (field === "source" && isRecord(current)) return typeof current.component === "string" ? current.component : ""
  return ""
}

const buildMatcher = (ctx: Ctx, kind: ResourceKind, options: ListOptions | undefined): (o: KubeObject) => boolean => {
  const labels = LabelSelector.parse(options?.labelSelector ?? "")
  if (Result.isFailure(labels)) throw fail(ctx, "Invalid", `unable to parse requirement: ${labels.failure.detail}`)
  const fields = LabelSelector.parseFieldSelector(options?.fieldSelector ?? "")
  if (Result.isFailure(fields)) throw fail(ctx, "Invalid", fields.failure.detail)
  const supported = [...commonFields, ...(kindFields[kind] ?? [])]
  for (const requirement of fields.success) {
    if (!supported.includes(requirement.field)) {
      throw fail(ctx, "Invalid", `field label not supported: ${requirement.field}`)
    }
  }
  const labelSelector = labels.success
  const fieldSelector = fields.success
  if (labelSelector.length === 0 && fieldSelector.length === 0) return () => true
  return (object) =>
    LabelSelector.matches(labelSelector, object.metadata.labels) &&
    LabelSelector.matchesFields(fieldSelector, (field) => fieldValue(object, field))
}

// --- RBAC ----------------------------------------------------------------------

const ruleAllows = (rule: PolicyRule, req: Request, rbacNamespace: string | undefined): boolean =>
  (rule.verbs.includes("*") || rule.verbs.includes(req.verb)) &&
  (rule.resources.includes("*") || rule.resources.includes(req.kind)) &&
  (rule.namespaces === undefined || (rbacNamespace !== undefined && rule.namespaces.includes(rbacNamespace)))

/** The namespace RBAC sees: a namespace object's own name for named namespace requests, as the real server does. */
const rbacNamespaceOf = (req: Request): string | undefined => {
  if (req.kind === "namespaces") return req.name
  return resources[req.kind].namespaced ? req.namespace : undefined
}

const forbiddenMessage = (identity: string, req: Request): string => {
  const qualified = qualifiedResource(req.kind)
  const subject = req.name !== undefined && req.verb !== "create" ? `${qualified} "${req.name}"` : qualified
  const resource = req.subresource ? `${req.kind}/${req.subresource}` : req.kind
  const ns = rbacNamespaceOf(req)
  const scope = ns !== undefined ? `in the namespace "${ns}"` : "at the cluster scope"
  return `${subject} is forbidden: User "${identity}" cannot ${req.verb} resource "${resource}" in API group "${
    resources[req.kind].group
  }" ${scope}`
}

// ---------------------------------------------------------------------------
// The service

export const make = (options: InMemoryKubeOptions = {}): Effect.Effect<InMemoryKubeShape> =>
  Effect.sync(() => {
    const bookmarkInterval = Duration.fromInputUnsafe(options.bookmarkInterval ?? "60 seconds")
    const maxHistory = Math.max(1, options.maxHistoryPerResource ?? 100_000)
    const maxLog = Math.max(1, options.maxLogEntries ?? 100_000)
    const garbageCollection = options.garbageCollection ?? true
    const clusters = new Map<string, ClusterState>()

    const trimLog = <A>(log: Array<A>): Array<A> => (log.length > maxLog + (maxLog >> 1) ? log.slice(log.length - maxLog) : log)

    // --- change publication -------------------------------------------------

    const toItem = (entry: HistoryEntry, match: (o: KubeObject) => boolean): Item | undefined => {
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

    const offer = (watcher: Watcher, item: Item): void => {
      if (watcher.failure !== undefined) return
      if (isChange(item)) watcher.queued++
      Queue.offerUnsafe(watcher.queue, item)
    }

    /** Ends a watch of `kind` with a `reason` error, as a real server's broken watch does. */
    const failWatcher = (store: KindStore, watcher: Watcher, kind: ResourceKind, reason: KubeErrorReason, detail: string): void => {
      store.watchers.delete(watcher)
      if (watcher.failure !== undefined) return
      const error = new KubeError({ reason, cluster: watcher.label, verb: "watch", resource: kind, namespace: watcher.ns, detail })
      watcher.failure = error
      Queue.failCauseUnsafe(watcher.queue, Cause.fail(error))
    }

    const record = (ctx: Ctx, kind: ResourceKind, type: ChangeType, object: KubeObject, prev: KubeObject | undefined) => {
      const c = ctx.c
      const store = c.kinds[kind]
      const ns = namespaceOf(object)
      const entry: HistoryEntry = { rv: c.rv, type, ns, object, prev }
      store.history.push(entry)
      if (store.history.length > maxHistory + (maxHistory >> 1)) {
        const drop = store.history.length - maxHistory
        store.compactedRv = Math.max(store.compactedRv, store.history[drop - 1].rv)
        store.history = store.history.slice(drop)
      }
      c.changes.push({
        resourceVersion: String(c.rv),
        type,
        resource: kind,
        ...(resources[kind].namespaced ? { namespace: ns } : {}),
        name: object.metadata.name!,
        uid: object.metadata.uid!,
        identity: ctx.identity
      })
      c.changes = trimLog(c.changes)
      for (const watcher of store.watchers) {
        if (watcher.ns !== undefined && watcher.ns !== ns) continue
        const item = toItem(entry, watcher.match)
        if (item === undefined) continue
        if (c.heldEvents !== undefined) c.heldEvents.push({ watcher, item })
        else offer(watcher, item)
      }
    }

    /**
     * Custom resources come back from a real API server with the keys of their maps sorted (they
     * are stored as unstructured JSON, which Go serialises in key order), whatever order the
     * client sent: a client comparing what it sent with what it reads must not rely on key order.
     */
    const asServed = (object: KubeObject): KubeObject => {
      if (typeof object.apiVersion !== "string" || !object.apiVersion.startsWith("argoproj.io/")) return object
      const sorted = (v: unknown): unknown =>
        Array.isArray(v)
          ? v.map(sorted)
          : isRecord(v)
          ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
          : v
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(object)) out[k] = k === "metadata" ? v : sorted(v)
      return out as KubeObject
    }

    const store = (c: ClusterState, kind: ResourceKind, object: KubeObject): void => {
      const ns = namespaceOf(object)
      const byNs = c.kinds[kind].byNs
      let bucket = byNs.get(ns)
      if (bucket === undefined) {
        bucket = new Map()
        byNs.set(ns, bucket)
      }
      bucket.set(object.metadata.name!, object)
    }

    const unstore = (c: ClusterState, kind: ResourceKind, object: KubeObject): void => {
      const ns = namespaceOf(object)
      const bucket = c.kinds[kind].byNs.get(ns)
      if (bucket === undefined) return
      bucket.delete(object.metadata.name!)
      if (bucket.size === 0) c.kinds[kind].byNs.delete(ns)
    }

    const indexOwners = (c: ClusterState, object: KubeObject): void => {
      for (const ref of object.metadata.ownerReferences ?? []) {
        let set = c.dependents.get(ref.uid)
        if (set === undefined) {
          set = new Set()
          c.dependents.set(ref.uid, set)
        }
        set.add(object.metadata.uid!)
      }
    }

    const unindexOwners = (c: ClusterState, object: KubeObject): void => {
      for (const ref of object.metadata.ownerReferences ?? []) {
        const set = c.dependents.get(ref.uid)
        if (set === undefined) continue
        set.delete(object.metadata.uid!)
        if (set.size === 0) c.dependents.delete(ref.uid)
      }
    }

    /** Owner present for GC purposes: same namespace, or cluster-scoped. */
    const ownerExists = (c: ClusterState, dependent: KubeObject, ref: OwnerReference): boolean => {
      const owner = c.byUid.get(ref.uid)
      return owner !== undefined && (owner.ns === "" || owner.ns === namespaceOf(dependent))
    }

    const nextRv = (c: ClusterState): string => String(++c.rv)

    const withMeta = (object: KubeObject, meta: Record<string, unknown>): KubeObject => {
      const metadata = { ...object.metadata, ...meta } as Record<string, unknown>
      for (const key of Object.keys(metadata)) if (metadata[key] === undefined) delete metadata[key]
      normalizeMeta(metadata)
      return { ...object, metadata }
    }

    const gcCtx = (ctx: Ctx): Ctx => ({ ...ctx, identity: gcIdentity })

    /** Removes an object for good (DELETED), then cascades. */
    const remove = (ctx: Ctx, kind: ResourceKind, object: KubeObject): KubeObject => {
      const c = ctx.c
      const final = withMeta(object, { resourceVersion: nextRv(c) })
      unstore(c, kind, final)
      const uid = final.metadata.uid!
      c.byUid.delete(uid)
      unindexOwners(c, final)
      if (kind === "pods") c.logs.delete(`${namespaceOf(final)}/${final.metadata.name}`)
      record(ctx, kind, "DELETED", final, undefined)
      if (garbageCollection) {
        const dependents = c.dependents.get(uid)
        c.dependents.delete(uid)
        for (const depUid of dependents ?? []) {
          const ref = c.byUid.get(depUid)
          if (ref === undefined) continue
          const dependent = lookup(c, ref.kind, ref.ns, ref.name)
          if (dependent === undefined) continue
          if (kind !== "namespaces" && resources[kind].namespaced && ref.ns !== namespaceOf(final)) continue
          if ((dependent.metadata.ownerReferences ?? []).some((r) => r.uid !== uid && ownerExists(c, dependent, r))) {
            // Another owner still exists: drop the reference to the removed owner.
            const kept = (dependent.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid)
            update(gcCtx(ctx), ref.kind, dependent, withMeta(dependent, { ownerReferences: kept }))
            continue
          }
          markOrRemove(gcCtx(ctx), ref.kind, dependent, undefined)
        }
      }
      // Foreground owners waiting on this dependent.
      for (const ownerRef of final.metadata.ownerReferences ?? []) {
        const where = c.byUid.get(ownerRef.uid)
        if (where === undefined) continue
        const owner = lookup(c, where.kind, where.ns, where.name)
        if (
          owner !== undefined && owner.metadata.deletionTimestamp !== undefined &&
          (owner.metadata.finalizers ?? []).includes("foregroundDeletion") &&
          (c.dependents.get(ownerRef.uid)?.size ?? 0) === 0
        ) {
          const finalizers = (owner.metadata.finalizers ?? []).filter((f) => f !== "foregroundDeletion")
          update(gcCtx(ctx), where.kind, owner, withMeta(owner, { finalizers }))
        }
      }
      // A terminating namespace goes away once empty.
      if (kind !== "namespaces" && resources[kind].namespaced) finishNamespaceIfEmpty(ctx, namespaceOf(final))
      return final
    }

    const namespaceEmpty = (c: ClusterState, ns: string): boolean =>
      allKinds.every((k) => k === "namespaces" || (c.kinds[k].byNs.get(ns)?.size ?? 0) === 0)

    const finishNamespaceIfEmpty = (ctx: Ctx, ns: string): void => {
      const namespace = lookup(ctx.c, "namespaces", "", ns)
      if (
        namespace !== undefined && namespace.metadata.deletionTimestamp !== undefined &&
        (namespace.metadata.finalizers ?? []).length === 0 && namespaceEmpty(ctx.c, ns)
      ) {
        remove(ctx, "namespaces", namespace)
      }
    }

    /** Deletion as the server does it: finalizers hold the object (deletionTimestamp), otherwise it goes. */
    const markOrRemove = (
      ctx: Ctx,
      kind: ResourceKind,
      object: KubeObject,
      policy: DeleteOptions["propagationPolicy"]
    ): void => {
      const c = ctx.c
      if (object.metadata.deletionTimestamp !== undefined) return
      const uid = object.metadata.uid!
      const hasDependents = (c.dependents.get(uid)?.size ?? 0) > 0
      if (policy === "Orphan" && hasDependents) {
        for (const depUid of [...(c.dependents.get(uid) ?? [])]) {
          const ref = c.byUid.get(depUid)
          const dependent = ref && lookup(c, ref.kind, ref.ns, ref.name)
          if (ref === undefined || dependent === undefined) continue
          const kept = (dependent.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid)
          update(gcCtx(ctx), ref.kind, dependent, withMeta(dependent, { ownerReferences: kept }))
        }
      }
      const foreground = policy === "Foreground" && garbageCollection && (c.dependents.get(uid)?.size ?? 0) > 0
      const finalizers = [...(object.metadata.finalizers ?? []), ...(foreground ? ["foregroundDeletion"] : [])]
      const terminatingNamespace = kind === "namespaces" && !namespaceEmpty(c, object.metadata.name!)
      if (finalizers.length === 0 && !terminatingNamespace) {
        remove(ctx, kind, object)
        return
      }
      const generation = object.metadata.generation
      let marked = withMeta(object, {
        resourceVersion: nextRv(c),
        deletionTimestamp: isoSeconds(ctx.now),
        deletionGracePeriodSeconds: 0,
        finalizers,
        ...(generation !== undefined ? { generation: generation + 1 } : {})
      })
      if (kind === "namespaces") marked = { ...marked, status: { ...(marked.status as object), phase: "Terminating" } }
      store(c, kind, marked)
      record(ctx, kind, "MODIFIED", marked, object)
      if (foreground) {
        for (const depUid of [...(c.dependents.get(uid) ?? [])]) {
          const ref = c.byUid.get(depUid)
          const dependent = ref && lookup(c, ref.kind, ref.ns, ref.name)
          if (ref !== undefined && dependent !== undefined) markOrRemove(gcCtx(ctx), ref.kind, dependent, "Foreground")
        }
      }
      if (terminatingNamespace) {
        const ns = object.metadata.name!
        for (const k of allKinds) {
          if (k === "namespaces") continue
          for (const child of [...(c.kinds[k].byNs.get(ns)?.values() ?? [])]) {
            const current = lookup(c, k, ns, child.metadata.name!)
            if (current !== undefined) markOrRemove(ctx, k, current, "Background")
          }
        }
        finishNamespaceIfEmpty(ctx, ns)
      }
    }

    /**
     * Stores `next` as the new state of `old` (same kind/namespace/name),
     * enforcing server-owned metadata. Returns the stored object (or the final
     * state when the update completed a deletion).
     */
    const update = (ctx: Ctx, kind: ResourceKind, old: KubeObject, candidate: KubeObject): KubeObject => {
      const c = ctx.c
      const name = old.metadata.name!
      const oldFinalizers = old.metadata.finalizers ?? []
      const newFinalizers = candidate.metadata.finalizers ?? []
      if (old.metadata.deletionTimestamp !== undefined) {
        const added = newFinalizers.filter((f) => !oldFinalizers.includes(f))
        if (added.length > 0) {
          throw invalid(
            ctx,
            kind,
            name,
            `metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${
              added.map((f) => JSON.stringify(f)).join(", ")
            }}`
          )
        }
      }
      validateLabels(ctx, kind, name, candidate)
      const meta: Record<string, unknown> = {
        ...candidate.metadata,
        name,
        uid: old.metadata.uid,
        creationTimestamp: old.metadata.creationTimestamp,
        deletionTimestamp: old.metadata.deletionTimestamp,
        deletionGracePeriodSeconds: (old.metadata as Record<string, unknown>).deletionGracePeriodSeconds,
        generation: old.metadata.generation,
        resourceVersion: old.metadata.resourceVersion,
        generateName: candidate.metadata.generateName ?? old.metadata.generateName
      }
      if (resources[kind].namespaced) meta.namespace = old.metadata.namespace
      else delete meta.namespace
      for (const key of Object.keys(meta)) if (meta[key] === undefined) delete meta[key]
      normalizeMeta(meta)
      let next: KubeObject = { ...candidate, apiVersion: apiVersionOf(kind), kind: resources[kind].kind, metadata: meta }
      if (deepEqual(next, old)) return old
      if (old.metadata.generation !== undefined) {
        const { metadata: _m1, status: _s1, ...oldBody } = old
        const { metadata: _m2, status: _s2, ...newBody } = next
        if (!deepEqual(oldBody, newBody)) next = withMeta(next, { generation: old.metadata.generation + 1 })
      }
      if (next.metadata.deletionTimestamp !== undefined && (next.metadata.finalizers ?? []).length === 0) {
        if (kind !== "namespaces" || namespaceEmpty(c, name)) {
          unindexOwners(c, old)
          indexOwners(c, next)
          return remove(ctx, kind, next)
        }
      }
      next = asServed(withMeta(next, { resourceVersion: nextRv(c) }))
      unindexOwners(c, old)
      indexOwners(c, next)
      store(c, kind, next)
      record(ctx, kind, "MODIFIED", next, old)
      collectIfDangling(ctx, kind, next)
      return next
    }

    /** Objects whose owners are all gone are collected, as the real garbage collector would. */
    const collectIfDangling = (ctx: Ctx, kind: ResourceKind, object: KubeObject): void => {
      if (!garbageCollection) return
      const refs = object.metadata.ownerReferences ?? []
      if (refs.length === 0) return
      if (refs.some((ref) => ownerExists(ctx.c, object, ref))) return
      const current = lookup(ctx.c, kind, namespaceOf(object), object.metadata.name!)
      if (current !== undefined) markOrRemove(gcCtx(ctx), kind, current, "Background")
    }

    const validateLabels = (ctx: Ctx, kind: ResourceKind, name: string, object: KubeObject): void => {
      for (const [key, value] of Object.entries(object.metadata.labels ?? {})) {
        const badKey = LabelSelector.validateLabelKey(key)
        if (badKey !== undefined) throw invalid(ctx, kind, name, `metadata.labels: Invalid value: "${key}": ${badKey}`)
        if (typeof value !== "string") {
          throw invalid(ctx, kind, name, `metadata.labels: Invalid value: label ${key} must be a string`)
        }
        const badValue = LabelSelector.validateLabelValue(value)
        if (badValue !== undefined) {
          throw invalid(ctx, kind, name, `metadata.labels: Invalid value: "${value}": ${badValue}`)
        }
      }
    }

    const checkTypeMeta = (ctx: Ctx, kind: ResourceKind, object: KubeObject): void => {
      if (object.apiVersion !== undefined && object.apiVersion !== apiVersionOf(kind)) {
        throw fail(
          ctx,
          "Invalid",
          `the API version in the data (${object.apiVersion}) does not match the expected API version (${apiVersionOf(kind)})`
        )
      }
      if (object.kind !== undefined && object.kind !== resources[kind].kind) {
        throw fail(ctx, "Invalid", `the kind in the data (${object.kind}) does not match the expected kind (${resources[kind].kind})`)
      }
    }

    const requestNamespace = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, object?: KubeObject): string => {
      if (!resources[kind].namespaced) return ""
      const objectNs = object?.metadata.namespace
      const ns = namespace ?? objectNs
      if (ns === undefined || ns === "") throw fail(ctx, "Invalid", `a namespace is required for ${kind}`)
      if (objectNs !== undefined && objectNs !== "" && objectNs !== ns) {
        throw fail(ctx, "Invalid", "the namespace of the provided object does not match the namespace sent on the request")
      }
      return ns
    }

    const requireNamespaceExists = (ctx: Ctx, ns: string, forCreate: boolean): void => {
      const namespace = lookup(ctx.c, "namespaces", "", ns)
      if (namespace === undefined) throw fail(ctx, "NotFound", `namespaces "${ns}" not found`)
      if (forCreate && namespace.metadata.deletionTimestamp !== undefined) {
        throw fail(ctx, "Forbidden", `unable to create new content in namespace ${ns} because it is being terminated`)
      }
    }

    /** A copy of a create or update body, checked for metadata and type, with the namespace it goes to. */
    const requestBody = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, input: KubeObject) => {
      const object = cloneJson(input)
      if (!isRecord(object as unknown) || !isRecord(object.metadata as unknown)) {
        throw fail(ctx, "Invalid", "metadata is required")
      }
      checkTypeMeta(ctx, kind, object)
      return { object, ns: requestNamespace(ctx, kind, namespace, object) }
    }

    const createObject = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, input: KubeObject): KubeObject => {
      const c = ctx.c
      const { ns, object } = requestBody(ctx, kind, namespace, input)
      if (resources[kind].namespaced) requireNamespaceExists(ctx, ns, true)
      if (object.metadata.resourceVersion !== undefined && object.metadata.resourceVersion !== "") {
        throw fail(ctx, "Invalid", "resourceVersion should not be set on objects to be created")
      }
      const generateName = object.metadata.generateName
      let name = object.metadata.name
      if ((name === undefined || name === "") && (generateName === undefined || generateName === "")) {
        throw invalid(ctx, kind, "", "metadata.name: Required value: name or generateName is required")
      }
      if (name === undefined || name === "") {
        const base = generateName!.length > 58 ? generateName!.slice(0, 58) : generateName!
        for (let attempt = 0; attempt < 16; attempt++) {
          name = base + randomSuffix(ctx.random)
          if (lookup(c, kind, ns, name) === undefined) break
        }
      }
      const badName = kind === "namespaces" ? LabelSelector.validateDnsLabel(name!) : LabelSelector.validateSubdomain(name!)
      if (badName !== undefined) throw invalid(ctx, kind, name!, `metadata.name: Invalid value: "${name}": ${badName}`)
      validateLabels(ctx, kind, name!, object)
      if (lookup(c, kind, ns, name!) !== undefined) {
        throw fail(ctx, "AlreadyExists", `${qualifiedResource(kind)} "${name}" already exists`, { namespace: ns || undefined, name })
      }
      const meta: Record<string, unknown> = {
        ...object.metadata,
        name,
        uid: newUid(ctx.random),
        resourceVersion: nextRv(c),
        creationTimestamp: isoSeconds(ctx.now)
      }
      if (resources[kind].namespaced) meta.namespace = ns
      else delete meta.namespace
      delete meta.deletionTimestamp
      delete meta.deletionGracePeriodSeconds
      if (kind === "pods") delete meta.generation
      else meta.generation = 1
      normalizeMeta(meta)
      let created: KubeObject = { ...object, apiVersion: apiVersionOf(kind), kind: resources[kind].kind, metadata: meta }
      if (kind === "namespaces") created = { ...created, status: { phase: "Active" } }
      created = asServed(created)
      store(c, kind, created)
      c.byUid.set(created.metadata.uid!, { kind, ns, name: name! })
      indexOwners(c, created)
      record(ctx, kind, "ADDED", created, undefined)
      collectIfDangling(ctx, kind, created)
      return created
    }

    const getExisting = (ctx: Ctx, kind: ResourceKind, ns: string, name: string): KubeObject => {
      const object = lookup(ctx.c, kind, ns, name)
      if (object === undefined) throw notFound(ctx, kind, name, ns || undefined)
      return object
    }

    const checkPreconditions = (ctx: Ctx, kind: ResourceKind, existing: KubeObject, meta: unknown): void => {
      if (!isRecord(meta)) return
      const uid = meta.uid
      if (typeof uid === "string" && uid !== "" && uid !== existing.metadata.uid) {
        throw uidConflict(ctx, kind, existing.metadata.name!, uid, existing)
      }
      const rv = meta.resourceVersion
      if (typeof rv === "string" && rv !== "" && rv !== existing.metadata.resourceVersion) {
        throw fail(ctx, "Conflict", conflictMessage(kind, existing.metadata.name!, staleMessage))
      }
    }

    const replaceObject = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, input: KubeObject): KubeObject => {
      const { ns, object } = requestBody(ctx, kind, namespace, input)
      const name = object.metadata.name
      if (name === undefined || name === "") throw invalid(ctx, kind, "", "metadata.name: Required value: name is required")
      const existing = getExisting(ctx, kind, ns, name)
      checkPreconditions(ctx, kind, existing, object.metadata)
      return update(ctx, kind, existing, object)
    }

    const patchObject = (
      ctx: Ctx,
      kind: ResourceKind,
      namespace: string | undefined,
      name: string,
      patch: MergePatch
    ): KubeObject => {
      const ns = requestNamespace(ctx, kind, namespace)
      const existing = getExisting(ctx, kind, ns, name)
      if (!isRecord(patch)) throw fail(ctx, "Invalid", "a merge patch must be a JSON object")
      checkPreconditions(ctx, kind, existing, patch.metadata)
      const merged = applyMergePatch(existing, cloneJson(patch)) as KubeObject
      if (!isRecord(merged.metadata as unknown)) throw invalid(ctx, kind, name, "metadata: Required value")
      if (merged.metadata.name !== name) {
        throw invalid(ctx, kind, name, `metadata.name: Invalid value: "${String(merged.metadata.name)}": field is immutable`)
      }
      if (resources[kind].namespaced && merged.metadata.namespace !== existing.metadata.namespace) {
        throw invalid(ctx, kind, name, "metadata.namespace: Invalid value: field is immutable")
      }
      checkTypeMeta(ctx, kind, merged)
      return update(ctx, kind, existing, merged)
    }

    const deleteObject = (
      ctx: Ctx,
      kind: ResourceKind,
      namespace: string | undefined,
      name: string,
      options: DeleteOptions | undefined
    ): void => {
      const ns = requestNamespace(ctx, kind, namespace)
      const existing = getExisting(ctx, kind, ns, name)
      if (options?.uid !== undefined && options.uid !== existing.metadata.uid) {
        throw uidConflict(ctx, kind, name, options.uid, existing)
      }
      if (kind === "namespaces" && (name === "default" || name === "kube-system" || name === "kube-public")) {
        throw fail(ctx, "Forbidden", `namespace ${name} is a system namespace and may not be deleted`)
      }
      markOrRemove(ctx, kind, existing, options?.propagationPolicy)
    }

    const listObjects = (ctx: Ctx, kind: ResourceKind, namespace: string | undefined, options?: ListOptions): ObjectList => {
      const match = buildMatcher(ctx, kind, options)
      const byNs = ctx.c.kinds[kind].byNs
      const items: Array<KubeObject> = []
      const buckets = resources[kind].namespaced && namespace !== undefined
        ? [byNs.get(namespace)]
        : [...byNs.keys()].sort().map((ns) => byNs.get(ns))
      for (const bucket of buckets) {
        if (bucket === undefined) continue
        const names = [...bucket.keys()].sort()
        for (const name of names) {
          const object = bucket.get(name)!
          if (match(object)) items.push(cloneJson(object))
        }
      }
      return { items, resourceVersion: String(ctx.c.rv) }
    }

    // --- call plumbing ------------------------------------------------------

    const unavailable = (client: ClientRef, req: Request, detail: string) =>
      fail({ label: client.label, req }, "Unavailable", detail)

    const audit = (c: ClusterState, entry: Omit<AuditEntry, "seq">): { outcome: AuditEntry["outcome"]; name?: string } => {
      const full = { seq: ++c.seq, ...entry } as { -readonly [K in keyof AuditEntry]: AuditEntry[K] }
      if (full.namespace === undefined) delete full.namespace
      if (full.name === undefined) delete full.name
      if (full.subresource === undefined) delete full.subresource
      c.requests.push(full)
      c.requests = trimLog(c.requests)
      return full
    }

    /**
     * Authenticates, authorizes, audits and runs `body` synchronously. Throws
     * KubeErrors. The cluster must be running (not hung).
     */
    const runSync = <A>(
      client: ClientRef,
      c: ClusterState,
      req: Request,
      now: number,
      random: Random.Random,
      body: (ctx: Ctx) => A,
      nameOf?: (result: A) => string | undefined
    ): A => {
      if (client.session?.closed === true) throw unavailable(client, req, `the client for cluster ${client.label} has been closed`)
      if (!c.reachable) throw unavailable(client, req, `cluster ${client.label} (memory://${c.name}) is unreachable`)
      const target = {
        verb: req.verb,
        resource: req.kind,
        subresource: req.subresource,
        namespace: req.namespace,
        name: req.name
      }
      let identity: Identity | undefined
      let identityName = adminIdentity
      if (client.auth._tag === "Token") {
        identity = c.tokens.get(client.auth.token)
        if (identity === undefined) {
          audit(c, { identity: "system:anonymous", ...target, allowed: false, outcome: "Unauthorized" })
          throw fail({ label: client.label, req }, "Unauthorized", "Unauthorized")
        }
        identityName = identity.name
      }
      const entry = audit(c, { identity: identityName, ...target, allowed: true, outcome: "Success" }) as { -readonly [K in keyof AuditEntry]: AuditEntry[K] }
      if (identity !== undefined) {
        const rbacNs = rbacNamespaceOf(req)
        if (!identity.rules.some((rule) => ruleAllows(rule, req, rbacNs))) {
          entry.allowed = false
          entry.outcome = "Forbidden"
          throw fail({ label: client.label, req }, "Forbidden", forbiddenMessage(identity.name, req))
        }
      }
      const ctx: Ctx = { c, label: client.label, identity: identityName, now, random, req }
      const injectedIndex = c.injected.findIndex((i) =>
        (i.verb === "*" || i.verb === req.verb) && (i.resource === "*" || i.resource === req.kind)
      )
      if (injectedIndex >= 0) {
        const injected = c.injected[injectedIndex]
        injected.remaining--
        if (injected.remaining <= 0) c.injected.splice(injectedIndex, 1)
        entry.outcome = injected.reason
        throw fail(ctx, injected.reason, injected.detail ?? `injected failure (${injected.reason})`)
      }
      try {
        const result = body(ctx)
        const name = nameOf?.(result)
        if (name !== undefined) entry.name = name
        return result
      } catch (error) {
        if (error instanceof KubeError) entry.outcome = error.reason
        throw error
      }
    }

    const toEffect = <A>(f: () => A): Effect.Effect<A, KubeError> =>
      Effect.suspend(() => {
        try {
          return Effect.succeed(f())
        } catch (error) {
          if (error instanceof KubeError) return Effect.fail(error)
          return Effect.die(error)
        }
      })

    /** Waits while the cluster is hung, then runs the call. */
    const call = <A>(
      client: ClientRef,
      req: Request,
      body: (ctx: Ctx) => A,
      nameOf?: (result: A) => string | undefined
    ): Effect.Effect<A, KubeError> =>
      Effect.gen(function*() {
        const c = yield* clusterFor(client, req)
        yield* awaitRunning(c)
        const now = yield* Clock.currentTimeMillis
        const random = yield* Random.Random
        return yield* toEffect(() => runSync(client, c, req, now, random, body, nameOf))
      })

    const clusterFor = (client: ClientRef, req: Request): Effect.Effect<ClusterState, KubeError> =>
      Effect.suspend(() => {
        const c = clusters.get(client.clusterName)
        return c === undefined
          ? Effect.fail(unavailable(client, req, `no in-memory cluster serves ${serverUrl(client.clusterName)}`))
          : Effect.succeed(c)
      })

    const awaitRunning = (c: ClusterState): Effect.Effect<void> =>
      Effect.suspend(() => (c.running.isOpen() ? Effect.void : Effect.andThen(c.running.await, awaitRunning(c))))

    // --- watch --------------------------------------------------------------

    const openWatch = (
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

    const toWatchEvent = (item: Item): WatchEvent =>
      isChange(item) ? { type: item.type, object: cloneJson(item.object) } : item

    const watch = (
      client: ClientRef,
      kind: ResourceKind,
      namespace: string | undefined,
      options: WatchOptions
    ): Stream.Stream<WatchEvent, KubeError> =>
      Stream.suspend(() => {
        let watcher: Watcher | undefined
        const req: Request = { verb: "watch", kind, namespace: resources[kind].namespaced ? namespace : undefined, name: undefined }
        return Stream.callback<Item, KubeError>((queue) =>
          Effect.gen(function*() {
            const [c, opened] = yield* call(
              client,
              req,
              (ctx) => [ctx.c, openWatch(ctx, kind, namespace, options, queue)] as const
            )
            watcher = opened
            const end = () => {
              c.kinds[kind].watchers.delete(opened)
              Queue.endUnsafe(queue)
            }
            client.session?.watches.add(end)
            yield* Effect.addFinalizer(() =>
              Effect.sync(() => {
                c.kinds[kind].watchers.delete(opened)
                client.session?.watches.delete(end)
              })
            )
            if (options.allowBookmarks === true) {
              yield* Effect.forkScoped(
                Effect.forever(
                  Effect.sleep(bookmarkInterval).pipe(
                    Effect.andThen(Effect.sync(() => offer(opened, { type: "BOOKMARK", resourceVersion: String(c.rv) })))
                  )
                )
              )
            }
            if (options.timeoutSeconds !== undefined && options.timeoutSeconds > 0) {
              yield* Effect.forkScoped(
                Effect.sleep(Duration.seconds(options.timeoutSeconds)).pipe(
                  Effect.andThen(Effect.sync(() => {
                    c.kinds[kind].watchers.delete(opened)
                    Queue.endUnsafe(queue)
                  }))
                )
              )
            }
          })
        ).pipe(
          Stream.mapArrayEffect((items) =>
            Effect.suspend(() => {
              if (watcher?.failure !== undefined) return Effect.fail(watcher.failure)
              if (watcher !== undefined) {
                for (const item of items) if (isChange(item)) watcher.delivered++
              }
              return Effect.succeed(Arr.map(items, toWatchEvent))
            })
          )
        )
      })

    // --- clients ------------------------------------------------------------

    const makeClient = (client: ClientRef, identity: string): KubeClientShape => {
      const nsOf = (kind: ResourceKind, namespace: string | undefined) =>
        resources[kind].namespaced ? namespace : undefined
      /** A create or update: the object names itself and, unless the path does, its namespace. */
      const bodyRequest = (
        verb: "create" | "update",
        kind: ResourceKind,
        namespace: string | undefined,
        object: KubeObject
      ): Request => ({
        verb,
        kind,
        namespace: nsOf(kind, namespace ?? object.metadata?.namespace),
        name: object.metadata?.name || undefined
      })
      return {
        cluster: client.label,
        identity,
        get: (kind, namespace, name) =>
          call(client, { verb: "get", kind, namespace: nsOf(kind, namespace), name }, (ctx) =>
            cloneJson(getExisting(ctx, kind, requestNamespace(ctx, kind, namespace), name))),
        list: (kind, namespace, options) =>
          call(
            client,
            { verb: "list", kind, namespace: nsOf(kind, namespace), name: undefined },
            (ctx) => listObjects(ctx, kind, namespace, options)
          ),
        watch: (kind, namespace, options) => watch(client, kind, namespace, options),
        create: (kind, namespace, object) =>
          call(
            client,
            bodyRequest("create", kind, namespace, object),
            (ctx) => cloneJson(createObject(ctx, kind, namespace, object)),
            (created) => created.metadata.name
          ),
        replace: (kind, namespace, object) =>
          call(
            client,
            bodyRequest("update", kind, namespace, object),
            (ctx) => cloneJson(replaceObject(ctx, kind, namespace, object))
          ),
        patch: (kind, namespace, name, patch) =>
          call(
            client,
            { verb: "patch", kind, namespace: nsOf(kind, namespace), name },
            (ctx) => cloneJson(patchObject(ctx, kind, namespace, name, patch))
          ),
        delete: (kind, namespace, name, options) =>
          call(client, { verb: "delete", kind, namespace: nsOf(kind, namespace), name }, (ctx) => {
            deleteObject(ctx, kind, namespace, name, options)
          }),
        logs: (namespace, name, container) =>
          call(client, { verb: "get", kind: "pods", subresource: "log", namespace, name }, (ctx) => {
            const pod = getExisting(ctx, "pods", namespace, name)
            const spec = isRecord(pod.spec) ? pod.spec : {}
            const names = [
              ...(Array.isArray(spec.containers) ? spec.containers : []),
              ...(Array.isArray(spec.initContainers) ? spec.initContainers : [])
            ].flatMap((c) => (isRecord(c) && typeof c.name === "string" ? [c.name] : []))
            const logs = ctx.c.logs.get(`${namespace}/${name}`)
            let chosen = container
            if (chosen === undefined) {
              const mains = Array.isArray(spec.containers) ? spec.containers : []
              const candidates = names.length > 0 ? mains.map((c) => (c as { name: string }).name) : [...(logs?.keys() ?? [])]
              if (candidates.length > 1) {
                throw fail(ctx, "Invalid", `a container name must be specified for pod ${name}, choose one of: [${candidates.join(" ")}]`)
              }
              chosen = candidates[0]
            } else if (names.length > 0 && !names.includes(chosen)) {
              throw fail(ctx, "Invalid", `container ${chosen} is not valid for pod ${name}`)
            }
            return chosen === undefined ? "" : logs?.get(chosen) ?? ""
          })
      }
    }

    // --- harness operations -------------------------------------------------

    const withCluster = <A>(name: string, f: (c: ClusterState) => A): Effect.Effect<A> =>
      Effect.suspend(() => {
        const c = clusters.get(name)
        if (c === undefined) return Effect.die(new Error(`InMemoryKube: unknown cluster "${name}" (call addCluster first)`))
        return Effect.succeed(f(c))
      })

    const harnessCtx = (c: ClusterState, now: number, random: Random.Random, req: Request): Ctx => ({
      c,
      label: c.name,
      identity: harnessIdentity,
      now,
      random,
      req
    })

    const ensureNamespaceSync = (c: ClusterState, ns: string, now: number, random: Random.Random): void => {
      if (lookup(c, "namespaces", "", ns) !== undefined) return
      const req: Request = { verb: "create", kind: "namespaces", namespace: undefined, name: ns }
      createObject(harnessCtx(c, now, random, req), "namespaces", undefined, { metadata: { name: ns } })
    }

    const timed = <A>(f: (now: number, random: Random.Random) => Effect.Effect<A>): Effect.Effect<A> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const random = yield* Random.Random
        return yield* f(now, random)
      })

    const identityOf = (c: ClusterState, name: string): Identity => {
      const identity = c.identities.get(name)
      if (identity === undefined) throw new Error(`InMemoryKube: unknown identity "${name}" in cluster "${c.name}"`)
      return identity
    }

    const setLog = (cluster: string, ns: string, pod: string, container: string, text: string, append: boolean) =>
      withCluster(cluster, (c) => {
        const key = `${ns}/${pod}`
        let byContainer = c.logs.get(key)
        if (byContainer === undefined) {
          byContainer = new Map()
          c.logs.set(key, byContainer)
        }
        byContainer.set(container, append ? (byContainer.get(container) ?? "") + text : text)
      })

    const service: Omit<InMemoryKubeShape, "connect"> = {
      addCluster: (name) =>
        timed((now, random) =>
          Effect.sync(() => {
            if (clusters.has(name)) return
            const c = makeClusterState(name)
            clusters.set(name, c)
            ensureNamespaceSync(c, "default", now, random)
            ensureNamespaceSync(c, "kube-system", now, random)
          })
        ),
      clusters: Effect.sync(() => [...clusters.keys()]),
      ensureNamespace: (cluster, namespace) =>
        timed((now, random) =>
          Effect.flatten(withCluster(cluster, (c) =>
            toEffect(() => ensureNamespaceSync(c, namespace, now, random)).pipe(Effect.orDie)
          ))
        ),
      addIdentity: (cluster, spec) =>
        withCluster(cluster, (c) => {
          const previous = c.identities.get(spec.name)
          if (previous !== undefined) c.tokens.delete(previous.token)
          const identity: Identity = { name: spec.name, token: spec.token, rules: [...spec.rules] }
          c.identities.set(spec.name, identity)
          c.tokens.set(spec.token, identity)
        }),
      removeIdentity: (cluster, name) =>
        withCluster(cluster, (c) => {
          const identity = c.identities.get(name)
          if (identity === undefined) return
          c.identities.delete(name)
          c.tokens.delete(identity.token)
        }),
      grant: (cluster, name, rules) =>
        Effect.flatten(withCluster(cluster, (c) =>
          Effect.sync(() => {
            identityOf(c, name).rules.push(...rules)
          })
        )),
      revoke: (cluster, name, rules) =>
        Effect.flatten(withCluster(cluster, (c) =>
          Effect.sync(() => {
            const identity = identityOf(c, name)
            identity.rules = rules === undefined ? [] : identity.rules.filter((r) => !rules.some((x) => deepEqual(cloneJson(r), cloneJson(x))))
          })
        )),
      adminClient: (cluster) => makeClient({ clusterName: cluster, label: cluster, auth: { _tag: "Admin" } }, adminIdentity),
      clientFor: (cluster, token) =>
        makeClient(
          { clusterName: cluster, label: cluster, auth: { _tag: "Token", token } },
          clusters.get(cluster)?.tokens.get(token)?.name ?? "unknown"
        ),
      compact: (cluster) =>
        withCluster(cluster, (c) => {
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
        }),
      setReachable: (cluster, reachable) =>
        withCluster(cluster, (c) => {
          c.reachable = reachable
          if (reachable) return
          for (const kind of allKinds) {
            const kindStore = c.kinds[kind]
            for (const watcher of [...kindStore.watchers]) {
              failWatcher(kindStore, watcher, kind, "Unavailable", `connection to ${serverUrl(c.name)} lost`)
            }
          }
        }),
      holdWatchEvents: (cluster, held) =>
        withCluster(cluster, (c) => {
          if (held) {
            c.heldEvents ??= []
            return
          }
          const pending = c.heldEvents ?? []
          c.heldEvents = undefined
          for (const { watcher, item } of pending) offer(watcher, item)
        }),
      setHung: (cluster, hung) =>
        withCluster(cluster, (c) => {
          if (hung) c.running.closeUnsafe()
          else c.running.openUnsafe()
        }),
      failNext: (cluster, verb, resource, reason, count = 1, detail) =>
        withCluster(cluster, (c) => {
          if (count > 0) c.injected.push({ verb, resource, reason, detail, remaining: count })
        }),
      requests: (cluster) => withCluster(cluster, (c) => c.requests.map((r) => ({ ...r }))),
      clearRequests: (cluster) =>
        withCluster(cluster, (c) => {
          c.requests = []
        }),
      history: (cluster) => withCluster(cluster, (c) => c.changes.map((r) => ({ ...r }))),
      resourceVersion: (cluster) => withCluster(cluster, (c) => String(c.rv)),
      objects: (cluster, kind, namespace) =>
        withCluster(cluster, (c) => {
          const byNs = c.kinds[kind].byNs
          const buckets = namespace !== undefined && resources[kind].namespaced
            ? [byNs.get(namespace)]
            : [...byNs.keys()].sort().map((ns) => byNs.get(ns))
          return buckets.flatMap((bucket) =>
            bucket === undefined ? [] : [...bucket.keys()].sort().map((name) => cloneJson(bucket.get(name)!))
          )
        }),
      setPodLog: (cluster, ns, pod, container, text) => setLog(cluster, ns, pod, container, text, false),
      appendPodLog: (cluster, ns, pod, container, text) => setLog(cluster, ns, pod, container, text, true),
      openWatches: (cluster) =>
        withCluster(cluster, (c) => allKinds.reduce((n, kind) => n + c.kinds[kind].watchers.size, 0))
    }

    const connect = (spec: ConnectionSpec): Effect.Effect<KubeClientShape, KubeError, Scope.Scope> =>
      Effect.suspend(() => {
        const server = spec.endpoint.server
        const connectError = (reason: KubeErrorReason, detail: string) =>
          new KubeError({ reason, cluster: spec.cluster, verb: "connect", resource: "cluster", detail })
        const name = server.startsWith(serverPrefix) ? server.slice(serverPrefix.length).replace(/\/+$/, "") : undefined
        const c = name === undefined ? undefined : clusters.get(name)
        if (name === undefined || c === undefined) {
          return Effect.fail(connectError("Unavailable", `no in-memory cluster serves ${server}`))
        }
        if (spec.auth._tag !== "Token") {
          return Effect.fail(
            connectError("Unauthorized", `in-memory clusters only accept bearer tokens, user ${spec.user} uses ${spec.auth._tag}`)
          )
        }
        const token = Redacted.value(spec.auth.token)
        const session: Session = { closed: false, watches: new Set() }
        return Effect.acquireRelease(
          Effect.sync(() =>
            makeClient(
              { clusterName: name, label: spec.cluster, auth: { _tag: "Token", token }, session },
              c.tokens.get(token)?.name ?? spec.user
            )
          ),
          () =>
            Effect.sync(() => {
              session.closed = true
              for (const end of [...session.watches]) end()
              session.watches.clear()
            })
        )
      })

    return { ...service, connect }
  })

/**
 * The in-memory API server. Its layers also provide `KubeConnector`, which
 * connects to `memory://<cluster>` servers with Token credentials.
 */
export class InMemoryKube extends Context.Service<InMemoryKube, InMemoryKubeShape>()("flotilla/testing/InMemoryKube") {
  static readonly layerWith = (options: InMemoryKubeOptions = {}): Layer.Layer<InMemoryKube | KubeConnector> => {
    const kube = Layer.effect(InMemoryKube, make(options))
    const connector = Layer.effect(
      KubeConnector,
      Effect.gen(function*() {
        const service = yield* InMemoryKube
        return KubeConnector.of({ connect: service.connect })
      })
    )
    return Layer.provideMerge(connector, kube)
  }

  static readonly layer: Layer.Layer<InMemoryKube | KubeConnector> = InMemoryKube.layerWith()
}
