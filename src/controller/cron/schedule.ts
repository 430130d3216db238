/**
 * A CronWorkflow's schedules as upstream reads them (robfig/cron's `ParseStandard`): five fields
 * (minute hour day-of-month month day-of-week, `?` meaning `*`), the descriptors `@yearly`,
 * `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly` and `@every <duration>`,
 * and a `CRON_TZ=Zone ` or `TZ=Zone ` prefix (what upstream prepends for `spec.timezone`).
 * The cron fields themselves are parsed by effect's `Cron` module; this module only maps
 * upstream's extras onto it. Pure: times come in as epoch milliseconds.
 *
 * Never: throw. A schedule that can never fire (say, `0 0 31 2 *`) has no next time, as robfig's
 * zero time, instead of the exception `Cron.next` raises for it.
 */
import { Cron, DateTime, Option, Result } from "effect"
import { parseDurationMs } from "../../util/goDuration.js"

export interface Schedule {
  /** The schedule as written (with any timezone prefix). */
  readonly text: string
  /** The first time strictly after `afterMs`, or undefined when there is none. */
  readonly next: (afterMs: number) => number | undefined
  /** The latest time strictly before `beforeMs` and strictly after `afterMs`, or undefined. */
  readonly latestBetween: (afterMs: number, beforeMs: number) => number | undefined
  /** The time zone the fields are read in (undefined: the process's local time, as upstream). */
  readonly timeZone: string | undefined
}

const descriptors: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *"
}

/** Whether `zone` names an IANA time zone (Go's `time.LoadLocation`; `UTC` and `Local` too). */
export const validTimeZone = (zone: string): boolean => zone === "Local" || Option.isSome(DateTime.zoneMakeNamed(zone))

const safe = <A>(f: () => A): A | undefined => {
  try {
    return f()
  } catch {
    return undefined
  }
}

/** A schedule, or the reason it is malformed (robfig's wording where it has one). */
export const parseSchedule = (text: string, defaultZone: string | undefined): Result.Result<Schedule, string> => {
  let rest = text.trim()
  let zone = defaultZone
  const prefix = /^(?:CRON_TZ|TZ)=(\S+)\s+/.exec(rest)
  if (prefix) {
    zone = prefix[1]
    rest = rest.slice(prefix[0].length).trim()
  }
  if (zone === "Local") zone = undefined
  if (zone !== undefined && !validTimeZone(zone)) return Result.fail(`provided bad location ${zone}: unknown time zone ${zone}`)

  if (rest.startsWith("@every ") || rest.startsWith("@every\t")) {
    const arg = rest.slice("@every".length).trim()
    // Go's ParseDuration needs a unit; a bare number is not a duration there.
    const ms = /^\d+(\.\d+)?$/.test(arg) ? undefined : parseDurationMs(arg)
    if (ms === undefined || ms < 0) return Result.fail(`failed to parse duration @every ${arg}: time: invalid duration "${arg}"`)
    // robfig: at least one second, whole seconds, counted from the last run (not aligned to a clock).
    const every = Math.max(1000, ms - (ms % 1000))
    const floorSecond = (t: number) => t - (((t % 1000) + 1000) % 1000)
    return Result.succeed({
      text,
      timeZone: zone,
      next: (after) => floorSecond(after) + every,
      latestBetween: (after, before) => {
        const first = floorSecond(after) + every
        if (first >= before) return undefined
        return first + Math.floor((before - 1 - first) / every) * every
      }
    })
  }
  if (rest.startsWith("@")) {
    const expanded = descriptors[rest]
    if (expanded === undefined) return Result.fail(`unrecognized descriptor: ${rest}`)
    rest = expanded
  }
  const fields = rest.split(/\s+/).filter((f) => f !== "")
  if (fields.length !== 5) return Result.fail(`expected exactly 5 fields, found ${fields.length}: [${fields.join(" ")}]`)
  // robfig reads `?` as `*` in the day fields.
  const normalized = fields.map((f, i) => (i === 2 || i === 4) && f === "?" ? "*" : f).join(" ")
  const parsed = Cron.parse(normalized, zone)
  if (Result.isFailure(parsed)) return Result.fail(parsed.failure.message)
  const cron = parsed.success
  return Result.succeed({
    text,
    timeZone: zone,
    next: (after) => safe(() => Cron.next(cron, new Date(after)).getTime()),
    latestBetween: (after, before) => {
      const t = safe(() => Cron.prev(cron, new Date(before)).getTime())
      return t !== undefined && t > after ? t : undefined
    }
  })
}

/** The earliest next time over `schedules` strictly after `afterMs` (undefined: none will fire). */
export const nextOf = (schedules: ReadonlyArray<Schedule>, afterMs: number): number | undefined => {
  let best: number | undefined
  for (const s of schedules) {
    const t = s.next(afterMs)
    if (t !== undefined && (best === undefined || t < best)) best = t
  }
  return best
}

/**
 * Upstream's `shouldOutstandingWorkflowsBeRun`: for each schedule in order, the latest time after
 * the last scheduled run that has passed (strictly before now); the first that is still within
 * `startingDeadlineSeconds` is run, once. Without a deadline nothing missed is run.
 */
export const missedRun = (
  schedules: ReadonlyArray<Schedule>,
  lastScheduledMs: number | undefined,
  nowMs: number,
  startingDeadlineSeconds: number | undefined
): number | undefined => {
  if (lastScheduledMs === undefined || startingDeadlineSeconds === undefined) return undefined
  for (const s of schedules) {
    const missed = s.latestBetween(lastScheduledMs, nowMs)
    if (missed !== undefined && nowMs < missed + startingDeadlineSeconds * 1000) return missed
  }
  return undefined
}

/**
 * Go's `time.Format(time.RFC3339)` of an instant in a zone: seconds, and the zone's offset (`Z`
 * for UTC), e.g. `2024-01-01T09:00:00+09:00`. Upstream writes the scheduled-time annotation so.
 */
export const formatRfc3339 = (ms: number, zone: string | undefined): string => {
  const whole = ms - (((ms % 1000) + 1000) % 1000)
  const tz = zone === undefined ? undefined : DateTime.zoneMakeNamed(zone)
  const offset = tz === undefined || Option.isNone(tz)
    ? -new Date(whole).getTimezoneOffset() * 60_000
    : DateTime.zonedOffset(DateTime.makeZonedUnsafe(whole, { timeZone: tz.value }))
  const local = new Date(whole + offset).toISOString().slice(0, 19)
  if (offset === 0) return `${local}Z`
  const sign = offset < 0 ? "-" : "+"
  const abs = Math.abs(offset) / 60_000
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`
}

/** metav1.Time's JSON: RFC3339 in UTC, whole seconds. */
export const formatMetaTime = (ms: number): string => formatRfc3339(ms, "UTC")
