/**
 * flotilla as a library: the layers and services to embed the controller (or
 * parts of it) in another Effect application. Production code only: the
 * in-memory clusters, the embedded runtime and the local kubelet (which runs
 * processes) are in `flotilla/testing`.
 *
 * - `FlotillaLive.layer()`: the whole live controller, configured from the
 *   environment like the shipped Deployment;
 * - `Controller.layer(options)` with your own connection, or
 *   `Controller.layerFromParts` over `partsLayer(options)` / your own parts
 *   (ClusterPool, UserClients, WorkQueue, Expectations, Supervisor,
 *   ControllerSettings, KubeClient, KubeConnector).
 */
export * as FlotillaLive from "./runtime/FlotillaLive.js"
export { Controller, type ControllerOptions, ControllerSettings, partsLayer } from "./controller/Controller.js"
export { parseControllerConfig, type ControllerConfig } from "./controller/ControllerConfig.js"
export { Expectations } from "./controller/Expectations.js"
export { finalizerName } from "./controller/FinalizerLease.js"
export * as LeaderElection from "./controller/LeaderElection.js"
export { WorkQueue } from "./controller/WorkQueue.js"
export { ClusterPool, type ClusterState, type ClusterView, podSelector } from "./kube/ClusterPool.js"
export type { ClusterAuth, ClusterEndpoint, ConnectionSpec } from "./kube/api/Connection.js"
export { Informer } from "./kube/cache/Informer.js"
export { KubeClient, type KubeClientShape } from "./kube/api/KubeClient.js"
export { KubeConnector } from "./kube/api/KubeConnector.js"
export { KubeError } from "./kube/api/KubeError.js"
export { LiveKubeConnector } from "./kube/live/LiveKubeConnector.js"
export { loadLocalConnection } from "./kube/live/LocalConnection.js"
export type { KubeObject, ResourceKind } from "./kube/api/Resources.js"
export { UserClients, UserCredentialsError } from "./kube/UserClients.js"
export { watchResource, type WatchItem, type WatchState } from "./kube/cache/Watch.js"
export * as Kubeconfig from "./kubeconfig/index.js"
export * as ArgoLogger from "./observability/ArgoLogger.js"
export { Supervisor } from "./runtime/Supervisor.js"
export * as EnvConfig from "./runtime/EnvConfig.js"
export { reconcile } from "./workflow/engine/index.js"
