/**
 * CronWorkflows, as upstream Argo's cron controller runs them (workflow/cron): each CronWorkflow of
 * this controller (its managed namespace, its instance ID) has a timer on its schedules; when one
 * fires, the run policy is applied (`suspend`, a Stopped phase, `when`, `concurrencyPolicy`) and
 * the Workflow `<cron>-<scheduled unix seconds>` is created, owned by the CronWorkflow. A periodic
 * sync (10 s, upstream's `CRON_SYNC_PERIOD`), and any change of a child workflow, keeps the
 * status's `active` list and `succeeded`/`failed` counts, deletes completed children beyond the
 * history limits and applies `stopStrategy`.
 *
 * A run missed while no controller led (a restart, a leader change) is run once when the timer
 * starts, if it is still within `startingDeadlineSeconds` (upstream's outstanding workflows).
 * Child names are deterministic: a second controller, or this one after a restart, creating the
 * same run gets AlreadyExists, which is success.
 *
 * Every CronWorkflow's timer is a supervised component of its own (`cron/<namespace>/<name>`), so a
 * defect in one is logged and restarts that one; a bad spec (an unparsable schedule, an unknown
 * timezone) is a SpecError condition naming the field, and its CronWorkflow is not scheduled, the
 * others are unaffected. Everything lives in the controller's scope: only the leader runs it.
 *
 * Never: create a child with a name other than the scheduled one (a duplicate run is worse than a
 * missed one); act on a CronWorkflow before both caches are filled (absent children would read as
 * deleted ones).
 */
import { Clock, Context, Duration, Effect, Exit, Layer, Option, PubSub, Result, Schedule, Scope, Semaphore } from "effect"
import { KubeClient } from "../kube/api/KubeClient.js"
import { isTransient, type KubeError } from "../kube/api/KubeError.js"
import type { KubeObject, MergePatch } from "../kube/api/Resources.js"
import { type Informer, Informer as Informers } from "../kube/cache/Informer.js"
import { Supervisor } from "../runtime/Supervisor.js"
import { labelInstanceId } from "../util/argoKeys.js"
import {
  annotationLastUsedSchedule,
  type Condition,
  controllingCron,
  type CronSpec,
  type CronStatus,
  evaluateCronWhen,
  evaluateStop,
  finishedAtMs,
  formatMetaTime,
  fulfilled,
  labelCronCompleted,
  labelCronWorkflow,
  type ObjectReference,
  parseCronSpec,
  referenceTo,
  removeCondition,
  specOf,
  statusOf,
  upsertCondition,
  workflowFor,
  workflowPhase
} from "./cron/spec.js"
import { missedRun, nextOf } from "./cron/schedule.js"
import { ControllerSettings, timingOf } from "./ControllerSettings.js"
import { boundedBy } from "./RequestTimeout.js"

export { labelCronWorkflow, annotationScheduledTime, labelCronCompleted } from "./cron/spec.js"

/** Upstream's `CRON_SYNC_PERIOD` default. */
export const cronSyncPeriod = Duration.seconds(10)

const specError = "SpecError"
const submissionError = "SubmissionError"
/** Child workflows by the uid of the CronWorkflow that controls them. */
const byCron = "cron"

export class CronWorkflows extends Context.Service<CronWorkflows, {
  /** The CronWorkflows this controller schedules. */
  readonly cronWorkflows: Informer
  /** The workflows CronWorkflows created (label `workflows.argoproj.io/cron-workflow`). */
  readonly children: Informer
  /** One sync of every CronWorkflow now: active list, counts, history limits, stopStrategy. */
  readonly syncAll: Effect.Effect<void>
  /** When each scheduled CronWorkflow (`namespace/name`) fires next, epoch milliseconds. */
  readonly nextRuns: Effect.Effect<ReadonlyMap<string, number>>
}>()("flotilla/controller/CronWorkflows") {
  /** Needs ControllerSettings, KubeClient (the local cluster) and Supervisor; runs in the layer's scope. */
  static readonly layer = Layer.effect(CronWorkflows, Effect.suspend(() => make))
}

