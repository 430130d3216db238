import { assert, describe, it } from "@effect/vitest"
import { decodeWorkflow } from "../../../src/workflow/model/decode.js"
import { reconcile } from "../../../src/workflow/engine/reconcile.js"
import { config, T0, workflow } from "../engine/harness.js"

const leaf = { name: "leaf", container: { image: "busybox", command: ["true"] } }

const errorOf = (spec: Record<string, unknown>): string => {
  const r = decodeWorkflow(workflow(spec))
  assert.strictEqual(r.ok, false)
  return r.ok ? "" : r.error
}

describe("decodeWorkflow", () => {
  it("accepts a valid workflow and normalises `- steps:` groups", () => {
    const r = decodeWorkflow(workflow({ entrypoint: "main", templates: [{ name: "main", steps: [{ steps: [{ name: "a", template: "leaf" }] }] }, leaf] }))
    assert.ok(r.ok)
    if (r.ok) assert.deepStrictEqual(r.value.spec.templates[0].steps, [[{ name: "a", template: "leaf" }]])
  })

  it("names the field of an unknown template reference", () => {
    assert.strictEqual(
      errorOf({ entrypoint: "main", templates: [leaf, leaf2, { name: "main", steps: [[{ name: "a", template: "leaf" }, { name: "b", template: "foo" }]] }] }),
      'spec.templates[2].steps[0][1].template: unknown template "foo"'
    )
    assert.strictEqual(errorOf({ entrypoint: "nope", templates: [leaf] }), 'spec.entrypoint: unknown template "nope"')
    assert.strictEqual(
      errorOf({ entrypoint: "d", templates: [leaf, { name: "d", dag: { tasks: [{ name: "a", template: "leaf", depends: "b.Succeeded" }] } }] }),
      'spec.templates[1].dag.tasks[0].depends: unknown task "b"'
    )
    assert.strictEqual(errorOf({ entrypoint: "leaf", templates: [leaf, { name: "x" }] }), 'spec.templates[1]: template "x" has no type: it must define one of container, script, steps, dag, suspend, resource, containerSet, data, http, plugin')
    assert.strictEqual(errorOf({ entrypoint: "leaf", templates: [{ name: "leaf", container: { command: ["x"] } }] }), "spec.templates[0].container.image: expected a string, got nothing")
    assert.strictEqual(errorOf({ entrypoint: "leaf", templates: "x" }), 'spec.templates: expected a list, got string "x"')
  })

  it("a workflow that does not decode ends in Error with the message (no throw)", () => {
    const out = reconcile({
      workflow: workflow({ entrypoint: "main", templates: [{ name: "main", steps: [[{ name: "a", template: "missing" }]] }] }),
      pods: new Map(),
      taskResults: new Map(),
      now: T0,
      config
    })
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(out.status.message, 'spec.templates[0].steps[0][0].template: unknown template "missing"')
    assert.deepStrictEqual(out.labels, { "workflows.argoproj.io/phase": "Error", "workflows.argoproj.io/completed": "true" })
    assert.deepStrictEqual(out.actions, [])
    const garbage = reconcile({ workflow: { metadata: { name: "x" } } as any, pods: new Map(), taskResults: new Map(), now: T0, config })
    assert.strictEqual(garbage.status.phase, "Error")
    assert.strictEqual(garbage.status.message, "spec: expected an object, got nothing")
  })
})

const leaf2 = { name: "leaf2", script: { image: "python", command: ["python"], source: "print(1)" } }
