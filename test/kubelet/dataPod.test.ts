/**
 * Data templates and resource `manifestFrom` on the local kubelet (dataPod.ts, resourcePod.ts):
 * the transformation alone, then end to end on the embedded runtime (in-memory clusters, the
 * controller, the kubelet in simulate mode) with a directory store as the artifact repository:
 * the source listed, filtered, reported as the node's result and fanned out by withParam; a
 * source with nothing under its key fails as argoexec does; a resource template creates the
 * object its raw input artifact describes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { makeDirectoryStore } from "../../src/kubelet/artifacts/DirectoryStore.js"
import { transform } from "../../src/kubelet/dataPod.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

describe("the data executor's transformation", () => {
  it("applies each expression to the previous value, with only data in scope, and writes Go's JSON", () => {
    const files = ["logs/a/main.log", "logs/a/init.log", "logs/b/main.log"]
    assert.strictEqual(transform(files, [{ expression: "filter(data, {# endsWith \"main.log\"})" }]), "[\"logs/a/main.log\",\"logs/b/main.log\"]")
    assert.strictEqual(
      transform(files, [{ expression: "filter(data, {# endsWith \"main.log\"})" }, { expression: "map(data, {len(#)})" }]),
      "[15,15]"
    )
    assert.strictEqual(transform(files, []), JSON.stringify(files))
    assert.strictEqual(transform([], [{ expression: "filter(data, {# endsWith \".py\"})" }]), "[]")
  })

  it("an expression that fails names its step, as upstream's processTransformation", () => {
    const out = transform(["a"], [{ expression: "data" }, { expression: "workflow.name" }])
    assert.isTrue(typeof out !== "string" && out.error.startsWith("unable to process data transformation: error processing data step 1: "), JSON.stringify(out))
  })
})

describe("a data template's listing is bounded", () => {
  it.effect("the directory store's list fails past maxListedKeys, naming the limit, without reading the files", () =>
    Effect.gen(function*() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-list-"))
      for (const n of ["a", "b", "c", "d/e"]) {
        fs.mkdirSync(path.dirname(path.join(root, "bkt", "src", n)), { recursive: true })
        fs.writeFileSync(path.join(root, "bkt", "src", n), n)
      }
      const t = { endpoint: "store:9000", bucket: "bkt", key: "src" }
      const within = makeDirectoryStore({ root, endpoint: "store:9000", maxListedKeys: 4 })
      assert.deepStrictEqual(yield* within.list(t), ["src/a", "src/b", "src/c", "src/d/e"])
      const capped = makeDirectoryStore({ root, endpoint: "store:9000", maxListedKeys: 3 })
      const e = yield* Effect.flip(capped.list(t))
      assert.strictEqual(e.message, `failed to list: more than 3 keys under "src" (bucket "bkt"): the limit of keys one listing may hold`)
      fs.rmSync(root, { recursive: true, force: true })
    }))
})

const wfOf = (name: string, templates: ReadonlyArray<Record<string, unknown>>): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: "default" },
  spec: { entrypoint: "main", templates }
})

const listing = (key: string) => ({
  name: "list",
  data: {
    source: { artifactPaths: { name: "logs", s3: { key } } },
    transformation: [{ expression: "filter(data, {# endsWith \"main.log\"})" }]
  }
})

/** Runs `wf` on the embedded runtime with a directory store (holding `files`) as the repository. */
const run = (wf: KubeObject, files: Record<string, string>) =>
  Effect.gen(function*() {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-data-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(root, { recursive: true, force: true })))
    for (const [rel, text] of Object.entries({ "repo/.keep": "", ...files })) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
      fs.writeFileSync(path.join(root, rel), text)
    }
    const repo = { endpoint: "artifacts.local:9000", bucket: "repo", accessKey: "a", secretKey: "s", store: makeDirectoryStore({ root, endpoint: "artifacts.local:9000" }) }
    const { admin, controller } = yield* Embedded.start(Embedded.placementOf([wf]), { mode: "simulate", artifactRepository: repo })
    yield* admin.create("workflows", "default", wf)
    const done = yield* Embedded.awaitWorkflow(controller, "default", wf.metadata.name!, Embedded.isCompleted).pipe(
      Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error(`${wf.metadata.name} did not complete`)) })
    )
    return { done: done!, nodes: Object.values((done!.status as { nodes: Record<string, Record<string, any>> }).nodes) }
  })

