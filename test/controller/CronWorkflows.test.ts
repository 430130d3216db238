/**
 * CronWorkflows on the in-memory API with the TestClock: when runs fire, the run policies, the
 * history limits, the catch-up of a run missed across a restart, and a bad spec's condition.
 * Child workflows are not run here (no workflow controller): tests write their phase.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { CronWorkflows } from "../../src/controller/CronWorkflows.js"
import { formatRfc3339, missedRun, parseSchedule } from "../../src/controller/cron/schedule.js"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { Supervisor } from "../../src/runtime/Supervisor.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { captureLogs } from "./harness.js"
import { settingsLayer } from "./services.js"

const t0 = Date.parse("2024-01-01T00:00:30Z")
const at = (iso: string) => Date.parse(iso)
const unix = (iso: string) => Math.floor(at(iso) / 1000)

const cronWorkflow = (name: string, spec: Record<string, unknown>, metadata: Partial<KubeObject["metadata"]> = {}): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "CronWorkflow",
  metadata: { name, namespace: "local", ...metadata },
  spec: {
    workflowSpec: { entrypoint: "main", templates: [{ name: "main", container: { image: "busybox", command: ["true"] } }] },
    ...spec
  }
})

/** Lets the informers and timers catch up (no time passes): every fibre runs until it waits. */
const until = <A>(what: string, check: Effect.Effect<A | undefined>): Effect.Effect<A> =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      const a = yield* check
      if (a !== undefined) return a
      yield* Effect.yieldNow
    }
    return yield* Effect.die(new Error(`${what} did not happen`))
  })

const settle = Effect.gen(function*() {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow
})

/** Moves the clock minute by minute (each timer gets to run at its time), settling after each. */
const minutes = (n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < n; i++) {
      yield* TestClock.adjust("1 minute")
      yield* settle
    }
  })

interface Harness {
  readonly kube: InMemoryKube["Service"]
  readonly admin: KubeClientShape
  /** Starts a CronWorkflows service (a controller that leads); `stop` ends it as a crash or lost lease would. */
  readonly start: Effect.Effect<{ readonly service: CronWorkflows["Service"]; readonly stop: Effect.Effect<void> }>
  readonly workflows: Effect.Effect<ReadonlyArray<KubeObject>>
  readonly cron: (name: string) => Effect.Effect<KubeObject>
}

const harness: Effect.Effect<Harness, never, InMemoryKube> = Effect.gen(function*() {
  yield* TestClock.setTime(t0)
  const kube = yield* InMemoryKube
  yield* kube.addCluster("main")
  yield* kube.ensureNamespace("main", "local")
  const admin = kube.adminClient("main")
  const start = Effect.gen(function*() {
    const scope = yield* Scope.make()
    const layer = CronWorkflows.layer.pipe(Layer.provide(Layer.mergeAll(settingsLayer(admin), Layer.fresh(Supervisor.layer))))
    const context = yield* Layer.build(Layer.fresh(layer)).pipe(Scope.provide(scope))
    const service = Context.get(context, CronWorkflows)
    yield* service.cronWorkflows.synced
    yield* service.children.synced
    yield* settle
    return { service, stop: Scope.close(scope, Exit.void) }
  })
  return {
    kube,
    admin,
    start,
    workflows: Effect.map(kube.objects("main", "workflows", "local"), (all) => [...all].sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!))),
    cron: (name) => Effect.orDie(admin.get("cronworkflows", "local", name))
  }
})

const names = (wfs: ReadonlyArray<KubeObject>) => wfs.map((wf) => wf.metadata.name)
const statusOf = (cron: KubeObject) => (cron["status"] ?? {}) as {
  active?: Array<{ name: string; uid: string }> | null
  lastScheduledTime?: string
  conditions?: Array<{ type: string; status: string; message: string }> | null
  succeeded?: number
  failed?: number
  phase?: string
}

const setPhase = (admin: KubeClientShape, name: string, phase: string, finishedAt: string) =>
  Effect.orDie(admin.patch("workflows", "local", name, { status: { phase, finishedAt } }))

