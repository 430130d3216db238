/**
 * OCI image-layout archives for scripts/images/build.sh, without a container
 * engine. Run with the project's Node 24 (type stripping, no tsx needed):
 *
 *   node scripts/images/oci.ts image --out-dir DIR --id NAME --name REF... \
 *        [--entrypoint ARG]... [--cmd ARG]... [--env K=V]... [--user U] \
 *        [--workdir D] [--port 6060/tcp]... [--label K=V]... --layer LAYERDIR...
 *     Writes DIR/NAME-<hash>.tar (hash = sha256 of its index.json, so equal
 *     content -> equal file name) unless it exists; prints its path.
 *     A LAYERDIR (made by build.sh) holds layer.tar.gz and `meta`:
 *     "<digest> <diff_id> <size>", plus an optional `comment` (history text).
 *   node scripts/images/oci.ts verify FILE...
 *     Checks oci-layout, index.json, every blob's digest and size, and that
 *     the config's diff_ids are the digests of the uncompressed layers.
 *   node scripts/images/oci.ts unpack FILE DIR
 *     Extracts the image's layers in order into DIR (whiteouts applied).
 *   node scripts/images/oci.ts env FILE
 *     Prints the image config's Env, one per line.
 *
 * Archives are deterministic: fixed entry order, mtime 0, owner 0:0. Every
 * manifest in index.json carries `io.containerd.image.name` (what
 * `ctr images import` names the image by) and `org.opencontainers.image.ref.name`,
 * both the full normalized reference (docker.io/library/busybox:latest).
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { gunzipSync } from "node:zlib"

const MT_INDEX = "application/vnd.oci.image.index.v1+json"
const MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
const MT_CONFIG = "application/vnd.oci.image.config.v1+json"
const MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
const ANN_REF = "org.opencontainers.image.ref.name"
const ANN_CONTAINERD = "io.containerd.image.name"

const die = (msg: string): never => {
  process.stderr.write(`oci: ${msg}\n`)
  process.exit(1)
}
const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex")
const sha256File = (file: string): string => {
  const h = createHash("sha256")
  const fd = fs.openSync(file, "r")
  const buf = Buffer.allocUnsafe(1 << 20)
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      h.update(buf.subarray(0, n))
    }
  } finally {
    fs.closeSync(fd)
  }
  return h.digest("hex")
}

/** docker.io/library/busybox:latest from busybox, busybox:latest, library/busybox... */
export const normalizeRef = (ref: string): string => {
  let name = ref
  let tag = ""
  const at = name.indexOf("@")
  if (at >= 0) {
    tag = name.slice(at)
    name = name.slice(0, at)
  } else {
    const colon = name.lastIndexOf(":")
    if (colon > name.lastIndexOf("/")) {
      tag = name.slice(colon)
      name = name.slice(0, colon)
    } else tag = ":latest"
  }
  const first = name.split("/")[0]
  const hasRegistry = name.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")
  if (!hasRegistry) name = `docker.io/${name.includes("/") ? name : `library/${name}`}`
  return name + tag
}

// ---------------------------------------------------------------- tar (ustar, enough for our archives)
const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, "0") + "\0"
const tarHeader = (name: string, size: number, type: "0" | "5", mode: number): Buffer => {
  if (Buffer.byteLength(name) > 100) die(`tar entry name too long: ${name}`)
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, "utf8")
  h.write(octal(mode, 8), 100)
  h.write(octal(0, 8), 108)
  h.write(octal(0, 8), 116)
  h.write(octal(size, 12), 124)
  h.write(octal(0, 12), 136)
  h.write("        ", 148)
  h.write(type, 156)
  h.write("ustar\0", 257)
  h.write("00", 263)
  let sum = 0
  for (const b of h) sum += b
  h.write(octal(sum, 7) + " ", 148)
  return h
}

type Entry = { readonly name: string; readonly data?: Buffer; readonly file?: string; readonly dir?: boolean }

