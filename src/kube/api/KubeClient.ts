/**
 * One authenticated connection to one cluster. The controller holds many of
 * them (one per context of `argo-kubeconfig`, one per user kubeconfig secret),
 * so a client is a value built by a `KubeConnector`; the `KubeClient` tag is
 * for code that works against a single cluster (the local kubelet, tests).
 *
 * A client never switches identity: which credentials it carries is fixed when
 * it is built, which is what makes "create with the user's, watch with the
 * controller's" enforceable.
 */
import { Context, Effect, Stream } from "effect"
import type { KubeError } from "./KubeError.js"
import type {
  DeleteOptions,
  KubeObject,
  ListOptions,
  MergePatch,
  ObjectList,
  ResourceKind,
  WatchEvent,
  WatchOptions
} from "./Resources.js"

export interface KubeClientShape {
  /** The cluster name this client talks to (the context name in kubeconfig). */
  readonly cluster: string
  /** Who this client acts as, for logs and errors; never a secret. */
  readonly identity: string
  readonly get: (kind: ResourceKind, namespace: string | undefined, name: string) => Effect.Effect<KubeObject, KubeError>
  /** `namespace` undefined lists across all namespaces. */
  readonly list: (
    kind: ResourceKind,
    namespace: string | undefined,
    options?: ListOptions
  ) => Effect.Effect<ObjectList, KubeError>
  /**
   * Raw watch from a resourceVersion. Starts with `OPENED` once the server
   * accepted it; ends when the server closes it; fails with reason `Gone`
   * when the version was compacted. Use `kube/cache/Watch` for a resilient
   * list+watch stream.
   */
  readonly watch: (
    kind: ResourceKind,
    namespace: string | undefined,
    options: WatchOptions
  ) => Stream.Stream<WatchEvent, KubeError>
  readonly create: (kind: ResourceKind, namespace: string | undefined, object: KubeObject) => Effect.Effect<KubeObject, KubeError>
  /** Full update guarded by `metadata.resourceVersion` (Conflict when stale). */
  readonly replace: (kind: ResourceKind, namespace: string | undefined, object: KubeObject) => Effect.Effect<KubeObject, KubeError>
  /**
   * JSON merge patch. `subresource: "status"` writes the status subresource
   * (a real API server ignores `status` in a patch of the object itself for
   * pods; kubelets write status this way).
   */
  readonly patch: (
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    patch: MergePatch,
    options?: { readonly subresource?: "status" }
  ) => Effect.Effect<KubeObject, KubeError>
  readonly delete: (
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    options?: DeleteOptions
  ) => Effect.Effect<void, KubeError>
  readonly logs: (namespace: string, name: string, container?: string) => Effect.Effect<string, KubeError>
}

export class KubeClient extends Context.Service<KubeClient, KubeClientShape>()("flotilla/kube/KubeClient") {}
