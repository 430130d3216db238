/**
 * `archiveLogs` on flotilla's own kubelet, through the embedded runtime with
 * real processes: the wait container's `SaveLogs` (main's log uploaded to
 * `<archive key>/main.log`, reported as `main-logs` with its key only), on a
 * real S3 server (SeaweedFS) with artifact GC deleting the log with the
 * workflow, and on `flotilla run`'s default directory repository, which says
 * where the log went.
 */
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Embedded from "../../../src/embedded/EmbeddedRuntime.js"
import * as LocalArtifacts from "../../../src/embedded/LocalArtifacts.js"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../../src/testing/InMemoryKube.js"
import { labelWorkflow } from "../../../src/util/argoKeys.js"
import { statusNodes } from "../../../src/workflow/model/compressedNodes.js"
import { openEgress } from "../../../src/kubelet/artifacts/egress.js"
import { saveLogs } from "../../../src/kubelet/artifacts/executor.js"
import { isArchiveLogs, placeLog } from "../../../src/kubelet/artifacts/location.js"
import { type ArtifactStore, ArtifactStoreError } from "../../../src/kubelet/artifacts/S3Store.js"
import { s3Server } from "../../support/s3Server.js"
import { eventually, fast, inMemory } from "../../controller/harness.js"
import { submit, untilCompleted } from "../../controller/fixtures.js"

const bucket = "logs"
const namespace = "local"

const echo = { image: "busybox", command: ["sh", "-c", "echo hello from main; echo a warning >&2"] }

/** `spec.archiveLogs`, with an output artifact so that the workflow has artifact GC (upstream's `HasArtifactGC`). */
const specLevel: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "logs-spec", namespace },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    archiveLogs: true,
    artifactGC: { strategy: "OnWorkflowDeletion" },
    templates: [{
      name: "main",
      container: { ...echo, command: ["sh", "-c", "echo hello from main; echo a warning >&2; echo out > /tmp/out"] },
      outputs: { artifacts: [{ name: "out", path: "/tmp/out" }] }
    }]
  }
}

/** The template's `archiveLocation.archiveLogs` (upstream's examples/archive-location.yaml). */
const templateLevel: KubeObject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name: "logs-tmpl", namespace },
  spec: {
    entrypoint: "main",
    serviceAccountName: "workflow",
    templates: [{ name: "main", container: echo, archiveLocation: { archiveLogs: true } }]
  }
}

type Json = Record<string, unknown>

const current = (admin: Embedded.StartResult["admin"], wf: KubeObject) =>
  admin.get("workflows", namespace, wf.metadata.name!).pipe(
    Effect.map(Option.some),
    Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none<KubeObject>()) : Effect.fail(e))
  )

/** The workflow's pod (one), and its node's output artifacts. */
const podAndArtifacts = (wf: KubeObject) =>
  Effect.gen(function*() {
    const kube = yield* InMemoryKube
    const pods = (yield* kube.objects("main", "pods", namespace)).filter((p) => p.metadata.labels?.[labelWorkflow] === wf.metadata.name)
    assert.strictEqual(pods.length, 1)
    const pod = pods[0]!.metadata.name!
    const nodes = Object.values(statusNodes(wf["status"])) as ReadonlyArray<{ type?: string; outputs?: { artifacts?: ReadonlyArray<Json> } }>
    const node = nodes.find((n) => n.type === "Pod")
    return { pod, artifacts: node?.outputs?.artifacts ?? [] }
  })

const phaseOf = (wf: KubeObject) => (wf["status"] as { phase?: string } | undefined)?.phase