describe("data templates on the embedded runtime", () => {
  it.live("list the source's keys under the repository, filter them, and fan out over the result", () =>
    Effect.gen(function*() {
      const wf = wfOf("logs", [
        { name: "main", steps: [[{ name: "list", template: "list" }], [{ name: "each", template: "each", withParam: "{{steps.list.outputs.result}}", arguments: { parameters: [{ name: "f", value: "{{item}}" }] } }]] },
        listing("runs"),
        { name: "each", inputs: { parameters: [{ name: "f" }] }, container: { image: "busybox", command: ["echo", "{{inputs.parameters.f}}"] } }
      ])
      const { done, nodes } = yield* run(wf, { "repo/runs/a/main.log": "a", "repo/runs/a/init.log": "i", "repo/runs/b/main.log": "b", "repo/other/main.log": "x" })
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done.status))
      const list = nodes.find((n) => n.displayName === "list")!
      assert.strictEqual(list.type, "Pod")
      assert.strictEqual(list.outputs.result, "[\"runs/a/main.log\",\"runs/b/main.log\"]")
      assert.deepStrictEqual(nodes.filter((n) => n.templateName === "each" && n.type === "Pod").map((n) => n.displayName).sort(), [
        "each(0:runs/a/main.log)",
        "each(1:runs/b/main.log)"
      ])
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("a source naming its own bucket is listed there, through the repository's endpoint and credentials (upstream's ProcessArtifactPaths)", () =>
    Effect.gen(function*() {
      const wf = wfOf("own-bucket", [{
        name: "main",
        data: { source: { artifactPaths: { name: "logs", s3: { bucket: "elsewhere" } } }, transformation: [{ expression: "filter(data, {# endsWith \"main.log\"})" }] }
      }])
      const { done, nodes } = yield* run(wf, { "elsewhere/x/main.log": "x", "repo/y/main.log": "y" })
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done.status))
      assert.strictEqual(nodes.find((n) => n.name === "own-bucket")!.outputs.result, "[\"x/main.log\"]")
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.live("a source with no object under its key fails the node with argoexec's message", () =>
    Effect.gen(function*() {
      const { done, nodes } = yield* run(wfOf("nologs", [{ ...listing("none"), name: "main" }]), {})
      assert.strictEqual(Embedded.phaseOf(done), "Failed")
      const node = nodes.find((n) => n.name === "nologs")!
      assert.match(node.message, /unable to process data template: unable to process data source: unable to source artifact paths: no key found of name none/)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})

describe("resource manifestFrom on the embedded runtime", () => {
  it.live("the pod loads its inputs first and creates what the named artifact's manifest describes", () =>
    Effect.gen(function*() {
      const manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-artifact\ndata:\n  some: value\n"
      const wf = wfOf("from-artifact", [{
        name: "main",
        inputs: { artifacts: [{ name: "manifest", path: "/tmp/manifestfrom-path.yaml", raw: { data: manifest } }] },
        resource: { action: "create", manifestFrom: { artifact: { name: "manifest" } } },
        outputs: { parameters: [{ name: "data", valueFrom: { jsonPath: "{.data.some}" } }] }
      }])
      const { done, nodes } = yield* run(wf, {})
      assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done.status))
      assert.deepStrictEqual(nodes.find((n) => n.name === "from-artifact")!.outputs.parameters, [{ name: "data", value: "value" }])
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
})
