/**
 * `archiveLogs` (the repository's, the workflow's and a template's archiveLocation's): upstream's
 * `IsArchiveLogs`. The pod's template carries `archiveLocation.archiveLogs: true` and the
 * repository's location, and its executor saves the `main-logs` artifact; with no repository a
 * pod that would archive its logs errors at the field that asks for it.
 */
import { describe, expect, it } from "vitest"
import type { EngineConfig } from "../../../src/workflow/engine/contract.js"
import { config, container, envOf, Sim, workflow } from "./harness.js"

const hello = { image: "busybox", command: ["echo"], args: ["hello world"] }
const withRepo = (archiveLogs?: boolean): EngineConfig => ({
  ...config,
  artifactRepository: { ...(archiveLogs !== undefined ? { archiveLogs } : {}), s3: { bucket: "my-bucket", endpoint: "minio:9000", insecure: true } }
})
const templateOf = (sim: Sim) => JSON.parse(envOf(container(sim.creates()[0]!.pod, "main"), "ARGO_TEMPLATE")!)

describe("archiveLogs", () => {
  it("spec.archiveLogs with no repository errors the node at its field, before any pod (upstream: artifact storage is not configured)", () => {
    const sim = new Sim(workflow({ archiveLogs: true, entrypoint: "hello-world", templates: [{ name: "hello-world", container: hello }] }))
    sim.configMapStore = new Map()
    const out = sim.tick()
    expect(sim.creates(out)).toEqual([])
    expect(out.status["phase"]).toBe("Error")
    expect(String(out.status["message"])).toMatch(/^spec\.archiveLogs: artifact storage is not configured/)
  })

  it("spec.archiveLogs with a repository: the pod's template has the repository's location with archiveLogs (upstream's workflow-archive-logs.yaml)", () => {
    const sim = new Sim(workflow({ archiveLogs: true, entrypoint: "hello-world", templates: [{ name: "hello-world", container: hello }] }))
    sim.configMapStore = new Map()
    sim.cfg = withRepo()
    const out = sim.tick()
    expect(out.status["phase"]).toBe("Running")
    const pod = sim.creates(out)[0]!.pod
    expect(templateOf(sim).archiveLocation).toEqual({
      archiveLogs: true,
      s3: { bucket: "my-bucket", endpoint: "minio:9000", insecure: true, key: `wf/${pod.metadata.name}` }
    })
    expect(out.status["artifactRepositoryRef"]).toEqual({ default: true, artifactRepository: withRepo().artifactRepository })
    // the wait container reports the main-logs artifact: the node waits for its task result
    expect((out.status["taskResultsCompletionStatus"] as Record<string, boolean>)[sim.creates(out)[0]!.nodeId]).toBe(false)
  })

  it("a template's archiveLocation.archiveLogs wins over the workflow's", () => {
    const on = new Sim(workflow({ entrypoint: "a", templates: [{ name: "a", archiveLocation: { archiveLogs: true }, container: hello }] }))
    on.configMapStore = new Map()
    expect(String(on.tick().status["message"])).toMatch(/^templates\.a\.archiveLocation\.archiveLogs: artifact storage is not configured/)
    const off = new Sim(workflow({ archiveLogs: true, entrypoint: "a", templates: [{ name: "a", archiveLocation: { archiveLogs: false }, container: hello }] }))
    off.configMapStore = new Map()
    const out = off.tick()
    expect(out.status["phase"]).toBe("Running")
    expect(off.creates(out)).toHaveLength(1)
    expect(templateOf(off).archiveLocation).toEqual({ archiveLogs: false })
  })

  it("the repository's archiveLogs wins over a template's false (upstream's IsArchiveLogs)", () => {
    const sim = new Sim(workflow({ entrypoint: "a", templates: [{ name: "a", archiveLocation: { archiveLogs: false }, container: hello }] }))
    sim.configMapStore = new Map()
    sim.cfg = withRepo(true)
    sim.tick()
    expect(templateOf(sim).archiveLocation.archiveLogs).toBe(true)
  })

  it("templates that make no pod archive nothing", () => {
    const sim = new Sim(workflow({ archiveLogs: true, entrypoint: "s", templates: [{ name: "s", suspend: {} }] }))
    expect(sim.tick().status["phase"]).toBe("Running")
  })
})