/** Runs `body` on a fresh in-memory API; no component may fail meanwhile, and no error is logged unless `errors` says which. */
const run = <A, E>(body: (h: Harness) => Effect.Effect<A, E, Scope.Scope>, errors: RegExp = /^$/) => {
  const logs = captureLogs()
  return Effect.gen(function*() {
    const h = yield* harness
    const a = yield* body(h)
    const bad = logs.lines.filter((l) => /level=error/.test(l) && !errors.test(l))
    assert.deepStrictEqual(bad, [])
    return a
  }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer), Effect.provide(logs.layer))
}

describe("cron schedules", () => {
  it("parses upstream's forms: five fields, descriptors, @every, CRON_TZ, ? in the day fields", () => {
    const next = (text: string, from: string, zone?: string) => {
      const parsed = parseSchedule(text, zone)
      assert.isTrue(parsed._tag === "Success", `${text}: ${parsed._tag === "Failure" ? parsed.failure : ""}`)
      const t = parsed._tag === "Success" ? parsed.success.next(at(from)) : undefined
      return t === undefined ? undefined : new Date(t).toISOString()
    }
    assert.strictEqual(next("*/5 * * * *", "2024-01-01T00:00:30Z", "UTC"), "2024-01-01T00:05:00.000Z")
    assert.strictEqual(next("@hourly", "2024-01-01T00:00:30Z", "UTC"), "2024-01-01T01:00:00.000Z")
    assert.strictEqual(next("@weekly", "2024-01-01T00:00:30Z", "UTC"), "2024-01-07T00:00:00.000Z")
    assert.strictEqual(next("0 0 ? * MON", "2024-01-01T00:00:30Z", "UTC"), "2024-01-08T00:00:00.000Z")
    assert.strictEqual(next("@every 90s", "2024-01-01T00:00:30.400Z"), "2024-01-01T00:02:00.000Z")
    assert.strictEqual(next("CRON_TZ=Asia/Tokyo 0 9 * * *", "2024-01-01T00:00:30Z"), "2024-01-02T00:00:00.000Z")
    assert.strictEqual(next("0 9 * * *", "2024-01-01T00:00:30Z", "America/New_York"), "2024-01-01T14:00:00.000Z")
    // never fires (robfig's zero time), without throwing
    assert.isUndefined(next("0 0 31 2 *", "2024-01-01T00:00:30Z", "UTC"))
    for (const bad of ["* * * *", "* * * * * *", "61 * * * *", "@fortnightly", "@every soon", "CRON_TZ=Mars/Olympus 0 * * * *"]) {
      assert.strictEqual(parseSchedule(bad, "UTC")._tag, "Failure", bad)
    }
    assert.strictEqual(formatRfc3339(at("2024-01-01T00:00:00Z"), "Asia/Tokyo"), "2024-01-01T09:00:00+09:00")
    assert.strictEqual(formatRfc3339(at("2024-07-01T16:30:00Z"), "America/St_Johns"), "2024-07-01T14:00:00-02:30")
    assert.strictEqual(formatRfc3339(at("2024-01-01T00:00:00.900Z"), "UTC"), "2024-01-01T00:00:00Z")
  })

  it("a missed run is the latest passed time after the last run, within startingDeadlineSeconds", () => {
    const every = parseSchedule("* * * * *", "UTC")
    assert.isTrue(every._tag === "Success")
    if (every._tag !== "Success") return
    const s = [every.success]
    const last = at("2024-01-01T00:01:00Z")
    const now = at("2024-01-01T00:03:30Z")
    assert.strictEqual(missedRun(s, last, now, 60), at("2024-01-01T00:03:00Z"))
    assert.isUndefined(missedRun(s, last, now, 10))
    assert.isUndefined(missedRun(s, last, now, undefined))
    assert.isUndefined(missedRun(s, undefined, now, 60))
    // exactly at a scheduled time, that time has not passed yet (its timer runs it)
    assert.strictEqual(missedRun(s, last, at("2024-01-01T00:03:00Z"), 120), at("2024-01-01T00:02:00Z"))
  })
})

