/**
 * `spec.activeDeadlineSeconds` as the kubelet enforces it: counted from the
 * pod's `status.startTime`, the pod's containers killed once it passes, the
 * pod Failed with reason DeadlineExceeded and the kubelet's message; in
 * simulate mode (on the TestClock) and in process mode (real processes, the
 * whole process group).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as LocalKubelet from "../../src/kubelet/LocalKubelet.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { awaitFile, awaitFinished, awaitRunning, mainTerminated, ns, phaseOf, podFor, processExists, setup, taskResult } from "./helpers.js"
import { sharedDir, withHostPath } from "./podSpec.js"

const message = "Pod was active on the node longer than the specified deadline"

const withDeadline = (pod: KubeObject, seconds: number): KubeObject => ({
  ...pod,
  spec: { ...(pod.spec as Record<string, unknown>), activeDeadlineSeconds: seconds }
})

const statusOf = (pod: KubeObject) => pod.status as { phase?: string; reason?: string; message?: string; startTime?: string }

describe("LocalKubelet: activeDeadlineSeconds (simulate mode)", () => {
  const start = (client: Parameters<typeof LocalKubelet.start>[0]["client"]) =>
    LocalKubelet.start({ client, nodeName: "sim", namespace: ns, mode: "simulate" })

  it.effect("kills a pod still running at its deadline, counted from status.startTime", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* TestClock.adjust("1500 millis") // startTime is written at second precision: 00:00:01
      yield* start(client)
      yield* client.create(
        "pods",
        ns,
        withDeadline(podFor("slow", { container: { image: "busybox", command: ["sleep", "15"] } }, {
          annotations: { "flotilla.dev/simulate-duration": "15s" }
        }), 10)
      )
      const running = yield* awaitRunning(client, "slow")
      assert.strictEqual(statusOf(running).startTime, "1970-01-01T00:00:01Z")
      // 10 s after startTime (00:00:01), not after the kubelet took the pod (00:00:01.5).
      yield* TestClock.adjust("9499 millis")
      assert.strictEqual(phaseOf(yield* client.get("pods", ns, "slow")), "Running")
      yield* TestClock.adjust("1 millis")
      const pod = yield* awaitFinished(client, "slow")
      assert.deepStrictEqual(
        { phase: statusOf(pod).phase, reason: statusOf(pod).reason, message: statusOf(pod).message },
        { phase: "Failed", reason: "DeadlineExceeded", message }
      )
      const term = mainTerminated(pod)!
      assert.strictEqual(term.exitCode, 137)
      assert.strictEqual(term.reason, "Error")
      assert.strictEqual(term.finishedAt, "1970-01-01T00:00:11Z")
      assert.strictEqual((yield* taskResult(client, "slow")).exitCode, "137")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a pod finishing before its deadline is not touched by it", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* start(client)
      yield* client.create(
        "pods",
        ns,
        withDeadline(podFor("quick", { container: { image: "busybox", command: ["true"] } }, {
          annotations: { "flotilla.dev/simulate-duration": "2s" }
        }), 10)
      )
      yield* awaitRunning(client, "quick")
      yield* TestClock.adjust("2 seconds")
      const pod = yield* awaitFinished(client, "quick")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      assert.isUndefined(statusOf(pod).reason)
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a deadline set or lowered on a running pod applies at once", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* start(client)
      yield* client.create(
        "pods",
        ns,
        podFor("lowered", { container: { image: "busybox", command: ["true"] } }, {
          annotations: { "flotilla.dev/simulate-duration": "1h" }
        })
      )
      yield* awaitRunning(client, "lowered")
      yield* TestClock.adjust("30 seconds")
      yield* client.patch("pods", ns, "lowered", { spec: { activeDeadlineSeconds: 60 } })
      yield* TestClock.adjust("29 seconds")
      assert.strictEqual(phaseOf(yield* client.get("pods", ns, "lowered")), "Running")
      // Lowered below the time it has already run: killed at once.
      yield* client.patch("pods", ns, "lowered", { spec: { activeDeadlineSeconds: 20 } })
      const pod = yield* awaitFinished(client, "lowered")
      assert.strictEqual(statusOf(pod).reason, "DeadlineExceeded")
      assert.strictEqual(mainTerminated(pod)!.finishedAt, "1970-01-01T00:00:59Z")
    }).pipe(Effect.provide(InMemoryKube.layer)))
})

describe("LocalKubelet: activeDeadlineSeconds (process mode)", () => {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-deadline-test-"))
  afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }))

  it.live("kills the pod's whole process group at a 1 s deadline and keeps its log", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const kubelet = yield* LocalKubelet.start({ client, nodeName: "node-1", namespace: ns, mode: "process", workDir })
      const marker = sharedDir("flotilla-deadline-")
      // A child in the background and the shell waiting on it: both must go. (An odd duration of its
      // own: processes are looked for machine-wide.)
      const nap = `57.${process.pid}`
      yield* client.create(
        "pods",
        ns,
        withHostPath(podFor("overdue", {
          container: { image: "busybox", command: ["sh", "-c", `echo started; sleep ${nap} & touch ${marker}/started; wait`] }
        }), marker)
      )
      // The deadline is set once the shell and its child run: set at creation, a loaded machine
      // could pass it before the shell got that far, and the marker would never come.
      yield* awaitFile(`${marker}/started`)
      yield* client.patch("pods", ns, "overdue", { spec: { activeDeadlineSeconds: 1 } })
      const pod = yield* awaitFinished(client, "overdue")
      assert.deepStrictEqual(
        { phase: statusOf(pod).phase, reason: statusOf(pod).reason, message: statusOf(pod).message },
        { phase: "Failed", reason: "DeadlineExceeded", message }
      )
      const term = mainTerminated(pod)!
      assert.strictEqual(term.exitCode, 137)
      assert.strictEqual(term.reason, "Error")
      assert.isFalse(processExists((c) => c === `sleep\u0000${nap}\u0000`), "the pod's child sleep must be killed")
      assert.isFalse(processExists((c) => c.includes(`${marker}/started`)), "the pod's shell must be killed")
      assert.deepStrictEqual(yield* kubelet.logs(ns, "overdue"), Option.some("started\n"))
      fs.rmSync(marker, { recursive: true, force: true })
    }).pipe(Effect.provide(InMemoryKube.layer)), 30_000)
})
