/**
 * The whole live controller as one layer, configured as the shipped
 * Deployment is: the local cluster's connection (the in-cluster service
 * account, or `KUBECONFIG`/`kubeconfig`), Argo's system namespace
 * (`ARGO_NAMESPACE`, default `argo`), the pod name scheme (`POD_NAMES`), and
 * from there the configmap and `argo-kubeconfig` like `flotilla controller`.
 *
 * Embedding flotilla in another Effect program is providing this layer (or
 * `Controller.layer` with your own connection, or the parts of
 * `partsLayer`): the controller runs while the layer's scope is open, and
 * the `Controller` service in the context gives its caches, its queue and
 * `reconcileNow`. Leader election stays with the caller (`flotilla
 * controller` runs `LeaderElection.run` around the same layer): an embedder
 * running several replicas does the same.
 */
import { Effect, Layer } from "effect"
import { Controller, type ControllerOptions } from "../controller/Controller.js"
import type { ConnectionSpec } from "../kube/api/Connection.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeConnector } from "../kube/api/KubeConnector.js"
import { LiveKubeConnector, type RateLimit } from "../kube/live/LiveKubeConnector.js"
import { loadLocalConnection } from "../kube/live/LocalConnection.js"
import { argoNamespaceConfig, podNamesConfig } from "./EnvConfig.js"

export interface FlotillaLiveOptions extends Partial<Omit<ControllerOptions, "localClient" | "localSpec">> {
  /** A kubeconfig file for the local cluster; default `KUBECONFIG`, else the in-cluster service account. */
  readonly kubeconfig?: string | undefined
  /** Its context; default the current one. */
  readonly context?: string | undefined
  /**
   * Client-side rate limit of every connection the controller opens (`flotilla controller --qps
   * --burst`); default none. Used by `layer` only: `controllerLayer` takes the caller's KubeConnector.
   */
  readonly rateLimit?: RateLimit | undefined
}

/** The local cluster's connection: what the controller (and its leader election) talks to. */
export interface LocalConnection {
  readonly localSpec: ConnectionSpec
  readonly localClient: KubeClientShape
}

/** Connects to the local cluster (in the current scope) as `flotilla controller` does. */
export const connect = (options: Pick<FlotillaLiveOptions, "kubeconfig" | "context"> = {}) =>
  Effect.gen(function*() {
    const localSpec = yield* loadLocalConnection({ kubeconfig: options.kubeconfig, context: options.context })
    const localClient = yield* (yield* KubeConnector).connect(localSpec)
    return { localSpec, localClient } satisfies LocalConnection
  })

/**
 * The controller on an existing connection; the system namespace and pod name scheme come from
 * the environment (`ARGO_NAMESPACE`, `POD_NAMES`) unless `options` give them. Needs a KubeConnector.
 */
export const controllerLayer = (connection: LocalConnection, options: FlotillaLiveOptions = {}) => {
  const { kubeconfig: _kubeconfig, context: _context, rateLimit: _rateLimit, ...controller } = options
  return Layer.unwrap(Effect.gen(function*() {
    const systemNamespace = controller.systemNamespace ?? (yield* argoNamespaceConfig)
    const podNameVersion = controller.podNameVersion ?? (yield* podNamesConfig)
    return Controller.layer({ ...controller, ...connection, systemNamespace, podNameVersion })
  }))
}

/** The controller and everything it needs, from the environment and `options` (no other layer required). */
export const layer = (options: FlotillaLiveOptions = {}) =>
  Layer.unwrap(Effect.map(connect(options), (connection) => controllerLayer(connection, options))).pipe(
    Layer.provide(options.rateLimit ? LiveKubeConnector.layerWith({ rateLimit: options.rateLimit }) : LiveKubeConnector.layer)
  )
