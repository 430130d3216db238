/**
 * Parameters from ConfigMaps (`valueFrom.configMapKeyRef`) in the pure engine, driven as the
 * controller's Reconciler drives it: a run that lists ConfigMaps in `needConfigMaps` is run again
 * with them read (found or not) in `configMaps`.
 */
import { describe, expect, it } from "vitest"
import type { ConfigMapRead, EngineOutput } from "../../../src/workflow/engine/contract.js"
import { reconcile } from "../../../src/workflow/engine/reconcile.js"
import { Sim, workflow } from "./harness.js"

const labelled = { "workflows.argoproj.io/configmap-type": "Parameter" }
const simpleParameters: ConfigMapRead = { found: true, labels: labelled, data: { msg: "hello world" } }

/** A Sim whose ConfigMaps are read on demand, as the Reconciler reads them. */
class ConfigMapSim extends Sim {
  readonly store = new Map<string, ConfigMapRead>()
  passes = 0
  override tick(): EngineOutput {
    const read = new Map<string, ConfigMapRead>()
    let out: EngineOutput
    this.passes = 0
    for (;;) {
      this.passes++
      out = reconcile({ workflow: this.wf, pods: this.pods, taskResults: this.taskResults, now: this.now, config: this.cfg, configMaps: read })
      const need = (out.needConfigMaps ?? []).filter((n) => !read.has(n))
      if (need.length === 0) break
      for (const n of need) read.set(n, this.store.get(n) ?? { found: false })
    }
    this.wf = { ...this.wf, metadata: { ...this.wf.metadata, labels: { ...this.wf.metadata.labels, ...out.labels } }, status: out.status }
    this.last = out
    return out
  }
}

const echo = (arg: string) => ({ image: "busybox", command: ["echo"], args: [arg] })
const ref = (name: string, key: string, extra: Record<string, unknown> = {}) => ({ configMapKeyRef: { name, key }, ...extra })

/** examples/arguments-parameters-from-configmap.yaml */
const inputFromConfigMap = (name = "simple-parameters", key = "msg", extra: Record<string, unknown> = {}) =>
  workflow({
    entrypoint: "print",
    templates: [{ name: "print", inputs: { parameters: [{ name: "message", valueFrom: ref(name, key, extra) }] }, container: echo("{{inputs.parameters.message}}") }]
  })

/** examples/global-parameters-from-configmap.yaml (and, with `local`, ...-referenced-as-local-variable.yaml) */
const globalFromConfigMap = (local: boolean, extra: Record<string, unknown> = {}) =>
  workflow({
    entrypoint: "print",
    arguments: { parameters: [{ name: "message", valueFrom: ref("simple-parameters", "msg", extra) }] },
    templates: [
      local
        ? { name: "print", inputs: { parameters: [{ name: "message" }] }, container: echo("{{inputs.parameters.message}}") }
        : { name: "print", container: echo("{{workflow.parameters.message}}") }
    ]
  })

const argsOf = (sim: Sim) => {
  const pod = sim.creates()[0]!.pod as unknown as { spec: { containers: Array<{ name: string; args?: Array<string> }> } }
  return pod.spec.containers.find((c) => c.name === "main")!.args
}

