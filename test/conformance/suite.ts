/**
 * The conformance suite, shared by its drivers: `run.ts` (embedded in-memory
 * clusters) and `clusters.ts` (the real clusters of scripts/clusters/up.sh).
 *
 * Every upstream Argo example in `../shared/conformance/argo-examples`
 * (override: FLOTILLA_CONFORMANCE_DIR) and in `test/conformance/examples`
 * (override: FLOTILLA_CONFORMANCE_REPO_DIR) runs twice:
 *
 *  1. "local": as written, in namespace `argo` when it names none;
 *  2. "remote": every container/script template gets `cluster: cluster-2` and
 *     `namespace: remote`, so every pod is created in another cluster with
 *     the user's kubeconfig secret. It runs in namespace `argo-mc` under the
 *     same workflow name, so node names are directly comparable.
 *
 * Each run must end `Succeeded`, or as the example's header says (see
 * `Expectation`); then both runs must agree on every node's (name, type,
 * phase) and outputs (parameters, result, exitCode), except for the examples
 * whose outcome is random by design (`randomOutcomeNames`, or a `random-outcome`
 * header line: compared loosely, and given one more attempt when a run does
 * not end as expected).
 *
 * Resource templates move too (they are pods acting in the cluster they run
 * in), except those whose manifest is a Workflow: a Workflow must be created
 * where the controller runs it (a Workflow in cluster-2 would never run); the
 * templates its manifest references are the multi-cluster copies in `argo-mc`.
 * Inline templates (in steps and DAG tasks) and containerSet templates move
 * like container/script templates; http templates stay: the controller makes
 * their requests.
 *
 * Tests dial loopback only: a `url <upstream url> -> <path>` header line makes
 * the suite replace the URL in the example's text, at load time, by
 * `<base><path>` on the driver's loopback server (`startLoopbackServer`).
 *
 * Artifacts: the embedded driver runs one real S3 server (SeaweedFS) as the
 * clusters' artifact repository; an `s3` header line moves an example's own S3
 * locations to it (see `Expectation`). The real clusters' driver does the
 * same with a SeaweedFS of its own.
 *
 * A file may hold other documents than its Workflow: its WorkflowTemplates,
 * ClusterWorkflowTemplates and ConfigMaps (and those of files holding no
 * Workflow, such as workflow templates shared by several examples) are
 * created before any workflow runs, as upstream's examples test applies them:
 * in `argo` as written, and for the multi-cluster runs in `argo-mc` with their
 * container/script templates moved to cluster-2/remote (a
 * ClusterWorkflowTemplate's multi-cluster copy is named `<name>-mc`, and the
 * multi-cluster runs' cluster-scoped references name it).
 *
 * A driver prints `PASS <run>` / `FAIL <run>: <reason>` per workflow run, then
 * `N passed, N failed`, and exits non-zero when anything failed. The real
 * clusters' driver skips the examples whose header has an `embedded-only
 * <reason>` line (`SKIP <run>: <reason>`, then `N skipped`, never counted as passed).
 * Env: FLOTILLA_CONFORMANCE_FILTER (substrings of file names, comma-separated: any matches),
 * FLOTILLA_CONFORMANCE_VARIANTS (`both`, `as-written` or `multi-cluster`; the
 * default is the driver's), FLOTILLA_CONFORMANCE_CONCURRENCY (default 6), FLOTILLA_CONFORMANCE_TIMEOUT
 * (seconds per workflow; the default is the driver's), FLOTILLA_CONFORMANCE_VERBOSE=1 (logs),
 * FLOTILLA_CONFORMANCE_DUMP=<dir> (final Workflows as YAML).
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import * as YAML from "yaml"
import { phaseOf } from "../../src/embedded/EmbeddedRuntime.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
export const examplesDir = process.env["FLOTILLA_CONFORMANCE_DIR"]
  ?? path.resolve(repoRoot, "..", "shared", "conformance", "argo-examples")
/** Comma-separated substrings of file names: the examples whose file name contains any of them. */
const filters = (process.env["FLOTILLA_CONFORMANCE_FILTER"] ?? "").split(",").map((f) => f.trim()).filter((f) => f !== "")
export const concurrency = Number(process.env["FLOTILLA_CONFORMANCE_CONCURRENCY"] ?? "6")
/** Seconds a workflow may take (FLOTILLA_CONFORMANCE_TIMEOUT, else the driver's default). */
export const timeoutSeconds = (fallback: number): number => Number(process.env["FLOTILLA_CONFORMANCE_TIMEOUT"] ?? String(fallback))
/** Seconds a run of `ex` may take: the driver's `timeout`, or the example's `timeout` header line when longer. */
export const timeoutFor = (ex: Example, timeout: number): number => Math.max(timeout, ex.expect.timeoutSeconds ?? 0)
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
 * `randomOutputNames`: examples printing a random number (nodes, types and phases
 * compared, output values not).
 */
