/**
 * Writes a workflow's status, as Argo does: one Update of the whole object (status and labels),
 * so a concurrent change is a Conflict and never a lost update, and only when something changed.
 * The status written carries what the stored one does not show yet: the records of pods just
 * created (`PodIdentity`, so a restart or a Conflict after a create loses nothing) and the message
 * of each node whose create is waiting for its cluster.
 *
 * The stale-copy guard: after a write, the cache may hand a reconcile the copy that write
 * replaced (its watch event has not arrived). The engine would redo what the write recorded, such
 * as creating again a pod whose create failed for good, so that copy waits (briefly, and bounded:
 * should the write's event never arrive, it is taken as it is after a while).
 *
 * Fewer writes (issue 14): "changed" is judged by value, whatever the order of keys (the API
 * server stores a custom resource with its keys sorted, the engine builds them in its own order:
 * comparing JSON text wrote every round again, an Update the server took as a no-op). And a
 * change that only tells where a still-Pending pod landed (`hostNodeName`, `podIP`, the pod's
 * waiting message) is held back for `placementHoldMs` at most: the next real change (the pod
 * Running or done, usually within that time) carries it in the same write. A node waiting for
 * its cluster (a message of this controller's own) is never held back. Nothing held back
 * decides anything: every round folds the observed pods into the nodes again, and a Pending node
 * stays Pending in the stored status either way.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { KubeClient } from "../kube/api/KubeClient.js"
import type { KubeError } from "../kube/api/KubeError.js"
import type { KubeObject } from "../kube/api/Resources.js"
import type { EngineOutput } from "../workflow/engine/contract.js"
import { updateStatusNodes } from "../workflow/model/compressedNodes.js"
import { Expectations } from "./Expectations.js"
import { parseWorkflowKey } from "./observe.js"
import { withPodRecords } from "./PodIdentity.js"
import * as Throttler from "./Throttler.js"
import { WorkQueue } from "./WorkQueue.js"

export type WriteResult =
  /** The status is stored (written now, or unchanged). */
  | { readonly _tag: "Stored"; readonly status: Readonly<Record<string, unknown>> }
  /** A Conflict (a newer copy is on its way) or a failed write: again after the key's backoff. */
  | { readonly _tag: "Retry"; readonly conflict: boolean }

export class StatusWriter extends Context.Service<StatusWriter, {
  /**
   * True when `wf` is the copy this controller's last status write replaced: the key was queued
   * again shortly, and this copy must not be reconciled.
   */
  readonly staleCopy: (key: string, wf: KubeObject) => Effect.Effect<boolean>
  /** The workflow is gone: forget its last write. */
  readonly forget: (key: string) => Effect.Effect<void>
  /** Writes the engine's status and labels for `wf` (with pending records and waiting messages) when they changed. */
  readonly write: (key: string, wf: KubeObject, output: Pick<EngineOutput, "status" | "labels">, now: number) => Effect.Effect<WriteResult>
  /** Sets the status message (why a workflow waits for a cluster cache), when it differs; failures are left to the next round. */
  readonly showMessage: (wf: KubeObject, message: string) => Effect.Effect<void>
  /** Holds the workflow Pending with upstream's message while `parallelism` leaves it no room. */
  readonly postpone: (wf: KubeObject) => Effect.Effect<void, KubeError>
}>()("flotilla/controller/StatusWriter") {
  static readonly layer = Layer.effect(StatusWriter, Effect.suspend(() => make))
}

const staleWait = Duration.millis(50)
const staleWaitMax = 10_000
/**
 * How long a placement-only change may wait for the next write. Upstream delays every pod-triggered
 * reconcile by 1 s (`enoughTimeForInformerSync`); here only these changes wait. (3 s merged more
 * writes in the compare bench, where kwok took 2.7 s p50 from binding to Running, but made
 * ArtifactGC.test.ts's "remote GC task whose delete fails" time out 2 runs in 3: not understood yet.)
 */
export const placementHoldMs = 1000

/** Deep equality of JSON values, whatever the order of object keys (an undefined member counts as absent, as in JSON). */
export const sameJson = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false
    return true
  }
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  let count = 0
  for (const k in x) {
    if (x[k] === undefined) continue
    count++
    if (!Object.hasOwn(y, k) || !sameJson(x[k], y[k])) return false
  }
  for (const k in y) if (y[k] !== undefined) count--
  return count === 0
}

/** Node fields that only say where a pod landed and why it still waits. */
const placementFields = new Set(["hostNodeName", "podIP", "message"])

/**
 * True when `next` differs from `stored` only in the placement fields of nodes that are Pending
 * in both (same nodes, same everything else). Statuses that keep their nodes compressed are never so.
 */
export const onlyPlacementChanged = (stored: Readonly<Record<string, unknown>>, next: Readonly<Record<string, unknown>>): boolean => {
  if (stored["compressedNodes"] !== undefined || next["compressedNodes"] !== undefined) return false
  for (const k of new Set([...Object.keys(stored), ...Object.keys(next)])) {
    if (k !== "nodes" && !sameJson(stored[k], next[k])) return false
  }
  const a = (stored["nodes"] ?? {}) as Record<string, Record<string, unknown> | undefined>
  const b = (next["nodes"] ?? {}) as Record<string, Record<string, unknown> | undefined>
  if (Object.keys(a).length !== Object.keys(b).length) return false
  for (const id in b) {
    const before = a[id]
    const after = b[id]
    if (before === undefined || after === undefined) return false
    if (sameJson(before, after)) continue
    if (before["phase"] !== "Pending" || after["phase"] !== "Pending") return false
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (!placementFields.has(k) && !sameJson(before[k], after[k])) return false
    }
  }
  return true
}

