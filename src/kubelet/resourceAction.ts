/**
 * What `argoexec resource <action>` does in a resource template's pod
 * (upstream's workflow/executor/resource.go and cmd/argoexec/commands/resource.go),
 * done by the local kubelet for the embedded runtime: the manifest applied
 * with the action and flags, the success/failure conditions waited for, the
 * output parameters read from the resource, all through `client`, which must
 * authenticate as the pod's service account in the pod's cluster (the kubelet
 * never lends its own identity, nor the controller's, to a pod). Failures are
 * worded as kubectl and argoexec word them, so a node's message is upstream's.
 *
 * Only the kinds the in-memory API serves can be acted on (a manifest of any
 * other kind fails as kubectl does when no such kind is installed); kubectl
 * flags other than positional TYPE/NAME and -n/--namespace, and `jqFilter`
 * outputs, fail with "not supported".
 */
import { Effect, Schema } from "effect"
import * as YAML from "yaml"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { isTransient, type KubeError } from "../kube/api/KubeError.js"
import { apiVersionOf, type KubeObject, type ResourceKind, resources } from "../kube/api/Resources.js"
import { isRecord } from "../util/records.js"
import { Budget } from "../workflow/expressions/budget.js"
import { jsonPathQuery } from "../workflow/expressions/jsonpath.js"
import { matches, parseConditions, type Requirement, requirementString } from "./resourceConditions.js"

/** Where argoexec stages the manifest (`common.ExecutorResourceManifestPath`); kubectl's messages name it. */
export const stagedManifestPath = "/tmp/manifest.yaml"

export interface ResourceSpec {
  readonly action: string
  readonly manifest?: string
  readonly mergeStrategy?: string
  readonly flags?: ReadonlyArray<string>
  readonly successCondition?: string
  readonly failureCondition?: string
  readonly manifestFrom?: unknown
}

export interface ResourceTemplate {
  readonly resource?: ResourceSpec
  readonly outputs?: {
    readonly parameters?: ReadonlyArray<{
      readonly name: string
      readonly valueFrom?: { readonly jsonPath?: string; readonly jqFilter?: string; readonly default?: unknown }
    }>
  }
}

export interface ResourceResult {
  /** The executor's error (its termination message), when it failed. */
  readonly error?: string | undefined
  readonly parameters: ReadonlyArray<{ readonly name: string; readonly value: string }>
  /** What the executor logged. */
  readonly log: string
}

/** argoexec's failure: `detail` is the message it writes to the termination log. */
export class ResourceActionError extends Schema.TaggedError<ResourceActionError>()("ResourceActionError", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

const failWith = (detail: string) => Effect.fail(new ResourceActionError({ detail }))

/** kubectl's wording of an API error (`StandardErrorMessage` for an API status). */
const serverError = (e: KubeError, context?: string): string =>
  `Error from server (${e.reason}): ${context !== undefined ? `${context}: ` : ""}${e.detail}`

/** The resource kind a kubectl TYPE names (`configmap`, `configmaps`, `cm`, `ConfigMap`, `workflows.argoproj.io`). */
const shortNames: Readonly<Record<string, ResourceKind>> = { cm: "configmaps", po: "pods", ns: "namespaces", no: "nodes", wf: "workflows", ev: "events", cwf: "cronworkflows", wftmpl: "workflowtemplates", cwftmpl: "clusterworkflowtemplates" }
const kindOfType = (type: string): ResourceKind | undefined => {
  const t = type.toLowerCase().split(".")[0]!
  if (shortNames[t] !== undefined) return shortNames[t]
  for (const [plural, info] of Object.entries(resources) as Array<[ResourceKind, typeof resources[ResourceKind]]>) {
    if (t === plural || t === info.kind.toLowerCase()) return plural
  }
  return undefined
}

const kindOfManifest = (apiVersion: string, kind: string): ResourceKind | undefined => {
  for (const [plural, info] of Object.entries(resources) as Array<[ResourceKind, typeof resources[ResourceKind]]>) {
    if (info.kind === kind && apiVersionOf(plural) === apiVersion) return plural
  }
  return undefined
}

interface Target {
  readonly kind: ResourceKind
  readonly namespace: string | undefined
  readonly name: string | undefined
}

interface Flags {
  readonly positional: ReadonlyArray<string>
  readonly namespace?: string | undefined
}

const parseFlags = (flags: ReadonlyArray<string>): Flags | string => {
  const positional: Array<string> = []
  let namespace: string | undefined
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i]!
    if (f === "-n" || f === "--namespace") namespace = flags[++i]
    else if (f.startsWith("--namespace=")) namespace = f.slice("--namespace=".length)
    else if (f.startsWith("-n") && f.length > 2) namespace = f.slice(2)
    else if (f.startsWith("-")) return `flag ${JSON.stringify(f)} is not supported by the embedded runtime (resource.flags)`
    else positional.push(f)
  }
  return { positional, namespace }
}

