/**
 * `npm run clusters:demo`, exactly as the README prints it, on the clusters
 * the global setup started (the demo reuses clusters that are up): it must
 * deploy flotilla with kubectl apply -k, do the seed's set-up, print the node
 * tree and the pod's output, and exit 0 because the workflow Succeeded.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "./support/clusters.js"
import { cleanUpDeploy, MAIN, realNodeClusters, REMOTE } from "./support/deploy.js"

const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8")
/** Skipped only outside CI, on clusters started without real nodes (FLOTILLA_REAL_NODES=""). */
const haveRealNodes = (realNodeClusters().includes(MAIN) && realNodeClusters().includes(REMOTE)) || process.env["CI"] === "true"

describe.runIf(haveRealNodes)("npm run clusters:demo", () => {
  it("is in the README, deploys flotilla, runs the seed on real nodes and exits 0 with the tree printed", async () => {
    expect(readme).toMatch(/^npm run clusters:demo\b/m)
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile("/bin/sh", ["-c", "npm run clusters:demo"], { cwd: repoRoot, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    })
    try {
      expect(code, `${stdout}\n${stderr}`).toBe(0)
      expect(stdout).toMatch(/Status:\s+Succeeded/)
      expect(stdout).toMatch(/--- multi-cluster \(cluster-1\/remote, node 127\.0\.0\.\d+\) ---\n[\s\S]*\(oo\)/)
    } finally {
      await cleanUpDeploy()
    }
  }, 900_000)
})