const writeTar = (out: string, entries: ReadonlyArray<Entry>) => {
  const fd = fs.openSync(out, "w")
  const pad = (n: number) => {
    const r = n % 512
    if (r !== 0) fs.writeSync(fd, Buffer.alloc(512 - r))
  }
  try {
    for (const e of entries) {
      if (e.dir === true) {
        fs.writeSync(fd, tarHeader(e.name, 0, "5", 0o755))
        continue
      }
      if (e.data !== undefined) {
        fs.writeSync(fd, tarHeader(e.name, e.data.length, "0", 0o644))
        fs.writeSync(fd, e.data)
        pad(e.data.length)
        continue
      }
      const file = e.file as string
      const size = fs.statSync(file).size
      fs.writeSync(fd, tarHeader(e.name, size, "0", 0o644))
      const src = fs.openSync(file, "r")
      const buf = Buffer.allocUnsafe(1 << 20)
      let copied = 0
      try {
        for (;;) {
          const n = fs.readSync(src, buf, 0, buf.length, null)
          if (n === 0) break
          fs.writeSync(fd, buf, 0, n)
          copied += n
        }
      } finally {
        fs.closeSync(src)
      }
      if (copied !== size) die(`${file} changed while archiving`)
      pad(size)
    }
    fs.writeSync(fd, Buffer.alloc(1024))
  } finally {
    fs.closeSync(fd)
  }
}

/** Regular files of a tar archive (ustar/GNU/pax names), name -> content. */
const readTar = (file: string): Map<string, Buffer> => {
  const buf = fs.readFileSync(file)
  const files = new Map<string, Buffer>()
  let off = 0
  let paxPath: string | undefined
  let longName: string | undefined
  const str = (a: number, b: number) => buf.toString("utf8", a, b).replace(/\0.*$/s, "")
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512)
    if (h.every((b) => b === 0)) break
    const size = parseInt(str(off + 124, off + 136).trim() || "0", 8)
    const type = String.fromCharCode(h[156] || 48)
    const prefix = str(off + 345, off + 500)
    let name = str(off, off + 100)
    if (buf.toString("utf8", off + 257, off + 262) === "ustar" && prefix !== "") name = `${prefix}/${name}`
    const data = buf.subarray(off + 512, off + 512 + size)
    off += 512 + Math.ceil(size / 512) * 512
    if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString("utf8"))
      paxPath = m?.[1]
      continue
    }
    if (type === "L") {
      longName = data.toString("utf8").replace(/\0.*$/s, "")
      continue
    }
    name = paxPath ?? longName ?? name
    paxPath = undefined
    longName = undefined
    if (type === "0" || type === "\0") files.set(path.posix.normalize(name).replace(/^\.\//, ""), data)
  }
  return files
}

// ---------------------------------------------------------------- image
type Descriptor = {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
  platform?: { architecture: string; os: string }
}

const parseArgs = (argv: ReadonlyArray<string>) => {
  const multi = new Map<string, Array<string>>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith("--")) die(`unexpected argument ${a}`)
    const eq = a.indexOf("=")
    const [key, value] = eq > 0 ? [a.slice(2, eq), a.slice(eq + 1)] : [a.slice(2), argv[++i]]
    if (value === undefined) die(`${a} needs a value`)
    const list = multi.get(key) ?? []
    list.push(value)
    multi.set(key, list)
  }
  const one = (k: string): string | undefined => multi.get(k)?.at(-1)
  const many = (k: string): Array<string> => multi.get(k) ?? []
  return { one, many }
}

