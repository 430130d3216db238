/**
 * An in-memory, multi-cluster Kubernetes API server with real API semantics:
 * resourceVersions, optimistic concurrency, finalizers, owner-reference
 * garbage collection, RBAC with the real server's wording, label and field
 * selectors, watches with replay, bookmarks, timeouts and compaction (410
 * Gone), plus failure injection (unreachable / hung clusters, injected
 * errors) and an audit log of every call.
 *
 * It backs the embedded runtime and every in-memory controller test, and is
 * exported as `flotilla/testing` for users' own tests.
 *
 * All state lives in plain mutable structures inside the service closure and
 * is only touched synchronously (one `Effect.suspend` per call), so every call
 * is atomic with respect to every other call and to watch registration.
 *
 * The server's parts live in `memory/`, one concept each: `state.ts` (the
 * state and a call's context), `store.ts` (storage, resourceVersions, the
 * change log), `watch.ts` (watch fan-out, replay and Gone), `gc.ts` (updates,
 * deletion, finalizers, namespaces, garbage collection), `validation.ts`
 * (admission checks), `objects.ts` (the verbs), `selectors.ts`, `rbac.ts`,
 * `calls.ts` (authentication, RBAC, audit, injected failures around each
 * call), `faults.ts` (failure injection), `client.ts` (the KubeClient and
 * KubeConnector face), `json.ts`, `errors.ts` and `api.ts` (public types).
 * This module keeps the service, its harness operations and its layers.
 */
import { Clock, Context, Duration, Effect, Layer, Random, type Scope } from "effect"
import type { ConnectionSpec } from "../kube/api/Connection.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeConnector } from "../kube/api/KubeConnector.js"
import type { KubeError, KubeErrorReason } from "../kube/api/KubeError.js"
import { type KubeObject, type ResourceKind, resources } from "../kube/api/Resources.js"
import type { AuditEntry, ChangeRecord, IdentitySpec, InMemoryKubeOptions, PolicyRule, Verb } from "./memory/api.js"
import { toEffect } from "./memory/calls.js"
import { connect, makeClient } from "./memory/client.js"
import * as Faults from "./memory/faults.js"
import { cloneJson, deepEqual } from "./memory/json.js"
import { createObject } from "./memory/objects.js"
import {
  adminIdentity,
  allKinds,
  type ClusterState,
  type Ctx,
  harnessIdentity,
  type Identity,
  type Limits,
  lookup,
  makeClusterState,
  type Request
} from "./memory/state.js"

export type { AuditEntry, ChangeRecord, IdentitySpec, InMemoryKubeOptions, PolicyRule, Verb } from "./memory/api.js"
export { serverUrl } from "./memory/api.js"
export { applyMergePatch } from "./memory/json.js"

export interface InMemoryKubeShape {
  /** Creates the cluster (server `memory://<name>`) with namespaces `default` and `kube-system`. Idempotent. */
  readonly addCluster: (name: string) => Effect.Effect<void>
  readonly clusters: Effect.Effect<ReadonlyArray<string>>
  /** Creates the namespace if missing. */
  readonly ensureNamespace: (cluster: string, namespace: string) => Effect.Effect<void>
  /** Adds (or replaces) an identity. */
  readonly addIdentity: (cluster: string, identity: IdentitySpec) => Effect.Effect<void>
  /** Removes an identity: its token becomes Unauthorized. */
  readonly removeIdentity: (cluster: string, name: string) => Effect.Effect<void>
  /** Adds rules to an identity. */
  readonly grant: (cluster: string, name: string, rules: ReadonlyArray<PolicyRule>) => Effect.Effect<void>
  /** Removes the given rules (structurally equal) from an identity, or all its rules when omitted. */
  readonly revoke: (cluster: string, name: string, rules?: ReadonlyArray<PolicyRule>) => Effect.Effect<void>
  /** A client with every right, identity `admin`. Calls are audited. */
  readonly adminClient: (cluster: string) => KubeClientShape
  /** A client authenticating with `token` (checked on every call). */
  readonly clientFor: (cluster: string, token: string) => KubeClientShape
  /** Forgets all history up to the current resourceVersion; see the module docs on Gone. */
  readonly compact: (cluster: string) => Effect.Effect<void>
  /** Unreachable: every call fails with Unavailable and every open watch fails. */
  readonly setReachable: (cluster: string, reachable: boolean) => Effect.Effect<void>
  /** Hung: calls and watch opening do not complete until unhung. */
  readonly setHung: (cluster: string, hung: boolean) => Effect.Effect<void>
  /**
   * Lagging watches: while held, changes are applied (gets and lists see them)
   * but open watches receive none; releasing delivers them in order. Models
   * an informer that has not caught up with a write yet.
   */
  readonly holdWatchEvents: (cluster: string, held: boolean) => Effect.Effect<void>
  /**
   * The next `count` (default 1) authorized calls matching verb and resource fail with `reason`,
   * and `detail` as the server's message when given (say, a ResourceQuota's "exceeded quota").
   */
  readonly failNext: (
    cluster: string,
    verb: Verb | "*",
    resource: ResourceKind | "*",
    reason: KubeErrorReason,
    count?: number,
    detail?: string
  ) => Effect.Effect<void>
  /** Every call made against the cluster, oldest first. */
  readonly requests: (cluster: string) => Effect.Effect<ReadonlyArray<AuditEntry>>
  readonly clearRequests: (cluster: string) => Effect.Effect<void>
  /** Every stored change, oldest first (not affected by compaction). */
  readonly history: (cluster: string) => Effect.Effect<ReadonlyArray<ChangeRecord>>
  /** The cluster's current resourceVersion. */
  readonly resourceVersion: (cluster: string) => Effect.Effect<string>
  /** Current objects, bypassing RBAC and the audit log. `namespace` undefined = all. */
  readonly objects: (cluster: string, kind: ResourceKind, namespace?: string) => Effect.Effect<ReadonlyArray<KubeObject>>
  readonly setPodLog: (cluster: string, namespace: string, pod: string, container: string, text: string) => Effect.Effect<void>
  readonly appendPodLog: (cluster: string, namespace: string, pod: string, container: string, text: string) => Effect.Effect<void>
  /** Open watches on the cluster (to check that watchers do not leak). */
  readonly openWatches: (cluster: string) => Effect.Effect<number>
  /**
   * `KubeConnector.connect`: finds the cluster by `spec.endpoint.server`
   * (`memory://<name>`; unknown -> Unavailable) and authenticates with the
   * spec's Token (other credential kinds -> Unauthorized). The client reports
   * `spec.cluster` as its cluster. Closing the scope ends the client's
   * watches; later calls through it fail with Unavailable.
   */
  readonly connect: (spec: ConnectionSpec) => Effect.Effect<KubeClientShape, KubeError, Scope.Scope>
}