describe("archiveLogs on the local kubelet", () => {
  it("placeLog: <container>-logs at <archive key>/<container>.log, key only; no s3 archive location is said", () => {
    const archive = { archiveLogs: true, s3: { endpoint: "e:9000", bucket: "b", key: "wf/pod", accessKeySecret: { name: "s", key: "k" } } }
    assert.isTrue(isArchiveLogs(archive))
    assert.isFalse(isArchiveLogs({ s3: archive.s3 }))
    assert.isFalse(isArchiveLogs(undefined))
    assert.deepStrictEqual(placeLog("main", archive), { name: "main-logs", s3: { key: "wf/pod/main.log" } })
    assert.strictEqual(placeLog("main", undefined), "template artifact location not set")
    assert.match(placeLog("main", { archiveLogs: true, gcs: {} }) as string, /logs of container 'main': the archive location has no s3 repository \(gcs\)/)
  })

  it.effect("saveLogs: an upload that fails is left out of the report, its error names the container, the repository and the cause", () =>
    Effect.gen(function*() {
      const uploaded: Array<string> = []
      const store = {
        upload: (t, file) =>
          t.key.endsWith("bad.log")
            ? Effect.fail(new ArtifactStoreError({ reason: "AccessDenied", verb: "put file", detail: "AccessDenied" }))
            : Effect.sync(() => void uploaded.push(`${t.bucket}/${t.key} <- ${fs.readFileSync(file, "utf8")}`))
      } as Partial<ArtifactStore> as ArtifactStore
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-logs-"))
      fs.writeFileSync(path.join(dir, "main.log"), "hello\n")
      const template = { archiveLocation: { archiveLogs: true, s3: { endpoint: "s3.test:9000", bucket: "b", key: "wf/pod" } } }
      const saved = yield* saveLogs({ store, secrets: new Map(), egress: openEgress, httpTimeout: "1 minute" } as never, template, [
        { container: "main", file: path.join(dir, "main.log") },
        { container: "bad", file: path.join(dir, "main.log") }
      ])
      fs.rmSync(dir, { recursive: true, force: true })
      assert.deepStrictEqual(uploaded, ["b/wf/pod/main.log <- hello\n"])
      assert.deepStrictEqual(saved.artifacts, [{ name: "main-logs", s3: { key: "wf/pod/main.log" } }])
      assert.match(saved.error ?? "", /failed to save the logs of container 'bad' to s3 bucket "b" at s3\.test:9000, key "wf\/pod\/bad\.log": failed to put file: AccessDenied/)
    }))

  it.live("spec.archiveLogs and archiveLocation.archiveLogs: main's log at <workflow>/<pod>/main.log on S3, main-logs in the node's outputs, deleted by artifact GC with the workflow", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const s3 = yield* s3Server()
        yield* s3.createBucket(bucket)
        const { admin, controller } = yield* Embedded.start(
          Embedded.placementOf([specLevel, templateLevel]),
          fast({ mode: "process", artifactRepository: { endpoint: s3.endpoint, bucket, accessKey: s3.accessKey, secretKey: s3.secretKey, insecure: true } })
        )
        const get = (key: string) =>
          Effect.promise(() => s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key })).then((r) => r.Body!.transformToString()))
        const keys = (prefix: string) =>
          Effect.promise(() => s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).pipe(
            Effect.map((r) => (r.Contents ?? []).map((o) => o.Key!).sort())
          )
        for (const wf of [specLevel, templateLevel]) {
          yield* submit(admin, wf)
          const done = (yield* untilCompleted(controller, wf))!
          assert.strictEqual(phaseOf(done), "Succeeded", JSON.stringify(done["status"]))
          const { artifacts, pod } = yield* podAndArtifacts(done)
          const key = `${wf.metadata.name}/${pod}/main.log`
          // Reported as argoexec reports it: after the outputs, name main-logs, the key only.
          assert.deepStrictEqual(artifacts.at(-1), { name: "main-logs", s3: { key } })
          const log = yield* get(key)
          assert.include(log, "hello from main\n")
          assert.include(log, "a warning\n")
        }
        const specDone = Option.getOrThrow(yield* current(admin, specLevel))
        const { pod } = yield* podAndArtifacts(specDone)
        assert.deepStrictEqual(yield* keys(`${specLevel.metadata.name}/`), [`logs-spec/${pod}/main.log`, `logs-spec/${pod}/out.tgz`])
        // OnWorkflowDeletion: the log goes with the workflow's other artifacts.
        yield* admin.delete("workflows", namespace, specLevel.metadata.name!)
        yield* eventually("the workflow gone", Effect.map(current(admin, specLevel), (w) => Option.isNone(w) ? true : undefined), "60 seconds")
        assert.deepStrictEqual(yield* keys(`${specLevel.metadata.name}/`), [])
        // The workflow without artifact GC keeps its log.
        assert.strictEqual((yield* keys(`${templateLevel.metadata.name}/`)).length, 1)
      })
    ), 180_000)

  it.live("flotilla run's directory repository: the log is a file under the directory, and describe says where", () =>
    inMemory(() =>
      Effect.gen(function*() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-logs-dir-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        const local = LocalArtifacts.repository(dir)
        const { admin, controller } = yield* Embedded.start(
          Embedded.placementOf([templateLevel]),
          fast({ mode: "process", artifactRepository: local.repository })
        )
        yield* submit(admin, templateLevel)
        const done = (yield* untilCompleted(controller, templateLevel))!
        assert.strictEqual(phaseOf(done), "Succeeded", JSON.stringify(done["status"]))
        const { pod } = yield* podAndArtifacts(done)
        const file = path.join(dir, LocalArtifacts.localBucket, templateLevel.metadata.name!, pod, "main.log")
        assert.include(fs.readFileSync(file, "utf8"), "hello from main\n")
        const described = LocalArtifacts.describe([done], local)
        assert.include(described ?? "", `  logs-tmpl  logs-tmpl  main-logs: ${file}`)
      })
    ), 120_000)
})
