import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { completeLines, eventsOf, followAudit } from "../../bench/auditTail.js"
import { cpuSecondsOf, largeTable, type LargeRun, reconcileFigures } from "../../bench/large.js"
import {
  dagLayers,
  dagWorkflow,
  histogramDelta,
  histogramQuantile,
  loopWorkflow,
  parseHistogram,
  statusFigures
} from "../../bench/largeWorkload.js"
import { largeSvg } from "../../bench/plot.js"
import { compressNodes } from "../../src/workflow/model/compressedNodes.js"

interface Task {
  readonly name: string
  readonly dependencies?: ReadonlyArray<string>
}
const tasksOf = (wf: ReturnType<typeof dagWorkflow>) =>
  ((wf.spec as { templates: Array<{ dag?: { tasks: Array<Task> } }> }).templates[0]!.dag!.tasks)

describe("bench large workloads", () => {
  it("lays a DAG out in up to 10 layers between start and end", () => {
    assert.deepStrictEqual(dagLayers(5000), Array.from({ length: 10 }, (_, i) => (i < 9 ? 500 : 498)))
    assert.deepStrictEqual(dagLayers(7), [1, 1, 1, 1, 1])
    assert.deepStrictEqual(dagLayers(3), [1])
    assert.strictEqual(dagLayers(1234).reduce((a, b) => a + b, 0), 1232)
  })

  it("builds a DAG of exactly the tasks asked for, every dependency a task before it", () => {
    for (const n of [3, 10, 200, 5000]) {
      const tasks = tasksOf(dagWorkflow("w", "ns", n))
      assert.strictEqual(tasks.length, n)
      const seen = new Set<string>()
      for (const t of tasks) {
        for (const d of t.dependencies ?? []) assert.isTrue(seen.has(d), `${t.name} depends on ${d}, not before it`)
        seen.add(t.name)
      }
      assert.strictEqual(seen.size, n)
      assert.strictEqual(tasks[0]!.name, "start")
      assert.strictEqual(tasks[n - 1]!.name, "end")
    }
    const tasks = tasksOf(dagWorkflow("w", "ns", 200))
    // 198 in 10 layers of 20 (the last 18): the second layer's tasks have two parents, end has 18
    assert.deepStrictEqual(tasks.find((t) => t.name === "l1-19")!.dependencies, ["l0-19", "l0-0"])
    assert.strictEqual(tasks[199]!.dependencies!.length, 18)
  })

  it("loops over the items asked for", () => {
    const wf = loopWorkflow("w", "ns", 400)
    const step = (wf.spec as { templates: Array<{ steps?: Array<Array<{ withItems: Array<number> }>> }> }).templates[0]!.steps![0]![0]!
    assert.strictEqual(step.withItems.length, 400)
    assert.strictEqual(step.withItems[399], 399)
  })

  it("sums a histogram's series from a Prometheus text and takes deltas and quantiles", () => {
    const text = [
      "# HELP flotilla_reconcile_duration_seconds x",
      "# TYPE flotilla_reconcile_duration_seconds histogram",
      `flotilla_reconcile_duration_seconds_bucket{result="success",le="0.01"} 4`,
      `flotilla_reconcile_duration_seconds_bucket{result="success",le="0.1"} 8`,
      `flotilla_reconcile_duration_seconds_bucket{result="success",le="+Inf"} 10`,
      `flotilla_reconcile_duration_seconds_sum{result="success"} 1.5`,
      `flotilla_reconcile_duration_seconds_count{result="success"} 10`,
      `flotilla_reconcile_duration_seconds_bucket{le="0.01",result="requeue"} 2`,
      `flotilla_reconcile_duration_seconds_bucket{le="0.1",result="requeue"} 2`,
      `flotilla_reconcile_duration_seconds_bucket{le="+Inf",result="requeue"} 2`,
      `flotilla_reconcile_duration_seconds_sum{result="requeue"} 0.01`,
      `flotilla_reconcile_duration_seconds_count{result="requeue"} 2`,
      `argo_workflows_operation_duration_seconds_bucket{le="5"} 99`
    ].join("\n")
    const h = parseHistogram(text, "flotilla_reconcile_duration_seconds")!
    assert.deepStrictEqual(h.buckets, [{ le: 0.01, count: 6 }, { le: 0.1, count: 10 }, { le: Infinity, count: 12 }])
    assert.strictEqual(h.count, 12)
    assert.closeTo(h.sum, 1.51, 1e-9)
    assert.isUndefined(parseHistogram(text, "nope"))
    // half of 12 is the 6th: the top of the first bucket; 0.75 is the 9th: 3 of 4 into the second
    assert.closeTo(histogramQuantile(h, 0.5), 0.01, 1e-9)
    assert.closeTo(histogramQuantile(h, 0.75), 0.01 + 0.09 * 0.75, 1e-9)
    // in the +Inf bucket: the highest finite bound
    assert.strictEqual(histogramQuantile(h, 0.99), 0.1)
    const before = { buckets: [{ le: 0.01, count: 6 }, { le: 0.1, count: 6 }, { le: Infinity, count: 6 }], sum: 0.03, count: 6 }
    const d = histogramDelta(h, before)
    assert.deepStrictEqual(d.buckets, [{ le: 0.01, count: 0 }, { le: 0.1, count: 4 }, { le: Infinity, count: 6 }])
    assert.strictEqual(d.count, 6)
    assert.isTrue(Number.isNaN(histogramQuantile({ buckets: [], sum: 0, count: 0 }, 0.5)))
    const figures = reconcileFigures("m", before, h)!
    assert.strictEqual(figures.count, 6)
    assert.strictEqual(figures.meanMs, 246.67)
    assert.isNull(reconcileFigures("m", before, undefined))
  })

  it("measures a status as stored, compressed nodes decoded for their count", () => {
    const nodes = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`n${i}`, { id: `n${i}`, phase: "Succeeded", type: "Pod" }]))
    const plain = statusFigures({ apiVersion: "v1", kind: "Workflow", metadata: { name: "w" }, status: { phase: "Succeeded", nodes } })
    assert.strictEqual(plain.nodes, 50)
    assert.isFalse(plain.compressed)
    assert.isFalse(plain.offloaded)
    assert.strictEqual(plain.nodesJsonBytes, JSON.stringify(nodes).length)
    assert.strictEqual(plain.statusBytes, JSON.stringify({ phase: "Succeeded", nodes }).length)
    const packed = statusFigures({ apiVersion: "v1", kind: "Workflow", metadata: { name: "w" }, status: { phase: "Succeeded", compressedNodes: compressNodes(nodes) } })
    assert.strictEqual(packed.nodes, 50)
    assert.isTrue(packed.compressed)
    assert.strictEqual(packed.nodesJsonBytes, plain.nodesJsonBytes)
    assert.isBelow(packed.statusBytes, plain.statusBytes)
    const offloaded = statusFigures({ apiVersion: "v1", kind: "Workflow", metadata: { name: "w" }, status: { offloadNodeStatusVersion: "abc" } })
    assert.strictEqual(offloaded.nodes, -1)
    assert.isTrue(offloaded.offloaded)
  })

  it("tabulates both controllers with ratios, a failed run without figures", () => {
    const run = (controller: "flotilla" | "upstream", seconds: number | null): LargeRun => ({
      controller,
      workload: "dag",
      pods: 200,
      outcome: seconds === null ? "timeout" : "Succeeded",
      seconds,
      podsCompleted: 200,
      reconciles: { metric: "m", count: 10, meanMs: 5, p50Ms: 4, p99Ms: 9, totalSeconds: 0.05 },
      status: null,
      rssMiB: 100,
      rssAtSubmitMiB: 80,
      cpuSeconds: 3,
      apiRequests: 400,
      apiRequestsByVerb: {},
      process: "node"
    })
    const table = largeTable([run("flotilla", 10), run("upstream", 20)])
    assert.match(table, /dag\s+seconds to complete\s+10\s+20\s+0\.5x/)
    assert.match(table, /dag\s+outcome\s+Succeeded\s+Succeeded/)
    const failed = largeTable([run("flotilla", 10), run("upstream", null)])
    assert.match(failed, /dag\s+outcome\s+Succeeded\s+timeout/)
    assert.match(failed, /dag\s+seconds to complete\s+10\s+-\s+-/)
  })

  it("reads a process's CPU time from /proc/<pid>/stat, a command name with spaces and parentheses included", () => {
    const stat = "4242 (node (a) b) S 1 4242 4242 0 -1 4194304 5000 0 0 0 1234 566 0 0 20 0 11 0 100 0 0"
    assert.strictEqual(cpuSecondsOf(stat), 18)
  })

  it("plots pods completed over time, one panel per workload, decimating long series", () => {
    const svg = largeSvg("large <runs>", [
      { title: "DAG", series: [{ label: "flotilla", completedAtSeconds: [1, 2, 3] }, { label: "upstream", completedAtSeconds: [2, 4] }] },
      { title: "loop", series: [{ label: "flotilla", completedAtSeconds: Array.from({ length: 10_000 }, (_, i) => i / 100) }, { label: "upstream", completedAtSeconds: [] }] }
    ])
    assert.isTrue(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    assert.include(svg, "large &lt;runs&gt;")
    assert.strictEqual(svg.match(/<polyline /g)?.length, 4)
    assert.include(svg, "flotilla: 3 pods in 3 s")
    assert.include(svg, "upstream: no pod")
    const longest = Math.max(...[...svg.matchAll(/points="([^"]*)"/g)].map((m) => m[1]!.split(" ").length))
    assert.isAtMost(longest, 2 * 400 + 3)
    assert.notInclude(svg, "NaN")
  })
})

