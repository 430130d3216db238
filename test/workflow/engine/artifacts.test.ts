/**
 * Artifacts, the engine's rules (engine/artifacts.ts): the repository and its record in
 * `status.artifactRepositoryRef`, `archiveLocation` with the keyFormat substituted, input artifacts
 * bound from `from` / `fromExpression` / `s3` / `raw` / `http`, `optional`, the pod's secret and
 * input-artifact volumes, and output artifacts in node outputs and `status.outputs.artifacts`.
 */
import { describe, expect, it } from "vitest"
import type { ConfigMapRead, EngineConfig } from "../../../src/workflow/engine/contract.js"
import { reconcile } from "../../../src/workflow/engine/reconcile.js"
import { config, container, envOf, Sim, workflow } from "./harness.js"

const repo = { s3: { bucket: "my-bucket", endpoint: "minio:9000", insecure: true, accessKeySecret: { name: "my-minio-cred", key: "accesskey" }, secretKeySecret: { name: "my-minio-cred", key: "secretkey" } } }
const withRepo: EngineConfig = { ...config, artifactRepository: repo }
const argoTemplate = (pod: any) => JSON.parse(envOf(container(pod, "main"), "ARGO_TEMPLATE")!)
const sim = (spec: Record<string, unknown>, cfg: EngineConfig = withRepo, store: Map<string, ConfigMapRead> = new Map()) => {
  const s = new Sim(workflow(spec))
  s.cfg = cfg
  s.configMapStore = store
  return s
}

const whalesay = { image: "docker/whalesay:latest", command: ["sh", "-c"], args: ["cowsay hello | tee /tmp/hello_world.txt"] }
const artifactPassing = {
  entrypoint: "artifact-example",
  templates: [
    {
      name: "artifact-example",
      steps: [
        [{ name: "generate-artifact", template: "hello-world-to-file" }],
        [{ name: "consume-artifact", template: "print-message-from-file", arguments: { artifacts: [{ name: "message", from: "{{steps.generate-artifact.outputs.artifacts.hello-art}}" }] } }]
      ]
    },
    { name: "hello-world-to-file", container: whalesay, outputs: { artifacts: [{ name: "hello-art", path: "/tmp/hello_world.txt" }] } },
    { name: "print-message-from-file", inputs: { artifacts: [{ name: "message", path: "/tmp/message" }] }, container: { image: "alpine:latest", command: ["sh", "-c"], args: ["cat /tmp/message"] } }
  ]
}

