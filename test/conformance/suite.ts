/**
 * The conformance suite, shared by its drivers: `run.ts` (embedded in-memory
 * clusters) and `clusters.ts` (the real clusters of scripts/clusters/up.sh).
 *
 * Every upstream Argo example in `../shared/conformance/argo-examples`
 * (override: FLOTILLA_CONFORMANCE_DIR) runs twice:
 *
 *  1. "local": as written, in namespace `argo` when it names none;
 *  2. "remote": every container/script template gets `cluster: cluster-2` and
 *     `namespace: remote`, so every pod is created in another cluster with
 *     the user's kubeconfig secret. It runs in namespace `argo-mc` under the
 *     same workflow name, so node names are directly comparable.
 *
 * Each run must end `Succeeded`; then both runs must agree on every node's
 * (name, type, phase) and outputs (parameters, result, exitCode), except for
 * the examples listed in `randomOutcome` whose outcome is random by design
 * (compared loosely, and given one more attempt when a run does not succeed).
 *
 * A driver prints `PASS <run>` / `FAIL <run>: <reason>` per workflow run, then
 * `N passed, N failed`, and exits non-zero when anything failed.
 * Env: FLOTILLA_CONFORMANCE_FILTER (substring of file names),
 * FLOTILLA_CONFORMANCE_CONCURRENCY (default 6), FLOTILLA_CONFORMANCE_TIMEOUT
 * (seconds per workflow; the default is the driver's), FLOTILLA_CONFORMANCE_VERBOSE=1 (logs),
 * FLOTILLA_CONFORMANCE_DUMP=<dir> (final Workflows as YAML).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import * as YAML from "yaml"
import { phaseOf } from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
export const examplesDir = process.env["FLOTILLA_CONFORMANCE_DIR"]
  ?? path.resolve(repoRoot, "..", "shared", "conformance", "argo-examples")
const filter = process.env["FLOTILLA_CONFORMANCE_FILTER"]
export const concurrency = Number(process.env["FLOTILLA_CONFORMANCE_CONCURRENCY"] ?? "6")
/** Seconds a workflow may take (FLOTILLA_CONFORMANCE_TIMEOUT, else the driver's default). */
export const timeoutSeconds = (fallback: number): number => Number(process.env["FLOTILLA_CONFORMANCE_TIMEOUT"] ?? String(fallback))
export const verbose = process.env["FLOTILLA_CONFORMANCE_VERBOSE"] === "1"
/** When set, each run's final Workflow is written there as YAML (for debugging). */
const dumpDir = process.env["FLOTILLA_CONFORMANCE_DUMP"]

export const localNamespace = "argo"
export const remoteVariantNamespace = "argo-mc"
export const remoteCluster = "cluster-2"
export const remoteNamespace = "remote"

/**
 * Examples whose outcome is random by design (`random.randint` /
 * `random.choice` in their scripts): which branch runs (coinflip,
 * conditional-parameters, conditionals-complex, dag-conditional-parameters),
 * how often it recurses (coinflip-recursive), how many loop items there are
 * (withsequence-nested-result) or how many retries are needed and whether the
 * limit suffices (retry-container, retry-script). For these, both runs
 * must still Succeed, and nodes that ran in both runs (present and not
 * Skipped in either) must have the same type, and the same phase unless they
 * are pods (a retry child that failed in one run may have succeeded in the
 * other, but the Retry, Steps, StepGroup and DAG nodes above it must agree);
 * outputs are not compared.
 * `randomOutputs`: examples printing a random number (nodes, types and phases
 * compared, output values not).
 */
const randomOutcome = new Set([
  "coinflip",
  "coinflip-recursive",
  "conditional-parameters",
  "conditionals-complex",
  "dag-conditional-parameters",
  "retry-container",
  "retry-script",
  "withsequence-nested-result"
])
const randomOutputs = new Set(["scripts-bash", "scripts-javascript", "scripts-python"])

export interface Example {
  readonly file: string
  readonly name: string
  readonly workflow: KubeObject
}

/** One workflow run of the suite: an example as written, or its multi-cluster variant. */
export interface Variant {
  readonly ex: Example
  readonly label: string
  readonly wf: KubeObject
}

type Json = Record<string, unknown>

