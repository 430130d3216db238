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
