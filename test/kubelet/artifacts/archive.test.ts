import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { chmodTree, gzip, isTarGz, isTarGzFile, tarGz, tarGzToFile, untarGzFile } from "../../../src/kubelet/artifacts/archive.js"
import { packTar, unpackTar } from "../../../src/kubelet/artifacts/tar.js"

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-art-"))

describe("tar codec", () => {
  it("round-trips files, folders, links and long names", () => {
    const long = `${"d".repeat(120)}/${"f".repeat(120)}`
    const entries = [
      { name: "a", type: "dir" as const, mode: 0o755 },
      { name: "a/hello.txt", type: "file" as const, mode: 0o644, data: new TextEncoder().encode("hello\n") },
      { name: "a/link", type: "symlink" as const, mode: 0o777, linkname: "hello.txt" },
      { name: long, type: "file" as const, mode: 0o600, data: new Uint8Array([1, 2, 3]) }
    ]
    const back = unpackTar(packTar(entries))
    expect(back.map((e) => [e.name.replace(/\/$/, ""), e.type, e.mode])).toEqual(entries.map((e) => [e.name, e.type, e.mode]))
    expect(new TextDecoder().decode(back[1]!.data)).toBe("hello\n")
    expect(back[2]!.linkname).toBe("hello.txt")
    expect([...back[3]!.data!]).toEqual([1, 2, 3])
  })

  it("is read by GNU tar, and reads what GNU tar writes", () => {
    const dir = tmp()
    const src = path.join(dir, "src")
    fs.mkdirSync(path.join(src, "sub"), { recursive: true })
    fs.writeFileSync(path.join(src, "sub", "x.txt"), "x")
    fs.writeFileSync(path.join(dir, "ours.tgz"), tarGz(src, -1))
    expect(execFileSync("tar", ["-tzf", path.join(dir, "ours.tgz")], { encoding: "utf8" }).split("\n").filter(Boolean).sort())
      // folders named without a trailing slash, as argoexec's tarDir writes them (GNU tar lists them so)
      .toEqual(["src", "src/sub", "src/sub/x.txt"])
    const out = path.join(dir, "gnu-out")
    fs.mkdirSync(out)
    execFileSync("tar", ["-xzf", path.join(dir, "ours.tgz"), "-C", out])
    expect(fs.readFileSync(path.join(out, "src", "sub", "x.txt"), "utf8")).toBe("x")
    execFileSync("tar", ["-czf", path.join(dir, "gnu.tgz"), "-C", dir, "src"])
    const names = unpackTar(zlib.gunzipSync(fs.readFileSync(path.join(dir, "gnu.tgz")))).map((e) => e.name)
    expect(names).toContain("src/sub/x.txt")
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("refuses what is not a tar", () => {
    expect(() => unpackTar(new TextEncoder().encode("hello world".padEnd(1024, " ")))).toThrow(/not a tar archive/)
    expect(isTarGz(gzip(new TextEncoder().encode("just text"), -1))).toBe(false)
    expect(isTarGz(new TextEncoder().encode("not gzip"))).toBe(false)
  })
})

describe("archives as argoexec makes and opens them", () => {
  /** Unpacks in-memory tgz bytes through the streaming reader (the bytes written to a file first, as a download would). */
  const untar = async (data: Uint8Array, dest: string, maxBytes?: number) => {
    const file = `${dest}.download.tgz`
    fs.writeFileSync(file, data)
    try {
      await untarGzFile(file, dest, ...(maxBytes !== undefined ? [{ maxBytes }] : []))
    } finally {
      fs.rmSync(file, { force: true })
    }
  }
  const run = (f: () => Promise<void>) => () => Effect.promise(f)

  it.effect("a file archives under its base name and unpacks to the destination itself", run(async () => {
    const dir = tmp()
    fs.writeFileSync(path.join(dir, "hello_world.txt"), "hello world\n")
    await tarGzToFile(path.join(dir, "hello_world.txt"), path.join(dir, "out.tgz"), 9)
    expect(await isTarGzFile(path.join(dir, "out.tgz"))).toBe(true)
    expect(execFileSync("tar", ["-tzf", path.join(dir, "out.tgz")], { encoding: "utf8" }).trim()).toBe("hello_world.txt")
    await untarGzFile(path.join(dir, "out.tgz"), path.join(dir, "message"))
    expect(fs.readFileSync(path.join(dir, "message"), "utf8")).toBe("hello world\n")
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("the streamed archive is the in-memory one, and a file is sniffed as a tarball from its first bytes only", run(async () => {
    const dir = tmp()
    const src = path.join(dir, "out")
    fs.mkdirSync(path.join(src, "a"), { recursive: true })
    fs.writeFileSync(path.join(src, "a", "big"), Buffer.alloc(3 * 1024 * 1024 + 7, 7))
    fs.symlinkSync("a/big", path.join(src, "l"))
    await tarGzToFile(src, path.join(dir, "s.tgz"), 1)
    expect(zlib.gunzipSync(fs.readFileSync(path.join(dir, "s.tgz")))).toEqual(Buffer.from(zlib.gunzipSync(tarGz(src, 1))))
    fs.writeFileSync(path.join(dir, "text.gz"), gzip(new TextEncoder().encode("just text"), -1))
    expect(await isTarGzFile(path.join(dir, "text.gz"))).toBe(false)
    expect(await isTarGzFile(path.join(src, "a", "big"))).toBe(false)
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("a folder unpacks to the destination folder, links kept", run(async () => {
    const dir = tmp()
    const src = path.join(dir, "out")
    fs.mkdirSync(path.join(src, "a"), { recursive: true })
    fs.writeFileSync(path.join(src, "a", "f"), "F")
    fs.symlinkSync("a/f", path.join(src, "l"))
    await untar(tarGz(src, 0), path.join(dir, "in"))
    expect(fs.readFileSync(path.join(dir, "in", "a", "f"), "utf8")).toBe("F")
    expect(fs.readlinkSync(path.join(dir, "in", "l"))).toBe("a/f")
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("refuses names and links that leave the destination", run(async () => {
    const dir = tmp()
    const evil = gzip(packTar([{ name: "../escape", type: "file", mode: 0o644, data: new Uint8Array([1]) }]), -1)
    await expect(untar(evil, path.join(dir, "x"))).rejects.toThrow(/illegal file path/)
    // dest dir/x is unpacked in dir/x.tmpdir: "../escape" would have landed at dir/escape.
    expect(fs.existsSync(path.join(dir, "escape"))).toBe(false)
    const link = gzip(packTar([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/l", type: "symlink", mode: 0o777, linkname: "/etc" }
    ]), -1)
    await expect(untar(link, path.join(dir, "y"))).rejects.toThrow(/illegal symlink target/)
    const up = gzip(packTar([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/a", type: "symlink", mode: 0o777, linkname: ".." },
      { name: "d/b", type: "symlink", mode: 0o777, linkname: "../.." }
    ]), -1)
    // "d/a -> .." names the destination itself: refused as well.
    await expect(untar(up, path.join(dir, "z"))).rejects.toThrow(/illegal symlink target: d\/a -> \.\./)
    const topUp = gzip(packTar([{ name: "a", type: "symlink", mode: 0o777, linkname: ".." }, { name: "b", type: "file", mode: 0o644 }]), -1)
    await expect(untar(topUp, path.join(dir, "z"))).rejects.toThrow(/illegal symlink target: a -> \.\./)
    // A link to a folder inside, then a file through it: fine inside, refused when the name climbs out.
    const through = gzip(packTar([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/sub", type: "dir", mode: 0o755 },
      { name: "d/a", type: "symlink", mode: 0o777, linkname: "sub" },
      { name: "d/a/f", type: "file", mode: 0o644, data: new TextEncoder().encode("F") }
    ]), -1)
    await untar(through, path.join(dir, "w"))
    expect(fs.readFileSync(path.join(dir, "w", "sub", "f"), "utf8")).toBe("F")
    const climbs = gzip(packTar([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/sub", type: "dir", mode: 0o755 },
      { name: "d/a", type: "symlink", mode: 0o777, linkname: "sub" },
      { name: "d/a/../../x", type: "file", mode: 0o644, data: new Uint8Array([1]) },
      { name: "d/a/../../../x", type: "file", mode: 0o644, data: new Uint8Array([1]) }
    ]), -1)
    await expect(untar(climbs, path.join(dir, "v"))).rejects.toThrow(/illegal file path: d\/a\/\.\.\/\.\.\/\.\.\/x/)
    expect(fs.existsSync(path.join(dir, "x"))).toBe(false)
    expect(fs.readdirSync(dir).sort()).toEqual(["w"])
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("a single top-level link with mode: the link is the artifact, and mode never reaches its target", run(async () => {
    const dir = tmp()
    const victim = path.join(dir, "victim")
    fs.writeFileSync(victim, "v", { mode: 0o600 })
    const single = gzip(packTar([{ name: "l", type: "symlink", mode: 0o777, linkname: "victim" }]), -1)
    await untar(single, path.join(dir, "in"))
    expect(fs.readlinkSync(path.join(dir, "in"))).toBe("victim")
    chmodTree(path.join(dir, "in"), 0o777, true)
    expect(fs.statSync(victim).mode & 0o777).toBe(0o600)
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("a gzip bomb fails at the decompressed-size cap, early, leaving nothing behind", run(async () => {
    const dir = tmp()
    // ~4 MB of gzip expanding to 4 GiB: a tar header, then 64 concatenated gzip members of 64 MiB of zeros each
    // (gunzip reads concatenated members as one stream; one member is compressed once, so making the bomb is cheap).
    const size = 4 * 1024 ** 3
    const h = Buffer.from(packTar([{ name: "bomb", type: "file", mode: 0o644, data: new Uint8Array(0) }]).subarray(0, 512))
    h.write(size.toString(8).padStart(11, "0") + "\0", 124, "latin1")
    h.fill(0x20, 148, 156)
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "latin1")
    const member = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 })
    const file = path.join(dir, "bomb.tgz")
    fs.writeFileSync(file, Buffer.concat([zlib.gzipSync(h), ...Array.from({ length: 64 }, () => member)]))
    expect(fs.statSync(file).size).toBeGreaterThan(3 * 1024 * 1024)
    expect(fs.statSync(file).size).toBeLessThan(8 * 1024 * 1024)
    const started = Date.now()
    await expect(untarGzFile(file, path.join(dir, "in"), { maxBytes: 16 * 1024 * 1024 })).rejects.toThrow(/decompresses to more than the limit of 16777216 bytes/)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(fs.readdirSync(dir).sort()).toEqual(["bomb.tgz"])
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("packing and unpacking stop when aborted (the pod's deadline), leaving no temporary folder", run(async () => {
    const dir = tmp()
    fs.writeFileSync(path.join(dir, "f"), "f")
    await expect(tarGzToFile(path.join(dir, "f"), path.join(dir, "f.tgz"), -1, "f", AbortSignal.abort())).rejects.toThrow(/aborted/)
    fs.writeFileSync(path.join(dir, "ok.tgz"), tarGz(path.join(dir, "f"), -1))
    await expect(untarGzFile(path.join(dir, "ok.tgz"), path.join(dir, "in"), { maxBytes: 1 << 20, signal: AbortSignal.abort() })).rejects.toThrow(/aborted/)
    expect(fs.existsSync(path.join(dir, "in.tmpdir"))).toBe(false)
    expect(fs.existsSync(path.join(dir, "in"))).toBe(false)
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it("gzip levels are Go's: -1 to 9", () => {
    expect(() => gzip(new Uint8Array(1), 10)).toThrow(/invalid compression level/)
    const data = new Uint8Array(10000)
    expect(gzip(data, 0).length).toBeGreaterThan(gzip(data, 9).length)
  })
})
