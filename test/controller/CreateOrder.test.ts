/**
 * In a round bounded by `maxCreatesPerRound`, creates that never failed go before those tried
 * again (PodCreator's `createAll`, review L1): a cluster that refuses every create must not spend
 * each round's budget ahead of nodes bound elsewhere. PodCreator over fakes: the pods' clusters
 * come from a fake pool and user clients, and every create is noted in the order it is tried.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Expectations } from "../../src/controller/Expectations.js"
import { type CreatePodAction, PodCreator } from "../../src/controller/PodCreator.js"
import { PodOwnership } from "../../src/controller/PodOwnership.js"
import { WorkQueue } from "../../src/controller/WorkQueue.js"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import { KubeError } from "../../src/kube/api/KubeError.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { ClusterPool, type ClusterView } from "../../src/kube/ClusterPool.js"
import { UserClients } from "../../src/kube/UserClients.js"
import { fakeClient, settingsLayer } from "./services.js"

const wf: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "wf", namespace: "local", uid: "wf-uid" },
  spec: { serviceAccountName: "workflow" }
}

/** A pod of node `nodeId` in `cluster` (namespace "remote": made with the user's client). */
const createPod = (nodeId: string, cluster: string): CreatePodAction => ({
  _tag: "CreatePod",
  nodeId,
  cluster,
  namespace: "remote",
  pod: { apiVersion: "v1", kind: "Pod", metadata: { name: nodeId, namespace: "remote" } }
})

/**
 * PodCreator with a budget of `maxCreatesPerRound`, over clusters "hung" (refuses every create,
 * Unavailable) and "healthy"; `tried` gets each create's node id as it is tried.
 */
const creatorLayer = (maxCreatesPerRound: number, tried: Array<string>) => {
  const clientOf = (cluster: string) =>
    fakeClient({
      create: (_kind, _namespace, pod) =>
        Effect.suspend(() => {
          tried.push(pod.metadata.name!)
          return cluster === "hung"
            ? Effect.fail(new KubeError({ reason: "Unavailable", cluster, verb: "create", resource: "pods", detail: "connection refused" }))
            : Effect.succeed({ ...pod, metadata: { ...pod.metadata, uid: `uid-${pod.metadata.name}` } })
        })
    }, cluster)
  const viewOf = (cluster: string) => ({ name: cluster, local: false, spec: { cluster } as ConnectionSpec }) as ClusterView
  const unexpected = (what: string) => Effect.die(new Error(`unexpected call to ${what}`))
  const fakes = Layer.mergeAll(
    Layer.succeed(ClusterPool, {
      get: (cluster: string) => Effect.succeed(viewOf(cluster)),
      states: Effect.succeed(new Map())
    } as unknown as ClusterPool["Service"]),
    Layer.succeed(UserClients, UserClients.of({
      acquire: (request) => Effect.succeed(clientOf(request.cluster)),
      clientFor: () => unexpected("UserClients.clientFor"),
      invalidate: () => unexpected("UserClients.invalidate")
    })),
    // no proof key: pods go out as given
    Layer.succeed(PodOwnership, { prove: (pod: KubeObject) => pod } as unknown as PodOwnership["Service"]),
    Expectations.layer(),
    WorkQueue.layer(),
    settingsLayer(fakeClient({}), { timing: { maxCreatesPerRound } })
  )
  return PodCreator.layer.pipe(Layer.provideMerge(fakes))
}

describe("PodCreator: the order of a round's creates", () => {
  it.effect("creates that never failed go first: with 2 creates a round and a hung cluster, the new pods are made in their first round", () => {
    const tried: Array<string> = []
    return Effect.gen(function*() {
      const creator = yield* PodCreator
      const expectations = yield* Expectations
      const noRecord = () => undefined

      // round 1: both pods of the hung cluster fail, and wait to be tried again
      const retry = yield* creator.createAll("local/wf", wf, [createPod("hung-1", "hung"), createPod("hung-2", "hung")], noRecord, 0)
      assert.isDefined(retry, "the failed creates are tried again")
      assert.deepStrictEqual(tried, ["hung-1", "hung-2"])
      assert.deepStrictEqual([...(yield* expectations.waitingOf("wf-uid")).keys()].sort(), ["hung-1", "hung-2"])

      // round 2: the engine asks for them again (first, as it orders its nodes) and for two new ones
      tried.length = 0
      yield* creator.createAll(
        "local/wf",
        wf,
        [createPod("hung-1", "hung"), createPod("hung-2", "hung"), createPod("new-1", "healthy"), createPod("new-2", "healthy")],
        noRecord,
        1000
      )
      assert.deepStrictEqual(tried, ["new-1", "new-2"], "the budget went to the new pods")
      const waiting = yield* expectations.waitingOf("wf-uid")
      assert.deepStrictEqual([...waiting.keys()].sort(), ["hung-1", "hung-2"], "the hung ones wait for the next round")

      // round 3: only the hung ones are left, and they are tried again
      tried.length = 0
      yield* creator.createAll("local/wf", wf, [createPod("hung-1", "hung"), createPod("hung-2", "hung")], noRecord, 2000)
      assert.deepStrictEqual(tried, ["hung-1", "hung-2"])
    }).pipe(Effect.provide(creatorLayer(2, tried)))
  })
})
