/**
 * Hand-written SVG plots of the compare benchmark (no plotting dependency):
 * throughput over time (workflows completed against seconds since the first
 * submission, one line per controller) and the latency histogram (pod done to
 * node done, one bar series per controller), side by side in one file.
 *
 * Pure: `compareSvg` takes the series and gives the SVG text; compare.ts
 * writes it to bench/results/compare-<pass>.svg.
 */

export interface PlotSeries {
  readonly label: string
  /** Seconds from the first submission to each workflow seen ended, any order. */
  readonly completedAtSeconds: ReadonlyArray<number>
  /** Pod done to node done, milliseconds, any order. */
  readonly latenciesMs: ReadonlyArray<number>
}

const colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) < 10 ? 2 : 1).replace(/\.?0+$/, ""))

/** Round "nice" ticks from 0 to at least `max` (1, 2 or 5 times a power of ten apart). */
export const ticks = (max: number, count = 5): Array<number> => {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1]
  const raw = max / count
  const power = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power
  const out: Array<number> = []
  for (let t = 0; t < max + step / 2; t += step) out.push(Number(t.toPrecision(12)))
  if (out[out.length - 1]! < max) out.push(Number((out[out.length - 1]! + step).toPrecision(12)))
  return out
}

/** Histogram bins of `width` from 0: counts per bin, the last bin holding the maximum. */
export const histogram = (values: ReadonlyArray<number>, width: number, bins: number): Array<number> => {
  const counts = new Array<number>(bins).fill(0)
  for (const v of values) {
    if (!Number.isFinite(v)) continue
    counts[Math.min(bins - 1, Math.max(0, Math.floor(v / width)))]! += 1
  }
  return counts
}

interface Panel {
  readonly x: number
  readonly y: number
  readonly w: number
  readonly h: number
}

const axes = (p: Panel, xTicks: ReadonlyArray<number>, yTicks: ReadonlyArray<number>, xLabel: string, yLabel: string, title: string) => {
  const xMax = xTicks[xTicks.length - 1]!
  const yMax = yTicks[yTicks.length - 1]!
  const out: Array<string> = []
  out.push(`<text x="${p.x + p.w / 2}" y="${p.y - 12}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`)
  for (const t of yTicks) {
    const y = p.y + p.h - (t / yMax) * p.h
    out.push(`<line x1="${p.x}" y1="${y}" x2="${p.x + p.w}" y2="${y}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${p.x - 6}" y="${y + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`)
  }
  for (const t of xTicks) {
    const x = p.x + (t / xMax) * p.w
    out.push(`<line x1="${x}" y1="${p.y + p.h}" x2="${x}" y2="${p.y + p.h + 4}" stroke="#333"/>`)
    out.push(`<text x="${x}" y="${p.y + p.h + 17}" text-anchor="middle" font-size="11">${fmt(t)}</text>`)
  }
  out.push(`<rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" fill="none" stroke="#333"/>`)
  out.push(`<text x="${p.x + p.w / 2}" y="${p.y + p.h + 34}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`)
  out.push(
    `<text x="${p.x - 42}" y="${p.y + p.h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${p.x - 42} ${p.y + p.h / 2})">${esc(yLabel)}</text>`
  )
  return out
}

const legend = (p: Panel, labels: ReadonlyArray<string>) => [
  // a backdrop, so lines under the legend do not cross its text (about 7 px a character at 12 px)
  `<rect x="${p.x + 5}" y="${p.y + 5}" width="${Math.min(p.w - 10, 30 + 7 * Math.max(0, ...labels.map((l) => l.length)))}" height="${
    8 + 18 * labels.length
  }" fill="white" fill-opacity="0.85"/>`,
  ...labels.flatMap((label, i) => [
    `<rect x="${p.x + 10}" y="${p.y + 10 + i * 18}" width="12" height="12" fill="${colors[i % colors.length]}"/>`,
    `<text x="${p.x + 28}" y="${p.y + 20 + i * 18}" font-size="12">${esc(label)}</text>`
  ])
]

