/**
 * The Kubernetes object shapes flotilla reads and writes, kept structural
 * (plain JSON) because objects pass through unchanged: a pod spec a user
 * wrote must reach the API server with every field they set.
 */

export interface OwnerReference {
  readonly apiVersion: string
  readonly kind: string
  readonly name: string
  readonly uid: string
  readonly controller?: boolean
  readonly blockOwnerDeletion?: boolean
}

export interface ObjectMeta {
  readonly name?: string
  readonly generateName?: string
  readonly namespace?: string
  readonly uid?: string
  readonly resourceVersion?: string
  readonly generation?: number
  readonly creationTimestamp?: string
  readonly deletionTimestamp?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly annotations?: Readonly<Record<string, string>>
  readonly finalizers?: ReadonlyArray<string>
  readonly ownerReferences?: ReadonlyArray<OwnerReference>
}

export interface KubeObject {
  readonly apiVersion?: string
  readonly kind?: string
  readonly metadata: ObjectMeta
  readonly [key: string]: unknown
}

/** The resources flotilla touches, by their plural REST name. */
export type ResourceKind =
  | "pods"
  | "workflows"
  | "workflowtaskresults"
  | "workflowartifactgctasks"
  | "workflowtemplates"
  | "clusterworkflowtemplates"
  | "cronworkflows"
  | "secrets"
  | "configmaps"
  | "events"
  | "leases"
  | "namespaces"
  | "nodes"
  | "subjectaccessreviews"

export interface ResourceInfo {
  readonly group: string
  readonly version: string
  readonly kind: string
  readonly namespaced: boolean
}

export const resources: Record<ResourceKind, ResourceInfo> = {
  pods: { group: "", version: "v1", kind: "Pod", namespaced: true },
  secrets: { group: "", version: "v1", kind: "Secret", namespaced: true },
  configmaps: { group: "", version: "v1", kind: "ConfigMap", namespaced: true },
  events: { group: "", version: "v1", kind: "Event", namespaced: true },
  namespaces: { group: "", version: "v1", kind: "Namespace", namespaced: false },
  nodes: { group: "", version: "v1", kind: "Node", namespaced: false },
  leases: { group: "coordination.k8s.io", version: "v1", kind: "Lease", namespaced: true },
  workflows: { group: "argoproj.io", version: "v1alpha1", kind: "Workflow", namespaced: true },
  workflowtaskresults: { group: "argoproj.io", version: "v1alpha1", kind: "WorkflowTaskResult", namespaced: true },
  workflowartifactgctasks: { group: "argoproj.io", version: "v1alpha1", kind: "WorkflowArtifactGCTask", namespaced: true },
  workflowtemplates: { group: "argoproj.io", version: "v1alpha1", kind: "WorkflowTemplate", namespaced: true },
  clusterworkflowtemplates: { group: "argoproj.io", version: "v1alpha1", kind: "ClusterWorkflowTemplate", namespaced: false },
  cronworkflows: { group: "argoproj.io", version: "v1alpha1", kind: "CronWorkflow", namespaced: true },
  /** Only created (POST), never stored: the answer is in the returned object's status (`AccessReview.ts`). */
  subjectaccessreviews: { group: "authorization.k8s.io", version: "v1", kind: "SubjectAccessReview", namespaced: false }
}

export const apiVersionOf = (kind: ResourceKind): string => {
  const info = resources[kind]
  return info.group === "" ? info.version : `${info.group}/${info.version}`
}

export interface ListOptions {
  /** Kubernetes label selector syntax: `a=b,c!=d,e,!f,g in (x,y)`. */
  readonly labelSelector?: string
  /** Only `metadata.name=` and `metadata.namespace=` are supported everywhere. */
  readonly fieldSelector?: string
}

export interface WatchOptions extends ListOptions {
  readonly resourceVersion: string
  readonly allowBookmarks?: boolean
  readonly timeoutSeconds?: number
}

export interface ObjectList {
  readonly items: ReadonlyArray<KubeObject>
  readonly resourceVersion: string
}

export type WatchEvent =
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED"; readonly object: KubeObject }
  | { readonly type: "BOOKMARK"; readonly resourceVersion: string }
  /**
   * The server accepted the watch (HTTP 200): it is reachable and we may
   * watch. Emitted once, first; carries no data, so it does not prove the
   * resourceVersion is still available (a `Gone` may follow).
   */
  | { readonly type: "OPENED" }

export interface DeleteOptions {
  readonly propagationPolicy?: "Foreground" | "Background" | "Orphan"
  readonly gracePeriodSeconds?: number
  /** Delete only if the object still has this uid (guards against deleting a twin made later). */
  readonly uid?: string
}

/** A JSON merge patch (RFC 7386), the one patch flavour flotilla uses. */
export type MergePatch = Readonly<Record<string, unknown>>

export const namespacedName = (obj: KubeObject): string =>
  `${obj.metadata.namespace ?? ""}/${obj.metadata.name ?? ""}`
