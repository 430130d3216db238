import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as YAML from "yaml"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { lintWorkflow } from "../../../src/workflow/lint/lint.js"

const dir = "/work/shared/conformance/argo-examples"
const files = fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()

describe("lint: upstream examples", () => {
  it("finds all 39 examples", () => {
    assert.strictEqual(files.length, 39)
  })
  for (const file of files) {
    it(`${file} lints clean`, () => {
      const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8")).map((d) => d.toJS() as KubeObject)
      for (const wf of docs.filter((d) => d !== null)) {
        assert.deepStrictEqual(lintWorkflow(wf), [])
      }
    })
  }
})
