#!/usr/bin/env node
// The `flotilla` command: runs the TypeScript CLI through tsx (no build step).
import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
const tsx = path.join(path.dirname(require.resolve("tsx/package.json")), "dist", "cli.mjs")
const result = spawnSync(process.execPath, [tsx, path.join(here, "..", "src", "cli", "main.ts"), ...process.argv.slice(2)], {
  stdio: "inherit"
})
process.exit(result.status ?? 1)
