/**
 * Bad user credentials (`<sa>-kubeconfig` in the workflow's namespace): each
 * case must end the node in Error with a message that names the secret and
 * the field, show up in the controller log, create no pod anywhere, and leave
 * the controller serving other workflows.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import {
  completed,
  eventually,
  fast,
  inMemory,
  messageOf,
  podCreates,
  podNodes,
  podsOfWorkflow,
  putSecret,
  workflow,
  yaml
} from "./harness.js"
import { submit } from "./fixtures.js"

const remote = { cluster: "cluster-1", namespace: "remote" } as const

describe("user kubeconfig problems", () => {
  it.live("missing <sa>-kubeconfig: node errors naming the secret; other workflows still run", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const bad = workflow({ name: "no-secret", namespace_: "team-a", serviceAccountName: "robot", ...remote })
        const good = workflow({ name: "fine", namespace_: "team-b", serviceAccountName: "workflow", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([bad, good]), fast())
        yield* admin.delete("secrets", "team-a", "robot-kubeconfig")

        yield* submit(admin, bad)
        yield* submit(admin, good)
        const failed = yield* completed(controller, bad)
        const succeeded = yield* completed(controller, good)

        assert.strictEqual(Embedded.phaseOf(succeeded), "Succeeded")
        assert.strictEqual(Embedded.phaseOf(failed), "Error")
        const [node] = podNodes(failed)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, "team-a/robot-kubeconfig")
        assert.include(node?.message, `create it in namespace "team-a"`)
        assert.include(node?.message, `cluster "cluster-1"`)
        assert.include(messageOf(failed), "team-a/robot-kubeconfig")

        assert.lengthOf(yield* podsOfWorkflow(kube, "no-secret"), 0, "no pod for the failed workflow")
        const creates = yield* podCreates(kube, "cluster-1")
        assert.deepStrictEqual(creates.map((r) => [r.namespace, r.name, r.identity]), [["remote", "fine", "workflow"]])
        assert.isTrue(
          logs.lines.some((l) =>
            l.includes("level=error") && l.includes(`msg="pod creation failed"`) && l.includes("workflow=team-a/no-secret") &&
            l.includes("team-a/robot-kubeconfig")
          ),
          logs.lines.join("\n")
        )
      })
    ), 30_000)

  it.live("context for another namespace: error names the cluster and both namespaces", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const wf = workflow({ name: "wrong-ns", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* putSecret(
          admin,
          "local",
          "workflow-kubeconfig",
          Embedded.kubeconfigYaml([{ name: "cluster-1", namespace: "elsewhere", token: Embedded.tokens.workflowUser }], false)
        )
        yield* submit(admin, wf)
        const done = yield* completed(controller, wf)

        const [node] = podNodes(done)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, "secret local/workflow-kubeconfig")
        assert.include(node?.message, `no context for cluster "cluster-1" allows namespace "remote"`)
        assert.include(node?.message, `namespace "elsewhere"`)
        assert.lengthOf(yield* podCreates(kube, "cluster-1"), 0)
        assert.isTrue(logs.lines.some((l) => l.includes("pod creation failed") && l.includes("elsewhere")))
        assert.isFalse(logs.lines.some((l) => l.includes(Embedded.tokens.workflowUser)), "the token never reaches the log")
        assert.notInclude(JSON.stringify(done), Embedded.tokens.workflowUser)
      })
    ), 30_000)

  it.live("exec plugin: rejected naming users[0].user.exec, and the command never runs", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const marker = path.join(os.tmpdir(), `flotilla-exec-marker-${process.pid}-${Date.now()}`)
        const wf = workflow({ name: "exec-plugin", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* putSecret(
          admin,
          "local",
          "workflow-kubeconfig",
          yaml({
            apiVersion: "v1",
            kind: "Config",
            contexts: [{ name: "cluster-1", context: { cluster: "cluster-1", user: "u" } }],
            users: [{
              name: "u",
              user: {
                exec: {
                  apiVersion: "client.authentication.k8s.io/v1",
                  command: "/bin/sh",
                  args: ["-c", `touch ${marker}; echo '{"status":{"token":"x"}}'`],
                  interactiveMode: "Never"
                }
              }
            }]
          })
        )
        yield* submit(admin, wf)
        const done = yield* completed(controller, wf)

        const [node] = podNodes(done)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, "users[0].user.exec")
        assert.include(node?.message, "secret local/workflow-kubeconfig")
        assert.isFalse(fs.existsSync(marker), "the exec command must not run")
        assert.lengthOf(yield* podCreates(kube, "cluster-1"), 0)
        assert.isTrue(logs.lines.some((l) => l.includes("pod creation failed") && l.includes("users[0].user.exec")))
      })
    ), 30_000)

  it.live("creates use the user identity; a user without create gets Forbidden once, not retried forever", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const ok = workflow({ name: "allowed", ...remote })
        const denied = workflow({ name: "denied", namespace_: "team-x", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([ok, denied]), fast())

        // The seed's default: the controller itself may not create pods remotely.
        const controllerCreate = yield* kube.clientFor("cluster-1", Embedded.tokens.controller)
          .create("pods", "remote", { apiVersion: "v1", kind: "Pod", metadata: { name: "probe" }, spec: { containers: [] } })
          .pipe(Effect.flip)
        assert.strictEqual(controllerCreate.reason, "Forbidden")

        yield* submit(admin, ok)
        assert.strictEqual(Embedded.phaseOf(yield* completed(controller, ok)), "Succeeded")
        const creates = (yield* podCreates(kube, "cluster-1")).filter((r) => r.name !== "probe" && r.identity !== "controller")
        assert.deepStrictEqual(creates.map((r) => [r.identity, r.outcome]), [["workflow", "Success"]])

        // Now the user loses create too.
        yield* kube.revoke("cluster-1", "workflow")
        yield* kube.clearRequests("cluster-1")
        yield* submit(admin, denied)
        const done = yield* completed(controller, denied)
        const [node] = podNodes(done)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, "Forbidden")
        assert.include(node?.message, `User "workflow" cannot create resource "pods"`)
        assert.include(messageOf(done), "Forbidden")

        // Give the controller time for several of its (200 ms) retries: none may happen.
        yield* Effect.sleep("1 second")
        const attempts = yield* podCreates(kube, "cluster-1")
        assert.deepStrictEqual(attempts.map((r) => [r.identity, r.outcome]), [["workflow", "Forbidden"]])
        assert.isTrue(logs.lines.some((l) => l.includes("pod creation failed") && l.includes("workflow=team-x/denied")))
      })
    ), 30_000)

  it.live("a transient failure reading the user's secret is retried, not turned into a node error", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "flaky-secret", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* kube.failNext("main", "get", "secrets", "Unavailable", 2)
        yield* submit(admin, wf)
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        const gets = (yield* kube.requests("main")).filter((r) => r.verb === "get" && r.resource === "secrets" && r.namespace === "local")
        assert.deepStrictEqual(gets.map((r) => r.outcome), ["Unavailable", "Unavailable", "Success"])
        assert.lengthOf(yield* podCreates(kube, "cluster-1"), 1)
      })
    ), 30_000)
})