const image = (argv: ReadonlyArray<string>) => {
  const { one, many } = parseArgs(argv)
  const outDir = one("out-dir") ?? die("--out-dir missing")
  const id = one("id") ?? die("--id missing")
  const names = many("name").map(normalizeRef)
  if (names.length === 0) die("at least one --name")
  const layerDirs = many("layer")
  if (layerDirs.length === 0) die("at least one --layer")

  const layers = layerDirs.map((dir) => {
    const [digest, diffId, size] = fs.readFileSync(path.join(dir, "meta"), "utf8").trim().split(/\s+/)
    const comment = fs.existsSync(path.join(dir, "comment")) ? fs.readFileSync(path.join(dir, "comment"), "utf8").trim() : path.basename(dir)
    const file = path.join(dir, "layer.tar.gz")
    if (!/^sha256:[0-9a-f]{64}$/.test(digest) || !/^sha256:[0-9a-f]{64}$/.test(diffId)) die(`bad meta in ${dir}`)
    if (fs.statSync(file).size !== Number(size)) die(`${file}: size differs from ${dir}/meta`)
    return { digest, diffId, size: Number(size), comment, file }
  })

  const runConfig: Record<string, unknown> = {}
  const env = many("env")
  if (one("user") !== undefined) runConfig.User = one("user")
  const ports = many("port")
  if (ports.length > 0) runConfig.ExposedPorts = Object.fromEntries(ports.map((p) => [p.includes("/") ? p : `${p}/tcp`, {}]))
  runConfig.Env = env
  if (many("entrypoint").length > 0) runConfig.Entrypoint = many("entrypoint")
  if (many("cmd").length > 0) runConfig.Cmd = many("cmd")
  runConfig.WorkingDir = one("workdir") ?? "/"
  const labels = many("label")
  if (labels.length > 0) runConfig.Labels = Object.fromEntries(labels.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))

  const created = "1970-01-01T00:00:00Z"
  const config = {
    created,
    architecture: "amd64",
    os: "linux",
    config: runConfig,
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ created, created_by: l.comment }))
  }
  const configBytes = Buffer.from(JSON.stringify(config))
  const configDesc: Descriptor = { mediaType: MT_CONFIG, digest: `sha256:${sha256(configBytes)}`, size: configBytes.length }
  const manifest = {
    schemaVersion: 2,
    mediaType: MT_MANIFEST,
    config: configDesc,
    layers: layers.map((l): Descriptor => ({ mediaType: MT_LAYER_GZIP, digest: l.digest, size: l.size }))
  }
  const manifestBytes = Buffer.from(JSON.stringify(manifest))
  const manifestDigest = `sha256:${sha256(manifestBytes)}`
  const index = {
    schemaVersion: 2,
    mediaType: MT_INDEX,
    manifests: names.map((n): Descriptor => ({
      mediaType: MT_MANIFEST,
      digest: manifestDigest,
      size: manifestBytes.length,
      annotations: { [ANN_CONTAINERD]: n, [ANN_REF]: n },
      platform: { architecture: "amd64", os: "linux" }
    }))
  }
  const indexBytes = Buffer.from(JSON.stringify(index))
  const out = path.join(outDir, `${id}-${sha256(indexBytes).slice(0, 16)}.tar`)
  if (!fs.existsSync(out)) {
    const blob = (d: string) => `blobs/sha256/${d.slice("sha256:".length)}`
    const seen = new Set<string>()
    const blobs: Array<Entry> = []
    const add = (e: Entry) => {
      if (!seen.has(e.name)) blobs.push(e)
      seen.add(e.name)
    }
    add({ name: blob(configDesc.digest), data: configBytes })
    add({ name: blob(manifestDigest), data: manifestBytes })
    for (const l of layers) add({ name: blob(l.digest), file: l.file })
    blobs.sort((a, b) => (a.name < b.name ? -1 : 1))
    const tmp = `${out}.tmp${process.pid}`
    writeTar(tmp, [
      { name: "oci-layout", data: Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })) },
      { name: "index.json", data: indexBytes },
      { name: "blobs/", dir: true },
      { name: "blobs/sha256/", dir: true },
      ...blobs
    ])
    fs.renameSync(tmp, out)
  }
  process.stdout.write(`${out}\t${manifestDigest}\t${names.join(",")}\n`)
}

// ---------------------------------------------------------------- verify / unpack
type Checked = { names: Array<string>; manifest: { config: Descriptor; layers: Array<Descriptor> }; config: any; files: Map<string, Buffer> }