const keyOf = (cron: KubeObject): string => `${cron.metadata.namespace ?? ""}/${cron.metadata.name ?? ""}`
const splitKey = (key: string): { readonly namespace: string; readonly name: string } => {
  const i = key.indexOf("/")
  return { namespace: key.slice(0, i), name: key.slice(i + 1) }
}
const isCompleted = (cron: KubeObject): boolean => cron.metadata.labels?.[labelCronCompleted] === "true"

/** Newer by resourceVersion, when both are the API server's (integer) versions. */
const newer = (a: KubeObject, b: KubeObject): boolean => {
  const va = a.metadata.resourceVersion
  const vb = b.metadata.resourceVersion
  if (va === undefined || vb === undefined || !/^\d+$/.test(va) || !/^\d+$/.test(vb)) return false
  return BigInt(va) > BigInt(vb)
}

/** What restarts a CronWorkflow's timer: its spec, its completed label, its identity (not its status). */
const timerKey = (cron: KubeObject): string => JSON.stringify([cron.metadata.uid ?? "", isCompleted(cron), specOf(cron)])

interface Timer {
  readonly key: string
  readonly scope: Scope.Closeable
  next: number | undefined
}

interface Draft {
  labels: Record<string, string>
  annotations: Record<string, string>
  active: Array<ObjectReference>
  conditions: Array<Condition>
  succeeded: number
  failed: number
  phase: string
  lastScheduledTime: string | undefined
}

const draftOf = (cron: KubeObject): Draft => {
  const status: CronStatus = statusOf(cron)
  return {
    labels: {},
    annotations: {},
    active: [...(status.active ?? [])],
    conditions: [...(status.conditions ?? [])],
    succeeded: status.succeeded ?? 0,
    failed: status.failed ?? 0,
    phase: status.phase ?? "",
    lastScheduledTime: status.lastScheduledTime ?? undefined
  }
}

/** The CronWorkflow as the draft would leave it (for `stopStrategy` after a count changed). */
const withDraft = (cron: KubeObject, draft: Draft): KubeObject => ({
  ...cron,
  metadata: { ...cron.metadata, labels: { ...cron.metadata.labels, ...draft.labels } },
  status: { ...statusOf(cron), succeeded: draft.succeeded, failed: draft.failed, lastScheduledTime: draft.lastScheduledTime ?? null }
})

const statusPatch = (draft: Draft): Record<string, unknown> => ({
  active: draft.active.length > 0 ? draft.active : null,
  lastScheduledTime: draft.lastScheduledTime ?? null,
  conditions: draft.conditions.length > 0 ? draft.conditions : null,
  succeeded: draft.succeeded,
  failed: draft.failed,
  phase: draft.phase
})

