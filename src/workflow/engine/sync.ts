/**
 * Synchronization (mutexes and semaphores), the engine's half, as upstream's operator and
 * workflow/sync apply it: which locks a workflow (`spec.synchronization`) or a template call
 * (`synchronization` on the template) needs, whether it may take them now, and what that writes
 * in the status. The locks themselves are the controller's (src/controller/Synchronization.ts):
 * the engine reads their state through `input.sync` and says what it took, waits for and
 * released through `output.sync`; within one reconcile it keeps its own copy of what it changed.
 *
 * - Lock keys as upstream: `<ns>/Mutex/<name>`, `<ns>/ConfigMap/<configmap>/<key>`; the namespace
 *   is the lock's own `namespace`, else the workflow's. Holder keys `<ns>/<wf>` (workflow level)
 *   and `<ns>/<wf>/<nodeID>` (template level).
 * - A holder takes all its locks at once or none. It may take a lock when a place is free and no
 *   other workflow's holder is ahead of it in line (priority, then creation time), as upstream's
 *   `checkAcquire` (the front of the queue, holders of the same workflow count as one).
 * - Waiting: the workflow stays Pending, or the node is Pending, with upstream's message
 *   `Waiting for <lock> lock. Lock status: <free>/<limit>` and `synchronizationStatus.waiting`;
 *   `status.synchronization.{mutex,semaphore}.{holding,waiting}` as upstream's `LockAcquired`,
 *   `LockWaiting` and `LockReleased` write them.
 * - Released when the holder's node is fulfilled, and everything when the workflow completes
 *   (then `status.synchronization` is dropped, as upstream's `ReleaseAll`).
 *
 * `guardTemplate` also applies the template's `memoize` (memoize.ts), which upstream checks
 * right after the lock.
 */