const randomOutcomeNames = new Set([
  "coinflip",
  "coinflip-recursive",
  "conditional-parameters",
  "conditionals-complex",
  "dag-conditional-parameters",
  "retry-container",
  "retry-script",
  "withsequence-nested-result"
])
const randomOutputNames = new Set(["scripts-bash", "scripts-javascript", "scripts-python"])

/**
 * What an example's run must end with, from its header's
 * `# flotilla-conformance: ...` lines (the default: `expect Succeeded`):
 *
 *  - `expect <Phase>`: the workflow's phase;
 *  - `message <text>`: the workflow's status.message contains the text;
 *  - `node <displayName> <Phase>[ <text>]`: every node of that display name
 *    (at least one) has the phase, and its message contains the text if given;
 *  - `random-outcome`, `random-outputs`: as the sets below;
 *  - `url <upstream url> -> <path>`: the URL (every occurrence in the file's
 *    text) is replaced by the loopback server's `<base><path>` at load time;
 *  - `s3 <upstream endpoint> <bucket>[ <key>]`: the example's S3 location(s)
 *    at that endpoint are on the driver's S3 server instead (its endpoint,
 *    `insecure: true`, region us-east-1), the driver creates the bucket and,
 *    when a key is given, puts a small text object there before the runs,
 *    and gives the Secrets the locations name (accessKeySecret,
 *    secretKeySecret) its keys in every namespace where pods run;
 *  - `embedded-only <reason>`: the real clusters' driver skips it;
 *  - `not-on-real-nodes <reason>`: the real clusters' driver skips it when
 *    the pods run on the real nodes (kubelet, containerd, argoexec);
 *  - `timeout <seconds>`: the run may take that long when the driver's
 *    timeout is shorter (see `timeoutFor`).
 */
export interface Expectation {
  readonly phase: string
  readonly message?: string
  readonly nodes: ReadonlyArray<{ readonly displayName: string; readonly phase: string; readonly message?: string }>
  readonly randomOutcome: boolean
  readonly randomOutputs: boolean
  readonly urls: ReadonlyArray<{ readonly upstream: string; readonly path: string }>
  /** The `s3` lines (absent when none). */
  readonly s3?: ReadonlyArray<S3Location>
  readonly embeddedOnly?: string
  readonly notOnRealNodes?: string
  readonly timeoutSeconds?: number
}

/** An example's S3 location that the driver's S3 server stands in for (an `s3` header line). */
export interface S3Location {
  readonly upstream: string
  readonly bucket: string
  readonly key?: string
}

/** The driver's S3 server, as the examples' rewritten locations name it. */
export interface S3Endpoint {
  /** `host:port` without a scheme. */
  readonly endpoint: string
}

/** Why the real clusters' driver skips the examples that use artifacts. */

export interface Example {
  readonly file: string
  readonly name: string
  readonly workflow: KubeObject
  readonly expect: Expectation
}

/** One workflow run of the suite: an example as written, or its multi-cluster variant. */
export interface Variant {
  readonly ex: Example
  readonly label: string
  readonly wf: KubeObject
}

type Json = Record<string, unknown>

/** The repository's own examples (upstream's, with a header naming their origin and expected outcome). */
export const repoExamplesDir = process.env["FLOTILLA_CONFORMANCE_REPO_DIR"]
  ?? path.resolve(repoRoot, "test", "conformance", "examples")

const supportKinds = new Set(["WorkflowTemplate", "ClusterWorkflowTemplate", "ConfigMap"])
const directive = /^#\s*flotilla-conformance:\s*(.*?)\s*$/