/** Positional TYPE NAME or TYPE/NAME, as kubectl takes them. */
const flagTarget = (flags: Flags, podNamespace: string): Target | string => {
  const [first, second] = flags.positional
  if (first === undefined) return "error: you must provide one or more resources by argument or filename"
  const [type, inlineName] = first.includes("/") ? first.split("/", 2) as [string, string] : [first, second]
  const kind = kindOfType(type)
  if (kind === undefined) return `error: the server doesn't have a resource type "${type}"`
  return { kind, namespace: resources[kind].namespaced ? flags.namespace ?? podNamespace : undefined, name: inlineName }
}

/**
 * The kind and namespace `flags` name (`TYPE NAME`, `TYPE/NAME`, `-n NS`),
 * when they name one: what a `kubectl patch` with flags acts on (a JSON patch
 * or a manifest without kind). The namespace is undefined when the flags
 * give none (the pod's) or the kind is cluster-scoped.
 */
export const flagsTarget = (flags: ReadonlyArray<string>): { readonly kind: ResourceKind; readonly namespace: string | undefined } | undefined => {
  const parsed = parseFlags(flags)
  if (typeof parsed === "string") return undefined
  const target = flagTarget(parsed, "")
  if (typeof target === "string") return undefined
  return { kind: target.kind, namespace: target.namespace === "" ? undefined : target.namespace }
}

/**
 * Whether a resource template acts on the object its flags name rather than
 * the manifest's: kubectl's `TYPE NAME` when the manifest is empty (any
 * action), or for a patch when it is a JSON patch or a manifest without kind
 * (`kubectl patch TYPE NAME --patch-file`). `body` is the parsed manifest.
 */
export const targetsByFlags = (spec: ResourceSpec, body: unknown): boolean =>
  (spec.flags ?? []).length > 0 &&
  ((spec.manifest ?? "") === "" ||
    (spec.action === "patch" && ((spec.mergeStrategy ?? "strategic") === "json" || !(isRecord(body) && body.kind !== undefined))))

/**
 * The kind and namespace a resource template acts on, as `runResource` picks
 * it (the embedded runtime grants the pod's service account its rights on
 * exactly that): the flags' object (`targetsByFlags`) or the manifest's. The
 * namespace is undefined when the template gives none (the pod's) or the
 * kind is cluster-scoped; a namespace still holding `{{...}}` counts as none.
 * Undefined when no kind the in-memory API serves can be told.
 */
export const targetOf = (
  spec: ResourceSpec
): { readonly kind: ResourceKind; readonly namespace: string | undefined } | undefined => {
  let body: unknown
  try {
    // a manifest may still hold {{...}}: no warnings about it
    body = (spec.manifest ?? "") === "" ? undefined : YAML.parse(spec.manifest!, { logLevel: "error" })
  } catch {
    body = undefined
  }
  if (targetsByFlags(spec, body)) return flagsTarget(spec.flags ?? [])
  if (!isRecord(body)) return undefined
  const kind = typeof body.kind === "string" ? kindOfManifest(typeof body.apiVersion === "string" ? body.apiVersion : "", body.kind) : undefined
  if (kind === undefined) return undefined
  const ns = isRecord(body.metadata) && typeof body.metadata.namespace === "string" ? body.metadata.namespace : ""
  const fromFlags = parseFlags(spec.flags ?? [])
  const namespace = ns !== "" ? ns : typeof fromFlags === "string" ? undefined : fromFlags.namespace
  return { kind, namespace: resources[kind].namespaced && namespace !== undefined && namespace !== "" && !namespace.includes("{{") ? namespace : undefined }
}

const jsonOf = (doc: unknown): string => JSON.stringify(doc)

/**
 * Runs the resource template `template` as argoexec would in a pod of `podNamespace`. With
 * `manifestFrom`, `loaded` is the manifest read from the named input artifact, at `path` in the pod
 * (resourcePod.ts loads the inputs first).
 */
