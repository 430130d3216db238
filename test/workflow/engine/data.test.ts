/**
 * Data templates in the engine (reconcile.ts, pod.ts, artifacts.ts): a Pod node whose pod's main
 * is the executor running `argoexec data <data>` as upstream's executeData lays it out (no wait
 * container, the result always reported), the source artifact relocated onto the repository
 * by the executor (the pod's archiveLocation), its secrets mounted in init and main; the
 * node's `outputs.result` is the task result's, and feeds `withParam` as any result.
 */
import { assert, describe, it } from "@effect/vitest"
import type { EngineConfig } from "../../../src/workflow/engine/contract.js"
import { config, container, envOf, Sim, workflow } from "./harness.js"

const repo = { s3: { bucket: "my-bucket", endpoint: "minio:9000", insecure: true, accessKeySecret: { name: "my-minio-cred", key: "accesskey" }, secretKeySecret: { name: "my-minio-cred", key: "secretkey" } } }
const withRepo: EngineConfig = { ...config, artifactRepository: repo }

const data = { source: { artifactPaths: { name: "test-bucket", s3: { bucket: "my-bucket" } } }, transformation: [{ expression: "filter(data, {# endsWith \"main.log\"})" }] }

const dataWorkflow = () =>
  workflow({
    entrypoint: "main",
    templates: [
      { name: "main", steps: [[{ name: "list", template: "list" }], [{ name: "each", template: "echo", withParam: "{{steps.list.outputs.result}}", arguments: { parameters: [{ name: "f", value: "{{item}}" }] } }]] },
      { name: "list", data },
      { name: "echo", inputs: { parameters: [{ name: "f" }] }, container: { image: "alpine", command: ["echo", "{{inputs.parameters.f}}"] } }
    ]
  })

describe("data templates", () => {
  it("run as a Pod node whose pod's main is the executor running `argoexec data <data as JSON>`", () => {
    const sim = new Sim(dataWorkflow())
    sim.cfg = withRepo
    sim.configMapStore = new Map()
    const [create] = sim.creates(sim.tick())
    assert.isDefined(create)
    const pod = create!.pod
    const spec = pod.spec as any
    assert.deepStrictEqual(spec.containers.map((c: any) => c.name), ["main"])
    assert.deepStrictEqual(spec.initContainers.map((c: any) => c.name), ["init"])
    const main = container(pod, "main")
    assert.strictEqual(main.image, sim.cfg.executorImage)
    assert.deepStrictEqual(main.command, ["/var/run/argo/argoexec", "emissary", "--", "argoexec", "data", JSON.stringify(data)])
    assert.strictEqual(envOf(main, "ARGO_INCLUDE_SCRIPT_OUTPUT"), "true")
    const template = JSON.parse(envOf(main, "ARGO_TEMPLATE")!)
    // The source has no complete location: the executor relocates it onto the repository's.
    assert.deepStrictEqual(template.archiveLocation.s3.bucket, "my-bucket")
    assert.deepStrictEqual(template.data, data)
    // The repository's credentials, mounted where the executor reads them (init and main).
    assert.deepInclude(main.volumeMounts, { name: "my-minio-cred", mountPath: "/argo/secret/my-minio-cred", readOnly: true })
    assert.deepInclude(container(pod, "init").volumeMounts, { name: "my-minio-cred", mountPath: "/argo/secret/my-minio-cred", readOnly: true })
    assert.strictEqual(sim.node("wf[0].list")?.type, "Pod")
  })

  it("the result of the task result is the node's outputs.result, which withParam expands", () => {
    const sim = new Sim(dataWorkflow())
    sim.cfg = withRepo
    sim.configMapStore = new Map()
    sim.tick()
    const [create] = sim.apply(sim.last!, "Running")
    sim.finish(create!.nodeId, true, { result: "[\"a/main.log\",\"b/main.log\"]" })
    const out = sim.tick()
    assert.strictEqual(sim.node("wf[0].list")?.outputs?.result, "[\"a/main.log\",\"b/main.log\"]")
    const echoes = sim.creates(out).map((c) => container(c.pod, "main").command.slice(-1)[0])
    assert.deepStrictEqual(echoes.sort(), ["a/main.log", "b/main.log"])
  })

  it("a source of a kind other than s3 errors the node, naming the field", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [{ name: "main", data: { source: { artifactPaths: { name: "x", gcs: { bucket: "b" } } }, transformation: [] } }]
    }))
    sim.cfg = withRepo
    sim.configMapStore = new Map()
    const out = sim.tick()
    assert.lengthOf(sim.creates(out), 0)
    assert.strictEqual(sim.node("wf")?.phase, "Error")
    assert.match(sim.node("wf")?.message, /^templates\.main\.data\.source\.artifactPaths\.gcs: listing gcs artifacts is not supported/)
  })
})