const check = (file: string, deep = true): Checked => {
  const fail = (msg: string): never => die(`${file}: ${msg}`)
  const files = readTar(file)
  const json = (name: string): any => {
    const b = files.get(name) ?? fail(`missing ${name}`)
    try {
      return JSON.parse(b.toString("utf8"))
    } catch (e) {
      return fail(`${name}: invalid JSON (${String(e)})`)
    }
  }
  if (json("oci-layout").imageLayoutVersion !== "1.0.0") fail("oci-layout: imageLayoutVersion is not 1.0.0")
  const blob = (d: Descriptor): Buffer => {
    const m = /^sha256:([0-9a-f]{64})$/.exec(d.digest) ?? fail(`bad digest ${d.digest}`)
    const b = files.get(`blobs/sha256/${m[1]}`) ?? fail(`missing blob ${d.digest}`)
    if (b.length !== d.size) fail(`blob ${d.digest}: size ${b.length}, descriptor says ${d.size}`)
    if (`sha256:${sha256(b)}` !== d.digest) fail(`blob ${d.digest}: content digest differs`)
    return b
  }
  const index = json("index.json")
  if (index.schemaVersion !== 2 || !Array.isArray(index.manifests) || index.manifests.length === 0) fail("index.json: no manifests")
  const digests = new Set<string>(index.manifests.map((m: Descriptor) => m.digest))
  if (digests.size !== 1) fail("index.json: expected one manifest (under several names)")
  const names: Array<string> = []
  for (const m of index.manifests as Array<Descriptor>) {
    if (m.mediaType !== MT_MANIFEST) fail(`index.json: manifest media type ${m.mediaType}`)
    const n = m.annotations?.[ANN_CONTAINERD] ?? fail(`index.json: manifest without ${ANN_CONTAINERD}`)
    if (normalizeRef(n) !== n) fail(`index.json: ${n} is not a normalized reference`)
    names.push(n)
  }
  const manifest = JSON.parse(blob(index.manifests[0]).toString("utf8"))
  if (manifest.config?.mediaType !== MT_CONFIG) fail("manifest: config media type")
  const config = JSON.parse(blob(manifest.config).toString("utf8"))
  if (config.os !== "linux" || config.architecture !== "amd64") fail("config: not linux/amd64")
  const diffIds: Array<string> = config.rootfs?.diff_ids ?? []
  if (diffIds.length !== manifest.layers.length) fail("config: diff_ids and layers differ in number")
  manifest.layers.forEach((l: Descriptor, i: number) => {
    if (l.mediaType !== MT_LAYER_GZIP) fail(`layer ${i}: media type ${l.mediaType}`)
    if (!deep) return
    const raw = gunzipSync(blob(l))
    if (`sha256:${sha256(raw)}` !== diffIds[i]) fail(`layer ${i}: diff_id does not match its uncompressed content`)
  })
  return { names, manifest, config, files }
}

const verify = (files: ReadonlyArray<string>) => {
  if (files.length === 0) die("verify FILE...")
  for (const f of files) {
    const { names, manifest, config } = check(f)
    const size = manifest.layers.reduce((s, l) => s + l.size, 0)
    const c = config.config
    const argv = JSON.stringify([...(c.Entrypoint ?? []), ...(c.Cmd ?? [])])
    process.stdout.write(
      `ok ${path.basename(f)}: ${manifest.layers.length} layer(s), ${(size / 1048576).toFixed(1)} MiB compressed, ` +
        `user=${c.User ?? "0"} argv=${argv}\n   ${names.join("\n   ")}\n`
    )
  }
}

const unpack = (file: string, dir: string) => {
  const { manifest, files } = check(file, false)
  fs.mkdirSync(dir, { recursive: true })
  for (const l of manifest.layers) {
    const raw = gunzipSync(files.get(`blobs/sha256/${l.digest.slice(7)}`) as Buffer)
    // Whiteouts of this layer hide paths of lower layers: apply, then extract.
    const list = spawnSync("tar", ["-t"], { input: raw, maxBuffer: 1 << 28 })
    if (list.status !== 0) die(`${file}: tar -t failed: ${list.stderr}`)
    for (const entry of list.stdout.toString("utf8").split("\n")) {
      const base = path.posix.basename(entry)
      if (!base.startsWith(".wh.")) continue
      const parent = path.join(dir, path.posix.dirname(entry))
      if (base === ".wh..wh..opq") {
        for (const child of fs.existsSync(parent) ? fs.readdirSync(parent) : []) fs.rmSync(path.join(parent, child), { recursive: true, force: true })
      } else fs.rmSync(path.join(parent, base.slice(4)), { recursive: true, force: true })
    }
    const x = spawnSync("tar", ["-x", "--numeric-owner", "--same-permissions", "--exclude=.wh.*", "-C", dir], { input: raw, maxBuffer: 1 << 28 })
    if (x.status !== 0) die(`${file}: tar -x failed: ${x.stderr}`)
  }
}

const [cmd, ...rest] = process.argv.slice(2)
if (cmd === "image") image(rest)
else if (cmd === "verify") verify(rest)
else if (cmd === "unpack" && rest.length === 2) unpack(rest[0], rest[1])
else if (cmd === "env" && rest.length === 1) process.stdout.write(((check(rest[0], false).config.config.Env ?? []) as Array<string>).map((e) => `${e}\n`).join(""))
else if (cmd === "normalize") process.stdout.write(rest.map(normalizeRef).join("\n") + "\n")
else die("usage: oci.ts image ... | verify FILE... | unpack FILE DIR | env FILE | normalize REF...")
