/**
 * What `flotilla run` prints while a workflow waits to be resumed (src/cli/suspendHint.ts): a
 * Running suspend node without a duration, or spec.suspend; nothing for a duration, a completed
 * workflow or a suspend node already resumed. A node's template is the one it ran: by templateRef
 * or templateScope from the stored templates, by name from the spec. Plain output prints a hint
 * once per suspension: again after a resume and a new suspension.
 */
import { assert, describe, it } from "@effect/vitest"
import { newSuspendHints, suspendHints } from "../../src/cli/suspendHint.js"
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

  it("a node's template is found by its templateRef or templateScope among the stored templates, not by bare name", () => {
    const stored = {
      // the same names as the spec's, the other way round
      "namespaced/lib/approve": { name: "approve", suspend: { duration: "1h" } },
      "cluster/shared/delay": { name: "delay", suspend: {} }
    }
    const status = {
      phase: "Running",
      storedTemplates: stored,
      nodes: {
        a: { ...node("a", "approve", "Running"), templateName: undefined, templateRef: { name: "lib", template: "approve" } },
        b: { ...node("b", "delay", "Running"), templateName: undefined, templateRef: { name: "shared", template: "delay", clusterScope: true } },
        c: { ...node("c", "approve", "Running"), templateScope: "namespaced/lib" },
        d: { ...node("d", "approve", "Running"), templateScope: "local/" }
      }
    }
    assert.deepStrictEqual(suspendHints(wf({}, status)).map((h) => h.key), ["ns/w/b", "ns/w/d"])
  })

  it("plain output: once per suspension, again when the workflow or node is suspended again", () => {
    const printed = new Set<string>()
    const suspended = wf({ suspend: true }, { phase: "Running", nodes: { a: node("a", "approve", "Running") } })
    assert.deepStrictEqual(newSuspendHints(printed, suspended).map((h) => h.key), ["ns/w/spec.suspend", "ns/w/a"])
    assert.deepStrictEqual(newSuspendHints(printed, suspended), [])
    // resumed: spec.suspend cleared, the node still waits
    const resumed = wf({}, { phase: "Running", nodes: { a: node("a", "approve", "Running") } })
    assert.deepStrictEqual(newSuspendHints(printed, resumed), [])
    // suspended again: told again; the node's hint not
    assert.deepStrictEqual(newSuspendHints(printed, suspended).map((h) => h.key), ["ns/w/spec.suspend"])
    // another workflow's hints are its own
    const other = { ...suspended, metadata: { name: "w2", namespace: "ns" } }
    assert.deepStrictEqual(newSuspendHints(printed, other).map((h) => h.key), ["ns/w2/spec.suspend", "ns/w2/a"])
    assert.deepStrictEqual(newSuspendHints(printed, suspended), [])
  })
})
