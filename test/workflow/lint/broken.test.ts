import { assert, describe, it } from "@effect/vitest"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { type LintIssue, lintWorkflow } from "../../../src/workflow/lint/lint.js"

const wf = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: "w" }): KubeObject =>
  ({ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", metadata, spec }) as KubeObject
const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra, container: { image: "busybox", command: ["echo", "hi"] } })

const expectIssues = (obj: KubeObject, expected: ReadonlyArray<LintIssue>): void => {
  assert.deepStrictEqual(lintWorkflow(obj), expected)
}
const expectOne = (obj: KubeObject, path: string, message: RegExp): void => {
  const issues = lintWorkflow(obj)
  assert.strictEqual(issues.length, 1, JSON.stringify(issues))
  assert.strictEqual(issues[0].path, path)
  assert.match(issues[0].message, message)
}

describe("lint: broken workflows", () => {
  it("a valid workflow with generateName only is clean", () => {
    expectIssues(wf({ entrypoint: "x", templates: [c("x")] }, { generateName: "w-" }), [])
  })

  it("decode errors keep their path", () => {
    expectOne(wf({ entrypoint: "x", templates: [{ name: "x", container: { image: "busybox", command: "echo" } }] }), "spec.templates[0].container.command", /expected a list/)
    expectOne(wf({ entrypoint: "x", templates: [c("x")] }, {}), "metadata.name", /required/)
  })

  it("unknown template references: entrypoint, steps, tasks, onExit, hooks", () => {
    expectOne(wf({ entrypoint: "nope", templates: [c("x")] }), "spec.entrypoint", /unknown template "nope"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x" }, { name: "b", template: "nope" }]] }, c("x")] }),
      "spec.templates[0].steps[0][1].template", /unknown template "nope"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x" }, { name: "b", template: "x" }, { name: "c", template: "nope", dependencies: ["a"] }] } }, c("x")] }),
      "spec.templates[0].dag.tasks[2].template", /unknown template "nope"/)
    expectOne(wf({ entrypoint: "x", onExit: "bye", templates: [c("x")] }), "spec.onExit", /unknown template "bye"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x", onExit: "bye" }]] }, c("x")] }),
      "spec.templates[0].steps[0][0].onExit", /unknown template "bye"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x", hooks: { exit: { template: "gone" } } }] } }, c("x")] }),
      "spec.templates[0].dag.tasks[0].hooks.exit.template", /unknown template "gone"/)
    expectOne(wf({ entrypoint: "x", hooks: { running: { template: "x" } }, templates: [c("x")] }), "spec.hooks.running.expression", /needs an expression/)
  })

  it("unknown dependency names the dependencies entry", () => {
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x" }, { name: "b", template: "x" }, { name: "c", template: "x", dependencies: ["a", "zz"] }] } }, c("x")] }),
      "spec.templates[0].dag.tasks[2].dependencies[1]", /unknown task "zz"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x" }, { name: "b", template: "x", depends: "a.Succeded" }] } }, c("x")] }),
      "spec.templates[0].dag.tasks[1].depends", /unknown result "Succeded" of task "a"/)
  })

  it("missing required input parameters and argument values", () => {
    const p = c("p", { inputs: { parameters: [{ name: "msg" }, { name: "opt", default: "x" }] } })
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "p" }]] }, p] }),
      "spec.templates[0].steps[0][0].arguments.parameters", /template "p" requires input parameter "msg"/)
    expectOne(wf({ entrypoint: "p", templates: [p] }), "spec.arguments.parameters", /entrypoint template "p" requires input parameter "msg"/)
    // the entrypoint gets spec.arguments
    expectIssues(wf({ entrypoint: "p", arguments: { parameters: [{ name: "msg", value: "v" }] }, templates: [p] }), [])
    expectOne(wf({ entrypoint: "x", arguments: { parameters: [{ name: "p" }] }, templates: [c("x")] }), "spec.arguments.parameters[0].value", /workflow parameter "p" has no value/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "p", arguments: { parameters: [{ name: "msg" }] } }] } }, p] }),
      "spec.templates[0].dag.tasks[0].arguments.parameters[0].value", /argument "msg" has no value/)
    expectOne(wf({ entrypoint: "x", arguments: { parameters: [{ name: "p", value: "c", enum: ["a", "b"] }] }, templates: [c("x")] }),
      "spec.arguments.parameters[0].value", /not in the enum \[a b\]/)
  })

  it("undefined inputs.parameters, workflow.parameters, item", () => {
    expectOne(wf({ entrypoint: "p", templates: [{ name: "p", inputs: { parameters: [{ name: "msg", value: "x" }] }, container: { image: "busybox", args: ["{{inputs.parameters.mesage}}"] } }] }),
      "spec.templates[0].container.args[0]", /template "p" has no input parameter "mesage"/)
    expectOne(wf({ entrypoint: "p", templates: [{ name: "p", script: { image: "python", command: ["python"], source: "print('{{= inputs.parameters.nope }}')" } }] }),
      "spec.templates[0].script.source", /has no input parameter "nope"/)
    expectOne(wf({ entrypoint: "x", templates: [{ name: "x", container: { image: "busybox", env: [{ name: "A", value: "{{workflow.parameters.nope}}" }] } }] }),
      "spec.templates[0].container.env[0].value", /"nope" is not a parameter/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x", arguments: { parameters: [{ name: "i", value: "{{item}}" }] } }]] }, c("x")] }),
      "spec.templates[0].steps[0][0].arguments.parameters[0].value", /"item" is only defined/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x", withItems: [{ os: "debian" }], arguments: { parameters: [{ name: "i", value: "{{item.version}}" }] } }]] }, c("x")] }),
      "spec.templates[0].steps[0][0].arguments.parameters[0].value", /no item of withItems has the key "version"/)
  })

  it("steps.X must be an earlier step; tasks.X must be a dependency", () => {
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x", arguments: { parameters: [{ name: "m", value: "{{steps.b.outputs.result}}" }] } }], [{ name: "b", template: "x" }]] }, c("x", { inputs: { parameters: [{ name: "m", default: "" }] } })] }),
      "spec.templates[0].steps[0][0].arguments.parameters[0].value", /step "b" is not in an earlier step group than "a"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x" }, { name: "b", template: "x", when: "{{steps.a.status}} == Succeeded" }]] }, c("x")] }),
      "spec.templates[0].steps[0][1].when", /step "a" is not in an earlier step group than "b"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x", when: "{{steps.zz.status}} == Succeeded" }]] }, c("x")] }),
      "spec.templates[0].steps[0][0].when", /unknown step "zz"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x" }, { name: "b", template: "x", when: "{{tasks.a.outputs.result}} == x" }] } }, c("x")] }),
      "spec.templates[0].dag.tasks[1].when", /task "a" is not a dependency of "b"/)
    // transitive dependencies are fine, and so is a task's own exit hook
    expectIssues(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [
      { name: "a", template: "x" },
      { name: "b", template: "x", depends: "a" },
      { name: "c", template: "x", depends: "b", when: "{{tasks.a.outputs.result}} == x", hooks: { exit: { template: "x", arguments: { parameters: [{ name: "s", value: "{{tasks.c.status}}" }] } } } }
    ] } }, c("x")] }), [])
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x" }, { name: "b", template: "x", depends: "a", arguments: { parameters: [{ name: "p", value: "{{tasks.a.outputs.parameters.nope}}" }] } }] } }, c("x", { inputs: { parameters: [{ name: "p", default: "" }] } })] }),
      "spec.templates[0].dag.tasks[1].arguments.parameters[0].value", /template "x" has no output parameter "nope"/)
    expectOne(wf({ entrypoint: "x", templates: [{ name: "x", container: { image: "busybox", args: ["{{steps.a.outputs.result}}"] } }] }),
      "spec.templates[0].container.args[0]", /can only be used in a steps template/)
  })

  it("a DAG cycle is named", () => {
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [
      { name: "a", template: "x", dependencies: ["c"] }, { name: "b", template: "x", dependencies: ["a"] }, { name: "c", template: "x", dependencies: ["b"] }
    ] } }, c("x")] }), "spec.templates[0].dag.tasks[0].dependencies", /dependency cycle detected: a -> c -> b -> a/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [
      { name: "a", template: "x" }, { name: "b", template: "x", depends: "a && d" }, { name: "d", template: "x", depends: "b.Succeeded" }
    ] } }, c("x")] }), "spec.templates[1 - 1].dag.tasks[1].depends".replace("1 - 1", "0"), /dependency cycle detected: b -> d -> b/)
  })

  it("expressions that do not parse: {{=...}}, when, depends, retryStrategy.expression, valueFrom.expression", () => {
    expectOne(wf({ entrypoint: "x", templates: [{ name: "x", container: { image: "busybox", args: ["{{=1 +}}"] } }] }), "spec.templates[0].container.args[0]", /invalid \{\{=\.\.\.\}\} "1 \+"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x", when: "a == (b" }]] }, c("x")] }), "spec.templates[0].steps[0][0].when", /invalid when expression "a == \(b": Unbalanced parenthesis/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x" }, { name: "b", template: "x", depends: "a &&" }] } }, c("x")] }), "spec.templates[0].dag.tasks[1].depends", /invalid depends expression/)
    expectOne(wf({ entrypoint: "x", templates: [{ ...c("x"), retryStrategy: { limit: 2, expression: "lastRetry.exitCode ==" } }] }), "spec.templates[0].retryStrategy.expression", /invalid expression/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x" }] }, outputs: { parameters: [{ name: "o", valueFrom: { expression: "tasks.a.outputs.result ?" } }] } }, c("x")] }),
      "spec.templates[0].outputs.parameters[0].valueFrom.expression", /invalid expression/)
    expectOne(wf({ entrypoint: "x", templates: [{ name: "x", container: { image: "busybox", args: ["{{inputs.parameters.x"] } }] }), "spec.templates[0].container.args[0]", /unterminated tag/)
  })

  it("duplicate names", () => {
    expectOne(wf({ entrypoint: "x", templates: [c("x"), c("x")] }), "spec.templates[1].name", /duplicate template name "x"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x" }], [{ name: "a", template: "x" }]] }, c("x")] }), "spec.templates[0].steps[1][0].name", /duplicate step name "a"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", dag: { tasks: [{ name: "a", template: "x" }, { name: "a", template: "x" }] } }, c("x")] }), "spec.templates[0].dag.tasks[1].name", /duplicate task name "a"/)
    expectOne(wf({ entrypoint: "x", templates: [c("x", { inputs: { parameters: [{ name: "p", value: "1" }, { name: "p", value: "2" }] } })] }), "spec.templates[0].inputs.parameters[1].name", /duplicate parameter "p"/)
  })

  it("a template with no type, or with two", () => {
    expectOne(wf({ entrypoint: "x", templates: [{ name: "x" }] }), "spec.templates[0]", /template "x" has no type/)
    expectOne(wf({ entrypoint: "x", templates: [{ name: "x", container: { image: "a" }, script: { image: "a", source: "" } }] }), "spec.templates[0]", /more than one type: container, script/)
  })

  it("reports every issue, not just the first", () => {
    const issues = lintWorkflow(wf({ entrypoint: "m", onExit: "bye", templates: [{ name: "m", steps: [[{ name: "a", template: "nope" }, { name: "b", template: "x", when: "((" }]] }, c("x"), { name: "y" }] }))
    assert.deepStrictEqual(issues.map((i) => i.path), ["spec.onExit", "spec.templates[0].steps[0][0].template", "spec.templates[0].steps[0][1].when", "spec.templates[2]"])
  })

  it("upstream's structural rules: parallelism on leaves, retryPolicy, podGC, withSequence", () => {
    expectOne(wf({ entrypoint: "x", templates: [c("x", { parallelism: 2 })] }), "spec.templates[0].parallelism", /only valid for steps and dag/)
    expectOne(wf({ entrypoint: "x", templates: [c("x", { retryStrategy: { retryPolicy: "Sometimes" } })] }), "spec.templates[0].retryStrategy.retryPolicy", /not a valid RetryPolicy/)
    expectOne(wf({ entrypoint: "x", podGC: { strategy: "Never" }, templates: [c("x")] }), "spec.podGC.strategy", /unknown strategy "Never"/)
    expectOne(wf({ entrypoint: "m", templates: [{ name: "m", steps: [[{ name: "a", template: "x", withSequence: { count: "2", end: "3" } }]] }, c("x")] }), "spec.templates[0].steps[0][0].withSequence", /only one of count or end/)
    expectOne(wf({ entrypoint: "x", templates: [c("x", { retryStrategy: { limit: 1 }, outputs: {} }), { name: "y", container: { image: "a", args: ["{{retries}}"] } }] }), "spec.templates[1].container.args[0]", /only defined in a template with a retryStrategy/)
  })

  it("templateDefaults may provide the image", () => {
    expectIssues(wf({ entrypoint: "x", templateDefaults: { container: { image: "busybox" } }, templates: [{ name: "x", container: { command: ["true"] } }] }), [])
  })
})
