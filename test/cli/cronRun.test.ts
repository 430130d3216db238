/**
 * `flotilla run` of a CronWorkflow: what `argo submit --from cronwf/NAME` creates (upstream's
 * `ConvertCronWorkflowToWorkflow`, controller/cron/spec.ts's `submittedWorkflowFor`, shared with
 * the controller's scheduled runs), run once, now. The process test runs upstream's
 * examples/cron-workflow.yaml (test/cli/fixtures).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseCronSpec, submittedWorkflowFor, workflowFor } from "../../src/controller/cron/spec.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import { flotilla } from "./process.js"

const cron: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "CronWorkflow",
  metadata: {
    name: "nightly",
    namespace: "local",
    labels: { "workflows.argoproj.io/creator": "alice", "workflows.argoproj.io/controller-instanceid": "i1" }
  },
  spec: {
    schedules: ["0 2 * * *"],
    workflowMetadata: { labels: { team: "a" }, annotations: { note: "x" }, finalizers: ["f"] },
    workflowSpec: { entrypoint: "main", templates: [{ name: "main", container: { image: "busybox" } }] }
  }
}

describe("flotilla run of a CronWorkflow", () => {
  it("submittedWorkflowFor is upstream's ConvertCronWorkflowToWorkflow; scheduled runs keep their own name and creator labels", () => {
    const parsed = parseCronSpec(cron)
    assert.isTrue(Result.isSuccess(parsed))
    if (!Result.isSuccess(parsed)) return
    const now = Date.parse("2024-01-01T00:00:00Z")
    const wf = submittedWorkflowFor(cron, parsed.success, now)
    assert.deepStrictEqual(wf.metadata.generateName, "nightly-")
    assert.isUndefined(wf.metadata.name)
    assert.strictEqual(wf.metadata.namespace, "local")
    // no creator labels (upstream's submitter gets its own), the instance id and cron-workflow label, workflowMetadata's
    assert.deepStrictEqual(wf.metadata.labels, {
      "workflows.argoproj.io/controller-instanceid": "i1",
      "workflows.argoproj.io/cron-workflow": "nightly",
      team: "a"
    })
    assert.strictEqual(Date.parse(wf.metadata.annotations!["workflows.argoproj.io/scheduled-time"]!), now)
    assert.strictEqual(wf.metadata.annotations!["note"], "x")
    assert.deepStrictEqual(wf.metadata.finalizers, ["f"])
    // a CronWorkflow never stored (flotilla run's) owns nothing; a stored one owns its runs
    assert.isUndefined(wf.metadata.ownerReferences)
    assert.deepStrictEqual(wf["spec"], (cron["spec"] as any).workflowSpec)
    const stored = { ...cron, metadata: { ...cron.metadata, uid: "u1" } }
    const scheduled = workflowFor(stored, parsed.success, now)
    assert.strictEqual(scheduled.metadata.name, `nightly-${now / 1000}`)
    assert.strictEqual(scheduled.metadata.labels?.["workflows.argoproj.io/creator"], "alice")
    assert.strictEqual(scheduled.metadata.ownerReferences?.[0]?.uid, "u1")
  })

  it.live("runs upstream's examples/cron-workflow.yaml once: <cron>-<suffix>, scheduledTime substituted, exit 0", () =>
    Effect.gen(function*() {
      const r = yield* flotilla("run", "test/cli/fixtures/cron-workflow.yaml")
      assert.strictEqual(r.code, 0, r.stderr)
      assert.match(r.stdout, /Name:\s+hello-world-[a-z0-9]{5}\nNamespace:\s+default\nStatus:\s+Succeeded/)
      assert.match(r.stdout, /hello world\. Scheduled on: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)\n/)
    }), 120_000)

  it.live("a CronWorkflow whose spec is invalid is refused before anything runs, naming the field", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-cron-"))
      const file = path.join(dir, "bad.yaml")
      fs.writeFileSync(file, "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata: {name: bad}\nspec:\n  schedules: ['not a schedule']\n  workflowSpec: {entrypoint: main, templates: [{name: main, suspend: {}}]}\n")
      const r = yield* flotilla("run", file)
      assert.strictEqual(r.code, 1)
      assert.include(r.stderr + r.stdout, "CronWorkflow bad: spec.schedules[0]: cron schedule not a schedule is malformed")
    }), 120_000)
})
