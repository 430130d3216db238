import { assert, describe, it } from "@effect/vitest"
import { brotliCompressSync, gunzipSync, gzipSync, zstdCompressSync } from "node:zlib"
import { compressNodes, decompressNodes, type Nodes, readStatusNodes, statusNodes, updateStatusNodes } from "../../../src/workflow/model/compressedNodes.js"

const nodes: Nodes = {
  wf: { id: "wf", name: "wf", displayName: "wf", type: "Steps", phase: "Running", children: ["wf-1"] },
  "wf-1": { id: "wf-1", name: "wf[0]", displayName: "[0]", type: "StepGroup", phase: "Running" }
}

describe("status.compressedNodes", () => {
  it("is upstream's CompressEncodeString of the nodes' JSON: standard base64 of gzip", () => {
    const encoded = compressNodes(nodes)
    assert.match(encoded, /^[A-Za-z0-9+/]+={0,2}$/)
    const bytes = Buffer.from(encoded, "base64")
    assert.deepStrictEqual([bytes[0], bytes[1]], [0x1f, 0x8b])
    assert.deepStrictEqual(JSON.parse(gunzipSync(bytes).toString("utf8")), nodes)
  })

  it("reads nodes, or compressedNodes when nodes is empty (packer.DecompressWorkflow)", () => {
    const compressed = compressNodes(nodes)
    assert.deepStrictEqual(readStatusNodes({ nodes }), { ok: true, nodes, compressed: false })
    assert.deepStrictEqual(readStatusNodes({ compressedNodes: compressed }), { ok: true, nodes, compressed: true })
    assert.deepStrictEqual(readStatusNodes({ nodes: {}, compressedNodes: compressed }), { ok: true, nodes, compressed: true })
    // Nodes present win, as upstream only decompresses when they are empty.
    const other: Nodes = { x: { id: "x", name: "x", displayName: "x", type: "Pod", phase: "Pending" } }
    assert.deepStrictEqual(readStatusNodes({ nodes: other, compressedNodes: compressed }), { ok: true, nodes: other, compressed: false })
    assert.deepStrictEqual(readStatusNodes(undefined), { ok: true, nodes: {}, compressed: false })
    assert.deepStrictEqual(statusNodes({ compressedNodes: compressed }), nodes)
  })

  it("reads what upstream v4.1 writes with zstd or brotli (DecompressContent detects the algorithm)", () => {
    const json = JSON.stringify(nodes)
    assert.deepStrictEqual(decompressNodes(zstdCompressSync(json).toString("base64")), { ok: true, nodes, compressed: true })
    assert.deepStrictEqual(decompressNodes(brotliCompressSync(json).toString("base64")), { ok: true, nodes, compressed: true })
  })

  it("refuses what is not base64, not compressed, not a JSON object of nodes, or inflates beyond the bound", () => {
    const fails = (encoded: string, maxBytes?: number): string => {
      const r = decompressNodes(encoded, maxBytes)
      if (r.ok) throw new Error("decoded")
      return r.error
    }
    assert.strictEqual(fails("not base64!"), "status.compressedNodes: not valid base64")
    assert.match(fails(Buffer.from("plain text, not compressed").toString("base64")), /^status.compressedNodes: failed to decompress/)
    assert.strictEqual(fails(gzipSync("[1,2]").toString("base64")), "status.compressedNodes: not a JSON object of nodes")
    assert.match(fails(gzipSync("{").toString("base64")), /^status.compressedNodes: not a JSON object of nodes: /)
    // A gzip bomb: 64 MiB of zeros in a few dozen KiB.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024)).toString("base64")
    assert.strictEqual(fails(bomb, 1024 * 1024), "status.compressedNodes: decompresses to more than 1048576 bytes")
    assert.deepStrictEqual(statusNodes({ compressedNodes: "@@@@" }), {})
  })

  it("updateStatusNodes writes nodes back the way they were stored", () => {
    const mark = (ns: Nodes): Nodes => ({ ...ns, wf: { ...ns.wf, message: "marked" } })
    const plain = updateStatusNodes({ phase: "Running", nodes }, mark)
    assert.strictEqual((plain.nodes as Nodes).wf.message, "marked")
    assert.strictEqual(plain.compressedNodes, undefined)
    const packed = updateStatusNodes({ phase: "Running", compressedNodes: compressNodes(nodes) }, mark)
    assert.strictEqual(packed.nodes, undefined)
    assert.strictEqual(statusNodes(packed).wf.message, "marked")
    assert.deepStrictEqual(updateStatusNodes({ compressedNodes: "@@@@" }, mark), { compressedNodes: "@@@@" })
  })
})
