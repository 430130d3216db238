import { assert, describe, it } from "@effect/vitest"
import { renderWorkflow } from "../../src/cli/Tree.js"
import { compressNodes } from "../../src/workflow/model/compressedNodes.js"

describe("flotilla's node tree", () => {
  it("renders a large workflow's nodes from status.compressedNodes", () => {
    const nodes = {
      wf: { id: "wf", name: "wf", displayName: "wf", type: "Steps", phase: "Succeeded", children: ["wf-1"] },
      "wf-1": { id: "wf-1", name: "wf[0]", displayName: "[0]", type: "StepGroup", phase: "Succeeded", children: ["wf-2"] },
      "wf-2": { id: "wf-2", name: "wf[0].hello", displayName: "hello", type: "Pod", phase: "Succeeded", templateName: "whalesay" }
    }
    const wf = {
      apiVersion: "argoproj.io/v1alpha1",
      kind: "Workflow",
      metadata: { name: "wf", namespace: "argo" },
      status: { phase: "Succeeded", compressedNodes: compressNodes(nodes) }
    }
    const text = renderWorkflow(wf, { now: 0 })
    assert.match(text, /✔ wf/)
    assert.match(text, /✔ hello\s+whalesay/)
  })
})