export const runResource = (
  client: KubeClientShape,
  podNamespace: string,
  template: ResourceTemplate,
  checkIntervalMs: number,
  loaded?: { readonly manifest: string; readonly path: string }
): Effect.Effect<ResourceResult> => {
  // What kubectl is given `-f`: the staged manifest, or the manifestFrom artifact's path.
  const manifestPath = loaded?.path ?? stagedManifestPath
  const lines: Array<string> = []
  const info = (line: string) => Effect.sync(() => void lines.push(line))
  const spec: ResourceSpec = loaded !== undefined ? { ...template.resource!, manifest: loaded.manifest, manifestFrom: undefined } : template.resource!
  const action = spec.action
  const isDelete = action === "delete"
  const outputs = template.outputs?.parameters ?? []

  /** Retries what a transient failure interrupted, as argoexec's `retry.OnError(DefaultBackoff, IsTransientErr)`. */
  const call = <A>(effect: Effect.Effect<A, KubeError>) =>
    effect.pipe(Effect.retry({ times: 4, while: isTransient }))

  const execResource = Effect.gen(function*() {
    const manifest = spec.manifest ?? ""
    const flags = parseFlags(spec.flags ?? [])
    if (typeof flags === "string") return yield* failWith(flags)
    if (manifest === "" && (spec.flags ?? []).length === 0) return yield* failWith("Must provide at least one of flags or manifest.")
    let docs: Array<unknown> = []
    try {
      docs = YAML.parseAllDocuments(manifest).map((d) => {
        if (d.errors.length > 0) throw d.errors[0]
        return d.toJS() as unknown
      }).filter((d) => d !== null && d !== undefined)
    } catch (e) {
      return yield* failWith(`error: error parsing ${manifestPath}: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (docs.length > 1) {
      return yield* failWith(`a manifest of ${docs.length} documents is not supported by the embedded runtime (resource.manifest): give one object per resource template`)
    }
    const body = docs[0]
    const mergeStrategy = spec.mergeStrategy ?? "strategic"
    // kubectl patch TYPE NAME --patch-file: the flags name the object when the manifest has no kind, or for a json patch.
    const byFlags = targetsByFlags(spec, body)
    let target: Target
    let object: Record<string, unknown> | undefined
    if (byFlags) {
      const t = flagTarget(flags, podNamespace)
      if (typeof t === "string") return yield* failWith(t)
      target = t
    } else {
      if (!isRecord(body)) return yield* failWith(`error: error validating "${manifestPath}": the manifest is not an object`)
      if (typeof body.kind !== "string" || body.kind === "") {
        return yield* failWith(`error: unable to decode "${manifestPath}": Object 'Kind' is missing in '${jsonOf(body)}'`)
      }
      const apiVersion = typeof body.apiVersion === "string" ? body.apiVersion : ""
      const kind = kindOfManifest(apiVersion, body.kind)
      const metadata = isRecord(body.metadata) ? body.metadata : {}
      const name = typeof metadata.name === "string" && metadata.name !== "" ? metadata.name : undefined
      const ns = typeof metadata.namespace === "string" && metadata.namespace !== "" ? metadata.namespace : flags.namespace ?? podNamespace
      if (kind === undefined) {
        return yield* failWith(
          `error: resource mapping not found for name: "${name ?? ""}" namespace: "${typeof metadata.namespace === "string" ? metadata.namespace : ""}" ` +
            `from "${manifestPath}": no matches for kind "${body.kind}" in version "${apiVersion}"\nensure CRDs are installed first`
        )
      }
      target = { kind, namespace: resources[kind].namespaced ? ns : undefined, name }
      object = { ...body, metadata: { ...metadata, ...(target.namespace !== undefined ? { namespace: target.namespace } : {}) } }
    }
    const { kind, namespace } = target
    const name = target.name
    const needName = (verb: string) =>
      name === undefined ? failWith(`error: resource name may not be empty (${verb})`) : Effect.succeed(name)
    yield* info(`kubectl ${action} ${byFlags ? (spec.flags ?? []).join(" ") : `-f ${manifestPath}`} -o ${isDelete ? "name" : "json"}`)

    let result: KubeObject | undefined
    switch (action) {
      case "create":
        result = yield* call(client.create(kind, namespace, object as KubeObject)).pipe(
          Effect.mapError((e) => new ResourceActionError({ detail: serverError(e, `error when creating "${manifestPath}"`) }))
        )
        break
      case "get": {
        const n = yield* needName("get")
        result = yield* call(client.get(kind, namespace, n)).pipe(
          Effect.mapError((e) => new ResourceActionError({ detail: serverError(e) }))
        )
        break
      }
      case "delete": {
        const n = yield* needName("delete")
        yield* call(client.delete(kind, namespace, n)).pipe(
          Effect.catchTag("KubeError", (e) =>
            e.reason === "NotFound"
              ? Effect.void // --ignore-not-found
              : Effect.fail(new ResourceActionError({ detail: serverError(e, `error when deleting "${manifestPath}"`) })))
        )
        return undefined
      }
      case "apply": {
        const n = yield* needName("apply")
        const applied = {
          ...object!,
          metadata: {
            ...(object!.metadata as Record<string, unknown>),
            annotations: {
              ...((object!.metadata as { annotations?: Record<string, string> }).annotations),
              "kubectl.kubernetes.io/last-applied-configuration": `${jsonOf(object)}\n`
            }
          }
        } as KubeObject
        result = yield* call(client.get(kind, namespace, n)).pipe(
          Effect.flatMap(() => call(client.patch(kind, namespace, n, applied as unknown as Record<string, unknown>))),
          Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? call(client.create(kind, namespace, applied)) : Effect.fail(e)),
          Effect.mapError((e) => new ResourceActionError({ detail: serverError(e, `error when applying "${manifestPath}"`) }))
        )
        break
      }
      case "replace": {
        const n = yield* needName("replace")
        result = yield* call(client.get(kind, namespace, n)).pipe(
          Effect.flatMap((live) =>
            call(client.replace(kind, namespace, {
              ...(object as KubeObject),
              metadata: { ...(object!.metadata as Record<string, unknown>), resourceVersion: live.metadata.resourceVersion }
            } as KubeObject))
          ),
          Effect.mapError((e) => new ResourceActionError({ detail: serverError(e, `error when replacing "${manifestPath}"`) }))
        )
        break
      }
      case "patch": {
        const n = yield* needName("patch")
        if (mergeStrategy === "json") {
          if (!Array.isArray(body)) return yield* failWith(`error: unable to parse "${manifestPath}": a json patch must be a list of operations`)
          const live = yield* call(client.get(kind, namespace, n)).pipe(
            Effect.mapError((e) => new ResourceActionError({ detail: serverError(e) }))
          )
          const patched = applyJsonPatch(live, body)
          if (typeof patched === "string") return yield* failWith(`Error from server (UnprocessableEntity): ${patched}`)
          result = yield* call(client.replace(kind, namespace, patched)).pipe(
            Effect.mapError((e) => new ResourceActionError({ detail: serverError(e) }))
          )
        } else if (mergeStrategy === "merge" || mergeStrategy === "strategic") {
          // The in-memory API merges patches as JSON merge patches; for the kinds it serves (no lists with merge keys
          // in ConfigMaps, Secrets, Workflows' metadata) a strategic merge patch amounts to the same.
          if (!isRecord(body)) return yield* failWith(`error: unable to parse "${manifestPath}": the patch is not an object`)
          result = yield* call(client.patch(kind, namespace, n, body)).pipe(
            Effect.mapError((e) => new ResourceActionError({ detail: serverError(e) }))
          )
        } else {
          return yield* failWith(`error: --type must be one of [json merge strategic], not "${mergeStrategy}"`)
        }
        break
      }
      default:
        return yield* failWith(`unknown action ${JSON.stringify(action)}`)
    }
    const resultName = result?.metadata.name
    const resultKind = result?.kind ?? resources[kind].kind
    if (resultName === undefined || resultName === "" || resultKind === "") {
      return yield* failWith("Kind and name are both required but at least one of them is missing from the manifest")
    }
    const group = resources[kind].group
    yield* info(`Resource: namespace=${result?.metadata.namespace ?? ""} resource=${resultKind.toLowerCase()}.${group}/${resultName}`)
    return { kind, namespace: result?.metadata.namespace, name: resultName }
  }).pipe(Effect.mapError((e) => new ResourceActionError({ detail: `no more retries ${e.detail}` })))

  const parse = (condition: string | undefined, what: string) =>
    Effect.gen(function*() {
      if (condition === undefined || condition === "") return [] as ReadonlyArray<Requirement>
      const parsed = parseConditions(condition)
      if ("error" in parsed) return yield* failWith(`${what} condition '${condition}' failed to parse: ${parsed.error}`)
      return parsed
    })

  /** WaitResource: GET at once and every interval until the failure condition matches (fail) or every success one does. */
  const waitResource = (target: { kind: ResourceKind; namespace: string | undefined; name: string }) =>
    Effect.gen(function*() {
      if ((spec.successCondition ?? "") === "" && (spec.failureCondition ?? "") === "") return
      const success = yield* parse(spec.successCondition, "success")
      const failure = yield* parse(spec.failureCondition, "fail")
      if (success.length > 0) yield* info(`Waiting for conditions: ${success.map(requirementString).join(",")}`)
      if (failure.length > 0) yield* info(`Failing for conditions: ${failure.map(requirementString).join(",")}`)
      while (true) {
        const live = yield* client.get(target.kind, target.namespace, target.name).pipe(
          Effect.map((o) => o as unknown),
          Effect.catchTag("KubeError", (e) =>
            e.reason === "NotFound"
              ? failWith(`The resource has been deleted while its status was still being checked. Will not be retried: ${e.detail}`)
              : isTransient(e)
              ? Effect.succeed(undefined)
              : failWith(e.detail))
        )
        if (live !== undefined) {
          const doc = JSON.parse(JSON.stringify(live)) as unknown
          for (const r of failure) {
            const failed = matches(r, doc)
            const msg = `failure condition '${requirementString(r)}' evaluated ${failed}`
            yield* info(msg)
            if (failed) return yield* failWith(msg)
          }
          const matched = success.filter((r) => matches(r, doc)).length
          yield* info(`success conditions matched: ${matched} of ${success.length}`)
          if (matched >= success.length) {
            yield* info(`Returning from successful wait for resource ${target.name}`)
            return
          }
        }
        yield* Effect.sleep(checkIntervalMs)
      }
    })

  /** SaveResourceParameters: each jsonPath output read from the resource (`kubectl get -o jsonpath=...`). */
  const saveParameters = (target: { kind: ResourceKind; namespace: string | undefined; name: string }) =>
    Effect.gen(function*() {
      const out: Array<{ name: string; value: string }> = []
      if (outputs.length === 0) return out
      for (const p of outputs) {
        if (p.valueFrom?.jsonPath === undefined || p.valueFrom.jsonPath === "") continue
        const live = yield* client.get(target.kind, target.namespace, target.name).pipe(
          Effect.mapError((e) => new ResourceActionError({ detail: serverError(e) }))
        )
        const value = kubectlJsonPath(live, p.valueFrom.jsonPath)
        if (typeof value !== "string") return yield* failWith(value.error)
        yield* info(`Saved output parameter ${p.name}: ${value}`)
        out.push({ name: p.name, value })
      }
      return out
    })

  return Effect.gen(function*() {
    // Checked before anything is done: a template the embedded runtime cannot finish must not half-run.
    const jq = outputs.find((p) => p.valueFrom?.jqFilter !== undefined && p.valueFrom.jqFilter !== "")
    if (jq !== undefined) {
      return yield* failWith(
        `outputs.parameters.${jq.name}.valueFrom.jqFilter is not supported by the embedded runtime (no jq implementation); use jsonPath`
      )
    }
    if (spec.manifestFrom !== undefined) return yield* failWith("resource.manifestFrom: the manifest artifact was not loaded")
    if (isDelete && ((spec.successCondition ?? "") !== "" || (spec.failureCondition ?? "") !== "" || outputs.length > 0)) {
      return yield* failWith("successCondition, failureCondition and outputs are not supported for delete action")
    }
    const target = yield* execResource
    if (target === undefined) return [] as ReadonlyArray<{ name: string; value: string }>
    yield* waitResource(target)
    return yield* saveParameters(target)
  }).pipe(
    Effect.map((parameters): ResourceResult => ({ parameters, log: lines.map((l) => `${l}\n`).join("") })),
    Effect.catchTag("ResourceActionError", (e) =>
      Effect.succeed<ResourceResult>({ error: e.detail, parameters: [], log: [...lines, e.detail].map((l) => `${l}\n`).join("") }))
  )
}

/**
 * kubectl's `-o jsonpath=TEMPLATE`: text with `{expression}`s, each a JSONPath
 * from the object (`{.metadata.name}`); strings print as they are, other
 * values as JSON, several results space-separated, a missing key as nothing.
 */
export const kubectlJsonPath = (object: unknown, template: string): string | { readonly error: string } => {
  let out = ""
  let i = 0
  while (i < template.length) {
    const open = template.indexOf("{", i)
    if (open < 0) {
      out += template.slice(i)
      break
    }
    out += template.slice(i, open)
    const close = template.indexOf("}", open)
    if (close < 0) return { error: `error parsing jsonpath ${template}, unclosed action` }
    const expr = template.slice(open + 1, close).trim()
    i = close + 1
    if (/^(range|end)\b/.test(expr)) return { error: `jsonpath ${template}: {range} and {end} are not supported by the embedded runtime` }
    if (expr.startsWith("\"") && expr.endsWith("\"")) {
      out += JSON.parse(expr) as string
      continue
    }
    const path = expr === "" || expr === "." || expr === "$" ? "$" : expr.startsWith("$") ? expr : `$${expr.startsWith(".") || expr.startsWith("[") ? "" : "."}${expr}`
    let found: unknown
    try {
      found = jsonPathQuery(JSON.stringify(object), path, new Budget())
    } catch (e) {
      if (e instanceof Error && / not found$/.test(e.message)) continue
      return { error: `error executing jsonpath "${template}": ${e instanceof Error ? e.message : String(e)}` }
    }
    const items = Array.isArray(found) && path !== "$" && !isDefiniteArray(path) ? found : [found]
    out += items.map((v) => (typeof v === "string" ? v : v === null ? "null" : JSON.stringify(v))).join(" ")
  }
  return out
}

/** A path with no wildcard, filter, slice or recursion names one value, which may itself be a list. */
const isDefiniteArray = (path: string): boolean => !/\*|\.\.|\[\?|:|,/.test(path)

/** RFC 6902 on a copy of `doc` (add, remove, replace, test, copy, move), or why it cannot apply. */
export const applyJsonPatch = (doc: KubeObject, ops: ReadonlyArray<unknown>): KubeObject | string => {
  const root = JSON.parse(JSON.stringify(doc)) as Record<string, unknown>
  const pointer = (p: string): Array<string> =>
    p === "" ? [] : p.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
  const parentOf = (parts: Array<string>): { parent: any; key: string } | undefined => {
    let cur: any = root
    for (const k of parts.slice(0, -1)) {
      cur = Array.isArray(cur) ? cur[Number(k)] : cur?.[k]
      if (cur === undefined || cur === null || typeof cur !== "object") return undefined
    }
    return { parent: cur, key: parts[parts.length - 1]! }
  }
  const getAt = (parts: Array<string>): unknown => {
    let cur: any = root
    for (const k of parts) {
      cur = Array.isArray(cur) ? cur[Number(k)] : cur?.[k]
      if (cur === undefined) return undefined
    }
    return cur
  }
  const put = (parts: Array<string>, value: unknown, insert: boolean): string | undefined => {
    const at = parentOf(parts)
    if (at === undefined) return `doc is missing path: "/${parts.join("/")}"`
    if (Array.isArray(at.parent)) {
      const idx = at.key === "-" ? at.parent.length : Number(at.key)
      if (!Number.isInteger(idx) || idx < 0 || idx > at.parent.length) return `index out of range: /${parts.join("/")}`
      if (insert) at.parent.splice(idx, 0, value)
      else at.parent[idx] = value
    } else at.parent[at.key] = value
    return undefined
  }
  const remove = (parts: Array<string>): string | undefined => {
    const at = parentOf(parts)
    if (at === undefined || getAt(parts) === undefined) return `doc is missing path: "/${parts.join("/")}"`
    if (Array.isArray(at.parent)) at.parent.splice(Number(at.key), 1)
    else delete at.parent[at.key]
    return undefined
  }
  for (const raw of ops) {
    if (!isRecord(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") return "invalid json patch operation"
    const parts = pointer(raw.path)
    let problem: string | undefined
    switch (raw.op) {
      case "add":
        problem = put(parts, raw.value, true)
        break
      case "replace":
        problem = getAt(parts) === undefined ? `doc is missing key: ${raw.path}` : put(parts, raw.value, false)
        break
      case "remove":
        problem = remove(parts)
        break
      case "test":
        problem = JSON.stringify(getAt(parts)) === JSON.stringify(raw.value) ? undefined : `testing value ${raw.path} failed`
        break
      case "copy":
      case "move": {
        if (typeof raw.from !== "string") return `missing from in ${raw.op}`
        const from = pointer(raw.from)
        const v = getAt(from)
        if (v === undefined) return `doc is missing from path: "${raw.from}"`
        if (raw.op === "move") problem = remove(from)
        problem ??= put(parts, JSON.parse(JSON.stringify(v)), true)
        break
      }
      default:
        return `Unexpected kind: ${raw.op}`
    }
    if (problem !== undefined) return problem
  }
  return root as unknown as KubeObject
}
