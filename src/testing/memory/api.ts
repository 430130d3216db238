/**
 * The public vocabulary of the in-memory API server: verbs, RBAC rules,
 * identities, audit and change records, and the server's options. Types only
 * (plus `serverUrl`), so every part of the server and its users can name them
 * without importing the server itself.
 */
import type { Duration } from "effect"
import type { KubeErrorReason } from "../../kube/api/KubeError.js"
import type { ResourceKind } from "../../kube/api/Resources.js"

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete"

export interface PolicyRule {
  readonly verbs: ReadonlyArray<Verb | "*">
  /** `serviceaccounts/token`: the TokenRequest API (memory/tokens.ts). */
  readonly resources: ReadonlyArray<ResourceKind | "*" | "serviceaccounts/token">
  /** Absent: cluster-wide (also allows list/watch across all namespaces and cluster-scoped resources). */
  readonly namespaces?: ReadonlyArray<string>
}

export interface IdentitySpec {
  /** The user name the server reports, e.g. `system:serviceaccount:argo:argo`. */
  readonly name: string
  /** The bearer token that authenticates as this identity. Never appears in messages. */
  readonly token: string
  readonly rules: ReadonlyArray<PolicyRule>
}

/** One API call as the server saw it, allowed or not. */
export interface AuditEntry {
  /** Increasing per cluster. */
  readonly seq: number
  /** The authenticated user, `system:anonymous` when the token was unknown. */
  readonly identity: string
  readonly verb: Verb
  /** `serviceaccounts` only for TokenRequest calls (subresource `token`). */
  readonly resource: ResourceKind | "serviceaccounts"
  /** `log` for `logs` calls (verb get on pods/log). */
  readonly subresource?: string
  readonly namespace?: string
  /** For create: the name the object got (after generateName). */
  readonly name?: string
  /** Whether authentication and RBAC let the call through. */
  readonly allowed: boolean
  /** "Success", or the reason it failed with. */
  readonly outcome: "Success" | KubeErrorReason
}

/** One stored change (what watchers saw), with who caused it. */
export interface ChangeRecord {
  readonly resourceVersion: string
  readonly type: "ADDED" | "MODIFIED" | "DELETED"
  readonly resource: ResourceKind
  readonly namespace?: string
  readonly name: string
  readonly uid: string
  /** The identity whose call caused the change; `system:garbage-collector` for cascades, `harness` for test set-up. */
  readonly identity: string
}

export interface InMemoryKubeOptions {
  /** How often watches opened with `allowBookmarks` get a BOOKMARK. Default 60 seconds. */
  readonly bookmarkInterval?: Duration.Input
  /**
   * Watch history kept per cluster and resource kind before the oldest part is
   * compacted away (as etcd does). Watches from older versions fail with Gone.
   * Default 100 000 changes.
   */
  readonly maxHistoryPerResource?: number
  /** Audit-log and change-log entries kept per cluster. Default 100 000 each. */
  readonly maxLogEntries?: number
  /**
   * Owner-reference garbage collection: dependents of removed owners are
   * deleted, and objects created with only dangling owner references are
   * deleted like the real garbage collector would. Default true.
   */
  readonly garbageCollection?: boolean
}

/** The server URL of an in-memory cluster. */
export const serverUrl = (cluster: string): string => `memory://${cluster}`

export const serverPrefix = "memory://"
