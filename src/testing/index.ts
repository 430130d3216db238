/**
 * `flotilla/testing`: an in-memory, multi-cluster Kubernetes API server with
 * real API semantics, for the embedded runtime and for users' own tests.
 */
export {
  type AuditEntry,
  type ChangeRecord,
  type IdentitySpec,
  InMemoryKube,
  type InMemoryKubeOptions,
  type InMemoryKubeShape,
  applyMergePatch,
  make as makeInMemoryKube,
  type PolicyRule,
  serverUrl,
  type Verb
} from "./InMemoryKube.js"
export * as LabelSelector from "./LabelSelector.js"
/** The embedded runtime (in-memory clusters, kubelets, controller; `controllerLayer` to provide it). */
export * as Embedded from "../embedded/EmbeddedRuntime.js"
/** A kubelet that runs pods as processes (or simulates them), for in-memory clusters. */
export * as LocalKubelet from "../kubelet/LocalKubelet.js"
