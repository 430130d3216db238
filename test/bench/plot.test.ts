import { assert, describe, it } from "@effect/vitest"
import { plotOf, rateLimitArgs } from "../../bench/compare.js"
import { compareSvg, histogram, ticks } from "../../bench/plot.js"

describe("bench plots", () => {
  it("picks round ticks that reach the maximum", () => {
    assert.deepStrictEqual(ticks(9), [0, 2, 4, 6, 8, 10])
    assert.deepStrictEqual(ticks(100), [0, 20, 40, 60, 80, 100])
    assert.deepStrictEqual(ticks(0.7), [0, 0.2, 0.4, 0.6, 0.8])
    assert.deepStrictEqual(ticks(0), [0, 1])
  })

  it("bins values from 0, the last bin taking what is beyond", () => {
    assert.deepStrictEqual(histogram([0, 5, 9.9, 10, 35, 1000, NaN], 10, 4), [3, 1, 0, 2])
  })

  it("draws both controllers' throughput and latency as one well-formed SVG", () => {
    const svg = compareSvg("a <title> & more", [
      { label: "flotilla", completedAtSeconds: [3, 1, 2], latenciesMs: [100, 200, 300] },
      { label: "upstream", completedAtSeconds: [2, 4, 6], latenciesMs: [400, 800, 1600] }
    ])
    assert.isTrue(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    assert.isTrue(svg.trimEnd().endsWith("</svg>"))
    assert.include(svg, "a &lt;title&gt; &amp; more")
    assert.strictEqual(svg.match(/<polyline /g)?.length, 2)
    // one bar per non-empty bin and series
    assert.strictEqual(svg.match(/fill-opacity="0.8"/g)?.length, 6)
    assert.include(svg, "flotilla: 60 workflows/min")
    assert.include(svg, "upstream: p50 800 ms, p99 1600 ms")
    assert.notInclude(svg, "NaN")
    // every element opened is closed
    const open = (svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g) ?? []).length
    const close = (svg.match(/<\/[a-z]+>/g) ?? []).length
    assert.strictEqual(open, close)
  })

  it("survives empty runs", () => {
    const svg = compareSvg("empty", [{ label: "x", completedAtSeconds: [], latenciesMs: [] }])
    assert.notInclude(svg, "NaN")
    assert.notInclude(svg, "Infinity")
  })

  it("limits both controllers to upstream's defaults in the limited pass, neither in the unlimited one", () => {
    assert.deepStrictEqual(rateLimitArgs("flotilla", "limited"), ["--qps=20", "--burst=30"])
    assert.deepStrictEqual(rateLimitArgs("upstream", "limited"), ["--qps=20", "--burst=30"])
    assert.deepStrictEqual(rateLimitArgs("flotilla", "unlimited"), [])
    assert.deepStrictEqual(rateLimitArgs("upstream", "unlimited"), ["--qps=100000", "--burst=100000"])
    const svg = plotOf({ pass: "limited", flotilla: { completedAtSeconds: [1], latenciesMs: [5] }, upstream: { completedAtSeconds: [2], latenciesMs: [9] } }, 1)
    assert.include(svg, "both --qps 20 --burst 30")
  })
})
