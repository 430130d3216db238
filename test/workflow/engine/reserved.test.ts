/**
 * A workflow may not write the fields that say whose pod a pod is (issue 10,
 * "a pod can pose as another workflow's pod"): reserved labels and
 * annotations in pod metadata, and podSpecPatch touching the executor. The
 * workflow errors with the field path, before any pod exists.
 */
import { assert, describe, it } from "@effect/vitest"
import { lintWorkflow } from "../../../src/workflow/lint/lint.js"
import { Sim, workflow } from "./harness.js"

const leaf = (extra: Record<string, unknown> = {}) => ({
  name: "main",
  container: { image: "busybox", command: ["true"] },
  ...extra
})

const errorsAtDecode = (spec: Record<string, unknown>) => {
  const sim = new Sim(workflow(spec))
  const out = sim.tick()
  assert.strictEqual(out.status["phase"], "Error")
  assert.deepStrictEqual(sim.creates(out), [], "no pod is requested")
  return String(out.status["message"])
}

describe("reserved pod metadata", () => {
  it("the spoofing template of the probe: workflow label, namespace and node annotations", () => {
    const message = errorsAtDecode({
      entrypoint: "main",
      templates: [leaf({
        metadata: {
          labels: { "workflows.argoproj.io/workflow": "victim" },
          annotations: { "workflows.argoproj.io/workflow-namespace": "team-b", "workflows.argoproj.io/node-id": "victim" }
        }
      })]
    })
    assert.strictEqual(
      message,
      // every reserved key is named, not only the first
      "spec.templates[0].metadata.labels[\"workflows.argoproj.io/workflow\"]: label \"workflows.argoproj.io/workflow\" is reserved for the controller (it says whose pod a pod is); " +
        "spec.templates[0].metadata.annotations[\"workflows.argoproj.io/workflow-namespace\"]: annotation \"workflows.argoproj.io/workflow-namespace\" is reserved for the controller (it says whose pod a pod is); " +
        "spec.templates[0].metadata.annotations[\"workflows.argoproj.io/node-id\"]: annotation \"workflows.argoproj.io/node-id\" is reserved for the controller (it says whose pod a pod is)"
    )
  })

  it("the cluster label (which would hide the pod from the watch), in spec.podMetadata", () => {
    const message = errorsAtDecode({
      entrypoint: "main",
      podMetadata: { labels: { "workflows.argoproj.io/cluster": "elsewhere" } },
      templates: [leaf()]
    })
    assert.include(message, "spec.podMetadata.labels[\"workflows.argoproj.io/cluster\"]")
  })

  it("in templateDefaults.metadata, in any letter case", () => {
    const message = errorsAtDecode({
      entrypoint: "main",
      templateDefaults: { metadata: { annotations: { "Workflows.ArgoProj.io/node-id": "n" } } },
      templates: [leaf()]
    })
    assert.include(message, "spec.templateDefaults.metadata.annotations[\"Workflows.ArgoProj.io/node-id\"]")
  })

  it("upstream's user-facing keys of the domain stay the user's (sidecar kill command)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      podMetadata: { annotations: { "workflows.argoproj.io/kill-cmd-istio-proxy": "[\"pilot-agent\", \"request\", \"POST\", \"quitquitquit\"]" } },
      templates: [leaf()]
    }))
    const out = sim.tick()
    assert.strictEqual(out.status["phase"], "Running")
    assert.strictEqual(sim.creates(out)[0]!.pod.metadata.annotations?.["workflows.argoproj.io/kill-cmd-istio-proxy"], "[\"pilot-agent\", \"request\", \"POST\", \"quitquitquit\"]")
  })

  it("lint names every reserved field, not only the first", () => {
    const issues = lintWorkflow(workflow({
      entrypoint: "main",
      podMetadata: { annotations: { "workflows.argoproj.io/workflow-namespace": "team-b" } },
      templates: [leaf({ metadata: { labels: { "workflows.argoproj.io/controller-instanceid": "other" } } })]
    }))
    const paths = issues.map((i) => i.path)
    assert.include(paths, "spec.podMetadata.annotations[\"workflows.argoproj.io/workflow-namespace\"]")
    assert.include(paths, "spec.templates[0].metadata.labels[\"workflows.argoproj.io/controller-instanceid\"]")
  })

  it("other keys, and reserved keys on the workflow's own metadata, are fine", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      podMetadata: { labels: { team: "a" }, annotations: { "example.com/x": "1" } },
      templates: [leaf({ metadata: { labels: { app: "x" } } })]
    }))
    const out = sim.tick()
    assert.strictEqual(out.status["phase"], "Running")
    const pod = sim.creates(out)[0]!.pod
    assert.strictEqual(pod.metadata.labels?.["team"], "a")
    assert.strictEqual(pod.metadata.labels?.["app"], "x")
    assert.strictEqual(pod.metadata.labels?.["workflows.argoproj.io/workflow"], "wf")
    assert.strictEqual(pod.metadata.annotations?.["example.com/x"], "1")
  })
})

