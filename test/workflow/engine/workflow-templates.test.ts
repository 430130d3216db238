/**
 * WorkflowTemplates and ClusterWorkflowTemplates in the engine: `templateRef`
 * (template scope, stored templates, placement of the referenced templates),
 * `spec.workflowTemplateRef` (the joined spec, stored), and the errors of a
 * missing reference, as upstream's operator_template_scope_test.go and
 * operator_workflow_template_ref_test.go have them.
 */
import { describe, expect, it } from "vitest"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import type { TemplateLookup } from "../../../src/workflow/engine/contract.js"
import { needsFinalizer } from "../../../src/workflow/engine/targeting.js"
import { joinWorkflowSpec } from "../../../src/workflow/engine/workflowTemplateRef.js"
import { decodeWorkflow } from "../../../src/workflow/model/decode.js"
import { container, Sim, workflow } from "./harness.js"

const wft = (name: string, spec: Record<string, unknown>, namespace = "argo"): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "WorkflowTemplate",
  metadata: { name, namespace },
  spec
})

const cwft = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "ClusterWorkflowTemplate",
  metadata: { name },
  spec
})

const lookup = (...objects: ReadonlyArray<KubeObject>): TemplateLookup => ({
  workflowTemplates: new Map(objects.filter((o) => o.kind === "WorkflowTemplate").map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o])),
  clusterWorkflowTemplates: new Map(objects.filter((o) => o.kind === "ClusterWorkflowTemplate").map((o) => [o.metadata.name!, o]))
})

const hello = (name = "hello") => ({ name, container: { image: "busybox", command: ["echo", "hello"] } })

// upstream's testTemplateScopeWorkflowYaml and its two WorkflowTemplates
const scope1 = wft("test-template-scope-1", {
  templates: [
    {
      name: "steps",
      steps: [[
        { name: "hello", template: "hello" },
        { name: "other-wftmpl", templateRef: { name: "test-template-scope-2", template: "steps" } }
      ]]
    },
    hello()
  ]
})
const scope2 = wft("test-template-scope-2", {
  templates: [{ name: "steps", steps: [[{ name: "hello", template: "hello" }]] }, hello()]
})
const scopeWorkflow = () =>
  workflow({
    entrypoint: "entry",
    templates: [{ name: "entry", steps: [[{ name: "step", templateRef: { name: "test-template-scope-1", template: "steps" } }]] }]
  }, "test-template-scope")

