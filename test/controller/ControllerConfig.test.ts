import { assert, describe, it } from "@effect/vitest"
import { lookupImage, parseControllerConfig } from "../../src/controller/ControllerConfig.js"
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

  it("defaults without a configmap; the unset cluster is Argo's @in-cluster", () => {
    const { config, errors } = parseControllerConfig(undefined)
    assert.deepStrictEqual(errors, [])
    assert.strictEqual(config.cluster, "@in-cluster")
  })

  it("looks images up with or without :latest", () => {
    const images = { "docker/whalesay": { cmd: ["cowsay"] }, "busybox:latest": { cmd: ["sh"] } }
    assert.deepStrictEqual(lookupImage(images, "docker/whalesay:latest"), { cmd: ["cowsay"] })
    assert.deepStrictEqual(lookupImage(images, "busybox"), { cmd: ["sh"] })
    assert.isUndefined(lookupImage(images, "alpine"))
  })
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
