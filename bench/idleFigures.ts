/**
 * The pure figures of `npm run bench -- --idle` (bench/idle.ts): a process's
 * CPU time from /proc/<pid>/stat, and, from the API server's audit log, each
 * identity's watches (opened, still open) and other requests over a window.
 */

/** One audit event (audit.k8s.io/v1 Event), as much of it as the figures need. */
export interface AuditEvent {
  readonly auditID: string
  readonly stage: string
  readonly verb: string
  readonly user: { readonly username: string }
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly namespace?: string }
  readonly requestURI?: string
  readonly requestReceivedTimestamp?: string
  readonly stageTimestamp?: string
  readonly responseStatus?: { readonly code?: number }
}

/**
 * utime + stime of a process in clock ticks, from the text of /proc/<pid>/stat
 * (fields 14 and 15; the command name, field 2, is in parentheses and may hold spaces).
 */
export const cpuTicksOfStat = (stat: string): number => {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).trim().split(/\s+/)
  // fields[0] is field 3 (state): utime is field 14, stime field 15
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`not a /proc/<pid>/stat line: ${stat.slice(0, 80)}`)
  return utime + stime
}

/** CPU % of one core over a window: ticks spent over wall time. */
export const cpuPercent = (ticks: number, clockTicksPerSecond: number, wallMs: number): number =>
  wallMs <= 0 ? NaN : (ticks / clockTicksPerSecond) / (wallMs / 1000) * 100

const resourceOf = (e: AuditEvent): string =>
  e.objectRef?.resource === undefined
    ? "(non-resource)"
    : e.objectRef.subresource ? `${e.objectRef.resource}/${e.objectRef.subresource}` : e.objectRef.resource

/** One identity's watches of one resource. */
export interface WatchFigures {
  /** Watch requests still open at the window's end (ResponseStarted, no ResponseComplete by then). */
  readonly openAtEnd: number
  /** Watch requests received during the window (a reopened or extra watch). */
  readonly openedInWindow: number
  /** Watch requests that ended during the window. */
  readonly closedInWindow: number
  /** Watch requests since the start of the log (the first ones included). */
  readonly openedInTotal: number
}

/** One identity over a window. */
export interface IdentityFigures {
  /** By resource (`pods`, `workflowtaskresults`...), every resource the identity ever watched. */
  readonly watches: Record<string, WatchFigures>
  /** list requests received during the window, by resource. */
  readonly listsInWindow: Record<string, number>
  /** Every request received during the window (watches included), by `verb resource`. */
  readonly requestsInWindow: Record<string, number>
}

/**
 * Each identity's watches and requests over [from, to] (epoch ms), from audit
 * events at Metadata level without the RequestReceived stage: a watch logs
 * ResponseStarted when the server answers and ResponseComplete when it ends;
 * other requests log ResponseComplete only (Panic when they failed so).
 */
