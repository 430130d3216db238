/**
 * The local kubelet runs a containerSet template's pod as argoexec's emissary
 * does: each main container once its dependencies exited 0, a dependant of a
 * failed container failing without running, the set's retryStrategy
 * re-running a failing command, each container's state reported, and the
 * `main` container's stdout as the result.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as LocalKubelet from "../../src/kubelet/LocalKubelet.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { awaitFinished, ns, phaseOf, setup, taskResult } from "./helpers.js"
import { sharedDir } from "./podSpec.js"

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-kubelet-cs-"))
const shared = sharedDir("flotilla-cs-shared-")
afterAll(() => {
  fs.rmSync(workDir, { recursive: true, force: true })
  fs.rmSync(shared, { recursive: true, force: true })
})

interface Ctr {
  readonly name: string
  readonly script: string
  readonly dependencies?: ReadonlyArray<string>
}

/** A containerSet pod laid out as engine/pod.ts lays it out, each container mounting `shared`. */
const setPod = (name: string, containers: ReadonlyArray<Ctr>, retryStrategy?: Record<string, unknown>): KubeObject => {
  const template = {
    name,
    containerSet: {
      containers: containers.map((c) => ({ name: c.name, image: "busybox", command: ["sh", "-c"], args: [c.script], ...(c.dependencies ? { dependencies: c.dependencies } : {}) })),
      ...(retryStrategy ? { retryStrategy } : {})
    }
  }
  const env = (ctr: string) => [
    { name: "ARGO_CONTAINER_NAME", value: ctr },
    { name: "ARGO_TEMPLATE", value: JSON.stringify(template) },
    { name: "ARGO_INCLUDE_SCRIPT_OUTPUT", value: "true" }
  ]
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: ns,
      labels: { "workflows.argoproj.io/workflow": "wf", "workflows.argoproj.io/completed": "false" },
      annotations: { "workflows.argoproj.io/node-id": `wf-${name}`, "workflows.argoproj.io/node-name": `wf.${name}` }
    },
    spec: {
      restartPolicy: "Never",
      volumes: [{ name: "shared", hostPath: { path: shared, type: "Directory" } }],
      containers: [
        { name: "wait", image: "quay.io/argoproj/argoexec:v3.6.19", command: ["argoexec", "wait"], env: env("wait") },
        ...containers.map((c) => ({
          name: c.name,
          image: "busybox",
          command: ["/var/run/argo/argoexec", "emissary", "--", "sh", "-c"],
          args: [c.script],
          env: env(c.name),
          volumeMounts: [{ name: "shared", mountPath: shared }, { name: "var-run-argo", mountPath: "/var/run/argo" }]
        }))
      ]
    }
  }
}

const terminated = (pod: KubeObject, name: string) =>
  ((pod.status as any).containerStatuses as Array<any>).find((s) => s.name === name)?.state?.terminated

const startKubelet = (client: Parameters<typeof LocalKubelet.start>[0]["client"]) =>
  LocalKubelet.start({ client, nodeName: "node-1", namespace: ns, mode: "process", workDir })

describe("LocalKubelet: containerSet pods", () => {
  it.effect("runs the containers in dependency order (graph-workflow.yaml's graph); main's stdout is the result", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* startKubelet(client)
      const order = path.join(shared, "graph")
      yield* client.create("pods", ns, setPod("graph", [
        { name: "a", script: `sleep 0.2; echo a >> ${order}` },
        { name: "b", script: `echo b >> ${order}`, dependencies: ["a"] },
        { name: "c", script: `sleep 0.1; echo c >> ${order}`, dependencies: ["a"] },
        { name: "main", script: `echo main >> ${order}; echo hi`, dependencies: ["b", "c"] }
      ]))
      const pod = yield* awaitFinished(client, "graph")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      const lines = fs.readFileSync(order, "utf8").trim().split("\n")
      assert.strictEqual(lines[0], "a")
      assert.sameMembers(lines.slice(1, 3), ["b", "c"])
      assert.strictEqual(lines[3], "main")
      for (const n of ["a", "b", "c", "main"]) assert.strictEqual(terminated(pod, n).exitCode, 0)
      const outputs = yield* taskResult(client, "graph")
      assert.strictEqual(outputs.result, "hi")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a failed container's dependants fail without running; the pod fails", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* startKubelet(client)
      const marker = path.join(shared, "never")
      yield* client.create("pods", ns, setPod("fails", [
        { name: "a", script: "exit 3" },
        { name: "b", script: `touch ${marker}`, dependencies: ["a"] },
        { name: "c", script: "true" }
      ]))
      const pod = yield* awaitFinished(client, "fails")
      assert.strictEqual(phaseOf(pod), "Failed")
      assert.strictEqual(terminated(pod, "a").exitCode, 3)
      assert.strictEqual(terminated(pod, "b").exitCode, 3)
      assert.strictEqual(terminated(pod, "b").message, "dependency \"a\" exited with non-zero code: 3")
      assert.strictEqual(terminated(pod, "c").exitCode, 0)
      assert.isFalse(fs.existsSync(marker))
      assert.strictEqual((pod.status as any).message, "a: Error (exit code 3)")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("the set's retryStrategy re-runs a failing container's command", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* startKubelet(client)
      const count = path.join(shared, "tries")
      yield* client.create("pods", ns, setPod("retried", [
        { name: "main", script: `echo x >> ${count}; [ "$(wc -l < ${count})" -ge 2 ]` }
      ], { retries: 3 }))
      const pod = yield* awaitFinished(client, "retried")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      assert.strictEqual(fs.readFileSync(count, "utf8").trim().split("\n").length, 2)
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
