/**
 * `flotilla run` of upstream's artifact-passing example on a machine with no
 * artifact repository configured (no S3 server): the artifact goes through
 * the local directory store, the run Succeeds, and the CLI says where the
 * artifact went (a .tgz under <FLOTILLA_ARTIFACT_DIR>/flotilla/, there).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { embeddedEnv, flotillaWith, root } from "./process.js"

describe("flotilla run: artifacts out of the box", () => {
  it.live("artifact-passing Succeeds with the directory store and prints where the artifact went", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-artifacts-"))
      const example = path.join(root, "test", "conformance", "examples", "artifact-passing.yaml")
      const r = yield* flotillaWith(embeddedEnv({ FLOTILLA_ARTIFACT_DIR: dir }), "run", example)
      assert.strictEqual(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stdout, /Status:\s+Succeeded/)
      // the consumer printed what the producer wrote, loaded from the repository
      assert.match(r.stdout, /--- artifact-passing-\w+-print-message-from-file-\d+ \(main\/default\) ---\nhello world/)
      const bucket = path.join(dir, "flotilla")
      assert.include(r.stdout, `Artifacts (repository: the directory ${bucket}):`)
      const line = /^ {2}(artifact-passing-\w+) {2}generate-artifact {2}hello-art: (\S+)$/m.exec(r.stdout)
      assert.isNotNull(line, r.stdout)
      const [, name, file] = line!
      // upstream's default key layout: {{workflow.name}}/{{pod.name}}/<artifact>.tgz
      assert.match(file!, new RegExp(`^${bucket}/${name}/${name}-hello-world-to-file-\\d+/hello-art\\.tgz$`))
      assert.isTrue(fs.statSync(file!).isFile())
      // a gzip'd tar (argoexec's default archive)
      assert.deepStrictEqual([...fs.readFileSync(file!).subarray(0, 2)], [0x1f, 0x8b])
      fs.rmSync(dir, { recursive: true, force: true })
    }), 120_000)
})