describe("artifacts: the repository", () => {
  it("without a ref: the configmap's artifactRepository, recorded as default in status.artifactRepositoryRef", () => {
    const s = sim(artifactPassing)
    const out = s.tick()
    expect(out.status["artifactRepositoryRef"]).toEqual({ default: true, artifactRepository: repo })
    const pod = s.creates(out)[0]!.pod
    expect(argoTemplate(pod).archiveLocation).toEqual({
      archiveLogs: false,
      s3: { ...repo.s3, key: `wf/${pod.metadata.name}` }
    })
  })

  it("the namespace's artifact-repositories with its default annotation wins over the configmap's", () => {
    const store = new Map<string, ConfigMapRead>([["artifact-repositories", {
      found: true,
      labels: {},
      annotations: { "workflows.argoproj.io/default-artifact-repository": "team" },
      data: { team: "s3:\n  bucket: team-bucket\n  endpoint: s3.team:9000\n  keyFormat: \"{{workflow.namespace}}/{{workflow.creationTimestamp.Y}}/{{pod.name}}\"\n" }
    }]])
    const s = sim(artifactPassing, withRepo, store)
    const out = s.tick()
    expect(out.status["artifactRepositoryRef"]).toEqual({
      namespace: "argo",
      configMap: "artifact-repositories",
      key: "team",
      artifactRepository: { s3: { bucket: "team-bucket", endpoint: "s3.team:9000", keyFormat: "{{workflow.namespace}}/{{workflow.creationTimestamp.Y}}/{{pod.name}}" } }
    })
    const pod = s.creates(out)[0]!.pod
    expect(argoTemplate(pod).archiveLocation.s3).toEqual({ bucket: "team-bucket", endpoint: "s3.team:9000", key: `argo/2025/${pod.metadata.name}` })
  })

  it("spec.artifactRepositoryRef: its ConfigMap and key; no key falls back to the annotation, else \"\" (missing: no default-v1)", () => {
    const cm = (annotations: Record<string, string>): ConfigMapRead => ({
      found: true,
      labels: {},
      annotations,
      data: { "default-v1": "s3:\n  bucket: v1\n", "my-key": "s3:\n  bucket: mine\n", other: "s3:\n  bucket: other\n" }
    })
    const bucketOf = (ref: Record<string, unknown>, annotations: Record<string, string>) => {
      const s = sim({ ...artifactPassing, artifactRepositoryRef: ref }, config, new Map([["my-repos", cm(annotations)]]))
      return argoTemplate(s.tick() && s.creates()[0]!.pod).archiveLocation.s3.bucket
    }
    expect(bucketOf({ configMap: "my-repos", key: "my-key" }, {})).toBe("mine")
    expect(bucketOf({ configMap: "my-repos" }, { "workflows.argoproj.io/default-artifact-repository": "other" })).toBe("other")
    // neither key nor annotation: upstream's key is "", which the ConfigMap lacks
    const s = sim({ ...artifactPassing, artifactRepositoryRef: { configMap: "my-repos" } }, config, new Map([["my-repos", cm({})]]))
    const out = s.tick()
    expect(s.creates(out)).toEqual([])
    expect(String(s.node("wf[0].generate-artifact")!.message)).toMatch(/failed to find any artifact repository: config map missing key "" \(ConfigMap "my-repos" in namespace "argo"\)/)
  })

  it("spec.artifactRepositoryRef: the workflow's namespace first, then the controller's (NotFound or a missing key: the next)", () => {
    const cfg: EngineConfig = { ...config, controllerNamespace: "flotilla-system" }
    const repos = (data: Record<string, string>): ConfigMapRead => ({ found: true, labels: {}, annotations: {}, data })
    // "flotilla-system/<name>" in these stores: the controller namespace's ConfigMap (needControllerConfigMaps)
    const run = (both: Map<string, ConfigMapRead>) => {
      const own = new Map([...both].filter(([k]) => !k.startsWith("flotilla-system/")))
      const ctl = new Map([...both].filter(([k]) => k.startsWith("flotilla-system/")).map(([k, v]) => [k.slice("flotilla-system/".length), v]))
      const s = sim({ ...artifactPassing, artifactRepositoryRef: { configMap: "repos", key: "k" } }, cfg, own)
      s.controllerConfigMapStore = ctl
      const out = s.tick()
      return { s, out }
    }
    // the workflow's namespace has it: the controller's is not even read
    const own = run(new Map([["repos", repos({ k: "s3:\n  bucket: own\n" })], ["flotilla-system/repos", repos({ k: "s3:\n  bucket: ctl\n" })]]))
    expect(argoTemplate(own.s.creates(own.out)[0]!.pod).archiveLocation.s3.bucket).toBe("own")
    expect(own.out.status["artifactRepositoryRef"]).toMatchObject({ namespace: "argo", configMap: "repos", key: "k" })
    // not found in the workflow's namespace
    const notFound = run(new Map([["repos", { found: false }], ["flotilla-system/repos", repos({ k: "s3:\n  bucket: ctl\n" })]]))
    expect(argoTemplate(notFound.s.creates(notFound.out)[0]!.pod).archiveLocation.s3.bucket).toBe("ctl")
    expect(notFound.out.status["artifactRepositoryRef"]).toMatchObject({ namespace: "flotilla-system", configMap: "repos", key: "k" })
    // found there without the key
    const noKey = run(new Map([["repos", repos({ other: "s3:\n  bucket: x\n" })], ["flotilla-system/repos", repos({ k: "s3:\n  bucket: ctl\n" })]]))
    expect(argoTemplate(noKey.s.creates(noKey.out)[0]!.pod).archiveLocation.s3.bucket).toBe("ctl")
    // in neither: the error names the ConfigMap, both namespaces and the key
    const neither = run(new Map([["repos", { found: false }], ["flotilla-system/repos", repos({ other: "s3:\n  bucket: x\n" })]]))
    expect(neither.s.creates(neither.out)).toEqual([])
    const message = String(neither.s.node("wf[0].generate-artifact")!.message)
    expect(message).toContain('ConfigMap "repos" not found in namespace "argo"')
    expect(message).toContain('config map missing key "k" (ConfigMap "repos" in namespace "flotilla-system")')
  })

  it("spec.artifactRepositoryRef: the workflow's namespace's ConfigMap is asked for first (the controller's only when that one fails)", () => {
    const s = new Sim(workflow({ ...artifactPassing, artifactRepositoryRef: { configMap: "repos" } }))
    s.cfg = { ...config, controllerNamespace: "flotilla-system" }
    const out = s.tick()
    expect(out.needConfigMaps).toEqual(["repos"])
  })

  it("spec.artifactRepositoryRef to a missing ConfigMap, a missing key or a bad value errors, naming the field", () => {
    const run = (store: Map<string, ConfigMapRead>, ref: Record<string, unknown> = {}) => {
      const s = sim({ ...artifactPassing, artifactRepositoryRef: ref }, config, store)
      const out = s.tick()
      expect(s.creates(out)).toEqual([])
      expect(out.status["phase"]).toBe("Failed")
      return String(s.node("wf[0].generate-artifact")!.message)
    }
    expect(run(new Map())).toMatch(/^spec\.artifactRepositoryRef: failed to find any artifact repository: ConfigMap "artifact-repositories" not found in namespace "argo"/)
    const cm: ConfigMapRead = { found: true, labels: {}, data: { "default-v1": "s3:\n  endpoint: x\n  insecure: maybe\n" } }
    expect(run(new Map([["artifact-repositories", cm]]), { key: "nope" })).toMatch(/config map missing key "nope"/)
    const bad = run(new Map([["artifact-repositories", cm]]), { key: "default-v1" })
    expect(bad).toContain('ConfigMap "artifact-repositories" key "default-v1": default-v1.s3.bucket: is required')
    expect(bad).toContain('default-v1.s3.insecure: must be true or false')
    expect(bad).toContain('(namespace "argo")')
    const gcs: ConfigMapRead = { found: true, labels: {}, data: { "default-v1": "gcs:\n  bucket: b\n" } }
    expect(run(new Map([["artifact-repositories", gcs]]), { key: "default-v1" })).toContain("default-v1.gcs: gcs artifact repositories are not supported (only s3)")
  })

  it("the controller namespace's ConfigMap is its own request, by plain name; a ConfigMap name with '/' is refused, never read", () => {
    const cfg: EngineConfig = { ...config, controllerNamespace: "flotilla-system" }
    const s = sim({ ...artifactPassing, artifactRepositoryRef: { configMap: "repos", key: "k" } }, cfg, new Map())
    s.controllerConfigMapStore = new Map()
    // one pass by hand: the workflow's namespace's read as not found, the controller's asked for by name
    const out = reconcile({ workflow: s.wf, pods: s.pods, taskResults: s.taskResults, now: s.now, config: cfg, configMaps: new Map([["repos", { found: false }]]) })
    expect(out.needConfigMaps).toBeUndefined()
    expect(out.needControllerConfigMaps).toEqual(["repos"])
    // another namespace in the name: an error naming the field, nothing asked for in any namespace
    const other = sim({ ...artifactPassing, artifactRepositoryRef: { configMap: "kube-system/repos", key: "k" } }, cfg, new Map())
    other.controllerConfigMapStore = new Map([["kube-system/repos", { found: true, labels: {}, data: { k: "s3:\n  bucket: stolen\n" } }]])
    const refused = other.tick()
    expect(refused.needConfigMaps).toBeUndefined()
    expect(refused.needControllerConfigMaps).toBeUndefined()
    expect(other.creates(refused)).toEqual([])
    expect(String(other.node("wf[0].generate-artifact")!.message)).toMatch(
      /^spec\.artifactRepositoryRef\.configMap: 'kube-system\/repos' is not a valid ConfigMap name/
    )
  })

  it("while the ConfigMap is unread the engine asks for it and creates nothing", () => {
    const s = new Sim(workflow(artifactPassing))
    s.cfg = withRepo
    const out = s.tick()
    expect(out.needConfigMaps).toEqual(["artifact-repositories"])
    expect(s.creates(out)).toEqual([])
  })

  it("no repository at all: a pod whose artifacts need one errors with upstream's message", () => {
    const s = sim(artifactPassing, config)
    const out = s.tick()
    expect(s.creates(out)).toEqual([])
    const node = s.node("wf[0].generate-artifact")!
    expect(node.phase).toBe("Error")
    expect(node.message).toContain("templates.hello-world-to-file artifacts: artifact storage is not configured")
    expect(node.message).toContain("You need to configure artifact storage")
  })

  it("a workflow without artifacts reads no repository and records none", () => {
    const s = new Sim(workflow({ entrypoint: "a", templates: [{ name: "a", container: { image: "busybox" } }] }))
    s.cfg = withRepo
    const out = s.tick()
    expect(out.needConfigMaps).toBeUndefined()
    expect(out.status["artifactRepositoryRef"]).toBeUndefined()
    expect(s.creates(out)).toHaveLength(1)
  })
})