describe("templateRef", () => {
  it("runs the referenced templates with their WorkflowTemplate as template scope (upstream's TestTemplateScope)", () => {
    const sim = new Sim(scopeWorkflow())
    sim.templates = lookup(scope1, scope2)
    const out = sim.runAll()
    expect(out.status.phase).toBe("Succeeded")
    const step = sim.node("test-template-scope[0].step")!
    expect(step.type).toBe("Steps")
    expect(step.templateScope).toBe("local/")
    expect(step.templateRef).toEqual({ name: "test-template-scope-1", template: "steps" })
    expect(step.templateName).toBeUndefined()
    expect(sim.node("test-template-scope[0].step[0]")!.templateScope).toBe("namespaced/test-template-scope-1")
    const pod = sim.node("test-template-scope[0].step[0].hello")!
    expect(pod.type).toBe("Pod")
    expect(pod.templateScope).toBe("namespaced/test-template-scope-1")
    expect(pod.templateName).toBe("hello")
    const other = sim.node("test-template-scope[0].step[0].other-wftmpl")!
    expect(other.type).toBe("Steps")
    expect(other.templateScope).toBe("namespaced/test-template-scope-1")
    expect(other.templateRef).toEqual({ name: "test-template-scope-2", template: "steps" })
    expect(sim.node("test-template-scope[0].step[0].other-wftmpl[0]")!.templateScope).toBe("namespaced/test-template-scope-2")
    expect(sim.node("test-template-scope[0].step[0].other-wftmpl[0].hello")!.templateScope).toBe("namespaced/test-template-scope-2")
    expect(Object.keys(out.status.storedTemplates as object).sort()).toEqual([
      "namespaced/test-template-scope-1/hello",
      "namespaced/test-template-scope-1/steps",
      "namespaced/test-template-scope-2/hello",
      "namespaced/test-template-scope-2/steps"
    ])
  })

  it("keeps running the stored templates when the WorkflowTemplate changes or goes away", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", dag: { tasks: [{ name: "a", templateRef: { name: "lib", template: "echo" } }] } }]
    }))
    sim.templates = lookup(wft("lib", { templates: [{ name: "echo", container: { image: "busybox", command: ["echo", "one"] } }] }))
    sim.tick()
    const first = sim.apply()
    expect(first).toHaveLength(1)
    expect(JSON.stringify(container(first[0].pod, "main"))).toContain('"one"')
    // The template changes, then disappears: the running workflow goes on with what it stored.
    sim.templates = lookup(wft("lib", { templates: [{ name: "echo", container: { image: "busybox", command: ["echo", "two"] } }] }))
    sim.tick()
    sim.templates = undefined
    sim.finish(first[0].nodeId)
    const out = sim.tick()
    expect(out.status.phase).toBe("Succeeded")
    expect((out.status.storedTemplates as any)["namespaced/lib/echo"].container.command).toEqual(["echo", "one"])
  })

  it("passes arguments to a ClusterWorkflowTemplate's template (clusterScope) and uses its input defaults", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{
        name: "main",
        steps: [[
          { name: "a", templateRef: { name: "print", template: "say", clusterScope: true }, arguments: { parameters: [{ name: "msg", value: "hi" }] } },
          { name: "b", templateRef: { name: "print", template: "say", clusterScope: true } }
        ]]
      }]
    }))
    sim.templates = lookup(cwft("print", {
      templates: [{ name: "say", inputs: { parameters: [{ name: "msg", default: "default" }] }, container: { image: "busybox", args: ["{{inputs.parameters.msg}}"] } }]
    }))
    sim.tick()
    const pods = sim.creates()
    const args = pods.map((c) => (c.pod.spec as any).containers.find((x: any) => x.name === "main").args[0]).sort()
    expect(args).toEqual(["default", "hi"])
    expect(sim.node("wf[0].a")!.templateRef).toEqual({ name: "print", template: "say", clusterScope: true })
    expect(Object.keys(sim.last!.status.storedTemplates as object)).toEqual(["cluster/print/say"])
  })

  it("places a WorkflowTemplate's template by its own cluster: and namespace:, and the workflow needs a finalizer", () => {
    const lib = wft("remote", {
      templates: [
        { name: "outer", steps: [[{ name: "inner", template: "work" }]], cluster: "cluster-2" },
        { name: "work", container: { image: "busybox" }, namespace: "team-b" }
      ]
    })
    const wf = workflow({ entrypoint: "main", templates: [{ name: "main", steps: [[{ name: "s", templateRef: { name: "remote", template: "outer" } }]] }] })
    const decoded = decodeWorkflow(wf)
    if (!decoded.ok) throw new Error(decoded.error)
    expect(needsFinalizer(decoded.value, "main")).toBe(false)
    expect(needsFinalizer(decoded.value, "main", lookup(lib))).toBe(true)
    const sim = new Sim(wf)
    sim.templates = lookup(lib)
    sim.tick()
    const [pod] = sim.creates()
    expect(pod.cluster).toBe("cluster-2")
    expect(pod.namespace).toBe("team-b")
  })

  it("fails the workflow at once when a referenced WorkflowTemplate or template does not exist (upstream's validation)", () => {
    const wf = workflow({ entrypoint: "main", templates: [{ name: "main", steps: [[{ name: "s", templateRef: { name: "nope", template: "x" } }]] }] })
    const sim = new Sim(wf)
    const out = sim.tick()
    expect(out.status.phase).toBe("Failed")
    expect(out.status.message).toBe("invalid spec: template reference nope.x not found")
    expect(out.actions).toEqual([])

    const sim2 = new Sim(workflow({ entrypoint: "main", templates: [{ name: "main", dag: { tasks: [{ name: "t", templateRef: { name: "lib", template: "missing" } }] } }] }))
    sim2.templates = lookup(wft("lib", { templates: [hello()] }))
    expect(sim2.tick().status).toMatchObject({ phase: "Failed", message: "invalid spec: template reference lib.missing not found" })
  })

  it("errors the node when a template reference made at run time does not resolve", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      arguments: { parameters: [{ name: "which", value: "gone" }] },
      templates: [{ name: "main", steps: [[{ name: "s", templateRef: { name: "{{workflow.parameters.which}}", template: "x" } }]] }]
    }))
    sim.templates = lookup()
    const out = sim.runAll()
    expect(out.status.phase).toBe("Failed")
    expect(sim.node("wf[0].s")).toMatchObject({ phase: "Error", message: "workflow template gone not found" })
  })

  it("retries a referenced template: the Retry node and its attempts carry the templateRef", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", dag: { tasks: [{ name: "t", templateRef: { name: "lib", template: "flaky" } }] } }]
    }))
    sim.templates = lookup(wft("lib", { templates: [{ name: "flaky", retryStrategy: { limit: 2 }, container: { image: "busybox" } }] }))
    let attempt = 0
    const out = sim.runAll(() => ({ ok: attempt++ > 0 }))
    expect(out.status.phase).toBe("Succeeded")
    const retry = sim.node("wf.t")!
    expect(retry.type).toBe("Retry")
    expect(retry.templateRef).toEqual({ name: "lib", template: "flaky" })
    expect(retry.templateScope).toBe("local/")
    expect(sim.node("wf.t(0)")).toMatchObject({ phase: "Failed", templateRef: { name: "lib", template: "flaky" }, templateScope: "local/" })
    expect(sim.node("wf.t(1)")).toMatchObject({ phase: "Succeeded", templateRef: { name: "lib", template: "flaky" } })
  })

  it("rejects a step with both template and templateRef", () => {
    const out = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", steps: [[{ name: "s", template: "main", templateRef: { name: "a", template: "b" } }]] }]
    })).tick()
    expect(out.status.phase).toBe("Error")
    expect(out.status.message).toContain("template name cannot be specified with templateRef")
  })
})

