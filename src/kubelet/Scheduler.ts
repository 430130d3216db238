/**
 * The in-memory clusters' scheduler: binds each unscheduled pod (no
 * `spec.nodeName`, `schedulerName` the default) to a node its
 * `nodeSelector`, required node affinity and tolerations allow
 * (scheduling.ts), the one running the fewest pods, as kube-scheduler would.
 * A pod no node takes stays Pending with the condition PodScheduled=False,
 * reason Unschedulable and kube-scheduler's message ("0/N nodes are
 * available: ..."), and is bound as soon as a node that takes it appears or
 * changes (labels, taints, cordon). Pods already bound, finished or being
 * deleted are left alone.
 *
 * It watches nodes and pods through the API like kube-scheduler, and binds by
 * setting `spec.nodeName` (the in-memory server has no binding subresource);
 * a Conflict means the pod changed, and the watch brings it back.
 */
import { Clock, Effect, type Scope, Stream } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { type WatchItem, watchResource } from "../kube/cache/Watch.js"
import { isoSeconds } from "../util/time.js"
import { place, unschedulableCondition, unschedulableMessage } from "./scheduling.js"

export const defaultSchedulerName = "default-scheduler"

export interface SchedulerOptions {
  readonly client: KubeClientShape
  /** Schedule the pods of one namespace; undefined: all. */
  readonly namespace?: string | undefined
}

type Event = { readonly on: "nodes"; readonly item: WatchItem } | { readonly on: "pods"; readonly item: WatchItem }

const nodeNameOf = (pod: KubeObject): string | undefined => {
  const n = (pod.spec as { nodeName?: unknown } | undefined)?.nodeName
  return typeof n === "string" && n !== "" ? n : undefined
}

const finished = (pod: KubeObject): boolean => {
  const phase = (pod.status as { phase?: string } | undefined)?.phase
  return phase === "Succeeded" || phase === "Failed"
}

/** Whether this scheduler is the one to place the pod. */
const toSchedule = (pod: KubeObject): boolean => {
  const name = (pod.spec as { schedulerName?: unknown } | undefined)?.schedulerName
  return nodeNameOf(pod) === undefined && !finished(pod) && pod.metadata.deletionTimestamp === undefined &&
    (name === undefined || name === "" || name === defaultSchedulerName)
}

/** Starts the scheduler in the current scope. */
export const start = (options: SchedulerOptions): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { client } = options
    const nodes = new Map<string, KubeObject>()
    /** Every pod seen, by uid (to count each node's pods and to retry the pending ones). */
    const pods = new Map<string, KubeObject>()
    let nodesSynced = false
    let podsSynced = false

    const log = (pod: KubeObject) =>
      Effect.annotateLogs({ cluster: client.cluster, pod: `${pod.metadata.namespace}/${pod.metadata.name}` })

    const podsOn = (nodeName: string): number => {
      let n = 0
      for (const p of pods.values()) if (nodeNameOf(p) === nodeName && !finished(p)) n++
      return n
    }

    const schedule = (pod: KubeObject) =>
      Effect.gen(function*() {
        const placement = place(pod, [...nodes.values()].sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? "")))
        if (placement._tag === "Unschedulable") {
          if (unschedulableMessage(pod) === placement.message) return
          const at = isoSeconds(yield* Clock.currentTimeMillis)
          yield* Effect.logInfo(`unschedulable: ${placement.message}`).pipe(log(pod))
          yield* client.patch("pods", pod.metadata.namespace, pod.metadata.name ?? "", {
            status: { phase: "Pending", conditions: [unschedulableCondition(placement.message, at)] }
          }, { subresource: "status" })
          return
        }
        let best = placement.nodes[0]
        for (const node of placement.nodes) if (podsOn(node.metadata.name ?? "") < podsOn(best.metadata.name ?? "")) best = node
        const nodeName = best.metadata.name ?? ""
        const bound = yield* client.replace("pods", pod.metadata.namespace, {
          ...pod,
          spec: { ...(pod.spec as Record<string, unknown> | undefined), nodeName }
        })
        pods.set(bound.metadata.uid ?? "", bound)
      }).pipe(
        Effect.catchTag("KubeError", (e) =>
          e.reason === "Conflict" || e.reason === "NotFound"
            ? Effect.void
            : Effect.logWarning(`scheduler: ${e.message}`).pipe(log(pod)))
      )

    const schedulePending = Effect.suspend(() =>
      nodesSynced && podsSynced
        ? Effect.forEach([...pods.values()].filter(toSchedule), schedule, { discard: true })
        : Effect.void
    )

    const handle = (event: Event): Effect.Effect<void> =>
      Effect.suspend(() => {
        const item = event.item
        if (event.on === "nodes") {
          switch (item._tag) {
            case "Synced":
              nodes.clear()
              for (const n of item.items) nodes.set(n.metadata.name ?? "", n)
              nodesSynced = true
              break
            case "Upsert":
              nodes.set(item.object.metadata.name ?? "", item.object)
              break
            case "Delete":
              nodes.delete(item.object.metadata.name ?? "")
              return Effect.void
          }
          // A new or changed node may take pods that were waiting.
          return schedulePending
        }
        switch (item._tag) {
          case "Synced":
            pods.clear()
            for (const p of item.items) pods.set(p.metadata.uid ?? "", p)
            podsSynced = true
            return schedulePending
          case "Upsert": {
            const pod = item.object
            pods.set(pod.metadata.uid ?? "", pod)
            return nodesSynced && podsSynced && toSchedule(pod) ? schedule(pod) : Effect.void
          }
          case "Delete":
            pods.delete(item.object.metadata.uid ?? "")
            return Effect.void
        }
      })

    const events = Stream.merge(
      watchResource(client, "nodes", undefined).pipe(Stream.map((item): Event => ({ on: "nodes", item }))),
      watchResource(client, "pods", options.namespace).pipe(Stream.map((item): Event => ({ on: "pods", item })))
    )
    yield* Effect.forkScoped(Stream.runForEach(events, handle))
  })