export const loadExamples = (): ReadonlyArray<Example> =>
  fs.readdirSync(examplesDir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .filter((f) => !filter || f.includes(filter))
    .sort()
    .map((file) => {
      const name = file.replace(/\.ya?ml$/, "")
      const wf = YAML.parse(fs.readFileSync(path.join(examplesDir, file), "utf8")) as KubeObject
      return { file, name, workflow: wf }
    })

/** As written, with a deterministic name (the file's) and a namespace. */
const asWritten = (ex: Example): KubeObject => {
  const { generateName: _g, ...metadata } = ex.workflow.metadata as KubeObject["metadata"] & { generateName?: string }
  return {
    ...ex.workflow,
    metadata: { ...metadata, name: ex.name, namespace: ex.workflow.metadata.namespace ?? localNamespace }
  }
}

/** Every container/script template runs in cluster-2/remote. */
const remoteVariant = (ex: Example): KubeObject => {
  const wf = asWritten(ex)
  const spec = (wf["spec"] ?? {}) as Json
  const templates = ((spec["templates"] ?? []) as ReadonlyArray<Json>).map((t) =>
    t["container"] !== undefined || t["script"] !== undefined
      ? { ...t, cluster: remoteCluster, namespace: remoteNamespace }
      : t
  )
  return {
    ...wf,
    metadata: { ...wf.metadata, namespace: remoteVariantNamespace },
    spec: { ...spec, templates }
  }
}

/** Both runs of every example, in order: as written, then multi-cluster. */
export const variantsOf = (examples: ReadonlyArray<Example>): ReadonlyArray<Variant> =>
  examples.flatMap((ex) => [
    { ex, label: ex.name, wf: asWritten(ex) },
    { ex, label: `${ex.name} (multi-cluster)`, wf: remoteVariant(ex) }
  ])

/** The Workflow to submit for a variant. */
export const manifestOf = (v: Variant): KubeObject => ({ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", ...v.wf })

interface NodeView {
  readonly name: string
  readonly type: string
  readonly phase: string
  readonly message?: string
  readonly outputs: unknown
}

const nodesOf = (wf: KubeObject | undefined): Map<string, NodeView> => {
  const nodes = (((wf?.["status"] ?? {}) as Json)["nodes"] ?? {}) as Record<string, Json>
  const out = new Map<string, NodeView>()
  for (const node of Object.values(nodes)) {
    const outputs = (node["outputs"] ?? {}) as Json
    const parameters = ((outputs["parameters"] ?? []) as ReadonlyArray<Json>).map((p) => ({ name: p["name"], value: p["value"] }))
    const name = String(node["name"])
    const message = node["message"] as string | undefined
    out.set(name, {
      name,
      type: String(node["type"]),
      phase: String(node["phase"]),
      ...(message ? { message } : {}),
      outputs: {
        parameters,
        result: outputs["result"],
        exitCode: outputs["exitCode"]
      }
    })
  }
  return out
}

const describeNodes = (wf: KubeObject | undefined): string =>
  [...nodesOf(wf).values()]
    .filter((n) => n.phase !== "Succeeded" && n.phase !== "Skipped" && n.phase !== "Omitted")
    .map((n) => `${n.name}[${n.type}]=${n.phase}${n.message ? ` (${n.message})` : ""}`)
    .join("; ")

/** Differences between the two runs' nodes, empty when they agree. */
const compareRuns = (name: string, local: KubeObject | undefined, remote: KubeObject | undefined): ReadonlyArray<string> => {
  const a = nodesOf(local)
  const b = nodesOf(remote)
  const diffs: Array<string> = []
  const structureOnly = randomOutcome.has(name)
  if (!structureOnly) {
    for (const n of a.keys()) if (!b.has(n)) diffs.push(`node ${n} only in local run`)
    for (const n of b.keys()) if (!a.has(n)) diffs.push(`node ${n} only in remote run`)
  }
  for (const [n, x] of a) {
    const y = b.get(n)
    if (!y) continue
    if (structureOnly) {
      if (x.type === "Skipped" || y.type === "Skipped" || x.phase === "Skipped" || y.phase === "Skipped") continue
      if (x.type !== y.type) diffs.push(`node ${n}: type ${x.type} vs ${y.type}`)
      else if (x.type !== "Pod" && x.phase !== y.phase) diffs.push(`node ${n}: phase ${x.phase} vs ${y.phase}`)
      continue
    }
    if (x.type !== y.type) diffs.push(`node ${n}: type ${x.type} vs ${y.type}`)
    if (x.phase !== y.phase) diffs.push(`node ${n}: phase ${x.phase} vs ${y.phase}`)
    if (!randomOutputs.has(name)) {
      const ox = JSON.stringify(x.outputs)
      const oy = JSON.stringify(y.outputs)
      if (ox !== oy) diffs.push(`node ${n}: outputs ${ox} vs ${oy}`)
    }
  }
  return diffs
}

export interface RunOutcome {
  readonly label: string
  readonly ok: boolean
  readonly reason?: string
  readonly workflow?: KubeObject | undefined
}

/** The outcome of a run that did not complete in time; `current` is the Workflow as it is now. */
export const timedOut = (v: Variant, current: KubeObject | undefined, seconds: number): RunOutcome => ({
  label: v.label,
  ok: false,
  reason: `not completed after ${seconds}s (phase ${phaseOf(current) || "none"}; ${describeNodes(current)})`
})

/** The outcome of a completed run (`result` is the completed Workflow); dumps it when asked to. */
export const judge = (v: Variant, result: KubeObject | undefined, startedMs: number): RunOutcome => {
  const ns = v.wf.metadata.namespace!
  const name = v.wf.metadata.name!
  if (dumpDir && result) {
    fs.mkdirSync(dumpDir, { recursive: true })
    fs.writeFileSync(path.join(dumpDir, `${ns}-${name}.yaml`), YAML.stringify(result))
  }
  const phase = phaseOf(result)
  if (phase !== "Succeeded") {
    const message = ((result?.["status"] ?? {}) as Json)["message"]
    return {
      label: v.label,
      ok: false,
      reason: `${phase}${message ? `: ${String(message)}` : ""} (${describeNodes(result)})`,
      workflow: result
    }
  }
  if (verbose) console.error(`  ${v.label}: Succeeded in ${((Date.now() - startedMs) / 1000).toFixed(1)}s`)
  return { label: v.label, ok: true, workflow: result }
}

/** How a driver runs workflows. */
export interface Driver<R> {
  /** Submits the variant's Workflow and waits for it to complete (see `timedOut`, `judge`). */
  readonly attempt: (v: Variant) => Effect.Effect<RunOutcome, unknown, R>
  /** Deletes the variant's Workflow and waits (boundedly) until it is gone. */
  readonly remove: (v: Variant) => Effect.Effect<void, unknown, R>
}

/**
 * Runs every variant, `concurrency` at a time; the outcomes are in the order
 * of `variants`. An example in `randomOutcome` that did not succeed gets one
 * more attempt under the same name (after its Workflow is gone), because
 * failing is within its intended outcomes: retry-container/-script fail with
 * probability (2/3)^11 ≈ 1.2% per run, upstream's CI included.
 */
export const runVariants = <R>(variants: ReadonlyArray<Variant>, driver: Driver<R>): Effect.Effect<Array<RunOutcome>, never, R> => {
  const attempt = (v: Variant) =>
    driver.attempt(v).pipe(
      Effect.catchCause((cause) => Effect.succeed<RunOutcome>({ label: v.label, ok: false, reason: String(cause) }))
    )
  const runOne = (v: Variant): Effect.Effect<RunOutcome, never, R> =>
    attempt(v).pipe(Effect.flatMap((outcome) =>
      outcome.ok || !randomOutcome.has(v.ex.name)
        ? Effect.succeed(outcome)
        : Effect.gen(function*() {
          if (verbose) console.error(`  ${v.label}: random outcome ${outcome.reason}; one more attempt`)
          yield* driver.remove(v).pipe(Effect.ignore)
          const again = yield* attempt(v)
          return again.ok ? again : { ...again, reason: `${again.reason} (second attempt; first: ${outcome.reason})` }
        })
    ))
  return Effect.forEach(variants, runOne, { concurrency })
}

/**
 * Prints `PASS`/`FAIL` per run (outcomes in the order of `variantsOf`), then
 * one `FAIL` line per extra failure (checks beyond single runs), then
 * `N passed, N failed`. Returns the number failed.
 */
export const report = (
  examples: ReadonlyArray<Example>,
  outcomes: ReadonlyArray<RunOutcome>,
  extraFailures: ReadonlyArray<string> = []
): number => {
  let passed = 0
  let failed = 0
  for (let i = 0; i < examples.length; i++) {
    const ex = examples[i]!
    const local = outcomes[2 * i]!
    const remote = outcomes[2 * i + 1]!
    const diffs = local.ok && remote.ok ? compareRuns(ex.name, local.workflow, remote.workflow) : []
    for (const o of [local, remote]) {
      if (!o.ok) {
        failed++
        console.log(`FAIL ${o.label}: ${o.reason}`)
      } else if (o === remote && diffs.length > 0) {
        failed++
        console.log(`FAIL ${o.label}: differs from the local run: ${diffs.slice(0, 5).join("; ")}${diffs.length > 5 ? ` (+${diffs.length - 5} more)` : ""}`)
      } else {
        passed++
        console.log(`PASS ${o.label}`)
      }
    }
  }
  for (const f of extraFailures) {
    failed++
    console.log(`FAIL ${f}`)
  }
  console.log(`${passed} passed, ${failed} failed`)
  return failed
}

/** Exits 1 when `failed` resolves to more than 0 or the run itself failed (then counted as one failure). */
export const exitWith = (failed: Promise<number>): void => {
  failed.then(
    (n) => process.exit(n > 0 ? 1 : 0),
    (error) => {
      console.error(error)
      console.log("0 passed, 1 failed")
      process.exit(1)
    }
  )
}
