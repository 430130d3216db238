/**
 * The KubeClient face of the server: a client's verbs as audited calls
 * (`calls.ts`) on the object verbs (`objects.ts`), pod logs, the watch stream
 * (bookmarks, server-side timeouts, a broken watch failing the stream), and
 * `connect`, the KubeConnector side: `memory://<cluster>` servers with Token
 * credentials, whose watches end when the connection's scope closes.
 */
import { Array as Arr, Duration, Effect, Queue, Redacted, type Scope, Stream } from "effect"
import type { ConnectionSpec } from "../../kube/api/Connection.js"
import type { KubeClientShape } from "../../kube/api/KubeClient.js"
import { KubeError, type KubeErrorReason } from "../../kube/api/KubeError.js"
import { type KubeObject, type ResourceKind, resources, type WatchEvent, type WatchOptions } from "../../kube/api/Resources.js"
import { isRecord } from "../../util/records.js"
import { serverPrefix } from "./api.js"
import { answerAccessReview } from "./accessReview.js"
import { call } from "./calls.js"
import { fail } from "./errors.js"
import { cloneJson } from "./json.js"
import { createObject, deleteObject, getExisting, listObjects, patchObject, replaceObject } from "./objects.js"
import { type ClientRef, type ClusterState, isChange, type Item, type Request, type Session, type Watcher } from "./state.js"
import type { TokenRequests } from "../../kube/api/TokenRequest.js"
import { requestToken } from "./tokens.js"
import { requestNamespace } from "./validation.js"
import { offer, openWatch, toWatchEvent } from "./watch.js"

export const watch = (
  client: ClientRef,
  kind: ResourceKind,
  namespace: string | undefined,
  options: WatchOptions
): Stream.Stream<WatchEvent, KubeError> =>
  Stream.suspend(() => {
    let watcher: Watcher | undefined
    const req: Request = { verb: "watch", kind, namespace: resources[kind].namespaced ? namespace : undefined, name: undefined }
    return Stream.callback<Item, KubeError>((queue) =>
      Effect.gen(function*() {
        const [c, opened] = yield* call(
          client,
          req,
          (ctx) => [ctx.c, openWatch(ctx, kind, namespace, options, queue)] as const
        )
        watcher = opened
        const end = () => {
          c.kinds[kind].watchers.delete(opened)
          Queue.endUnsafe(queue)
        }
        client.session?.watches.add(end)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            c.kinds[kind].watchers.delete(opened)
            client.session?.watches.delete(end)
          })
        )
        if (options.allowBookmarks === true) {
          yield* Effect.forkScoped(
            Effect.forever(
              Effect.sleep(c.limits.bookmarkInterval).pipe(
                Effect.andThen(Effect.sync(() => offer(opened, { type: "BOOKMARK", resourceVersion: String(c.rv) })))
              )
            )
          )
        }
        if (options.timeoutSeconds !== undefined && options.timeoutSeconds > 0) {
          yield* Effect.forkScoped(
            Effect.sleep(Duration.seconds(options.timeoutSeconds)).pipe(
              Effect.andThen(Effect.sync(() => {
                c.kinds[kind].watchers.delete(opened)
                Queue.endUnsafe(queue)
              }))
            )
          )
        }
      })
    ).pipe(
      Stream.mapArrayEffect((items) =>
        Effect.suspend(() => {
          if (watcher?.failure !== undefined) return Effect.fail(watcher.failure)
          if (watcher !== undefined) {
            for (const item of items) if (isChange(item)) watcher.delivered++
          }
          return Effect.succeed(Arr.map(items, toWatchEvent))
        })
      )
    )
  })

