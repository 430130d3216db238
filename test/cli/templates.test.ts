/**
 * `flotilla run WORKFLOW.yaml TEMPLATES.yaml...` and `flotilla lint` with
 * WorkflowTemplates and ClusterWorkflowTemplates beside the workflow (one
 * multi-document file), as a user runs them: a real process.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { flotilla } from "./process.js"


const workflowYaml = [
  "apiVersion: argoproj.io/v1alpha1",
  "kind: Workflow",
  "metadata: {name: uses-library, namespace: local}",
  "spec:",
  "  entrypoint: main",
  "  arguments: {parameters: [{name: who, value: flotilla}]}",
  "  templates:",
  "  - name: main",
  "    steps:",
  "    - - name: greet",
  "        templateRef: {name: library, template: greet}",
  "        arguments: {parameters: [{name: who, value: '{{workflow.parameters.who}}'}]}",
  "      - name: hello",
  "        templateRef: {name: cluster-library, template: hello, clusterScope: true}"
].join("\n")

const templatesYaml = [
  "apiVersion: argoproj.io/v1alpha1",
  "kind: WorkflowTemplate",
  "metadata: {name: library}",
  "spec:",
  "  templates:",
  "  - name: greet",
  "    inputs: {parameters: [{name: who}]}",
  "    cluster: cluster-2",
  "    namespace: remote",
  "    container: {image: busybox, command: [echo, 'hello {{inputs.parameters.who}}']}",
  "---",
  "apiVersion: argoproj.io/v1alpha1",
  "kind: ClusterWorkflowTemplate",
  "metadata: {name: cluster-library}",
  "spec:",
  "  templates:",
  "  - name: hello",
  "    container: {image: busybox, command: [echo, hi]}"
].join("\n")

const files = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-templates-"))
  const workflow = path.join(dir, "workflow.yaml")
  const templates = path.join(dir, "templates.yaml")
  fs.writeFileSync(workflow, workflowYaml)
  fs.writeFileSync(templates, templatesYaml)
  return { workflow, templates }
}

describe("flotilla run and lint with WorkflowTemplates", () => {
  it.live("runs a workflow calling a WorkflowTemplate (in cluster-2) and a ClusterWorkflowTemplate; --output json prints the one Workflow", () =>
    Effect.gen(function*() {
      const { templates, workflow } = files()
      const r = yield* flotilla("run", workflow, templates, "--output", "json", "--simulate")
      assert.strictEqual(r.code, 0, r.stderr)
      const wf = JSON.parse(r.stdout)
      assert.strictEqual(wf.kind, "Workflow")
      assert.strictEqual(wf.metadata.name, "uses-library")
      assert.strictEqual(wf.status.phase, "Succeeded")
      assert.deepStrictEqual(Object.keys(wf.status.storedTemplates).sort(), ["cluster/cluster-library/hello", "namespaced/library/greet"])
      const greet = Object.values(wf.status.nodes as Record<string, any>).find((n) => n.name === "uses-library[0].greet")
      assert.deepStrictEqual(greet.templateRef, { name: "library", template: "greet" })
      assert.match(r.stderr, /msg=cluster cluster=cluster-2 managedNamespace=remote/)
    }), 120_000)

  it.live("lint resolves the references against the files given, and names the field of one that does not resolve", () =>
    Effect.gen(function*() {
      const { templates, workflow } = files()
      const ok = yield* flotilla("lint", workflow, templates)
      assert.strictEqual(ok.code, 0, ok.stderr)
      assert.include(ok.stdout, `${workflow}: ok`)
      const missing = yield* flotilla("lint", workflow)
      assert.strictEqual(missing.code, 1)
      assert.include(
        missing.stderr,
        `${workflow}: spec.templates[0].steps[0][0].templateRef: template reference library.greet not found: workflow template library not found`
      )
      assert.include(missing.stderr, "spec.templates[0].steps[0][1].templateRef: template reference cluster-library.hello not found")
    }), 120_000)
})