describe("podSpecPatch", () => {
  it("may not patch the executor's containers, ARGO_* variables or volumes", () => {
    assert.include(
      errorsAtDecode({
        entrypoint: "main",
        templates: [leaf({ podSpecPatch: "{\"containers\":[{\"name\":\"wait\",\"image\":\"evil\"}]}" })]
      }),
      "spec.templates[0].podSpecPatch.containers[0].name: container \"wait\" is the executor's"
    )
    assert.include(
      errorsAtDecode({
        entrypoint: "main",
        podSpecPatch: "containers:\n- name: main\n  env:\n  - name: ARGO_NODE_ID\n    value: victim\n",
        templates: [leaf()]
      }),
      "spec.podSpecPatch.containers[0].env[0]: environment variable \"ARGO_NODE_ID\" is reserved"
    )
    assert.include(
      errorsAtDecode({
        entrypoint: "main",
        templates: [leaf({ podSpecPatch: "{\"volumes\":[{\"name\":\"var-run-argo\",\"hostPath\":{\"path\":\"/\"}}]}" })]
      }),
      "spec.templates[0].podSpecPatch.volumes[0].name: volume \"var-run-argo\" is the executor's"
    )
  })

  it("a patch that is neither JSON nor YAML is an error, not silently skipped", () => {
    assert.include(
      errorsAtDecode({ entrypoint: "main", templates: [leaf({ podSpecPatch: "containers: [unclosed" })] }),
      "spec.templates[0].podSpecPatch: not JSON or YAML"
    )
  })

  it("YAML patches apply, as upstream's pod-spec-patch example writes them", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [leaf({ podSpecPatch: "containers:\n- name: main\n  resources:\n    limits:\n      cpu: \"2\"\n" })]
    }))
    const pod = sim.creates(sim.tick())[0]!.pod
    const main = (pod["spec"] as { containers: Array<{ name: string; resources?: unknown }> }).containers.find((c) => c.name === "main")
    assert.deepStrictEqual(main?.resources, { limits: { cpu: "2" } })
  })

  it("a reserved field that arrives through a parameter errors the node after substitution", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      arguments: { parameters: [{ name: "patch", value: "{\"containers\":[{\"name\":\"init\",\"image\":\"evil\"}]}" }] },
      templates: [leaf({ podSpecPatch: "{{workflow.parameters.patch}}" })]
    }))
    const out = sim.tick()
    assert.deepStrictEqual(sim.creates(out), [], "no pod is requested")
    const nodes = Object.values(out.status["nodes"] as Record<string, { phase: string; message?: string }>)
    assert.strictEqual(nodes[0]?.phase, "Error")
    assert.include(nodes[0]?.message ?? "", "spec.templates[0].podSpecPatch.containers[0].name: container \"init\" is the executor's")
  })

  it("merges strategically, as upstream: env by name keeps the executor's ARGO_* variables, volumes and mounts are added", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [leaf({
        podSpecPatch: JSON.stringify({
          containers: [{ name: "main", env: [{ name: "EXTRA", value: "1" }], volumeMounts: [{ name: "data", mountPath: "/data" }] }],
          volumes: [{ name: "data", emptyDir: {} }]
        })
      })]
    }))
    const pod = sim.creates(sim.tick())[0]!.pod
    const spec = pod["spec"] as { containers: Array<any>; volumes: Array<any> }
    const main = spec.containers.find((c) => c.name === "main")
    const env = main.env.map((e: any) => e.name)
    assert.include(env, "EXTRA")
    assert.include(env, "ARGO_NODE_ID")
    assert.include(main.volumeMounts.map((m: any) => m.mountPath), "/var/run/argo")
    assert.include(main.volumeMounts.map((m: any) => m.mountPath), "/data")
    assert.includeMembers(spec.volumes.map((v) => v.name), ["var-run-argo", "data"])
  })

  it("reads YAML as upstream's Go parser (YAML 1.1: 0644 is octal)", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      templates: [leaf({ podSpecPatch: "volumes:\n- name: cfg\n  configMap:\n    name: c\n    defaultMode: 0644\n" })]
    }))
    const pod = sim.creates(sim.tick())[0]!.pod
    const cfg = (pod["spec"] as { volumes: Array<any> }).volumes.find((v) => v.name === "cfg")
    assert.strictEqual(cfg.configMap.defaultMode, 420)
  })

  it("null may not delete the executor's containers, volumes or a container's env", () => {
    assert.include(
      errorsAtDecode({ entrypoint: "main", templates: [leaf({ podSpecPatch: "{\"initContainers\": null}" })] }),
      "spec.templates[0].podSpecPatch.initContainers: may not be null"
    )
    assert.include(
      errorsAtDecode({ entrypoint: "main", templates: [leaf({ podSpecPatch: "{\"containers\": [{\"name\": \"main\", \"env\": null}]}" })] }),
      "spec.templates[0].podSpecPatch.containers[0].env: may not be null"
    )
  })

  it("the workflow's podSpecPatch gets its global variables", () => {
    const sim = new Sim(workflow({
      entrypoint: "main",
      arguments: { parameters: [{ name: "cpu", value: "3" }] },
      podSpecPatch: "{\"containers\":[{\"name\":\"main\",\"resources\":{\"limits\":{\"cpu\":\"{{workflow.parameters.cpu}}\"}}}]}",
      templates: [leaf()]
    }))
    const pod = sim.creates(sim.tick())[0]!.pod
    const main = (pod["spec"] as { containers: Array<any> }).containers.find((c) => c.name === "main")
    assert.deepStrictEqual(main.resources, { limits: { cpu: "3" } })
  })
})
