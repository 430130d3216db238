import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { chmodTree, isTarGzFile, stagedInputRefusal, tarGzToFile, untarGzFile } from "../../../src/kubelet/artifacts/archive.js"
import { entryHeader } from "../../../src/kubelet/artifacts/tar.js"
import { packedTgz, readTar, readTgz, tarBytes, tgzBytes } from "./tarFixtures.js"

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-art-"))
const run = (f: () => Promise<void>) => () => Effect.promise(f)

describe("tar codec", () => {
  it.effect("round-trips files, folders, links and long names", run(async () => {
    const long = `${"d".repeat(120)}/${"f".repeat(120)}`
    const entries = [
      { name: "a", type: "dir" as const, mode: 0o755 },
      { name: "a/hello.txt", type: "file" as const, mode: 0o644, data: new TextEncoder().encode("hello\n") },
      { name: "a/link", type: "symlink" as const, mode: 0o777, linkname: "hello.txt" },
      { name: long, type: "file" as const, mode: 0o600, data: new Uint8Array([1, 2, 3]) }
    ]
    const back = await readTar(tarBytes(entries))
    expect(back.map((e) => [e.name.replace(/\/$/, ""), e.type, e.mode])).toEqual(entries.map((e) => [e.name, e.type, e.mode]))
    expect(new TextDecoder().decode(back[1]!.data)).toBe("hello\n")
    expect(back[2]!.linkname).toBe("hello.txt")
    expect([...back[3]!.data!]).toEqual([1, 2, 3])
  }))

  it.effect("is read by GNU tar, and reads what GNU tar writes", run(async () => {
    const dir = tmp()
    const src = path.join(dir, "src")
    fs.mkdirSync(path.join(src, "sub"), { recursive: true })
    fs.writeFileSync(path.join(src, "sub", "x.txt"), "x")
    fs.writeFileSync(path.join(dir, "ours.tgz"), await packedTgz(src, -1))
    expect(execFileSync("tar", ["-tzf", path.join(dir, "ours.tgz")], { encoding: "utf8" }).split("\n").filter(Boolean).sort())
      // folders named without a trailing slash, as argoexec's tarDir writes them (GNU tar lists them so)
      .toEqual(["src", "src/sub", "src/sub/x.txt"])
    const out = path.join(dir, "gnu-out")
    fs.mkdirSync(out)
    execFileSync("tar", ["-xzf", path.join(dir, "ours.tgz"), "-C", out])
    expect(fs.readFileSync(path.join(out, "src", "sub", "x.txt"), "utf8")).toBe("x")
    execFileSync("tar", ["-czf", path.join(dir, "gnu.tgz"), "-C", dir, "src"])
    const names = (await readTgz(path.join(dir, "gnu.tgz"))).map((e) => e.name)
    expect(names).toContain("src/sub/x.txt")
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("refuses what is not a tar", run(async () => {
    await expect(readTar(new TextEncoder().encode("hello world".padEnd(1024, " ")))).rejects.toThrow(/not a tar archive/)
    await expect(readTar(new Uint8Array(1024))).rejects.toThrow(/not a tar archive: it starts with an empty block/)
    const dir = tmp()
    fs.writeFileSync(path.join(dir, "text.gz"), zlib.gzipSync("just text".padEnd(600, " ")))
    fs.writeFileSync(path.join(dir, "plain"), "not gzip")
    expect(await isTarGzFile(path.join(dir, "text.gz"))).toBe(false)
    expect(await isTarGzFile(path.join(dir, "plain"))).toBe(false)
    fs.rmSync(dir, { recursive: true, force: true })
  }))
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

  it.effect("the streamed archive holds the tree (a large file in chunks, a link kept), and a file is sniffed as a tarball from its first bytes only", run(async () => {
    const dir = tmp()
    const src = path.join(dir, "out")
    fs.mkdirSync(path.join(src, "a"), { recursive: true })
    fs.writeFileSync(path.join(src, "a", "big"), Buffer.alloc(3 * 1024 * 1024 + 7, 7))
    fs.symlinkSync("a/big", path.join(src, "l"))
    await tarGzToFile(src, path.join(dir, "s.tgz"), 1)
    const entries = await readTgz(path.join(dir, "s.tgz"))
    expect(entries.map((e) => [e.name, e.type])).toEqual([["out", "dir"], ["out/a", "dir"], ["out/a/big", "file"], ["out/l", "symlink"]])
    expect(Buffer.from(entries[2]!.data!).equals(Buffer.alloc(3 * 1024 * 1024 + 7, 7))).toBe(true)
    expect(entries[3]!.linkname).toBe("a/big")
    expect(await isTarGzFile(path.join(dir, "s.tgz"))).toBe(true)
    fs.writeFileSync(path.join(dir, "text.gz"), zlib.gzipSync("just text"))
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
    await untar(await packedTgz(src, 0), path.join(dir, "in"))
    expect(fs.readFileSync(path.join(dir, "in", "a", "f"), "utf8")).toBe("F")
    expect(fs.readlinkSync(path.join(dir, "in", "l"))).toBe("a/f")
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("refuses names and links that leave the destination", run(async () => {
    const dir = tmp()
    const evil = tgzBytes([{ name: "../escape", type: "file", mode: 0o644, data: new Uint8Array([1]) }])
    await expect(untar(evil, path.join(dir, "x"))).rejects.toThrow(/illegal file path/)
    // dest dir/x is unpacked in dir/x.tmpdir: "../escape" would have landed at dir/escape.
    expect(fs.existsSync(path.join(dir, "escape"))).toBe(false)
    const link = tgzBytes([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/l", type: "symlink", mode: 0o777, linkname: "/etc" }
    ])
    await expect(untar(link, path.join(dir, "y"))).rejects.toThrow(/illegal symlink target/)
    const up = tgzBytes([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/a", type: "symlink", mode: 0o777, linkname: ".." },
      { name: "d/b", type: "symlink", mode: 0o777, linkname: "../.." }
    ])
    // "d/a -> .." names the destination itself: refused as well.
    await expect(untar(up, path.join(dir, "z"))).rejects.toThrow(/illegal symlink target: d\/a -> \.\./)
    const topUp = tgzBytes([{ name: "a", type: "symlink", mode: 0o777, linkname: ".." }, { name: "b", type: "file", mode: 0o644 }])
    await expect(untar(topUp, path.join(dir, "z"))).rejects.toThrow(/illegal symlink target: a -> \.\./)
    // A link to a folder inside, then a file through it: fine inside, refused when the name climbs out.
    const through = tgzBytes([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/sub", type: "dir", mode: 0o755 },
      { name: "d/a", type: "symlink", mode: 0o777, linkname: "sub" },
      { name: "d/a/f", type: "file", mode: 0o644, data: new TextEncoder().encode("F") }
    ])
    await untar(through, path.join(dir, "w"))
    expect(fs.readFileSync(path.join(dir, "w", "sub", "f"), "utf8")).toBe("F")
    const climbs = tgzBytes([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/sub", type: "dir", mode: 0o755 },
      { name: "d/a", type: "symlink", mode: 0o777, linkname: "sub" },
      { name: "d/a/../../x", type: "file", mode: 0o644, data: new Uint8Array([1]) },
      { name: "d/a/../../../x", type: "file", mode: 0o644, data: new Uint8Array([1]) }
    ])
    await expect(untar(climbs, path.join(dir, "v"))).rejects.toThrow(/illegal file path: d\/a\/\.\.\/\.\.\/\.\.\/x/)
    expect(fs.existsSync(path.join(dir, "x"))).toBe(false)
    expect(fs.readdirSync(dir).sort()).toEqual(["w"])
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("a single top-level link is refused (moved up a level it would point at the other inputs); mode never reaches a link's target", run(async () => {
    const dir = tmp()
    const victim = path.join(dir, "victim")
    fs.writeFileSync(victim, "v", { mode: 0o600 })
    const single = tgzBytes([{ name: "l", type: "symlink", mode: 0o777, linkname: "victim" }])
    await expect(untar(single, path.join(dir, "in"))).rejects.toThrow(/illegal symlink: the archive's single top-level entry l is a symlink/)
    expect(fs.readdirSync(dir).sort()).toEqual(["victim"])
    fs.symlinkSync("victim", path.join(dir, "in"))
    chmodTree(path.join(dir, "in"), 0o777, true)
    expect(fs.statSync(victim).mode & 0o777).toBe(0o600)
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("a chain of links is resolved on the real file system: a link placed through another link cannot climb out", run(async () => {
    const dir = tmp()
    // review s20 #2: each link is inside when read lexically; `l` really lands in t/r, from where its target climbs to /etc
    const chain = tgzBytes([
      { name: "t/r", type: "dir", mode: 0o755 },
      { name: "t/a/b/c/d/e/f/q", type: "symlink", mode: 0o777, linkname: "../../../../../../r" },
      { name: "t/a/b/c/d/e/f/q/l", type: "symlink", mode: 0o777, linkname: "../../../../../../../../etc" }
    ])
    await expect(untar(chain, path.join(dir, "1-b"))).rejects.toThrow(/illegal symlink target: t\/a\/b\/c\/d\/e\/f\/q\/l -> /)
    expect(fs.readdirSync(dir)).toEqual([])
    // a folder entry and a file named through a link
    const folders = tgzBytes([
      { name: "t/r", type: "dir", mode: 0o755 },
      { name: "t/a/b/q", type: "symlink", mode: 0o777, linkname: "../../r" },
      { name: "t/a/b/q/../../../../made", type: "dir", mode: 0o755 },
      { name: "t/a/b/q/../../../../made.txt", type: "file", mode: 0o644, data: new Uint8Array([1]) }
    ])
    // names are cleaned lexically first (as upstream's filepath.Join): these land in the destination, never through q
    await untar(folders, path.join(dir, "2-c"))
    expect(fs.readdirSync(dir)).toEqual(["2-c"])
    expect(fs.readdirSync(path.join(dir, "2-c")).sort()).toEqual(["made", "made.txt", "t"])
    fs.rmSync(path.join(dir, "2-c"), { recursive: true })
    // a link whose target goes through a folder not there yet, then up: refused (that folder could become a link later)
    const later = tgzBytes([
      { name: "t/x", type: "symlink", mode: 0o777, linkname: "later/../y" },
      { name: "t/later", type: "symlink", mode: 0o777, linkname: "." }
    ])
    await expect(untar(later, path.join(dir, "3-d"))).rejects.toThrow(/illegal symlink target: t\/x -> later\/\.\.\/y/)
    // the second input of the report: a single top-level link into the first one
    const second = tgzBytes([{ name: "x", type: "symlink", mode: 0o777, linkname: "1-b/r/l" }])
    await expect(untar(second, path.join(dir, "0-a"))).rejects.toThrow(/single top-level entry x is a symlink/)
    // a link inside a single top-level folder that leaves that folder (it would point at the other inputs once moved)
    const sibling = tgzBytes([
      { name: "top", type: "dir", mode: 0o755 },
      { name: "top/l", type: "symlink", mode: 0o777, linkname: "../other" }
    ])
    await expect(untar(sibling, path.join(dir, "4-e"))).rejects.toThrow(/illegal symlink target: top\/l -> \.\.\/other leaves the archive's top-level folder/)
    expect(fs.readdirSync(dir)).toEqual([])
    // links that stay inside still work, through links too
    const fine = tgzBytes([
      { name: "top/sub/f", type: "file", mode: 0o644, data: new TextEncoder().encode("F") },
      { name: "top/a/b", type: "symlink", mode: 0o777, linkname: "../sub" },
      { name: "top/c", type: "symlink", mode: 0o777, linkname: "a/b/f" },
      { name: "top/d", type: "symlink", mode: 0o777, linkname: "a/b/../sub/f" }
    ])
    await untar(fine, path.join(dir, "5-f"))
    expect(fs.readFileSync(path.join(dir, "5-f", "c"), "utf8")).toBe("F")
    expect(fs.readFileSync(path.join(dir, "5-f", "d"), "utf8")).toBe("F")
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it("a staged input that is a link leading out of its stage folder is refused to the host (sandbox mount, resource manifest)", () => {
    const dir = tmp()
    const stage = path.join(dir, "stage")
    fs.mkdirSync(stage)
    fs.writeFileSync(path.join(stage, "1-b"), "b")
    fs.mkdirSync(path.join(dir, "outside"))
    fs.symlinkSync("1-b", path.join(stage, "0-a"))
    fs.symlinkSync("../outside", path.join(stage, "2-c"))
    fs.symlinkSync("/etc", path.join(stage, "3-d"))
    fs.symlinkSync("missing", path.join(stage, "4-e"))
    fs.symlinkSync(".", path.join(stage, "5-f"))
    expect(stagedInputRefusal(path.join(stage, "1-b"))).toBeUndefined()
    expect(stagedInputRefusal(path.join(stage, "0-a"))).toBeUndefined()
    expect(stagedInputRefusal(path.join(stage, "9-none"))).toBeUndefined()
    for (const l of ["2-c", "3-d", "4-e", "5-f"]) {
      expect(stagedInputRefusal(path.join(stage, l))).toBe(`the staged input ${l} is a symlink leading outside its stage folder`)
    }
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it.effect("a gzip bomb fails at the decompressed-size cap, early, leaving nothing behind", run(async () => {
    const dir = tmp()
    // ~4 MB of gzip expanding to 4 GiB: a tar header, then 64 concatenated gzip members of 64 MiB of zeros each
    // (gunzip reads concatenated members as one stream; one member is compressed once, so making the bomb is cheap).
    const size = 4 * 1024 ** 3
    const h = entryHeader({ name: "bomb", type: "file", mode: 0o644 }, size)
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
    fs.writeFileSync(path.join(dir, "ok.tgz"), await packedTgz(path.join(dir, "f"), -1))
    await expect(untarGzFile(path.join(dir, "ok.tgz"), path.join(dir, "in"), { maxBytes: 1 << 20, signal: AbortSignal.abort() })).rejects.toThrow(/aborted/)
    expect(fs.existsSync(path.join(dir, "in.tmpdir"))).toBe(false)
    expect(fs.existsSync(path.join(dir, "in"))).toBe(false)
    fs.rmSync(dir, { recursive: true, force: true })
  }))

  it.effect("gzip levels are Go's: -1 to 9", run(async () => {
    const dir = tmp()
    fs.writeFileSync(path.join(dir, "zeros"), new Uint8Array(10000))
    await expect(tarGzToFile(path.join(dir, "zeros"), path.join(dir, "z.tgz"), 10)).rejects.toThrow(/invalid compression level: 10/)
    await expect(tarGzToFile(path.join(dir, "zeros"), path.join(dir, "z.tgz"), -2)).rejects.toThrow(/invalid compression level: -2/)
    expect((await packedTgz(path.join(dir, "zeros"), 0)).length).toBeGreaterThan((await packedTgz(path.join(dir, "zeros"), 9)).length)
    expect((await packedTgz(path.join(dir, "zeros"), -1)).length).toBeLessThan((await packedTgz(path.join(dir, "zeros"), 0)).length)
    fs.rmSync(dir, { recursive: true, force: true })
  }))
})
