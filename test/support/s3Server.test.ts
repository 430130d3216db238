/**
 * The test S3 server (s3Server.ts) against the AWS SDK: a real SeaweedFS,
 * really authenticated. Without the `weed` binary these tests fail, saying to
 * run scripts/s3/build.sh (npm test builds it in its pretest).
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException
} from "@aws-sdk/client-s3"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TestS3 } from "./s3Server.js"

// The S3 calls are promises: their failures are the SDK's exceptions, named
// by the S3 error code.
const send = <A>(f: () => Promise<A>) => Effect.promise(() => f().then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error })))

const errorName = (result: { ok: true } | { ok: false; error: unknown }) =>
  result.ok ? "no error" : result.error instanceof S3ServiceException ? result.error.name : String(result.error)

describe("s3Server", () => {
  // Real processes and real time (no TestClock), one server for the block.
  layer(TestS3.layer, { timeout: 90_000, excludeTestServices: true })((it) => {
    it.effect("creates a bucket, then puts, gets, lists and deletes an object", () =>
      Effect.gen(function*() {
        const s3 = yield* TestS3
        assert.match(s3.endpoint, /^127\.0\.0\.1:\d+$/)
        yield* s3.createBucket("artifacts")
        const client = s3.client()
        yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
        const head = yield* send(() => client.send(new HeadBucketCommand({ Bucket: "artifacts" })))
        assert.isTrue(head.ok, errorName(head))

        const put = yield* send(() =>
          client.send(new PutObjectCommand({ Bucket: "artifacts", Key: "wf-1/step-a/out.tgz", Body: "hello artifacts" }))
        )
        assert.isTrue(put.ok, errorName(put))

        const got = yield* send(async () => {
          const out = await client.send(new GetObjectCommand({ Bucket: "artifacts", Key: "wf-1/step-a/out.tgz" }))
          return out.Body!.transformToString()
        })
        assert.deepStrictEqual(got, { ok: true, value: "hello artifacts" })

        const listed = yield* send(() => client.send(new ListObjectsV2Command({ Bucket: "artifacts", Prefix: "wf-1/" })))
        assert.isTrue(listed.ok, errorName(listed))
        if (listed.ok) assert.deepStrictEqual(listed.value.Contents?.map((o) => [o.Key, o.Size]), [["wf-1/step-a/out.tgz", 15]])

        const deleted = yield* send(() => client.send(new DeleteObjectCommand({ Bucket: "artifacts", Key: "wf-1/step-a/out.tgz" })))
        assert.isTrue(deleted.ok, errorName(deleted))
        const after = yield* send(() => client.send(new ListObjectsV2Command({ Bucket: "artifacts" })))
        assert.isTrue(after.ok, errorName(after))
        if (after.ok) assert.strictEqual(after.value.KeyCount, 0)
      }), 90_000)

    it.effect("refuses a wrong secret key and an unknown access key", () =>
      Effect.gen(function*() {
        const s3 = yield* TestS3
        yield* s3.createBucket("secrets")
        const wrongSecret = s3.client({ accessKey: s3.accessKey, secretKey: `${s3.secretKey}x` })
        const unknownKey = s3.client({ accessKey: "NOSUCHACCESSKEY00000", secretKey: s3.secretKey })
        yield* Effect.addFinalizer(() => Effect.sync(() => (wrongSecret.destroy(), unknownKey.destroy())))

        const put = yield* send(() => wrongSecret.send(new PutObjectCommand({ Bucket: "secrets", Key: "k", Body: "x" })))
        assert.strictEqual(errorName(put), "SignatureDoesNotMatch")
        const get = yield* send(() => unknownKey.send(new GetObjectCommand({ Bucket: "secrets", Key: "k" })))
        assert.strictEqual(errorName(get), "InvalidAccessKeyId")
        // Nothing was written by the refused put.
        const right = s3.client()
        yield* Effect.addFinalizer(() => Effect.sync(() => right.destroy()))
        const listed = yield* send(() => right.send(new ListObjectsV2Command({ Bucket: "secrets" })))
        assert.isTrue(listed.ok, errorName(listed))
        if (listed.ok) assert.strictEqual(listed.value.KeyCount, 0)
      }), 90_000)

    it.effect("a missing bucket is NoSuchBucket, a missing key NoSuchKey (buckets are not created on upload)", () =>
      Effect.gen(function*() {
        const s3 = yield* TestS3
        yield* s3.createBucket("present")
        const client = s3.client()
        yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))

        const getFromMissing = yield* send(() => client.send(new GetObjectCommand({ Bucket: "absent", Key: "k" })))
        assert.strictEqual(errorName(getFromMissing), "NoSuchBucket")
        const putToMissing = yield* send(() => client.send(new PutObjectCommand({ Bucket: "absent", Key: "k", Body: "x" })))
        assert.strictEqual(errorName(putToMissing), "NoSuchBucket")
        const listMissing = yield* send(() => client.send(new ListObjectsV2Command({ Bucket: "absent" })))
        assert.strictEqual(errorName(listMissing), "NoSuchBucket")
        const getMissingKey = yield* send(() => client.send(new GetObjectCommand({ Bucket: "present", Key: "no/such/key" })))
        assert.strictEqual(errorName(getMissingKey), "NoSuchKey")
      }), 90_000)
  })
})
