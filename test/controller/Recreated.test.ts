/**
 * A workflow deleted and made again under the same name (a new UID) between two of its rounds:
 * the Reconciler, reconciling the key only when the test asks (no workers), sees the new UID at
 * once and drops what was kept for the old one: the locks it held (by key: the new workflow
 * must not inherit them), and the expectations kept for the old UID.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { eventually, inMemory } from "./harness.js"
import { reconcilerOnly } from "./reconcilerOnly.js"

const mutexWorkflow = (name: string): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: "local" },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    synchronization: { mutexes: [{ name: "m" }] },
    templates: [{
      name: "main",
      metadata: { annotations: { "flotilla.dev/simulate-duration": "1h" } },
      container: { image: "busybox", command: ["true"] }
    }]
  }
})

const holding = (wf: KubeObject | undefined): ReadonlyArray<string> =>
  (((wf?.["status"] as { synchronization?: { mutex?: { holding?: ReadonlyArray<{ mutex: string }> } } } | undefined)
    ?.synchronization?.mutex?.holding) ?? []).map((h) => h.mutex)

describe("Reconciler: a workflow re-created under the same name", () => {
  it.live("drops the old one's locks and what was kept for its uid; the new one does not inherit the lock", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const first = mutexWorkflow("wf")
        const waiter = mutexWorkflow("waiter")
        yield* Embedded.provision(Embedded.placementOf([first, waiter]))
        const kube = yield* InMemoryKube
        const admin = kube.adminClient(Embedded.localClusterName)
        yield* Embedded.startKubelets(Embedded.placementOf([first, waiter]), { mode: "simulate" })
        const { expectations, reconcile, workflows } = yield* reconcilerOnly

        /** The workflow as the controller's cache has it once `predicate` holds, reconciling it until then. */
        const reconcileUntil = (name: string, predicate: (wf: KubeObject | undefined) => boolean) =>
          eventually(`${name}: condition`, Effect.gen(function*() {
            const cached = Option.getOrUndefined(yield* workflows.get("local", name))
            if (predicate(cached)) return cached ?? ({} as KubeObject)
            yield* reconcile(`local/${name}`)
            return undefined
          }))

        const old = yield* admin.create("workflows", "local", first)
        yield* reconcileUntil("wf", (wf) => holding(wf).includes("local/Mutex/m"))
        yield* admin.create("workflows", "local", waiter)
        yield* reconcileUntil("waiter", (wf) => wf?.["status"] !== undefined)
        yield* reconcile("local/waiter")
        assert.deepStrictEqual(holding(Option.getOrUndefined(yield* workflows.get("local", "waiter"))), [])
        // something kept for the old uid
        yield* expectations.waiting(old.metadata.uid!, "node", 0, "waiting for a cluster")
        assert.strictEqual((yield* expectations.waitingOf(old.metadata.uid!)).size, 1)

        // Deleted and made again before the key's next round: the round sees only the new uid.
        yield* admin.delete("workflows", "local", "wf")
        const again = yield* admin.create("workflows", "local", { ...first, metadata: { name: "wf", namespace: "local" } })
        assert.notStrictEqual(again.metadata.uid, old.metadata.uid)
        yield* eventually("the cache has the new uid", Effect.map(workflows.get("local", "wf"), (o) =>
          Option.isSome(o) && o.value.metadata.uid === again.metadata.uid ? true : undefined))
        yield* reconcile("local/wf")
        assert.strictEqual((yield* expectations.waitingOf(old.metadata.uid!)).size, 0)
        // the lock went back: the workflow waiting before the new one takes it, the new one waits
        yield* reconcileUntil("waiter", (wf) => holding(wf).includes("local/Mutex/m"))
        yield* reconcile("local/wf")
        assert.deepStrictEqual(holding(Option.getOrUndefined(yield* workflows.get("local", "wf"))), [])
      })), 30_000)
})
