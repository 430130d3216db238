/**
 * Turns a validated `ConnectionSpec` into a live `KubeClient`. The live layer
 * talks HTTP(S) on node:http(s) (kube/live/); `flotilla/testing` provides one
 * over in-memory clusters. The client is scoped: closing the scope releases its
 * connections and ends its watches.
 */
import { Context, Effect, Scope } from "effect"
import type { ConnectionSpec } from "./Connection.js"
import type { KubeClientShape } from "./KubeClient.js"
import type { KubeError } from "./KubeError.js"

export class KubeConnector extends Context.Service<KubeConnector, {
  readonly connect: (spec: ConnectionSpec) => Effect.Effect<KubeClientShape, KubeError, Scope.Scope>
}>()("flotilla/kube/KubeConnector") {}
