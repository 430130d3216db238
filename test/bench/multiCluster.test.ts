import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parse } from "yaml"
import { type AuditLine, clusterEnv, controllerUser, flotillaNodeArgs } from "../../bench/compare.js"
import {
  clusterOf,
  clusterRequests,
  clusters,
  type MultiClusterFigures,
  multiClusterTable,
  multiClusterWorkflowOf,
  parseMultiClusterArgs,
  setupOf,
  workflowUser
} from "../../bench/multiCluster.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

const line = (id: string, verb: string, user: string, at: string, resource?: string): AuditLine => ({
  auditID: id,
  verb,
  user: { username: user },
  requestReceivedTimestamp: at,
  ...(resource === undefined ? {} : { objectRef: { resource } })
})

describe("bench multi-cluster", () => {
  it("spreads the workflows evenly over main, cluster-1 and cluster-2", () => {
    const counts = new Map<string, number>()
    for (let i = 0; i < 999; i++) counts.set(clusterOf(i), (counts.get(clusterOf(i)) ?? 0) + 1)
    assert.deepStrictEqual([...counts.entries()], [["main", 333], ["cluster-1", 333], ["cluster-2", 333]])
  })

  it("puts a remote workflow's one pod in its cluster's managed namespace, on a kwok node, as service account workflow", () => {
    const local = multiClusterWorkflowOf("wf-0", 0, "wl", "remote")
    const remote = multiClusterWorkflowOf("wf-2", 2, "wl", "remote")
    type Spec = { serviceAccountName: string; nodeSelector: Record<string, string>; templates: Array<Record<string, unknown>> }
    const [l, r] = [local.spec as Spec, remote.spec as Spec]
    assert.notProperty(l.templates[0], "cluster")
    assert.strictEqual(r.templates[0]!["cluster"], "cluster-2")
    assert.strictEqual(r.templates[0]!["namespace"], "remote")
    assert.strictEqual(r.serviceAccountName, "workflow")
    assert.deepStrictEqual(r.nodeSelector, { type: "kwok" })
    // the completer completes the pods: kwok must not
    assert.notInclude(JSON.stringify(remote), "e2e.flotilla.dev/outcome")
  })

  it("each pass has namespaces of its own, the system namespace is the audited identity's", () => {
    const [a, b] = [setupOf("limited"), setupOf("unlimited")]
    assert.notStrictEqual(a.workflowNamespaces[0], b.workflowNamespaces[0])
    assert.notStrictEqual(a.remoteNamespace, b.remoteNamespace)
    assert.strictEqual(`system:serviceaccount:${a.systemNamespace}:controller`, controllerUser("flotilla"))
  })

  it("starts three clusters with the bench's env", () => {
    assert.strictEqual(clusterEnv(2, clusters)["FLOTILLA_CLUSTERS"], "main cluster-1 cluster-2")
    assert.strictEqual(clusterEnv(2, clusters)["FLOTILLA_REAL_NODES"], "")
  })

  it("the audit policy records the workflow user's pod creates (the remote pods flotilla makes with the user's credentials)", () => {
    const policy = parse(fs.readFileSync(path.join(repoRoot, "scripts/clusters/audit-policy.yaml"), "utf8")) as {
      rules: Array<{ level: string; users?: Array<string>; verbs?: Array<string>; resources?: Array<{ group: string; resources: Array<string> }> }>
    }
    const podWrites = policy.rules.find((r) => r.users === undefined && r.level !== "None" && r.resources?.some((g) => g.group === "" && g.resources.includes("pods")))
    assert.isDefined(podWrites)
    assert.include(podWrites!.verbs ?? [], "create")
  })

  it("counts a cluster's requests of the controller and of the workflow user, per workflow placed there and per workflow of the run", () => {
    const me = controllerUser("flotilla")
    const lines = [
      line("a", "watch", me, "2026-01-01T00:00:01Z", "pods"),
      line("a", "watch", me, "2026-01-01T00:00:01Z", "pods"),
      line("b", "delete", me, "2026-01-01T00:00:02Z", "pods"),
      line("c", "create", workflowUser, "2026-01-01T00:00:02Z", "pods"),
      line("d", "create", workflowUser, "2026-01-01T00:00:03Z", "pods"),
      line("e", "create", "flotilla-e2e-admin", "2026-01-01T00:00:03Z", "workflowtaskresults"),
      line("f", "create", workflowUser, "2026-01-01T00:00:09Z", "pods") // after the window
    ]
    const r = clusterRequests(lines, Date.parse("2026-01-01T00:00:00Z"), Date.parse("2026-01-01T00:00:05Z"), 2, 6)
    assert.strictEqual(r.requests, 4)
    assert.strictEqual(r.perWorkflowPlacedHere, 2)
    assert.deepStrictEqual(r.perWorkflowByVerb, { create: 0.33, delete: 0.17, watch: 0.17 })
    assert.deepStrictEqual(r.byRequest, { "delete pods": 1, "user: create pods": 2, "watch pods": 1 })
  })

  it("parses its flags: --smoke runs the limited pass only", () => {
    assert.deepStrictEqual(parseMultiClusterArgs(["--multi-cluster"]), { smoke: false, limited: true, unlimited: true })
    assert.deepStrictEqual(parseMultiClusterArgs(["--multi-cluster", "--smoke"]), { smoke: true, limited: true, unlimited: false })
    assert.deepStrictEqual(parseMultiClusterArgs(["--multi-cluster", "--no-unlimited"]), { smoke: false, limited: true, unlimited: false })
    assert.deepStrictEqual(parseMultiClusterArgs(["--multi-cluster", "--no-limited"]), { smoke: false, limited: false, unlimited: true })
    // never no pass at all
    assert.deepStrictEqual(parseMultiClusterArgs(["--multi-cluster", "--no-limited", "--no-unlimited"]), { smoke: false, limited: true, unlimited: false })
  })

  it("prints one column per pass, with the requests per workflow of each cluster", () => {
    const figures = (pass: "limited" | "unlimited", wpm: number): MultiClusterFigures => ({
      pass,
      rateLimit: pass,
      workers: 32,
      workflows: 3,
      succeeded: 3,
      seconds: 1,
      workflowsPerMinute: wpm,
      p50NodeLatencyMs: 1,
      p99NodeLatencyMs: 2,
      maxNodeLatencyMs: 2,
      rssMiB: 100,
      settledRssMiB: 90,
      settleSeconds: 30,
      apiRequestsPerWorkflow: 6,
      apiRequestsPerWorkflowByVerb: { update: 3 },
      apiRequestsByCluster: {
        main: { workflows: 1, requests: 8, perWorkflowPlacedHere: 8, perWorkflowByVerb: {}, byRequest: {} }
      },
      apiRequestsTotalWithStartup: 0,
      completer: { requests: 0, failed: 0 },
      process: "node"
    })
    const out = multiClusterTable([figures("limited", 300), figures("unlimited", 900)])
    const row = (name: string) => out.split("\n").find((l) => l.includes(name))!
    assert.match(row("workflows per minute"), /300\s+900$/)
    assert.match(row("update per workflow"), /3\s+3$/)
    assert.match(row("main: requests per workflow placed there"), /8\s+8$/)
    assert.match(row("cluster-1: requests per workflow placed there"), /-\s+-$/)
  })

  it("runs flotilla compiled with the image's node flags, BENCH_FLOTILLA_NODE_ARGS first", () => {
    const before = process.env["BENCH_FLOTILLA_NODE_ARGS"]
    process.env["BENCH_FLOTILLA_NODE_ARGS"] = "--cpu-prof  --cpu-prof-dir=/tmp/p"
    try {
      assert.deepStrictEqual(flotillaNodeArgs({ node: "node", entry: "/x/dist/cli/main.js", form: "" }), [
        "--cpu-prof",
        "--cpu-prof-dir=/tmp/p",
        "--max-semi-space-size=8",
        "--optimize-for-size",
        "/x/dist/cli/main.js"
      ])
    } finally {
      if (before === undefined) delete process.env["BENCH_FLOTILLA_NODE_ARGS"]
      else process.env["BENCH_FLOTILLA_NODE_ARGS"] = before
    }
  })
})
