/**
 * Memoization, the engine's half, as upstream's operator applies a template's `memoize`
 * (`key`, `maxAge`, `cache.configMap.name`): before a memoized template runs, its key is looked
 * up in the ConfigMap cache (read by the controller into `input.memo`, src/controller/Memoization.ts);
 * a hit within `maxAge` completes the node at once, Succeeded, with the cached outputs and
 * `memoizationStatus: {hit: true, key, cacheName}`; a miss runs it (`hit: false`), and once its
 * node Succeeded its outputs are stored (`output.memo.save`), entries as upstream's
 * `configMapCache` writes them: `{nodeID, outputs, creationTimestamp, lastHitTimestamp}`.
 */
import { validateSubdomain } from "../../kube/api/Validation.js"
import { parseDurationMs } from "../../util/goDuration.js"
import { isRecord } from "../../util/records.js"
import { readStatusNodes } from "../model/compressedNodes.js"
import type { NodeType, Template } from "../model/Workflow.js"
import type { ExecOpts, Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import type { MemoRequests } from "./syncTypes.js"

/** Upstream's label on a memoization ConfigMap: `workflows.argoproj.io/configmap-type: Cache`. */
export const labelConfigMapType = "workflows.argoproj.io/configmap-type"
export const configMapTypeCache = "Cache"
/** Upstream's `cacheKeyRegex`. */
export const cacheKeyPattern = /^[a-zA-Z0-9][-a-zA-Z0-9]*$/

type Memoize = NonNullable<Template["memoize"]>

const cacheNameOf = (memo: Memoize): string => {
  const cache = memo.cache as { configMap?: { name?: unknown } } | undefined
  return typeof cache?.configMap?.name === "string" ? cache.configMap.name : ""
}

class Session {
  readonly hit: Array<{ cache: string; key: string }> = []
  readonly needCaches = new Set<string>()
}
const sessions = new WeakMap<OperationState, Session>()
const sessionOf = (op: OperationState): Session => {
  let s = sessions.get(op)
  if (s === undefined) sessions.set(op, s = new Session())
  return s
}

/** Why a cache's name is no ConfigMap name (`other-namespace/name`, say: never read), or undefined. */
const invalidConfigMapName = (name: string): string | undefined => {
  const problem = validateSubdomain(name)
  return problem === undefined ? undefined : `'${name}' is not a valid ConfigMap name: ${problem}`
}

/** Why a cache ConfigMap may not be used (upstream's `validateConfigmap`), or undefined. */
export const cacheLabelError = (labels: Readonly<Record<string, string>> | undefined): string | undefined => {
  const label = labels?.[labelConfigMapType]
  if (label === undefined) return `memoization configmap doesn't have ${labelConfigMapType} label, refusing to use it`
  if (label !== configMapTypeCache) {
    return `memoization configmap doesn't have label ${labelConfigMapType} = ${configMapTypeCache}, refusing to use it`
  }
  return undefined
}

/**
 * The cache entry of a memoized call about to run: its node, Succeeded with the cached outputs, on
 * a fresh hit; an Error node when the cache cannot be used; undefined on a miss (it runs) and while
 * the cache has not been read (the controller reads it and runs the engine again).
 */
export const cacheLookup = (
  op: OperationState,
  nodeName: string,
  tmpl: Template,
  opts: ExecOpts,
  memo: Memoize,
  type: NodeType
): Node | undefined => {
  const cacheName = cacheNameOf(memo)
  if (cacheName === "") return op.errorNode(nodeName, "cache could not be found or created", opts, tmpl.name)
  const invalidName = invalidConfigMapName(cacheName)
  if (invalidName !== undefined) return op.errorNode(nodeName, `cache could not be found or created: ${invalidName}`, opts, tmpl.name)
  const key = memo.key
  if (!cacheKeyPattern.test(key)) return op.errorNode(nodeName, `invalid cache key: ${key}`, opts, tmpl.name)
  const read = op.input.memo?.caches.get(cacheName)
  if (read === undefined) {
    sessionOf(op).needCaches.add(cacheName)
    return undefined
  }
  if (!read.found) return undefined
  const labelError = cacheLabelError(read.labels)
  if (labelError !== undefined) return op.errorNode(nodeName, labelError, opts, tmpl.name)
  const raw = read.data[key]
  if (raw === undefined || raw === "") return undefined
  let entry: unknown
  try {
    entry = JSON.parse(raw)
  } catch (e) {
    return op.errorNode(nodeName, `malformed cache entry: could not unmarshal JSON; unable to parse: ${e instanceof Error ? e.message : String(e)}`, opts, tmpl.name)
  }
  if (!isRecord(entry) || typeof entry["nodeID"] !== "string" || entry["nodeID"] === "") return undefined
  if (memo.maxAge !== undefined && memo.maxAge !== "") {
    const maxAge = parseDurationMs(memo.maxAge)
    if (maxAge === undefined) return op.errorNode(nodeName, `invalid maxAge: time: invalid duration "${memo.maxAge}"`, opts, tmpl.name)
    const created = Date.parse(String(entry["creationTimestamp"] ?? ""))
    if (!Number.isFinite(created) || op.now - created > maxAge) return undefined
  }
  const node = op.initCallNode(nodeName, type, "Succeeded", tmpl, opts, false)
  if (isRecord(entry["outputs"])) node.outputs = entry["outputs"] as Node["outputs"]
  node["memoizationStatus"] = { hit: true, key, cacheName }
  sessionOf(op).hit.push({ cache: cacheName, key })
  return node
}

/** A memoized call's node that runs: `memoizationStatus` with `hit: false`. */
export const markMemoized = (node: Node, memo: Memoize): void => {
  if (node["memoizationStatus"] === undefined) node["memoizationStatus"] = { hit: false, key: memo.key, cacheName: cacheNameOf(memo) }
}

const memoStatus = (n: Node | undefined): { hit?: unknown; key?: unknown; cacheName?: unknown } | undefined => {
  const m = n?.["memoizationStatus"]
  return isRecord(m) ? m : undefined
}

/** The caches to read and the entries to store: the outputs of memoized nodes that Succeeded in this reconcile. */
export const memoRequests = (op: OperationState): MemoRequests | undefined => {
  const session = sessions.get(op)
  const fresh: Array<Node> = []
  for (const id in op.nodes) {
    const n = op.nodes[id]
    const m = memoStatus(n)
    if (m !== undefined && m.hit === false && n.phase === "Succeeded") fresh.push(n)
  }
  let save: MemoRequests["save"] = []
  if (fresh.length > 0) {
    const stored = readStatusNodes(op.input.workflow["status"])
    const before = stored.ok ? stored.nodes : {}
    save = fresh
      .filter((n) => before[n.id]?.phase !== "Succeeded")
      .map((n) => {
        const m = memoStatus(n)!
        return { cache: String(m.cacheName ?? ""), key: String(m.key ?? ""), nodeId: n.id, outputs: n.outputs ?? {} }
      })
      .filter((s) => s.cache !== "" && invalidConfigMapName(s.cache) === undefined && cacheKeyPattern.test(s.key))
  }
  if (save.length === 0 && (session === undefined || (session.hit.length === 0 && session.needCaches.size === 0))) return undefined
  return { save, hit: session?.hit ?? [], needCaches: [...(session?.needCaches ?? [])] }
}
