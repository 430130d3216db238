/**
 * argoexec's artifact work as the local kubelet does it
 * (src/kubelet/artifacts/executor.ts), without an S3 server: inputs loaded
 * (raw, key-only from the archive location's repository, tarballs unpacked,
 * mode) and outputs saved (tar+gzip named after the path in the pod, or as is
 * with archive.none, under <archive key>/<file>), against the directory store
 * (the same interface, on a temporary folder), and every failure's message:
 * the artifact, the repository and the cause.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { artifactEgress, openEgress } from "../../../src/kubelet/artifacts/egress.js"
import { makeDirectoryStore } from "../../../src/kubelet/artifacts/DirectoryStore.js"
import { type ArtifactDeps, type ArtifactTemplate, hasArtifacts, loadInputs, saveOutputs } from "../../../src/kubelet/artifacts/executor.js"
import { packedTgz, readTgz } from "./tarFixtures.js"

const endpoint = "local.test:9000"
const archiveLocation = {
  s3: {
    endpoint,
    bucket: "art",
    insecure: true,
    key: "wf/pod-1",
    accessKeySecret: { name: "cred", key: "accesskey" },
    secretKeySecret: { name: "cred", key: "secretkey" }
  }
}

const fresh = () => fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-executor-"))

/** A store folder with the bucket "art". */
const storeRoot = () => {
  const root = fresh()
  fs.mkdirSync(path.join(root, "art"))
  return root
}

const depsFor = (root: string, secrets: Record<string, string> = { "/argo/secret/cred/accesskey": "a", "/argo/secret/cred/secretkey": "s" }): ArtifactDeps => ({
  store: makeDirectoryStore({ root, endpoint }),
  secrets: new Map(Object.entries(secrets).map(([k, v]) => [k, new TextEncoder().encode(v)])),
  egress: artifactEgress(false),
  httpTimeout: Duration.seconds(5)
})

const put = (root: string, key: string, data: Uint8Array | string) => {
  const file = path.join(root, "art", key)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, data)
}

describe("loadInputs", () => {
  it.effect("raw data, a key-only tarball unpacked with its mode, an optional missing one skipped", () =>
    Effect.gen(function*() {
      const root = storeRoot()
      const src = fresh()
      fs.writeFileSync(path.join(src, "msg"), "hello\n")
      put(root, "in/msg.tgz", yield* Effect.promise(() => packedTgz(path.join(src, "msg"), -1)))
      const stage = fresh()
      const template: ArtifactTemplate = {
        archiveLocation,
        inputs: {
          artifacts: [
            { name: "r", path: "/tmp/r", raw: { data: "raw text" } },
            { name: "m", path: "/tmp/m/", s3: { key: "in/msg.tgz" }, mode: 0o600 },
            { name: "absent", path: "/tmp/absent", s3: { key: "in/none" }, optional: true },
            { name: "unsupplied", path: "/tmp/u", optional: true }
          ]
        }
      }
      assert.isTrue(hasArtifacts(template))
      const staged = yield* loadInputs(depsFor(root), template, stage)
      assert.deepStrictEqual(staged.map((s) => [s.name, s.podPath]), [["r", "/tmp/r"], ["m", "/tmp/m"]])
      assert.strictEqual(fs.readFileSync(staged[0]!.hostPath, "utf8"), "raw text")
      assert.strictEqual(fs.readFileSync(staged[1]!.hostPath, "utf8"), "hello\n")
      assert.strictEqual(fs.statSync(staged[1]!.hostPath).mode & 0o777, 0o600)
    }))

  it.effect("each failure names the artifact, the repository and the cause", () =>
    Effect.gen(function*() {
      const root = storeRoot()
      put(root, "in/plain", "not a tar")
      const fail = (art: Record<string, unknown>, deps = depsFor(root)) =>
        Effect.flip(loadInputs(deps, { archiveLocation, inputs: { artifacts: [art as never] } }, fresh()))
      assert.strictEqual(yield* fail({ name: "u", path: "/tmp/u" }), "required artifact 'u' not supplied")
      expect(yield* fail({ name: "m", path: "/tmp/m", s3: { key: "in/none" } })).toMatch(
        /^artifact m failed to load from s3 bucket "art" at local\.test:9000, key "in\/none": /
      )
      expect(yield* fail({ name: "t", path: "/tmp/t", s3: { key: "in/plain" }, archive: { tar: {} } })).toMatch(/^artifact t failed to load .*key "in\/plain": gzip: invalid header$/)
      expect(yield* fail({ name: "k", path: "/tmp/k", s3: { key: "in/plain" } }, depsFor(root, {}))).toBe(
        `artifact k failed to load from s3 bucket "art" at local.test:9000, key "in/plain": open /argo/secret/cred/accesskey: no such file or directory`
      )
      expect(yield* fail({ name: "h", path: "/tmp/h", http: { url: "http://127.0.0.1:1/x" } })).toMatch(/^artifact h failed to load from http http:\/\/127\.0\.0\.1:1\/x: refused .*not allowed/)
      expect(yield* fail({ name: "p", path: "/tmp/../etc/p", raw: { data: "x" } })).toMatch(/Directory traversal is not permitted/)
      expect(yield* fail({ name: "g", path: "/tmp/g", git: { repo: "r" } })).toMatch(/git artifacts are not supported/)
    }))
})

