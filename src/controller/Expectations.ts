/**
 * What the controller knows about its pod creates that the caches and the
 * stored status do not show yet, per workflow (by uid) and node, in the
 * spirit of client-go's ControllerExpectations:
 *
 *  - expected pods: created (or found already there) but not yet delivered by
 *    their cluster's watch. The engine sees them as Pending meanwhile, so a
 *    reconcile that runs before the watch delivers the pod (the status write
 *    itself triggers one) does not ask for it again. Dropped once the pod is
 *    observed, or after `ttl` (then a create may be tried again: AlreadyExists
 *    if the pod is there, a new pod if it was deleted unseen);
 *  - records (`PodIdentity`): uid, cluster and namespace of pods created whose
 *    record the stored status does not hold yet, written into every status
 *    update until it does, so a Conflict on the write after a create loses
 *    nothing;
 *  - waiting creates: nodes whose create failed transiently, since when and
 *    why (the node's message says it);
 *  - failed creates: permanent failures, fed to the engine as failed pods.
 *
 * Everything of one workflow is dropped at once (`forget`) when it is gone or
 * done with; reads and writes touch only that workflow's tables. One
 * workflow is reconciled by one worker at a time (the work queue), so its
 * tables are never written concurrently.
 */
import { Context, Effect, Layer } from "effect"
import type { PodObservation } from "../workflow/engine/contract.js"
import type { PodRecord } from "./PodIdentity.js"

export interface Waiting {
  /** First failure of the current run of transient failures of this kind (clock millis). */
  readonly since: number
  /** What it waits for: a cluster (bounded by createTimeout) or a ResourceQuota (until the workflow ends). */
  readonly kind: "cluster" | "quota"
  /** The node's message meanwhile. */
  readonly message: string
}

interface Tables {
  readonly expected: Map<string, PodObservation & { readonly at: number }>
  readonly records: Map<string, PodRecord>
  readonly waiting: Map<string, Waiting>
  readonly failures: Map<string, PodObservation>
}


export class Expectations extends Context.Service<Expectations, {
  /** A create answered (or its pod found): expect `pod` until observed or `ttl` passes; keep `record` until stored. */
  readonly created: (uid: string, nodeId: string, pod: PodObservation, record: PodRecord | undefined, at: number) => Effect.Effect<void>
  /** A pod seen but not recorded in the status (made just before a restart): record it with the next write. */
  readonly record: (uid: string, nodeId: string, record: PodRecord) => Effect.Effect<void>
  /** Drops the records the stored status holds now; returns the record of each node, pending first. */
  readonly settleRecords: (uid: string, stored: (nodeId: string) => PodRecord | undefined) => Effect.Effect<(nodeId: string) => PodRecord | undefined>
  /** Records not yet in the stored status. */
  readonly pendingRecords: (uid: string) => Effect.Effect<ReadonlyMap<string, PodRecord>>
  /**
   * The engine's view of pods: `observed` plus failed creates and pods expected but not seen yet
   * (unless expired at `now`). Expectations met or expired are dropped.
   */
  readonly overlay: (uid: string, observed: ReadonlyMap<string, PodObservation>, now: number) => Effect.Effect<Map<string, PodObservation>>
  /** When the earliest pod still expected stops being expected (clock millis), if any. */
  readonly nextLapse: (uid: string) => Effect.Effect<number | undefined>
  /**
   * A transient create failure: the node keeps waiting, with `message`; returns since when it has
   * been waiting for this `kind` (a change of kind starts over).
   */
  readonly waiting: (uid: string, nodeId: string, now: number, message: string, kind?: Waiting["kind"]) => Effect.Effect<number>
  readonly waitingOf: (uid: string) => Effect.Effect<ReadonlyMap<string, Waiting>>
  /** A permanent create failure: the node's pod is Failed with `failure`'s reason and message. */
  readonly failed: (uid: string, nodeId: string, failure: PodObservation) => Effect.Effect<void>
  /** The workflow completed: failed creates need not be shown to the engine any more. */
  readonly clearFailures: (uid: string) => Effect.Effect<void>
  /** The workflow is gone: drop all it had. */
  readonly forget: (uid: string) => Effect.Effect<void>
}>()("flotilla/controller/Expectations") {
  static readonly make = (options: { readonly ttlMillis?: number } = {}) => Effect.sync(() => make(options))
  static readonly layer = (options: { readonly ttlMillis?: number } = {}) => Layer.sync(Expectations, () => make(options))
}

