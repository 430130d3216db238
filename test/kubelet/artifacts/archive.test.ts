import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { gzip, isTarGz, tarGz, untarGz } from "../../../src/kubelet/artifacts/archive.js"
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
  it("a file archives under its base name and unpacks to the destination itself", () => {
    const dir = tmp()
    fs.writeFileSync(path.join(dir, "hello_world.txt"), "hello world\n")
    const data = tarGz(path.join(dir, "hello_world.txt"), 9)
    expect(isTarGz(data)).toBe(true)
    untarGz(data, path.join(dir, "message"))
    expect(fs.readFileSync(path.join(dir, "message"), "utf8")).toBe("hello world\n")
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("a folder unpacks to the destination folder, links kept", () => {
    const dir = tmp()
    const src = path.join(dir, "out")
    fs.mkdirSync(path.join(src, "a"), { recursive: true })
    fs.writeFileSync(path.join(src, "a", "f"), "F")
    fs.symlinkSync("a/f", path.join(src, "l"))
    untarGz(tarGz(src, 0), path.join(dir, "in"))
    expect(fs.readFileSync(path.join(dir, "in", "a", "f"), "utf8")).toBe("F")
    expect(fs.readlinkSync(path.join(dir, "in", "l"))).toBe("a/f")
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("refuses names and links that leave the destination", () => {
    const dir = tmp()
    const evil = gzip(packTar([{ name: "../escape", type: "file", mode: 0o644, data: new Uint8Array([1]) }]), -1)
    expect(() => untarGz(evil, path.join(dir, "x"))).toThrow(/illegal file path/)
    const link = gzip(packTar([
      { name: "d", type: "dir", mode: 0o755 },
      { name: "d/l", type: "symlink", mode: 0o777, linkname: "/etc" }
    ]), -1)
    expect(() => untarGz(link, path.join(dir, "y"))).toThrow(/illegal symlink target/)
    expect(fs.existsSync(path.join(dir, "..", "escape"))).toBe(false)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("gzip levels are Go's: -1 to 9", () => {
    expect(() => gzip(new Uint8Array(1), 10)).toThrow(/invalid compression level/)
    const data = new Uint8Array(10000)
    expect(gzip(data, 0).length).toBeGreaterThan(gzip(data, 9).length)
  })
})
