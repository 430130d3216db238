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

  it("decodes an unchanged spec once: a later version of the workflow (new status, new resourceVersion) reuses it; a changed spec is decoded anew", () => {
    const spec = { entrypoint: "main", templates: [{ ...leaf, name: "main" }] }
    const first = decodeWorkflow(workflow(structuredClone(spec)))
    const later = decodeWorkflow({ ...workflow(structuredClone(spec)), status: { phase: "Running" } })
    const changed = decodeWorkflow(workflow({ ...structuredClone(spec), arguments: { parameters: [{ name: "p", value: 5 }] } }))
    assert.ok(first.ok && later.ok && changed.ok)
    if (!first.ok || !later.ok || !changed.ok) return
    assert.strictEqual(later.value.spec, first.value.spec)
    assert.deepStrictEqual(later.value.status, { phase: "Running" })
    assert.notStrictEqual(changed.value.spec, first.value.spec)
    assert.deepStrictEqual(changed.value.spec.arguments, { parameters: [{ name: "p", value: "5" }] })
    // A spec that fails decodes to the same problems every time, metadata problems first.
    const bad = { ...workflow({ entrypoint: "main", templates: [{ name: "main", container: { image: 5 } }] }), metadata: {} }
    const once = decodeWorkflow(bad)
    const twice = decodeWorkflow(structuredClone(bad))
    assert.ok(!once.ok && !twice.ok)
    if (!once.ok) assert.strictEqual(once.error, "metadata.name: a name is required; spec.templates[0].container.image: expected a string, got number 5")
    if (!twice.ok && !once.ok) assert.strictEqual(twice.error, once.error)
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