// ---------------------------------------------------------------------------
// The service

export const make = (options: InMemoryKubeOptions = {}): Effect.Effect<InMemoryKubeShape> =>
  Effect.sync(() => {
    const limits: Limits = {
      bookmarkInterval: Duration.fromInputUnsafe(options.bookmarkInterval ?? "60 seconds"),
      maxHistory: Math.max(1, options.maxHistoryPerResource ?? 100_000),
      maxLog: Math.max(1, options.maxLogEntries ?? 100_000),
      garbageCollection: options.garbageCollection ?? true
    }
    const clusters = new Map<string, ClusterState>()

    const withCluster = <A>(name: string, f: (c: ClusterState) => A): Effect.Effect<A> =>
      Effect.suspend(() => {
        const c = clusters.get(name)
        if (c === undefined) return Effect.die(new Error(`InMemoryKube: unknown cluster "${name}" (call addCluster first)`))
        return Effect.succeed(f(c))
      })

    const harnessCtx = (c: ClusterState, now: number, random: Random.Random, req: Request): Ctx => ({
      c,
      label: c.name,
      identity: harnessIdentity,
      now,
      random,
      req
    })

    const ensureNamespaceSync = (c: ClusterState, ns: string, now: number, random: Random.Random): void => {
      if (lookup(c, "namespaces", "", ns) !== undefined) return
      const req: Request = { verb: "create", kind: "namespaces", namespace: undefined, name: ns }
      createObject(harnessCtx(c, now, random, req), "namespaces", undefined, { metadata: { name: ns } })
    }

    const timed = <A>(f: (now: number, random: Random.Random) => Effect.Effect<A>): Effect.Effect<A> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const random = yield* Random.Random
        return yield* f(now, random)
      })

    const identityOf = (c: ClusterState, name: string): Identity => {
      const identity = c.identities.get(name)
      if (identity === undefined) throw new Error(`InMemoryKube: unknown identity "${name}" in cluster "${c.name}"`)
      return identity
    }

    const setLog = (cluster: string, ns: string, pod: string, container: string, text: string, append: boolean) =>
      withCluster(cluster, (c) => {
        const key = `${ns}/${pod}`
        let byContainer = c.logs.get(key)
        if (byContainer === undefined) {
          byContainer = new Map()
          c.logs.set(key, byContainer)
        }
        byContainer.set(container, append ? (byContainer.get(container) ?? "") + text : text)
      })

    const service: Omit<InMemoryKubeShape, "connect"> = {
      addCluster: (name) =>
        timed((now, random) =>
          Effect.sync(() => {
            if (clusters.has(name)) return
            const c = makeClusterState(name, limits)
            clusters.set(name, c)
            ensureNamespaceSync(c, "default", now, random)
            ensureNamespaceSync(c, "kube-system", now, random)
          })
        ),
      clusters: Effect.sync(() => [...clusters.keys()]),
      ensureNamespace: (cluster, namespace) =>
        timed((now, random) =>
          Effect.flatten(withCluster(cluster, (c) =>
            toEffect(() => ensureNamespaceSync(c, namespace, now, random)).pipe(Effect.orDie)
          ))
        ),
      addIdentity: (cluster, spec) =>
        withCluster(cluster, (c) => {
          const previous = c.identities.get(spec.name)
          if (previous !== undefined) c.tokens.delete(previous.token)
          const identity: Identity = { name: spec.name, token: spec.token, rules: [...spec.rules] }
          c.identities.set(spec.name, identity)
          c.tokens.set(spec.token, identity)
        }),
      removeIdentity: (cluster, name) =>
        withCluster(cluster, (c) => {
          const identity = c.identities.get(name)
          if (identity === undefined) return
          c.identities.delete(name)
          c.tokens.delete(identity.token)
        }),
      grant: (cluster, name, rules) =>
        Effect.flatten(withCluster(cluster, (c) =>
          Effect.sync(() => {
            identityOf(c, name).rules.push(...rules)
          })
        )),
      revoke: (cluster, name, rules) =>
        Effect.flatten(withCluster(cluster, (c) =>
          Effect.sync(() => {
            const identity = identityOf(c, name)
            identity.rules = rules === undefined ? [] : identity.rules.filter((r) => !rules.some((x) => deepEqual(cloneJson(r), cloneJson(x))))
          })
        )),
      adminClient: (cluster) => makeClient({ clusterName: cluster, label: cluster, auth: { _tag: "Admin" }, clusters }, adminIdentity),
      clientFor: (cluster, token) =>
        makeClient(
          { clusterName: cluster, label: cluster, auth: { _tag: "Token", token }, clusters },
          clusters.get(cluster)?.tokens.get(token)?.name ?? "unknown"
        ),
      compact: (cluster) => withCluster(cluster, Faults.compactCluster),
      setReachable: (cluster, reachable) => withCluster(cluster, (c) => Faults.setReachable(c, reachable)),
      holdWatchEvents: (cluster, held) => withCluster(cluster, (c) => Faults.holdWatchEvents(c, held)),
      setHung: (cluster, hung) => withCluster(cluster, (c) => Faults.setHung(c, hung)),
      failNext: (cluster, verb, resource, reason, count = 1, detail) =>
        withCluster(cluster, (c) => Faults.injectFailure(c, verb, resource, reason, count, detail)),
      requests: (cluster) => withCluster(cluster, (c) => c.requests.map((r) => ({ ...r }))),
      clearRequests: (cluster) =>
        withCluster(cluster, (c) => {
          c.requests = []
        }),
      history: (cluster) => withCluster(cluster, (c) => c.changes.map((r) => ({ ...r }))),
      resourceVersion: (cluster) => withCluster(cluster, (c) => String(c.rv)),
      objects: (cluster, kind, namespace) =>
        withCluster(cluster, (c) => {
          const byNs = c.kinds[kind].byNs
          const buckets = namespace !== undefined && resources[kind].namespaced
            ? [byNs.get(namespace)]
            : [...byNs.keys()].sort().map((ns) => byNs.get(ns))
          return buckets.flatMap((bucket) =>
            bucket === undefined ? [] : [...bucket.keys()].sort().map((name) => cloneJson(bucket.get(name)!))
          )
        }),
      setPodLog: (cluster, ns, pod, container, text) => setLog(cluster, ns, pod, container, text, false),
      appendPodLog: (cluster, ns, pod, container, text) => setLog(cluster, ns, pod, container, text, true),
      openWatches: (cluster) =>
        withCluster(cluster, (c) => allKinds.reduce((n, kind) => n + c.kinds[kind].watchers.size, 0))
    }

    return { ...service, connect: (spec: ConnectionSpec) => connect(clusters, spec) }
  })

/**
 * The in-memory API server. Its layers also provide `KubeConnector`, which
 * connects to `memory://<cluster>` servers with Token credentials.
 */
export class InMemoryKube extends Context.Service<InMemoryKube, InMemoryKubeShape>()("flotilla/testing/InMemoryKube") {
  static readonly layerWith = (options: InMemoryKubeOptions = {}): Layer.Layer<InMemoryKube | KubeConnector> => {
    const kube = Layer.effect(InMemoryKube, make(options))
    const connector = Layer.effect(
      KubeConnector,
      Effect.gen(function*() {
        const service = yield* InMemoryKube
        return KubeConnector.of({ connect: service.connect })
      })
    )
    return Layer.provideMerge(connector, kube)
  }

  static readonly layer: Layer.Layer<InMemoryKube | KubeConnector> = InMemoryKube.layerWith()
}