const make = Effect.gen(function*() {
  const { config, options } = yield* ControllerSettings
  const local = yield* KubeClient
  const supervisor = yield* Supervisor
  const scope = yield* Effect.scope
  const bounded = boundedBy(timingOf(options).requestTimeout)
  // upstream's InstanceIDRequirement: ours, or none when this controller has no instance ID
  const instance = config.instanceId ? `${labelInstanceId}=${config.instanceId}` : `!${labelInstanceId}`

  const crons = yield* Informers.make(local, "cronworkflows", config.namespace, {
    ...options.watch,
    supervisor,
    labelSelector: instance
  })
  const children = yield* Informers.make(local, "workflows", config.namespace, {
    ...options.watch,
    supervisor,
    labelSelector: `${labelCronWorkflow},${instance}`,
    indexers: { [byCron]: (wf) => {
      const uid = controllingCron(wf)
      return uid === undefined ? [] : [uid]
    } }
  })

  // One operation at a time per CronWorkflow (upstream's keyLock): a timer's run and a sync.
  const locks = new Map<string, Semaphore.Semaphore>()
  const locked = <A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      let lock = locks.get(key)
      if (lock === undefined) locks.set(key, lock = Semaphore.makeUnsafe(1))
      return lock.withPermit(effect)
    })

  // What our own last write returned: the cache may not have caught up with it yet.
  const written = new Map<string, KubeObject>()
  const current = (key: string): Effect.Effect<KubeObject | undefined> =>
    Effect.map(crons.get(splitKey(key).namespace, splitKey(key).name), (cached) => {
      const mine = written.get(key)
      if (Option.isNone(cached)) return undefined
      if (mine !== undefined && mine.metadata.uid === cached.value.metadata.uid && newer(mine, cached.value)) return mine
      written.delete(key)
      return cached.value
    })

  const annotate = (cron: KubeObject) => Effect.annotateLogs({ namespace: cron.metadata.namespace ?? "", cronWorkflow: cron.metadata.name ?? "" })

  /** A merge patch of the CronWorkflow (no status subresource: the object itself, as upstream), retried while transient. */
  const patchCron = (cron: KubeObject, patch: MergePatch) =>
    bounded(
      local.patch("cronworkflows", cron.metadata.namespace, cron.metadata.name!, patch),
      { cluster: local.cluster, verb: "patch", resource: "cronworkflows", namespace: cron.metadata.namespace, name: cron.metadata.name }
    ).pipe(
      Effect.retry({ while: isTransient, schedule: Schedule.exponential("100 millis"), times: 3 }),
      Effect.tap((updated) => Effect.sync(() => written.set(keyOf(cron), updated))),
      Effect.asVoid,
      Effect.catchTag("KubeError", (e) => Effect.logError("failed to update cron workflow").pipe(Effect.annotateLogs({ error: e.message }))),
      annotate(cron)
    )

  const persist = (cron: KubeObject, draft: Draft) => {
    const metadata: Record<string, unknown> = {}
    if (Object.keys(draft.labels).length > 0) metadata["labels"] = draft.labels
    if (Object.keys(draft.annotations).length > 0) metadata["annotations"] = draft.annotations
    return patchCron(cron, { ...(Object.keys(metadata).length > 0 ? { metadata } : {}), status: statusPatch(draft) })
  }

  const reportError = (cron: KubeObject, draft: Draft, type: string, message: string) =>
    Effect.gen(function*() {
      draft.conditions = upsertCondition(draft.conditions, { type, status: "True", message })
      if (type === submissionError) draft.failed++
      yield* Effect.logError(message).pipe(Effect.annotateLogs({ conditionType: type }), annotate(cron))
    })

  /** Writes the spec's condition when it changed: SpecError for a bad spec, none for a good one. */
  const checkSpec = (key: string) =>
    locked(key, Effect.gen(function*() {
      const cron = yield* current(key)
      if (cron === undefined) return
      const parsed = parseCronSpec(cron)
      const conditions = statusOf(cron).conditions ?? []
      const present = conditions.find((c) => c.type === specError)
      if (Result.isFailure(parsed)) {
        if (present?.message === parsed.failure && present.status === "True") return
        yield* Effect.logError(parsed.failure).pipe(Effect.annotateLogs({ conditionType: specError }), annotate(cron))
        const next = upsertCondition(conditions, { type: specError, status: "True", message: parsed.failure })
        yield* patchCron(cron, { status: { conditions: next } })
      } else if (present !== undefined) {
        const next = removeCondition(conditions, specError)
        yield* patchCron(cron, { status: { conditions: next.length > 0 ? next : null } })
      }
    }))

  const getWorkflow = (namespace: string, name: string) =>
    bounded(local.get("workflows", namespace, name), { cluster: local.cluster, verb: "get", resource: "workflows", namespace, name })

  /**
   * Upstream's `enforceHistoryLimit` and `reconcileActiveWfs` for one CronWorkflow (the caller
   * holds its lock); returns the draft with what changed, or undefined when nothing did.
   */
  const reconcileChildren = (cron: KubeObject) =>
    Effect.gen(function*() {
      const namespace = cron.metadata.namespace!
      const mine = yield* children.byIndex(byCron, cron.metadata.uid!)
      const parsed = parseCronSpec(cron)
      const keepSucceeded = Result.isSuccess(parsed) ? parsed.success.successfulJobsHistoryLimit : 3
      const keepFailed = Result.isSuccess(parsed) ? parsed.success.failedJobsHistoryLimit : 1

      const done = mine.filter((wf) => wf.metadata.labels?.[labelCronWorkflow] === cron.metadata.name && fulfilled(workflowPhase(wf)))
      const byFinish = (a: KubeObject, b: KubeObject) => finishedAtMs(b) - finishedAtMs(a)
      const overLimit = [
        ...done.filter((wf) => workflowPhase(wf) === "Succeeded").sort(byFinish).slice(keepSucceeded),
        ...done.filter((wf) => workflowPhase(wf) !== "Succeeded").sort(byFinish).slice(keepFailed)
      ]
      for (const wf of overLimit) {
        const name = wf.metadata.name!
        yield* bounded(
          local.delete("workflows", namespace, name, { uid: wf.metadata.uid! }),
          { cluster: local.cluster, verb: "delete", resource: "workflows", namespace, name }
        ).pipe(
          Effect.andThen(Effect.logInfo("Deleted Workflow due to CronWorkflow history limit").pipe(Effect.annotateLogs({ workflow: name }))),
          Effect.catchTag("KubeError", (e) =>
            e.reason === "NotFound" ? Effect.void : Effect.logError("unable to delete Workflow of CronWorkflow beyond its history limit").pipe(
              Effect.annotateLogs({ workflow: name, error: e.message })
            )),
          annotate(cron)
        )
      }

      const draft = draftOf(cron)
      let updated = false
      const byUid = new Map(mine.map((wf) => [wf.metadata.uid!, wf]))
      for (const wf of mine) {
        if (!fulfilled(workflowPhase(wf)) && !draft.active.some((r) => r.uid === wf.metadata.uid)) {
          draft.active.push(referenceTo(wf))
          updated = true
        }
      }
      for (const ref of [...draft.active]) {
        let wf = byUid.get(ref.uid)
        if (wf === undefined) {
          // Not in the cache: maybe just created and not seen yet. Only the API server can say it is gone.
          const read = yield* getWorkflow(ref.namespace || namespace, ref.name).pipe(Effect.result)
          if (Result.isSuccess(read) && read.success.metadata.uid === ref.uid) wf = read.success
          else if (Result.isFailure(read) && read.failure.reason !== "NotFound") continue
        }
        if (wf !== undefined && !fulfilled(workflowPhase(wf))) continue
        updated = true
        draft.active = draft.active.filter((r) => r.uid !== ref.uid)
        if (wf === undefined) continue
        const phase = workflowPhase(wf)
        if (phase === "Succeeded") draft.succeeded++
        else draft.failed++
        const stop = evaluateStop(withDraft(cron, draft), Result.isSuccess(parsed) ? parsed.success.stopExpression : undefined)
        if (Result.isFailure(stop)) {
          yield* Effect.logError(`failed to check CronWorkflow '${cron.metadata.name}' stopping condition: ${stop.failure}`).pipe(annotate(cron))
        } else if (stop.success) {
          draft.phase = "Stopped"
          draft.labels[labelCronCompleted] = "true"
        }
      }
      return updated ? draft : undefined
    })

  const sync = (key: string): Effect.Effect<void> =>
    Effect.flatMap(crons.get(splitKey(key).namespace, splitKey(key).name), (cached) =>
      // (no lock for a CronWorkflow that does not exist: a child may name anything)
      Option.isNone(cached) ? Effect.void : syncLocked(key))

  const syncLocked = (key: string) =>
    locked(key, Effect.gen(function*() {
      const cron = yield* current(key)
      if (cron === undefined) return
      const draft = yield* reconcileChildren(cron)
      if (draft !== undefined) yield* persist(cron, draft)
    }))

  const syncAll = Effect.gen(function*() {
    yield* crons.synced
    yield* children.synced
    for (const cron of yield* crons.list()) yield* sync(keyOf(cron))
  })

  /** Sets spec.shutdown: Terminate on a running child (upstream's `TerminateWorkflow`, for `Replace`). */
  const terminate = (ref: ObjectReference) =>
    bounded(
      local.patch("workflows", ref.namespace, ref.name, { spec: { shutdown: "Terminate" } }),
      { cluster: local.cluster, verb: "patch", resource: "workflows", namespace: ref.namespace, name: ref.name }
    ).pipe(
      Effect.asVoid,
      Effect.catchTag("KubeError", (e) =>
        e.reason === "NotFound"
          ? Effect.logWarning("workflow not found when trying to terminate outstanding workflows").pipe(Effect.annotateLogs({ workflow: ref.name }))
          : Effect.fail(e))
    )

  /** Upstream's `enforceRuntimePolicy`: whether this run goes ahead. */
  const mayRun = (cron: KubeObject, spec: CronSpec, draft: Draft): Effect.Effect<boolean> =>
    Effect.gen(function*() {
      if (spec.suspend) {
        yield* Effect.logInfo("CronWorkflow suspended, skipping execution").pipe(annotate(cron))
        return false
      }
      if (draft.phase === "Stopped") {
        yield* Effect.logInfo("CronWorkflow is marked as stopped since it achieved the stopping condition").pipe(annotate(cron))
        return false
      }
      const when = evaluateCronWhen(withDraft(cron, draft), spec.when)
      if (Result.isFailure(when)) {
        yield* reportError(cron, draft, submissionError, `run policy error: ${when.failure}`)
        return false
      }
      if (!when.success) {
        yield* Effect.logInfo("CronWorkflow 'when' is false, skipping execution").pipe(annotate(cron))
        return false
      }
      if (draft.active.length === 0 || spec.concurrencyPolicy === "Allow") return true
      if (spec.concurrencyPolicy === "Forbid") {
        yield* Effect.logInfo("'ConcurrencyPolicy: Forbid' and has an active Workflow so it was not run").pipe(annotate(cron))
        return false
      }
      yield* Effect.logInfo("'ConcurrencyPolicy: Replace' and has active Workflows").pipe(annotate(cron))
      for (const ref of draft.active) {
        const stopped = yield* terminate(ref).pipe(Effect.result)
        if (Result.isFailure(stopped)) {
          yield* reportError(cron, draft, submissionError, `run policy error: error stopping workflow ${ref.name}: ${stopped.failure.message}`)
          return false
        }
        yield* Effect.logInfo("stopping").pipe(Effect.annotateLogs({ workflow: ref.name }), annotate(cron))
      }
      return true
    })

  /** Upstream's `run`: one scheduled run at `scheduledMs` (the time it was due, whenever it runs). */
  const run = (key: string, scheduledMs: number) =>
    locked(key, Effect.gen(function*() {
      let cron = yield* current(key)
      if (cron === undefined || isCompleted(cron)) return
      // the active list first, so that Forbid and Replace see workflows that finished meanwhile
      const refreshed = yield* reconcileChildren(cron)
      if (refreshed !== undefined) {
        yield* persist(cron, refreshed)
        cron = (yield* current(key)) ?? cron
        if (isCompleted(cron) || refreshed.phase === "Stopped") return
      }
      const parsed = parseCronSpec(cron)
      const draft = draftOf(cron)
      if (Result.isFailure(parsed)) {
        yield* reportError(cron, draft, specError, parsed.failure)
        return yield* persist(cron, draft)
      }
      const spec = parsed.success
      if (cron.metadata.annotations?.[annotationLastUsedSchedule] !== spec.scheduleString) {
        draft.annotations[annotationLastUsedSchedule] = spec.scheduleString
      }
      draft.conditions = removeCondition(draft.conditions, specError)
      const stop = evaluateStop(cron, spec.stopExpression)
      if (Result.isFailure(stop)) {
        yield* reportError(cron, draft, specError, `failed to check CronWorkflow '${cron.metadata.name}' stopping condition: ${stop.failure}`)
        return yield* persist(cron, draft)
      }
      if (stop.success) {
        draft.phase = "Stopped"
        draft.labels[labelCronCompleted] = "true"
      }
      if (yield* mayRun(cron, spec, draft)) {
        const wf = workflowFor(cron, spec, scheduledMs)
        const name = wf.metadata.name!
        const namespace = wf.metadata.namespace!
        const created = yield* bounded(
          local.create("workflows", namespace, wf),
          { cluster: local.cluster, verb: "create", resource: "workflows", namespace, name }
        ).pipe(
          Effect.map((object) => ({ _tag: "Created" as const, object })),
          Effect.catchTag("KubeError", (e): Effect.Effect<{ _tag: "Created"; object: KubeObject } | { _tag: "Failed"; error: KubeError }> =>
            e.reason === "AlreadyExists"
              // Created already (by us before a restart, or by another replica): success, not a second run.
              ? getWorkflow(namespace, name).pipe(
                Effect.map((object) => ({ _tag: "Created" as const, object })),
                Effect.catchTag("KubeError", () => Effect.succeed({ _tag: "Failed" as const, error: e }))
              )
              : Effect.succeed({ _tag: "Failed" as const, error: e }))
        )
        if (created._tag === "Failed" && created.error.reason === "AlreadyExists") {
          yield* Effect.logInfo("workflow already exists").pipe(Effect.annotateLogs({ workflow: name }), annotate(cron))
        } else if (created._tag === "Failed") {
          yield* reportError(cron, draft, submissionError, `Failed to submit Workflow: ${created.error.message}`)
        } else if (controllingCron(created.object) === cron.metadata.uid) {
          const object = created.object
          if (!fulfilled(workflowPhase(object)) && !draft.active.some((r) => r.uid === object.metadata.uid)) draft.active.push(referenceTo(object))
          draft.phase = "Active"
          const previous = draft.lastScheduledTime === undefined ? Number.NaN : Date.parse(draft.lastScheduledTime)
          if (!(previous > scheduledMs)) draft.lastScheduledTime = formatMetaTime(scheduledMs)
          draft.conditions = removeCondition(draft.conditions, submissionError)
          yield* Effect.logInfo("created workflow").pipe(Effect.annotateLogs({ workflow: name }), annotate(cron))
        } else {
          yield* reportError(cron, draft, submissionError, `Failed to submit Workflow: workflow ${name} exists and was not created by this CronWorkflow`)
        }
      }
      yield* persist(cron, draft)
    }))

  // --- timers --------------------------------------------------------------------------------------

  const timers = new Map<string, Timer>()

  /** One CronWorkflow's timer: a missed run within its deadline first, then each scheduled time. */
  const timerLoop = (key: string, cron: KubeObject, spec: CronSpec, timer: Timer) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const latest = (yield* current(key)) ?? cron
      // A changed schedule runs nothing missed (upstream's IsUsingNewSchedule).
      if (latest.metadata.annotations?.[annotationLastUsedSchedule] === spec.scheduleString) {
        const last = statusOf(latest).lastScheduledTime
        const lastMs = last ? Date.parse(last) : Number.NaN
        const missed = missedRun(spec.schedules, Number.isNaN(lastMs) ? undefined : lastMs, now, spec.startingDeadlineSeconds)
        if (missed !== undefined) {
          yield* Effect.logInfo("missed an execution and is within StartingDeadline").pipe(
            Effect.annotateLogs({ missedExecutionTime: formatMetaTime(missed) }),
            annotate(cron)
          )
          yield* run(key, missed)
        }
      }
      let after = now
      while (true) {
        const next = nextOf(spec.schedules, after)
        timer.next = next
        if (next === undefined) return yield* Effect.never
        const wait = next - (yield* Clock.currentTimeMillis)
        if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
        yield* run(key, next)
        after = next
      }
    })

  const stopTimer = (key: string) =>
    Effect.suspend(() => {
      const timer = timers.get(key)
      if (timer === undefined) return Effect.void
      timers.delete(key)
      return Scope.close(timer.scope, Exit.void)
    })

  /** (Re)starts the timer of a CronWorkflow whose spec changed; none for a completed or invalid one. */
  const onUpsert = (cron: KubeObject) =>
    Effect.gen(function*() {
      const key = keyOf(cron)
      yield* checkSpec(key)
      const tk = timerKey(cron)
      if (timers.get(key)?.key === tk) return
      yield* stopTimer(key)
      const parsed = parseCronSpec(cron)
      if (isCompleted(cron) || Result.isFailure(parsed)) {
        timers.set(key, { key: tk, scope: yield* Scope.fork(scope), next: undefined })
        return
      }
      const timer: Timer = { key: tk, scope: yield* Scope.fork(scope), next: undefined }
      timers.set(key, timer)
      yield* supervisor.superviseScoped(`cron/${key}`, timerLoop(key, cron, parsed.success, timer), {
        annotations: { namespace: cron.metadata.namespace ?? "", cronWorkflow: cron.metadata.name ?? "" }
      }).pipe(Scope.provide(timer.scope))
    })

  const onDelete = (key: string) =>
    Effect.gen(function*() {
      yield* stopTimer(key)
      locks.delete(key)
      written.delete(key)
      yield* Effect.logInfo("Deleting cron workflow").pipe(Effect.annotateLogs({ cronWorkflow: key }))
    })

  /** Every CronWorkflow in the cache gets its timer, and timers of those gone stop (after a (re)start). */
  const resync = Effect.gen(function*() {
    const all = yield* crons.list()
    const keys = new Set(all.map(keyOf))
    for (const key of [...timers.keys()]) if (!keys.has(key)) yield* onDelete(key)
    for (const cron of all) yield* onUpsert(cron)
  })

  yield* Effect.addFinalizer(() => Effect.forEach([...timers.keys()], stopTimer, { discard: true }))

  yield* supervisor.superviseScoped("cron-trigger", Effect.scoped(Effect.gen(function*() {
    const subscription = yield* crons.subscribe
    yield* crons.synced
    yield* children.synced
    yield* resync
    return yield* Effect.forever(Effect.flatMap(PubSub.takeAll(subscription), (changes) =>
      Effect.forEach(changes, (change) => change.type === "delete" ? onDelete(keyOf(change.object)) : onUpsert(change.object), { discard: true })))
  })))

  // A child's change syncs its CronWorkflow at once; the periodic sync catches anything else.
  yield* supervisor.superviseScoped("cron-children-trigger", Effect.scoped(Effect.gen(function*() {
    const subscription = yield* children.subscribe
    yield* crons.synced
    yield* children.synced
    return yield* Effect.forever(Effect.flatMap(PubSub.takeAll(subscription), (changes) => {
      const keys = new Set<string>()
      for (const change of changes) {
        const name = change.object.metadata.labels?.[labelCronWorkflow]
        if (name) keys.add(`${change.object.metadata.namespace ?? ""}/${name}`)
      }
      return Effect.forEach(keys, sync, { discard: true })
    }))
  })))
  yield* supervisor.superviseScoped("cron-sync", syncAll.pipe(Effect.andThen(Effect.sleep(cronSyncPeriod)), Effect.forever))

  return CronWorkflows.of({
    cronWorkflows: crons,
    children,
    syncAll,
    nextRuns: Effect.sync(() => {
      const out = new Map<string, number>()
      for (const [key, timer] of timers) if (timer.next !== undefined) out.set(key, timer.next)
      return out
    })
  })
})