/** Completed workflows against seconds: a step line per series, starting at (0, 0). */
const throughputPanel = (p: Panel, series: ReadonlyArray<PlotSeries>): Array<string> => {
  const maxT = Math.max(0, ...series.flatMap((s) => s.completedAtSeconds.filter(Number.isFinite)))
  const maxN = Math.max(1, ...series.map((s) => s.completedAtSeconds.length))
  const xTicks = ticks(maxT)
  const yTicks = ticks(maxN)
  const xMax = xTicks[xTicks.length - 1]!
  const yMax = yTicks[yTicks.length - 1]!
  const out = axes(p, xTicks, yTicks, "seconds since the first submission", "workflows completed", "Throughput over time")
  series.forEach((s, i) => {
    const times = [...s.completedAtSeconds].filter(Number.isFinite).sort((a, b) => a - b)
    const px = (t: number) => (p.x + (t / xMax) * p.w).toFixed(1)
    const py = (n: number) => (p.y + p.h - (n / yMax) * p.h).toFixed(1)
    const points = [`${px(0)},${py(0)}`]
    times.forEach((t, k) => {
      points.push(`${px(t)},${py(k)}`, `${px(t)},${py(k + 1)}`)
    })
    out.push(`<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${points.join(" ")}"/>`)
  })
  out.push(...legend(p, series.map((s) => {
    const times = s.completedAtSeconds.filter(Number.isFinite)
    const end = Math.max(0, ...times)
    return end > 0 ? `${s.label}: ${fmt(Math.round((times.length / end) * 600) / 10)} workflows/min` : s.label
  })))
  return out
}

/** Latency histogram: bars per bin, the series side by side within a bin. */
const latencyPanel = (p: Panel, series: ReadonlyArray<PlotSeries>): Array<string> => {
  const all = series.flatMap((s) => s.latenciesMs.filter(Number.isFinite))
  const max = Math.max(1, ...all)
  const bins = 20
  const edges = ticks(max, bins)
  const width = edges[1]! - edges[0]!
  const binCount = Math.floor(max / width) + 1
  const counts = series.map((s) => histogram(s.latenciesMs, width, binCount))
  const xTicks = ticks(binCount * width)
  const yTicks = ticks(Math.max(1, ...counts.flat()))
  const xMax = xTicks[xTicks.length - 1]!
  const yMax = yTicks[yTicks.length - 1]!
  const out = axes(p, xTicks, yTicks, "pod done to node done, ms", "pods", "Latency histogram")
  const binW = (width / xMax) * p.w
  const barW = binW / Math.max(1, series.length)
  counts.forEach((c, i) => {
    c.forEach((n, b) => {
      if (n === 0) return
      const h = (n / yMax) * p.h
      const x = p.x + b * binW + i * barW
      out.push(
        `<rect x="${x.toFixed(1)}" y="${(p.y + p.h - h).toFixed(1)}" width="${Math.max(0.5, barW - 0.5).toFixed(1)}" height="${h.toFixed(1)}" fill="${colors[i % colors.length]}" fill-opacity="0.8"/>`
      )
    })
  })
  out.push(...legend(p, series.map((s) => {
    const sorted = s.latenciesMs.filter(Number.isFinite).sort((a, b) => a - b)
    if (sorted.length === 0) return s.label
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
    return `${s.label}: p50 ${fmt(at(0.5))} ms, p99 ${fmt(at(0.99))} ms`
  })))
  return out
}

/** A white SVG page of `width` x `height` with `title` centred on top and `body` under it. */
const svgDocument = (width: number, height: number, title: string, body: ReadonlyArray<string>): string =>
  [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16">${esc(title)}</text>`,
    ...body,
    `</svg>`,
    ""
  ].join("\n")

/** Both plots of one pass as one SVG document. */
export const compareSvg = (title: string, series: ReadonlyArray<PlotSeries>): string => {
  const width = 1100
  const height = 440
  const body = [
    ...throughputPanel({ x: 70, y: 60, w: 430, h: 320 }, series),
    ...latencyPanel({ x: 620, y: 60, w: 430, h: 320 }, series)
  ]
  return svgDocument(width, height, title, body)
}

// --------------------------------------------------------------------------- cost per workflow vs clusters

/** One cluster count's cost per workflow (bench/clusters.ts, issue 14 item 6). */
export interface ScalePlotPoint {
  readonly clusters: number
  readonly cpuMsPerWorkflow: number
  readonly apiRequestsPerWorkflow: number
}

