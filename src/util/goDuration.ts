/**
 * Durations written the way Argo reads them: Go's `time.ParseDuration` syntax (`1m30s`, `500ms`,
 * `1.5h`, units ns, us/µs/μs, ms, s, m, h), plus `d` for days, and a bare number meaning seconds
 * (retry backoffs, template timeouts, `podGC.deleteDelayDuration`, our simulate-duration
 * annotation). The one parser of duration text in flotilla.
 */

const unitMs: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3, // U+00B5 MICRO SIGN
  "μs": 1e-3, // U+03BC GREEK SMALL LETTER MU; Go accepts both
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000
}

const component = /^(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h|d)/

/**
 * Milliseconds, or undefined when the text is not a duration. A number is seconds. Only a bare
 * number may be negative (`-5`); a unit duration is a run of number-unit pairs with nothing else.
 */
export const parseDurationMs = (value: string | number | undefined): number | undefined => {
  if (value === undefined) return undefined
  if (typeof value === "number") return value * 1000
  const s = value.trim()
  if (s === "") return undefined
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s) * 1000
  let total = 0
  let rest = s
  while (rest.length > 0) {
    const m = component.exec(rest)
    if (m === null) return undefined
    total += Number(m[1]) * unitMs[m[2]]
    rest = rest.slice(m[0].length)
  }
  return total
}

/** Argo's `humanize.Duration`-like short form used in messages such as "Backoff for 2s": `1h2m3s`, whole seconds. */
export const humanizeMs = (ms: number): string => {
  let s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  return `${h > 0 ? `${h}h` : ""}${m > 0 ? `${m}m` : ""}${s > 0 ? `${s}s` : ""}`
}
