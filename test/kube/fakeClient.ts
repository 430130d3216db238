/**
 * Shared by the Watch and Informer tests: a small scripted fake client and
 * helpers. Each test file scripts `list` and `watch` its own way; every other
 * verb dies as an unexpected call.
 */
import { Effect, Stream } from "effect"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"

/** A client of `cluster` that answers only the given verbs; any other call dies as unexpected. */
export const fakeClient = (verbs: Partial<KubeClientShape>, cluster = "main"): KubeClientShape => {
  const unexpected = (verb: string) => () => Effect.die(new Error(`fake client: unexpected call to ${verb}`))
  return {
    cluster,
    identity: "test",
    get: unexpected("get"),
    create: unexpected("create"),
    replace: unexpected("replace"),
    patch: unexpected("patch"),
    delete: unexpected("delete"),
    logs: unexpected("logs"),
    list: unexpected("list"),
    watch: () => Stream.die(new Error("fake client: unexpected call to watch")),
    ...verbs
  }
}

/** A client of cluster "east" that answers only `list` and `watch`. */
export const scriptedClient = (
  list: KubeClientShape["list"],
  watch: KubeClientShape["watch"]
): KubeClientShape => fakeClient({ list, watch }, "east")

export const pod = (name: string, resourceVersion: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "ns", resourceVersion },
  ...extra
})

/** Yields until `predicate` holds; dies after 500 tries. */
export const waitUntil = (label: string, predicate: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      if (predicate()) return
      yield* Effect.yieldNow
    }
    return yield* Effect.die(new Error(`condition never held: ${label}`))
  })
