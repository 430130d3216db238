import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { lookupImage, parseControllerConfig } from "../../src/controller/ControllerConfig.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { clusterLabelValue } from "../../src/workflow/engine/targeting.js"
import { completed, fast, inMemory, provisioned, workflow } from "./harness.js"
import { submit } from "./fixtures.js"
import { formatArgoLine } from "../../src/observability/ArgoLogger.js"

const cm = (data: Record<string, string>) => ({ metadata: { namespace: "argo", name: "workflow-controller-configmap" }, data })

describe("workflow-controller-configmap", () => {
  it("reads top-level keys, each a YAML string", () => {
    const { config, errors } = parseControllerConfig(cm({
      cluster: "main",
      namespace: "local",
      instanceID: "i1",
      parallelism: "3",
      executor: "image: my/argoexec:v1\n",
      images: "docker/whalesay:\n  cmd: [cowsay]\n",
      userKubeconfig: "allowInsecureSkipTlsVerify: true\n"
    }))
    assert.deepStrictEqual(errors, [])
    assert.strictEqual(config.cluster, "main")
    assert.strictEqual(config.namespace, "local")
    assert.strictEqual(config.instanceId, "i1")
    assert.strictEqual(config.parallelism, 3)
    assert.strictEqual(config.executorImage, "my/argoexec:v1")
    assert.deepStrictEqual(config.images["docker/whalesay"], { cmd: ["cowsay"] })
    assert.isTrue(config.allowInsecureSkipTlsVerify)
  })

  it("httpTemplates: where http templates may go; by default neither local nor private addresses; a bad value is named and falls back to that", () => {
    assert.deepStrictEqual(parseControllerConfig(cm({ cluster: "main" })).config.httpTemplates, { allowLoopbackAndLinkLocal: false, allowPrivateNetworks: false })
    const open = parseControllerConfig(cm({ cluster: "main", httpTemplates: "allowPrivateNetworks: true\n" }))
    assert.deepStrictEqual(open.errors, [])
    assert.deepStrictEqual(open.config.httpTemplates, { allowLoopbackAndLinkLocal: false, allowPrivateNetworks: true })
    const bad = parseControllerConfig(cm({ cluster: "main", httpTemplates: "allowPrivateNetworks: yes please\n" }))
    assert.deepStrictEqual(bad.errors.map((e) => e.message), ['configmap argo/workflow-controller-configmap key "httpTemplates": allowPrivateNetworks must be true or false'])
    assert.isFalse(bad.config.httpTemplates.allowPrivateNetworks)
  })

  it("metricsConfig.metricsTTL: upstream's <n>s|m|h|d, default 0 (never); a bad one is named and stays 0", () => {
    assert.strictEqual(parseControllerConfig(undefined).config.metricsTtlMs, 0)
    assert.strictEqual(parseControllerConfig(cm({ metricsConfig: "enabled: true\npath: /metrics\n" })).config.metricsTtlMs, 0)
    for (const [text, ms] of [["10m", 600_000], ["30s", 30_000], ["1h", 3_600_000], ["2d", 172_800_000], ["", 0]] as const) {
      const { config, errors } = parseControllerConfig(cm({ metricsConfig: `metricsTTL: "${text}"\n` }))
      assert.deepStrictEqual(errors, [])
      assert.strictEqual(config.metricsTtlMs, ms, text)
    }
    const bad = parseControllerConfig(cm({ metricsConfig: "metricsTTL: 1h30m\n" }))
    assert.deepStrictEqual(bad.errors.map((e) => e.message), ['configmap argo/workflow-controller-configmap key "metricsConfig.metricsTTL": must be a duration such as "10m", "1h" or "1d", got "1h30m"'])
    assert.strictEqual(bad.config.metricsTtlMs, 0)
  })

  it("reads the old single `config` key; top-level keys win", () => {
    const { config, errors } = parseControllerConfig(cm({
      config: "cluster: old\nparallelism: 2\nimages:\n  busybox:\n    cmd: [sh]\n",
      cluster: "main"
    }))
    assert.deepStrictEqual(errors, [])
    assert.strictEqual(config.cluster, "main")
    assert.strictEqual(config.parallelism, 2)
    assert.deepStrictEqual(config.images["busybox"], { cmd: ["sh"] })
  })

  it("a malformed key is reported with the configmap and key named, the rest still loads", () => {
    const { config, errors } = parseControllerConfig(cm({ cluster: "main", images: "docker/whalesay: [unclosed", parallelism: "-1" }))
    assert.strictEqual(config.cluster, "main")
    assert.deepStrictEqual(config.images, {})
    assert.strictEqual(config.parallelism, 0)
    const messages = errors.map((e) => e.message)
    assert.isTrue(messages.some((m) => m.startsWith("configmap argo/workflow-controller-configmap key \"images\": invalid YAML")), messages.join("\n"))
    assert.isTrue(messages.some((m) => m.includes("key \"parallelism\"")), messages.join("\n"))
  })

  it("reads `limits` over the defaults; a bad or unknown limit is named and keeps its default", () => {
    const { config, errors } = parseControllerConfig(cm({
      limits: "maxNodes: 1000\nmaxDepth: -3\nmaxBogus: 1\nexpression:\n  maxSteps: 500\n  maxStringLength: 1.5\n"
    }))
    assert.deepStrictEqual(config.limits, { maxNodes: 1000, expression: { maxSteps: 500 } })
    const messages = errors.map((e) => e.message)
    assert.deepStrictEqual(messages, [
      "configmap argo/workflow-controller-configmap key \"limits.maxDepth\": must be a positive integer, got -3",
      "configmap argo/workflow-controller-configmap key \"limits.maxBogus\": unknown limit (known: maxNodes, maxLoopItems, maxDepth, maxStatusBytes, maxReconcileSteps)",
      "configmap argo/workflow-controller-configmap key \"limits.expression.maxStringLength\": must be a positive integer, got 1.5"
    ])
  })

  it("the limits documented (commented) in k8s/manager/configmap.yaml are the defaults", async () => {
    const fs = await import("node:fs")
    const { defaultEngineLimits } = await import("../../src/workflow/engine/limits.js")
    const text = fs.readFileSync(new URL("../../k8s/manager/configmap.yaml", import.meta.url), "utf8")
    const block = text.split("\n").filter((l) => /^ {2}# {3}/.test(l)).map((l) => l.slice(6)).join("\n")
    const { config, errors } = parseControllerConfig(cm({ limits: block }))
    assert.deepStrictEqual(errors, [])
    assert.deepStrictEqual({ ...config.limits, expression: { ...config.limits.expression } }, defaultEngineLimits)
  })

  it("defaults without a configmap; the unset cluster is Argo's @in-cluster", () => {
    const { config, errors } = parseControllerConfig(undefined)
    assert.deepStrictEqual(errors, [])
    assert.strictEqual(config.cluster, "@in-cluster")
  })

  it("a cluster name or instanceID that cannot be a label value is reported; the default stays", () => {
    const { config, errors } = parseControllerConfig(cm({ cluster: "my cluster", instanceID: "team a" }))
    assert.strictEqual(config.cluster, "@in-cluster")
    assert.isUndefined(config.instanceId)
    const messages = errors.map((e) => e.message)
    assert.isTrue(messages.some((m) => m.startsWith(`configmap argo/workflow-controller-configmap key "cluster": "my cluster" is not a valid label value`)), messages.join("\n"))
    assert.isTrue(messages.some((m) => m.startsWith(`configmap argo/workflow-controller-configmap key "instanceID": "team a" is not a valid label value`)), messages.join("\n"))
  })

  it("the default cluster @in-cluster is written as the label value in-cluster", () => {
    assert.strictEqual(clusterLabelValue("@in-cluster"), "in-cluster")
    assert.strictEqual(clusterLabelValue("main"), "main")
  })

  it("looks images up with or without :latest", () => {
    const images = { "docker/whalesay": { cmd: ["cowsay"] }, "busybox:latest": { cmd: ["sh"] } }
    assert.deepStrictEqual(lookupImage(images, "docker/whalesay:latest"), { cmd: ["cowsay"] })
    assert.deepStrictEqual(lookupImage(images, "busybox"), { cmd: ["sh"] })
    assert.isUndefined(lookupImage(images, "alpine"))
  })
})

describe("the default configuration", () => {
  it.live("a configmap without `cluster`: local and remote pods are created, watched and the workflow Succeeds", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const wf = workflow({ name: "defaults", steps: [{}, { cluster: "cluster-1", namespace: "remote" }] })
        const { admin, kube } = yield* provisioned([wf])
        // The operator applied the configmap with no `cluster` key (only the images).
        const configMap = yield* admin.get("configmaps", "argo", "workflow-controller-configmap")
        const { cluster: _, ...data } = configMap["data"] as Record<string, string>
        yield* admin.replace("configmaps", "argo", { ...configMap, data })
        const { controller } = yield* Embedded.startController(fast())
        assert.strictEqual(controller.config.cluster, "@in-cluster")
        yield* submit(admin, wf)
        const done = yield* completed(controller, wf)
        assert.strictEqual(Embedded.phaseOf(done), "Succeeded", JSON.stringify(done?.["status"]))
        for (const cluster of ["main", "cluster-1"]) {
          const pods = yield* kube.adminClient(cluster).list("pods", undefined)
          assert.isTrue(pods.items.length > 0, `no pod in ${cluster}`)
          for (const pod of pods.items) assert.strictEqual(pod.metadata.labels?.["workflows.argoproj.io/cluster"], "in-cluster")
        }
      })
    ))
})

