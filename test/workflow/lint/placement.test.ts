/**
 * `cluster:` and `namespace:` (flotilla's placement) are linted as the engine
 * checks them before creating a pod (issue 10): a namespace is an RFC 1123
 * label, a cluster a label value (or `@in-cluster`).
 */
import { assert, describe, it } from "@effect/vitest"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { lintWorkflow } from "../../../src/workflow/lint/lint.js"

const wf = (spec: Record<string, unknown>): KubeObject =>
  ({ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", metadata: { name: "w" }, spec }) as KubeObject
const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra, container: { image: "busybox", command: ["echo", "hi"] } })

const only = (obj: KubeObject, path: string, message: RegExp): void => {
  const issues = lintWorkflow(obj)
  assert.strictEqual(issues.length, 1, JSON.stringify(issues))
  assert.strictEqual(issues[0].path, path)
  assert.match(issues[0].message, message)
}

describe("lint: template cluster and namespace", () => {
  const badNamespaces = ["..", "a/b", "Remote", "a".repeat(64), "-x", "x-", "a.b", "a b", "a\nb", "ü"]
  for (const ns of badNamespaces) {
    it(`namespace ${JSON.stringify(ns)} is refused at its path`, () => {
      only(
        wf({ entrypoint: "m", templates: [c("m"), c("x"), c("y", { namespace: ns })] }),
        "spec.templates[2].namespace",
        new RegExp(`invalid namespace ${JSON.stringify(ns).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`)
      )
    })
  }

  const badClusters = ["a/b", "cluster one", "c".repeat(64), "-c", "c.", "arn:aws:eks:eu-west-1:1:cluster/x", "@other", "c\n"]
  for (const cluster of badClusters) {
    it(`cluster ${JSON.stringify(cluster)} is refused at its path`, () => {
      only(wf({ entrypoint: "m", templates: [c("m", { cluster })] }), "spec.templates[0].cluster", /invalid cluster/)
    })
  }

  it("valid values, empty values and {{...}} (checked by the engine after substitution) are clean", () => {
    const clean = wf({
      entrypoint: "m",
      templateDefaults: { namespace: "team-a", cluster: "cluster-1" },
      templates: [
        { name: "m", cluster: "@in-cluster", namespace: "n".repeat(63), steps: [[{ name: "a", template: "x", arguments: { parameters: [{ name: "ns", value: "remote" }] } }]] },
        c("x", { inputs: { parameters: [{ name: "ns" }] }, cluster: "Cluster_1.eu", namespace: "{{inputs.parameters.ns}}" }),
        c("y", { cluster: "", namespace: "" })
      ]
    })
    assert.deepStrictEqual(lintWorkflow(clean), [])
  })

  it("templateDefaults and inline templates are checked too", () => {
    only(wf({ entrypoint: "m", templateDefaults: { namespace: "Team" }, templates: [c("m")] }), "spec.templateDefaults.namespace", /invalid namespace "Team"/)
    only(
      wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "t", inline: c("", { cluster: "bad/cluster" }) }] } }] }),
      "spec.templates[0].dag.tasks[0].inline.cluster",
      /invalid cluster "bad\/cluster"/
    )
  })

  it("a value that is not a string is reported once, by the decoder", () => {
    only(wf({ entrypoint: "m", templates: [c("m", { namespace: 5 })] }), "spec.templates[0].namespace", /expected a string/)
  })
})