describe("workflowTemplateRef", () => {
  const template = wft("wft", {
    entrypoint: "main",
    arguments: { parameters: [{ name: "message", value: "from-template" }, { name: "other", value: "kept" }] },
    templates: [{
      name: "main",
      inputs: { parameters: [{ name: "message", value: "{{workflow.parameters.message}}" }] },
      container: { image: "busybox", args: ["{{inputs.parameters.message}} {{workflow.parameters.other}}"] }
    }]
  })

  it("runs the template's spec with the workflow's arguments merged by name, stored in status", () => {
    const sim = new Sim(workflow({ workflowTemplateRef: { name: "wft" }, arguments: { parameters: [{ name: "message", value: "mine" }] } }))
    sim.templates = lookup(template)
    sim.tick()
    const [pod] = sim.creates()
    expect((pod.pod.spec as any).containers.find((c: any) => c.name === "main").args).toEqual(["mine kept"])
    const stored = sim.last!.status.storedWorkflowTemplateSpec as any
    expect(stored.entrypoint).toBe("main")
    expect(stored.arguments.parameters).toEqual([{ name: "message", value: "mine" }, { name: "other", value: "kept" }])
    expect(sim.last!.labels["workflows.argoproj.io/workflow-template"]).toBe("wft")
    // A later change or loss of the template does not matter any more.
    sim.templates = undefined
    sim.apply()
    sim.finish(pod.nodeId)
    expect(sim.tick().status.phase).toBe("Succeeded")
  })

  it("errors the workflow with upstream's NotFound when the template does not exist", () => {
    const out = new Sim(workflow({ workflowTemplateRef: { name: "x" } })).tick()
    expect(out.status).toMatchObject({ phase: "Error", message: 'workflowtemplates.argoproj.io "x" not found' })
    const cluster = new Sim(workflow({ workflowTemplateRef: { name: "y", clusterScope: true } })).tick()
    expect(cluster.status).toMatchObject({ phase: "Error", message: 'clusterworkflowtemplates.argoproj.io "y" not found' })
  })

  it("takes a ClusterWorkflowTemplate's spec, and the workflow's entrypoint over the template's", () => {
    const sim = new Sim(workflow({ workflowTemplateRef: { name: "c", clusterScope: true }, entrypoint: "second" }))
    sim.templates = lookup(cwft("c", { entrypoint: "first", templates: [hello("first"), hello("second")] }))
    const out = sim.runAll()
    expect(out.status.phase).toBe("Succeeded")
    expect(sim.node("wf")!.templateName).toBe("second")
    expect(out.labels["workflows.argoproj.io/cluster-workflow-template"]).toBe("c")
  })

  it("refuses templates beside the reference, as upstream", () => {
    const sim = new Sim(workflow({ workflowTemplateRef: { name: "wft" }, templates: [hello()] }))
    sim.templates = lookup(template)
    expect(sim.tick().status.message).toBe("invalid spec: Templates is invalid field in spec if workflow referred WorkflowTemplate reference")
  })

  it("joins specs as upstream's JoinWorkflowSpec: the workflow wins, lists with a merge key merge by it", () => {
    const joined = joinWorkflowSpec(
      {
        arguments: { parameters: [{ name: "a", value: "wf" }], artifacts: [{ name: "own-file" }] },
        serviceAccountName: "mine",
        podGC: { strategy: "OnPodSuccess" },
        hooks: { exit: { template: "mine" } }
      },
      {
        entrypoint: "main",
        arguments: { parameters: [{ name: "a", default: "x" }, { name: "b", value: "t" }], artifacts: [{ name: "binary-file" }, { name: "data-file" }] },
        serviceAccountName: "theirs",
        podGC: { strategy: "OnWorkflowSuccess", deleteDelayDuration: "30s" },
        hooks: { exit: { template: "theirs" }, running: { template: "r" } },
        suspend: true,
        templates: [hello("main")]
      }
    )
    expect(joined).toEqual({
      entrypoint: "main",
      arguments: {
        parameters: [{ name: "a", value: "wf" }, { name: "b", value: "t" }],
        artifacts: [{ name: "own-file" }, { name: "binary-file" }, { name: "data-file" }]
      },
      serviceAccountName: "mine",
      podGC: { strategy: "OnPodSuccess", deleteDelayDuration: "30s" },
      hooks: { exit: { template: "mine" }, running: { template: "r" } },
      templates: [hello("main")]
    })
  })
})

