/**
 * Scheduling as kube-scheduler does it for the fields users set: the pure
 * filters (scheduling.ts), the in-memory clusters' Scheduler over several
 * nodes, and a lone LocalKubelet scheduling onto its own node.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as LocalKubelet from "../../src/kubelet/LocalKubelet.js"
import * as Scheduler from "../../src/kubelet/Scheduler.js"
import { hostArch, nodeObject, nodeRejects, place, reasons, standardNodeLabels } from "../../src/kubelet/scheduling.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { awaitFinished, awaitObject, ns, phaseOf, podFor, setup } from "./helpers.js"

const podWith = (spec: Record<string, unknown>, name = "p"): KubeObject => {
  const pod = podFor(name, { container: { image: "busybox", command: ["true"] } })
  return { ...pod, spec: { ...(pod.spec as Record<string, unknown>), ...spec } }
}

const required = (...nodeSelectorTerms: ReadonlyArray<unknown>) => ({
  affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } }
})

const ssd = nodeObject("ssd-1", { labels: { disktype: "ssd", cores: "16" } })
const hdd = nodeObject("hdd-1", { labels: { disktype: "hdd", cores: "4" } })
const gpu = nodeObject("gpu-1", { labels: { disktype: "ssd" }, taints: [{ key: "nvidia.com/gpu", value: "present", effect: "NoSchedule" }] })

const unschedulable = (n: number, histogram: string) =>
  `0/${n} nodes are available: ${histogram}. preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`

describe("scheduling filters", () => {
  it("nodes carry the standard labels", () => {
    assert.deepStrictEqual(standardNodeLabels("main-node"), {
      "beta.kubernetes.io/arch": hostArch(),
      "beta.kubernetes.io/os": "linux",
      "kubernetes.io/arch": hostArch(),
      "kubernetes.io/hostname": "main-node",
      "kubernetes.io/os": "linux"
    })
    assert.strictEqual(hostArch("x64"), "amd64")
    assert.strictEqual(hostArch("arm64"), "arm64")
  })

  it("nodeSelector: every label must match", () => {
    assert.isUndefined(nodeRejects(podWith({ nodeSelector: { disktype: "ssd", "kubernetes.io/os": "linux" } }), ssd))
    assert.strictEqual(nodeRejects(podWith({ nodeSelector: { disktype: "ssd" } }), hdd), reasons.affinity)
  })

  it("required node affinity: operators, terms ORed, expressions ANDed, matchFields on metadata.name", () => {
    const fits = (node: KubeObject, ...terms: ReadonlyArray<unknown>) => nodeRejects(podWith(required(...terms)), node) === undefined
    const expr = (key: string, operator: string, values?: ReadonlyArray<string>) => ({ matchExpressions: [{ key, operator, ...(values ? { values } : {}) }] })
    assert.isTrue(fits(ssd, expr("disktype", "In", ["ssd", "nvme"])))
    assert.isFalse(fits(hdd, expr("disktype", "In", ["ssd", "nvme"])))
    assert.isTrue(fits(hdd, expr("disktype", "NotIn", ["ssd"])))
    assert.isTrue(fits(hdd, expr("zone", "NotIn", ["a"])), "NotIn matches a node without the label")
    assert.isTrue(fits(ssd, expr("disktype", "Exists")))
    assert.isFalse(fits(ssd, expr("zone", "Exists")))
    assert.isTrue(fits(ssd, expr("zone", "DoesNotExist")))
    assert.isFalse(fits(ssd, expr("disktype", "DoesNotExist")))
    assert.isTrue(fits(ssd, expr("cores", "Gt", ["8"])))
    assert.isFalse(fits(hdd, expr("cores", "Gt", ["8"])))
    assert.isTrue(fits(hdd, expr("cores", "Lt", ["8"])))
    assert.isFalse(fits(ssd, expr("disktype", "Gt", ["8"])), "Gt on a label that is not an integer")
    assert.isFalse(fits(ssd, { matchExpressions: [{ key: "disktype", operator: "In", values: ["ssd"] }, { key: "cores", operator: "Lt", values: ["8"] }] }))
    assert.isTrue(fits(hdd, expr("disktype", "In", ["ssd"]), expr("cores", "Lt", ["8"])), "terms are ORed")
    assert.isTrue(fits(ssd, { matchFields: [{ key: "metadata.name", operator: "In", values: ["ssd-1"] }] }))
    assert.isFalse(fits(hdd, { matchFields: [{ key: "metadata.name", operator: "In", values: ["ssd-1"] }] }))
    assert.isTrue(fits(hdd, { matchFields: [{ key: "metadata.name", operator: "NotIn", values: ["ssd-1"] }] }))
    assert.isFalse(fits(ssd, {}), "an empty term matches nothing")
    assert.isFalse(
      nodeRejects(podWith({ nodeSelector: { disktype: "hdd" }, ...required(expr("disktype", "Exists")) }), ssd) === undefined,
      "nodeSelector and affinity must both match"
    )
  })

  it("taints: NoSchedule and NoExecute need a toleration; PreferNoSchedule does not", () => {
    assert.strictEqual(nodeRejects(podWith({}), gpu), reasons.taint)
    for (
      const toleration of [
        { key: "nvidia.com/gpu", operator: "Exists" },
        { key: "nvidia.com/gpu", operator: "Equal", value: "present", effect: "NoSchedule" },
        { key: "nvidia.com/gpu", value: "present" },
        { operator: "Exists" }
      ]
    ) assert.isUndefined(nodeRejects(podWith({ tolerations: [toleration] }), gpu), JSON.stringify(toleration))
    for (
      const toleration of [
        { key: "nvidia.com/gpu", value: "absent" },
        { key: "nvidia.com/gpu", operator: "Exists", effect: "NoExecute" },
        { key: "other", operator: "Exists" }
      ]
    ) assert.strictEqual(nodeRejects(podWith({ tolerations: [toleration] }), gpu), reasons.taint, JSON.stringify(toleration))
    const soft = nodeObject("soft", { taints: [{ key: "k", effect: "PreferNoSchedule" }] })
    assert.isUndefined(nodeRejects(podWith({}), soft))
    const cordoned = { ...ssd, spec: { unschedulable: true } }
    assert.strictEqual(nodeRejects(podWith({}), cordoned), reasons.unschedulable)
  })

  it("the scheduler's message counts each node's first failing filter, sorted", () => {
    const p = place(podWith({ nodeSelector: { disktype: "ssd" } }), [ssd, hdd, gpu])
    assert.strictEqual(p._tag, "Feasible")
    if (p._tag === "Feasible") assert.deepStrictEqual(p.nodes.map((n) => n.metadata.name), ["ssd-1"])
    assert.deepStrictEqual(place(podWith({ nodeSelector: { disktype: "nvme" } }), [ssd, hdd, gpu]), {
      _tag: "Unschedulable",
      message: unschedulable(3, "1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node affinity/selector")
    })
    assert.deepStrictEqual(place(podWith({}), []), { _tag: "Unschedulable", message: "no nodes available to schedule pods" })
  })
})

const scheduledCondition = (pod: KubeObject) =>
  ((pod.status as { conditions?: Array<Record<string, unknown>> } | undefined)?.conditions ?? []).find((c) => c.type === "PodScheduled")

const nodeNameOf = (pod: KubeObject) => (pod.spec as { nodeName?: string }).nodeName

const awaitUnschedulable = (client: KubeClientShape, name: string) =>
  awaitObject(client, "pods", name, (p) => scheduledCondition(p)?.reason === "Unschedulable")

describe("Scheduler (in-memory clusters)", () => {
  it.effect("binds to a node the pod fits, keeps the others Pending as Unschedulable, and binds them when a node fits", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* client.create("nodes", undefined, hdd)
      yield* client.create("nodes", undefined, gpu)
      yield* Scheduler.start({ client })
      yield* client.create("pods", ns, podWith({ nodeSelector: { disktype: "hdd" } }, "on-hdd"))
      yield* client.create("pods", ns, podWith({ nodeSelector: { disktype: "ssd" } }, "wants-ssd"))
      yield* client.create("pods", ns, podWith({ nodeSelector: { disktype: "ssd" }, tolerations: [{ key: "nvidia.com/gpu", operator: "Exists" }] }, "tolerates-gpu"))
      assert.strictEqual(nodeNameOf(yield* awaitObject(client, "pods", "on-hdd", (p) => nodeNameOf(p) !== undefined)), "hdd-1")
      assert.strictEqual(nodeNameOf(yield* awaitObject(client, "pods", "tolerates-gpu", (p) => nodeNameOf(p) !== undefined)), "gpu-1")

      const waiting = yield* awaitUnschedulable(client, "wants-ssd")
      assert.isUndefined(nodeNameOf(waiting))
      assert.strictEqual(phaseOf(waiting), "Pending")
      const condition = scheduledCondition(waiting)!
      assert.strictEqual(condition.status, "False")
      assert.strictEqual(condition.message, unschedulable(2, "1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint(s)"))

      // A matching node appears: the pod is bound to it.
      yield* client.create("nodes", undefined, ssd)
      assert.strictEqual(nodeNameOf(yield* awaitObject(client, "pods", "wants-ssd", (p) => nodeNameOf(p) !== undefined)), "ssd-1")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a node relabelled to match takes a waiting pod; other schedulers' pods are left alone", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* client.create("nodes", undefined, hdd)
      yield* Scheduler.start({ client })
      yield* client.create("pods", ns, podWith({ schedulerName: "someone-else" }, "foreign"))
      yield* client.create("pods", ns, podWith(required({ matchExpressions: [{ key: "cores", operator: "Gt", values: ["8"] }] }), "big"))
      yield* awaitUnschedulable(client, "big")
      yield* client.patch("nodes", undefined, "hdd-1", { metadata: { labels: { cores: "64" } } })
      assert.strictEqual(nodeNameOf(yield* awaitObject(client, "pods", "big", (p) => nodeNameOf(p) !== undefined)), "hdd-1")
      const foreign = yield* client.get("pods", ns, "foreign")
      assert.isUndefined(nodeNameOf(foreign))
      assert.isUndefined(foreign.status)
    }).pipe(Effect.provide(InMemoryKube.layer)))
})

describe("LocalKubelet alone: the scheduler of a one-node cluster", () => {
  it.effect("runs pods its node takes (standard labels) and leaves the others Pending, Unschedulable", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* LocalKubelet.start({ client, nodeName: "sim", namespace: ns, mode: "simulate", nodeTaints: [{ key: "dedicated", value: "ci", effect: "NoSchedule" }] })
      yield* client.create("pods", ns, podWith({ nodeSelector: { "kubernetes.io/os": "linux", "kubernetes.io/hostname": "sim" }, tolerations: [{ key: "dedicated", operator: "Exists" }] }, "linux"))
      yield* client.create("pods", ns, podWith({ nodeSelector: { "kubernetes.io/os": "linux" } }, "untolerated"))
      yield* client.create("pods", ns, podWith({ nodeSelector: { "kubernetes.io/os": "windows" }, tolerations: [{ operator: "Exists" }] }, "windows"))
      assert.strictEqual(phaseOf(yield* awaitFinished(client, "linux")), "Succeeded")
      const untolerated = yield* awaitUnschedulable(client, "untolerated")
      assert.strictEqual(scheduledCondition(untolerated)!.message, unschedulable(1, "1 node(s) had untolerated taint(s)"))
      const windows = yield* awaitUnschedulable(client, "windows")
      assert.strictEqual(scheduledCondition(windows)!.message, unschedulable(1, "1 node(s) didn't match Pod's node affinity/selector"))
      assert.strictEqual(phaseOf(windows), "Pending")
      assert.isUndefined(nodeNameOf(windows))
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