describe("artifacts: passing between steps and tasks", () => {
  it("artifact-passing: the consumer's input is the producer's reported output, its path the input's", () => {
    const s = sim(artifactPassing)
    s.tick()
    const producer = s.apply(s.last, "Running")[0]!
    // the producer waits for its task result (the wait container reports the artifact)
    expect((s.last!.status["taskResultsCompletionStatus"] as Record<string, boolean>)[producer.nodeId]).toBe(false)
    const written = { name: "hello-art", path: "/tmp/hello_world.txt", s3: { key: `wf/${producer.pod.metadata.name}/hello-art.tgz` } }
    s.finish(producer.nodeId, true, { artifacts: [written] })
    const out = s.tick()
    expect(s.node("wf[0].generate-artifact")!.outputs.artifacts).toEqual([written])
    const consumer = s.creates(out).find((c) => c.nodeId !== producer.nodeId)!
    const tmpl = argoTemplate(consumer.pod)
    expect(tmpl.inputs.artifacts).toEqual([{ name: "message", path: "/tmp/message", s3: { key: `wf/${producer.pod.metadata.name}/hello-art.tgz` } }])
    // key-only: the repository completes it through archiveLocation
    expect(tmpl.archiveLocation.s3.bucket).toBe("my-bucket")
    // upstream's layout: input-artifacts volume, init at /argo/inputs/artifacts, main at the path with the artifact's subPath
    const spec = consumer.pod.spec as any
    expect(spec.volumes).toContainEqual({ name: "input-artifacts", emptyDir: {} })
    expect(container(consumer.pod, "init").volumeMounts).toContainEqual({ name: "input-artifacts", mountPath: "/argo/inputs/artifacts" })
    expect(container(consumer.pod, "main").volumeMounts).toContainEqual({ name: "input-artifacts", mountPath: "/tmp/message", subPath: "message" })
    // credentials: one volume per Secret, mounted read-only at /argo/secret/<name> in init and wait
    expect(spec.volumes).toContainEqual({ name: "my-minio-cred", secret: { secretName: "my-minio-cred", items: [{ key: "accesskey", path: "accesskey" }, { key: "secretkey", path: "secretkey" }] } })
    for (const c of ["init", "wait"]) {
      expect(container(consumer.pod, c).volumeMounts).toContainEqual({ name: "my-minio-cred", mountPath: "/argo/secret/my-minio-cred", readOnly: true })
    }
    expect(container(consumer.pod, "main").volumeMounts.some((m: any) => m.name === "my-minio-cred")).toBe(false)
  })

  it("the producer's wait container sees main's mounts under /mainctrfs", () => {
    const s = sim({ ...artifactPassing })
    s.tick()
    const pod = s.creates()[0]!.pod
    expect(container(pod, "wait").volumeMounts).toContainEqual({ name: "var-run-argo", mountPath: "/mainctrfs/var/run/argo", readOnly: false })
  })

  it("a missing required artifact errors the node with upstream's message; an optional one does not", () => {
    const s = sim(artifactPassing)
    s.tick()
    const producer = s.apply(s.last, "Running")[0]!
    s.finish(producer.nodeId, true, {})
    const out = s.tick()
    const consumer = s.node("wf[1].consume-artifact")!
    expect(consumer.phase).toBe("Error")
    expect(consumer.message).toBe('unable to resolve references: Unable to resolve: "steps.generate-artifact.outputs.artifacts.hello-art"')
    expect(s.creates(out).filter((c) => c.nodeId !== producer.nodeId)).toEqual([])

    const optional = structuredClone(artifactPassing) as any
    optional.templates[0].steps[1][0].arguments.artifacts[0].optional = true
    optional.templates[2].inputs.artifacts[0].optional = true
    const o = sim(optional)
    o.tick()
    const p2 = o.apply(o.last, "Running")[0]!
    o.finish(p2.nodeId, true, {})
    const out2 = o.tick()
    const c2 = o.creates(out2).find((c) => c.nodeId !== p2.nodeId)!
    expect(argoTemplate(c2.pod).inputs.artifacts).toEqual([{ name: "message", path: "/tmp/message", optional: true }])
    // no location: no mount at its path (upstream skips it)
    expect(container(c2.pod, "main").volumeMounts.some((m: any) => m.mountPath === "/tmp/message")).toBe(false)
  })

  it("an input with no argument and no location: 'inputs.artifacts.<name> was not supplied'", () => {
    const s = sim({ entrypoint: "print-message-from-file", templates: [artifactPassing.templates[2]] })
    const out = s.tick()
    expect(String(out.status["message"])).toContain("inputs.artifacts.message was not supplied")
  })

  it("DAG fromExpression (dag-conditional-artifacts) and subPath", () => {
    const s = sim({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          dag: {
            tasks: [
              { name: "gen", template: "gen" },
              {
                name: "use",
                depends: "gen",
                template: "use",
                arguments: { artifacts: [{ name: "in", fromExpression: "tasks.gen.status == 'Succeeded' ? tasks.gen.outputs.artifacts.out : nil", subPath: "dir/file.txt" }] }
              }
            ]
          }
        },
        { name: "gen", container: { image: "busybox" }, outputs: { artifacts: [{ name: "out", path: "/tmp/out" }] } },
        { name: "use", inputs: { artifacts: [{ name: "in", path: "/in" }] }, container: { image: "busybox" } }
      ]
    })
    s.tick()
    const gen = s.apply(s.last, "Running")[0]!
    s.finish(gen.nodeId, true, { artifacts: [{ name: "out", path: "/tmp/out", s3: { key: "wf/gen/out.tgz" } }] })
    const out = s.tick()
    const use = s.creates(out).find((c) => c.nodeId !== gen.nodeId)!
    expect(argoTemplate(use.pod).inputs.artifacts).toEqual([{ name: "in", path: "/in", s3: { key: "wf/gen/out.tgz/dir/file.txt" } }])
  })

  it("s3, raw and http inputs as written; other kinds are refused at their field", () => {
    const s = sim({
      entrypoint: "a",
      templates: [{
        name: "a",
        inputs: {
          artifacts: [
            { name: "r", path: "/r", raw: { data: "hello {{workflow.name}}" } },
            { name: "h", path: "/h", http: { url: "https://example.com/x" } },
            { name: "s", path: "/s", s3: { endpoint: "s3.example:9000", bucket: "b", key: "k", accessKeySecret: { name: "other", key: "a" }, secretKeySecret: { name: "other", key: "s" } } }
          ]
        },
        container: { image: "busybox" }
      }]
    })
    const out = s.tick()
    const pod = s.creates(out)[0]!.pod
    const tmpl = argoTemplate(pod)
    expect(tmpl.inputs.artifacts[0]).toEqual({ name: "r", path: "/r", raw: { data: "hello wf" } })
    // every input has a location: no archive location is needed (none read)
    expect(tmpl.archiveLocation).toBeUndefined()
    expect((pod.spec as any).volumes.map((v: any) => v.name)).toContain("other")

    const git = sim({ entrypoint: "a", templates: [{ name: "a", inputs: { artifacts: [{ name: "g", path: "/g", git: { repo: "https://x" } }] }, container: { image: "busybox" } }] })
    expect(String(git.tick().status["message"])).toBe("templates.a.inputs.artifacts.g.git: git artifacts are not supported (only s3, http and raw)")
  })

  it("a steps template's output artifact (from) with a globalName becomes status.outputs.artifacts and workflow.outputs.artifacts", () => {
    const s = sim({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [[{ name: "gen", template: "gen" }]],
          outputs: { artifacts: [{ name: "final", from: "{{steps.gen.outputs.artifacts.out}}", globalName: "result-art" }] }
        },
        { name: "gen", container: { image: "busybox" }, outputs: { artifacts: [{ name: "out", path: "/tmp/out", globalName: "pod-art" }] } }
      ]
    })
    s.tick()
    const gen = s.apply(s.last, "Running")[0]!
    s.finish(gen.nodeId, true, { artifacts: [{ name: "out", path: "/tmp/out", globalName: "pod-art", s3: { key: "wf/gen/out.tgz" } }] })
    const out = s.tick()
    expect(out.status["phase"]).toBe("Succeeded")
    expect((out.status["outputs"] as any).artifacts).toEqual([
      { name: "pod-art", s3: { key: "wf/gen/out.tgz" } },
      { name: "result-art", s3: { key: "wf/gen/out.tgz" } }
    ])
    expect(s.node("wf")!.outputs.artifacts).toEqual([{ name: "final", globalName: "result-art", s3: { key: "wf/gen/out.tgz" } }])
  })

  it("from: {{workflow.outputs.artifacts.<globalName>}} in a later step (global-outputs); the steps template's first substitution leaves it a reference", () => {
    const s = sim({
      entrypoint: "main",
      templates: [
        {
          name: "main",
          steps: [
            [{ name: "gen", template: "gen" }],
            [{ name: "use", template: "use", arguments: { artifacts: [{ name: "in", from: "{{workflow.outputs.artifacts.g}}" }] } }]
          ]
        },
        { name: "gen", container: { image: "busybox" }, outputs: { artifacts: [{ name: "out", path: "/tmp/out", globalName: "g" }] } },
        { name: "use", inputs: { artifacts: [{ name: "in", path: "/in" }] }, container: { image: "busybox" } }
      ]
    })
    s.tick()
    const gen = s.apply(s.last, "Running")[0]!
    s.finish(gen.nodeId, true, { artifacts: [{ name: "out", path: "/tmp/out", globalName: "g", s3: { key: "wf/gen/out.tgz" } }] })
    const out = s.tick()
    const use = s.creates(out).find((c) => c.nodeId !== gen.nodeId)!
    expect(argoTemplate(use.pod).inputs.artifacts).toEqual([{ name: "in", path: "/in", s3: { key: "wf/gen/out.tgz" } }])
  })

  it("workflow arguments' artifacts are the entrypoint's (arguments-artifacts)", () => {
    const s = sim({
      entrypoint: "k",
      arguments: { artifacts: [{ name: "kubectl", http: { url: "https://dl.k8s.io/kubectl" } }] },
      templates: [{ name: "k", inputs: { artifacts: [{ name: "kubectl", path: "/bin/kubectl", mode: 493 }] }, container: { image: "debian:9.4" } }]
    })
    const out = s.tick()
    expect(argoTemplate(s.creates(out)[0]!.pod).inputs.artifacts).toEqual([{ name: "kubectl", http: { url: "https://dl.k8s.io/kubectl" }, path: "/bin/kubectl", mode: 493 }])
  })
})
