/**
 * Conformance suite: every upstream Argo example in
 * `../shared/conformance/argo-examples` (override: FLOTILLA_CONFORMANCE_DIR)
 * runs on the embedded runtime (process mode: real host processes), twice:
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
 * Prints `PASS <run>` / `FAIL <run>: <reason>` per workflow run, then
 * `N passed, N failed`, and exits non-zero when anything failed.
 * Env: FLOTILLA_CONFORMANCE_FILTER (substring of file names),
 * FLOTILLA_CONFORMANCE_CONCURRENCY (default 6), FLOTILLA_CONFORMANCE_TIMEOUT
 * (seconds per workflow, default 120), FLOTILLA_CONFORMANCE_VERBOSE=1 (logs),
 * FLOTILLA_CONFORMANCE_DUMP=<dir> (final Workflows as YAML).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Fiber, References } from "effect"
import * as YAML from "yaml"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/Resources.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const examplesDir = process.env["FLOTILLA_CONFORMANCE_DIR"]
  ?? path.resolve(repoRoot, "..", "shared", "conformance", "argo-examples")
const filter = process.env["FLOTILLA_CONFORMANCE_FILTER"]
const concurrency = Number(process.env["FLOTILLA_CONFORMANCE_CONCURRENCY"] ?? "6")
const timeoutSeconds = Number(process.env["FLOTILLA_CONFORMANCE_TIMEOUT"] ?? "120")
const verbose = process.env["FLOTILLA_CONFORMANCE_VERBOSE"] === "1"
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

interface Example {
  readonly file: string
  readonly name: string
  readonly workflow: KubeObject
}

type Json = Record<string, unknown>

const loadExamples = (): ReadonlyArray<Example> =>
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

interface RunOutcome {
  readonly label: string
  readonly ok: boolean
  readonly reason?: string
  readonly workflow?: KubeObject | undefined
}

const main = Effect.gen(function*() {
  const examples = loadExamples()
  const variants = examples.flatMap((ex) => [
    { ex, label: ex.name, wf: asWritten(ex) },
    { ex, label: `${ex.name} (multi-cluster)`, wf: remoteVariant(ex) }
  ])
  const { admin, controller } = yield* Embedded.start(Embedded.placementOf(variants.map((v) => v.wf)), { mode: "process" })

  /**
   * Runs one variant; an example in `randomOutcome` that did not succeed gets
   * one more attempt under the same name (after its Workflow is gone), because
   * failing is within its intended outcomes: retry-container/-script fail with
   * probability (2/3)^11 ≈ 1.2% per run, upstream's CI included.
   */
  const runOne = (v: (typeof variants)[number]): Effect.Effect<RunOutcome> =>
    runAttempt(v).pipe(Effect.flatMap((outcome) =>
      outcome.ok || !randomOutcome.has(v.ex.name)
        ? Effect.succeed(outcome)
        : Effect.gen(function*() {
          const ns = v.wf.metadata.namespace!
          const name = v.wf.metadata.name!
          if (verbose) console.error(`  ${v.label}: random outcome ${outcome.reason}; one more attempt`)
          yield* admin.delete("workflows", ns, name).pipe(Effect.ignore)
          yield* Embedded.awaitWorkflow(controller, ns, name, (wf) => wf === undefined).pipe(
            Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.void })
          )
          const again = yield* runAttempt(v)
          return again.ok ? again : { ...again, reason: `${again.reason} (second attempt; first: ${outcome.reason})` }
        })
    ))

  const runAttempt = (v: (typeof variants)[number]) =>
    Effect.gen(function*() {
      const ns = v.wf.metadata.namespace!
      const name = v.wf.metadata.name!
      const started = Date.now()
      // Subscribe before submitting: a workflow with a TTL may be gone soon after it completes.
      const done = yield* Effect.forkChild(
        Embedded.awaitWorkflow(controller, ns, name, Embedded.isCompleted).pipe(
          Effect.timeoutOrElse({ duration: `${timeoutSeconds} seconds`, orElse: () => Effect.succeed("timeout" as const) })
        )
      )
      yield* Effect.yieldNow
      yield* admin.create("workflows", ns, { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", ...v.wf })
      const result = yield* Fiber.join(done)
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      if (result === "timeout") {
        const current = yield* controller.workflows.get(ns, name)
        const wf = current._tag === "Some" ? current.value : undefined
        return {
          label: v.label,
          ok: false,
          reason: `not completed after ${timeoutSeconds}s (phase ${Embedded.phaseOf(wf) || "none"}; ${describeNodes(wf)})`
        } satisfies RunOutcome
      }
      if (dumpDir && result) {
        fs.mkdirSync(dumpDir, { recursive: true })
        fs.writeFileSync(path.join(dumpDir, `${ns}-${name}.yaml`), YAML.stringify(result))
      }
      const phase = Embedded.phaseOf(result)
      if (phase !== "Succeeded") {
        const message = ((result?.["status"] ?? {}) as Json)["message"]
        return {
          label: v.label,
          ok: false,
          reason: `${phase}${message ? `: ${String(message)}` : ""} (${describeNodes(result)})`,
          workflow: result
        } satisfies RunOutcome
      }
      if (verbose) console.error(`  ${v.label}: Succeeded in ${seconds}s`)
      return { label: v.label, ok: true, workflow: result } satisfies RunOutcome
    }).pipe(
      Effect.catchCause((cause) => Effect.succeed({ label: v.label, ok: false, reason: String(cause) } satisfies RunOutcome))
    )

  const outcomes = yield* Effect.forEach(variants, runOne, { concurrency })

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
  console.log(`${passed} passed, ${failed} failed`)
  return failed
})

const program = main.pipe(
  Effect.scoped,
  Effect.provide(InMemoryKube.layer),
  Effect.provideService(References.MinimumLogLevel, verbose ? "Info" : "None")
)

Effect.runPromise(program).then(
  (failed) => process.exit(failed > 0 ? 1 : 0),
  (error) => {
    console.error(error)
    console.log("0 passed, 1 failed")
    process.exit(1)
  }
)
