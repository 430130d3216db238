/**
 * The conformance suite's loading of test/conformance/examples (headers,
 * expectations, templates and their multi-cluster copies), without running
 * anything; the shared folder is replaced by an empty one.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const load = async () => {
  process.env["FLOTILLA_CONFORMANCE_DIR"] = fs.mkdtempSync(path.join(os.tmpdir(), "conformance-shared-"))
  delete process.env["FLOTILLA_CONFORMANCE_REPO_DIR"]
  delete process.env["FLOTILLA_CONFORMANCE_FILTER"]
  return await import("./suite.js")
}

type Json = Record<string, any>

describe("conformance suite: the repository's examples", () => {
  it("every file names its upstream origin and expected outcome; every example parses", async () => {
    const suite = await load()
    for (const file of fs.readdirSync(suite.repoExamplesDir)) {
      const text = fs.readFileSync(path.join(suite.repoExamplesDir, file), "utf8")
      expect(text, file).toMatch(/^# Origin: https:\/\/github\.com\/argoproj\/argo-workflows\/blob\/v4\.0\.5\//m)
      expect(text, file).toMatch(/^# Expected: /m)
    }
    const examples = suite.loadExamples()
    expect(examples.length).toBeGreaterThan(30)
    const byName = new Map(examples.map((ex) => [ex.name, ex]))
    expect(byName.get("wftmpl-templates")).toBeUndefined() // templates only
    expect(byName.get("hello-world")).toBeUndefined() // the shared folder is empty here
    expect(byName.get("timeouts-step")!.expect).toEqual({
      phase: "Failed",
      nodes: [{ displayName: "timeouts-step", phase: "Failed", message: "Pod was active on the node longer than the specified deadline" }],
      randomOutcome: false,
      randomOutputs: false,
      urls: [],
      notOnRealNodes: "the real nodes' argosay:v2 image is built on busybox and has no bash (upstream's has)"
    })
    expect(byName.get("parallelism-step-fail-fast")!.expect.message).toBe("template has failed or errored children and failFast enabled")
    expect(byName.get("retry-conditional")!.expect.randomOutcome).toBe(true)
    expect(byName.get("wftmpl-dag")!.expect.phase).toBe("Succeeded")
  })

  it("workflow names are valid (lower-cased file names); the multi-cluster run references the templates' multi-cluster copies", async () => {
    const suite = await load()
    const variants = suite.variantsOf(suite.loadExamples())
    expect(variants.find((v) => v.label === "dag-disable-failFast")!.wf.metadata.name).toBe("dag-disable-failfast")
    const remote = variants.find((v) => v.label === "cwftmpl-workflow-template-ref (multi-cluster)")!.wf
    expect(remote.metadata.namespace).toBe("argo-mc")
    expect((remote["spec"] as Json)["workflowTemplateRef"]).toEqual({ name: "cluster-workflow-template-submittable-mc", clusterScope: true })
    const local = variants.find((v) => v.label === "cwftmpl-workflow-template-ref")!.wf
    expect((local["spec"] as Json)["workflowTemplateRef"]).toEqual({ name: "cluster-workflow-template-submittable", clusterScope: true })
  })

  it("templates are created as written in argo, and moved to cluster-2/remote in argo-mc", async () => {
    const suite = await load()
    const support = suite.supportObjects()
    const find = (kind: string, name: string, ns?: string) =>
      support.find((o) => o.object.kind === kind && o.object.metadata.name === name && o.object.metadata.namespace === ns)
    const local = find("WorkflowTemplate", "workflow-template-print-message", "argo")!
    expect((local.object["spec"] as Json).templates[0].cluster).toBeUndefined()
    const remote = find("WorkflowTemplate", "workflow-template-print-message", "argo-mc")!
    expect((remote.object["spec"] as Json).templates[0]).toMatchObject({ cluster: "cluster-2", namespace: "remote" })
    const cwt = find("ClusterWorkflowTemplate", "cluster-workflow-template-inner-steps-mc")!
    expect(cwt.runsNamespace).toBe("argo-mc")
    const [printMessage, innerSteps] = (cwt.object["spec"] as Json).templates
    expect(printMessage).toMatchObject({ cluster: "cluster-2", namespace: "remote" })
    expect(innerSteps.cluster).toBeUndefined()
    expect(innerSteps.steps[0][0].templateRef).toEqual({ name: "cluster-workflow-template-print-message-mc", template: "print-message", clusterScope: true })
    expect(find("ClusterWorkflowTemplate", "cluster-workflow-template-inner-steps")!.runsNamespace).toBe("argo")
    // placement hints: every template object (not the ConfigMaps), in the namespace of the runs it serves
    const hints = suite.placementHints(support)
    expect(hints.length).toBe(support.filter((o) => o.object.kind !== "ConfigMap").length)
    expect(support.some((o) => o.object.kind === "ConfigMap" && o.object.metadata.name === "my-config" && o.object.metadata.namespace === "argo-mc")).toBe(true)
    expect(hints.every((h) => h.metadata.namespace === "argo" || h.metadata.namespace === "argo-mc")).toBe(true)
  })

  it("url lines point the examples' URLs at the loopback server; embedded-only and timeout lines parse", async () => {
    const suite = await load()
    const asWritten = new Map(suite.loadExamples().map((ex) => [ex.name, ex]))
    const hello = asWritten.get("http-hello-world")!
    expect(hello.expect.urls.map((u) => u.path)).toEqual(["/status/200", "/status/404"])
    expect(JSON.stringify(hello.workflow)).toContain("https://raw.githubusercontent.com/") // no base: as written
    const based = new Map(suite.loadExamples("http://127.0.0.1:9").map((ex) => [ex.name, ex]))
    const text = JSON.stringify(based.get("http-hello-world")!.workflow)
    expect(text).not.toContain("https://")
    expect(text).toContain("http://127.0.0.1:9/status/200")
    expect(text).toContain("http://127.0.0.1:9/status/404")
    // resource templates run on the real clusters too (their pods act with bound service-account tokens)
    expect(asWritten.get("k8s-patch-pod")!.expect.embeddedOnly).toBeUndefined()
    expect(suite.expectationOf("some.yaml", "# flotilla-conformance: embedded-only a reason\n").embeddedOnly).toBe("a reason")
    expect(asWritten.get("dag-inline-workflow")!.expect.embeddedOnly).toBeUndefined()
    expect(asWritten.get("parallelism-nested-workflow")!.expect.timeoutSeconds).toBe(240)
    expect(suite.timeoutFor(asWritten.get("parallelism-nested-workflow")!, 120)).toBe(240)
    expect(suite.timeoutFor(asWritten.get("dag-inline-workflow")!, 120)).toBe(120)
  })

  it("the loopback server answers /status/<code> and /body/<text>", async () => {
    const suite = await load()
    const server = await suite.startLoopbackServer()
    try {
      expect((await fetch(`${server.base}/status/201`)).status).toBe(201)
      const body = await fetch(`${server.base}/body/google`)
      expect([body.status, await body.text()]).toEqual([200, "google"])
      expect((await fetch(`${server.base}/other`)).status).toBe(404)
    } finally {
      await server.close()
    }
  })

  it("the multi-cluster run moves inline, containerSet and resource templates, but not a resource creating a Workflow nor http", async () => {
    const suite = await load()
    const remote = (label: string) => suite.variantsOf(suite.loadExamples()).find((v) => v.label === `${label} (multi-cluster)`)!.wf["spec"] as Json
    expect(remote("dag-inline-workflow").templates[0].dag.tasks[0].inline).toMatchObject({ cluster: "cluster-2", namespace: "remote" })
    expect(remote("steps-inline-workflow").templates[0].steps[0][0].inline).toMatchObject({ cluster: "cluster-2", namespace: "remote" })
    expect(remote("dag-inline-workflow").templates[0].cluster).toBeUndefined()
    expect(remote("dag-inline-workflow").templates[0].dag.tasks[0].inline).toMatchObject({ cluster: "cluster-2", namespace: "remote" })
    expect(remote("k8s-patch-pod").templates[0]).toMatchObject({ cluster: "cluster-2", namespace: "remote" })
    const wow = remote("workflow-of-workflows").templates as Array<Json>
    expect(wow.every((t) => t.cluster === undefined)).toBe(true) // its resources create Workflows: on main
    const http = (remote("http-hello-world").templates as Array<Json>).find((t) => t.name === "http")!
    expect(http.cluster).toBeUndefined()
    // a WorkflowTemplate's inline templates move in its multi-cluster copy
    const wt = suite.supportObjects().find((o) => o.object.kind === "WorkflowTemplate" && o.object.metadata.name === "dag-inline" && o.object.metadata.namespace === "argo-mc")!
    expect((wt.object["spec"] as Json).templates[0].dag.tasks[0].inline).toMatchObject({ cluster: "cluster-2", namespace: "remote" })
  })

  it("artifacts: s3 lines move the example's own locations to the driver's server and name its Secrets; the real clusters skip artifact examples", async () => {
    const suite = await load()
    const examples = suite.loadExamples(undefined, { endpoint: "127.0.0.1:9999" })
    const byName = new Map(examples.map((ex) => [ex.name, ex]))
    const input = byName.get("input-artifact-s3")!
    expect(input.expect.s3).toEqual([{ upstream: "s3.amazonaws.com", bucket: "my-bucket-name", key: "path/in/bucket" }])
    const s3 = (input.workflow["spec"] as Json).templates[0].inputs.artifacts[0].s3
    expect(s3).toMatchObject({ endpoint: "127.0.0.1:9999", insecure: true, region: "us-east-1", bucket: "my-bucket-name", key: "path/in/bucket" })
    expect(suite.s3SecretsOf(input)).toEqual([{ name: "my-s3-credentials", keys: new Map([["accessKey", "accessKey"], ["secretKey", "secretKey"]]) }])
    // as written without a server (the real clusters' driver)
    const asWritten = suite.loadExamples().find((ex) => ex.name === "output-artifact-s3")!
    expect((asWritten.workflow["spec"] as Json).templates[0].outputs.artifacts[0].s3.endpoint).toBe("s3.amazonaws.com")
    for (const name of ["artifact-passing", "key-only-artifact", "input-artifact-raw", "global-outputs", "artifact-gc-workflow"]) {
      expect(byName.get(name)!.expect.embeddedOnly, name).toBeUndefined()
      expect(suite.s3SecretsOf(byName.get(name)!), name).toEqual([])
    }
    expect(byName.get("steps-inline-workflow")!.expect.embeddedOnly).toBeUndefined()
    expect(byName.get("timeouts-step")!.expect.embeddedOnly).toBeUndefined()
  })

  it("variants: both, as written or multi-cluster; the longest runs start first, outcomes come back in order, report counts one run per example when one variant", async () => {
    const suite = await load()
    const { Effect } = await import("effect")
    const examples = suite.loadExamples().filter((ex) => ["continue-on-fail", "synchronization-mutex-wf-level", "dag-nested", "parallelism-nested-workflow"].includes(ex.name))
    expect(examples.length).toBe(4)
    expect(suite.variantsOf(examples).map((v) => v.label).slice(0, 2)).toEqual([examples[0]!.name, `${examples[0]!.name} (multi-cluster)`])
    expect(suite.variantsOf(examples, "multi-cluster").every((v) => v.label.endsWith("(multi-cluster)"))).toBe(true)
    expect(suite.variantsOf(examples, "as-written").map((v) => v.label)).toEqual(examples.map((ex) => ex.name))
    process.env["FLOTILLA_CONFORMANCE_VARIANTS"] = "sideways"
    expect(() => suite.variantChoice("both")).toThrow(/FLOTILLA_CONFORMANCE_VARIANTS=sideways/)
    delete process.env["FLOTILLA_CONFORMANCE_VARIANTS"]
    expect(suite.variantChoice("multi-cluster")).toBe("multi-cluster")

    const variants = suite.variantsOf(examples, "multi-cluster")
    const started: Array<string> = []
    const outcomes = await Effect.runPromise(suite.runVariants(variants, {
      attempt: (v) => Effect.sync(() => (started.push(v.ex.name), { label: v.label, ok: true })),
      remove: () => Effect.void
    }))
    // the two with a timeout line (480 s, then 240 s) first, the others after in their order
    expect(started).toEqual(["synchronization-mutex-wf-level", "parallelism-nested-workflow", ...examples.map((ex) => ex.name).filter((n) => !["synchronization-mutex-wf-level", "parallelism-nested-workflow"].includes(n))])
    expect(outcomes.map((o) => o.label)).toEqual(variants.map((v) => v.label))

    const lines: Array<string> = []
    const log = console.log
    console.log = (line: string) => void lines.push(line)
    try {
      expect(suite.report(examples, outcomes, [], [], "multi-cluster")).toBe(0)
      expect(() => suite.report(examples, outcomes)).toThrow(/4 outcomes for 4 examples/)
    } finally {
      console.log = log
    }
    expect(lines.at(-1)).toBe("4 passed, 0 failed")
  })
})
