import { defineConfig } from "vitest/config"

// End-to-end tests against real clusters (scripts/clusters/up.sh). The global
// setup starts the clusters when none are running and stops them afterwards;
// clusters already running (npm run clusters:up) are reused and left running.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    globalSetup: ["test/e2e/globalSetup.ts"],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    reporters: ["verbose"]
  }
})