describe("bench audit tail", () => {
  it("takes complete lines only, leaving a line being written for later", () => {
    const bytes = Buffer.from("a\nbé\nc", "utf8")
    // "é" is two bytes: "a\n" and "bé\n" take 6
    assert.deepStrictEqual(completeLines(bytes), { lines: ["a", "bé"], used: 6 })
    assert.deepStrictEqual(completeLines(Buffer.from("partial")), { lines: [], used: 0 })
  })

  it("keeps one identity's events, skipping cut lines", () => {
    const user = "system:serviceaccount:bench-flotilla:controller"
    const mine = { auditID: "1", verb: "create", user: { username: user } }
    const other = { auditID: "2", verb: "get", user: { username: "admin" }, objectRef: { resource: user } }
    const events = eventsOf([JSON.stringify(mine), JSON.stringify(other), `{"auditID":"3","user":{"username":"${user}"`], user)
    assert.deepStrictEqual(events, [mine])
  })

  it("follows a log from now on, through a rotation", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-tail-"))
    try {
      const user = "u"
      const line = (id: string, u = user) => JSON.stringify({ auditID: id, verb: "get", user: { username: u } }) + "\n"
      const log = path.join(dir, "audit.log")
      fs.writeFileSync(log, line("old"))
      const tail = followAudit(dir, user)
      fs.appendFileSync(log, line("a") + line("x", "other") + line("b").slice(0, 10))
      tail.poll()
      assert.deepStrictEqual(tail.events().map((e) => e.auditID), ["a"])
      // the half-written line ends, then the file is rotated and a new one begun
      fs.appendFileSync(log, line("b").slice(10) + line("c"))
      fs.renameSync(log, path.join(dir, "audit-2026-12-01T00-00-00.000.log"))
      fs.writeFileSync(log, line("d"))
      tail.poll()
      assert.deepStrictEqual(tail.events().map((e) => e.auditID), ["a", "b", "c", "d"])
      tail.poll()
      assert.strictEqual(tail.events().length, 4)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
