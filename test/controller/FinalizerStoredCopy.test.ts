/**
 * The workflow finalizer is taken from the informer's copy (a GET less per remote workflow), but
 * "it is already on" is judged on the stored workflow (WorkflowCleanup's `updateFinalizers`): a
 * cached copy may still show a finalizer someone has since removed. Here the workflow watch is
 * held back so the cache keeps showing the finalizer after it was removed from the stored
 * workflow; the round must put it back on before it creates the remote pod, or the pod could
 * outlive its workflow.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Option, Stream } from "effect"
import * as FinalizerLease from "../../src/controller/FinalizerLease.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { inMemory, podCreates, workflow } from "./harness.js"
import { reconcilerOnlyWith } from "./reconcilerOnly.js"

const finalizersOf = (wf: { readonly metadata: { readonly finalizers?: ReadonlyArray<string> } } | undefined) => wf?.metadata.finalizers ?? []

describe("WorkflowCleanup: the finalizer is judged on the stored workflow", () => {
  it.effect("a cached copy showing the finalizer someone removed: the round puts it back on before creating the remote pod", () =>
    inMemory(() =>
      Effect.gen(function*() {
        // one pod in another cluster: the workflow needs the finalizer
        const wf = workflow({ name: "remote", cluster: "cluster-1", namespace: "remote" })
        const placement = Embedded.placementOf([wf])
        yield* Embedded.provision(placement)
        const kube = yield* InMemoryKube
        const admin = kube.adminClient(Embedded.localClusterName)
        const base = kube.clientFor(Embedded.localClusterName, Embedded.tokens.controller)

        // The controller's client, with the workflow watch's events held back while `held` is set,
        // and each write putting the finalizer on noting how many pods cluster-1 had been asked to create by then.
        let held: Deferred.Deferred<void> | undefined
        const podCreatesAtFinalizerWrite: Array<number> = []
        const localClient: KubeClientShape = {
          ...base,
          watch: (kind, namespace, options) =>
            kind === "workflows"
              ? base.watch(kind, namespace, options).pipe(
                Stream.tap(() => held === undefined ? Effect.void : Deferred.await(held))
              )
              : base.watch(kind, namespace, options),
          replace: (kind, namespace, object) =>
            Effect.gen(function*() {
              const adds = kind === "workflows" && finalizersOf(object).includes(FinalizerLease.finalizerName) &&
                !finalizersOf(yield* admin.get(kind, namespace!, object.metadata.name!)).includes(FinalizerLease.finalizerName)
              if (adds) podCreatesAtFinalizerWrite.push((yield* podCreates(kube, "cluster-1")).length)
              return yield* base.replace(kind, namespace, object)
            })
        }

        // Submitted with the finalizer on (as a controller before this one left it) and cached so.
        yield* admin.create("workflows", "local", {
          ...wf,
          metadata: { ...wf.metadata, finalizers: [FinalizerLease.finalizerName] }
        })
        const { reconcile, workflows } = yield* reconcilerOnlyWith({ localClient })
        assert.deepStrictEqual(finalizersOf(Option.getOrUndefined(yield* workflows.get("local", "remote"))), [FinalizerLease.finalizerName])

        // Someone removes it; the cache does not hear of it yet.
        held = yield* Deferred.make<void>()
        const stored = yield* admin.get("workflows", "local", "remote")
        yield* admin.replace("workflows", "local", { ...stored, metadata: { ...stored.metadata, finalizers: [] } })
        const cached = Option.getOrUndefined(yield* workflows.get("local", "remote"))
        assert.deepStrictEqual(finalizersOf(cached), [FinalizerLease.finalizerName], "the cache still shows it")

        yield* reconcile("local/remote")
        assert.lengthOf(yield* podCreates(kube, "cluster-1"), 1, "the round created the remote pod")
        assert.deepStrictEqual(
          finalizersOf(yield* admin.get("workflows", "local", "remote")),
          [FinalizerLease.finalizerName],
          "the stored workflow has the finalizer again"
        )
        assert.deepStrictEqual(podCreatesAtFinalizerWrite, [0], "put back on before the pod was created")
        yield* Deferred.succeed(held, undefined)
      })))
})
