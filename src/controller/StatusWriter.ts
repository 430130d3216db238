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

const make = Effect.gen(function*() {
  const local = yield* KubeClient
  const expectations = yield* Expectations
  const queue = yield* WorkQueue

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
      const changed = JSON.stringify(status) !== JSON.stringify(wf["status"] ?? {}) ||
        JSON.stringify(labels) !== JSON.stringify(wf.metadata.labels ?? {})
      if (changed) {
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
    forget: (key) => Effect.sync(() => void overwrittenVersion.delete(key)),
    write,
    showMessage,
    postpone
  })
})
