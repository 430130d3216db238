/**
 * The node flags of the image's `flotilla` command (scripts/images/node-flags: one per line, `#`
 * comments), which scripts/images/controller-rootfs.sh writes into /usr/local/bin/flotilla: the
 * benches run the compiled controller with the same ones.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

export const imageNodeFlags = (): ReadonlyArray<string> =>
  fs.readFileSync(path.join(repoRoot, "scripts", "images", "node-flags"), "utf8").split("\n")
    .map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
