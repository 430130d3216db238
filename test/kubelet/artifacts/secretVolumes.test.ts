/**
 * The executor's secret volumes (src/kubelet/artifacts/secretVolumes.ts): which
 * mounts init and wait see, the files a kubelet lays out from a Secret read in
 * the pod's namespace, the kubelet's words when a Secret or key is missing,
 * and argoexec's GetSecret over the mounted files.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import { executorSecretMounts, mountSecretVolumes, readSecret } from "../../../src/kubelet/artifacts/secretVolumes.js"
import { InMemoryKube } from "../../../src/testing/InMemoryKube.js"
import { cluster, ns, setup } from "../helpers.js"

const b64 = (s: string) => Buffer.from(s).toString("base64")

const pod = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: ns }, spec })

const secret = (name: string, data: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace: ns },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]))
})

describe("executorSecretMounts", () => {
  it("only secret volumes mounted whole into init or wait, once per mount path, trailing slash dropped", () => {
    const mounts = executorSecretMounts(pod({
      volumes: [
        { name: "cred", secret: { secretName: "s3-cred" } },
        { name: "other", secret: { secretName: "other" } },
        { name: "scratch", emptyDir: {} }
      ],
      initContainers: [{ name: "init", volumeMounts: [{ name: "cred", mountPath: "/argo/secret/s3-cred/" }, { name: "scratch", mountPath: "/s" }] }],
      containers: [
        { name: "wait", volumeMounts: [{ name: "cred", mountPath: "/argo/secret/s3-cred/" }, { name: "other", mountPath: "/x", subPath: "k" }] },
        { name: "main", volumeMounts: [{ name: "other", mountPath: "/argo/secret/other" }] }
      ]
    }))
    assert.deepStrictEqual(mounts.map((m) => [m.volume, m.mountPath, m.source.secretName]), [["cred", "/argo/secret/s3-cred", "s3-cred"]])
  })
})

describe("mountSecretVolumes", () => {
  const withVolume = (source: Record<string, unknown>) =>
    pod({
      volumes: [{ name: "cred", secret: source }],
      initContainers: [{ name: "init", volumeMounts: [{ name: "cred", mountPath: "/argo/secret/cred" }] }]
    })

  it.effect("every key of the Secret, or the items under their paths; GetSecret reads them", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* client.create("secrets", ns, secret("cred", { accesskey: "AK", secretkey: "SK" }))
      const all = yield* mountSecretVolumes(client, withVolume({ secretName: "cred" }))
      assert.deepStrictEqual([...all.keys()].sort(), ["/argo/secret/cred/accesskey", "/argo/secret/cred/secretkey"])
      assert.strictEqual(readSecret(all, "cred", "accesskey"), "AK")
      const items = yield* mountSecretVolumes(client, withVolume({ secretName: "cred", items: [{ key: "secretkey", path: "sk" }] }))
      assert.deepStrictEqual([...items.keys()], ["/argo/secret/cred/sk"])
      assert.strictEqual(readSecret(items, "cred", "sk"), "SK")
      assert.deepStrictEqual(readSecret(items, "cred", "accesskey"), { error: "open /argo/secret/cred/accesskey: no such file or directory" })
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a missing Secret or key fails the mount in the kubelet's words, unless optional", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* client.create("secrets", ns, secret("cred", { accesskey: "AK" }))
      const gone = yield* Effect.flip(mountSecretVolumes(client, withVolume({ secretName: "gone" })))
      assert.strictEqual(gone.message, `MountVolume.SetUp failed for volume "cred" : secret "gone" not found in namespace "${ns}"`)
      const noKey = yield* Effect.flip(mountSecretVolumes(client, withVolume({ secretName: "cred", items: [{ key: "secretkey", path: "secretkey" }] })))
      expect(noKey.message).toBe(`MountVolume.SetUp failed for volume "cred" : couldn't find key secretkey in Secret ${ns}/cred`)
      assert.strictEqual((yield* mountSecretVolumes(client, withVolume({ secretName: "gone", optional: true }))).size, 0)
      const partial = yield* mountSecretVolumes(client, withVolume({ secretName: "cred", optional: true, items: [{ key: "secretkey" }, { key: "accesskey", path: "a" }] }))
      assert.deepStrictEqual([...partial.keys()], ["/argo/secret/cred/a"])
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("the Secret is read in the pod's namespace, never another", () =>
    Effect.gen(function*() {
      const { kube, client } = yield* setup
      yield* kube.ensureNamespace(cluster, "elsewhere")
      yield* client.create("secrets", "elsewhere", { ...secret("cred", { accesskey: "AK" }), metadata: { name: "cred", namespace: "elsewhere" } })
      const e = yield* Effect.flip(mountSecretVolumes(client, withVolume({ secretName: "cred" })))
      expect(e.message).toContain(`secret "cred" not found in namespace "${ns}"`)
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
