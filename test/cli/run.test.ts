/**
 * The README's main job, as a user runs it: `flotilla run FILE` on embedded
 * clusters, as a real process. Exit 0 only if the workflow Succeeded.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { flotilla } from "./process.js"


describe("flotilla run", () => {
  it.live("runs the multi-cluster example: pod in cluster-1/remote, exit 0, the seed's log lines", () =>
    Effect.gen(function*() {
      const r = yield* flotilla("run", "examples/multi-cluster.yaml")
      assert.strictEqual(r.code, 0, r.stderr)
      assert.match(r.stdout, /Status:\s+Succeeded/)
      assert.match(r.stdout, /cluster-1\/remote/)
      // The pod's output, fetched from the cluster it ran in.
      assert.match(r.stdout, /--- multi-cluster \(cluster-1\/remote\) ---\n[\s\S]*\(oo\)/)
      assert.match(r.stderr, /level=info msg=cluster cluster=cluster-1 managedNamespace=remote/)
      assert.match(r.stderr, /level=info msg=cluster cluster=@in-cluster managedNamespace=/)
    }), 120_000)

  it.live("exits 1 for a failed workflow and prints the final object with --output json", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-cli-"))
      const file = path.join(dir, "fail.yaml")
      fs.writeFileSync(file, [
        "apiVersion: argoproj.io/v1alpha1",
        "kind: Workflow",
        "metadata: {name: fails, namespace: local}",
        "spec:",
        "  entrypoint: main",
        "  templates:",
        "  - name: main",
        "    cluster: cluster-2",
        "    namespace: remote",
        "    container: {image: busybox, command: [sh, -c, 'exit 3']}"
      ].join("\n"))
      const r = yield* flotilla("run", file, "--output", "json")
      assert.strictEqual(r.code, 1, r.stderr)
      const wf = JSON.parse(r.stdout)
      assert.strictEqual(wf.status.phase, "Failed")
      assert.strictEqual(wf.metadata.name, "fails")
      const node = wf.status.nodes["fails"]
      assert.strictEqual(node.phase, "Failed")
      assert.match(node.message, /exit code 3/)
    }), 120_000)

  it.live("runs a workflow with no remote template without an error line (no argo-kubeconfig without remote clusters)", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-cli-"))
      const file = path.join(dir, "local.yaml")
      fs.writeFileSync(file, [
        "apiVersion: argoproj.io/v1alpha1",
        "kind: Workflow",
        "metadata: {name: local-only}",
        "spec:",
        "  entrypoint: main",
        "  templates:",
        "  - name: main",
        "    container: {image: busybox, command: [echo, hi]}"
      ].join("\n"))
      const r = yield* flotilla("run", file)
      assert.strictEqual(r.code, 0, r.stderr)
      assert.match(r.stdout, /Status:\s+Succeeded/)
      assert.notMatch(r.stderr, /level=error/)
    }), 120_000)

  it.live("refuses an invalid workflow with the field named, before running anything", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-cli-"))
      const file = path.join(dir, "bad.yaml")
      fs.writeFileSync(file, "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: bad}\nspec:\n  entrypoint: nope\n  templates:\n  - name: main\n    container: {image: busybox}\n")
      const r = yield* flotilla("run", file)
      assert.notStrictEqual(r.code, 0)
      assert.match(r.stderr + r.stdout, /entrypoint/)
    }), 120_000)
})