/** A line with a dot per point, y from 0 (a flat curve looks flat), labelled with each value. */
const costPanel = (p: Panel, points: ReadonlyArray<ScalePlotPoint>, figure: (pt: ScalePlotPoint) => number, yLabel: string, title: string): Array<string> => {
  const pts = points.filter((pt) => Number.isFinite(pt.clusters) && Number.isFinite(figure(pt))).sort((a, b) => a.clusters - b.clusters)
  const xTicks = ticks(Math.max(1, ...pts.map((pt) => pt.clusters)))
  const yTicks = ticks(Math.max(0, ...pts.map(figure)) * 1.15)
  const xMax = xTicks[xTicks.length - 1]!
  const yMax = yTicks[yTicks.length - 1]!
  const out = axes(p, xTicks, yTicks, "clusters", yLabel, title)
  const px = (x: number) => (p.x + (x / xMax) * p.w).toFixed(1)
  const py = (y: number) => (p.y + p.h - (y / yMax) * p.h).toFixed(1)
  if (pts.length > 0) {
    out.push(`<polyline fill="none" stroke="${colors[0]}" stroke-width="2" points="${pts.map((pt) => `${px(pt.clusters)},${py(figure(pt))}`).join(" ")}"/>`)
  }
  for (const pt of pts) {
    out.push(`<circle cx="${px(pt.clusters)}" cy="${py(figure(pt))}" r="4" fill="${colors[0]}"/>`)
    out.push(`<text x="${px(pt.clusters)}" y="${(Number(py(figure(pt))) - 9).toFixed(1)}" text-anchor="middle" font-size="11">${fmt(figure(pt))}</text>`)
  }
  return out
}

/** Cost per workflow against the number of clusters: CPU ms and API requests, side by side. */
export const scaleSvg = (title: string, points: ReadonlyArray<ScalePlotPoint>): string => {
  const width = 1100
  const height = 440
  return svgDocument(width, height, title, [
    ...costPanel({ x: 70, y: 60, w: 430, h: 320 }, points, (pt) => pt.cpuMsPerWorkflow, "CPU ms per workflow", "CPU per workflow"),
    ...costPanel({ x: 620, y: 60, w: 430, h: 320 }, points, (pt) => pt.apiRequestsPerWorkflow, "controller API requests per workflow", "API requests per workflow")
  ])
}

// --------------------------------------------------------------------------- large workflows (bench/large.ts)

/** One controller's pods of one large workflow: seconds from its submission to each pod's completion. */
export interface CompletionSeries {
  readonly label: string
  readonly completedAtSeconds: ReadonlyArray<number>
}

/** Pods completed against seconds: a step line per series from (0, 0), the legend giving each one's end. */
const completionPanel = (p: Panel, title: string, series: ReadonlyArray<CompletionSeries>): Array<string> => {
  const maxT = Math.max(0, ...series.flatMap((s) => s.completedAtSeconds.filter(Number.isFinite)))
  const maxN = Math.max(1, ...series.map((s) => s.completedAtSeconds.length))
  const xTicks = ticks(maxT)
  const yTicks = ticks(maxN)
  const xMax = xTicks[xTicks.length - 1]!
  const yMax = yTicks[yTicks.length - 1]!
  const out = axes(p, xTicks, yTicks, "seconds since the submission", "pods completed", title)
  series.forEach((s, i) => {
    const times = s.completedAtSeconds.filter(Number.isFinite).sort((a, b) => a - b)
    // a point per pod would be 20,000 points for 10,000 pods: keep about 400 steps
    const every = Math.max(1, Math.ceil(times.length / 400))
    const px = (t: number) => (p.x + (t / xMax) * p.w).toFixed(1)
    const py = (n: number) => (p.y + p.h - (n / yMax) * p.h).toFixed(1)
    const points = [`${px(0)},${py(0)}`]
    let drawn = 0
    times.forEach((t, k) => {
      if ((k + 1) % every !== 0 && k !== times.length - 1) return
      points.push(`${px(t)},${py(drawn)}`, `${px(t)},${py(k + 1)}`)
      drawn = k + 1
    })
    out.push(`<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${points.join(" ")}"/>`)
  })
  const labels = series.map((s) => {
    const times = s.completedAtSeconds.filter(Number.isFinite)
    return times.length > 0 ? `${s.label}: ${times.length} pods in ${fmt(Math.round(Math.max(...times) * 10) / 10)} s` : `${s.label}: no pod`
  })
  // bottom right: the lines rise from the bottom left, the fastest to the top left
  const w = Math.min(p.w, 40 + 7 * Math.max(0, ...labels.map((l) => l.length)))
  const h = 18 + 18 * labels.length
  out.push(...legend({ x: p.x + p.w - w, y: p.y + p.h - h, w, h }, labels))
  return out
}

/** The large-workflow runs as one SVG: a pods-completed-over-time panel per workload, both controllers in each. */
export const largeSvg = (title: string, panels: ReadonlyArray<{ readonly title: string; readonly series: ReadonlyArray<CompletionSeries> }>): string => {
  const panelW = 430
  const width = Math.max(1, panels.length) * (panelW + 120) + 20
  const height = 440
  const body = panels.flatMap((panel, i) => completionPanel({ x: 70 + i * (panelW + 120), y: 60, w: panelW, h: 320 }, panel.title, panel.series))
  return svgDocument(width, height, title, body)
}
