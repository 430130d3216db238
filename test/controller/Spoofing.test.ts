/**
 * Issue 10, "a pod can pose as another workflow's pod": one tenant's pods
 * must never be read as another workflow's. Victim: `team-b/victim`, one pod
 * in cluster-1/remote (shared with team-a), whose output parameter flows
 * into its next step. Each attack must leave it untouched: its own pod is
 * created, its nodes end as its own pods say, its output is its own.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { render } from "../../src/controller/Metrics.js"
import { completed, eventually, fast, inMemory, podCreates, podNodes, podRunning, provisioned, stoppableController, waitFor } from "./harness.js"
import * as PodProof from "../../src/controller/PodProof.js"
import { submit } from "./fixtures.js"

const remote = { cluster: "cluster-1", namespace: "remote" } as const

/** Step `produce` (cluster-1/remote) outputs `out`; step `consume` (local) takes it as input. */
const victim: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "victim", namespace: "team-b" },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    templates: [
      {
        name: "main",
        steps: [
          [{ name: "produce", template: "produce" }],
          [{ name: "consume", template: "consume", arguments: { parameters: [{ name: "in", value: "{{steps.produce.outputs.parameters.out}}" }] } }]
        ]
      },
      {
        name: "produce",
        ...remote,
        // (2 s: long enough to be seen Running, a pod's start being written up to StatusWriter's placementHoldMs late)
        metadata: { annotations: { "flotilla.dev/simulate-parameters": JSON.stringify({ out: "legit" }), "flotilla.dev/simulate-duration": "2s" } },
        container: { image: "busybox", command: ["true"] },
        outputs: { parameters: [{ name: "out", valueFrom: { path: "/tmp/out" } }] }
      },
      {
        name: "consume",
        inputs: { parameters: [{ name: "in" }] },
        container: { image: "busybox", command: ["echo", "{{inputs.parameters.in}}"] }
      }
    ]
  }
}

/** A pod of team-a's in the shared namespace; `claims` are reserved fields it should not have. */
const attacker = (claims: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "attacker", namespace: "team-a" },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    templates: [{
      name: "main",
      ...remote,
      metadata: {
        labels: { ...claims.labels },
        annotations: {
          "flotilla.dev/simulate-phase": "Failed",
          "flotilla.dev/simulate-exit-code": "3",
          "flotilla.dev/simulate-duration": "2s",
          ...claims.annotations
        }
      },
      container: { image: "busybox", command: ["false"] }
    }]
  }
})

/** The victim's `produce` node ID, as the engine names it. */
const produceNode = (wf: KubeObject | undefined) => podNodes(wf).find((n) => n.name === "victim[0].produce")

const checkVictimUntouched = (result: Embedded.StartResult, done: KubeObject | undefined) =>
  Effect.gen(function*() {
    assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
    const produce = produceNode(done)
    assert.strictEqual(produce?.phase, "Succeeded")
    const nodes = (done?.["status"] as { nodes: Record<string, { name: string; outputs?: { parameters?: Array<{ name: string; value?: string }> }; inputs?: { parameters?: Array<{ name: string; value?: string }> } }> }).nodes
    const produceOut = Object.values(nodes).find((n) => n.name === "victim[0].produce")?.outputs?.parameters
    assert.deepStrictEqual(produceOut?.map((p) => [p.name, p.value]), [["out", "legit"]])
    const consumeIn = Object.values(nodes).find((n) => n.name === "victim[1].consume")?.inputs?.parameters
    assert.deepStrictEqual(consumeIn?.map((p) => [p.name, p.value]), [["in", "legit"]])
    // the victim's own pod was created in cluster-1/remote with its owner's credentials
    const creates = yield* podCreates(result.kube, "cluster-1")
    assert.isTrue(
      creates.some((r) => r.namespace === "remote" && r.name?.startsWith("victim-produce-") && r.identity === "workflow"),
      JSON.stringify(creates)
    )
  })

