/**
 * Artifacts through the controller on in-memory clusters (simulate mode: no bytes move, the
 * task results say what the executor would have written): a step's output artifact written in
 * cluster-1/remote reaches the next step's pod on main through the node status; the repository
 * from the controller configmap and from spec.artifactRepositoryRef; a malformed repository is
 * a configuration error naming its field, and the controller serves on.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { parseControllerConfig } from "../../src/controller/ControllerConfig.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { labelReportOutputsCompleted, labelWorkflow } from "../../src/util/argoKeys.js"
import { executorEnvOf } from "../../src/workflow/engine/pod.js"
import { fast, inMemory } from "./harness.js"
import { submit, untilCompleted } from "./fixtures.js"

const repositoryYaml = "s3:\n  bucket: art\n  endpoint: s3.local:9000\n  insecure: true\n  accessKeySecret: {name: s3-cred, key: accesskey}\n  secretKeySecret: {name: s3-cred, key: secretkey}\n"

const cm = (data: Record<string, string>) => ({ metadata: { namespace: "argo", name: "workflow-controller-configmap" }, data })

const crossCluster = (name: string, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace: "local" },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    ...spec,
    templates: [
      {
        name: "main",
        steps: [
          [{ name: "gen", template: "gen" }],
          [{ name: "use", template: "use", arguments: { artifacts: [{ name: "in", from: "{{steps.gen.outputs.artifacts.out}}" }] } }]
        ]
      },
      {
        name: "gen",
        cluster: "cluster-1",
        namespace: "remote",
        metadata: { annotations: { "flotilla.dev/simulate-duration": "2s" } },
        container: { image: "docker/whalesay" },
        outputs: { artifacts: [{ name: "out", path: "/tmp/out" }] }
      },
      { name: "use", inputs: { artifacts: [{ name: "in", path: "/in" }] }, container: { image: "docker/whalesay" } }
    ]
  }
})

const argoTemplate = (pod: KubeObject): any => {
  const main = ((pod.spec as any).containers as Array<any>).find((c) => c.name === "main")
  return JSON.parse(main.env.find((e: any) => e.name === "ARGO_TEMPLATE").value)
}

/** The first pod of the workflow in that cluster and namespace, once there. */
const podIn = (cluster: string, namespace: string, workflow: string) =>
  Effect.gen(function*() {
    const kube = yield* InMemoryKube
    for (let i = 0; i < 300; i++) {
      const pods = (yield* kube.objects(cluster, "pods", namespace)).filter((p) => p.metadata.labels?.[labelWorkflow] === workflow)
      if (pods.length > 0) return pods[0]!
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error(`no pod of ${workflow} in ${cluster}/${namespace}`))
  })

/** What the producer's wait container (argoexec, or the embedded driver) reports: its artifact with the key it wrote. */
const reportArtifact = (pod: KubeObject, key: string) =>
  Effect.gen(function*() {
    const kube = yield* InMemoryKube
    const nodeId = pod.metadata.annotations!["workflows.argoproj.io/node-id"]!
    const env = executorEnvOf(pod)
    // owned by the workflow, as argoexec makes it (the controller reads no other)
    const ownerReferences = [{ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: env["ARGO_WORKFLOW_NAME"]!, uid: env["ARGO_WORKFLOW_UID"]! }]
    yield* kube.adminClient("cluster-1").create("workflowtaskresults", "remote", {
      apiVersion: "argoproj.io/v1alpha1",
      kind: "WorkflowTaskResult",
      metadata: { name: nodeId, namespace: "remote", labels: { [labelWorkflow]: pod.metadata.labels![labelWorkflow]!, [labelReportOutputsCompleted]: "true" }, ownerReferences },
      outputs: { artifacts: [{ name: "out", path: "/tmp/out", s3: { key } }] }
    } as KubeObject)
  })

