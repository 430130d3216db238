/**
 * Deletes pods of this cluster's workflows that no longer exist, in every cluster whose cache has
 * been filled (`ClusterReadiness`: an unfilled cache would not show the workflow's pods anyway,
 * and the workflows cache must be filled, or every pod would look orphaned). Only pods this
 * controller can show it made (`PodOwnership.orphan`) are deleted: anyone may write a pod's labels.
 * A namespaced controller only sees its namespace's workflows: others' pods are not orphans.
 */
import { Context, Effect, Layer } from "effect"
import { ClusterPool } from "../kube/ClusterPool.js"
import { ClusterReadiness } from "./ClusterReadiness.js"
import { ControllerSettings, timingOf } from "./ControllerSettings.js"
import { ownerOfPod, workflowKey } from "./observe.js"
import { PodOwnership } from "./PodOwnership.js"
import { boundedBy } from "./RequestTimeout.js"
import { WorkflowCache } from "./WorkflowCache.js"

export class OrphanSweeper extends Context.Service<OrphanSweeper, {
  /** One sweep over every cluster; how many pods it deleted. */
  readonly sweep: Effect.Effect<number>
}>()("flotilla/controller/OrphanSweeper") {
  static readonly layer = Layer.effect(OrphanSweeper, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const { config, options } = yield* ControllerSettings
  const bounded = boundedBy(timingOf(options).requestTimeout)
  const pool = yield* ClusterPool
  const workflows = yield* WorkflowCache
  const readiness = yield* ClusterReadiness
  const ownership = yield* PodOwnership

  const sweep: Effect.Effect<number> = Effect.gen(function*() {
    yield* workflows.synced
    let deleted = 0
    for (const view of yield* pool.all) {
      if (!readiness.synced(view)) continue
      const pods = yield* view.pods.list()
      for (const pod of pods) {
        const owner = ownerOfPod(pod, config.cluster)
        if (!owner || pod.metadata.deletionTimestamp) continue
        if (config.namespace !== undefined && owner.namespace !== config.namespace) continue
        const wf = yield* workflows.get(owner.namespace, owner.name)
        if (!ownership.orphan(pod, view.name, wf)) continue
        const result = yield* bounded(
          view.client.delete("pods", pod.metadata.namespace, pod.metadata.name!, { uid: pod.metadata.uid! }),
          { cluster: view.name, verb: "delete", resource: "pods", namespace: pod.metadata.namespace, name: pod.metadata.name }
        ).pipe(Effect.result)
        if (result._tag === "Success") {
          deleted++
          yield* Effect.logInfo("deleted orphan pod").pipe(
            Effect.annotateLogs({ cluster: view.name, namespace: pod.metadata.namespace ?? "", pod: pod.metadata.name ?? "", workflow: workflowKey(owner) })
          )
        }
      }
    }
    return deleted
  })

  return OrphanSweeper.of({ sweep })
})