describe("a pod cannot pose as another workflow's pod", () => {
  it.live("the spoofing workflow of the probe errors naming the field; the victim is untouched", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const spoofing = attacker({
          labels: { "workflows.argoproj.io/workflow": "victim" },
          annotations: { "workflows.argoproj.io/workflow-namespace": "team-b", "workflows.argoproj.io/node-id": "victim-0" }
        })
        const result = yield* Embedded.start(Embedded.placementOf([victim, spoofing]), fast())
        yield* submit(result.admin, spoofing)
        const refused = yield* completed(result.controller, spoofing)
        assert.strictEqual(Embedded.phaseOf(refused), "Error")
        assert.include(
          String((refused?.["status"] as { message?: string }).message),
          "spec.templates[0].metadata.labels[\"workflows.argoproj.io/workflow\"]: label \"workflows.argoproj.io/workflow\" is reserved"
        )
        yield* submit(result.admin, victim)
        yield* checkVictimUntouched(result, yield* completed(result.controller, victim))
        const creates = yield* podCreates(result.kube, "cluster-1")
        assert.isFalse(creates.some((r) => r.name?.startsWith("attacker")), "no pod for the refused workflow")
      })
    ), 30_000)

  it.live("a hand-made pod in the remote namespace claiming the victim's node is ignored and counted", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const result = yield* Embedded.start(Embedded.placementOf([victim]), fast())
        // The attacker learns the node ID the victim will use (node IDs are predictable) and gets there first.
        const nodeId = `victim-${(yield* Effect.promise(() => import("../../src/workflow/engine/ids.js"))).fnv32a("victim[0].produce")}`
        yield* result.kube.adminClient("cluster-1").create("pods", "remote", {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            name: "looks-like-victim",
            namespace: "remote",
            labels: { "workflows.argoproj.io/workflow": "victim", "workflows.argoproj.io/cluster": "main", "workflows.argoproj.io/completed": "false" },
            annotations: { "workflows.argoproj.io/node-id": nodeId, "workflows.argoproj.io/workflow-namespace": "team-b" }
          },
          spec: { nodeName: "attackers-node", containers: [{ name: "main", image: "busybox" }] },
          status: {
            phase: "Failed",
            message: "spoofed",
            containerStatuses: [{ name: "main", state: { terminated: { exitCode: 7, message: "spoofed" } } }]
          }
        })
        yield* submit(result.admin, victim)
        const done = yield* completed(result.controller, victim)
        yield* checkVictimUntouched(result, done)
        assert.strictEqual(produceNode(done)?.id, nodeId)
        assert.deepStrictEqual(yield* result.controller.ignored, { pods: 1, taskResults: 0 })
        assert.include(yield* render(result.controller), "flotilla_ignored_objects_total{kind=\"pod\"} 1")
      })
    ), 30_000)

  it.live("another tenant's pod relabelled to claim the victim's node is ignored", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const own = attacker()
        const result = yield* Embedded.start(Embedded.placementOf([victim, own]), fast())
        yield* submit(result.admin, own)
        const running = yield* waitFor(result.controller, own, podRunning, "attacker's pod running")
        const pod = podNodes(running)[0]!
        const cluster1 = result.kube.adminClient("cluster-1")
        const name = (yield* cluster1.list("pods", "remote")).items.find((p) => p.metadata.name?.startsWith("attacker"))!.metadata.name!
        const nodeId = `victim-${(yield* Effect.promise(() => import("../../src/workflow/engine/ids.js"))).fnv32a("victim[0].produce")}`
        yield* cluster1.patch("pods", "remote", name, {
          metadata: {
            labels: { "workflows.argoproj.io/workflow": "victim" },
            annotations: { "workflows.argoproj.io/node-id": nodeId, "workflows.argoproj.io/workflow-namespace": "team-b" }
          }
        })
        assert.strictEqual(pod.phase, "Running")
        yield* submit(result.admin, victim)
        yield* checkVictimUntouched(result, yield* completed(result.controller, victim))
        const ignored = yield* result.controller.ignored
        assert.isAtLeast(ignored.pods, 1)
      })
    ), 30_000)

  it.live("a task result squatting the victim's name is never read: the node fails saying why, nothing hangs", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const result = yield* Embedded.start(Embedded.placementOf([victim]), fast())
        yield* submit(result.admin, victim)
        const running = yield* waitFor(result.controller, victim, (wf) => produceNode(wf)?.phase === "Running", "produce running")
        const nodeId = produceNode(running)!.id
        // Written before the victim's executor reports, as a co-tenant of the shared namespace could.
        // The executor (argoexec, and the local kubelet alike) then patches its outputs into it.
        const cluster1 = result.kube.adminClient("cluster-1")
        yield* cluster1.create("workflowtaskresults", "remote", {
          apiVersion: "argoproj.io/v1alpha1",
          kind: "WorkflowTaskResult",
          metadata: {
            name: nodeId,
            namespace: "remote",
            labels: { "workflows.argoproj.io/workflow": "victim", "workflows.argoproj.io/report-outputs-completed": "true" }
          },
          outputs: { parameters: [{ name: "out", value: "spoofed" }] }
        })
        const done = yield* completed(result.controller, victim)
        assert.strictEqual(Embedded.phaseOf(done), "Failed")
        const produce = produceNode(done)
        assert.strictEqual(produce?.phase, "Failed")
        assert.strictEqual(
          produce?.message,
          `task result cluster-1/remote/${nodeId} is not this workflow's (not owned by its UID): its outputs are not read`
        )
        assert.notInclude(JSON.stringify(done?.["status"]), "spoofed")
        assert.isAtLeast((yield* result.controller.ignored).taskResults, 1)
      })
    ), 30_000)

  it.live("a pod of another workflow holding the node's pod name is never touched: the node fails naming it", () =>
    inMemory(() =>
      Effect.gen(function*() {
        // Same workflow name in two namespaces, both placing their pod in the shared cluster-1/remote.
        const slow = (namespace: string, annotations: Record<string, string>): KubeObject => ({
          apiVersion: "argoproj.io/v1alpha1",
          kind: "Workflow",
          metadata: { name: "build", namespace },
          spec: {
            entrypoint: "main",
            serviceAccountName: "workflow",
            templates: [{ name: "main", ...remote, metadata: { annotations }, container: { image: "busybox", command: ["true"] } }]
          }
        })
        // (long enough to be seen Running: a pod's start is written up to StatusWriter's placementHoldMs late)
        const first = slow("team-a", { "flotilla.dev/simulate-duration": "3s" })
        const second = slow("team-b", {})
        const result = yield* Embedded.start(Embedded.placementOf([first, second]), fast())
        yield* submit(result.admin, first)
        yield* waitFor(result.controller, first, podRunning, "first pod running")
        yield* submit(result.admin, second)
        const failed = yield* completed(result.controller, second)
        assert.strictEqual(Embedded.phaseOf(failed), "Error")
        assert.strictEqual(
          podNodes(failed)[0]?.message,
          "pod name cluster-1/remote/build is taken by a pod that is not this node's (it belongs to workflow team-a/build)"
        )
        const done = yield* completed(result.controller, first)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        const deletes = (yield* result.kube.requests("cluster-1")).filter((r) => r.verb === "delete" && r.resource === "pods")
        assert.deepStrictEqual(deletes, [], "nobody deleted team-a's pod")
      })
    ), 30_000)

  it.live("a pod squatting the node's own pod name and claims is replaced by the node's own pod", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const one: KubeObject = {
          apiVersion: "argoproj.io/v1alpha1",
          kind: "Workflow",
          metadata: { name: "one", namespace: "team-b" },
          spec: {
            entrypoint: "main",
            serviceAccountName: "workflow",
            templates: [{ name: "main", ...remote, container: { image: "busybox", command: ["true"] } }]
          }
        }
        const result = yield* Embedded.start(Embedded.placementOf([one]), fast())
        const cluster1 = result.kube.adminClient("cluster-1")
        // Name, labels and annotations as the controller would write them (as after a crash between
        // the create and the status write), but not created by it: not running anywhere.
        const squatter = yield* cluster1.create("pods", "remote", {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            name: "one",
            namespace: "remote",
            labels: { "workflows.argoproj.io/workflow": "one", "workflows.argoproj.io/cluster": "main", "workflows.argoproj.io/completed": "false" },
            annotations: { "workflows.argoproj.io/node-id": "one", "workflows.argoproj.io/workflow-namespace": "team-b" }
          },
          spec: { nodeName: "nowhere", containers: [{ name: "main", image: "busybox" }] },
          status: { phase: "Running" }
        })
        yield* submit(result.admin, one)
        const done = yield* completed(result.controller, one)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        const requests = (yield* result.kube.requests("cluster-1")).filter((r) => r.resource === "pods" && (r.verb === "delete" || r.verb === "create"))
        assert.deepStrictEqual(
          requests.map((r) => [r.verb, r.name, r.identity, r.outcome]),
          [
            ["create", "one", "admin", "Success"],
            ["create", "one", "workflow", "AlreadyExists"],
            ["delete", "one", "controller", "Success"],
            ["create", "one", "workflow", "Success"]
          ],
          JSON.stringify(requests)
        )
        const pod = yield* cluster1.get("pods", "remote", "one")
        assert.notStrictEqual(pod.metadata.uid, squatter.metadata.uid)
        const node = (done?.["status"] as { nodes: Record<string, Record<string, unknown>> }).nodes["one"]
        assert.deepStrictEqual([node?.["podUID"], node?.["cluster"], node?.["namespace"]], [pod.metadata.uid, "cluster-1", "remote"])
      })
    ), 30_000)

  it.live("a pod created just before a restart (no record yet) is adopted by its proof; a forged proof is replaced", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const one = (name: string): KubeObject => ({
          apiVersion: "argoproj.io/v1alpha1",
          kind: "Workflow",
          metadata: { name, namespace: "team-b" },
          spec: {
            entrypoint: "main",
            serviceAccountName: "workflow",
            templates: [{ name: "main", ...remote, container: { image: "busybox", command: ["true"] } }]
          }
        })
        const adopted = one("adopted")
        const forged = one("forged")
        const { kube, admin } = yield* provisioned([adopted, forged])
        // A first controller life makes the proof key.
        const first = yield* stoppableController
        yield* first.stop
        const secret = yield* admin.get("secrets", "argo", PodProof.keySecretName)
        const key = PodProof.fromKey(Buffer.from(String((secret["data"] as Record<string, string>)["key"]), "base64"))
        // The workflows exist, and (as if the controller had made them and stopped before writing
        // the status) their pods do too, in cluster-1/remote, created with the user's identity.
        const user = kube.adminClient("cluster-1")
        for (const wf of [adopted, forged]) {
          const stored = yield* admin.create("workflows", "team-b", wf)
          const pod: KubeObject = {
            apiVersion: "v1",
            kind: "Pod",
            metadata: {
              name: wf.metadata.name,
              namespace: "remote",
              labels: { "workflows.argoproj.io/workflow": wf.metadata.name!, "workflows.argoproj.io/cluster": "main", "workflows.argoproj.io/completed": "false" },
              annotations: { "workflows.argoproj.io/node-id": wf.metadata.name!, "workflows.argoproj.io/workflow-namespace": "team-b" }
            },
            spec: {
              containers: [
                { name: "wait", image: "argoexec", env: [{ name: "ARGO_WORKFLOW_NAME", value: wf.metadata.name }, { name: "ARGO_WORKFLOW_UID", value: stored.metadata.uid }] },
                { name: "main", image: "busybox", command: ["true"] }
              ]
            }
          }
          const fields = { workflowUid: stored.metadata.uid!, nodeId: wf.metadata.name!, cluster: "cluster-1", namespace: "remote", podName: wf.metadata.name! }
          // "forged": a copy of a genuine proof on a pod that runs something else
          const proof = key.sign(fields, wf === adopted ? pod : { ...pod, spec: { containers: [{ name: "main", image: "evil" }] } })
          yield* user.create("pods", "remote", PodProof.withProof(pod, proof))
        }
        const second = yield* stoppableController
        for (const wf of [adopted, forged]) {
          const done = yield* completed(second.controller, wf)
          assert.strictEqual(Embedded.phaseOf(done), "Succeeded", `${wf.metadata.name}: ${JSON.stringify(done?.["status"])}`)
        }
        const requests = (yield* kube.requests("cluster-1")).filter((r) => r.resource === "pods" && (r.verb === "delete" || r.verb === "create"))
        const of = (name: string) => requests.filter((r) => r.name === name).map((r) => [r.verb, r.identity, r.outcome])
        assert.deepStrictEqual(of("adopted"), [["create", "admin", "Success"]], "adopted: never deleted, never created again")
        assert.deepStrictEqual(of("forged"), [
          ["create", "admin", "Success"],
          ["create", "workflow", "AlreadyExists"],
          ["delete", "controller", "Success"],
          ["create", "workflow", "Success"]
        ])
        yield* second.stop
      })
    ), 30_000)

  it.live("a workflow whose create fails cannot get another workflow's pod of that name deleted through podGC", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const build = (namespace: string, serviceAccountName: string, extra: Record<string, unknown>): KubeObject => ({
          apiVersion: "argoproj.io/v1alpha1",
          kind: "Workflow",
          metadata: { name: "build", namespace },
          spec: {
            entrypoint: "main",
            serviceAccountName,
            ...extra,
            templates: [{
              name: "main",
              ...remote,
              // (long enough to be seen Running: a pod's start is written up to StatusWriter's placementHoldMs late)
              metadata: { annotations: { "flotilla.dev/simulate-duration": "3s" } },
              container: { image: "busybox", command: ["true"] }
            }]
          }
        })
        const victimBuild = build("team-b", "workflow", {})
        // No kubeconfig secret for "nobody": the create fails for good, and podGC asks to delete "its" pod.
        const deputy = build("team-a", "nobody", { podGC: { strategy: "OnPodCompletion" } })
        const result = yield* Embedded.start(Embedded.placementOf([victimBuild, deputy]), fast())
        yield* submit(result.admin, victimBuild)
        yield* waitFor(result.controller, victimBuild, podRunning, "victim's pod running")
        yield* submit(result.admin, deputy)
        const failed = yield* completed(result.controller, deputy)
        assert.notStrictEqual(Embedded.phaseOf(failed), "Succeeded")
        const done = yield* completed(result.controller, victimBuild)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        const deletes = (yield* result.kube.requests("cluster-1")).filter((r) => r.verb === "delete" && r.resource === "pods")
        assert.deepStrictEqual(deletes, [], "nothing deleted the victim's pod")
      })
    ), 30_000)

  it.live("a pod that only claims the victim (with a finalizer of its own) does not hold up the victim's deletion", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const result = yield* Embedded.start(Embedded.placementOf([victim]), fast())
        yield* submit(result.admin, victim)
        const done = yield* completed(result.controller, victim)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        const cluster1 = result.kube.adminClient("cluster-1")
        yield* cluster1.create("pods", "remote", {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            name: "pinned",
            namespace: "remote",
            finalizers: ["example.com/never"],
            labels: { "workflows.argoproj.io/workflow": "victim", "workflows.argoproj.io/cluster": "main" },
            annotations: { "workflows.argoproj.io/node-id": "victim-1", "workflows.argoproj.io/workflow-namespace": "team-b" }
          },
          spec: { nodeName: "nowhere", containers: [{ name: "main", image: "busybox" }] }
        })
        yield* result.admin.delete("workflows", "team-b", "victim")
        yield* eventually(
          "the victim's finalizer released and the workflow gone",
          result.admin.get("workflows", "team-b", "victim").pipe(Effect.option, Effect.map((wf) => Option.isNone(wf) ? true : undefined))
        )
        const left = (yield* result.kube.objects("cluster-1", "pods", "remote")).map((p) => p.metadata.name)
        assert.include(left, "pinned", "the claimant is not the controller's to delete")
      })
    ), 30_000)

  it.live("a pod without any of our labels holding the node's pod name fails the node at once, naming it, and is not touched", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const one: KubeObject = {
          apiVersion: "argoproj.io/v1alpha1",
          kind: "Workflow",
          metadata: { name: "squatted", namespace: "team-b" },
          spec: { entrypoint: "main", serviceAccountName: "workflow", templates: [{ name: "main", ...remote, container: { image: "busybox", command: ["true"] } }] }
        }
        const result = yield* Embedded.start(Embedded.placementOf([one]), fast())
        yield* result.kube.adminClient("cluster-1").create("pods", "remote", {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "squatted", namespace: "remote", labels: { app: "unrelated" } },
          spec: { nodeName: "nowhere", containers: [{ name: "main", image: "busybox" }] }
        })
        yield* submit(result.admin, one)
        const done = yield* completed(result.controller, one)
        assert.strictEqual(podNodes(done)[0]?.message, "pod name cluster-1/remote/squatted is taken by a pod that is not this node's (not made by this controller)")
        const deletes = (yield* result.kube.requests("cluster-1")).filter((r) => r.verb === "delete" && r.resource === "pods")
        assert.deepStrictEqual(deletes, [])
      })
    ), 30_000)
})
