import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parse } from "yaml"
import {
  type AuditLine,
  clusterEnv,
  type ControllerFigures,
  controllerUser,
  countRequests,
  parseArgs,
  percentile,
  table,
  workflowOf
} from "../../bench/compare.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

const line = (id: string, verb: string, user: string, at: string, resource?: string, subresource?: string): AuditLine => ({
  auditID: id,
  verb,
  user: { username: user },
  requestReceivedTimestamp: at,
  ...(resource === undefined ? {} : { objectRef: { resource, ...(subresource ? { subresource } : {}) } })
})

describe("bench compare", () => {
  it("counts a user's requests in the window once each, by verb and by verb and resource", () => {
    const me = controllerUser("flotilla")
    const lines = [
      line("a", "update", me, "2026-01-01T00:00:01Z", "workflows"),
      // a watch: ResponseStarted and ResponseComplete, one request
      line("b", "watch", me, "2026-01-01T00:00:02Z", "pods"),
      line("b", "watch", me, "2026-01-01T00:00:02Z", "pods"),
      line("c", "patch", me, "2026-01-01T00:00:03Z", "pods", "status"),
      line("d", "update", "someone-else", "2026-01-01T00:00:03Z", "workflows"),
      line("e", "update", me, "2026-01-01T00:00:09Z", "workflows"), // after the window
      line("f", "get", me, "2026-01-01T00:00:04Z") // non-resource
    ]
    const counted = countRequests(lines, me, Date.parse("2026-01-01T00:00:00Z"), Date.parse("2026-01-01T00:00:05Z"))
    assert.strictEqual(counted.total, 4)
    assert.deepStrictEqual(counted.byVerb, { update: 1, watch: 1, patch: 1, get: 1 })
    assert.deepStrictEqual(counted.byRequest, {
      "update workflows": 1,
      "watch pods": 1,
      "patch pods/status": 1,
      "get (non-resource)": 1
    })
  })

  it("percentile is nearest-rank", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1)
    assert.strictEqual(percentile(xs, 50), 50)
    assert.strictEqual(percentile(xs, 99), 99)
    assert.strictEqual(percentile([7], 99), 7)
    assert.isNaN(percentile([], 50))
  })

  it("the audit policy audits both controller identities in full, before any narrower rule", () => {
    const policy = parse(fs.readFileSync(path.join(repoRoot, "scripts/clusters/audit-policy.yaml"), "utf8")) as {
      rules: Array<{ level: string; users?: Array<string>; verbs?: Array<string>; resources?: unknown }>
    }
    const first = policy.rules[0]!
    assert.strictEqual(first.level, "Metadata")
    assert.deepStrictEqual([...(first.users ?? [])].sort(), [controllerUser("flotilla"), controllerUser("upstream")].sort())
    assert.isUndefined(first.verbs)
    assert.isUndefined(first.resources)
  })

  it("runs on a cluster of its own: state dir, ports, no real nodes", () => {
    const env = clusterEnv(3)
    assert.strictEqual(env["FLOTILLA_CLUSTERS"], "main")
    assert.strictEqual(env["FLOTILLA_REAL_NODES"], "")
    assert.strictEqual(env["FLOTILLA_CLUSTERS_DIR"], path.join(repoRoot, ".bench-clusters"))
    assert.strictEqual(env["FLOTILLA_CLUSTERS_PORT_BASE"], "27400")
    assert.strictEqual(env["FLOTILLA_KWOK_NODES"], "3")
    assert.include(fs.readFileSync(path.join(repoRoot, ".gitignore"), "utf8").split("\n"), "/.bench-clusters/")
  })

  it("the workload is one pod on a kwok node, without kwok's outcome annotation (the completer completes it)", () => {
    const wf = workflowOf("wf-1", "ns")
    const text = JSON.stringify(wf)
    assert.notInclude(text, "e2e.flotilla.dev/outcome")
    const spec = wf.spec as { templates: Array<Record<string, unknown>>; nodeSelector: Record<string, string>; tolerations: Array<{ key: string }> }
    assert.strictEqual(spec.templates.length, 1)
    assert.property(spec.templates[0], "container")
    assert.deepStrictEqual(spec.nodeSelector, { type: "kwok" })
    assert.strictEqual(spec.tolerations[0]!.key, "kwok.x-k8s.io/node")
  })

  it("parses its flags: --smoke runs the limited pass only", () => {
    assert.deepStrictEqual(parseArgs(["--compare"]), { smoke: false, unlimited: true })
    assert.deepStrictEqual(parseArgs(["--compare", "--smoke"]), { smoke: true, unlimited: false })
    assert.deepStrictEqual(parseArgs(["--compare", "--no-unlimited"]), { smoke: false, unlimited: false })
  })

  it("prints both figures and the ratio", () => {
    const figures = (controller: "flotilla" | "upstream", wpm: number, requests: number): ControllerFigures => ({
      controller,
      pass: "limited",
      rateLimit: controller === "flotilla" ? "unlimited" : "qps 20 / burst 30",
      workers: 32,
      workflows: 10,
      succeeded: 10,
      seconds: 1,
      workflowsPerMinute: wpm,
      p50NodeLatencyMs: 1,
      p99NodeLatencyMs: 2,
      maxNodeLatencyMs: 2,
      rssMiB: 100,
      apiRequestsPerWorkflow: requests,
      apiRequestsPerWorkflowByVerb: { update: requests },
      apiRequests: {},
      apiRequestsTotalWithStartup: 0,
      completer: { requests: 0, failed: 0 },
      process: "node"
    })
    const out = table([{ pass: "limited", flotilla: figures("flotilla", 400, 5), upstream: figures("upstream", 100, 10) }])
    const row = (name: string) => out.split("\n").find((l) => l.includes(name))!
    assert.match(row("workflows per minute"), /400\s+100\s+4x$/)
    assert.match(row("API requests per workflow"), /5\s+10\s+0\.5x$/)
    assert.match(row("update per workflow"), /5\s+10\s+0\.5x$/)
  })
})
