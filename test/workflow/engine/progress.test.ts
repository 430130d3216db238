/**
 * Node progress is upstream's `progress.UpdateProgress` (each non-executable
 * node sums the progress of the executable nodes it reaches through
 * `children`), computed without upstream's walk per node. Checked against a
 * direct transcription of upstream's algorithm on many generated workflows
 * (DAG diamonds, parallel step groups, nested templates, loops, retries), at
 * every reconcile from start to end.
 */
import { assert, describe, it } from "@effect/vitest"
import { readStatusNodes } from "../../../src/workflow/model/compressedNodes.js"
import { Sim, workflow } from "./harness.js"

type Node = { readonly id: string; readonly type: string; readonly progress?: string; readonly children?: ReadonlyArray<string> }

const executable = new Set(["Pod", "HTTP", "Plugin", "Container", "Suspend"])

const parse = (p: string | undefined): [number, number] | undefined => {
  const m = p === undefined ? null : /^(\d+)\/(\d+)$/.exec(p)
  if (m === null) return undefined
  const [n, d] = [Number(m[1]), Number(m[2])]
  return d > 0 && n <= d ? [n, d] : undefined
}

/** `sumProgress`, as upstream writes it. */
const sumProgress = (nodes: Readonly<Record<string, Node>>, node: Node, visited: Set<string>): [number, number] => {
  let acc: [number, number] = [0, 0]
  for (const id of node.children ?? []) {
    if (visited.has(id)) continue
    visited.add(id)
    const child = nodes[id]
    if (child === undefined) continue
    const below = sumProgress(nodes, child, visited)
    acc = [acc[0] + below[0], acc[1] + below[1]]
    const own = executable.has(child.type) ? parse(child.progress) : undefined
    if (own !== undefined) acc = [acc[0] + own[0], acc[1] + own[1]]
  }
  return acc
}

/** Upstream's progress of each non-executable node, from the executable nodes' progress as the engine wrote it. */
const expectedProgress = (nodes: Readonly<Record<string, Node>>): Record<string, string | undefined> => {
  const out: Record<string, string | undefined> = {}
  for (const node of Object.values(nodes)) {
    if (executable.has(node.type)) continue
    const p = sumProgress(nodes, node, new Set())
    out[node.id] = p[1] > 0 ? `${p[0]}/${p[1]}` : node.progress
  }
  return out
}

const actualProgress = (nodes: Readonly<Record<string, Node>>): Record<string, string | undefined> => {
  const out: Record<string, string | undefined> = {}
  for (const node of Object.values(nodes)) if (!executable.has(node.type)) out[node.id] = node.progress
  return out
}

/** A small deterministic generator (LCG), so a failure names its seed. */
const random = (seed: number) => {
  let s = seed >>> 0
  return (n: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s % n
  }
}

const generated = (seed: number) => {
  const rnd = random(seed)
  const leaf = { name: "leaf", container: { image: "busybox", command: ["true"] } }
  const pair = { name: "pair", steps: [[{ name: "a", template: "leaf" }, { name: "b", template: "leaf" }], [{ name: "c", template: "leaf" }]] }
  const diamond = {
    name: "diamond",
    dag: {
      tasks: [
        { name: "x", template: "leaf" },
        { name: "y", template: "pair", dependencies: ["x"] },
        { name: "z", template: "leaf", dependencies: ["x"] },
        { name: "w", template: "leaf", dependencies: ["y", "z"] }
      ]
    }
  }
  const flaky = { name: "flaky", retryStrategy: { limit: 2 }, container: { image: "busybox", command: ["true"] } }
  const kinds = ["leaf", "leaf", "pair", "diamond", "flaky", "loop"] as const
  const n = 6 + rnd(14)
  const tasks = Array.from({ length: n }, (_, i) => {
    const deps = [...new Set(Array.from({ length: i === 0 ? 0 : rnd(4) }, () => `t${rnd(i)}`))]
    const kind = kinds[rnd(kinds.length)]
    const call = kind === "loop"
      ? { template: "leaf", withItems: Array.from({ length: 1 + rnd(4) }, (_, k) => k) }
      : { template: kind }
    return { name: `t${i}`, ...call, ...(deps.length > 0 ? { dependencies: deps } : {}) }
  })
  const main = rnd(2) === 0
    ? { name: "main", dag: { tasks } }
    : { name: "main", steps: [[{ name: "pre", template: "pair" }, { name: "d", template: "dag" }], [{ name: "post", template: "diamond" }]] }
  return workflow({ entrypoint: "main", templates: [main, { name: "dag", dag: { tasks } }, leaf, pair, diamond, flaky] })
}

describe("node progress", () => {
  it("matches upstream's sums on generated workflows at every reconcile", () => {
    for (let seed = 1; seed <= 60; seed++) {
      const sim = new Sim(generated(seed))
      const rnd = random(seed * 7919)
      for (let round = 0; round < 60; round++) {
        const out = sim.tick()
        const r = readStatusNodes(out.status)
        if (!r.ok) throw new Error(r.error)
        const nodes = r.nodes as unknown as Record<string, Node>
        assert.deepStrictEqual(actualProgress(nodes), expectedProgress(nodes), `seed ${seed}, round ${round}`)
        if (out.status.phase !== "Running") break
        sim.apply(out, "Running")
        // Finish some of the running pods (some failing, so retries and failed branches show up).
        for (const pod of sim.pods.values()) {
          if (pod.phase !== "Running" || rnd(3) === 0) continue
          sim.finish(pod.nodeId, rnd(8) !== 0)
        }
      }
    }
  })
})