const make = Effect.gen(function*() {
  const local = yield* KubeClient
  const expectations = yield* Expectations
  const queue = yield* WorkQueue

  /** Since when each workflow has held back a placement-only change. */
  const holdingSince = new Map<string, number>()
  /** The resourceVersion each workflow's last status write replaced. */
  const overwrittenVersion = new Map<string, { readonly version: string; readonly at: number }>()

  const staleCopy = (key: string, wf: KubeObject) =>
    Effect.gen(function*() {
      const overwritten = overwrittenVersion.get(key)
      if (overwritten === undefined) return false
      // bounded: should the write's event never arrive, the copy is taken as it is after a while
      if (wf.metadata.resourceVersion === overwritten.version && (yield* Clock.currentTimeMillis) - overwritten.at < staleWaitMax) {
        yield* queue.addAfter(key, staleWait)
        return true
      }
      overwrittenVersion.delete(key)
      return false
    })

  const write = (key: string, wf: KubeObject, output: Pick<EngineOutput, "status" | "labels">, now: number) =>
    Effect.gen(function*() {
      const ref = parseWorkflowKey(key)
      const wfUid = wf.metadata.uid ?? ""
      let status = withPodRecords(output.status, yield* expectations.pendingRecords(wfUid))
      const waitingHere = yield* expectations.waitingOf(wfUid)
      if (waitingHere.size > 0) {
        // in whichever form the status keeps its nodes (compressedNodes once it is large)
        status = updateStatusNodes(status, (nodes) => {
          const next = { ...nodes }
          for (const [nodeId, w] of waitingHere) {
            if (next[nodeId]) next[nodeId] = { ...next[nodeId], message: w.message }
          }
          return next
        })
      }
      const labels = { ...wf.metadata.labels, ...output.labels }
      const stored = (wf["status"] ?? {}) as Record<string, unknown>
      const labelsChanged = !sameJson(labels, wf.metadata.labels ?? {})
      const changed = labelsChanged || !sameJson(status, stored)
      if (!changed) holdingSince.delete(key)
      // (a node waiting for its cluster says so at once)
      else if (!labelsChanged && waitingHere.size === 0 && onlyPlacementChanged(stored, status)) {
        // held back for the next change to carry; written anyway once the hold is over
        const since = holdingSince.get(key) ?? now
        holdingSince.set(key, since)
        if (now - since < placementHoldMs) {
          yield* queue.addAfter(key, Duration.millis(placementHoldMs - (now - since)))
          return { _tag: "Stored", status: stored } as const
        }
      }
      if (changed) {
        holdingSince.delete(key)
        const written = yield* local.replace("workflows", ref.namespace, {
          ...wf,
          metadata: { ...wf.metadata, labels },
          status
        }).pipe(Effect.result)
        // (An update that changed nothing keeps its resourceVersion: then there is nothing to wait for.)
        if (
          written._tag === "Success" && wf.metadata.resourceVersion !== undefined &&
          written.success.metadata.resourceVersion !== wf.metadata.resourceVersion
        ) overwrittenVersion.set(key, { version: wf.metadata.resourceVersion, at: now })
        if (written._tag === "Failure") {
          const e = written.failure
          if (e.reason !== "Conflict" && e.reason !== "NotFound") {
            yield* Effect.logWarning("status update failed").pipe(Effect.annotateLogs({ workflow: key, error: e.message }))
          }
          return { _tag: "Retry", conflict: e.reason === "Conflict" } as const
        }
      }
      return { _tag: "Stored", status } as const
    })

  const showMessage = (wf: KubeObject, message: string) =>
    Effect.gen(function*() {
      const status = (wf["status"] ?? {}) as Record<string, unknown>
      if (status["message"] === message) return
      // the next round (the key is queued again) tries anew
      yield* local.replace("workflows", wf.metadata.namespace!, { ...wf, status: { ...status, message } }).pipe(Effect.ignore)
    })

  const postpone = (wf: KubeObject) =>
    Effect.gen(function*() {
      const status = (wf["status"] ?? {}) as Record<string, unknown>
      if (status["phase"] === "Pending" && status["message"] === Throttler.postponedMessage) return
      yield* local.replace("workflows", wf.metadata.namespace!, {
        ...wf,
        status: { ...status, phase: "Pending", message: Throttler.postponedMessage }
      }).pipe(Effect.catchTag("KubeError", (e) => e.reason === "Conflict" || e.reason === "NotFound" ? Effect.void : Effect.fail(e)))
    })

  return StatusWriter.of({
    staleCopy,
    forget: (key) =>
      Effect.sync(() => {
        overwrittenVersion.delete(key)
        holdingSince.delete(key)
      }),
    write,
    showMessage,
    postpone
  })
})
