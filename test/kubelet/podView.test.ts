/**
 * The sandbox's output copy (podView.ts `copyOut`): streamed and asynchronous, so a large output
 * does not hold the node agent's event loop; links inside a folder are copied as links, a FIFO is
 * not read.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { copyOut, type PodView } from "../../src/kubelet/podView.js"

const viewOf = (podDir: string): PodView => ({ podDir, hostPaths: [], exposed: [], mounts: [], hidden: [], script: false })

describe("copyOut", () => {
  it.effect("a large output is copied without blocking the event loop; a folder keeps its links; a FIFO yields nothing", () =>
    Effect.promise(async () => {
      const podDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-podview-"))
      const tmp = path.join(podDir, "tmp")
      fs.mkdirSync(path.join(tmp, "dir"), { recursive: true })
      const big = Buffer.alloc(64 * 1024 * 1024 + 3)
      for (let i = 0; i < big.length; i += 4096) big[i] = i % 251
      fs.writeFileSync(path.join(tmp, "big"), big)
      fs.writeFileSync(path.join(tmp, "dir", "f"), "F")
      fs.symlinkSync("f", path.join(tmp, "dir", "l"))
      execFileSync("mkfifo", [path.join(tmp, "fifo")])
      const view = viewOf(podDir)
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-podview-out-"))

      // the event loop turns while the copy runs
      let turns = 0
      let ticking = true
      const tick = () => {
        turns++
        if (ticking) setImmediate(tick)
      }
      setImmediate(tick)
      const copying = copyOut(view, "/tmp/big", path.join(out, "big"))
      expect(copying).toBeInstanceOf(Promise)
      expect(await copying).toBe(true)
      ticking = false
      expect(turns).toBeGreaterThan(5)
      expect(fs.readFileSync(path.join(out, "big")).equals(big)).toBe(true)

      expect(await copyOut(view, "/tmp/dir", path.join(out, "dir"))).toBe(true)
      expect(fs.readFileSync(path.join(out, "dir", "f"), "utf8")).toBe("F")
      expect(fs.readlinkSync(path.join(out, "dir", "l"))).toBe("f")
      expect(await copyOut(view, "/tmp/fifo", path.join(out, "fifo"))).toBe(false)
      expect(await copyOut(view, "/tmp/none", path.join(out, "none"))).toBe(false)
      fs.rmSync(podDir, { recursive: true, force: true })
      fs.rmSync(out, { recursive: true, force: true })
    }))
})