describe("templateRef'd nodes elsewhere in the engine", () => {
  it("podGC's labelSelector reads the labels of the referenced template (a node called by templateRef has no templateName)", () => {
    const lib = wft("lib", {
      templates: [
        { name: "keep", metadata: { labels: { keep: "yes" } }, container: { image: "busybox", command: ["true"] } },
        { name: "drop", container: { image: "busybox", command: ["true"] } }
      ]
    })
    const sim = new Sim(workflow({
      entrypoint: "main",
      podGC: { strategy: "OnPodSuccess", labelSelector: { matchExpressions: [{ key: "keep", operator: "DoesNotExist" }] } },
      templates: [{
        name: "main",
        steps: [[{ name: "k", templateRef: { name: "lib", template: "keep" } }, { name: "d", templateRef: { name: "lib", template: "drop" } }]]
      }]
    }))
    sim.templates = lookup(lib)
    sim.runAll()
    const out = sim.tick()
    const deleted = out.actions.filter((a) => a._tag === "DeletePod").map((a) => a.nodeId)
    expect(deleted).toEqual([sim.node("wf[0].d")!.id])
  })
})

describe("hooks that call a WorkflowTemplate's template", () => {
  const lib = wft("lib", {
    templates: [{ name: "bye", container: { image: "busybox", command: ["echo", "bye"] } }]
  })

  it("a workflow's hooks.exit and a step's onExit-by-hook with templateRef run the referenced template", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      hooks: { exit: { templateRef: { name: "lib", template: "bye" } } },
      templates: [
        { name: "main", steps: [[{ name: "a", template: "echo", hooks: { exit: { templateRef: { name: "lib", template: "bye" } } } }]] },
        { name: "echo", container: { image: "busybox", command: ["echo", "a"] } }
      ]
    }))
    sim.templates = lookup(lib)
    sim.runAll()
    const out = sim.tick()
    expect(out.status.phase).toBe("Succeeded")
    expect(sim.node("wf[0].a.onExit")?.phase).toBe("Succeeded")
    expect(sim.node("wf[0].a.onExit")?.templateRef).toEqual({ name: "lib", template: "bye" })
    expect(sim.node("wf.onExit")?.phase).toBe("Succeeded")
    expect(sim.node("wf.onExit")?.templateRef).toEqual({ name: "lib", template: "bye" })
  })

  it("a lifecycle hook with templateRef runs when its expression holds", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [[{ name: "a", template: "echo", hooks: { done: { expression: "steps.a.status == \"Succeeded\"", templateRef: { name: "lib", template: "bye" } } } }]]
        },
        { name: "echo", container: { image: "busybox", command: ["echo", "a"] } }
      ]
    }))
    sim.templates = lookup(lib)
    sim.runAll()
    expect(sim.tick().status.phase).toBe("Succeeded")
    expect(sim.node("wf[0].a.hooks.done")?.phase).toBe("Succeeded")
  })
})
