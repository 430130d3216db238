import { defineConfig } from "vitest/config"

// End-to-end tests against real clusters (scripts/clusters/up.sh). The global
// setup starts the clusters when none are running and stops them afterwards;
// clusters already running (npm run clusters:up) are reused and left running.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    // The chaos test (issue 10) runs on its own (`npm run test:chaos`) until a known flake is fixed:
    // right after a remote API server restarts, before its RBAC cache has synced, it answers a plain
    // 403 to a create the user may do, and the node fails for good (16 of 200 workflows in one run).
    exclude: process.env["FLOTILLA_CHAOS"] === "1" ? [] : ["test/e2e/chaos.e2e.test.ts"],
    globalSetup: ["test/e2e/globalSetup.ts"],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    reporters: ["verbose"]
  }
})
