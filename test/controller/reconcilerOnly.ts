/**
 * The controller's services over the embedded clusters (provisioned by the test), without its
 * workers, triggers or sweeps: a key is reconciled only when the test calls `reconcile`, so a
 * test decides what each round sees (a re-created workflow, a clock moved on).
 */
import { Context, Effect, Layer } from "effect"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import { ClusterReadiness } from "../../src/controller/ClusterReadiness.js"
import { partsLayer } from "../../src/controller/Controller.js"
import { Expectations } from "../../src/controller/Expectations.js"
import { Observation } from "../../src/controller/Observation.js"
import { PodCreator } from "../../src/controller/PodCreator.js"
import { PodOwnership } from "../../src/controller/PodOwnership.js"
import { Reconciler } from "../../src/controller/Reconciler.js"
import { StatusWriter } from "../../src/controller/StatusWriter.js"
import { WorkflowCache } from "../../src/controller/WorkflowCache.js"
import { WorkflowCleanup } from "../../src/controller/WorkflowCleanup.js"
import { WorkQueue } from "../../src/controller/WorkQueue.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { fastController } from "./harness.js"

/** `localClient`: the controller's client on its own cluster (default: the embedded controller identity's). */
const services = (localClient?: KubeClientShape) => Layer.unwrap(Effect.gen(function*() {
  const kube = yield* InMemoryKube
  const parts = partsLayer({
    ...fastController,
    localClient: localClient ?? kube.clientFor(Embedded.localClusterName, Embedded.tokens.controller),
    localSpec: Embedded.controllerSpec(Embedded.localClusterName),
    systemNamespace: Embedded.systemNamespace
  })
  return Reconciler.layer.pipe(
    Layer.provideMerge(WorkflowCleanup.layer),
    Layer.provideMerge(PodCreator.layer),
    Layer.provideMerge(StatusWriter.layer),
    Layer.provideMerge(Observation.layer),
    Layer.provideMerge(ClusterReadiness.layer),
    Layer.provideMerge(WorkflowCache.layer),
    Layer.provideMerge(PodOwnership.layer),
    Layer.provideMerge(parts)
  )
}))

/** Builds the services in the current scope once the workflow cache is filled and the clusters are tracked. */
export const reconcilerOnlyWith = (options: { readonly localClient?: KubeClientShape }) => Effect.gen(function*() {
  const ctx = yield* Layer.build(services(options.localClient))
  const workflows = Context.get(ctx, WorkflowCache)
  yield* Context.get(ctx, ClusterReadiness).trackAll
  yield* workflows.synced
  return {
    reconcile: Context.get(ctx, Reconciler).reconcile,
    workflows,
    expectations: Context.get(ctx, Expectations),
    queue: Context.get(ctx, WorkQueue)
  }
})

export const reconcilerOnly = reconcilerOnlyWith({})
