import { assert, describe, it } from "@effect/vitest"
import { humanizeMs, parseDurationMs } from "../../src/util/goDuration.js"
import { isRecord } from "../../src/util/records.js"
import { isoSeconds } from "../../src/util/time.js"

describe("parseDurationMs", () => {
  it("reads Go durations, Argo's days and bare seconds", () => {
    assert.strictEqual(parseDurationMs("2s"), 2000)
    assert.strictEqual(parseDurationMs("1m30s"), 90_000)
    assert.strictEqual(parseDurationMs("500ms"), 500)
    assert.strictEqual(parseDurationMs("1.5h"), 5_400_000)
    assert.strictEqual(parseDurationMs("1d"), 86_400_000)
    assert.strictEqual(parseDurationMs("250µs"), 0.25)
    assert.strictEqual(parseDurationMs("250μs"), 0.25)
    assert.strictEqual(parseDurationMs(" 10 "), 10_000)
    assert.strictEqual(parseDurationMs("1.5"), 1500)
    assert.strictEqual(parseDurationMs("-5"), -5000)
    assert.strictEqual(parseDurationMs(3), 3000)
  })

  it("refuses anything else", () => {
    for (const s of ["", "soon", "2s later", "2x", "s", "1m-30s", "-1m"]) assert.isUndefined(parseDurationMs(s), s)
    assert.isUndefined(parseDurationMs(undefined))
  })

  it("humanizes whole seconds", () => {
    assert.strictEqual(humanizeMs(2000), "2s")
    assert.strictEqual(humanizeMs(3_723_000), "1h2m3s")
    assert.strictEqual(humanizeMs(3_600_000), "1h")
  })
})

describe("isoSeconds", () => {
  it("drops milliseconds, as metav1.Time serialises", () => {
    assert.strictEqual(isoSeconds(Date.UTC(2024, 4, 1, 12, 0, 3, 999)), "2024-05-01T12:00:03Z")
    assert.strictEqual(isoSeconds(-500), "1969-12-31T23:59:59Z")
  })
})

describe("isRecord", () => {
  it("is a mapping, not a list or null", () => {
    assert.isTrue(isRecord({}))
    assert.isTrue(isRecord({ a: 1 }))
    assert.isFalse(isRecord([]))
    assert.isFalse(isRecord(null))
    assert.isFalse(isRecord("x"))
    assert.isFalse(isRecord(undefined))
  })
})