export const expectationOf = (file: string, text: string): Expectation => {
  let phase = "Succeeded"
  let message: string | undefined
  const nodes: Array<Expectation["nodes"][number]> = []
  const name = file.replace(/\.ya?ml$/, "")
  let randomOutcome = randomOutcomeNames.has(name)
  let randomOutputs = randomOutputNames.has(name)
  const urls: Array<Expectation["urls"][number]> = []
  const s3: Array<S3Location> = []
  let embeddedOnly: string | undefined
  let notOnRealNodes: string | undefined
  let timeout: number | undefined
  for (const line of text.split("\n")) {
    const m = directive.exec(line)
    if (!m) continue
    const [word = "", ...rest] = m[1]!.split(/\s+/)
    if (word === "expect" && rest.length === 1) phase = rest[0]!
    else if (word === "message" && rest.length > 0) message = rest.join(" ")
    else if (word === "node" && rest.length >= 2) {
      const [displayName, nodePhase, ...words] = rest
      nodes.push({ displayName: displayName!, phase: nodePhase!, ...(words.length > 0 ? { message: words.join(" ") } : {}) })
    } else if (word === "random-outcome" && rest.length === 0) randomOutcome = true
    else if (word === "random-outputs" && rest.length === 0) randomOutputs = true
    else if (word === "url" && rest.length === 3 && rest[1] === "->" && rest[2]!.startsWith("/")) urls.push({ upstream: rest[0]!, path: rest[2]! })
    else if (word === "s3" && (rest.length === 2 || rest.length === 3)) s3.push({ upstream: rest[0]!, bucket: rest[1]!, ...(rest[2] !== undefined ? { key: rest[2] } : {}) })
    else if (word === "embedded-only" && rest.length > 0) embeddedOnly = rest.join(" ")
    else if (word === "not-on-real-nodes" && rest.length > 0) notOnRealNodes = rest.join(" ")
    else if (word === "timeout" && rest.length === 1 && /^[1-9]\d*$/.test(rest[0]!)) timeout = Number(rest[0])
    else throw new Error(`${file}: unknown conformance directive: ${m[1]}`)
  }
  return {
    phase,
    ...(message !== undefined ? { message } : {}),
    nodes,
    randomOutcome,
    randomOutputs,
    urls,
    ...(s3.length > 0 ? { s3 } : {}),
    ...(embeddedOnly !== undefined ? { embeddedOnly } : {}),
    ...(notOnRealNodes !== undefined ? { notOnRealNodes } : {}),
    ...(timeout !== undefined ? { timeoutSeconds: timeout } : {})
  }
}

interface ExampleFile {
  readonly file: string
  readonly text: string
  readonly docs: ReadonlyArray<KubeObject>
}

/** The file's text with its `url` lines' URLs replaced by the loopback server's (`base`; none: as written). */
const withUrls = (file: string, text: string, base: string | undefined): string => {
  if (base === undefined) return text
  let out = text
  for (const { upstream, path: to } of expectationOf(file, text).urls) {
    // every occurrence but the header line's own
    out = out.split("\n").map((line) => (directive.test(line) ? line : line.split(upstream).join(`${base}${to}`))).join("\n")
  }
  return out
}

/** Every S3 location (an object with `endpoint` and `bucket`) at an `s3` line's endpoint, moved to the driver's server. */
const withS3 = (value: unknown, locations: ReadonlyArray<S3Location>, server: S3Endpoint): unknown => {
  if (Array.isArray(value)) return value.map((v) => withS3(v, locations, server))
  if (value === null || typeof value !== "object") return value
  const o = value as Json
  const out: Json = {}
  for (const [k, v] of Object.entries(o)) out[k] = withS3(v, locations, server)
  if (typeof o["endpoint"] === "string" && o["bucket"] !== undefined && locations.some((l) => l.upstream === o["endpoint"])) {
    return { ...out, endpoint: server.endpoint, insecure: true, region: "us-east-1" }
  }
  return out
}

const readDir = (dir: string, urlBase: string | undefined, s3Server: S3Endpoint | undefined): Array<ExampleFile> =>
  fs.readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort()
    .map((file) => {
      const text = withUrls(file, fs.readFileSync(path.join(dir, file), "utf8"), urlBase)
      const locations = expectationOf(file, text).s3 ?? []
      const docs = YAML.parseAllDocuments(text).map((d) => d.toJS() as KubeObject | null).filter((d): d is KubeObject => d !== null)
        .map((d) => s3Server !== undefined && locations.length > 0 ? withS3(d, locations, s3Server) as KubeObject : d)
      return { file, text, docs }
    })

const allFiles = (urlBase?: string, s3Server?: S3Endpoint): Array<ExampleFile> => [
  ...readDir(examplesDir, urlBase, s3Server),
  ...readDir(repoExamplesDir, urlBase, s3Server)
]

