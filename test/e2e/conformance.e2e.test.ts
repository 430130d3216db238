/**
 * The conformance suite (test/conformance/suite.ts) on the real clusters:
 * runs test/conformance/clusters.ts as a child process on the clusters the
 * global setup started (or found), printing its output as it comes. Every
 * upstream example must pass as written and as its multi-cluster variant, and
 * nothing may be left in the remote cluster once the workflows are deleted;
 * once with flotilla's node agents, both variants; once on the clusters' real
 * nodes, each example's multi-cluster variant (its pods made in cluster-2 by
 * the workflow's user, run there by argoexec).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { loadExamples } from "../conformance/suite.js"
import { repoRoot } from "./support/clusters.js"
import { realNodeClusters } from "./support/deploy.js"

let driver: ChildProcess | undefined

const runDriver = (extraEnv: Record<string, string> = {}): Promise<{ code: number | null; output: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(path.join(repoRoot, "node_modules/.bin/tsx"), [path.join(repoRoot, "test/conformance/clusters.ts")], {
      cwd: repoRoot,
      // its own process group: stopped as a whole (tsx, the driver, the processes it started) if the test ends early
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        // tsx's shebang runs `node` from PATH: the project's (devDependency "node"), not the machine's
        PATH: `${path.join(repoRoot, "node_modules/.bin")}${path.delimiter}${process.env["PATH"] ?? ""}`,
        NO_COLOR: "1",
        ...extraEnv
      }
    })
    driver = child
    let output = ""
    child.stdout.setEncoding("utf8")
    child.stderr.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      output += chunk
      process.stdout.write(chunk)
    })
    child.stderr.on("data", (chunk: string) => process.stderr.write(chunk))
    child.on("error", reject)
    child.on("close", (code) => {
      driver = undefined
      resolve({ code, output })
    })
  })

describe("conformance suite on real clusters", () => {
  afterAll(async () => {
    // Still running (the test timed out): SIGTERM to the group, the driver then stops its controller and node agents.
    const child = driver
    if (child?.pid === undefined) return
    const closed = new Promise<void>((resolve) => child.once("close", () => resolve()))
    try {
      process.kill(-child.pid, "SIGTERM")
    } catch {
      return // already gone
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 20_000))])
  }, 30_000)

  it("every upstream example passes as written and multi-cluster, and nothing is left behind", async () => {
    const expected = loadExamples().filter((ex) => ex.expect.embeddedOnly === undefined).length * 2 // embedded-only: SKIP
    expect(expected).toBeGreaterThan(0)
    const { code, output } = await runDriver({ FLOTILLA_CONFORMANCE_VARIANTS: "both" })
    expect(output.split("\n")).toContain(`${expected} passed, 0 failed`)
    expect(code).toBe(0)
  }, 1_800_000)

  // Skipped only outside CI, on clusters without a real node in every cluster the suite uses.
  it.runIf(realNodeClusters().length >= 3 || process.env["CI"] === "true")(
    "on the real nodes (kubelet, containerd, argoexec v4.0.5 as init/wait, the emissary in main): every example passes multi-cluster",
    async () => {
      // embedded-only and not-on-real-nodes: SKIP; one run per example, its multi-cluster variant (the driver's default on real nodes)
      const expected = loadExamples().filter((ex) => ex.expect.embeddedOnly === undefined && ex.expect.notOnRealNodes === undefined).length
      const { code, output } = await runDriver({ FLOTILLA_CONFORMANCE_NODES: "real", FLOTILLA_CONFORMANCE_VARIANTS: "multi-cluster" })
      expect(output.split("\n")).toContain(`${expected} passed, 0 failed`)
      expect(code).toBe(0)
    },
    1_800_000
  )
})
