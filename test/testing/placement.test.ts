/**
 * The embedded runtime provisions the clusters and namespaces a workflow's
 * templates name, inline templates included (however deep), so `flotilla
 * run` of a workflow whose only remote step is an inline template works.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"

describe("placementOf", () => {
  it("finds inline templates in steps and DAG tasks, nested", () => {
    const wf: KubeObject = {
      apiVersion: "argoproj.io/v1alpha1",
      kind: "Workflow",
      metadata: { name: "w", namespace: "local" },
      spec: {
        entrypoint: "main",
        templates: [{
          name: "main",
          steps: [[{
            name: "outer",
            inline: { dag: { tasks: [{ name: "inner", inline: { cluster: "cluster-3", namespace: "gpu", container: { image: "busybox" } } }] } }
          }]]
        }]
      }
    }
    const placement = Embedded.placementOf([wf])
    assert.isTrue(placement.clusters.has("cluster-3"))
    assert.isTrue(placement.namespaces.get("cluster-3")?.has("gpu"))
  })
})