/**
 * The Secrets an example's rewritten S3 locations name (see the `s3` lines), with the keys they
 * read: the driver creates them with its server's credentials where pods run.
 */
export const s3SecretsOf = (ex: Example): ReadonlyArray<{ readonly name: string; readonly keys: ReadonlyMap<string, "accessKey" | "secretKey"> }> => {
  if ((ex.expect.s3 ?? []).length === 0) return []
  const secrets = new Map<string, Map<string, "accessKey" | "secretKey">>()
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit)
    if (value === null || typeof value !== "object") return
    for (const [k, v] of Object.entries(value as Json)) {
      const ref = v as Json | null
      if ((k === "accessKeySecret" || k === "secretKeySecret") && ref !== null && typeof ref === "object" && typeof ref["name"] === "string" && typeof ref["key"] === "string") {
        const keys = secrets.get(ref["name"]) ?? new Map<string, "accessKey" | "secretKey">()
        keys.set(ref["key"], k === "accessKeySecret" ? "accessKey" : "secretKey")
        secrets.set(ref["name"], keys)
      } else visit(v)
    }
  }
  visit(ex.workflow["spec"])
  return [...secrets].map(([name, keys]) => ({ name, keys }))
}

/**
 * Every example with a Workflow (FLOTILLA_CONFORMANCE_FILTER applies), in file
 * name order within each folder; `urlBase` (the loopback server's, see
 * `startLoopbackServer`) replaces the upstream URLs of `url` header lines.
 */
export const loadExamples = (urlBase?: string, s3Server?: S3Endpoint): ReadonlyArray<Example> => {
  const examples = allFiles(urlBase, s3Server)
    .filter((f) => filters.length === 0 || filters.some((filter) => f.file.includes(filter)))
    .flatMap(({ file, text, docs }) => {
      const workflows = docs.filter((d) => (d.kind ?? "Workflow") === "Workflow")
      if (workflows.length > 1) throw new Error(`${file}: more than one Workflow`)
      const other = docs.find((d) => d.kind !== undefined && d.kind !== "Workflow" && !supportKinds.has(d.kind))
      if (other) throw new Error(`${file}: kind ${other.kind} is neither a Workflow nor ${[...supportKinds].join(", ")}`)
      const workflow = workflows[0]
      if (!workflow) return []
      const expect = expectationOf(file, text)
      return [{ file, name: file.replace(/\.ya?ml$/, ""), workflow, expect }]
    })
  const names = new Set<string>()
  for (const ex of examples) {
    if (names.has(ex.name)) throw new Error(`two examples are named ${ex.name}`)
    names.add(ex.name)
  }
  return examples
}

const remoteTemplateName = (name: string) => `${name}-mc`

/** A multi-cluster copy's references to ClusterWorkflowTemplates name their multi-cluster copies. */
const renameClusterScoped = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(renameClusterScoped)
  if (value === null || typeof value !== "object") return value
  const out: Json = {}
  for (const [k, v] of Object.entries(value as Json)) {
    const ref = v as Json | undefined
    out[k] = (k === "templateRef" || k === "workflowTemplateRef") && ref && ref["clusterScope"] === true && typeof ref["name"] === "string"
      ? { ...ref, name: remoteTemplateName(ref["name"]) }
      : renameClusterScoped(v)
  }
  return out
}

/** A resource template whose manifest is a Workflow (it must be created where the controller runs it). */
const createsWorkflow = (t: Json): boolean => {
  const manifest = (t["resource"] as Json | undefined)?.["manifest"]
  if (typeof manifest !== "string") return false
  try {
    return (YAML.parse(manifest.replace(/\{\{[^}]*\}\}/g, "x")) as Json | null)?.["kind"] === "Workflow"
  } catch {
    return false
  }
}

/** Does the template run a pod that moves: container, script, containerSet, resource (but one creating a Workflow)? */
const movesToRemote = (t: Json): boolean =>
  t["container"] !== undefined || t["script"] !== undefined || t["containerSet"] !== undefined ||
  (t["resource"] !== undefined && !createsWorkflow(t))

