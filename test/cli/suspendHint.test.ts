/**
 * What `flotilla run` prints while a workflow waits to be resumed (src/cli/suspendHint.ts): a
 * Running suspend node without a duration, or spec.suspend; nothing for a duration, a completed
 * workflow or a suspend node already resumed.
 */
import { assert, describe, it } from "@effect/vitest"
import { suspendHints } from "../../src/cli/suspendHint.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"

const wf = (spec: Record<string, unknown>, status: Record<string, unknown>): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "w", namespace: "ns" },
  spec: {
    entrypoint: "main",
    templates: [{ name: "approve", suspend: {} }, { name: "delay", suspend: { duration: "20" } }],
    ...spec
  },
  status
})

const node = (id: string, templateName: string, phase: string) => ({ id, name: `w.${id}`, displayName: id, type: "Suspend", templateName, phase })

describe("suspend hints", () => {
  it("a Running suspend node without duration, and spec.suspend, each with its own key", () => {
    const hints = suspendHints(wf({ suspend: true }, {
      phase: "Running",
      nodes: { a: node("a", "approve", "Running"), b: node("b", "delay", "Running"), c: node("c", "approve", "Succeeded") }
    }))
    assert.deepStrictEqual(hints, [
      { key: "ns/w/spec.suspend", text: "workflow w is suspended (spec.suspend): run `flotilla resume w` in another terminal" },
      { key: "ns/w/a", text: "workflow w is suspended at node a: run `flotilla resume w` in another terminal" }
    ])
  })

  it("nothing once the workflow completed", () => {
    assert.deepStrictEqual(suspendHints(wf({ suspend: true }, { phase: "Failed", nodes: { a: node("a", "approve", "Running") } })), [])
  })
})
