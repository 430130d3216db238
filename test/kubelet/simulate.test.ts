import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { TestClock } from "effect/testing"
import * as LocalKubelet from "../../src/kubelet/LocalKubelet.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { awaitFinished, awaitRunning, cluster, mainTerminated, ns, phaseOf, podFor, setup, taskResult } from "./helpers.js"

const start = (client: Parameters<typeof LocalKubelet.start>[0]["client"]) =>
  LocalKubelet.start({ client, nodeName: "sim", namespace: ns, mode: "simulate" })

describe("LocalKubelet (simulate mode)", () => {
  it.effect("takes the duration from the TestClock and reports result and parameters", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const kubelet = yield* start(client)
      assert.isUndefined(kubelet.isolation)
      yield* client.create(
        "pods",
        ns,
        podFor("sim", { container: { image: "no/such-image", command: ["definitely-not-run"] } }, {
          annotations: {
            "flotilla.dev/simulate-duration": "2s",
            "flotilla.dev/simulate-result": "simulated out\n",
            "flotilla.dev/simulate-parameters": JSON.stringify({ a: "1", b: { x: true } })
          }
        })
      )
      yield* awaitRunning(client, "sim")
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual(phaseOf(yield* client.get("pods", ns, "sim")), "Running")
      yield* TestClock.adjust("1 millis")
      const pod = yield* awaitFinished(client, "sim")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      const term = mainTerminated(pod)!
      assert.strictEqual(term.exitCode, 0)
      assert.strictEqual(term.startedAt, "1970-01-01T00:00:00Z")
      assert.strictEqual(term.finishedAt, "1970-01-01T00:00:02Z")
      assert.deepStrictEqual(yield* taskResult(client, "sim"), {
        parameters: [{ name: "a", value: "1" }, { name: "b", value: "{\"x\":true}" }],
        result: "simulated out",
        exitCode: "0"
      })
      assert.deepStrictEqual(yield* kubelet.logs(ns, "sim"), Option.some("simulated out\n"))
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("fails with the given exit code, immediately when no duration is set", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* start(client)
      yield* client.create(
        "pods",
        ns,
        podFor("simfail", { container: { image: "busybox", command: ["true"] } }, {
          annotations: { "flotilla.dev/simulate-phase": "Failed", "flotilla.dev/simulate-exit-code": "5" }
        })
      )
      const pod = yield* awaitFinished(client, "simfail")
      assert.strictEqual(phaseOf(pod), "Failed")
      assert.strictEqual(mainTerminated(pod)!.exitCode, 5)
      assert.strictEqual((pod.status as { message?: string }).message, "Error (exit code 5)")
      assert.strictEqual((yield* taskResult(client, "simfail")).exitCode, "5")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("an API server outage while a pod runs delays its report and never loses it", () =>
    Effect.gen(function*() {
      const { client, kube } = yield* setup
      yield* start(client)
      yield* client.create(
        "pods",
        ns,
        podFor("outage", { container: { image: "busybox", command: ["true"] } }, {
          annotations: { "flotilla.dev/simulate-duration": "2s", "flotilla.dev/simulate-result": "done\n" }
        })
      )
      yield* awaitRunning(client, "outage")
      yield* kube.setReachable(cluster, false)
      // the pod ends 2s in; the API server stays away for 3 minutes
      yield* TestClock.adjust("3 minutes")
      yield* kube.setReachable(cluster, true)
      yield* TestClock.adjust("10 seconds")
      const pod = yield* awaitFinished(client, "outage")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      assert.strictEqual(mainTerminated(pod)!.finishedAt, "1970-01-01T00:00:02Z")
      assert.strictEqual((yield* taskResult(client, "outage")).result, "done")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("leaves finished pods and pods of other nodes alone", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* client.create("pods", ns, podFor("other-node", { container: { image: "busybox", command: ["true"] } }, { nodeName: "elsewhere" }))
      const done = yield* client.create("pods", ns, podFor("already-done", { container: { image: "busybox", command: ["true"] } }, { nodeName: "sim" }))
      yield* client.patch("pods", ns, done.metadata.name!, { status: { phase: "Succeeded" } })
      yield* start(client)
      yield* client.create("pods", ns, podFor("mine", { container: { image: "busybox", command: ["true"] } }))
      // Events are handled in order, so once "mine" has finished the others were seen too.
      yield* awaitFinished(client, "mine")
      const other = yield* client.get("pods", ns, "other-node")
      assert.isUndefined(other.status)
      const already = yield* client.get("pods", ns, "already-done")
      assert.deepStrictEqual(already.status, { phase: "Succeeded" })
      const results = yield* client.list("workflowtaskresults", ns)
      assert.deepStrictEqual(results.items.map((r) => r.metadata.name), ["wf-mine"])
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("copies Workflow owner references onto the task result", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const wf = yield* client.create("workflows", ns, {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "Workflow",
        metadata: { name: "wf", namespace: ns },
        spec: {}
      })
      const owner = { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: "wf", uid: wf.metadata.uid!, controller: true }
      const base = podFor("owned", { container: { image: "busybox", command: ["true"] } })
      yield* client.create("pods", ns, { ...base, metadata: { ...base.metadata, ownerReferences: [owner] } })
      yield* start(client)
      yield* awaitFinished(client, "owned")
      const tr = yield* client.get("workflowtaskresults", ns, "wf-owned")
      assert.deepStrictEqual(tr.metadata.ownerReferences, [owner])
    }).pipe(Effect.provide(InMemoryKube.layer)))
})

describe("parseGoDuration", () => {
  it("parses Go durations and plain seconds", () => {
    assert.strictEqual(LocalKubelet.parseGoDuration("2s"), 2000)
    assert.strictEqual(LocalKubelet.parseGoDuration("1m30s"), 90_000)
    assert.strictEqual(LocalKubelet.parseGoDuration("500ms"), 500)
    assert.strictEqual(LocalKubelet.parseGoDuration("1.5"), 1500)
    assert.isUndefined(LocalKubelet.parseGoDuration("soon"))
    assert.isUndefined(LocalKubelet.parseGoDuration("2s later"))
  })
})
