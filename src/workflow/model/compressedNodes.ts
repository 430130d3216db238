/**
 * `status.compressedNodes`: upstream's way of keeping a large workflow under
 * the API object size limit. When the stored status would be too large,
 * `status.nodes` is replaced by the gzip of its JSON, base64-encoded
 * (`packer.compressWorkflow` with `file.CompressEncodeString`), and readers
 * decode it when `nodes` is empty (`packer.DecompressWorkflow`).
 *
 * Anything that reads a workflow's nodes (the engine, `flotilla run`'s tree,
 * the controller) goes through `readStatusNodes`/`statusNodes`, never
 * `status.nodes` directly. Decoding is bounded: a status is writable by the
 * workflow's owner, so a compressed value that expands beyond `maxBytes` is
 * refused rather than inflated.
 */
import { brotliDecompressSync, gzipSync, gunzipSync, zstdDecompressSync } from "node:zlib"
import { isRecord } from "../../util/records.js"
import type { NodeStatus } from "./Workflow.js"

export type Nodes = Record<string, NodeStatus>

export type StatusNodes =
  | { readonly ok: true; readonly nodes: Nodes; readonly compressed: boolean }
  | { readonly ok: false; readonly error: string }

/** Decoded node JSON larger than this is refused unless the caller says otherwise. */
export const defaultMaxDecodedBytes = 256 * 1024 * 1024

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/

const gzipMagic = [0x1f, 0x8b]
const zstdMagic = [0x28, 0xb5, 0x2f, 0xfd]
const startsWith = (buf: Uint8Array, magic: ReadonlyArray<number>): boolean => magic.every((b, i) => buf[i] === b)

/** `file.CompressEncodeString` of the nodes' JSON: gzip (level 6, upstream's default), standard base64. */
export const compressNodes = (nodes: Readonly<Record<string, unknown>>): string => compressNodesJson(JSON.stringify(nodes))

/** `compressNodes` for nodes already serialised (the engine measures the JSON before deciding to compress). */
export const compressNodesJson = (json: string): string => gzipSync(json).toString("base64")

/**
 * `file.DecodeDecompressString` + `json.Unmarshal` into Nodes. gzip is what
 * upstream writes by default; zstd and brotli (upstream v4.1's
 * `WORKFLOW_COMPRESSION_ALGORITHM`) are recognised like `DecompressContent`
 * does: zstd and gzip by their magic bytes, anything else as brotli.
 */
export const decompressNodes = (encoded: string, maxBytes = defaultMaxDecodedBytes): StatusNodes => {
  if (encoded.length % 4 !== 0 || !base64Pattern.test(encoded)) {
    return { ok: false, error: "status.compressedNodes: not valid base64" }
  }
  const bytes = Buffer.from(encoded, "base64")
  let json: string
  try {
    const options = { maxOutputLength: maxBytes }
    const raw = startsWith(bytes, zstdMagic)
      ? zstdDecompressSync(bytes, options)
      : startsWith(bytes, gzipMagic)
      ? gunzipSync(bytes, options)
      : brotliDecompressSync(bytes, options)
    json = raw.toString("utf8")
  } catch (e) {
    const reason = e instanceof RangeError || (e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE"
      ? `decompresses to more than ${maxBytes} bytes`
      : `failed to decompress: ${e instanceof Error ? e.message : String(e)}`
    return { ok: false, error: `status.compressedNodes: ${reason}` }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch (e) {
    return { ok: false, error: `status.compressedNodes: not a JSON object of nodes: ${e instanceof Error ? e.message : String(e)}` }
  }
  if (!isRecord(parsed)) {
    return { ok: false, error: "status.compressedNodes: not a JSON object of nodes" }
  }
  return { ok: true, nodes: parsed as Nodes, compressed: true }
}

const isEmpty = (o: object): boolean => {
  for (const _ in o) return false
  return true
}

/**
 * The nodes of a status: `status.nodes`, or the decoded
 * `status.compressedNodes` when `nodes` is empty and it is set (upstream's
 * rule). A status with neither has no nodes.
 */
export const readStatusNodes = (status: unknown, maxBytes = defaultMaxDecodedBytes): StatusNodes => {
  if (!isRecord(status)) return { ok: true, nodes: {}, compressed: false }
  const nodes = isRecord(status.nodes) ? (status.nodes as Nodes) : undefined
  const compressed = status.compressedNodes
  if ((nodes === undefined || isEmpty(nodes)) && typeof compressed === "string" && compressed !== "") {
    return decompressNodes(compressed, maxBytes)
  }
  return { ok: true, nodes: nodes ?? {}, compressed: false }
}

/**
 * The status with its nodes replaced by `update(nodes)`, stored the way they
 * were: compressed nodes are compressed again. For writers other than the
 * engine that touch nodes (the engine itself decides between the two forms by
 * size); a status whose nodes cannot be decoded is returned unchanged.
 */
export const updateStatusNodes = (
  status: Readonly<Record<string, unknown>>,
  update: (nodes: Nodes) => Nodes
): Record<string, unknown> => {
  const r = readStatusNodes(status)
  if (!r.ok) return { ...status }
  const next = update(r.nodes)
  return r.compressed ? { ...status, compressedNodes: compressNodes(next) } : { ...status, nodes: next }
}

/** For readers that only display nodes: the nodes, or none when they cannot be decoded. */
export const statusNodes = (status: unknown): Nodes => {
  const r = readStatusNodes(status)
  return r.ok ? r.nodes : {}
}