import { isRecord } from "../../util/records.js"
import { isFulfilled, type NodeType, type Template, templateTypeOf } from "../model/Workflow.js"
import { cacheLookup, markMemoized, memoRequests } from "./memoize.js"
import type { ExecOpts, Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { shouldExecute, shutdownStrategy, stoppedMessage } from "./shutdown.js"
import type { LockState, LockWaiter, SemaphoreSource, SyncRequests } from "./syncTypes.js"

type Kind = "Mutex" | "Semaphore"
interface LockItem {
  readonly key: string
  readonly kind: Kind
  readonly source?: SemaphoreSource
}

/**
 * Upstream lets a workflow take a lock, and read a semaphore's ConfigMap, in
 * another namespace; in flotilla one tenant's workflow may neither hold
 * another namespace's locks (stalling its workflows) nor have the controller
 * read that namespace's ConfigMaps.
 */
const otherNamespace = (path: string, namespace: string, wfNamespace: string): string =>
  `${path}: a lock in another namespace ("${namespace}", the workflow's is "${wfNamespace}") is not supported`

/** The locks a `synchronization` block names (v3.6+ lists and the older singular fields), or why it is invalid. */
export const lockItems = (sync: unknown, wfNamespace: string, field: string): ReadonlyArray<LockItem> | { readonly error: string } => {
  if (!isRecord(sync)) return []
  const list = (plural: string, singular: string): Array<[unknown, string]> => [
    ...(Array.isArray(sync[plural]) ? (sync[plural] as Array<unknown>).map((v, i) => [v, `${field}.${plural}[${i}]`] as [unknown, string]) : []),
    ...(sync[singular] !== undefined && sync[singular] !== null ? [[sync[singular], `${field}.${singular}`] as [unknown, string]] : [])
  ]
  const items: Array<LockItem> = []
  for (const [s, path] of list("semaphores", "semaphore")) {
    if (!isRecord(s)) return { error: `${path}: expected an object` }
    const namespace = typeof s["namespace"] === "string" && s["namespace"] !== "" ? s["namespace"] : wfNamespace
    if (namespace !== wfNamespace) return { error: otherNamespace(`${path}.namespace`, namespace, wfNamespace) }
    if (s["database"] !== undefined && s["database"] !== null) return { error: `${path}.database: database semaphores are not supported` }
    const ref = s["configMapKeyRef"]
    if (!isRecord(ref)) return { error: "cannot get LockName for a Semaphore without a ConfigMapRef or Database" }
    const name = typeof ref["name"] === "string" ? ref["name"] : ""
    const key = typeof ref["key"] === "string" ? ref["key"] : ""
    if (name === "") return { error: "Invalid lock key: ResourceName is missing" }
    if (key === "") return { error: "Invalid lock key: Key is missing for ConfigMap lock" }
    const lock = `${namespace}/ConfigMap/${name}/${key}`
    items.push({ key: lock, kind: "Semaphore", source: { lock, namespace, name, key } })
  }
  for (const [m, path] of list("mutexes", "mutex")) {
    if (!isRecord(m)) return { error: `${path}: expected an object` }
    if (m["database"] === true) return { error: `${path}.database: database mutexes are not supported` }
    const namespace = typeof m["namespace"] === "string" && m["namespace"] !== "" ? m["namespace"] : wfNamespace
    if (namespace !== wfNamespace) return { error: otherNamespace(`${path}.namespace`, namespace, wfNamespace) }
    const name = typeof m["name"] === "string" ? m["name"] : ""
    if (name === "") return { error: "Invalid lock key: ResourceName is missing" }
    items.push({ key: `${namespace}/Mutex/${name}`, kind: "Mutex" })
  }
  if (new Set(items.map((i) => i.key)).size !== items.length) return { error: "duplicate synchronization item found" }
  return items
}

/** Whether waiter `a` goes before `b`: higher priority, then older, then by key. */
export const waiterBefore = (a: LockWaiter, b: LockWaiter): boolean =>
  a.priority !== b.priority ? a.priority > b.priority : a.created !== b.created ? a.created < b.created : a.holder < b.holder

/** The workflow part (`<ns>/<wf>`) of a holder key. */
export const workflowOfHolder = (holder: string): string => holder.split("/").slice(0, 2).join("/")

/** Upstream's `isSameWorkflowNodeKeys`: same shape (workflow or template level) and same workflow. */
const sameWorkflowKind = (a: string, b: string): boolean => {
  const x = a.split("/")
  const y = b.split("/")
  return x.length === y.length && x[1] === y[1] && x[0] === y[0]
}

/**
 * Whether `self` may take a lock in `state` with `limit` places now: it already holds it, or a place
 * is free and the first in line (with `self` in the line) is of its own workflow. Shared with the
 * controller, which applies the same rule.
 */
export const mayTake = (state: LockState, limit: number, self: LockWaiter): "held" | "free" | "wait" => {
  if (state.holders.includes(self.holder)) return "held"
  if (limit <= 0 || state.holders.length >= limit) return "wait"
  let front: LockWaiter = self
  for (const w of state.waiting) if (w.holder !== self.holder && waiterBefore(w, front)) front = w
  return front === self || sameWorkflowKind(front.holder, self.holder) ? "free" : "wait"
}

export const waitingMessage = (lock: string, held: number, limit: number): string =>
  `Waiting for ${lock} lock. Lock status: ${limit - held}/${limit}`

/** One operation's view of the locks: the controller's state, with this reconcile's changes on top. */
class Session {
  private readonly changed = new Map<string, LockState>()
  readonly acquire: Array<{ holder: string; locks: Array<string> }> = []
  readonly wait: Array<LockWaiter & { locks: Array<string> }> = []
  readonly release = new Set<string>()
  readonly needLimits = new Map<string, SemaphoreSource>()
  used = false
  constructor(private readonly op: OperationState) {}

  state(lock: string): LockState {
    return this.changed.get(lock) ?? this.op.input.sync?.lock(lock) ?? { holders: [], waiting: [] }
  }

  set(lock: string, state: LockState): void {
    this.changed.set(lock, state)
  }
}
const sessions = new WeakMap<OperationState, Session>()
const sessionOf = (op: OperationState): Session => {
  let s = sessions.get(op)
  if (s === undefined) {
    sessions.set(op, s = new Session(op))
    // Pods observed done before any template runs: their locks are free for the calls that follow.
    releaseFulfilled(op)
  }
  return s
}

interface SemaphoreHolding {
  semaphore: string
  holders?: Array<string>
}
interface MutexHolding {
  mutex: string
  holder?: string
}
interface SyncStatus {
  semaphore?: { holding?: Array<SemaphoreHolding>; waiting?: Array<SemaphoreHolding> }
  mutex?: { holding?: Array<MutexHolding>; waiting?: Array<MutexHolding> }
}

/** `status.synchronization`, copied for this operation (the stored one is never mutated), with `kind`'s part made. */
const syncStatus = (op: OperationState, kind?: Kind): SyncStatus => {
  const session = sessionOf(op)
  if (!session.used) {
    session.used = true
    const prev = op.status["synchronization"]
    op.status["synchronization"] = isRecord(prev) ? JSON.parse(JSON.stringify(prev)) : {}
  }
  const s = op.status["synchronization"] as SyncStatus
  if (kind === "Semaphore") s.semaphore ??= {}
  if (kind === "Mutex") s.mutex ??= {}
  return s
}

/** Upstream's LockAcquired. */
const statusAcquired = (op: OperationState, item: LockItem, holder: string): void => {
  const s = syncStatus(op, item.kind)
  if (item.kind === "Semaphore") {
    const sem = s.semaphore!
    const holding = (sem.holding ??= [])
    const h = holding.find((x) => x.semaphore === item.key)
    if (h === undefined) holding.push({ semaphore: item.key, holders: [holder] })
    else if (!(h.holders ?? []).includes(holder)) h.holders = [...(h.holders ?? []), holder]
    const wi = (sem.waiting ?? []).findIndex((x) => x.semaphore === item.key)
    if (wi >= 0) {
      const w = sem.waiting![wi]
      w.holders = (w.holders ?? []).filter((x) => x !== holder)
      if (w.holders.length === 0) sem.waiting!.splice(wi, 1)
    }
  } else {
    const mtx = s.mutex!
    const holding = (mtx.holding ??= [])
    const h = holding.find((x) => x.mutex === item.key)
    if (h === undefined) holding.push({ mutex: item.key, holder })
    else h.holder = holder
  }
}

/** Upstream's LockWaiting: the waiting entry names the lock's current holders. */
const statusWaiting = (op: OperationState, item: LockItem, holders: ReadonlyArray<string>): void => {
  const s = syncStatus(op, item.kind)
  if (item.kind === "Semaphore") {
    const waiting = (s.semaphore!.waiting ??= [])
    const w = waiting.find((x) => x.semaphore === item.key)
    if (w === undefined) waiting.push({ semaphore: item.key, holders: [...holders] })
    else w.holders = [...holders]
  } else {
    if (holders.length === 0) return
    const waiting = (s.mutex!.waiting ??= [])
    const w = waiting.find((x) => x.mutex === item.key)
    if (w === undefined) waiting.push({ mutex: item.key, holder: holders[0] })
    else w.holder = holders[0]
  }
}

/** Upstream's LockReleased, for every lock `holder` holds in the status; returns those locks. */
const statusReleased = (op: OperationState, holder: string): Array<string> => {
  const s = syncStatus(op)
  const locks: Array<string> = []
  for (const h of s.semaphore?.holding ?? []) {
    if ((h.holders ?? []).includes(holder)) {
      h.holders = (h.holders ?? []).filter((x) => x !== holder)
      locks.push(h.semaphore)
    }
  }
  for (const h of s.mutex?.holding ?? []) if (h.holder === holder) locks.push(h.mutex)
  if (s.mutex?.holding !== undefined) s.mutex.holding = s.mutex.holding.filter((h) => h.holder !== holder)
  return locks
}

type Attempt =
  | { readonly acquired: true; readonly now: boolean }
  | { readonly acquired: false; readonly message: string; readonly lock: string }
  | { readonly error: string }

/** Takes all of `items` for `holder`, or none and waits in line (upstream's `TryAcquire`). */
const tryAcquire = (op: OperationState, holder: string, items: ReadonlyArray<LockItem>): Attempt => {
  const session = sessionOf(op)
  const spec = op.wf.spec as { priority?: unknown }
  const self: LockWaiter = {
    holder,
    priority: typeof spec.priority === "number" ? spec.priority : 0,
    created: Date.parse(op.wf.metadata.creationTimestamp ?? "") || 0
  }
  syncStatus(op)
  let blocked: { message: string; lock: string } | undefined
  let allHeld = true
  for (const item of items) {
    if (session.state(item.key).holders.includes(holder)) continue
    allHeld = false
    let limit = 1
    if (item.kind === "Semaphore") {
      const read = op.input.sync?.limits.get(item.key)
      if (read === undefined) {
        session.needLimits.set(item.key, item.source!)
        blocked ??= { message: `Waiting for ${item.key} lock: reading its limit`, lock: item.key }
        continue
      }
      if (typeof read !== "number") return { error: read.error }
      if (read <= 0) return { error: `failed to initialize semaphore ${item.key} with limit` }
      limit = read
    }
    const state = session.state(item.key)
    if (mayTake(state, limit, self) === "wait") blocked ??= { message: waitingMessage(item.key, state.holders.length, limit), lock: item.key }
  }
  if (blocked === undefined) {
    for (const item of items) {
      const state = session.state(item.key)
      if (!state.holders.includes(holder)) {
        session.set(item.key, { holders: [...state.holders, holder], waiting: state.waiting.filter((w) => w.holder !== holder) })
      }
      statusAcquired(op, item, holder)
    }
    if (!allHeld) session.acquire.push({ holder, locks: items.map((i) => i.key) })
    return { acquired: true, now: !allHeld }
  }
  for (const item of items) {
    const state = session.state(item.key)
    if (!state.holders.includes(holder) && !state.waiting.some((w) => w.holder === holder)) {
      session.set(item.key, { holders: state.holders, waiting: [...state.waiting, self] })
    }
    statusWaiting(op, item, state.holders)
  }
  session.wait.push({ ...self, locks: items.map((i) => i.key) })
  return { acquired: false, ...blocked }
}

/** `holder` is done with its locks (and with waiting for `waitedFor`), in this operation's view too. */
const releaseHolder = (op: OperationState, holder: string, waitedFor?: string): void => {
  const session = sessionOf(op)
  session.release.add(holder)
  const locks = statusReleased(op, holder)
  if (waitedFor !== undefined) locks.push(waitedFor)
  for (const lock of locks) {
    const state = session.state(lock)
    session.set(lock, { holders: state.holders.filter((h) => h !== holder), waiting: state.waiting.filter((w) => w.holder !== holder) })
  }
}

const waitingPattern = /^Waiting for .* lock(\. Lock status: \d+\/\d+|: reading its limit)$/

/**
 * `spec.synchronization`: undefined once the workflow holds its locks (or needs none); else it
 * waits, Pending with upstream's message, or fails when its locks cannot be had at all.
 */
export const workflowLock = (op: OperationState): { readonly failed?: string } | undefined => {
  const sync = (op.wf.spec as { synchronization?: unknown }).synchronization
  if (sync === undefined || sync === null) return undefined
  const items = lockItems(sync, op.wf.metadata.namespace, "spec.synchronization")
  if ("error" in items) return { failed: `Failed to acquire the synchronization lock. ${items.error}` }
  if (items.length === 0) return undefined
  const attempt = tryAcquire(op, `${op.wf.metadata.namespace}/${op.wf.metadata.name}`, items)
  if ("error" in attempt) return { failed: `Failed to acquire the synchronization lock. ${attempt.error}` }
  if (attempt.acquired) {
    if (typeof op.status["message"] === "string" && waitingPattern.test(op.status["message"])) delete op.status["message"]
    return undefined
  }
  const phase = op.status["phase"]
  if (phase === undefined || phase === "") op.status["phase"] = "Pending"
  op.status["message"] = attempt.message
  return {}
}

const nodeTypeOf = (tmpl: Template): NodeType => {
  switch (templateTypeOf(tmpl)) {
    case "Steps":
      return "Steps"
    case "DAG":
      return "DAG"
    case "Suspend":
      return "Suspend"
    default:
      return "Pod"
  }
}

const waitingFor = (node: Node | undefined): string | undefined => {
  const s = node?.["synchronizationStatus"]
  return isRecord(s) && typeof s["waiting"] === "string" ? s["waiting"] : undefined
}

/**
 * A template call with `synchronization` and/or `memoize` (upstream's executeTemplate between the
 * parallelism check and the retry node): the node waits for its locks, Pending, without running;
 * once it holds them, a fresh cache entry completes it at once; else `body` runs it.
 */
export const guardTemplate = (
  op: OperationState,
  nodeName: string,
  tmpl: Template,
  opts: ExecOpts,
  body: () => Node | undefined
): Node | undefined => {
  const sync = (tmpl as { synchronization?: unknown }).synchronization
  let justAcquired = false
  if (sync !== undefined && sync !== null) {
    const items = lockItems(sync, op.wf.metadata.namespace, `templates.${tmpl.name}.synchronization`)
    if ("error" in items) return op.errorNode(nodeName, items.error, opts, tmpl.name)
    if (items.length > 0) {
      const existing = op.byName(nodeName)
      const holder = `${op.wf.metadata.namespace}/${op.wf.metadata.name}/${op.id(nodeName)}`
      // Stopping: a node still waiting for its lock will never get a pod: it fails (upstream's shutdown).
      const stopping = shutdownStrategy(op)
      if (stopping !== undefined && !shouldExecute(op, opts.onExit) && (existing === undefined || waitingFor(existing) !== undefined)) {
        if (existing === undefined) return undefined
        const waited = waitingFor(existing)
        delete existing["synchronizationStatus"]
        releaseHolder(op, holder, waited)
        return op.markPhase(existing, "Failed", stoppedMessage(stopping))
      }
      // A placeholder not yet waiting is one that may not start (parallelism): do not queue it either.
      if (existing === undefined && (op.parallelismBlocked(opts) ||
        (typeof op.wf.spec.parallelism === "number" && op.activePods >= op.wf.spec.parallelism && nodeTypeOf(tmpl) === "Pod"))) {
        return undefined
      }
      const attempt = tryAcquire(op, holder, items)
      if ("error" in attempt) return op.errorNode(nodeName, attempt.error, opts, tmpl.name)
      if (!attempt.acquired) {
        const node = existing ?? op.initCallNode(nodeName, nodeTypeOf(tmpl), "Pending", tmpl, opts, false)
        node.message = attempt.message
        node["synchronizationStatus"] = { waiting: attempt.lock }
        return node
      }
      if (existing !== undefined && waitingFor(existing) !== undefined) {
        // It waited as a placeholder: the template's executor makes its node afresh now.
        delete op.nodes[existing.id]
        justAcquired = true
      }
    }
  }
  const memo = tmpl.memoize
  if (memo !== undefined) {
    const existing = op.byName(nodeName)
    if (existing === undefined || justAcquired) {
      const looked = cacheLookup(op, nodeName, tmpl, opts, memo, nodeTypeOf(tmpl))
      if (looked !== undefined) return looked
    }
  }
  const node = body()
  if (memo !== undefined && node !== undefined) markMemoized(node, memo)
  return node
}

/** Holders whose node is fulfilled (or gone) release their locks; fulfilled waiters leave the line. */
const releaseFulfilled = (op: OperationState): void => {
  if (!isRecord(op.status["synchronization"])) return
  const prefix = `${op.wf.metadata.namespace}/${op.wf.metadata.name}/`
  const s = syncStatus(op)
  const held = new Set<string>()
  for (const h of s.semaphore?.holding ?? []) for (const x of h.holders ?? []) held.add(x)
  for (const h of s.mutex?.holding ?? []) if (h.holder !== undefined) held.add(h.holder)
  for (const holder of held) {
    if (!holder.startsWith(prefix)) continue
    const node = op.nodes[holder.slice(prefix.length)]
    if (node === undefined || isFulfilled(node.phase)) releaseHolder(op, holder)
  }
  for (const id in op.nodes) {
    const n = op.nodes[id]
    const waited = waitingFor(n)
    if (waited !== undefined && isFulfilled(n.phase)) {
      delete n["synchronizationStatus"]
      releaseHolder(op, `${prefix}${id}`, waited)
    }
  }
}

/** Empty lists are left out, as upstream's JSON (omitempty). */
const tidyStatus = (op: OperationState): void => {
  const s = op.status["synchronization"]
  if (!isRecord(s)) return
  for (const part of ["semaphore", "mutex"]) {
    const p = s[part]
    if (!isRecord(p)) continue
    for (const list of ["holding", "waiting"]) if (Array.isArray(p[list]) && p[list].length === 0) delete p[list]
  }
}

/**
 * At the end of the operation: holders whose node is fulfilled release their locks (those
 * waiting leave the line), a completed workflow releases everything and drops
 * `status.synchronization`; what was taken, waited for and released, and the memoization
 * requests, for the output.
 */
export const syncRequests = (
  op: OperationState,
  completed: boolean
): { sync?: SyncRequests; memo?: ReturnType<typeof memoRequests> } => {
  const session = sessionOf(op)
  const prefix = `${op.wf.metadata.namespace}/${op.wf.metadata.name}/`
  const stored = op.status["synchronization"]
  let releaseWorkflow = false
  if (completed) {
    if (stored !== undefined || session.used) {
      releaseWorkflow = true
      delete op.status["synchronization"]
    }
    for (const id in op.nodes) {
      const n = op.nodes[id]
      if (waitingFor(n) !== undefined) {
        const copy = { ...n }
        delete copy["synchronizationStatus"]
        op.nodes[id] = copy
        releaseWorkflow = true
      }
    }
  } else if (isRecord(stored) || session.used) {
    releaseFulfilled(op)
  }
  tidyStatus(op)
  const out: { sync?: SyncRequests; memo?: ReturnType<typeof memoRequests> } = {}
  if (session.used || releaseWorkflow || session.release.size > 0) {
    out.sync = {
      acquire: session.acquire,
      wait: session.wait,
      release: [...session.release],
      releaseWorkflow,
      needLimits: [...session.needLimits.values()]
    }
  }
  const memo = memoRequests(op)
  if (memo !== undefined) out.memo = memo
  return out
}

