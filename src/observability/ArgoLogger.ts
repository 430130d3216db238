/**
 * Logs in the logfmt shape Argo's controller prints (logrus text format):
 * `time="2021-08-27T14:10:56.273Z" level=info msg=cluster cluster=cluster-1 managedNamespace=remote`.
 * Operators grep for these lines (the multi-cluster set-up tells them to look
 * for `msg=cluster`), so the field names and their order are part of the
 * interface. Annotations become key=value pairs after `msg`.
 */
import { Cause, Logger, References } from "effect"

const bare = /^[^\s"=]+$/

// logrus' text formatter: empty values stay bare (`key=`), anything with spaces, quotes or `=` is quoted.
const quote = (value: string): string => (value === "" || bare.test(value) ? value : JSON.stringify(value))

const text = (value: unknown): string => {
  if (typeof value === "string") return value
  if (value instanceof Error) return value.message
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const levelName = (level: string): string => {
  switch (level) {
    case "Warn":
      return "warning"
    case "Fatal":
      return "fatal"
    default:
      return level.toLowerCase()
  }
}

/** Formats one entry; exported for tests. */
export const formatArgoLine = (options: {
  readonly date: Date
  readonly level: string
  readonly message: unknown
  readonly annotations: Readonly<Record<string, unknown>>
  readonly cause?: string | undefined
}): string => {
  const messages = Array.isArray(options.message) ? options.message : [options.message]
  let out = `time="${options.date.toISOString()}" level=${levelName(options.level)} msg=${quote(messages.map(text).join(" "))}`
  for (const [key, value] of Object.entries(options.annotations)) {
    out += ` ${key}=${quote(text(value))}`
  }
  if (options.cause) out += ` error=${quote(options.cause)}`
  return out
}

export const argoLogger: Logger.Logger<unknown, string> = Logger.make((options) =>
  formatArgoLine({
    date: options.date,
    level: options.logLevel,
    message: options.message,
    annotations: options.fiber.getRef(References.CurrentLogAnnotations),
    cause: options.cause.reasons.length > 0 ? Cause.pretty(options.cause) : undefined
  })
)

/** Replaces the default logger: Argo-style lines on stderr, like the upstream controller. */
export const layer = Logger.layer([Logger.map(argoLogger, (line) => {
  process.stderr.write(line + "\n")
})])
