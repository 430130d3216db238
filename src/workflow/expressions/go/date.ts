/**
 * Go `time.Format` reference-layout formatting (`2006-01-02T15:04:05Z07:00`), in UTC,
 * and parsing of the timestamps Argo puts in variables (RFC 3339).
 */
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

const pad = (n: number, w = 2) => String(n).padStart(w, "0")

// Longest tokens first, as Go's layout scanner recognises them.
const TOKENS = [
  "January", "Monday", "MST", "Z07:00:00", "-07:00:00", "Z070000", "-070000", "Z07:00", "-07:00", "Z0700", "-0700", "Z07", "-07",
  "2006", "Jan", "Mon", "002", "__2", "_2", "01", "02", "03", "04", "05", "06", "15", "PM", "pm",
  ".000000000", ".00000000", ".0000000", ".000000", ".00000", ".0000", ".000", ".00", ".0",
  ",000000000", ",00000000", ",0000000", ",000000", ",00000", ",0000", ",000", ",00", ",0",
  ".999999999", ".99999999", ".9999999", ".999999", ".99999", ".9999", ".999", ".99", ".9",
  "1", "2", "3", "4", "5"
]

/** Formats a date (UTC) with a Go reference layout. */
export const formatGoDate = (layout: string, d: Date): string => {
  const Y = d.getUTCFullYear()
  const M = d.getUTCMonth()
  const D = d.getUTCDate()
  const h = d.getUTCHours()
  const m = d.getUTCMinutes()
  const s = d.getUTCSeconds()
  const nanos = d.getUTCMilliseconds() * 1_000_000
  const yday = Math.floor((Date.UTC(Y, M, D) - Date.UTC(Y, 0, 1)) / 86_400_000) + 1
  let out = ""
  let i = 0
  while (i < layout.length) {
    const tok = TOKENS.find((t) => layout.startsWith(t, i))
    // Go only treats "Jan"/"Mon"/"January"/"Monday" etc. as tokens; digits inside words still match, as in Go.
    if (tok === undefined) {
      out += layout[i]
      i++
      continue
    }
    i += tok.length
    switch (tok) {
      case "January":
        out += MONTHS[M]
        break
      case "Jan":
        out += MONTHS[M].slice(0, 3)
        break
      case "Monday":
        out += DAYS[d.getUTCDay()]
        break
      case "Mon":
        out += DAYS[d.getUTCDay()].slice(0, 3)
        break
      case "MST":
        out += "UTC"
        break
      case "2006":
        out += pad(Y, 4)
        break
      case "06":
        out += pad(Y % 100)
        break
      case "01":
        out += pad(M + 1)
        break
      case "1":
        out += String(M + 1)
        break
      case "02":
        out += pad(D)
        break
      case "_2":
        out += String(D).padStart(2, " ")
        break
      case "2":
        out += String(D)
        break
      case "002":
        out += pad(yday, 3)
        break
      case "__2":
        out += String(yday).padStart(3, " ")
        break
      case "15":
        out += pad(h)
        break
      case "03":
        out += pad(h % 12 === 0 ? 12 : h % 12)
        break
      case "3":
        out += String(h % 12 === 0 ? 12 : h % 12)
        break
      case "04":
        out += pad(m)
        break
      case "4":
        out += String(m)
        break
      case "05":
        out += pad(s)
        break
      case "5":
        out += String(s)
        break
      case "PM":
        out += h >= 12 ? "PM" : "AM"
        break
      case "pm":
        out += h >= 12 ? "pm" : "am"
        break
      default:
        if (tok.startsWith("Z")) out += "Z"
        else if (tok.startsWith("-")) out += tok.includes(":") ? (tok.length > 6 ? "+00:00:00" : "+00:00") : tok === "-07" ? "+00" : tok.length > 5 ? "+000000" : "+0000"
        else {
          // fractional seconds
          const digits = tok.length - 1
          const frac = String(nanos).padStart(9, "0").slice(0, digits)
          if (tok[1] === "0") out += tok[0] + frac
          else {
            const trimmed = frac.replace(/0+$/, "")
            if (trimmed !== "") out += tok[0] + trimmed
          }
        }
    }
  }
  return out
}

/** Parses an RFC 3339 timestamp (as Argo formats `workflow.creationTimestamp`). */
export const parseRfc3339 = (s: string): Date | undefined => {
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s)) return undefined
  const d = new Date(s.replace(" ", "T"))
  return Number.isNaN(d.getTime()) ? undefined : d
}
