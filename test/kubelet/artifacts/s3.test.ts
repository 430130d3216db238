/**
 * The artifact driver against a real S3 server (SeaweedFS, test/support/s3Server.ts):
 * the store's calls and errors, and pods whose inputs and outputs are artifacts.
 */
import { assert, describe, expect, layer } from "@effect/vitest"
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { makeS3Store } from "../../../src/kubelet/artifacts/S3Store.js"
import { packedTgz, readTgz } from "./tarFixtures.js"
import * as LocalKubelet from "../../../src/kubelet/LocalKubelet.js"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { InMemoryKube } from "../../../src/testing/InMemoryKube.js"
import { TestS3 } from "../../support/s3Server.js"
import { awaitFinished, mainTerminated, ns, phaseOf, podFor, setup } from "../helpers.js"

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-kubelet-art-"))
const bucket = "artifacts"

layer(TestS3.layer, { timeout: 120_000 })("artifacts on a real S3 server", (it) => {
  it.effect("the store puts, gets (files and key prefixes), checks and deletes", () =>
    Effect.gen(function*() {
      const s3 = yield* TestS3
      yield* s3.createBucket(bucket)
      const store = makeS3Store()
      const t = { endpoint: s3.endpoint, insecure: true, bucket, key: "a/b.txt", accessKey: s3.accessKey, secretKey: s3.secretKey }
      yield* store.put(t, new TextEncoder().encode("hello"))
      const got = yield* store.get(t)
      assert.strictEqual(got._tag === "File" && new TextDecoder().decode(got.data), "hello")
      yield* store.putDirectory({ ...t, key: "dir" }, [{ rel: "x/1", data: new Uint8Array([1]) }, { rel: "2", data: new Uint8Array([2]) }])
      const dir = yield* store.get({ ...t, key: "dir" })
      assert.deepStrictEqual(dir._tag === "Directory" ? dir.files.map((f) => f.rel).sort() : [], ["2", "x/1"])
      assert.isTrue(yield* store.exists({ ...t, key: "dir" }))
      yield* store.delete({ ...t, key: "dir/" })
      assert.isFalse(yield* store.exists({ ...t, key: "dir" }))
      const missing = yield* Effect.flip(store.get({ ...t, key: "nope" }))
      assert.strictEqual(missing.reason, "NotFound")
      const noBucket = yield* Effect.flip(store.get({ ...t, bucket: "no-such-bucket" }))
      assert.strictEqual(noBucket.reason, "BucketNotFound")
      expect(noBucket.message).toContain(`bucket "no-such-bucket"`)
      const wrongKeys = yield* Effect.flip(store.put({ ...t, secretKey: "wrong" }, new Uint8Array([1])))
      assert.strictEqual(wrongKeys.reason, "AccessDenied")
      yield* store.put({ ...t, bucket: "made-on-demand", createBucketIfNotPresent: true }, new Uint8Array([1]))
    }))

  it.effect("files stream up (multipart above the threshold) and down to disk; a body over the cap fails, named", () =>
    Effect.gen(function*() {
      const s3 = yield* TestS3
      yield* s3.createBucket(bucket).pipe(Effect.ignore)
      const dir = fs.mkdtempSync(path.join(workDir, "stream-"))
      const big = path.join(dir, "big")
      // 20 MiB and 5 bytes: parts of 16 MiB, then the rest.
      const data = Buffer.alloc(20 * 1024 * 1024 + 5)
      for (let i = 0; i < data.length; i += 4096) data[i] = i % 251
      fs.writeFileSync(big, data)
      const t = { endpoint: s3.endpoint, insecure: true, bucket, key: "stream/big", accessKey: s3.accessKey, secretKey: s3.secretKey }
      const store = makeS3Store({ multipartThreshold: 1024 * 1024 })
      yield* store.upload(t, big)
      const back = path.join(dir, "back")
      assert.strictEqual(yield* store.download(t, back), "File")
      assert.isTrue(fs.readFileSync(back).equals(data))
      yield* store.uploadDirectory({ ...t, key: "stream/dir" }, [{ rel: "a/x", file: big }])
      assert.strictEqual(yield* store.download({ ...t, key: "stream/dir" }, path.join(dir, "d")), "Directory")
      assert.strictEqual(fs.statSync(path.join(dir, "d", "a", "x")).size, data.length)
      const capped = makeS3Store({ maxObjectBytes: 1024 * 1024 })
      const e = yield* Effect.flip(capped.download(t, path.join(dir, "capped")))
      expect(e.message).toMatch(/object larger than the limit of 1048576 bytes \(bucket "artifacts", key "stream\/big"/)
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("a listing (data template list, a \"directory\" key's get or download) past maxListedKeys fails, naming the limit", () =>
    Effect.gen(function*() {
      const s3 = yield* TestS3
      yield* s3.createBucket(bucket).pipe(Effect.ignore)
      const t = { endpoint: s3.endpoint, insecure: true, bucket, key: "many", accessKey: s3.accessKey, secretKey: s3.secretKey }
      const store = makeS3Store()
      yield* store.putDirectory(t, ["1", "2", "3", "4"].map((rel) => ({ rel, data: new Uint8Array([1]) })))
      assert.deepStrictEqual(yield* makeS3Store({ maxListedKeys: 4 }).list(t), ["many/1", "many/2", "many/3", "many/4"])
      const capped = makeS3Store({ maxListedKeys: 3 })
      const limit = `more than 3 keys under "many" (bucket "${bucket}"): the limit of keys one listing may hold`
      assert.strictEqual((yield* Effect.flip(capped.list(t))).message, `failed to list: ${limit}`)
      expect((yield* Effect.flip(capped.get(t))).message).toContain(limit)
      const dir = fs.mkdtempSync(path.join(workDir, "many-"))
      expect((yield* Effect.flip(capped.download(t, path.join(dir, "d")))).message).toContain(limit)
      assert.isFalse(fs.existsSync(path.join(dir, "d")))
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  /** A TCP server that accepts connections and never answers (released with the scope). */
  const blackHole = Effect.gen(function*() {
    const server = net.createServer(() => {})
    yield* Effect.acquireRelease(
      Effect.promise(() => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))),
      () => Effect.sync(() => server.close())
    )
    return `127.0.0.1:${(server.address() as net.AddressInfo).port}`
  })

  it.effect("a call to an endpoint that never answers fails at the call's timeout (TestClock)", () =>
    Effect.gen(function*() {
      const endpoint = yield* blackHole
      // Default options: the SDK's idle timeout (30 s, real time) cannot fire during the test; the call's bound does, on the TestClock.
      const store = makeS3Store()
      const fiber = yield* Effect.forkChild(Effect.flip(store.get({ endpoint, insecure: true, bucket, key: "k", accessKey: "a", secretKey: "b" })))
      yield* Effect.yieldNow
      yield* TestClock.adjust(Duration.minutes(5).pipe(Duration.subtract(Duration.millis(1))))
      assert.isUndefined(fiber.pollUnsafe(), "not before 5 minutes")
      yield* TestClock.adjust(Duration.millis(1))
      const e = yield* Fiber.join(fiber)
      assert.strictEqual(e.reason, "Timeout")
      expect(e.message).toMatch(/no answer within 5m.*bucket "artifacts", key "k", endpoint http:\/\/127\.0\.0\.1:\d+/)
    }).pipe(Effect.scoped))

  it.effect("a request whose socket stays silent fails at the configured idle timeout (real time, retries included)", () =>
    Effect.gen(function*() {
      const endpoint = yield* blackHole
      const store = makeS3Store({ idleTimeoutMs: 200 })
      const e = yield* Effect.flip(store.get({ endpoint, insecure: true, bucket, key: "k", accessKey: "a", secretKey: "b" }))
      assert.strictEqual(e.reason, "Timeout")
      expect(e.message).toMatch(/TimeoutError: .*timed out after 200 ms of inactivity/)
    }).pipe(Effect.scoped, Effect.timeout("20 seconds"), TestClock.withLive))

  const secretAndPod = (s3: { endpoint: string; accessKey: string; secretKey: string }, name: string, template: Record<string, unknown>, secretKey?: string) =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* client.create("secrets", ns, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "s3-cred", namespace: ns },
        data: { accesskey: Buffer.from(s3.accessKey).toString("base64"), secretkey: Buffer.from(secretKey ?? s3.secretKey).toString("base64") }
      })
      const archiveLocation = {
        archiveLogs: false,
        s3: {
          endpoint: s3.endpoint,
          bucket,
          insecure: true,
          key: `wf/${name}`,
          accessKeySecret: { name: "s3-cred", key: "accesskey" },
          secretKeySecret: { name: "s3-cred", key: "secretkey" }
        }
      }
      const pod = podFor(name, { ...template, archiveLocation } as never)
      const spec = pod.spec as Record<string, unknown>
      const mounts = [{ name: "s3-cred", mountPath: "/argo/secret/s3-cred" }]
      const withMounts = {
        ...pod,
        spec: {
          ...spec,
          volumes: [{ name: "s3-cred", secret: { secretName: "s3-cred", items: [{ key: "accesskey", path: "accesskey" }, { key: "secretkey", path: "secretkey" }] } }],
          initContainers: [{ name: "init", image: "quay.io/argoproj/argoexec:v4.0.5", volumeMounts: mounts }],
          containers: (spec.containers as Array<Record<string, unknown>>).map((c) => c.name === "wait" ? { ...c, volumeMounts: mounts } : c)
        }
      }
      yield* LocalKubelet.start({ client, nodeName: "node-1", namespace: ns, mode: "process", workDir, artifactAllowedEndpoints: [`http://${s3.endpoint}`] })
      yield* client.create("pods", ns, withMounts)
      return { client, pod: yield* awaitFinished(client, name) }
    })

  it.effect("a pod loads its input before main and saves its outputs after, reported with their keys", () =>
    Effect.gen(function*() {
      const s3 = yield* TestS3
      yield* s3.createBucket(bucket).pipe(Effect.ignore)
      const dir = fs.mkdtempSync(path.join(workDir, "src-"))
      fs.writeFileSync(path.join(dir, "message"), "hello from s3\n")
      const c = s3.client()
      const body = yield* Effect.promise(() => packedTgz(path.join(dir, "message"), -1))
      yield* Effect.promise(() => c.send(new PutObjectCommand({ Bucket: bucket, Key: "in/message.tgz", Body: body })))
      const { client, pod } = yield* secretAndPod(s3, "pass", {
        inputs: { artifacts: [{ name: "message", path: "/tmp/in/message", s3: { key: "in/message.tgz" }, mode: 0o600 }] },
        outputs: {
          artifacts: [
            { name: "out", path: "/tmp/out.txt" },
            { name: "plain", path: "/tmp/out.txt", archive: { none: {} } },
            { name: "maybe", path: "/tmp/absent", optional: true }
          ]
        },
        container: { image: "busybox", command: ["sh", "-c", "test \"$(stat -c %a /tmp/in/message)\" = 600 && tr a-z A-Z < /tmp/in/message > /tmp/out.txt"] }
      }).pipe(Effect.provide(InMemoryKube.layer))
      assert.strictEqual(phaseOf(pod), "Succeeded", JSON.stringify(pod.status))
      const tr = yield* client.get("workflowtaskresults", ns, "wf-pass").pipe(Effect.provide(InMemoryKube.layer))
      const artifacts = (tr.outputs as { artifacts: Array<{ name: string; s3: { key: string; bucket?: string } }> }).artifacts
      // Key only, as upstream: the bucket is the archive location's.
      assert.deepStrictEqual(artifacts.map((a) => [a.name, a.s3]), [["out", { key: "wf/pass/out.tgz" }], ["plain", { key: "wf/pass/out.txt" }]])
      const tgz = yield* Effect.promise(() => c.send(new GetObjectCommand({ Bucket: bucket, Key: "wf/pass/out.tgz" })).then((r) => r.Body!.transformToByteArray()))
      const entries = yield* Effect.promise(() => readTgz(tgz))
      assert.deepStrictEqual(entries.map((e) => e.name), ["out.txt"])
      assert.strictEqual(new TextDecoder().decode(entries[0]!.data), "HELLO FROM S3\n")
      const plain = yield* Effect.promise(() => c.send(new GetObjectCommand({ Bucket: bucket, Key: "wf/pass/out.txt" })).then((r) => r.Body!.transformToString()))
      assert.strictEqual(plain, "HELLO FROM S3\n")
    }))

  const initMessage = (pod: KubeObject) =>
    ((pod.status as { initContainerStatuses?: Array<{ name: string; state: { terminated?: { message?: string; exitCode?: number } } }> })
      .initContainerStatuses ?? []).find((s) => s.name === "init")?.state.terminated

  it.effect("bad inputs fail init with the artifact, the repository and the cause; main never starts", () =>
    Effect.gen(function*() {
      const s3 = yield* TestS3
      yield* s3.createBucket(bucket).pipe(Effect.ignore)
      const c = s3.client()
      yield* Effect.promise(() => c.send(new PutObjectCommand({ Bucket: bucket, Key: "in/not-a-tar", Body: "plain text" })))
      const cases: Array<[string, Record<string, unknown>, RegExp, string?]> = [
        ["missing", { name: "m", path: "/tmp/m", s3: { key: "in/nope" } }, /artifact m failed to load from s3 bucket "artifacts" at 127\.0\.0\.1:\d+, key "in\/nope": .*NoSuchKey/],
        ["notar", { name: "t", path: "/tmp/t", s3: { key: "in/not-a-tar" }, archive: { tar: {} } }, /artifact t failed to load .*gzip: invalid header/],
        ["nobucket", { name: "b", path: "/tmp/b", s3: { endpoint: s3.endpoint, bucket: "gone", insecure: true, key: "k", accessKeySecret: { name: "s3-cred", key: "accesskey" }, secretKeySecret: { name: "s3-cred", key: "secretkey" } } }, /artifact b failed to load from s3 bucket "gone".*NoSuchBucket/],
        ["wrongkeys", { name: "w", path: "/tmp/w", s3: { key: "in/not-a-tar" } }, /artifact w failed to load .*(InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied)/, "wrong-secret"],
        ["unsupplied", { name: "u", path: "/tmp/u" }, /required artifact 'u' not supplied/]
      ]
      for (const [name, art, pattern, secretKey] of cases) {
        const { pod } = yield* secretAndPod(s3, name, {
          inputs: { artifacts: [art] },
          container: { image: "busybox", command: ["sh", "-c", "exit 0"] }
        }, secretKey).pipe(Effect.provide(InMemoryKube.layer))
        assert.strictEqual(phaseOf(pod), "Failed", name)
        const init = initMessage(pod)
        assert.strictEqual(init?.exitCode, 64, name)
        expect(init?.message, name).toMatch(pattern)
        assert.isUndefined(mainTerminated(pod), name)
      }
    }))

  it.effect("a missing secret fails the mount, naming the secret", () =>
    Effect.gen(function*() {
      const s3 = yield* TestS3
      const { client } = yield* setup
      const pod = podFor("nosecret", {
        inputs: { artifacts: [{ name: "a", path: "/tmp/a", s3: { key: "k" } }] },
        archiveLocation: { s3: { endpoint: s3.endpoint, bucket, insecure: true, key: "x" } },
        container: { image: "busybox", command: ["true"] }
      } as never)
      const spec = pod.spec as Record<string, unknown>
      yield* LocalKubelet.start({ client, nodeName: "node-1", namespace: ns, mode: "process", workDir, artifactAllowedEndpoints: [`http://${s3.endpoint}`] })
      yield* client.create("pods", ns, {
        ...pod,
        spec: {
          ...spec,
          volumes: [{ name: "gone", secret: { secretName: "gone" } }],
          initContainers: [{ name: "init", image: "argoexec", volumeMounts: [{ name: "gone", mountPath: "/argo/secret/gone" }] }]
        }
      })
      const done = yield* awaitFinished(client, "nosecret")
      expect(initMessage(done)?.message).toMatch(/secret "gone" not found/)
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
