/**
 * `status.progress` and each node's progress. Upstream's
 * `progress.UpdateProgress` (workflow/progress/updater.go), with the same sums
 * computed without its quadratic walks (see `updateProgress`).
 */
import type { Node } from "./nodes.js"

type Progress = readonly [number, number]
const parseProgress = (p: unknown): Progress | undefined => {
  const m = typeof p === "string" ? /^(\d+)\/(\d+)$/.exec(p) : null
  if (m === null) return undefined
  const [n, d] = [Number(m[1]), Number(m[2])]
  // Progress.IsValid: 0 <= N <= M and M > 0.
  return d > 0 && n <= d ? [n, d] : undefined
}
const executableTypes = new Set<string>(["Pod", "HTTP", "Plugin", "Container", "Suspend"])

/**
 * `progress.UpdateProgress`: every executable node (Pod, Container, Suspend,
 * ...) has a progress, "0/1" by default (or what its task result reported),
 * complete once Succeeded/Skipped/Omitted; other nodes sum their executable
 * descendants; the workflow's progress is the sum over executable nodes.
 *
 * Upstream sums each non-executable node's descendants with a fresh walk,
 * which is quadratic in a long chain (every step group reaches every later
 * one). Here the walk stops at any node that dominates everything below it
 * (every path into its descendants goes through it: a step group, a task of a
 * chain), whose sum comes from its subtree of the dominator tree, summed once.
 * The sums are the same. `budget` bounds the walks that remain (pathological
 * graphs, or a corrupt status with cycles, walked upstream's way); past it,
 * non-executable nodes keep the progress they had.
 */
export const updateProgress = (nodes: Record<string, Node>, budget: number): string => {
  const ids = Object.keys(nodes)
  const n = ids.length
  const index = new Map<string, number>()
  for (let i = 0; i < n; i++) index.set(ids[i], i)
  const ownN = new Float64Array(n)
  const ownD = new Float64Array(n)
  let total: [number, number] = [0, 0]
  for (let i = 0; i < n; i++) {
    const node = nodes[ids[i]]
    if (!executableTypes.has(node.type)) continue
    let p = parseProgress(node.progress)
    if (node.progress === undefined || node.progress === "") {
      p = [0, 1]
      node.progress = "0/1"
    }
    if (p === undefined) continue
    if (node.phase === "Succeeded" || node.phase === "Skipped" || node.phase === "Omitted") {
      p = [p[1], p[1]]
      node.progress = `${p[1]}/${p[1]}`
    }
    ownN[i] = p[0]
    ownD[i] = p[1]
    total = [total[0] + p[0], total[1] + p[1]]
  }

  // The children graph, by index; children that do not exist are ignored (as upstream does).
  const kids: Array<Array<number>> = new Array(n)
  const preds: Array<Array<number>> = Array.from({ length: n }, () => [])
  const indegree = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    kids[i] = []
    for (const c of nodes[ids[i]].children ?? []) {
      const j = index.get(c)
      if (j === undefined) continue
      kids[i].push(j)
      preds[j].push(i)
      indegree[j]++
    }
  }
  // Topological order (Kahn); a cycle leaves nodes out of it.
  const order: Array<number> = []
  for (let i = 0; i < n; i++) if (indegree[i] === 0) order.push(i)
  for (let h = 0; h < order.length; h++) for (const c of kids[order[h]]) if (--indegree[c] === 0) order.push(c)
  const acyclic = order.length === n

  // Immediate dominators under a virtual root above every node without parents, one pass in
  // topological order (Cooper, Harvey and Kennedy's intersection; a dominator comes earlier).
  const root = -1
  const idom = new Int32Array(n).fill(root)
  const depth = new Int32Array(n)
  const closed = new Uint8Array(n)
  const sumN = new Float64Array(ownN)
  const sumD = new Float64Array(ownD)
  if (acyclic) {
    const pos = new Int32Array(n)
    order.forEach((v, k) => (pos[v] = k))
    const at = (v: number): number => (v === root ? -1 : pos[v])
    for (const v of order) {
      let d = preds[v].length === 0 ? root : preds[v][0]
      for (let k = 1; k < preds[v].length && d !== root; k++) {
        let a = preds[v][k]
        while (a !== d) {
          while (at(a) > at(d)) a = idom[a]
          while (at(d) > at(a)) d = idom[d]
          if (--budget < 0) return `${total[0]}/${total[1]}`
        }
      }
      idom[v] = d
      depth[v] = (d === root ? 0 : depth[d]) + 1
    }
    // A node is closed when no edge leaves its dominator subtree: an edge x -> y leaves the
    // subtree of every dominator of x deeper than y's immediate dominator.
    const low = new Float64Array(n).fill(Infinity)
    for (let i = 0; i < n; i++) for (const c of kids[i]) low[i] = Math.min(low[i], idom[c] === root ? 0 : depth[idom[c]])
    for (let k = n - 1; k >= 0; k--) {
      const v = order[k]
      if (low[v] >= depth[v]) closed[v] = 1
      const d = idom[v]
      if (d === root) continue
      low[d] = Math.min(low[d], low[v])
      sumN[d] += sumN[v]
      sumD[d] += sumD[v]
    }
  }

  const seen = new Int32Array(n).fill(-1)
  for (let i = 0; i < n; i++) {
    const node = nodes[ids[i]]
    if (executableTypes.has(node.type)) continue
    let pn = 0
    let pd = 0
    if (closed[i] === 1) {
      pn = sumN[i] - ownN[i]
      pd = sumD[i] - ownD[i]
    } else {
      const stack = [...kids[i]]
      while (stack.length > 0) {
        const c = stack.pop()!
        if (seen[c] === i) continue
        seen[c] = i
        if (--budget < 0) return `${total[0]}/${total[1]}`
        if (closed[c] === 1) {
          pn += sumN[c]
          pd += sumD[c]
        } else {
          pn += ownN[c]
          pd += ownD[c]
          for (const g of kids[c]) stack.push(g)
        }
      }
    }
    if (pd > 0) node.progress = `${pn}/${pd}`
  }
  return `${total[0]}/${total[1]}`
}
