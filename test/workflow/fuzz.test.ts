/**
 * Issue 10, "prove it with figures": 1,000 mutated workflows (seeded, so a
 * failure names the seed that reproduces it) through the linter, the decoder
 * and the engine, as the controller would drive them (every requested pod
 * completes, time moves to each requested wake-up). For each: no exception,
 * no hang (a bounded number of reconciles, each bounded by the engine's own
 * limits), and an end that is either a run or a clear error (an Error phase
 * with a message; a lint issue with a field path).
 *
 * Seeds are upstream's examples (../shared/conformance/argo-examples) plus
 * the project's own; mutations are what a careless or hostile user writes:
 * wrong types, missing and duplicated fields, huge numbers, long and odd
 * strings, `{{...}}` tags in every position, references to nothing, loops
 * over huge sequences, templates that call themselves.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as YAML from "yaml"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import type { PodObservation, TaskResultObservation } from "../../src/workflow/engine/contract.js"
import { reconcile } from "../../src/workflow/engine/reconcile.js"
import { lintWorkflow } from "../../src/workflow/lint/lint.js"
import { decodeWorkflow } from "../../src/workflow/model/decode.js"
import { config, T0 } from "./engine/harness.js"

const repoRoot = path.resolve(import.meta.dirname, "../..")
const examplesDir = [path.resolve(repoRoot, "..", "shared", "conformance", "argo-examples"), "/work/shared/conformance/argo-examples"]
  .find((d) => fs.existsSync(d))

const seeds: ReadonlyArray<KubeObject> = [
  ...(examplesDir === undefined ? [] : fs.readdirSync(examplesDir).filter((f) => f.endsWith(".yaml")).sort().map((f) => path.join(examplesDir, f))),
  path.join(repoRoot, "examples", "multi-cluster.yaml")
].flatMap((file) =>
  YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS() as KubeObject).filter((d) => d !== null)
)

/** mulberry32: small, seedable, good enough to pick mutations. */
const rng = (seed: number) => () => {
  seed |= 0
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

type Json = null | boolean | number | string | Array<Json> | { [k: string]: Json }

const oddValues: ReadonlyArray<Json> = [
  null, true, false, 0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.5, "", " ", "x".repeat(100_000), "\u0000\r\n\t", "ünïcödé-✓-🚀",
  "{{", "}}", "{{}}", "{{=", "{{workflow.name}}", "{{=sprig.repeat(1000000000, 'x')}}", "{{=len(sprig.until(100000000))}}",
  "{{=sprig.regexMatch('^(a+)+$', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!')}}", "{{steps.nope.outputs.result}}",
  "{{inputs.parameters.missing}}", "{{tasks.x.outputs.parameters.y}}", "{{item}}", "{{=item + 1}}", "../..", "a/b", "UPPER",
  "1e7", "10000000", "-5", "1h", "0s", "@in-cluster", "workflows.argoproj.io/workflow", [], {}, [[]], [{}], { "": "" },
  { name: 1 }, ["a", 1, null], { count: "10000000" }, { count: 10000000 }, { start: 0, end: 1e12 }
]

/** Every path to a value in the document (objects and arrays included). */
const paths = (value: Json, at: Array<string | number> = [], out: Array<Array<string | number>> = []) => {
  out.push(at)
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...at, i], out))
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) paths(v, [...at, k], out)
  return out
}

const getAt = (doc: Json, at: ReadonlyArray<string | number>): Json => at.reduce<Json>((v, k) => (v as any)?.[k], doc)

const mutate = (seed: KubeObject, random: () => number): KubeObject => {
  const doc = structuredClone(seed) as unknown as Json
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(random() * xs.length)]!
  const count = 1 + Math.floor(random() * 4)
  for (let i = 0; i < count; i++) {
    const all = paths(doc).filter((p) => p.length > 0 && p[0] !== "apiVersion" && p[0] !== "kind")
    if (all.length === 0) break
    const at = pick(all)
    const parent = getAt(doc, at.slice(0, -1)) as any
    const key = at[at.length - 1]!
    switch (Math.floor(random() * 9)) {
      case 0: // delete
        if (Array.isArray(parent)) parent.splice(key as number, 1)
        else delete parent[key]
        break
      case 1: // replace by an odd value
      case 2:
        parent[key] = structuredClone(pick(oddValues))
        break
      case 3: // duplicate an element of a list (duplicate names, steps, tasks)
        if (Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(parent[key as number]))
        else parent[`${String(key)}-copy`] = structuredClone(parent[key])
        break
      case 4: { // swap a value with another from elsewhere in the document
        const other = getAt(doc, pick(all))
        parent[key] = structuredClone(other)
        break
      }
      case 5: // nest deeper
        parent[key] = { nested: [parent[key]] }
        break
      case 6: { // make a template call itself, or loop wide
        const templates = (doc as any)?.spec?.templates
        if (Array.isArray(templates) && templates.length > 0) {
          const t = pick(templates) as any
          if (t && typeof t === "object") {
            if (random() < 0.5) t.steps = [[{ name: "again", template: t.name }, { name: "twice", template: t.name }]]
            else t.dag = { tasks: [{ name: "wide", template: pick(templates)?.name ?? "x", withSequence: { count: String(10 ** (3 + Math.floor(random() * 6))) } }] }
            delete t.container
            delete t.script
          }
        }
        break
      }
      case 7: // a string with tags everywhere
        if (typeof parent[key] === "string") parent[key] = `${parent[key]}{{${pick(["workflow.name", "=1/0", "=nil.x", "inputs.parameters", "=sprig.until(99999999)"])}}}`
        else parent[key] = structuredClone(pick(oddValues))
        break
      default: // change the type
        parent[key] = typeof parent[key] === "string" ? 12345 : typeof parent[key] === "number" ? String(parent[key]) : Array.isArray(parent[key]) ? {} : []
    }
  }
  const wf = doc as unknown as KubeObject
  // Give it what the API server would: a name, a namespace, a uid.
  const metadata = (typeof wf.metadata === "object" && wf.metadata !== null && !Array.isArray(wf.metadata) ? wf.metadata : {}) as Record<string, unknown>
  return {
    ...wf,
    metadata: { ...metadata, name: typeof metadata["name"] === "string" ? metadata["name"] : "fuzz", namespace: "argo", uid: "fuzz-uid" }
  } as KubeObject
}

