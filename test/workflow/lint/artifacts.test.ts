import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as YAML from "yaml"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { lintWorkflow } from "../../../src/workflow/lint/lint.js"

const wf = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", metadata: { name: "w" }, spec }) as KubeObject
const issues = (spec: Record<string, unknown>) => lintWorkflow(wf(spec)).map((i) => `${i.path}: ${i.message}`)

const passing = {
  entrypoint: "main",
  artifactRepositoryRef: { configMap: "my-repos", key: "v1" },
  artifactGC: { strategy: "OnWorkflowDeletion" },
  archiveLogs: true,
  templates: [
    {
      name: "main",
      steps: [
        [{ name: "gen", template: "gen" }],
        [{ name: "use", template: "use", arguments: { artifacts: [{ name: "in", from: "{{steps.gen.outputs.artifacts.out}}", subPath: "a/b" }] } }]
      ],
      outputs: { artifacts: [{ name: "o", from: "{{steps.gen.outputs.artifacts.out}}", globalName: "g" }] }
    },
    {
      name: "gen",
      archiveLocation: { archiveLogs: true },
      container: { image: "busybox" },
      outputs: { artifacts: [{ name: "out", path: "/tmp/out", archive: { tar: { compressionLevel: 9 } }, artifactGC: { strategy: "OnWorkflowCompletion" } }] }
    },
    {
      name: "use",
      inputs: { artifacts: [{ name: "in", path: "/in" }, { name: "r", path: "/r", raw: { data: "x" } }, { name: "h", path: "/h", optional: true, http: { url: "https://x" } }] },
      container: { image: "busybox" }
    }
  ]
}

describe("lint: artifacts", () => {
  it("accepts upstream's artifact fields", () => {
    assert.deepStrictEqual(issues(passing), [])
  })

  it("reports bad artifact fields with their paths", () => {
    const bad = structuredClone(passing) as any
    bad.artifactRepositoryRef = { configMap: 3, bogus: "x" }
    bad.artifactGC = { strategy: "Sometimes" }
    bad.templates[0].steps[1][0].arguments.artifacts[0] = { name: "in", from: "steps.gen.outputs.artifacts.out", fromExpression: "x" }
    bad.templates[1].outputs.artifacts[0] = { name: "out", archive: { rar: {} } }
    bad.templates[2].inputs.artifacts[1] = { name: "g", path: "/g", git: { repo: "https://x" }, s3: { key: "k", accessKeySecret: { name: "s" } } }
    assert.deepStrictEqual([...issues(bad)].sort(), [
      "spec.artifactRepositoryRef.configMap: must be a string",
      "spec.artifactRepositoryRef.bogus: unknown field (configMap, key)",
      "spec.artifactGC.strategy: unknown strategy \"Sometimes\" (OnWorkflowCompletion, OnWorkflowDeletion or Never)",
      "spec.templates[0].steps[1][0].arguments.artifacts[0]: argument artifact \"in\" has both from and fromExpression",
      "spec.templates[0].steps[1][0].arguments.artifacts[0].from: from must be a reference like \"{{steps.<name>.outputs.artifacts.<artifact>}}\", got \"steps.gen.outputs.artifacts.out\"",
      "spec.templates[1].outputs.artifacts[0].path: output artifact \"out\" needs a path",
      "spec.templates[1].outputs.artifacts[0].archive: unknown archive strategy rar (none, tar or zip)",
      "spec.templates[2].inputs.artifacts[1]: input artifact \"g\" has more than one location (s3, git)",
      "spec.templates[2].inputs.artifacts[1].git: git artifacts are not supported (only s3, http and raw)",
      "spec.templates[2].inputs.artifacts[1].s3.accessKeySecret: must be a secret key selector {name, key}"
    ].sort())
  })
})

describe("lint: data templates and resource manifestFrom", () => {
  const examples = ["data-transformations.yaml", "k8s-resource-tmpl-with-artifact.yaml"]
  for (const file of examples) {
    it(`the conformance example ${file} lints clean`, () => {
      const text = fs.readFileSync(path.join("test/conformance/examples", file), "utf8")
      for (const doc of YAML.parseAllDocuments(text).map((d) => d.toJS() as KubeObject | null)) {
        if (doc !== null) assert.deepStrictEqual(lintWorkflow(doc), [])
      }
    })
  }

  it("a data source of another kind, a bad expression, and manifestFrom naming no input are named", () => {
    assert.deepStrictEqual(issues({
      entrypoint: "list",
      templates: [
        { name: "list", data: { source: { artifactPaths: { name: "x", http: { url: "https://x" } } }, transformation: [{ expression: "filter(data," }] } },
        { name: "make", inputs: { artifacts: [{ name: "m", raw: { data: "kind: ConfigMap" } }] }, resource: { action: "create", manifestFrom: { artifact: { name: "other" } } } }
      ]
    }).sort().map((m) => m.replace(/: invalid expression .*/, ": invalid expression")), [
      "spec.templates[0].data.source.artifactPaths.http: listing http artifacts is not supported (only s3)",
      "spec.templates[0].data.transformation[0].expression: invalid expression",
      "spec.templates[1].inputs.artifacts[0].path: input artifact \"m\" needs a path",
      "spec.templates[1].resource.manifestFrom.artifact.name: artifact other in `manifestFrom` refer to a non-exist artifact"
    ].sort())
  })
})
