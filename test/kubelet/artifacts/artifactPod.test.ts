/**
 * runArtifactPod (src/kubelet/artifactPod.ts) around a stand-in `run`: the
 * pod's active deadline bounds init (input loading) and wait (output
 * saving) as it bounds main, and an unisolated pod's inputs never replace a
 * host path outside the temp folders. Deferreds drive every step; no sleeps.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { KubeClientShape } from "../../../src/kube/api/KubeClient.js"
import { openEgress } from "../../../src/kubelet/artifacts/egress.js"
import type { ArtifactStore } from "../../../src/kubelet/artifacts/S3Store.js"
import { type ArtifactPodDeps, runArtifactPod } from "../../../src/kubelet/artifactPod.js"
import type { Outcome } from "../../../src/kubelet/outcome.js"
import { podFor } from "../helpers.js"

const archiveLocation = { s3: { endpoint: "s3.test:9000", bucket: "b", key: "wf/pod" } }

/** A store whose transfers start (`started`) and never end. */
const hangingStore = (started: Deferred.Deferred<void>): ArtifactStore => {
  const hang = Deferred.succeed(started, undefined).pipe(Effect.andThen(Effect.never))
  return {
    download: () => hang,
    upload: () => hang,
    uploadDirectory: () => hang,
    get: () => hang,
    put: () => hang,
    putDirectory: () => hang,
    delete: () => Effect.void,
    exists: () => Effect.succeed(false),
    list: () => Effect.succeed([])
  }
}

const depsFor = (store: ArtifactStore, isolation: ArtifactPodDeps["isolation"] = "overlay"): ArtifactPodDeps => ({
  // The pods here mount no secrets: the client is never called.
  client: {} as KubeClientShape,
  store,
  egress: openEgress,
  isolation,
  workDir: fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-artpod-"))
})

const ran: Outcome = { exitCode: 0, stdout: "", log: "", files: {} }

describe("runArtifactPod", () => {
  it.effect("the deadline passing while an input loads ends the pod as killed at its deadline; main never runs", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const deadline = yield* Deferred.make<void>()
      const template = { archiveLocation, inputs: { artifacts: [{ name: "in", path: "/tmp/in", s3: { key: "k" } }] } }
      let mainRan = false
      const fiber = yield* Effect.forkChild(runArtifactPod(depsFor(hangingStore(started)), podFor("p", template as never), template as never, "stage", () =>
        Effect.sync(() => {
          mainRan = true
          return ran
        }), Deferred.await(deadline)))
      yield* Deferred.await(started)
      assert.isUndefined(fiber.pollUnsafe())
      yield* Deferred.succeed(deadline, undefined)
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(result, { _tag: "Ran", outcome: { exitCode: 137, stdout: "", log: "", files: {}, deadlineExceeded: true }, saved: { artifacts: [] } })
      assert.isFalse(mainRan)
    }))

  it.effect("the deadline passing while outputs upload ends the pod as killed at its deadline, nothing reported saved", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const deadline = yield* Deferred.make<void>()
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-artpod-out-"))
      fs.writeFileSync(path.join(out, "o"), "o")
      const template = { archiveLocation, outputs: { artifacts: [{ name: "o", path: "/tmp/o", archive: { none: {} } }] } }
      const fiber = yield* Effect.forkChild(runArtifactPod(depsFor(hangingStore(started)), podFor("p", template as never), template as never, "stage", () =>
        Effect.succeed<Outcome>({ ...ran, artifacts: { "/tmp/o": path.join(out, "o") } }), Deferred.await(deadline)))
      yield* Deferred.await(started)
      yield* Deferred.succeed(deadline, undefined)
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(result._tag, "Ran")
      if (result._tag === "Ran") {
        assert.isTrue(result.outcome.deadlineExceeded)
        assert.strictEqual(result.outcome.exitCode, 0, "main's own end is kept")
        assert.deepStrictEqual(result.saved, { artifacts: [] })
      }
    }))

  it.effect("unisolated, an input outside the temp folders fails init naming the artifact and the path; the host path is untouched", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const victim = fs.mkdtempSync(path.join(os.homedir(), ".flotilla-victim-"))
      fs.writeFileSync(path.join(victim, "keep"), "keep")
      for (const p of [victim, "/usr", "/tmp", "/"]) {
        const template = { archiveLocation, inputs: { artifacts: [{ name: "in", path: p, raw: { data: "x" } }] } }
        const result = yield* runArtifactPod(depsFor(hangingStore(started), "none"), podFor("p", template as never), template as never, "stage", () => Effect.succeed(ran))
        assert.strictEqual(result._tag, "InitFailed", p)
        if (result._tag === "InitFailed") expect(result.message).toMatch(new RegExp(`^artifact in: input artifact path ${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is refused`))
      }
      assert.strictEqual(fs.readFileSync(path.join(victim, "keep"), "utf8"), "keep")
      fs.rmSync(victim, { recursive: true, force: true })
      // Under /tmp it may go.
      const template = { archiveLocation, inputs: { artifacts: [{ name: "in", path: "/tmp/flotilla-artpod-ok", raw: { data: "x" } }] } }
      const ok = yield* runArtifactPod(depsFor(hangingStore(started), "none"), podFor("p", template as never), template as never, "stage", () => Effect.succeed(ran))
      assert.strictEqual(ok._tag, "Ran")
    }))
})
