import { assert, describe, it } from "@effect/vitest"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { isArtifactGcPod } from "../../src/kubelet/artifactGcPod.js"

const pod = (opts: {
  readonly labels?: Record<string, string>
  readonly annotations?: Record<string, string>
  readonly command?: ReadonlyArray<string>
  readonly args?: ReadonlyArray<string>
}): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "ns", labels: opts.labels ?? {}, annotations: opts.annotations ?? {} },
  spec: {
    containers: [{ name: "main", image: "quay.io/argoproj/argoexec:v4.0.5", ...(opts.command ? { command: opts.command } : {}), ...(opts.args ? { args: opts.args } : {}) }]
  }
} as KubeObject)

const gcMeta = {
  labels: { "workflows.argoproj.io/component": "artifact-gc", "workflows.argoproj.io/workflow": "wf" },
  annotations: { "workflows.argoproj.io/artifact-gc-strategy": "OnWorkflowCompletion" }
}

describe("isArtifactGcPod", () => {
  it("the controller's GC pod: upstream's label and annotation, args `artifact delete`", () => {
    assert.isTrue(isArtifactGcPod(pod({ ...gcMeta, args: ["artifact", "delete", "--loglevel", "info"] })))
    assert.isTrue(isArtifactGcPod(pod({ ...gcMeta, command: ["argoexec"], args: ["artifact", "delete"] })))
    assert.isTrue(isArtifactGcPod(pod({ ...gcMeta, command: ["/bin/argoexec"], args: ["artifact", "delete"] })))
  })

  it("a user's container whose argv contains `artifact delete` is a normal container", () => {
    assert.isFalse(isArtifactGcPod(pod({ command: ["tool"], args: ["artifact", "delete"] })))
    assert.isFalse(isArtifactGcPod(pod({ args: ["artifact", "delete"] })))
    assert.isFalse(isArtifactGcPod(pod({ command: ["tool", "artifact", "delete"] })))
  })

  it("the labels alone are not enough: the argv must be argoexec's", () => {
    assert.isFalse(isArtifactGcPod(pod({ ...gcMeta, command: ["tool"], args: ["artifact", "delete"] })))
    assert.isFalse(isArtifactGcPod(pod({ ...gcMeta, args: ["x", "artifact", "delete"] })))
    assert.isFalse(isArtifactGcPod(pod({ ...gcMeta, args: ["artifact", "get"] })))
  })

  it("argoexec's argv without the component label or the strategy annotation is not a GC pod", () => {
    assert.isFalse(isArtifactGcPod(pod({ annotations: gcMeta.annotations, args: ["artifact", "delete"] })))
    assert.isFalse(isArtifactGcPod(pod({ labels: gcMeta.labels, args: ["artifact", "delete"] })))
    assert.isFalse(isArtifactGcPod(pod({ labels: { "workflows.argoproj.io/component": "other" }, annotations: gcMeta.annotations, args: ["artifact", "delete"] })))
  })
})