/** The template moved to cluster-2/remote if it runs such a pod, with the inline templates of its steps and DAG tasks moved too. */
const moveTemplate = (t: Json): Json => {
  const moveCalls = (calls: unknown): unknown =>
    Array.isArray(calls)
      ? calls.map((c: Json) => (c !== null && typeof c === "object" && c["inline"] !== undefined ? { ...c, inline: moveTemplate(c["inline"] as Json) } : c))
      : calls
  const steps = t["steps"]
  const dag = t["dag"] as Json | undefined
  return {
    ...t,
    ...(movesToRemote(t) ? { cluster: remoteCluster, namespace: remoteNamespace } : {}),
    ...(Array.isArray(steps)
      ? { steps: steps.map((group: unknown) =>
        Array.isArray(group)
          ? moveCalls(group)
          : group !== null && typeof group === "object" && Array.isArray((group as Json)["steps"])
          ? { ...(group as Json), steps: moveCalls((group as Json)["steps"]) }
          : group) }
      : {}),
    ...(dag !== undefined && dag !== null && Array.isArray(dag["tasks"]) ? { dag: { ...dag, tasks: moveCalls(dag["tasks"]) } } : {})
  }
}

/** Every template of a Workflow or (Cluster)WorkflowTemplate spec that runs a pod (see `movesToRemote`) runs in cluster-2/remote. */
const moveTemplates = (spec: Json): Json => ({
  ...spec,
  ...(spec["templates"] === undefined ? {} : { templates: ((spec["templates"] ?? []) as ReadonlyArray<Json>).map(moveTemplate) })
})

/** A WorkflowTemplate, ClusterWorkflowTemplate or ConfigMap to create, and the namespace of the runs it serves. */
export interface SupportObject {
  readonly object: KubeObject
  readonly runsNamespace: string
}

/**
 * The WorkflowTemplates, ClusterWorkflowTemplates and ConfigMaps of every
 * example file (FLOTILLA_CONFORMANCE_FILTER does not apply), to create before
 * the workflows: as written (namespaced ones in `argo`), then their
 * multi-cluster copies (in `argo-mc`).
 */
export const supportObjects = (): ReadonlyArray<SupportObject> => {
  const objects = allFiles().flatMap((f) => f.docs.filter((d) => d.kind !== undefined && supportKinds.has(d.kind)))
  const local = objects.map((o): SupportObject => ({
    runsNamespace: localNamespace,
    object: o.kind === "ClusterWorkflowTemplate"
      ? o
      : { ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? localNamespace } }
  }))
  const remote = objects.map((o): SupportObject => {
    const object = ((): KubeObject => {
      if (o.kind === "ConfigMap") return { ...o, metadata: { ...o.metadata, namespace: remoteVariantNamespace } }
      const spec = moveTemplates(renameClusterScoped(o["spec"] ?? {}) as Json)
      return o.kind === "ClusterWorkflowTemplate"
        ? { ...o, metadata: { ...o.metadata, name: remoteTemplateName(o.metadata.name!) }, spec }
        : { ...o, metadata: { ...o.metadata, namespace: remoteVariantNamespace }, spec }
    })()
    return { runsNamespace: remoteVariantNamespace, object }
  })
  return [...local, ...remote]
}

/** The API resource of a support object. */
export const resourceOf = (o: KubeObject): "workflowtemplates" | "clusterworkflowtemplates" | "configmaps" =>
  o.kind === "ClusterWorkflowTemplate" ? "clusterworkflowtemplates" : o.kind === "WorkflowTemplate" ? "workflowtemplates" : "configmaps"

/**
 * The placement hints of the support objects: their templates, as if in the
 * namespace of the runs that use them, for `placementOf` beside the runs'
 * workflows (as `flotilla run` passes the templates it loads).
 */
export const placementHints = (objects: ReadonlyArray<SupportObject>): ReadonlyArray<KubeObject> =>
  objects
    .filter((o) => o.object.kind !== "ConfigMap")
    .map((o) => ({ ...o.object, metadata: { ...o.object.metadata, namespace: o.runsNamespace } }))

/** As written, with a deterministic name (the file's, lower-cased: a name is an RFC 1123 subdomain) and a namespace. */
const asWritten = (ex: Example): KubeObject => {
  const { generateName: _g, ...metadata } = ex.workflow.metadata as KubeObject["metadata"] & { generateName?: string }
  return {
    ...ex.workflow,
    metadata: { ...metadata, name: ex.name.toLowerCase(), namespace: ex.workflow.metadata.namespace ?? localNamespace }
  }
}

