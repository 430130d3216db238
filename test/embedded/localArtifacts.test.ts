/**
 * `flotilla run`'s artifact repository with no S3 server: the directory store
 * (kubelet/artifacts/DirectoryStore.ts) behaves as the S3 store does for
 * argoexec's calls, serves only its own endpoint (others go to the fallback),
 * and `LocalArtifacts.describe` names each output artifact's file.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as LocalArtifacts from "../../src/embedded/LocalArtifacts.js"
import { makeDirectoryStore } from "../../src/kubelet/artifacts/DirectoryStore.js"
import type { ArtifactStore, S3Target } from "../../src/kubelet/artifacts/S3Store.js"

const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)

describe("the local directory artifact store", () => {
  it.effect("put, get (a file, a folder of objects), exists, delete (an object, a prefix), as S3", () =>
    Effect.gen(function*() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-dirstore-"))
      const local = LocalArtifacts.repository(root)
      const store = local.repository.store!
      const at = (key: string): S3Target => ({ endpoint: LocalArtifacts.localEndpoint, bucket: "flotilla", key })
      yield* store.put(at("wf/pod/out.tgz"), bytes("one"))
      assert.strictEqual(fs.readFileSync(path.join(root, "flotilla", "wf", "pod", "out.tgz"), "utf8"), "one")
      const file = yield* store.get(at("wf/pod/out.tgz"))
      assert.deepStrictEqual(file._tag === "File" ? text(file.data) : file, "one")
      yield* store.putDirectory(at("wf/dir"), [{ rel: "a.txt", data: bytes("a") }, { rel: "sub/b.txt", data: bytes("b") }])
      const dir = yield* store.get(at("wf/dir"))
      assert.deepStrictEqual(dir._tag === "Directory" ? dir.files.map((f) => [f.rel, text(f.data)]) : dir, [["a.txt", "a"], ["sub/b.txt", "b"]])
      assert.isTrue(yield* store.exists(at("wf/dir")))
      assert.isFalse(yield* store.exists(at("wf/none")))
      const missing = yield* Effect.flip(store.get(at("wf/none")))
      assert.strictEqual(missing.reason, "NotFound")
      assert.match(missing.message, /failed to get file: NoSuchKey.*bucket "flotilla", key "wf\/none"/)
      const noBucket = yield* Effect.flip(store.get({ ...at("x"), bucket: "other" }))
      assert.strictEqual(noBucket.reason, "BucketNotFound")
      const escape = yield* Effect.flip(store.put(at("../../etc/passwd"), bytes("x")))
      assert.match(escape.message, /leaves the bucket/)
      yield* store.delete(at("wf/pod/out.tgz"))
      yield* store.delete(at("wf/pod/out.tgz")) // deleting what is gone is no error, as on S3
      yield* store.delete(at("wf/dir/"))
      assert.isFalse(yield* store.exists(at("wf/dir")))
      fs.rmSync(root, { recursive: true, force: true })
    }))

  it.effect("a target at another endpoint goes to the fallback store", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const fallback: ArtifactStore = {
        download: () => Effect.succeed("File" as const),
        upload: () => Effect.void,
        uploadDirectory: () => Effect.void,
        get: (t) => Effect.sync(() => (seen.push(`get ${t.endpoint}/${t.bucket}/${t.key}`), { _tag: "File" as const, data: bytes("remote") })),
        put: () => Effect.void,
        putDirectory: () => Effect.void,
        delete: () => Effect.void,
        exists: () => Effect.succeed(true),
        list: () => Effect.succeed([])
      }
      const store = makeDirectoryStore({ root: fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-dirstore-")), endpoint: "local", fallback })
      const got = yield* store.get({ endpoint: "127.0.0.1:9000", bucket: "b", key: "k", insecure: true })
      assert.deepStrictEqual(got._tag === "File" ? text(got.data) : got, "remote")
      assert.deepStrictEqual(seen, ["get 127.0.0.1:9000/b/k"])
    }))

  it("describe names each output artifact's file (and an S3 location elsewhere), once", () => {
    const local = LocalArtifacts.repository(fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-dirstore-")))
    const wf = {
      apiVersion: "argoproj.io/v1alpha1",
      kind: "Workflow",
      metadata: { name: "wf", namespace: "default" },
      status: {
        nodes: {
          a: { name: "wf.gen", displayName: "gen", type: "Pod", outputs: { artifacts: [{ name: "out", path: "/tmp/o", s3: { key: "wf/gen/out.tgz" } }] } },
          b: { name: "wf.pub", displayName: "pub", type: "Pod", outputs: { artifacts: [{ name: "msg", s3: { endpoint: "s3.example:9000", bucket: "mine", key: "k.tgz" } }] } },
          c: { name: "wf", displayName: "wf", type: "Steps", outputs: { artifacts: [{ name: "out", s3: { key: "wf/gen/out.tgz" } }] } }
        }
      }
    }
    assert.strictEqual(LocalArtifacts.describe([wf], local), [
      `Artifacts (repository: the directory ${path.join(local.dir, "flotilla")}):`,
      `  wf  gen  out: ${path.join(local.dir, "flotilla", "wf", "gen", "out.tgz")}`,
      "  wf  pub  msg: s3://mine/k.tgz (endpoint s3.example:9000)"
    ].join("\n"))
    assert.isUndefined(LocalArtifacts.describe([{ ...wf, status: {} }], local))
  })
})
