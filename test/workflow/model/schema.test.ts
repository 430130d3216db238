/**
 * The Workflow Schema is the one source of a workflow's shape: decoding
 * reports every problem with its path, and every example flotilla ships or
 * runs from upstream decodes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as YAML from "yaml"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { lintWorkflow } from "../../../src/workflow/lint/lint.js"
import { decodeWorkflow } from "../../../src/workflow/model/decode.js"
import { checkAgainst, formatPath, Template, Workflow } from "../../../src/workflow/model/schema.js"

const wf = (spec: Record<string, unknown>): KubeObject =>
  ({ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", metadata: { name: "w" }, spec }) as KubeObject

describe("Workflow Schema", () => {
  it("a workflow with three errors in different places reports all three, each with its path", () => {
    const r = decodeWorkflow(wf({
      entrypoint: "main",
      arguments: { parameters: [{ name: "p", value: "1" }, { value: "no name" }] },
      templates: [
        { name: "main", steps: [[{ name: "a", template: "b", withSequence: { start: 1 } }]] },
        { name: "b", container: { image: 7, command: ["echo"] } }
      ]
    }))
    assert.isFalse(r.ok)
    if (r.ok) return
    assert.deepStrictEqual(r.problems, [
      { path: "spec.templates[0].steps[0][0].withSequence", message: "either count or end is required" },
      { path: "spec.templates[1].container.image", message: "expected a string, got number 7" },
      { path: "spec.arguments.parameters[1].name", message: "expected a string, got nothing" }
    ])
    assert.strictEqual(
      r.error,
      "spec.templates[0].steps[0][0].withSequence: either count or end is required; " +
        "spec.templates[1].container.image: expected a string, got number 7; " +
        "spec.arguments.parameters[1].name: expected a string, got nothing"
    )
    // lint reports the same three, at the same paths
    assert.deepStrictEqual(lintWorkflow(wf({
      entrypoint: "main",
      arguments: { parameters: [{ name: "p", value: "1" }, { value: "no name" }] },
      templates: [
        { name: "main", steps: [[{ name: "a", template: "b", withSequence: { start: 1 } }]] },
        { name: "b", container: { image: 7, command: ["echo"] } }
      ]
    })).map((i) => i.path).sort(), [
      "spec.arguments.parameters[1].name",
      "spec.templates[0].steps[0][0].withSequence",
      "spec.templates[1].container.image"
    ])
  })

  it("names nested fields, enums and list entries in the decoder's words", () => {
    const check = checkAgainst(Workflow)
    const r = check(wf({
      entrypoint: "m",
      podGC: { strategy: "Never" },
      templates: [
        { name: "m", dag: { tasks: [{ name: "t", template: "m", dependencies: "a" }] }, retryStrategy: { retryPolicy: "Sometimes", limit: 1.5 } },
        { name: "x", container: { image: "a" }, script: { image: "a", source: "" }, metadata: { labels: { "a/b": 1 } } }
      ]
    }))
    assert.isFalse(r.ok)
    if (r.ok) return
    assert.deepStrictEqual(r.problems, [
      { path: "spec.templates[0].dag.tasks[0].dependencies", message: "expected a list, got string \"a\"" },
      { path: "spec.templates[0].retryStrategy.limit", message: "expected an integer, got number 1.5" },
      { path: "spec.templates[0].retryStrategy.retryPolicy", message: "\"Sometimes\" is not a valid RetryPolicy: must be one of Always, OnFailure, OnError, OnTransientError" },
      { path: "spec.templates[1].metadata.labels[\"a/b\"]", message: "expected a string, got number 1" },
      { path: "spec.podGC.strategy", message: "unknown strategy \"Never\": must be one of OnPodCompletion, OnPodSuccess, OnWorkflowCompletion, OnWorkflowSuccess" }
    ])
  })

  it("a template defines exactly one type; the message says which", () => {
    const check = checkAgainst(Template)
    const none = check({ name: "x" })
    const two = check({ name: "x", container: { image: "a" }, suspend: {} })
    assert.deepStrictEqual(none.ok ? [] : none.problems.map((p) => p.message), [
      "template \"x\" has no type: it must define one of container, script, steps, dag, suspend, resource, containerSet, data, http, plugin"
    ])
    assert.deepStrictEqual(two.ok ? [] : two.problems.map((p) => p.message), ["template \"x\" defines more than one type: container, suspend"])
  })

  it("keeps unknown fields as written (upstream's CRD preserves unknown fields); a null known field decodes as absent, as Go reads it", () => {
    const input = wf({ entrypoint: "m", somethingNew: { a: 1 }, templates: [{ name: "m", container: { image: "a", stdin: true, command: null }, futureField: [1], other: null }] })
    const r = checkAgainst(Workflow)(input)
    assert.isTrue(r.ok)
    if (r.ok) {
      assert.deepStrictEqual(r.value as unknown, wf({ entrypoint: "m", somethingNew: { a: 1 }, templates: [{ name: "m", container: { image: "a", stdin: true }, futureField: [1], other: null }] }))
      assert.isFalse("command" in (r.value.spec.templates[0]!.container as object))
    }
  })

  it("paths are written as YAML readers know them", () => {
    assert.strictEqual(formatPath(["spec", "templates", 2, "container", "image"]), "spec.templates[2].container.image")
    assert.strictEqual(formatPath(["metadata", "labels", "workflows.argoproj.io/x"]), "metadata.labels[\"workflows.argoproj.io/x\"]")
  })
})

const repoRoot = path.resolve(import.meta.dirname, "../../..")
const exampleFiles = [
  ...fs.readdirSync(path.join(repoRoot, "examples")).filter((f) => f.endsWith(".yaml")).map((f) => path.join(repoRoot, "examples", f)),
  ...(fs.existsSync("/work/shared/conformance/argo-examples")
    ? fs.readdirSync("/work/shared/conformance/argo-examples").filter((f) => f.endsWith(".yaml")).map((f) => path.join("/work/shared/conformance/argo-examples", f))
    : [])
].sort()

describe("every example decodes", () => {
  it("finds the examples", () => {
    assert.isAbove(exampleFiles.length, 1)
  })
  for (const file of exampleFiles) {
    it(path.basename(file), () => {
      const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS() as KubeObject).filter((d) => d !== null)
      for (const doc of docs.filter((d) => d.kind === "Workflow")) {
        // upstream's examples use generateName; the API server gives the name
        const named = { ...doc, metadata: { name: doc.metadata?.name ?? `${doc.metadata?.generateName ?? "w-"}x`, ...doc.metadata } } as KubeObject
        const r = decodeWorkflow(named)
        assert.isTrue(r.ok, r.ok ? "" : r.error)
      }
    })
  }
})