/** Every template running a pod runs in cluster-2/remote (and so do those of the templates it references). */
const remoteVariant = (ex: Example): KubeObject => {
  const wf = asWritten(ex)
  return {
    ...wf,
    metadata: { ...wf.metadata, namespace: remoteVariantNamespace },
    spec: moveTemplates(renameClusterScoped(wf["spec"] ?? {}) as Json)
  }
}

/** Which runs of each example: as written, its multi-cluster variant, or both (in that order). */
export type VariantChoice = "both" | "as-written" | "multi-cluster"

/**
 * FLOTILLA_CONFORMANCE_VARIANTS (`both`, `as-written` or `multi-cluster`),
 * else the driver's `fallback`.
 */
export const variantChoice = (fallback: VariantChoice): VariantChoice => {
  const value = process.env["FLOTILLA_CONFORMANCE_VARIANTS"] ?? fallback
  if (value !== "both" && value !== "as-written" && value !== "multi-cluster") {
    throw new Error(`FLOTILLA_CONFORMANCE_VARIANTS=${value}: expected both, as-written or multi-cluster`)
  }
  return value
}

/** The runs of every example, in order: as written, then multi-cluster (those `choice` keeps). */
export const variantsOf = (examples: ReadonlyArray<Example>, choice: VariantChoice = "both"): ReadonlyArray<Variant> =>
  examples.flatMap((ex) => [
    ...(choice === "multi-cluster" ? [] : [{ ex, label: ex.name, wf: asWritten(ex) }]),
    ...(choice === "as-written" ? [] : [{ ex, label: `${ex.name} (multi-cluster)`, wf: remoteVariant(ex) }])
  ])