const make = (options: { readonly ttlMillis?: number }): Expectations["Service"] => {
  const ttl = options.ttlMillis ?? 60_000
  const byUid = new Map<string, Tables>()
  const tables = (uid: string): Tables => {
    let t = byUid.get(uid)
    if (t === undefined) byUid.set(uid, t = { expected: new Map(), records: new Map(), waiting: new Map(), failures: new Map() })
    return t
  }
  /** Drops a workflow's entry once all its tables are empty. */
  const tidy = (uid: string) => {
    const t = byUid.get(uid)
    if (t && t.expected.size === 0 && t.records.size === 0 && t.waiting.size === 0 && t.failures.size === 0) byUid.delete(uid)
  }

  return Expectations.of({
    created: (uid, nodeId, pod, record, at) =>
      Effect.sync(() => {
        const t = tables(uid)
        t.waiting.delete(nodeId)
        if (record !== undefined) t.records.set(nodeId, record)
        t.expected.set(nodeId, { ...pod, at })
      }),
    record: (uid, nodeId, record) => Effect.sync(() => void tables(uid).records.set(nodeId, record)),
    settleRecords: (uid, stored) =>
      Effect.sync(() => {
        const t = byUid.get(uid)
        if (t !== undefined) {
          for (const [nodeId, record] of t.records) if (stored(nodeId)?.uid === record.uid) t.records.delete(nodeId)
          tidy(uid)
        }
        return (nodeId: string) => byUid.get(uid)?.records.get(nodeId) ?? stored(nodeId)
      }),
    pendingRecords: (uid) => Effect.sync(() => byUid.get(uid)?.records ?? new Map<string, PodRecord>()),
    overlay: (uid, observed, now) =>
      Effect.sync(() => {
        const pods = new Map(observed)
        const t = byUid.get(uid)
        if (t === undefined) return pods
        for (const [nodeId, failure] of t.failures) if (!pods.has(nodeId)) pods.set(nodeId, failure)
        for (const [nodeId, { at: _at, ...pod }] of t.expected) {
          if (pods.has(nodeId) || now - _at > ttl) t.expected.delete(nodeId)
          else pods.set(nodeId, pod)
        }
        tidy(uid)
        return pods
      }),
    nextLapse: (uid) =>
      Effect.sync(() => {
        let earliest: number | undefined
        for (const { at } of byUid.get(uid)?.expected.values() ?? []) earliest = earliest === undefined ? at : Math.min(earliest, at)
        return earliest === undefined ? undefined : earliest + ttl
      }),
    waiting: (uid, nodeId, now, message, kind = "cluster") =>
      Effect.sync(() => {
        const t = tables(uid)
        const previous = t.waiting.get(nodeId)
        const since = previous !== undefined && previous.kind === kind ? previous.since : now
        t.waiting.set(nodeId, { since, message, kind })
        return since
      }),
    waitingOf: (uid) => Effect.sync(() => byUid.get(uid)?.waiting ?? new Map<string, Waiting>()),
    failed: (uid, nodeId, failure) =>
      Effect.sync(() => {
        const t = tables(uid)
        t.waiting.delete(nodeId)
        t.failures.set(nodeId, failure)
      }),
    clearFailures: (uid) =>
      Effect.sync(() => {
        byUid.get(uid)?.failures.clear()
        tidy(uid)
      }),
    forget: (uid) => Effect.sync(() => void byUid.delete(uid))
  })
}
