import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { parse } from "yaml"
import { contexts, idleTable, targets, userOf } from "../../bench/idle.js"
import { type AuditEvent, cpuPercent, cpuTicksOfStat, identityFigures, idleMisses } from "../../bench/idleFigures.js"

const repoRoot = path.resolve(import.meta.dirname, "../..")
const at = (s: number) => new Date(Date.UTC(2026, 11, 1, 2, 0, s)).toISOString()
const T = (s: number) => Date.parse(at(s))

/** A watch as the audit log shows it: ResponseStarted when it opens, ResponseComplete when it ends (if it did). */
const watch = (id: string, user: string, resource: string, opened: number, closed?: number): Array<AuditEvent> => [
  { auditID: id, stage: "ResponseStarted", verb: "watch", user: { username: user }, objectRef: { resource }, requestReceivedTimestamp: at(opened), stageTimestamp: at(opened) },
  ...(closed === undefined ? [] : [{ auditID: id, stage: "ResponseComplete", verb: "watch", user: { username: user }, objectRef: { resource }, requestReceivedTimestamp: at(opened), stageTimestamp: at(closed) }])
]
const request = (id: string, user: string, verb: string, resource: string, when: number): AuditEvent => ({
  auditID: id,
  stage: "ResponseComplete",
  verb,
  user: { username: user },
  objectRef: { resource },
  requestReceivedTimestamp: at(when),
  stageTimestamp: at(when)
})

describe("bench --idle figures", () => {
  it("CPU ticks are utime + stime of /proc/<pid>/stat, whatever the command name holds", () => {
    const stat = "4242 (node (my) app) S 1 4242 4242 0 -1 4194560 5000 0 0 0 731 129 0 0 20 0 11 0 123456 1000000 50000"
    assert.strictEqual(cpuTicksOfStat(stat), 860)
    assert.throws(() => cpuTicksOfStat("garbage"))
    // 30 ticks at 100 Hz over 60 s: 0.3 s of CPU, 0.5%
    assert.closeTo(cpuPercent(30, 100, 60_000), 0.5, 1e-9)
  })

  it("counts per identity and resource the watches open at the window's end, those opened and closed in it, and its lists", () => {
    const a = userOf("cluster-1")
    const b = userOf("cluster-2")
    const events = [
      // a: one pod watch from before the window, still open; a task result watch reopened in the window
      ...watch("a1", a, "pods", 1),
      ...watch("a2", a, "workflowtaskresults", 1, 40),
      ...watch("a3", a, "workflowtaskresults", 40),
      request("a4", a, "list", "workflowtaskresults", 40),
      request("a5", a, "list", "pods", 2),
      // b: two pod watches open; one opened after the window (not counted)
      ...watch("b1", b, "pods", 1),
      ...watch("b2", b, "pods", 3),
      ...watch("b3", b, "pods", 100),
      // another identity
      ...watch("x1", "system:serviceaccount:other:x", "pods", 20)
    ]
    const f = identityFigures(events, [a, b, userOf("cluster-3")], T(10), T(70))
    assert.deepStrictEqual(f[a]!.watches, {
      pods: { openAtEnd: 1, openedInWindow: 0, closedInWindow: 0, openedInTotal: 1 },
      workflowtaskresults: { openAtEnd: 1, openedInWindow: 1, closedInWindow: 1, openedInTotal: 2 }
    })
    assert.deepStrictEqual(f[a]!.listsInWindow, { workflowtaskresults: 1 })
    assert.deepStrictEqual(f[a]!.requestsInWindow, { "list workflowtaskresults": 1, "watch workflowtaskresults": 1 })
    assert.deepStrictEqual(f[b]!.watches["pods"], { openAtEnd: 2, openedInWindow: 0, closedInWindow: 0, openedInTotal: 2 })
    assert.deepStrictEqual(f[userOf("cluster-3")]!.watches, {})

    const misses = idleMisses({ cpuPercent: 0.2, windowSeconds: 60, remote: { "cluster-1": f[a]!, "cluster-2": f[b]!, "cluster-3": f[userOf("cluster-3")]! }, local: f[b]! }, targets)
    assert.includeMembers(misses, [
      "cluster-1: 1 watches of workflowtaskresults opened during the window (at most 0 in 60 s)",
      "cluster-1: 1 lists of workflowtaskresults during the window (want 0)",
      "cluster-2: 2 open watches of pods (want 1)",
      "cluster-2: 0 open watches of workflowtaskresults (want 1)",
      "cluster-3: 0 open watches of pods (want 1)"
    ])
    assert.notInclude(misses.join("\n"), "CPU")
    assert.include(idleMisses({ cpuPercent: 1.5, windowSeconds: 60, remote: {}, local: f[userOf("cluster-3")]! }, targets).join(), "CPU 1.50%")
    // a server-side watch timeout (300 s at least) allows one reopen per 300 s of window
    const long = idleMisses({ cpuPercent: 0.2, windowSeconds: 600, remote: { "cluster-1": f[a]! }, local: f[userOf("cluster-3")]! }, targets)
    assert.notInclude(long.join("\n"), "opened during the window")
  })

  it("prints one row per context and one for the local identity", () => {
    const f = identityFigures([...watch("a1", userOf("cluster-1"), "pods", 1)], [userOf("cluster-1"), userOf("controller")], T(10), T(70))
    const table = idleTable({ "cluster-1": f[userOf("cluster-1")]! }, f[userOf("controller")]!, ["pods"]).split("\n")
    assert.strictEqual(table.length, 3)
    assert.match(table[1]!, /^cluster-1\s+1\s+0\s+0\s+0$/)
    assert.match(table[2]!, /^local \(controller\)/)
  })

  it("ten contexts, each its own service account of bench-idle, which the audit policy audits in full", () => {
    assert.deepStrictEqual(contexts, Array.from({ length: 10 }, (_, i) => `cluster-${i + 1}`))
    assert.strictEqual(userOf("cluster-3"), "system:serviceaccount:bench-idle:cluster-3")
    const policy = parse(fs.readFileSync(path.join(repoRoot, "scripts/clusters/audit-policy.yaml"), "utf8")) as {
      rules: Array<{ level: string; userGroups?: Array<string>; verbs?: Array<string>; resources?: unknown }>
    }
    const rule = policy.rules.findIndex((r) => r.userGroups?.includes("system:serviceaccounts:bench-idle"))
    assert.isAtLeast(rule, 0)
    assert.strictEqual(policy.rules[rule]!.level, "Metadata")
    assert.isUndefined(policy.rules[rule]!.verbs)
    assert.isUndefined(policy.rules[rule]!.resources)
    // before the catch-all None
    assert.isBelow(rule, policy.rules.findIndex((r) => r.level === "None"))
  })
})