/** A client's verbs, and the TokenRequest API (tokens.ts) a kubelet calls. */
export const makeClient = (client: ClientRef, identity: string): KubeClientShape & TokenRequests => {
  const nsOf = (kind: ResourceKind, namespace: string | undefined) =>
    resources[kind].namespaced ? namespace : undefined
  /** A create or update: the object names itself and, unless the path does, its namespace. */
  const bodyRequest = (
    verb: "create" | "update",
    kind: ResourceKind,
    namespace: string | undefined,
    object: KubeObject
  ): Request => ({
    verb,
    kind,
    namespace: nsOf(kind, namespace ?? object.metadata?.namespace),
    name: object.metadata?.name || undefined
  })
  return {
    cluster: client.label,
    identity,
    get: (kind, namespace, name) =>
      call(client, { verb: "get", kind, namespace: nsOf(kind, namespace), name }, (ctx) =>
        cloneJson(getExisting(ctx, kind, requestNamespace(ctx, kind, namespace), name))),
    list: (kind, namespace, options) =>
      call(
        client,
        { verb: "list", kind, namespace: nsOf(kind, namespace), name: undefined },
        (ctx) => listObjects(ctx, kind, namespace, options)
      ),
    watch: (kind, namespace, options) => watch(client, kind, namespace, options),
    create: (kind, namespace, object) =>
      kind === "subjectaccessreviews"
        // answered from the rules of the identity it names, never stored
        ? call(client, { verb: "create", kind, namespace: undefined, name: undefined }, (ctx) => cloneJson(answerAccessReview(ctx, object)))
        : call(
          client,
          bodyRequest("create", kind, namespace, object),
          (ctx) => cloneJson(createObject(ctx, kind, namespace, object)),
          (created) => created.metadata.name
        ),
    replace: (kind, namespace, object) =>
      call(
        client,
        bodyRequest("update", kind, namespace, object),
        (ctx) => cloneJson(replaceObject(ctx, kind, namespace, object))
      ),
    patch: (kind, namespace, name, patch) =>
      call(
        client,
        { verb: "patch", kind, namespace: nsOf(kind, namespace), name },
        (ctx) => cloneJson(patchObject(ctx, kind, namespace, name, patch))
      ),
    requestToken: (namespace, serviceAccount, spec) => requestToken(client, namespace, serviceAccount, spec),
    delete: (kind, namespace, name, options) =>
      call(client, { verb: "delete", kind, namespace: nsOf(kind, namespace), name }, (ctx) => {
        deleteObject(ctx, kind, namespace, name, options)
      }),
    logs: (namespace, name, container) =>
      call(client, { verb: "get", kind: "pods", subresource: "log", namespace, name }, (ctx) => {
        const pod = getExisting(ctx, "pods", namespace, name)
        const spec = isRecord(pod.spec) ? pod.spec : {}
        const names = [
          ...(Array.isArray(spec.containers) ? spec.containers : []),
          ...(Array.isArray(spec.initContainers) ? spec.initContainers : [])
        ].flatMap((c) => (isRecord(c) && typeof c.name === "string" ? [c.name] : []))
        const logs = ctx.c.logs.get(`${namespace}/${name}`)
        let chosen = container
        if (chosen === undefined) {
          const mains = Array.isArray(spec.containers) ? spec.containers : []
          const candidates = names.length > 0 ? mains.map((c) => (c as { name: string }).name) : [...(logs?.keys() ?? [])]
          if (candidates.length > 1) {
            throw fail(ctx, "Invalid", `a container name must be specified for pod ${name}, choose one of: [${candidates.join(" ")}]`)
          }
          chosen = candidates[0]
        } else if (names.length > 0 && !names.includes(chosen)) {
          throw fail(ctx, "Invalid", `container ${chosen} is not valid for pod ${name}`)
        }
        return chosen === undefined ? "" : logs?.get(chosen) ?? ""
      })
  }
}

export const connect = (clusters: ReadonlyMap<string, ClusterState>, spec: ConnectionSpec): Effect.Effect<KubeClientShape, KubeError, Scope.Scope> =>
  Effect.suspend(() => {
    const server = spec.endpoint.server
    const connectError = (reason: KubeErrorReason, detail: string) =>
      new KubeError({ reason, cluster: spec.cluster, verb: "connect", resource: "cluster", detail })
    const name = server.startsWith(serverPrefix) ? server.slice(serverPrefix.length).replace(/\/+$/, "") : undefined
    const c = name === undefined ? undefined : clusters.get(name)
    if (name === undefined || c === undefined) {
      return Effect.fail(connectError("Unavailable", `no in-memory cluster serves ${server}`))
    }
    if (spec.auth._tag !== "Token") {
      return Effect.fail(
        connectError("Unauthorized", `in-memory clusters only accept bearer tokens, user ${spec.user} uses ${spec.auth._tag}`)
      )
    }
    const token = Redacted.value(spec.auth.token)
    const session: Session = { closed: false, watches: new Set() }
    return Effect.acquireRelease(
      Effect.sync(() =>
        makeClient(
          { clusterName: name, label: spec.cluster, auth: { _tag: "Token", token }, session, clusters },
          c.tokens.get(token)?.name ?? spec.user
        )
      ),
      () =>
        Effect.sync(() => {
          session.closed = true
          for (const end of [...session.watches]) end()
          session.watches.clear()
        })
    )
  })
