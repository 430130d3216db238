/**
 * `archiveLogs` (workflow and template level): it needs an artifact repository, which flotilla does
 * not have yet, so a pod that would archive its logs errors with the field that asks for it.
 */
import { describe, expect, it } from "vitest"
import { Sim, workflow } from "./harness.js"

const hello = { image: "busybox", command: ["echo"], args: ["hello world"] }

describe("archiveLogs", () => {
  it("spec.archiveLogs errors the workflow at its field, with 'not supported', before any pod (upstream's workflow-archive-logs.yaml)", () => {
    const sim = new Sim(workflow({ archiveLogs: true, entrypoint: "hello-world", templates: [{ name: "hello-world", container: hello }] }))
    const out = sim.tick()
    expect(sim.creates(out)).toEqual([])
    expect(out.status["phase"]).toBe("Error")
    expect(String(out.status["message"])).toMatch(/^spec\.archiveLogs: archiving logs is not supported/)
  })

  it("a template's archiveLocation.archiveLogs wins over the workflow's", () => {
    const on = new Sim(workflow({ entrypoint: "a", templates: [{ name: "a", archiveLocation: { archiveLogs: true }, container: hello }] }))
    expect(String(on.tick().status["message"])).toMatch(/^templates\.a\.archiveLocation\.archiveLogs: archiving logs is not supported/)
    const off = new Sim(workflow({ archiveLogs: true, entrypoint: "a", templates: [{ name: "a", archiveLocation: { archiveLogs: false }, container: hello }] }))
    const out = off.tick()
    expect(out.status["phase"]).toBe("Running")
    expect(off.creates(out)).toHaveLength(1)
  })

  it("templates that make no pod archive nothing", () => {
    const sim = new Sim(workflow({ archiveLogs: true, entrypoint: "s", templates: [{ name: "s", suspend: {} }] }))
    expect(sim.tick().status["phase"]).toBe("Running")
  })
})