describe("parameters from ConfigMaps", () => {
  it("an input parameter's value is read from its ConfigMap key (one more engine pass)", () => {
    const sim = new ConfigMapSim(inputFromConfigMap())
    sim.store.set("simple-parameters", simpleParameters)
    const out = sim.tick()
    expect(sim.passes).toBe(2)
    expect(out.needConfigMaps).toBeUndefined()
    expect(argsOf(sim)).toContain("hello world")
  })

  it("a workflow argument from a ConfigMap sets workflow.parameters and is passed to the entrypoint's inputs", () => {
    for (const local of [false, true]) {
      const sim = new ConfigMapSim(globalFromConfigMap(local))
      sim.store.set("simple-parameters", simpleParameters)
      sim.tick()
      expect(argsOf(sim)).toContain("hello world")
    }
  })

  it("a missing ConfigMap errors with upstream's messages", () => {
    const sim = new ConfigMapSim(inputFromConfigMap())
    const out = sim.tick()
    expect(out.status["phase"]).toBe("Error")
    expect(out.status["message"]).toBe(
      "unable to retrieve inputs.parameters.message from ConfigMap: ConfigMap 'simple-parameters' does not exist. Please make sure it has the label workflows.argoproj.io/configmap-type: Parameter to be detectable by the controller"
    )
    const global = new ConfigMapSim(globalFromConfigMap(false))
    const g = global.tick()
    expect(g.status["phase"]).toBe("Error")
    expect(g.status["message"]).toBe(
      "failed to set global parameter message from configmap with name simple-parameters and key msg: ConfigMap 'simple-parameters' does not exist. Please make sure it has the label workflows.argoproj.io/configmap-type: Parameter to be detectable by the controller"
    )
  })

  it("a missing key, or a ConfigMap without upstream's label, errors", () => {
    const sim = new ConfigMapSim(inputFromConfigMap("simple-parameters", "other"))
    sim.store.set("simple-parameters", simpleParameters)
    expect(sim.tick().status["message"]).toBe("unable to retrieve inputs.parameters.message from ConfigMap: ConfigMap 'simple-parameters' does not have the key 'other'")
    const unlabelled = new ConfigMapSim(inputFromConfigMap())
    unlabelled.store.set("simple-parameters", { found: true, labels: {}, data: { msg: "x" } })
    expect(unlabelled.tick().status["message"]).toBe(
      "unable to retrieve inputs.parameters.message from ConfigMap: ConfigMap 'simple-parameters' needs to have the label workflows.argoproj.io/configmap-type: Parameter to load parameters"
    )
  })

  it("valueFrom.default is used when the ConfigMap or its key does not exist", () => {
    const sim = new ConfigMapSim(inputFromConfigMap("absent", "msg", { default: "fallback" }))
    sim.tick()
    expect(argsOf(sim)).toContain("fallback")
    const global = new ConfigMapSim(globalFromConfigMap(false, { default: "global fallback" }))
    global.tick()
    expect(argsOf(global)).toContain("global fallback")
  })

  it("the ConfigMap's name and key are substituted with the global parameters", () => {
    const sim = new ConfigMapSim(workflow({
      entrypoint: "print",
      arguments: { parameters: [{ name: "cm", value: "simple-parameters" }] },
      templates: [{
        name: "print",
        inputs: { parameters: [{ name: "message", valueFrom: ref("{{workflow.parameters.cm}}", "msg") }] },
        container: echo("{{inputs.parameters.message}}")
      }]
    }))
    sim.store.set("simple-parameters", simpleParameters)
    sim.tick()
    expect(argsOf(sim)).toContain("hello world")
  })

  it("a step's argument from a ConfigMap is the callee's input", () => {
    const sim = new ConfigMapSim(workflow({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "a", template: "print", arguments: { parameters: [{ name: "message", valueFrom: ref("simple-parameters", "msg") }] } }]] },
        { name: "print", inputs: { parameters: [{ name: "message" }] }, container: echo("{{inputs.parameters.message}}") }
      ]
    }))
    sim.store.set("simple-parameters", simpleParameters)
    sim.tick()
    expect(argsOf(sim)).toContain("hello world")
  })

  it("a configMapKeyRef naming another namespace ('ns/name') is never read: NotFound, with why (valueFrom.default applies)", () => {
    const s = new ConfigMapSim(inputFromConfigMap("kube-system/secret-config", "msg"))
    s.store.set("kube-system/secret-config", simpleParameters)
    const out = s.tick()
    expect(out.needConfigMaps).toBeUndefined()
    expect(s.passes).toBe(1)
    expect(s.creates(out)).toEqual([])
    expect(String(out.status["message"])).toContain(
      "unable to retrieve inputs.parameters.message from ConfigMap: ConfigMap 'kube-system/secret-config' does not exist: 'kube-system/secret-config' is not a valid ConfigMap name"
    )
    // a workflow argument likewise
    const g = new ConfigMapSim(workflow({
      entrypoint: "print",
      arguments: { parameters: [{ name: "message", valueFrom: ref("kube-system/secret-config", "msg") }] },
      templates: [{ name: "print", container: echo("{{workflow.parameters.message}}") }]
    }))
    g.store.set("kube-system/secret-config", simpleParameters)
    const gout = g.tick()
    expect(gout.needConfigMaps).toBeUndefined()
    expect(g.creates(gout)).toEqual([])
    expect(String(gout.status["message"])).toContain("is not a valid ConfigMap name")
    // with a default: the default, as upstream's NotFound
    const d = new ConfigMapSim(inputFromConfigMap("kube-system/secret-config", "msg", { default: "fallback" }))
    d.store.set("kube-system/secret-config", simpleParameters)
    const dout = d.tick()
    expect(argsOf(d)).toEqual(["fallback"])
    expect(dout.needConfigMaps).toBeUndefined()
  })

  it("a run not given the ConfigMap lists it and decides nothing for good from it", () => {
    const out = reconcile({ workflow: inputFromConfigMap(), pods: new Map(), taskResults: new Map(), now: Date.parse("2025-01-01T00:00:00Z"), config: new Sim(inputFromConfigMap()).cfg })
    expect(out.needConfigMaps).toEqual(["simple-parameters"])
  })
})