describe("which configmap, and the keys that name the controller's pods", () => {
  const replaceConfigMap = (admin: Embedded.StartResult["admin"], name: string, data: Record<string, string>) =>
    admin.create("configmaps", "argo", { apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: "argo", name }, data })

  it.live("--configmap NAME: the controller reads that configmap", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const { admin } = yield* provisioned([workflow({ name: "unused" })])
        yield* replaceConfigMap(admin, "flotilla-config", { cluster: "elsewhere" })
        const { controller } = yield* Embedded.startController(fast({ controller: { configMapName: "flotilla-config" } }))
        assert.strictEqual(controller.config.cluster, "elsewhere")
      })
    ))

  it.live("an invalid cluster or instanceID stops the start, naming the key (it would claim another controller's pods)", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const { admin } = yield* provisioned([workflow({ name: "unused" })])
        yield* replaceConfigMap(admin, "bad-cluster", { cluster: "my cluster" })
        yield* replaceConfigMap(admin, "bad-instance", { cluster: "main", instanceID: "team a" })
        yield* replaceConfigMap(admin, "explicit-default", { cluster: '"@in-cluster"' })
        const badCluster = yield* Effect.flip(Embedded.startController(fast({ controller: { configMapName: "bad-cluster" } })))
        assert.include(String((badCluster as Error).message), `key "cluster": "my cluster" is not a valid label value`)
        const badInstance = yield* Effect.flip(Embedded.startController(fast({ controller: { configMapName: "bad-instance" } })))
        assert.include(String((badInstance as Error).message), `key "instanceID": "team a" is not a valid label value`)
        const { controller } = yield* Embedded.startController(fast({ controller: { configMapName: "explicit-default" } }))
        assert.strictEqual(controller.config.cluster, "@in-cluster")
      })
    ))
})

describe("log lines", () => {
  it("match the seed's msg=cluster lines (logrus text format)", () => {
    const date = new Date("2021-08-27T14:10:56.273Z")
    assert.strictEqual(
      formatArgoLine({ date, level: "Info", message: "cluster", annotations: { cluster: "cluster-1", managedNamespace: "remote" } }),
      `time="2021-08-27T14:10:56.273Z" level=info msg=cluster cluster=cluster-1 managedNamespace=remote`
    )
    assert.strictEqual(
      formatArgoLine({ date, level: "Warn", message: "cluster unavailable", annotations: { cluster: "@in-cluster", managedNamespace: "" } }),
      `time="2021-08-27T14:10:56.273Z" level=warning msg="cluster unavailable" cluster=@in-cluster managedNamespace=`
    )
  })
})
