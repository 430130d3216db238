/**
 * Argo duration strings: a bare number means seconds; otherwise Go durations
 * ("1m30s", "500ms") plus the "d" (day) unit Argo accepts.
 */
const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Milliseconds, or undefined when the text is not a duration. */
export const parseDurationMs = (value: string | number | undefined): number | undefined => {
  if (value === undefined) return undefined
  if (typeof value === "number") return value * 1000
  const s = value.trim()
  if (s === "") return undefined
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s) * 1000
  let total = 0
  let rest = s
  const re = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/
  while (rest.length > 0) {
    const m = re.exec(rest)
    if (m === null) return undefined
    total += Number(m[1]) * units[m[2]]
    rest = rest.slice(m[0].length)
  }
  return total
}

/** Argo's `humanize.Duration`-like short form used in "Backoff for 2s". */
export const humanizeMs = (ms: number): string => {
  let s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  return `${h > 0 ? `${h}h` : ""}${m > 0 ? `${m}m` : ""}${s > 0 ? `${s}s` : ""}`
}

/** RFC 3339 at second precision, as Kubernetes serialises metav1.Time. */
export const isoSeconds = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")
