/**
 * Resource templates in the engine (engine/resource.ts, pod.ts): a Pod node
 * whose pod runs `argoexec resource <action>` as upstream's executeResource
 * and workflowpod.go lay it out, in the template's cluster and namespace like
 * any pod (so it is created with the owner's credentials there); outputs come
 * back through the task result; what cannot run errors the node with the field.
 */
import { assert, describe, it } from "@effect/vitest"
import * as YAML from "yaml"
import { container, envOf, Sim, workflow } from "./harness.js"

const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  generateName: made-
data:
  some: value
`

const resourceWorkflow = (resource: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  workflow({
    entrypoint: "main",
    serviceAccountName: "workflow",
    templates: [{ name: "main", resource, ...extra }]
  })

describe("resource templates", () => {
  it("run as a Pod node whose pod is the executor running `argoexec resource <action>` (no wait container)", () => {
    const sim = new Sim(resourceWorkflow({ action: "create", manifest: configMap, successCondition: "status.phase == Succeeded" }))
    const out = sim.tick()
    const [create] = sim.creates(out)
    assert.isDefined(create)
    assert.strictEqual(sim.node("wf")?.type, "Pod")
    const pod = create!.pod
    const spec = pod.spec as any
    assert.deepStrictEqual(spec.containers.map((c: any) => c.name), ["main"])
    assert.deepStrictEqual(spec.initContainers.map((c: any) => c.name), ["init"])
    const main = container(pod, "main")
    assert.strictEqual(main.image, sim.cfg.executorImage)
    assert.deepStrictEqual(main.command, ["/var/run/argo/argoexec", "emissary", "--", "argoexec", "resource", "create"])
    assert.strictEqual(main.securityContext.readOnlyRootFilesystem, true)
    assert.strictEqual(main.securityContext.runAsNonRoot, true)
    assert.deepInclude(main.volumeMounts, { name: "tmp-dir-argo", mountPath: "/tmp", subPath: "0" })
    assert.strictEqual(envOf(main, "ARGO_CONTAINER_NAME"), "main")
    assert.strictEqual(spec.serviceAccountName, "workflow")
    const template = JSON.parse(envOf(container(pod, "init"), "ARGO_TEMPLATE")!)
    assert.strictEqual(template.resource.manifest, configMap)
    assert.strictEqual(template.resource.successCondition, "status.phase == Succeeded")
    assert.strictEqual((pod.metadata.annotations as any)["kubectl.kubernetes.io/default-container"], "main")
  })

  it("go where the template targets, as any pod: another cluster and namespace", () => {
    const sim = new Sim(resourceWorkflow({ action: "apply", manifest: configMap }, { cluster: "cluster-1", namespace: "remote" }))
    const [create] = sim.creates(sim.tick())
    assert.strictEqual(create!.cluster, "cluster-1")
    assert.strictEqual(create!.namespace, "remote")
    assert.strictEqual(create!.pod.metadata.namespace, "remote")
    // No owner reference to a Workflow that is not there.
    assert.isUndefined(create!.pod.metadata.ownerReferences)
  })

  it("succeed with the output parameters of their task result, which later steps read", () => {
    const wf = workflow({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "make", template: "make" }],
            [{ name: "use", template: "echo", arguments: { parameters: [{ name: "m", value: "{{steps.make.outputs.parameters.name}}" }] } }]
          ]
        },
        {
          name: "make",
          resource: { action: "create", manifest: configMap },
          outputs: { parameters: [{ name: "name", valueFrom: { jsonPath: "{.metadata.name}" } }] }
        },
        { name: "echo", inputs: { parameters: [{ name: "m" }] }, container: { image: "busybox", command: ["echo", "{{inputs.parameters.m}}"] } }
      ]
    })
    const sim = new Sim(wf)
    const out = sim.runAll((c) =>
      c.pod.spec && (c.pod.spec as any).containers[0].command.includes("resource")
        ? { ok: true, outputs: { parameters: [{ name: "name", value: "made-x1" }] } }
        : { ok: true }
    )
    assert.strictEqual(out.status.phase, "Succeeded")
    assert.strictEqual(sim.node("wf[0].make")?.outputs.parameters[0].value, "made-x1")
    assert.strictEqual(sim.node("wf[1].use")?.inputs.parameters[0].value, "made-x1")
  })

  it("fail with the executor's message when the pod fails", () => {
    const sim = new Sim(resourceWorkflow({ action: "create", manifest: configMap }))
    sim.apply(sim.tick(), "Running")
    const id = sim.node("wf")!.id as string
    const message = "failure condition 'status.phase==Failed' evaluated true"
    sim.setPod(id, "Failed", { exitCode: 64, message })
    const out = sim.tick()
    assert.strictEqual(out.status.phase, "Failed")
    assert.strictEqual(sim.node("wf")?.phase, "Failed")
    assert.strictEqual(sim.node("wf")?.message, message)
  })

  it("setOwnerReference: the manifest gets the Workflow as its controller owner, as upstream's controller adds it", () => {
    const sim = new Sim(resourceWorkflow({ action: "create", setOwnerReference: true, manifest: configMap }))
    const [create] = sim.creates(sim.tick())
    const template = JSON.parse(envOf(container(create!.pod, "main"), "ARGO_TEMPLATE")!)
    const manifest = YAML.parse(template.resource.manifest)
    assert.deepStrictEqual(manifest.metadata.ownerReferences, [
      { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: "wf", uid: "uid-1", controller: true, blockOwnerDeletion: true }
    ])
    assert.deepStrictEqual(manifest.data, { some: "value" })
  })

  it("setOwnerReference for a resource in another cluster errors: the owner cannot hold there", () => {
    const sim = new Sim(resourceWorkflow({ action: "create", setOwnerReference: true, manifest: configMap }, { cluster: "cluster-1" }))
    const out = sim.tick()
    assert.lengthOf(sim.creates(out), 0)
    assert.strictEqual(sim.node("wf")?.phase, "Error")
    assert.match(sim.node("wf")?.message, /^templates\.main\.resource\.setOwnerReference is not supported for a resource in cluster "cluster-1"/)
  })

  it("manifestFrom naming no input artifact errors as upstream's validation, and makes no pod", () => {
    const sim = new Sim(resourceWorkflow({ action: "create", manifestFrom: { artifact: { name: "manifest" } } }))
    const out = sim.tick()
    assert.lengthOf(sim.creates(out), 0)
    assert.strictEqual(out.status.phase, "Error")
    assert.strictEqual(sim.node("wf")?.message, "artifact manifest in `manifestFrom` refer to a non-exist artifact")
  })

  it("manifest and manifestFrom together error as upstream's validation", () => {
    const sim = new Sim(resourceWorkflow(
      { action: "create", manifest: configMap, manifestFrom: { artifact: { name: "manifest" } } },
      { inputs: { artifacts: [{ name: "manifest", path: "/tmp/m.yaml", raw: { data: configMap } }] } }
    ))
    sim.tick()
    assert.strictEqual(sim.node("wf")?.message, "shouldn't have both `manifest` and `manifestFrom` specified in `Manifest` for resource template")
  })

  it("manifestFrom: init loads the input artifact and main, the executor, sees it at its path (upstream's input-artifacts volume)", () => {
    const sim = new Sim(resourceWorkflow(
      { action: "create", manifestFrom: { artifact: { name: "manifest" } }, successCondition: "status.phase == Succeeded" },
      { inputs: { artifacts: [{ name: "manifest", path: "/tmp/manifestfrom-path.yaml", raw: { data: configMap } }] } }
    ))
    // The namespace's artifact repositories are read first (a raw input needs none, but the engine cannot know before).
    sim.configMapStore = new Map()
    const [create] = sim.creates(sim.tick())
    assert.isDefined(create)
    const spec = create!.pod.spec as any
    assert.deepStrictEqual(spec.containers.map((c: any) => c.name), ["main"])
    assert.deepInclude(spec.volumes, { name: "input-artifacts", emptyDir: {} })
    assert.deepInclude(container(create!.pod, "init").volumeMounts, { name: "input-artifacts", mountPath: "/argo/inputs/artifacts" })
    const main = container(create!.pod, "main")
    assert.deepStrictEqual(main.command, ["/var/run/argo/argoexec", "emissary", "--", "argoexec", "resource", "create"])
    assert.deepInclude(main.volumeMounts, { name: "input-artifacts", mountPath: "/tmp/manifestfrom-path.yaml", subPath: "manifest" })
    const template = JSON.parse(envOf(main, "ARGO_TEMPLATE")!)
    assert.deepStrictEqual(template.resource.manifestFrom, { artifact: { name: "manifest" } })
    assert.strictEqual(template.inputs.artifacts[0].raw.data, configMap)
  })

  it("an unknown action or a missing manifest errors with upstream's validation message", () => {
    const bad = new Sim(resourceWorkflow({ action: "frobnicate", manifest: configMap }))
    bad.tick()
    assert.strictEqual(bad.node("wf")?.message, "templates.main.resource.action must be one of: get, create, apply, delete, replace, patch")
    const missing = new Sim(resourceWorkflow({ action: "create" }))
    missing.tick()
    assert.strictEqual(missing.node("wf")?.message, "either templates.main.resource.manifest or templates.main.resource.manifestFrom must be specified")
  })

  it("substitutes inputs into the manifest and knows {{pod.name}}", () => {
    const wf = workflow({
      entrypoint: "main",
      arguments: { parameters: [{ name: "n", value: "cm-1" }] },
      templates: [{
        name: "main",
        inputs: { parameters: [{ name: "n", value: "{{workflow.parameters.n}}" }] },
        resource: {
          action: "patch",
          manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{inputs.parameters.n}}\n  annotations:\n    by: {{pod.name}}\n"
        }
      }]
    })
    const sim = new Sim(wf)
    const [create] = sim.creates(sim.tick())
    const template = JSON.parse(envOf(container(create!.pod, "main"), "ARGO_TEMPLATE")!)
    const manifest = YAML.parse(template.resource.manifest)
    assert.strictEqual(manifest.metadata.name, "cm-1")
    assert.strictEqual(manifest.metadata.annotations.by, create!.pod.metadata.name)
  })
})