/** The Workflow to submit for a variant. */
export const manifestOf = (v: Variant): KubeObject => ({ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", ...v.wf })

interface NodeView {
  readonly name: string
  readonly displayName: string
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
      displayName: String(node["displayName"] ?? name),
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
const compareRuns = (ex: Example, local: KubeObject | undefined, remote: KubeObject | undefined): ReadonlyArray<string> => {
  const a = nodesOf(local)
  const b = nodesOf(remote)
  const diffs: Array<string> = []
  const structureOnly = ex.expect.randomOutcome
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
    if (!ex.expect.randomOutputs) {
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

/** What of `expect` the completed Workflow does not meet (empty when it meets it all). */
const unmetExpectations = (expect: Expectation, wf: KubeObject | undefined): Array<string> => {
  const unmet: Array<string> = []
  const phase = phaseOf(wf)
  if (phase !== expect.phase) unmet.push(`expected ${expect.phase}`)
  const message = String(((wf?.["status"] ?? {}) as Json)["message"] ?? "")
  if (expect.message !== undefined && !message.includes(expect.message)) unmet.push(`expected the message to contain "${expect.message}"`)
  const nodes = [...nodesOf(wf).values()]
  for (const want of expect.nodes) {
    const matching = nodes.filter((n) => n.displayName === want.displayName)
    if (matching.length === 0) unmet.push(`expected a node ${want.displayName}`)
    for (const n of matching) {
      if (n.phase !== want.phase) unmet.push(`expected node ${n.name} ${want.phase}, is ${n.phase}`)
      if (want.message !== undefined && !(n.message ?? "").includes(want.message)) {
        unmet.push(`expected node ${n.name}'s message to contain "${want.message}", is "${n.message ?? ""}"`)
      }
    }
  }
  return unmet
}

/** The outcome of a completed run (`result` is the completed Workflow): does it end as its example expects? Dumps it when asked to. */
export const judge = (v: Variant, result: KubeObject | undefined, startedMs: number): RunOutcome => {
  const ns = v.wf.metadata.namespace!
  const name = v.wf.metadata.name!
  if (dumpDir && result) {
    fs.mkdirSync(dumpDir, { recursive: true })
    fs.writeFileSync(path.join(dumpDir, `${ns}-${name}.yaml`), YAML.stringify(result))
  }
  const unmet = unmetExpectations(v.ex.expect, result)
  if (unmet.length > 0) {
    const phase = phaseOf(result)
    const message = ((result?.["status"] ?? {}) as Json)["message"]
    return {
      label: v.label,
      ok: false,
      reason: `${unmet.join("; ")}: ${phase}${message ? `: ${String(message)}` : ""} (${describeNodes(result)})`,
      workflow: result
    }
  }
  if (verbose) console.error(`  ${v.label}: ${v.ex.expect.phase} as expected in ${((Date.now() - startedMs) / 1000).toFixed(1)}s`)
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
 * of `variants`. An example whose outcome is random that did not end as expected gets one
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
      outcome.ok || !v.ex.expect.randomOutcome
        ? Effect.succeed(outcome)
        : Effect.gen(function*() {
          if (verbose) console.error(`  ${v.label}: random outcome ${outcome.reason}; one more attempt`)
          yield* driver.remove(v).pipe(Effect.ignore)
          const again = yield* attempt(v)
          return again.ok ? again : { ...again, reason: `${again.reason} (second attempt; first: ${outcome.reason})` }
        })
    ))
  // The longest runs first (an example's `timeout` line says it is long: a mutex held for minutes, nested
  // parallelism), so that they overlap the many short ones instead of trailing alone at the end; the
  // outcomes stay in the order of `variants`.
  const order = variants.map((v, i) => ({ v, i })).sort((a, b) => (b.v.ex.expect.timeoutSeconds ?? 0) - (a.v.ex.expect.timeoutSeconds ?? 0))
  return Effect.forEach(order, ({ v }) => runOne(v), { concurrency }).pipe(
    Effect.map((outcomes) => {
      const inOrder = new Array<RunOutcome>(variants.length)
      order.forEach(({ i }, k) => (inOrder[i] = outcomes[k]!))
      return inOrder
    })
  )
}

/**
 * Prints `PASS`/`FAIL` per run (outcomes in the order of `variantsOf`), then
 * one `FAIL` line per extra failure (checks beyond single runs), one `SKIP`
 * line per run of the `skipped` examples (not run: `embeddedOnly`), then
 * `N passed, N failed` and, when some were skipped, `N skipped` (never
 * counted as passed). Returns the number failed.
 */
export const report = (
  examples: ReadonlyArray<Example>,
  outcomes: ReadonlyArray<RunOutcome>,
  extraFailures: ReadonlyArray<string> = [],
  skipped: ReadonlyArray<Example> = [],
  choice: VariantChoice = "both"
): number => {
  let passed = 0
  let failed = 0
  const perExample = choice === "both" ? 2 : 1
  if (outcomes.length !== examples.length * perExample) {
    throw new Error(`report: ${outcomes.length} outcomes for ${examples.length} examples (${choice})`)
  }
  for (let i = 0; i < examples.length; i++) {
    const ex = examples[i]!
    const runs = outcomes.slice(perExample * i, perExample * (i + 1))
    // Both runs of an example: the multi-cluster one must end as the local one did.
    const [local, remote] = choice === "both" ? [runs[0]!, runs[1]!] : [undefined, undefined]
    const diffs = local?.ok === true && remote?.ok === true ? compareRuns(ex, local.workflow, remote.workflow) : []
    for (const o of runs) {
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
  const skippedRuns = variantsOf(skipped, choice)
  for (const v of skippedRuns) console.log(`SKIP ${v.label}: ${v.ex.expect.embeddedOnly ?? v.ex.expect.notOnRealNodes ?? "skipped"}`)
  console.log(`${passed} passed, ${failed} failed`)
  if (skippedRuns.length > 0) console.log(`${skippedRuns.length} skipped`)
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

/**
 * The loopback HTTP server the `url` header lines point at, serving what the
 * examples expect of the public URLs they name: `/status/<code>` answers with
 * that status code (body `{"status":<code>}`), `/body/<text>` answers 200
 * with the text as its body; anything else is a 404. Tests may dial loopback
 * only. `base` is `http://127.0.0.1:<port>`.
 */
export const startLoopbackServer = (): Promise<{ readonly base: string; readonly close: () => Promise<void> }> =>
  new Promise((resolve, reject) => {
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1")
      const status = /^\/status\/(\d{3})$/.exec(url.pathname)
      const body = /^\/body\/([^/]+)$/.exec(url.pathname)
      if (status) {
        res.writeHead(Number(status[1]), { "content-type": "application/json" })
        res.end(JSON.stringify({ status: Number(status[1]) }))
      } else if (body) {
        res.writeHead(200, { "content-type": "text/plain" })
        res.end(decodeURIComponent(body[1]!))
      } else {
        res.writeHead(404, { "content-type": "text/plain" })
        res.end("not found")
      }
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (address === null || typeof address === "string") return reject(new Error("loopback server: no port"))
      resolve({
        base: `http://127.0.0.1:${address.port}`,
        close: () => new Promise<void>((done) => server.close(() => done()))
      })
    })
  })