export const identityFigures = (
  events: Iterable<AuditEvent>,
  users: ReadonlyArray<string>,
  from: number,
  to: number
): Record<string, IdentityFigures> => {
  interface Request {
    verb: string
    resource: string
    received: number
    started?: number
    completed?: number
  }
  const wanted = new Set(users)
  const byUser = new Map<string, Map<string, Request>>()
  for (const e of events) {
    const user = e.user?.username
    if (user === undefined || !wanted.has(user)) continue
    let requests = byUser.get(user)
    if (requests === undefined) byUser.set(user, requests = new Map())
    let r = requests.get(e.auditID)
    const received = e.requestReceivedTimestamp === undefined ? NaN : Date.parse(e.requestReceivedTimestamp)
    if (r === undefined) requests.set(e.auditID, r = { verb: e.verb, resource: resourceOf(e), received })
    const at = e.stageTimestamp === undefined ? received : Date.parse(e.stageTimestamp)
    if (e.stage === "ResponseStarted") r.started = at
    else if (e.stage === "ResponseComplete" || e.stage === "Panic") r.completed = at
  }
  const inWindow = (t: number | undefined) => t !== undefined && t >= from && t <= to
  const out: Record<string, IdentityFigures> = {}
  for (const user of users) {
    const watches: Record<string, { openAtEnd: number; openedInWindow: number; closedInWindow: number; openedInTotal: number }> = {}
    const listsInWindow: Record<string, number> = {}
    const requestsInWindow: Record<string, number> = {}
    for (const r of byUser.get(user)?.values() ?? []) {
      if (r.verb === "watch") {
        const w = watches[r.resource] ??= { openAtEnd: 0, openedInWindow: 0, closedInWindow: 0, openedInTotal: 0 }
        if (r.received <= to) w.openedInTotal += 1
        if (inWindow(r.received)) w.openedInWindow += 1
        if (inWindow(r.completed)) w.closedInWindow += 1
        if (r.started !== undefined && r.started <= to && !(r.completed !== undefined && r.completed <= to)) w.openAtEnd += 1
      }
      if (!inWindow(r.received)) continue
      const key = `${r.verb} ${r.resource}`
      requestsInWindow[key] = (requestsInWindow[key] ?? 0) + 1
      if (r.verb === "list") listsInWindow[r.resource] = (listsInWindow[r.resource] ?? 0) + 1
    }
    out[user] = {
      watches: Object.fromEntries(Object.entries(watches).sort(([a], [b]) => a.localeCompare(b))),
      listsInWindow: Object.fromEntries(Object.entries(listsInWindow).sort(([a], [b]) => a.localeCompare(b))),
      requestsInWindow: Object.fromEntries(Object.entries(requestsInWindow).sort(([a], [b]) => a.localeCompare(b)))
    }
  }
  return out
}

/** The idle targets (issue 14): CPU under 1%, one open watch per context and resource, no re-lists. */
export interface IdleTargets {
  readonly maxCpuPercent: number
  /** The resources every remote context must watch, exactly once each. */
  readonly remoteResources: ReadonlyArray<string>
  /**
   * Watches a resource may open during the window: a server-side watch timeout
   * (flotilla asks for 300-600 s) ends a watch, which then resumes; so one
   * reopen per 300 s of window is allowed, none in a shorter window.
   */
  readonly serverTimeoutSeconds: number
}

/** The misses of a run, as sentences; empty when every target is met. */
export const idleMisses = (
  run: {
    readonly cpuPercent: number
    readonly windowSeconds: number
    /** Context name → its identity's figures. */
    readonly remote: Record<string, IdentityFigures>
    /** The controller's own identity on its local cluster. */
    readonly local: IdentityFigures
  },
  targets: IdleTargets
): Array<string> => {
  const misses: Array<string> = []
  if (!(run.cpuPercent < targets.maxCpuPercent)) {
    misses.push(`controller CPU ${run.cpuPercent.toFixed(2)}% over ${run.windowSeconds} s idle >= ${targets.maxCpuPercent}%`)
  }
  const reopensAllowed = Math.floor(run.windowSeconds / targets.serverTimeoutSeconds)
  for (const [context, f] of Object.entries(run.remote)) {
    for (const resource of new Set([...targets.remoteResources, ...Object.keys(f.watches)])) {
      const w = f.watches[resource]
      if (w === undefined || w.openAtEnd !== 1) {
        misses.push(`${context}: ${w?.openAtEnd ?? 0} open watches of ${resource} (want 1)`)
      }
      if (w !== undefined && w.openedInWindow > reopensAllowed) {
        misses.push(`${context}: ${w.openedInWindow} watches of ${resource} opened during the window (at most ${reopensAllowed} in ${run.windowSeconds} s)`)
      }
    }
    for (const [resource, n] of Object.entries(f.listsInWindow)) misses.push(`${context}: ${n} lists of ${resource} during the window (want 0)`)
  }
  for (const [resource, n] of Object.entries(run.local.listsInWindow)) misses.push(`local: ${n} lists of ${resource} during the window (want 0)`)
  return misses
}
