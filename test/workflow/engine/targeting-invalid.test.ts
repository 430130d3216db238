/**
 * Hostile placements (issue 10): a template's final `cluster:`/`namespace:`
 * (its own, inherited, from templateDefaults or substituted from a parameter)
 * is checked before a pod is requested; an invalid one fails the node with a
 * message naming the field and the value, and no CreatePod is ever produced.
 */
import { assert, describe, it } from "@effect/vitest"
import { clusterProblem, namespaceProblem, resolveTarget } from "../../../src/workflow/engine/targeting.js"
import { decodeWorkflow } from "../../../src/workflow/model/decode.js"
import { Sim, workflow } from "./harness.js"

const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra, container: { image: "busybox", command: ["true"] } })

/** Runs the workflow to its end; every pod requested would succeed. */
const run = (spec: Record<string, unknown>) => {
  const sim = new Sim(workflow(spec))
  const created: Array<string> = []
  sim.runAll((create) => {
    created.push(`${create.cluster}/${create.namespace}`)
    return { ok: true }
  })
  return { sim, created }
}

const badNamespaces: ReadonlyArray<readonly [string, unknown]> = [
  ["parent directory", ".."],
  ["a slash", "a/b"],
  ["upper case", "Remote"],
  ["64 characters", "a".repeat(64)],
  ["a leading dash", "-remote"],
  ["a dot", "re.mote"],
  ["a line break", "remote\nX-Injected: 1"],
  ["a space", "re mote"]
]

const badClusters: ReadonlyArray<readonly [string, unknown]> = [
  ["a slash", "a/b"],
  ["a space", "cluster one"],
  ["64 characters", "c".repeat(64)],
  ["a trailing dot", "cluster-1."],
  ["a line break", "cluster-1\n"],
  ["a colon (an EKS ARN)", "arn:aws:eks:eu-west-1:1:cluster/x"]
]

describe("invalid template targets fail the node instead of creating a pod", () => {
  for (const [what, value] of badNamespaces) {
    it(`namespace with ${what}`, () => {
      const { created, sim } = run({ entrypoint: "a", templates: [c("a", { cluster: "cluster-1", namespace: value })] })
      assert.deepStrictEqual(created, [])
      const node = sim.node("wf")!
      assert.strictEqual(node.phase, "Error")
      assert.include(node.message, "invalid namespace")
      assert.include(node.message, `template "a"`)
      assert.include(node.message, JSON.stringify(value))
      assert.strictEqual((sim.wf.status as { phase?: string }).phase, "Error")
    })
  }

  for (const [what, value] of badClusters) {
    it(`cluster with ${what}`, () => {
      const { created, sim } = run({ entrypoint: "a", templates: [c("a", { cluster: value, namespace: "remote" })] })
      assert.deepStrictEqual(created, [])
      const node = sim.node("wf")!
      assert.strictEqual(node.phase, "Error")
      assert.include(node.message, "invalid cluster")
      assert.include(node.message, JSON.stringify(value))
    })
  }

  it("a value that is not a string stops the workflow at decoding, naming the field", () => {
    for (const [field, value] of [["namespace", 5], ["cluster", ["cluster-1"]]] as const) {
      const { created, sim } = run({ entrypoint: "a", templates: [c("a", { [field]: value })] })
      assert.deepStrictEqual(created, [])
      const status = sim.wf.status as { phase?: string; message?: string }
      assert.strictEqual(status.phase, "Error")
      assert.include(status.message, `spec.templates[0].${field}`)
    }
  })

  it("valid names still go through: label-value clusters, @in-cluster, RFC 1123 namespaces", () => {
    for (const cluster of ["cluster-1", "Cluster_1.eu", "@in-cluster", "c".repeat(63)]) {
      const { created } = run({ entrypoint: "a", templates: [c("a", { cluster, namespace: "n".repeat(63) })] })
      assert.deepStrictEqual(created, [`${cluster}/${"n".repeat(63)}`])
    }
  })

  it("a namespace substituted from an input parameter is checked after substitution", () => {
    const spec = (ns: string) => ({
      entrypoint: "main",
      templates: [
        { name: "main", steps: [[{ name: "go", template: "leaf", arguments: { parameters: [{ name: "ns", value: ns }] } }]] },
        c("leaf", { inputs: { parameters: [{ name: "ns" }] }, cluster: "cluster-1", namespace: "{{inputs.parameters.ns}}" })
      ]
    })
    const bad = run(spec("../kube-system"))
    assert.deepStrictEqual(bad.created, [])
    const node = bad.sim.node("wf[0].go")!
    assert.strictEqual(node.phase, "Error")
    assert.include(node.message, `invalid namespace "../kube-system" (namespace of template "leaf")`)
    assert.deepStrictEqual(run(spec("remote")).created, ["cluster-1/remote"])
  })

  it("an inherited namespace and a templateDefaults cluster are checked too, naming where they came from", () => {
    const inherited = run({
      entrypoint: "main",
      templates: [{ name: "main", namespace: "Team/A", steps: [[{ name: "go", template: "leaf" }]] }, c("leaf")]
    })
    assert.deepStrictEqual(inherited.created, [])
    assert.include(inherited.sim.node("wf[0].go")!.message, `invalid namespace "Team/A" (namespace of a steps or DAG template calling "leaf")`)

    const defaults = run({ entrypoint: "a", templateDefaults: { cluster: "no such/cluster" }, templates: [c("a")] })
    assert.deepStrictEqual(defaults.created, [])
    assert.include(defaults.sim.node("wf")!.message, `invalid cluster "no such/cluster" (cluster of template "a" or spec.templateDefaults)`)
  })

  it("one invalid target fails only its own node; siblings still run", () => {
    const { created, sim } = run({
      entrypoint: "main",
      templates: [
        { name: "main", dag: { tasks: [{ name: "good", template: "good" }, { name: "bad", template: "bad" }] } },
        c("good", { namespace: "remote" }),
        c("bad", { namespace: "UPPER" })
      ]
    })
    assert.deepStrictEqual(created, ["main/remote"])
    assert.strictEqual(sim.node("wf.good")!.phase, "Succeeded")
    assert.strictEqual(sim.node("wf.bad")!.phase, "Error")
  })

  it("resolveTarget, namespaceProblem and clusterProblem directly", () => {
    const decoded = decodeWorkflow(workflow({ entrypoint: "a", templates: [c("a", { namespace: "a/b" })] }))
    assert.ok(decoded.ok)
    if (!decoded.ok) return
    const target = resolveTarget(decoded.value.spec.templates[0], decoded.value, "main")
    assert.deepInclude(target, { _tag: "InvalidTarget", field: "namespace", value: "a/b" })
    // The workflow's own namespace and the configured local cluster are accepted as they are.
    assert.deepStrictEqual(resolveTarget({ name: "x", cluster: "@weird local" }, decoded.value, "@weird local"), {
      cluster: "@weird local",
      namespace: "argo"
    })
    assert.isUndefined(namespaceProblem("remote"))
    assert.isDefined(namespaceProblem(".."))
    assert.isUndefined(clusterProblem("@in-cluster"))
    assert.isDefined(clusterProblem(""))
    assert.isDefined(clusterProblem("@other"))
  })
})
