import { describe, expect, it } from "@effect/vitest"
import { cleanPath, describeRepository, placeOutput, relocate } from "../../../src/kubelet/artifacts/location.js"

const archiveLocation = {
  archiveLogs: false,
  s3: {
    endpoint: "127.0.0.1:9000",
    bucket: "my-bucket",
    insecure: true,
    key: "wf-abc/wf-abc-print-123",
    accessKeySecret: { name: "my-minio-cred", key: "accesskey" },
    secretKeySecret: { name: "my-minio-cred", key: "secretkey" }
  }
}

describe("artifact locations", () => {
  it("an output's key is the archive key joined with <name>.tgz, or the base name with archive.none", () => {
    const tgz = placeOutput({ name: "hello-art", path: "/tmp/hello_world.txt" }, "/tmp/hello_world.txt", archiveLocation)
    // Key only, as upstream's SetType + SetKey: no endpoint, bucket or secret names in the status.
    expect(tgz).toStrictEqual({ name: "hello-art", path: "/tmp/hello_world.txt", s3: { key: "wf-abc/wf-abc-print-123/hello-art.tgz" } })
    const none = placeOutput({ name: "out", path: "/tmp/out", archive: { none: {} } }, "/tmp/out", archiveLocation)
    expect(none).toMatchObject({ s3: { key: "wf-abc/wf-abc-print-123/out" } })
  })

  it("an output with its own key keeps it and is reported as given", () => {
    const art = { name: "k", path: "/tmp/k", s3: { key: "my/key" } }
    expect(placeOutput(art, "/tmp/k", archiveLocation)).toBe(art)
  })

  it("a key-only artifact takes the archive location's repository", () => {
    expect(relocate({ name: "k", s3: { key: "my/key" } }, archiveLocation)).toMatchObject({
      s3: { bucket: "my-bucket", endpoint: "127.0.0.1:9000", key: "my/key", accessKeySecret: { name: "my-minio-cred" } }
    })
    expect(relocate({ name: "k", s3: { key: "k" } }, undefined)).toBe("template artifact location not set")
  })

  it("paths are cleaned and traversal refused as CleanPath does", () => {
    expect(cleanPath({ name: "a", path: "/tmp//x/./y/" })).toBe("/tmp/x/y")
    expect(cleanPath({ name: "a", path: "/tmp/safe/../../etc" })).toEqual({
      error: "Artifact 'a' attempted to use a path containing '..'. Directory traversal is not permitted"
    })
    expect(cleanPath({ name: "a" })).toEqual({ error: "Artifact 'a' did not specify a path" })
  })

  it("messages name the repository", () => {
    expect(describeRepository({ name: "a", s3: { bucket: "b", endpoint: "e:1", key: "k" } })).toBe(`s3 bucket "b" at e:1, key "k"`)
  })
})