describe("artifacts through the controller", () => {
  it("the configmap's artifactRepository: parsed, and a malformed one names its field", () => {
    const good = parseControllerConfig(cm({ artifactRepository: repositoryYaml }))
    assert.deepStrictEqual(good.errors, [])
    assert.deepStrictEqual(good.config.artifactRepository, {
      s3: { bucket: "art", endpoint: "s3.local:9000", insecure: true, accessKeySecret: { name: "s3-cred", key: "accesskey" }, secretKeySecret: { name: "s3-cred", key: "secretkey" } }
    })
    const bad = parseControllerConfig(cm({ cluster: "main", artifactRepository: "s3:\n  insecure: maybe\n  accessKeySecret: {name: x}\ngcs:\n  bucket: b\n" }))
    assert.strictEqual(bad.config.cluster, "main")
    assert.isUndefined(bad.config.artifactRepository)
    assert.deepStrictEqual(bad.errors.map((e) => e.message), [
      "configmap argo/workflow-controller-configmap key \"artifactRepository.gcs\": gcs artifact repositories are not supported (only s3)",
      "configmap argo/workflow-controller-configmap key \"artifactRepository.s3.bucket\": is required",
      "configmap argo/workflow-controller-configmap key \"artifactRepository.s3.insecure\": must be true or false, got \"maybe\"",
      "configmap argo/workflow-controller-configmap key \"artifactRepository.s3.accessKeySecret.key\": must be a non-empty string (the key in the Secret)"
    ])
  })

  it.live("a step's output artifact written in cluster-1/remote reaches the next step's pod on main, with the repository's credentials mounted", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = crossCluster("art-mc")
        const { admin, controller } = yield* Embedded.start(Embedded.placementOf([wf]), fast({ configData: { artifactRepository: repositoryYaml } }))
        yield* submit(admin, wf)
        const producer = yield* podIn("cluster-1", "remote", "art-mc")
        const tmpl = argoTemplate(producer)
        // the producer's key: the default layout {{workflow.name}}/{{pod.name}}
        assert.deepStrictEqual(tmpl.archiveLocation.s3.key, `art-mc/${producer.metadata.name}`)
        assert.strictEqual(tmpl.archiveLocation.s3.bucket, "art")
        // credentials are read where the pod runs: a Secret volume in cluster-1/remote, never copied
        assert.deepInclude((producer.spec as any).volumes, { name: "s3-cred", secret: { secretName: "s3-cred", items: [{ key: "accesskey", path: "accesskey" }, { key: "secretkey", path: "secretkey" }] } })
        const key = `art-mc/${producer.metadata.name}/out.tgz`
        yield* reportArtifact(producer, key)

        const done = yield* untilCompleted(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        const consumer = yield* podIn("main", "local", "art-mc")
        assert.deepStrictEqual(argoTemplate(consumer).inputs.artifacts, [{ name: "in", path: "/in", s3: { key } }])
        assert.strictEqual(argoTemplate(consumer).archiveLocation.s3.bucket, "art")
        const mounts = ((consumer.spec as any).containers as Array<any>).find((c) => c.name === "main").volumeMounts
        assert.deepInclude(mounts, { name: "input-artifacts", mountPath: "/in", subPath: "in" })
        assert.deepStrictEqual((done!["status"] as any).artifactRepositoryRef, { default: true, artifactRepository: parseControllerConfig(cm({ artifactRepository: repositoryYaml })).config.artifactRepository })
      })
    ), 60_000)

  it.live("spec.artifactRepositoryRef: the ConfigMap of the workflow's namespace, recorded in status.artifactRepositoryRef", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = crossCluster("art-ref", { artifactRepositoryRef: { key: "team" } })
        const { admin, controller } = yield* Embedded.start(Embedded.placementOf([wf]), fast({ configData: { artifactRepository: repositoryYaml } }))
        yield* admin.create("configmaps", "local", {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "artifact-repositories", namespace: "local" },
          data: { team: "s3:\n  bucket: team-bucket\n  endpoint: s3.team:9000\n  keyFormat: \"team/{{workflow.name}}/{{pod.name}}\"\n" }
        } as KubeObject)
        yield* submit(admin, wf)
        const producer = yield* podIn("cluster-1", "remote", "art-ref")
        assert.deepStrictEqual(argoTemplate(producer).archiveLocation, {
          archiveLogs: false,
          s3: { bucket: "team-bucket", endpoint: "s3.team:9000", key: `team/art-ref/${producer.metadata.name}` }
        })
        yield* reportArtifact(producer, `team/art-ref/${producer.metadata.name}/out.tgz`)
        const done = yield* untilCompleted(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded")
        assert.deepStrictEqual((done!["status"] as any).artifactRepositoryRef, {
          namespace: "local",
          configMap: "artifact-repositories",
          key: "team",
          artifactRepository: { s3: { bucket: "team-bucket", endpoint: "s3.team:9000", keyFormat: "team/{{workflow.name}}/{{pod.name}}" } }
        })
      })
    ), 60_000)

  it.live("a malformed configmap repository: logged with its field, the controller serves on, and a workflow with artifacts errors 'not configured'", () =>
    inMemory((logs) =>
      Effect.gen(function*() {
        const wf = crossCluster("art-bad")
        const { admin, controller } = yield* Embedded.start(Embedded.placementOf([wf]), fast({ configData: { artifactRepository: "s3:\n  endpoint: x\n" } }))
        assert.isTrue(logs.lines.some((l) => l.includes("artifactRepository.s3.bucket")), logs.lines.join("\n"))
        yield* submit(admin, wf)
        const done = yield* untilCompleted(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Failed")
        const nodes = Object.values((done!["status"] as any).nodes) as Array<any>
        assert.include(nodes.find((n) => n.displayName === "gen").message, "artifact storage is not configured")
      })
    ), 60_000)
})
