/**
 * flotilla as a library: the layers and services to embed the controller (or
 * parts of it) in another Effect application. `flotilla/testing` has the
 * in-memory clusters for tests.
 */
export { Controller, type ControllerOptions } from "./controller/Controller.js"
export { parseControllerConfig, type ControllerConfig } from "./controller/ControllerConfig.js"
export { finalizerName } from "./controller/FinalizerLease.js"
export { ClusterPool, type ClusterState, type ClusterView, podSelector } from "./kube/ClusterPool.js"
export type { ClusterAuth, ClusterEndpoint, ConnectionSpec } from "./kube/Connection.js"
export { Informer } from "./kube/Informer.js"
export { KubeClient, type KubeClientShape } from "./kube/KubeClient.js"
export { KubeConnector } from "./kube/KubeConnector.js"
export { KubeError } from "./kube/KubeError.js"
export { LiveKubeConnector } from "./kube/LiveKubeConnector.js"
export { loadLocalConnection } from "./kube/LocalConnection.js"
export type { KubeObject, ResourceKind } from "./kube/Resources.js"
export { UserClients, UserCredentialsError } from "./kube/UserClients.js"
export { watchResource, type WatchItem, type WatchState } from "./kube/Watch.js"
export * as Kubeconfig from "./kubeconfig/index.js"
export * as LocalKubelet from "./kubelet/LocalKubelet.js"
export * as Embedded from "./embedded/EmbeddedRuntime.js"
export * as ArgoLogger from "./observability/ArgoLogger.js"
export { reconcile } from "./workflow/engine/index.js"
