import { assert, describe, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { defaultImages, imagesPath, lookupImage } from "../../src/kubelet/images.js"
import { planPod, scriptPath, unwrapEmissary } from "../../src/kubelet/PodPlan.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { podFor } from "./helpers.js"

const bare = (main: Record<string, unknown>): KubeObject => ({
  metadata: { name: "p", namespace: "n" },
  spec: { containers: [{ name: "main", ...main }] }
})

describe("planPod", () => {
  it("prefers ARGO_TEMPLATE over the pod's (wrapped) command", () => {
    const plan = planPod(podFor("x", { container: { image: "busybox", command: ["echo"], args: ["a", "b"] } }), defaultImages)
    assert.strictEqual(plan._tag, "PodPlan")
    if (plan._tag === "PodPlan") assert.deepStrictEqual(plan.argv, ["echo", "a", "b"])
  })

  it("falls back to the main container, unwrapping the emissary", () => {
    const plan = planPod(bare({ image: "busybox", command: ["/var/run/argo/argoexec", "emissary", "--", "sh", "-c"], args: ["echo hi"] }), defaultImages)
    assert.strictEqual(plan._tag, "PodPlan")
    if (plan._tag === "PodPlan") {
      assert.deepStrictEqual(plan.argv, ["sh", "-c", "echo hi"])
      assert.isFalse(plan.captureResult)
    }
    assert.deepStrictEqual(unwrapEmissary(["argoexec", "emissary", "--", "a"]), ["a"])
    assert.deepStrictEqual(unwrapEmissary(["a", "b"]), ["a", "b"])
  })

  it("runs script templates as command + staged source, and captures their result when asked to", () => {
    const tmpl = { script: { image: "python:alpine3.23", command: ["python"], source: "print(1)" } }
    const plan = planPod(podFor("s", tmpl, { includeScriptOutput: true }), defaultImages)
    assert.strictEqual(plan._tag, "PodPlan")
    if (plan._tag === "PodPlan") {
      assert.deepStrictEqual(plan.argv, ["python", scriptPath])
      assert.strictEqual(plan.scriptSource, "print(1)")
      assert.isTrue(plan.captureResult)
    }
    // argoexec's CaptureScriptResult: nothing referenced the result (ARGO_INCLUDE_SCRIPT_OUTPUT=false).
    const unreferenced = planPod(podFor("s", tmpl), defaultImages)
    if (unreferenced._tag === "PodPlan") assert.isFalse(unreferenced.captureResult)
    const sh = planPod(podFor("s", { script: { image: "alpine", source: "echo" } }), defaultImages)
    if (sh._tag === "PodPlan") assert.deepStrictEqual(sh.argv, ["sh", scriptPath])
  })

  it("uses image entrypoints with Docker semantics when the command is absent", () => {
    const v2 = planPod(bare({ image: "argoproj/argosay:v2", args: ["echo", "hi"] }), defaultImages)
    if (v2._tag === "PodPlan") assert.deepStrictEqual(v2.argv, ["argosay", "echo", "hi"])
    else assert.fail(v2.message)
    // v1 only has a CMD: args replace it.
    const v1 = planPod(bare({ image: "argoproj/argosay:v1", args: ["cowsay", "hello"] }), defaultImages)
    if (v1._tag === "PodPlan") assert.deepStrictEqual(v1.argv, ["cowsay", "hello"])
    const v1bare = planPod(bare({ image: "argoproj/argosay:v1" }), defaultImages)
    if (v1bare._tag === "PodPlan") assert.deepStrictEqual(v1bare.argv, ["cowsay"])
    const whale = planPod(bare({ image: "docker/whalesay:latest" }), defaultImages)
    if (whale._tag === "PodPlan") assert.deepStrictEqual(whale.argv, ["cowsay"])
    else assert.fail(whale.message)
    assert.deepStrictEqual(lookupImage(defaultImages, "docker.io/docker/whalesay"), { cmd: ["cowsay"] })
    assert.deepStrictEqual(lookupImage({ "busybox:latest": { cmd: ["sh"] } }, "busybox"), { cmd: ["sh"] })
    const unknown = planPod(bare({ image: "busybox", args: ["x"] }), defaultImages)
    assert.strictEqual(unknown._tag, "PlanError")
    if (unknown._tag === "PlanError") {
      assert.strictEqual(unknown.message, `image "busybox": no entrypoint known: set command, or add it to the configmap key "images"`)
    }
  })

  it("collects output parameters with their defaults", () => {
    const plan = planPod(
      podFor("o", {
        container: { image: "busybox", command: ["true"] },
        outputs: { parameters: [{ name: "a", valueFrom: { path: "/tmp/a", default: "d" } }, { name: "b", valueFrom: { path: "/tmp/b" } }, { name: "c", value: "x" }] }
      }),
      defaultImages
    )
    if (plan._tag === "PodPlan") {
      assert.deepStrictEqual(plan.outputParameters, [{ name: "a", path: "/tmp/a", default: "d" }, { name: "b", path: "/tmp/b", default: undefined }])
    } else assert.fail(plan.message)
  })
})

describe("images/argosay", () => {
  const argosay = path.join(imagesPath, "argosay")
  const say = (...args: Array<string>) => spawnSync(argosay, args, { encoding: "utf8" })

  it("is where imagesPath says, and executable", () => {
    assert.isTrue(fs.statSync(argosay).isFile())
    fs.accessSync(argosay, fs.constants.X_OK)
  })

  it("echo prints, or writes to a file without a newline; cat reads it back", () => {
    assert.strictEqual(say().stdout, "hello argo\n")
    assert.strictEqual(say("echo", "hi there").stdout, "hi there\n")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "argosay-"))
    const file = path.join(dir, "sub", "out.txt")
    assert.strictEqual(say("echo", "real-value", file).status, 0)
    assert.strictEqual(fs.readFileSync(file, "utf8"), "real-value")
    assert.strictEqual(execFileSync(argosay, ["cat", file], { encoding: "utf8" }), "real-value")
    assert.strictEqual(say("assert_contains", file, "real").status, 0)
    assert.notStrictEqual(say("assert_contains", file, "nope").status, 0)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("exit and sleep", () => {
    assert.strictEqual(say("exit", "3").status, 3)
    assert.strictEqual(say("exit").status, 0)
    assert.strictEqual(say("sleep", "10ms").status, 0)
    assert.strictEqual(say("sleep", "forever").status, 1)
    assert.strictEqual(say("bogus").status, 1)
  })
})