/** Drives the engine as the controller would, for at most `ticks` reconciles. */
const drive = (wf: KubeObject, random: () => number, ticks = 40) => {
  let current = wf
  let now = T0
  const pods = new Map<string, PodObservation>()
  const taskResults = new Map<string, TaskResultObservation>()
  for (let i = 0; i < ticks; i++) {
    const out = reconcile({ workflow: current, pods, taskResults, now, config })
    current = { ...current, metadata: { ...current.metadata, labels: { ...current.metadata.labels, ...out.labels } }, status: out.status }
    const phase = out.status["phase"]
    if (phase === "Succeeded" || phase === "Failed" || phase === "Error") return { phase: phase as string, status: out.status, ticks: i + 1 }
    let progressed = false
    for (const a of out.actions) {
      if (a._tag !== "CreatePod" || pods.has(a.nodeId)) continue
      progressed = true
      const ok = random() < 0.8
      pods.set(a.nodeId, {
        nodeId: a.nodeId,
        podName: a.pod.metadata.name ?? "",
        cluster: a.cluster,
        namespace: a.namespace,
        phase: ok ? "Succeeded" : "Failed",
        exitCode: ok ? 0 : 1
      })
      taskResults.set(a.nodeId, { nodeId: a.nodeId, outputs: { result: "{{workflow.name}}", parameters: [] }, completed: true })
    }
    if (!progressed) {
      if (out.requeueAfterMs === undefined) return { phase: String(phase), status: out.status, ticks: i + 1 }
      now += Math.min(out.requeueAfterMs, 3_600_000)
    }
  }
  return { phase: String(current["status"] && (current["status"] as any).phase), status: current["status"] as Record<string, unknown>, ticks }
}

describe("fuzz: 1,000 mutated workflows", () => {
  it("every one lints, decodes and runs without an exception or a hang, ending in a run or a clear error", () => {
    assert.isAbove(seeds.length, 1)
    const outcomes: Record<string, number> = {}
    for (let seed = 1; seed <= 1000; seed++) {
      const random = rng(seed)
      const wf = mutate(seeds[seed % seeds.length]!, random)
      const where = `seed ${seed} (from ${seeds[seed % seeds.length]!.metadata?.name ?? seeds[seed % seeds.length]!.metadata?.generateName})`
      let issues: ReturnType<typeof lintWorkflow>
      try {
        issues = lintWorkflow(wf)
        decodeWorkflow(wf)
      } catch (e) {
        assert.fail(`${where}: lint/decode threw ${String(e)}`)
      }
      for (const issue of issues) {
        assert.isString(issue.path, where)
        assert.isAbove(issue.message.length, 0, `${where}: an issue without a message`)
      }
      let result: ReturnType<typeof drive>
      try {
        result = drive(wf, random)
      } catch (e) {
        assert.fail(`${where}: the engine threw ${String((e as Error)?.stack ?? e)}`)
      }
      // Error is how a workflow that cannot run ends: it must say why, on the workflow or on the node that
      // erred (Failed is a run whose steps failed).
      if (result.phase === "Error") {
        const nodes = Object.values((result.status["nodes"] ?? {}) as Record<string, { phase?: string; message?: string }>)
        const said = String(result.status["message"] ?? "") !== "" || nodes.some((n) => n.phase === "Error" && (n.message ?? "") !== "")
        assert.isTrue(said, `${where}: Error without a message: ${String(JSON.stringify(wf)).slice(0, 2000)} => ${String(JSON.stringify(result.status)).slice(0, 2000)}`)
      }
      outcomes[result.phase] = (outcomes[result.phase] ?? 0) + 1
    }
    // The figures for the closing note: how the 1,000 ended.
    console.log(`fuzz outcomes: ${JSON.stringify(outcomes)}`)
    const total = Object.values(outcomes).reduce((a, b) => a + b, 0)
    assert.strictEqual(total, 1000)
  }, 120_000)
})