describe("loadInputs: http auth and size caps", () => {
  /** An http server on 127.0.0.1 (released with the scope) answering every GET with `handler`. */
  const server = (handler: http.RequestListener) =>
    Effect.acquireRelease(
      Effect.promise(() =>
        new Promise<http.Server>((resolve) => {
          const s = http.createServer(handler)
          s.listen(0, "127.0.0.1", () => resolve(s))
        })
      ),
      (s) => Effect.promise(() => new Promise<void>((resolve) => s.close(() => resolve())))
    ).pipe(Effect.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`))

  const openDeps = (secrets: Record<string, string> = {}, extra: Partial<ArtifactDeps> = {}): ArtifactDeps => ({
    ...depsFor(storeRoot(), secrets),
    egress: openEgress,
    ...extra
  })

  it.effect("basicAuth sends the mounted username and password (only both, as argoexec); other auth kinds fail, never unauthenticated", () =>
    Effect.gen(function*() {
      const seen: Array<string | undefined> = []
      const url = yield* server((req, res) => {
        seen.push(req.headers.authorization)
        res.end("secret content")
      })
      const deps = openDeps({ "/argo/secret/web/user": "alice", "/argo/secret/web/pass": "s3cr3t" })
      const stage = fresh()
      const basicAuth = { usernameSecret: { name: "web", key: "user" }, passwordSecret: { name: "web", key: "pass" } }
      const staged = yield* loadInputs(deps, { inputs: { artifacts: [{ name: "a", path: "/tmp/a", http: { url: `${url}/x`, auth: { basicAuth } } } as never] } }, stage)
      assert.strictEqual(fs.readFileSync(staged[0]!.hostPath, "utf8"), "secret content")
      assert.deepStrictEqual(seen, [`Basic ${Buffer.from("alice:s3cr3t").toString("base64")}`])
      const oauth = yield* Effect.flip(loadInputs(deps, { inputs: { artifacts: [{ name: "o", path: "/tmp/o", http: { url: `${url}/x`, auth: { oauth2: { clientIDSecret: { name: "web", key: "user" } } } } } as never] } }, fresh()))
      expect(oauth).toMatch(/^artifact o failed to load from http .*: http\.auth\.oauth2 is not supported by flotilla's kubelet/)
      const missing = yield* Effect.flip(loadInputs(deps, { inputs: { artifacts: [{ name: "m", path: "/tmp/m", http: { url: `${url}/x`, auth: { basicAuth: { usernameSecret: { name: "nope", key: "user" } } } } } as never] } }, fresh()))
      expect(missing).toMatch(/open \/argo\/secret\/nope\/user: no such file or directory/)
      assert.strictEqual(seen.length, 1, "the refused ones never reached the server")
      // as argoexec's driver: basic auth only with both a username and a password, else the request goes without it
      yield* loadInputs(deps, { inputs: { artifacts: [{ name: "u", path: "/tmp/u", http: { url: `${url}/x`, auth: { basicAuth: { usernameSecret: { name: "web", key: "user" } } } } } as never] } }, fresh())
      assert.deepStrictEqual(seen, [`Basic ${Buffer.from("alice:s3cr3t").toString("base64")}`, undefined])
    }).pipe(Effect.scoped))

  it.effect("an http body over the cap fails, named, and leaves nothing staged", () =>
    Effect.gen(function*() {
      const url = yield* server((_req, res) => {
        // no Content-Length: the cap is enforced while streaming
        res.write(Buffer.alloc(64 * 1024, 1))
        res.end(Buffer.alloc(64 * 1024, 1))
      })
      const stage = fresh()
      const e = yield* Effect.flip(loadInputs(openDeps({}, { maxHttpBytes: 100_000 }), { inputs: { artifacts: [{ name: "big", path: "/tmp/big", http: { url } } as never] } }, stage))
      expect(e).toMatch(/^artifact big failed to load from http .*: the body is larger than the limit of 100000 bytes$/)
      assert.deepStrictEqual(fs.readdirSync(stage), [])
    }).pipe(Effect.scoped))

  it.effect("a tarball over the decompressed cap fails, naming the artifact", () =>
    Effect.gen(function*() {
      const root = storeRoot()
      const src = path.join(fresh(), "zeros")
      fs.writeFileSync(src, Buffer.alloc(2 * 1024 * 1024))
      put(root, "in/zeros.tgz", yield* Effect.promise(() => packedTgz(src, 9)))
      const deps = { ...depsFor(root), maxDecompressedBytes: 1024 * 1024 }
      const stage = fresh()
      const e = yield* Effect.flip(loadInputs(deps, { archiveLocation, inputs: { artifacts: [{ name: "z", path: "/tmp/z", s3: { key: "in/zeros.tgz" } } as never] } }, stage))
      expect(e).toMatch(/^artifact z failed to load from s3 .*key "in\/zeros.tgz": the archive decompresses to more than the limit of 1048576 bytes$/)
      assert.deepStrictEqual(fs.readdirSync(stage), [])
    }))
})

describe("saveOutputs", () => {
  it.effect("tar+gzip named after the path in the pod under <archive key>/<name>.tgz, archive.none as is; missing optional skipped, missing required named", () =>
    Effect.gen(function*() {
      const root = storeRoot()
      const host = fresh()
      // the host copies are named as the kubelet names them (an index), not as in the pod
      fs.writeFileSync(path.join(host, "0"), "OUT\n")
      fs.mkdirSync(path.join(host, "1", "sub"), { recursive: true })
      fs.writeFileSync(path.join(host, "1", "sub", "f"), "F")
      const copies: Record<string, string> = { "/tmp/out.txt": path.join(host, "0"), "/work/dir": path.join(host, "1") }
      const template: ArtifactTemplate = {
        archiveLocation,
        outputs: {
          artifacts: [
            { name: "out", path: "/tmp/out.txt" },
            { name: "plain", path: "/tmp/out.txt", archive: { none: {} } },
            { name: "dir", path: "/work/dir", archive: { tar: { compressionLevel: 1 } } },
            { name: "maybe", path: "/tmp/absent", optional: true },
            { name: "needed", path: "/tmp/needed" }
          ]
        }
      }
      const saved = yield* saveOutputs(depsFor(root), template, (p) => copies[p])
      assert.deepStrictEqual(saved.artifacts.map((a) => [a.name, a.s3?.key]), [["out", "wf/pod-1/out.tgz"], ["plain", "wf/pod-1/out.txt"], ["dir", "wf/pod-1/dir.tgz"]])
      assert.strictEqual(saved.error, "output artifact 'needed': /tmp/needed no such file or directory")
      const entries = (key: string) => Effect.promise(() => readTgz(path.join(root, "art", key))).pipe(Effect.map((es) => es.map((e) => e.name)))
      assert.deepStrictEqual(yield* entries("wf/pod-1/out.tgz"), ["out.txt"])
      assert.deepStrictEqual(yield* entries("wf/pod-1/dir.tgz"), ["dir", "dir/sub", "dir/sub/f"])
      assert.strictEqual(fs.readFileSync(path.join(root, "art", "wf/pod-1/out.txt"), "utf8"), "OUT\n")
    }))

  it.effect("an upload that fails names the artifact and the repository, and the others are still saved", () =>
    Effect.gen(function*() {
      const root = storeRoot()
      const host = fresh()
      fs.writeFileSync(path.join(host, "0"), "x")
      const template: ArtifactTemplate = {
        archiveLocation,
        outputs: {
          artifacts: [
            { name: "elsewhere", path: "/tmp/x", s3: { endpoint: "other.test:9000", bucket: "b", key: "k", insecure: true } },
            { name: "ok", path: "/tmp/x" }
          ]
        }
      }
      const saved = yield* saveOutputs(depsFor(root), template, () => path.join(host, "0"))
      assert.deepStrictEqual(saved.artifacts.map((a) => a.name), ["ok"])
      expect(saved.error).toMatch(/^failed to save artifact 'elsewhere' to s3 bucket "b" at other\.test:9000, key "k": /)
    }))
})
