/**
 * The informer of the workflows this controller manages (its configmap's namespace, or all), with
 * the by-name index task results are mapped back through. Every part of the controller reads
 * workflows from this one cache, never from the API server: one watch, one view of what exists.
 */
import { Context, Effect, Layer } from "effect"
import { Informer as Informers, type Informer } from "../kube/cache/Informer.js"
import { KubeClient } from "../kube/api/KubeClient.js"
import { Supervisor } from "../runtime/Supervisor.js"
import { byName, workflowsByName } from "./CacheIndexes.js"
import { ControllerSettings } from "./ControllerSettings.js"

export class WorkflowCache extends Context.Service<WorkflowCache, Informer>()("flotilla/controller/WorkflowCache") {
  /** The informer's watch lives as long as the layer (its fibre is a supervised component). */
  static readonly layer = Layer.effect(
    WorkflowCache,
    Effect.gen(function*() {
      const { config, options } = yield* ControllerSettings
      const local = yield* KubeClient
      const supervisor = yield* Supervisor
      return yield* Informers.make(local, "workflows", config.namespace, {
        ...options.watch,
        supervisor,
        indexers: { [byName]: workflowsByName }
      })
    })
  )
}
