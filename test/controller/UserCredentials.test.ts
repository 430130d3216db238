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
  fastController,
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

  // A restarted kube-apiserver serves requests before its RBAC cache has synced, and answers what
  // its users may do with a plain 403 ("User ... cannot create resource pods"), the same message as
  // a real refusal (seen in the chaos e2e). Just after an outage, a refusal is given time.
  const clusterState = (controller: Embedded.StartResult["controller"]) =>
    controller.pool.states.pipe(Effect.map((m) => m.get("cluster-1")))
  const restartWithoutRbac = (controller: Embedded.StartResult["controller"], kube: Embedded.StartResult["kube"]) =>
    Effect.gen(function*() {
      yield* eventually("cluster-1 connected", clusterState(controller).pipe(Effect.map((s) => s?._tag === "Connected" ? s : undefined)))
      yield* kube.setReachable("cluster-1", false)
      yield* eventually("the outage seen", clusterState(controller).pipe(Effect.map((s) => s?._tag === "Retrying" ? s : undefined)))
      yield* kube.revoke("cluster-1", "workflow")
      yield* kube.setReachable("cluster-1", true)
      const back = yield* eventually("reconnected", clusterState(controller).pipe(Effect.map((s) => s?._tag === "Connected" ? s : undefined)))
      assert.isTrue(back.afterOutage)
      yield* kube.clearRequests("cluster-1")
    })
  const userCreates = (kube: Embedded.StartResult["kube"]) =>
    podCreates(kube, "cluster-1").pipe(Effect.map((rs) => rs.filter((r) => r.identity === "workflow").map((r) => r.outcome)))

  it.live("a 403 to a create just after the cluster came back from an outage is retried until RBAC answers yes", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const wf = workflow({ name: "after-restart", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* restartWithoutRbac(controller, kube)

        yield* submit(admin, wf)
        yield* eventually("refused creates", userCreates(kube).pipe(Effect.map((o) => o.length >= 2 ? o : undefined)))
        // The RBAC cache has synced.
        yield* kube.grant("cluster-1", "workflow", [{ verbs: ["create"], resources: ["pods"], namespaces: ["remote"] }])
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")

        const outcomes = yield* userCreates(kube)
        assert.strictEqual(outcomes.at(-1), "Success")
        assert.deepStrictEqual(outcomes.slice(0, -1).filter((o) => o !== "Forbidden"), [], "one pod created, after refusals only")
        assert.lengthOf(yield* podsOfWorkflow(kube, "after-restart"), 1)
        assert.isTrue(logs.lines.some((l) => l.includes("pod creation waiting for cluster") && l.includes("cannot create resource")))
      })
    ), 30_000)

  it.live("a 403 that outlasts the grace after an outage errors the node, naming the refusal", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "still-denied", ...remote })
        const { controller, admin, kube } = yield* Embedded.start(
          Embedded.placementOf([wf]),
          fast({ controller: { ...fastController, timing: { ...fastController.timing, refusalGrace: "1 second" } } })
        )
        yield* restartWithoutRbac(controller, kube)

        yield* submit(admin, wf)
        const done = yield* completed(controller, wf)
        const [node] = podNodes(done)
        assert.strictEqual(node?.phase, "Error")
        assert.include(node?.message, `User "workflow" cannot create resource "pods"`)
        const outcomes = yield* userCreates(kube)
        assert.isAbove(outcomes.length, 1, "retried within the grace")
        assert.deepStrictEqual([...new Set(outcomes)], ["Forbidden"])
        assert.lengthOf(yield* podsOfWorkflow(kube, "still-denied"), 0)
      })
    ), 30_000)

  it.live("a full ResourceQuota keeps the node Pending with the server's message, past createTimeout, as upstream", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "quota", ...remote })
        const { admin, controller, kube } = yield* Embedded.start(
          Embedded.placementOf([wf]),
          fast({ controller: { ...fastController, createTimeout: "100 millis" } })
        )
        const exceeded = `pods "quota" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=10, limited: pods=10`
        yield* kube.failNext("cluster-1", "create", "pods", "Forbidden", 5, exceeded)

        yield* submit(admin, wf)
        const waiting = yield* eventually(
          "the node shows the quota message",
          admin.get("workflows", wf.metadata.namespace, wf.metadata.name!).pipe(
            Effect.map((w) => podNodes(w).find((n) => n.message?.includes("exceeded quota")))
          )
        )
        assert.strictEqual(waiting.phase, "Pending")
        assert.strictEqual(waiting.message, exceeded)
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        assert.deepStrictEqual(yield* userCreates(kube), ["Forbidden", "Forbidden", "Forbidden", "Forbidden", "Forbidden", "Success"])
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