describe("CronWorkflows", () => {
  it.effect("fires at the scheduled instants and creates the workflow as upstream does", () =>
    run((h) =>
      Effect.gen(function*() {
        const { service } = yield* h.start
        const created = yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("every5", {
          schedules: ["*/5 * * * *"],
          timezone: "UTC",
          workflowMetadata: { labels: { team: "a" }, annotations: { note: "x" } }
        }, { labels: { "workflows.argoproj.io/creator": "alice", other: "no" } })))
        yield* until("the timer", Effect.map(service.nextRuns, (m) => m.get("local/every5")))
        assert.strictEqual((yield* service.nextRuns).get("local/every5"), at("2024-01-01T00:05:00Z"))

        yield* TestClock.adjust("269 seconds")
        yield* settle
        assert.deepStrictEqual(names(yield* h.workflows), [])
        yield* TestClock.adjust("1 second")
        const [wf] = yield* until("the first run", Effect.map(h.workflows, (w) => w.length > 0 ? w : undefined))
        assert.strictEqual(wf!.metadata.name, `every5-${unix("2024-01-01T00:05:00Z")}`)
        assert.deepStrictEqual(wf!.metadata.labels, {
          "workflows.argoproj.io/creator": "alice",
          "workflows.argoproj.io/cron-workflow": "every5",
          team: "a"
        })
        assert.deepStrictEqual(wf!.metadata.annotations, { "workflows.argoproj.io/scheduled-time": "2024-01-01T00:05:00Z", note: "x" })
        assert.deepStrictEqual(wf!.metadata.ownerReferences, [{
          apiVersion: "argoproj.io/v1alpha1",
          kind: "CronWorkflow",
          name: "every5",
          uid: created.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true
        }])
        assert.deepStrictEqual(wf!["spec"], created["spec"] && (created["spec"] as Record<string, unknown>)["workflowSpec"])

        const cron = yield* until("the status", Effect.map(h.cron("every5"), (c) => statusOf(c).phase === "Active" ? c : undefined))
        const status = statusOf(cron)
        assert.deepStrictEqual(status.active?.map((r) => r.name), [wf!.metadata.name])
        assert.strictEqual(status.active?.[0]?.uid, wf!.metadata.uid)
        assert.strictEqual(status.lastScheduledTime, "2024-01-01T00:05:00Z")
        assert.strictEqual(cron.metadata.annotations?.["cronworkflows.argoproj.io/last-used-schedule"], "CRON_TZ=UTC */5 * * * *")

        yield* minutes(5)
        assert.deepStrictEqual(names(yield* h.workflows), [`every5-${unix("2024-01-01T00:05:00Z")}`, `every5-${unix("2024-01-01T00:10:00Z")}`])
      })
    ))

  it.effect("several schedules in a timezone; the scheduled-time annotation carries its offset", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.start
        // 09:00 and 09:30 in Tokyo are 00:00 and 00:30 UTC; the clock is at 00:00:30 UTC
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("tokyo", {
          schedules: ["0 9 * * *", "30 9 * * *"],
          timezone: "Asia/Tokyo"
        })))
        yield* settle
        yield* minutes(30)
        const wfs = yield* h.workflows
        assert.deepStrictEqual(names(wfs), [`tokyo-${unix("2024-01-01T00:30:00Z")}`])
        assert.strictEqual(wfs[0]!.metadata.annotations?.["workflows.argoproj.io/scheduled-time"], "2024-01-01T09:30:00+09:00")
      })
    ))

  it.effect("Forbid skips a run while one is active; the next after it finished runs, and it is counted", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.start
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("forbid", {
          schedules: ["* * * * *"],
          timezone: "UTC",
          concurrencyPolicy: "Forbid"
        })))
        yield* settle
        yield* minutes(1)
        const first = `forbid-${unix("2024-01-01T00:01:00Z")}`
        assert.deepStrictEqual(names(yield* h.workflows), [first])
        yield* minutes(1)
        assert.deepStrictEqual(names(yield* h.workflows), [first], "no run while the first is active")
        yield* setPhase(h.admin, first, "Succeeded", "2024-01-01T00:02:10Z")
        yield* until("the first counted", Effect.map(h.cron("forbid"), (c) => statusOf(c).succeeded === 1 ? c : undefined))
        const cron = yield* h.cron("forbid")
        assert.isTrue((statusOf(cron).active ?? []).length === 0)
        yield* minutes(1)
        assert.deepStrictEqual(names(yield* h.workflows), [first, `forbid-${unix("2024-01-01T00:03:00Z")}`])
      })
    ))

  it.effect("Replace terminates the active workflow (spec.shutdown, as upstream) and starts the new one", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.start
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("replace", {
          schedules: ["* * * * *"],
          timezone: "UTC",
          concurrencyPolicy: "Replace"
        })))
        yield* settle
        yield* minutes(2)
        const wfs = yield* h.workflows
        assert.deepStrictEqual(names(wfs), [`replace-${unix("2024-01-01T00:01:00Z")}`, `replace-${unix("2024-01-01T00:02:00Z")}`])
        assert.strictEqual((wfs[0]!["spec"] as { shutdown?: string }).shutdown, "Terminate")
        assert.isUndefined((wfs[1]!["spec"] as { shutdown?: string }).shutdown)
      })
    ))

  it.effect("suspend: no run while suspended; runs again once resumed", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.start
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("sus", { schedules: ["* * * * *"], timezone: "UTC", suspend: true })))
        yield* settle
        yield* minutes(3)
        assert.deepStrictEqual(names(yield* h.workflows), [])
        yield* Effect.orDie(h.admin.patch("cronworkflows", "local", "sus", { spec: { suspend: false } }))
        yield* settle
        yield* minutes(1)
        assert.deepStrictEqual(names(yield* h.workflows), [`sus-${unix("2024-01-01T00:04:00Z")}`])
      })
    ))

  it.effect("history limits delete the oldest completed workflows (defaults: 3 succeeded, 1 failed)", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.start
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("hist", {
          schedules: ["* * * * *"],
          timezone: "UTC",
          successfulJobsHistoryLimit: 2
        })))
        yield* settle
        const name = (minute: number) => `hist-${unix(`2024-01-01T00:0${minute}:00Z`)}`
        for (let m = 1; m <= 6; m++) {
          yield* minutes(1)
          // minutes 1-4 succeed, 5 and 6 fail
          yield* setPhase(h.admin, name(m), m <= 4 ? "Succeeded" : "Failed", `2024-01-01T00:0${m}:30Z`)
          yield* settle
        }
        yield* until("the history limits", Effect.map(h.workflows, (w) => w.length === 3 ? w : undefined))
        assert.deepStrictEqual(names(yield* h.workflows), [name(3), name(4), name(6)])
        const status = statusOf(yield* h.cron("hist"))
        assert.strictEqual(status.succeeded, 4)
        assert.strictEqual(status.failed, 2)
        assert.isTrue((status.active ?? []).length === 0)
      })
    ))

  it.effect("a run missed while no controller led runs once after the restart if within startingDeadlineSeconds", () =>
    run((h) =>
      Effect.gen(function*() {
        const first = yield* h.start
        for (const [name, deadline] of [["within", 120], ["beyond", 20], ["none", undefined]] as const) {
          yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow(name, {
            schedules: ["* * * * *"],
            timezone: "UTC",
            ...(deadline !== undefined ? { startingDeadlineSeconds: deadline } : {})
          })))
        }
        yield* settle
        yield* minutes(1)
        assert.strictEqual((yield* h.workflows).length, 3)
        yield* first.stop
        // down from 00:01:30 to 00:03:30: the runs of 00:02 and 00:03 are missed
        yield* TestClock.adjust("2 minutes")
        yield* settle
        const second = yield* h.start
        yield* settle
        const t1 = unix("2024-01-01T00:01:00Z")
        assert.deepStrictEqual(names(yield* h.workflows), [
          `beyond-${t1}`,
          `none-${t1}`,
          `within-${t1}`,
          `within-${unix("2024-01-01T00:03:00Z")}`
        ])
        assert.strictEqual(statusOf(yield* h.cron("within")).lastScheduledTime, "2024-01-01T00:03:00Z")
        // and the schedule goes on
        yield* TestClock.adjust("30 seconds")
        yield* settle
        assert.strictEqual((yield* h.workflows).length, 7)
        yield* second.stop
      })
    ))

  it.effect("no duplicate: a run another replica (or this one before a restart) created is success", () =>
    run((h) =>
      Effect.gen(function*() {
        const cron = yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("dup", { schedules: ["* * * * *"], timezone: "UTC" })))
        // the other replica created the 00:01 run already
        const name = `dup-${unix("2024-01-01T00:01:00Z")}`
        yield* Effect.orDie(h.admin.create("workflows", "local", {
          apiVersion: "argoproj.io/v1alpha1",
          kind: "Workflow",
          metadata: {
            name,
            namespace: "local",
            labels: { "workflows.argoproj.io/cron-workflow": "dup" },
            ownerReferences: [{ apiVersion: "argoproj.io/v1alpha1", kind: "CronWorkflow", name: "dup", uid: cron.metadata.uid!, controller: true }]
          },
          spec: {}
        }))
        const first = yield* h.start
        yield* minutes(1)
        assert.deepStrictEqual(names(yield* h.workflows), [name])
        const status = statusOf(yield* h.cron("dup"))
        assert.deepStrictEqual(status.active?.map((r) => r.name), [name])
        assert.isTrue((status.conditions ?? []).length === 0, JSON.stringify(status.conditions))
        // a restart at once does not run 00:01 again
        yield* first.stop
        const second = yield* h.start
        yield* settle
        yield* TestClock.adjust("29 seconds")
        yield* settle
        assert.deepStrictEqual(names(yield* h.workflows), [name])
        yield* second.stop
      })
    ))

  it.effect("a bad schedule or timezone is a SpecError naming the field; other CronWorkflows still run", () =>
    run((h) =>
      Effect.gen(function*() {
        const { service } = yield* h.start
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("bad-schedule", { schedules: ["0 * * *"] })))
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("bad-tz", { schedules: ["* * * * *"], timezone: "Mars/Olympus" })))
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("good", { schedules: ["* * * * *"], timezone: "UTC" })))
        const condition = (name: string) =>
          until(`${name}'s condition`, Effect.map(h.cron(name), (c) => statusOf(c).conditions?.find((x) => x.type === "SpecError")))
        const schedule = yield* condition("bad-schedule")
        assert.strictEqual(schedule.status, "True")
        assert.strictEqual(schedule.message, "spec.schedules[0]: cron schedule 0 * * * is malformed: expected exactly 5 fields, found 4: [0 * * *]")
        const tz = yield* condition("bad-tz")
        assert.include(tz.message, "spec.timezone: invalid timezone \"Mars/Olympus\"")
        assert.isFalse((yield* service.nextRuns).has("local/bad-schedule"))
        yield* minutes(1)
        assert.deepStrictEqual(names(yield* h.workflows), [`good-${unix("2024-01-01T00:01:00Z")}`])
        // fixed: the condition goes, the schedule runs
        yield* Effect.orDie(h.admin.patch("cronworkflows", "local", "bad-schedule", { spec: { schedules: ["0 * * * *"] } }))
        yield* until("the condition removed", Effect.map(h.cron("bad-schedule"), (c) => statusOf(c).conditions == null ? c : undefined))
        const next = yield* until("the timer", Effect.map(service.nextRuns, (m) => m.get("local/bad-schedule")))
        assert.strictEqual(next, at("2024-01-01T01:00:00Z"))
      }), /conditionType=SpecError/))

  it.effect("when and stopStrategy over cronworkflow.* variables", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.start
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("stop", {
          schedules: ["* * * * *"],
          timezone: "UTC",
          when: "{{cronworkflow.name}} == stop",
          stopStrategy: { expression: "cronworkflow.succeeded >= 2" }
        })))
        yield* Effect.orDie(h.admin.create("cronworkflows", "local", cronWorkflow("never", {
          schedules: ["* * * * *"],
          timezone: "UTC",
          when: "{{cronworkflow.failed}} > 0"
        })))
        yield* settle
        for (let m = 1; m <= 2; m++) {
          yield* minutes(1)
          yield* setPhase(h.admin, `stop-${unix(`2024-01-01T00:0${m}:00Z`)}`, "Succeeded", `2024-01-01T00:0${m}:10Z`)
          yield* settle
        }
        const cron = yield* until("stopped", Effect.map(h.cron("stop"), (c) => statusOf(c).phase === "Stopped" ? c : undefined))
        assert.strictEqual(cron.metadata.labels?.["cronworkflows.argoproj.io/completed"], "true")
        yield* minutes(2)
        assert.deepStrictEqual(names(yield* h.workflows), [`stop-${unix("2024-01-01T00:01:00Z")}`, `stop-${unix("2024-01-01T00:02:00Z")}`])
        assert.isUndefined(statusOf(yield* h.cron("never")).lastScheduledTime)
      })
    ))
})
