/**
 * Starts the e2e clusters (scripts/clusters/up.sh) unless they are already up,
 * and stops them (scripts/clusters/down.sh) at the end if it started them.
 * FLOTILLA_E2E_KEEP_CLUSTERS=1 keeps clusters it started running.
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { clustersUp, repoRoot } from "./support/clusters.js"

let startedHere = false

export default async function setup(): Promise<() => Promise<void>> {
  if (!(await clustersUp())) {
    const t0 = Date.now()
    execFileSync("bash", [path.join(repoRoot, "scripts/clusters/up.sh")], { stdio: "inherit" })
    startedHere = true
    console.log(`e2e: clusters started in ${((Date.now() - t0) / 1000).toFixed(1)}s`)
  } else {
    console.log("e2e: reusing running clusters")
  }
  return async () => {
    if (startedHere && process.env["FLOTILLA_E2E_KEEP_CLUSTERS"] !== "1") {
      execFileSync("bash", [path.join(repoRoot, "scripts/clusters/down.sh")], { stdio: "inherit" })
    }
  }
}
