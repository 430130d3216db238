import { Redacted } from "effect"
console.log(JSON.stringify({ a: Redacted.make("x") }, (_k, v) => Redacted.isRedacted(v) ? `redacted:${Redacted.value(v)}` : v))
