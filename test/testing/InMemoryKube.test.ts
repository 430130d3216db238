import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Redacted, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { type ResourceAttributes, reviewAccess } from "../../src/kube/api/AccessReview.js"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import { KubeConnector } from "../../src/kube/api/KubeConnector.js"
import type { KubeError } from "../../src/kube/api/KubeError.js"
import type { KubeObject, WatchEvent, WatchOptions } from "../../src/kube/api/Resources.js"
import { InMemoryKube, type InMemoryKubeOptions } from "../../src/testing/index.js"

// --- helpers ------------------------------------------------------------------

const withKube = <A, E, R>(self: Effect.Effect<A, E, R>, options?: InMemoryKubeOptions) =>
  Effect.provide(self, options ? InMemoryKube.layerWith(options) : InMemoryKube.layer)

const setup = Effect.gen(function*() {
  const kube = yield* InMemoryKube
  yield* kube.addCluster("east")
  return { kube, admin: kube.adminClient("east") }
})

const pod = (name: string, extra: Partial<KubeObject["metadata"]> = {}, spec: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name, ...extra },
  spec: { containers: [{ name: "main", image: "busybox" }], ...spec }
})

const configMap = (name: string, data: Record<string, string> = {}, extra: Partial<KubeObject["metadata"]> = {}): KubeObject => ({
  metadata: { name, ...extra },
  data
})

const failure = <A, R>(effect: Effect.Effect<A, KubeError, R>) => Effect.flip(effect)

const rv = (object: KubeObject): number => Number(object.metadata.resourceVersion)

const waitUntil = (label: string, predicate: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (predicate()) return
      yield* Effect.yieldNow
    }
    return yield* Effect.die(new Error(`condition never held: ${label}`))
  })

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** Runs a watch in the background, recording events and how it ended. */
const startWatch = (
  client: KubeClientShape,
  kind: Parameters<KubeClientShape["watch"]>[0],
  namespace: string | undefined,
  options: WatchOptions
) =>
  Effect.gen(function*() {
    const events: Array<DataEvent> = []
    /** How many events came before the OPENED marker (must be 0), or undefined before it. */
    const opened: { before: number | undefined } = { before: undefined }
    const fiber = yield* client.watch(kind, namespace, options).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          if (event.type === "OPENED") opened.before = events.length
          else events.push(event)
        })
      ),
      Effect.forkScoped
    )
    return { events, fiber, opened }
  })

type DataEvent = Exclude<WatchEvent, { readonly type: "OPENED" }>

const summary = (events: ReadonlyArray<DataEvent>) =>
  events.map((e) => (e.type === "BOOKMARK" ? `BOOKMARK ${e.resourceVersion}` : `${e.type} ${e.object.metadata.name}`))

// --- objects -------------------------------------------------------------------

describe("InMemoryKube objects", () => {
  it.effect("create/get/replace/patch/list/delete with increasing resourceVersions", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      yield* TestClock.adjust("90 seconds")
      const created = yield* admin.create("pods", "default", pod("p1", { labels: { app: "web" } }))
      assert.strictEqual(created.apiVersion, "v1")
      assert.strictEqual(created.kind, "Pod")
      assert.strictEqual(created.metadata.namespace, "default")
      assert.match(created.metadata.uid!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      assert.strictEqual(created.metadata.creationTimestamp, "1970-01-01T00:01:30Z")
      assert.isUndefined(created.metadata.generation, "pods have no generation")

      const got = yield* admin.get("pods", "default", "p1")
      assert.deepStrictEqual(got, created)

      const replaced = yield* admin.replace("pods", "default", { ...got, spec: { containers: [{ name: "main", image: "alpine" }] } })
      assert.isAbove(rv(replaced), rv(created))
      assert.strictEqual(replaced.metadata.uid, created.metadata.uid)
      assert.strictEqual(replaced.metadata.creationTimestamp, created.metadata.creationTimestamp)

      const patched = yield* admin.patch("pods", "default", "p1", { metadata: { labels: { app: null, tier: "x" } } })
      assert.isAbove(rv(patched), rv(replaced))
      assert.deepStrictEqual(patched.metadata.labels, { tier: "x" })
      assert.deepStrictEqual((patched.spec as any).containers[0].image, "alpine")

      // A patch that changes nothing does not bump the version (as on a real server).
      const same = yield* admin.patch("pods", "default", "p1", { metadata: { labels: { tier: "x" } } })
      assert.strictEqual(same.metadata.resourceVersion, patched.metadata.resourceVersion)

      yield* admin.create("pods", "default", pod("p0"))
      const list = yield* admin.list("pods", "default")
      assert.deepStrictEqual(list.items.map((p) => p.metadata.name), ["p0", "p1"])
      assert.isAtLeast(Number(list.resourceVersion), rv(patched))

      yield* admin.delete("pods", "default", "p1")
      const error = yield* failure(admin.get("pods", "default", "p1"))
      assert.strictEqual(error.reason, "NotFound")
      assert.strictEqual(error.detail, `pods "p1" not found`)
      const after = yield* admin.list("pods", undefined)
      assert.deepStrictEqual(after.items.map((p) => p.metadata.name), ["p0"])
      assert.isAbove(Number(after.resourceVersion), Number(list.resourceVersion))
    })))

  it.effect("generation starts at 1 and moves with spec changes only", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      const wf = yield* admin.create("workflows", "default", { metadata: { name: "wf" }, spec: { entrypoint: "a" } })
      assert.strictEqual(wf.apiVersion, "argoproj.io/v1alpha1")
      assert.strictEqual(wf.metadata.generation, 1)
      const status = yield* admin.patch("workflows", "default", "wf", { status: { phase: "Running" } })
      assert.strictEqual(status.metadata.generation, 1)
      const labelled = yield* admin.patch("workflows", "default", "wf", { metadata: { labels: { a: "b" } } })
      assert.strictEqual(labelled.metadata.generation, 1)
      const spec = yield* admin.patch("workflows", "default", "wf", { spec: { entrypoint: "b" } })
      assert.strictEqual(spec.metadata.generation, 2)
    })))

  it.effect("objects are deep-copied in and out", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      const input = configMap("cm", { k: "v" }) as any
      const created = (yield* admin.create("configmaps", "default", input)) as any
      input.data.k = "mutated-input"
      created.data.k = "mutated-output"
      created.metadata.labels = { x: "y" }
      const got = (yield* admin.get("configmaps", "default", "cm")) as any
      assert.strictEqual(got.data.k, "v")
      assert.isUndefined(got.metadata.labels)
      const list = yield* admin.list("configmaps", "default")
      ;(list.items[0] as any).data.k = "mutated-list"
      assert.strictEqual(((yield* admin.get("configmaps", "default", "cm")) as any).data.k, "v")
    })))

  it.effect("AlreadyExists, Conflict, NotFound and Invalid", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      const cm = yield* admin.create("configmaps", "default", configMap("cm", { a: "1" }))

      const dup = yield* failure(admin.create("configmaps", "default", configMap("cm")))
      assert.strictEqual(dup.reason, "AlreadyExists")
      assert.strictEqual(dup.detail, `configmaps "cm" already exists`)

      const updated = yield* admin.replace("configmaps", "default", { ...cm, data: { a: "2" } })
      const stale = yield* failure(admin.replace("configmaps", "default", { ...cm, data: { a: "3" } }))
      assert.strictEqual(stale.reason, "Conflict")
      assert.include(stale.detail, `Operation cannot be fulfilled on configmaps "cm": the object has been modified`)
      const stalePatch = yield* failure(
        admin.patch("configmaps", "default", "cm", { metadata: { resourceVersion: cm.metadata.resourceVersion }, data: { a: "4" } })
      )
      assert.strictEqual(stalePatch.reason, "Conflict")

      // No resourceVersion: unconditional.
      const { resourceVersion: _, ...metaWithoutRv } = updated.metadata
      const forced = yield* admin.replace("configmaps", "default", { ...updated, metadata: metaWithoutRv, data: { a: "5" } })
      assert.deepStrictEqual(forced.data, { a: "5" })

      assert.strictEqual((yield* failure(admin.get("configmaps", "default", "nope"))).reason, "NotFound")
      assert.strictEqual((yield* failure(admin.patch("configmaps", "default", "nope", { data: {} }))).reason, "NotFound")
      assert.strictEqual((yield* failure(admin.delete("configmaps", "default", "nope"))).reason, "NotFound")
      assert.strictEqual(
        (yield* failure(admin.replace("configmaps", "default", configMap("nope")))).reason,
        "NotFound"
      )
      const missingNs = yield* failure(admin.create("configmaps", "ghost", configMap("cm")))
      assert.strictEqual(missingNs.reason, "NotFound")
      assert.strictEqual(missingNs.detail, `namespaces "ghost" not found`)

      const badName = yield* failure(admin.create("configmaps", "default", configMap("Bad_Name")))
      assert.strictEqual(badName.reason, "Invalid")
      const badLabel = yield* failure(admin.create("configmaps", "default", configMap("ok", {}, { labels: { a: "x".repeat(64) } })))
      assert.strictEqual(badLabel.reason, "Invalid")
      const noName = yield* failure(admin.create("configmaps", "default", { metadata: {} }))
      assert.strictEqual(noName.reason, "Invalid")
      const withRv = yield* failure(admin.create("configmaps", "default", configMap("x", {}, { resourceVersion: "3" })))
      assert.strictEqual(withRv.reason, "Invalid")
    })))

  it.effect("generateName picks a fresh suffixed name", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      const a = yield* admin.create("pods", "default", { metadata: { generateName: "job-" }, spec: {} })
      const b = yield* admin.create("pods", "default", { metadata: { generateName: "job-" }, spec: {} })
      assert.match(a.metadata.name!, /^job-[bcdfghjklmnpqrstvwxz2456789]{5}$/)
      assert.notStrictEqual(a.metadata.name, b.metadata.name)
      assert.strictEqual(a.metadata.generateName, "job-")
      assert.strictEqual((yield* admin.list("pods", "default")).items.length, 2)
    })))

  it.effect("finalizers hold a deleted object until they are removed", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      yield* TestClock.adjust("1 hour")
      const wf = yield* admin.create("workflows", "default", {
        metadata: { name: "wf", finalizers: ["flotilla.io/cleanup"] },
        spec: {}
      })
      yield* admin.delete("workflows", "default", "wf")
      const deleting = yield* admin.get("workflows", "default", "wf")
      assert.strictEqual(deleting.metadata.deletionTimestamp, "1970-01-01T01:00:00Z")
      assert.strictEqual(deleting.metadata.generation, 2)
      assert.isAbove(rv(deleting), rv(wf))

      // Deleting again is a no-op.
      yield* admin.delete("workflows", "default", "wf")
      assert.strictEqual((yield* admin.get("workflows", "default", "wf")).metadata.resourceVersion, deleting.metadata.resourceVersion)

      // New finalizers are refused while deleting.
      const refused = yield* failure(
        admin.patch("workflows", "default", "wf", { metadata: { finalizers: ["flotilla.io/cleanup", "other"] } })
      )
      assert.strictEqual(refused.reason, "Invalid")
      assert.include(refused.detail, "no new finalizers can be added if the object is being deleted")

      // deletionTimestamp cannot be cleared by an update.
      const kept = yield* admin.patch("workflows", "default", "wf", { metadata: { deletionTimestamp: null, labels: { a: "b" } } })
      assert.strictEqual(kept.metadata.deletionTimestamp, "1970-01-01T01:00:00Z")

      yield* admin.patch("workflows", "default", "wf", { metadata: { finalizers: null } })
      assert.strictEqual((yield* failure(admin.get("workflows", "default", "wf"))).reason, "NotFound")

      const types = (yield* kube.history("east")).filter((c) => c.resource === "workflows").map((c) => c.type)
      assert.deepStrictEqual(types, ["ADDED", "MODIFIED", "MODIFIED", "DELETED"])
    })))

  it.effect("delete honours the uid precondition", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      const first = yield* admin.create("pods", "default", pod("p"))
      yield* admin.delete("pods", "default", "p", { uid: first.metadata.uid! })
      const second = yield* admin.create("pods", "default", pod("p"))
      const error = yield* failure(admin.delete("pods", "default", "p", { uid: first.metadata.uid! }))
      assert.strictEqual(error.reason, "Conflict")
      assert.include(error.detail, "Precondition failed: UID in precondition")
      assert.strictEqual((yield* admin.get("pods", "default", "p")).metadata.uid, second.metadata.uid)
    })))

  it.effect("owner references: dependents are garbage collected with their owner", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      const owner = yield* admin.create("workflows", "default", { metadata: { name: "wf" }, spec: {} })
      const ref = { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: "wf", uid: owner.metadata.uid!, controller: true }
      yield* admin.create("pods", "default", pod("a", { ownerReferences: [ref] }))
      yield* admin.create("pods", "default", pod("b", { ownerReferences: [ref], finalizers: ["keep"] }))
      yield* admin.create("pods", "default", pod("unrelated"))
      yield* admin.delete("workflows", "default", "wf")
      const pods = yield* admin.list("pods", "default")
      assert.deepStrictEqual(pods.items.map((p) => p.metadata.name), ["b", "unrelated"])
      assert.isDefined(pods.items[0].metadata.deletionTimestamp, "a finalizer holds the dependent, marked for deletion")
      const gc = (yield* kube.history("east")).filter((c) => c.name === "a" && c.type === "DELETED")
      assert.strictEqual(gc[0].identity, "system:garbage-collector")
    })))

  it.effect("owner references: orphan, foreground and dangling owners", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      const o1 = yield* admin.create("configmaps", "default", configMap("o1"))
      const ref1 = { apiVersion: "v1", kind: "ConfigMap", name: "o1", uid: o1.metadata.uid! }
      yield* admin.create("pods", "default", pod("orphan", { ownerReferences: [ref1] }))
      yield* admin.delete("configmaps", "default", "o1", { propagationPolicy: "Orphan" })
      const orphan = yield* admin.get("pods", "default", "orphan")
      assert.isUndefined(orphan.metadata.ownerReferences)

      const o2 = yield* admin.create("configmaps", "default", configMap("o2"))
      const ref2 = { apiVersion: "v1", kind: "ConfigMap", name: "o2", uid: o2.metadata.uid! }
      yield* admin.create("pods", "default", pod("held", { ownerReferences: [ref2], finalizers: ["x"] }))
      yield* admin.delete("configmaps", "default", "o2", { propagationPolicy: "Foreground" })
      const waiting = yield* admin.get("configmaps", "default", "o2")
      assert.deepStrictEqual(waiting.metadata.finalizers, ["foregroundDeletion"])
      assert.isDefined((yield* admin.get("pods", "default", "held")).metadata.deletionTimestamp)
      yield* admin.patch("pods", "default", "held", { metadata: { finalizers: null } })
      assert.strictEqual((yield* failure(admin.get("configmaps", "default", "o2"))).reason, "NotFound")

      // Only dangling owners: collected right away, like the real garbage collector.
      yield* admin.create("pods", "default", pod("dangling", {
        ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "gone", uid: "00000000-0000-4000-8000-000000000000" }]
      }))
      assert.strictEqual((yield* failure(admin.get("pods", "default", "dangling"))).reason, "NotFound")
    })))

  it.effect("garbage collection can be turned off", () =>
    withKube(
      Effect.gen(function*() {
        const { admin } = yield* setup
        yield* admin.create("pods", "default", pod("dangling", {
          ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "gone", uid: "x" }]
        }))
        assert.strictEqual((yield* admin.get("pods", "default", "dangling")).metadata.name, "dangling")
      }),
      { garbageCollection: false }
    ))

  it.effect("deleting a namespace deletes its contents first", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      yield* kube.ensureNamespace("east", "work")
      yield* admin.create("pods", "work", pod("p", { finalizers: ["x"] }))
      yield* admin.delete("namespaces", undefined, "work")
      const ns = yield* admin.get("namespaces", undefined, "work")
      assert.strictEqual((ns.status as any).phase, "Terminating")
      const refused = yield* failure(admin.create("configmaps", "work", configMap("late")))
      assert.strictEqual(refused.reason, "Forbidden")
      yield* admin.patch("pods", "work", "p", { metadata: { finalizers: null } })
      assert.strictEqual((yield* failure(admin.get("namespaces", undefined, "work"))).reason, "NotFound")
      assert.strictEqual((yield* failure(admin.delete("namespaces", undefined, "default"))).reason, "Forbidden")
    })))

  it.effect("list filters by label and field selectors", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      yield* kube.ensureNamespace("east", "other")
      yield* admin.create("pods", "default", pod("a", { labels: { app: "web", tier: "front" } }, { nodeName: "n1" }))
      yield* admin.create("pods", "default", pod("b", { labels: { app: "db" } }))
      yield* admin.create("pods", "other", pod("c", { labels: { app: "web" } }, { nodeName: "n1" }))
      const names = (r: { items: ReadonlyArray<KubeObject> }) => r.items.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)
      assert.deepStrictEqual(names(yield* admin.list("pods", undefined, { labelSelector: "app=web" })), ["default/a", "other/c"])
      assert.deepStrictEqual(names(yield* admin.list("pods", "default", { labelSelector: "app in (web,db),!tier" })), ["default/b"])
      assert.deepStrictEqual(names(yield* admin.list("pods", undefined, { labelSelector: "tier notin (front)" })), [
        "default/b",
        "other/c"
      ])
      assert.deepStrictEqual(names(yield* admin.list("pods", undefined, { fieldSelector: "spec.nodeName=n1" })), [
        "default/a",
        "other/c"
      ])
      assert.deepStrictEqual(names(yield* admin.list("pods", undefined, { fieldSelector: "spec.nodeName!=n1" })), ["default/b"])
      assert.deepStrictEqual(
        names(yield* admin.list("pods", undefined, { fieldSelector: "metadata.namespace=other,metadata.name=c" })),
        ["other/c"]
      )
      assert.deepStrictEqual(names(yield* admin.list("pods", undefined, { fieldSelector: "metadata.name!=a" })), [
        "default/b",
        "other/c"
      ])
      assert.strictEqual((yield* failure(admin.list("pods", undefined, { labelSelector: "a in ()" }))).reason, "Invalid")
      const unsupported = yield* failure(admin.list("configmaps", undefined, { fieldSelector: "spec.nodeName=x" }))
      assert.strictEqual(unsupported.detail, "field label not supported: spec.nodeName")
    })))
})

// --- RBAC ------------------------------------------------------------------------

describe("InMemoryKube RBAC", () => {
  it.effect("namespaced rules allow only their namespace; Forbidden uses the server's wording", () =>
    withKube(Effect.gen(function*() {
      const { kube } = yield* setup
      yield* kube.ensureNamespace("east", "remote")
      yield* kube.addIdentity("east", {
        name: "remote",
        token: "s3cret-token",
        rules: [{ verbs: ["get", "list", "watch", "create"], resources: ["pods"], namespaces: ["remote"] }]
      })
      const client = kube.clientFor("east", "s3cret-token")
      assert.strictEqual(client.identity, "remote")
      yield* client.create("pods", "remote", pod("p"))
      assert.strictEqual((yield* client.list("pods", "remote")).items.length, 1)

      const create = yield* failure(client.create("pods", "default", pod("p")))
      assert.strictEqual(create.reason, "Forbidden")
      assert.strictEqual(
        create.detail,
        `pods is forbidden: User "remote" cannot create resource "pods" in API group "" in the namespace "default"`
      )
      const del = yield* failure(client.delete("pods", "remote", "p"))
      assert.strictEqual(
        del.detail,
        `pods "p" is forbidden: User "remote" cannot delete resource "pods" in API group "" in the namespace "remote"`
      )
      const listAll = yield* failure(client.list("pods", undefined))
      assert.strictEqual(
        listAll.detail,
        `pods is forbidden: User "remote" cannot list resource "pods" in API group "" at the cluster scope`
      )
      const wf = yield* failure(client.create("workflows", "remote", { metadata: { name: "w" } }))
      assert.strictEqual(
        wf.detail,
        `workflows.argoproj.io is forbidden: User "remote" cannot create resource "workflows" in API group "argoproj.io" in the namespace "remote"`
      )
      const watchAll = yield* client.watch("pods", undefined, { resourceVersion: "0" }).pipe(Stream.runCollect, Effect.flip)
      assert.strictEqual(watchAll.reason, "Forbidden")
      for (const error of [create, del, listAll, wf, watchAll]) assert.notInclude(error.message, "s3cret")
    })))

  it.effect("cluster-wide rules allow all namespaces; grant and revoke apply to later calls", () =>
    withKube(Effect.gen(function*() {
      const { kube, admin } = yield* setup
      yield* admin.create("pods", "default", pod("p"))
      yield* kube.addIdentity("east", { name: "ctrl", token: "t-ctrl", rules: [{ verbs: ["list", "watch"], resources: ["*"] }] })
      const client = kube.clientFor("east", "t-ctrl")
      assert.strictEqual((yield* client.list("pods", undefined)).items.length, 1)
      assert.strictEqual((yield* failure(client.get("pods", "default", "p"))).reason, "Forbidden")

      yield* kube.grant("east", "ctrl", [{ verbs: ["get"], resources: ["pods"], namespaces: ["default"] }])
      assert.strictEqual((yield* client.get("pods", "default", "p")).metadata.name, "p")

      yield* kube.revoke("east", "ctrl", [{ verbs: ["get"], resources: ["pods"], namespaces: ["default"] }])
      assert.strictEqual((yield* failure(client.get("pods", "default", "p"))).reason, "Forbidden")
      assert.strictEqual((yield* client.list("pods", undefined)).items.length, 1)

      yield* kube.revoke("east", "ctrl")
      assert.strictEqual((yield* failure(client.list("pods", undefined))).reason, "Forbidden")

      yield* kube.grant("east", "ctrl", [{ verbs: ["*"], resources: ["namespaces"] }])
      assert.strictEqual((yield* client.get("namespaces", undefined, "default")).metadata.name, "default")
    })))

  it.effect("unknown tokens are Unauthorized on every call", () =>
    withKube(Effect.gen(function*() {
      const { kube } = yield* setup
      const client = kube.clientFor("east", "wrong-token-value")
      const errors = [
        yield* failure(client.get("pods", "default", "p")),
        yield* failure(client.list("pods", undefined)),
        yield* failure(client.create("pods", "default", pod("p"))),
        yield* failure(client.replace("pods", "default", pod("p"))),
        yield* failure(client.patch("pods", "default", "p", {})),
        yield* failure(client.delete("pods", "default", "p")),
        yield* failure(client.logs("default", "p")),
        yield* client.watch("pods", "default", { resourceVersion: "0" }).pipe(Stream.runCollect, Effect.flip)
      ]
      for (const error of errors) {
        assert.strictEqual(error.reason, "Unauthorized")
        assert.notInclude(error.message, "wrong-token-value")
      }
      // A removed identity's token stops working.
      yield* kube.addIdentity("east", { name: "u", token: "tok", rules: [{ verbs: ["*"], resources: ["*"] }] })
      yield* kube.clientFor("east", "tok").list("pods", undefined)
      yield* kube.removeIdentity("east", "u")
      assert.strictEqual((yield* failure(kube.clientFor("east", "tok").list("pods", undefined))).reason, "Unauthorized")
    })))

  it.effect("the audit log records every call, allowed or denied, with the identity", () =>
    withKube(Effect.gen(function*() {
      const { kube, admin } = yield* setup
      yield* kube.addIdentity("east", { name: "ctrl", token: "t1", rules: [{ verbs: ["get", "list", "watch"], resources: ["*"] }] })
      yield* kube.addIdentity("east", { name: "user", token: "t2", rules: [{ verbs: ["create"], resources: ["pods"] }] })
      const ctrl = kube.clientFor("east", "t1")
      const user = kube.clientFor("east", "t2")
      const created = yield* user.create("pods", "default", { metadata: { generateName: "run-" }, spec: {} })
      yield* ctrl.get("pods", "default", created.metadata.name!)
      yield* failure(ctrl.create("pods", "default", pod("x")))
      yield* failure(kube.clientFor("east", "nope").list("pods", "default"))
      yield* failure(admin.get("pods", "default", "missing"))

      const log = yield* kube.requests("east")
      const view = log.map((r) => `${r.identity} ${r.verb} ${r.resource} ${r.namespace ?? "-"} ${r.name ?? "-"} ${r.allowed} ${r.outcome}`)
      assert.deepStrictEqual(view, [
        `user create pods default ${created.metadata.name} true Success`,
        `ctrl get pods default ${created.metadata.name} true Success`,
        `ctrl create pods default x false Forbidden`,
        `system:anonymous list pods default - false Unauthorized`,
        `admin get pods default missing true NotFound`
      ])
      assert.isTrue(log.every((r, i) => i === 0 || r.seq > log[i - 1].seq))
      assert.isFalse(log.some((r) => r.identity === "ctrl" && r.verb === "create" && r.allowed))
      const changes = yield* kube.history("east")
      const podChange = changes.find((c) => c.resource === "pods")!
      assert.strictEqual(podChange.identity, "user")
      assert.strictEqual(podChange.type, "ADDED")

      yield* kube.clearRequests("east")
      assert.strictEqual((yield* kube.requests("east")).length, 0)
    })))

  it.effect("pod logs need get on pods and resolve the container", () =>
    withKube(Effect.gen(function*() {
      const { kube, admin } = yield* setup
      yield* admin.create("pods", "default", pod("one"))
      yield* admin.create("pods", "default", {
        metadata: { name: "two" },
        spec: { containers: [{ name: "main" }, { name: "wait" }] }
      })
      yield* kube.setPodLog("east", "default", "one", "main", "hello\n")
      yield* kube.appendPodLog("east", "default", "one", "main", "world\n")
      yield* kube.setPodLog("east", "default", "two", "wait", "waiting\n")
      assert.strictEqual(yield* admin.logs("default", "one"), "hello\nworld\n")
      assert.strictEqual(yield* admin.logs("default", "two", "wait"), "waiting\n")
      assert.strictEqual(yield* admin.logs("default", "two", "main"), "")
      assert.include((yield* failure(admin.logs("default", "two"))).detail, "a container name must be specified")
      assert.strictEqual((yield* failure(admin.logs("default", "two", "nope"))).reason, "Invalid")
      assert.strictEqual((yield* failure(admin.logs("default", "ghost"))).reason, "NotFound")

      yield* kube.addIdentity("east", { name: "viewer", token: "v", rules: [{ verbs: ["list"], resources: ["pods"] }] })
      const denied = yield* failure(kube.clientFor("east", "v").logs("default", "one"))
      assert.strictEqual(
        denied.detail,
        `pods "one" is forbidden: User "viewer" cannot get resource "pods/log" in API group "" in the namespace "default"`
      )
      yield* kube.grant("east", "viewer", [{ verbs: ["get"], resources: ["pods"], namespaces: ["default"] }])
      assert.strictEqual(yield* kube.clientFor("east", "v").logs("default", "one"), "hello\nworld\n")
    })))
})

// --- watch -------------------------------------------------------------------------

describe("InMemoryKube watch", () => {
  it.effect("replays changes after a resourceVersion, then delivers live events for its namespace", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      yield* kube.ensureNamespace("east", "other")
      yield* admin.create("pods", "default", pod("before"))
      const from = (yield* admin.list("pods", "default")).resourceVersion
      yield* admin.create("pods", "default", pod("a"))
      yield* admin.create("pods", "other", pod("elsewhere"))
      yield* admin.patch("pods", "default", "a", { metadata: { labels: { x: "1" } } })

      const { events, opened } = yield* startWatch(admin, "pods", "default", { resourceVersion: from })
      yield* waitUntil("replay", () => events.length === 2)
      assert.strictEqual(opened.before, 0, "OPENED comes first, before the replayed events")
      yield* admin.delete("pods", "default", "a")
      yield* admin.create("pods", "other", pod("elsewhere-2"))
      yield* admin.create("pods", "default", pod("b"))
      yield* waitUntil("live", () => events.length === 4)
      yield* settle
      assert.deepStrictEqual(summary(events), ["ADDED a", "MODIFIED a", "DELETED a", "ADDED b"])
      const versions = events.map((e) => (e.type === "BOOKMARK" ? 0 : rv(e.object)))
      assert.isTrue(versions.every((v, i) => i === 0 || v > versions[i - 1]))
      assert.isTrue(versions[0] > Number(from))

      const all = yield* startWatch(admin, "pods", undefined, { resourceVersion: from })
      yield* waitUntil("all namespaces", () => all.events.length === 6)
      assert.deepStrictEqual(summary(all.events), [
        "ADDED a",
        "ADDED elsewhere",
        "MODIFIED a",
        "DELETED a",
        "ADDED elsewhere-2",
        "ADDED b"
      ])
    })))

  it.effect("resourceVersion 0 starts with the current state", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      yield* admin.create("configmaps", "default", configMap("a"))
      yield* admin.patch("configmaps", "default", "a", { data: { k: "v" } })
      const { events } = yield* startWatch(admin, "configmaps", "default", { resourceVersion: "0" })
      yield* waitUntil("initial", () => events.length === 1)
      assert.deepStrictEqual(summary(events), ["ADDED a"])
      assert.deepStrictEqual((events[0] as any).object.data, { k: "v" })
    })))

  it.effect("selector transitions arrive as ADDED and DELETED", () =>
    withKube(Effect.gen(function*() {
      const { admin } = yield* setup
      const start = (yield* admin.list("pods", "default")).resourceVersion
      const { events } = yield* startWatch(admin, "pods", "default", { resourceVersion: start, labelSelector: "app=web" })
      yield* admin.create("pods", "default", pod("p", { labels: { app: "db" } }))
      yield* admin.patch("pods", "default", "p", { metadata: { labels: { app: "web" } } })
      yield* admin.patch("pods", "default", "p", { metadata: { labels: { extra: "1" } } })
      yield* admin.patch("pods", "default", "p", { metadata: { labels: { app: "db" } } })
      yield* admin.delete("pods", "default", "p")
      yield* waitUntil("transitions", () => events.length === 3)
      yield* settle
      assert.deepStrictEqual(summary(events), ["ADDED p", "MODIFIED p", "DELETED p"])
      const deleted = events[2] as { object: KubeObject }
      assert.deepStrictEqual(deleted.object.metadata.labels, { app: "web", extra: "1" }, "the last state that matched")

      // The same transitions on replay.
      const replay = yield* startWatch(admin, "pods", "default", { resourceVersion: start, labelSelector: "app=web" })
      yield* waitUntil("replay", () => replay.events.length === 3)
      assert.deepStrictEqual(summary(replay.events), ["ADDED p", "MODIFIED p", "DELETED p"])

      // Field selector transitions too.
      const nodeWatch = yield* startWatch(admin, "pods", "default", {
        resourceVersion: (yield* admin.list("pods", "default")).resourceVersion,
        fieldSelector: "spec.nodeName=n1"
      })
      yield* admin.create("pods", "default", pod("q"))
      yield* admin.patch("pods", "default", "q", { spec: { nodeName: "n1" } })
      yield* waitUntil("scheduled", () => nodeWatch.events.length === 1)
      assert.deepStrictEqual(summary(nodeWatch.events), ["ADDED q"])
    })))

  it.effect("bookmarks follow the (test) clock", () =>
    withKube(
      Effect.gen(function*() {
        const { admin } = yield* setup
        const start = (yield* admin.list("pods", "default")).resourceVersion
        const { events } = yield* startWatch(admin, "pods", "default", { resourceVersion: start, allowBookmarks: true })
        const plain = yield* startWatch(admin, "pods", "default", { resourceVersion: start })
        yield* settle
        yield* TestClock.adjust("29 seconds")
        yield* settle
        assert.strictEqual(events.length, 0)
        yield* admin.create("pods", "default", pod("a"))
        yield* TestClock.adjust("1 second")
        yield* waitUntil("bookmark", () => events.length === 2)
        const current = (yield* admin.list("pods", "default")).resourceVersion
        assert.deepStrictEqual(summary(events), ["ADDED a", `BOOKMARK ${current}`])
        yield* TestClock.adjust("30 seconds")
        yield* waitUntil("second bookmark", () => events.length === 3)
        assert.deepStrictEqual(summary(plain.events), ["ADDED a"])
      }),
      { bookmarkInterval: "30 seconds" }
    ))

  it.effect("timeoutSeconds ends the watch normally and releases it", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      const { events, fiber } = yield* startWatch(admin, "pods", "default", { resourceVersion: "0", timeoutSeconds: 10 })
      yield* settle
      assert.strictEqual(yield* kube.openWatches("east"), 1)
      yield* admin.create("pods", "default", pod("a"))
      yield* TestClock.adjust("9 seconds")
      yield* settle
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(summary(events), ["ADDED a"])
      assert.strictEqual(yield* kube.openWatches("east"), 0)
    })))

  it.effect("closing a watch's scope removes the watcher", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      const { fiber } = yield* startWatch(admin, "pods", undefined, { resourceVersion: "0" })
      const second = yield* startWatch(admin, "configmaps", "default", { resourceVersion: "0" })
      yield* settle
      assert.strictEqual(yield* kube.openWatches("east"), 2)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* kube.openWatches("east"), 1)
      const taken = yield* admin.watch("pods", "default", { resourceVersion: "0" }).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* admin.create("pods", "default", pod("a"))
      assert.strictEqual((yield* Fiber.join(taken)).length, 1)
      assert.strictEqual(yield* kube.openWatches("east"), 1)
      yield* Fiber.interrupt(second.fiber)
      assert.strictEqual(yield* kube.openWatches("east"), 0)
    })))

  it.effect("compaction: new watches from old versions and lagging open watches fail with Gone", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      const old = (yield* admin.list("pods", "default")).resourceVersion
      yield* admin.create("pods", "default", pod("a"))

      // A caught-up watch survives compaction; one that has undelivered events does not.
      const caughtUp = yield* startWatch(admin, "pods", "default", { resourceVersion: old })
      yield* waitUntil("caught up", () => caughtUp.events.length === 1)

      yield* Effect.scoped(Effect.gen(function*() {
        const pull = yield* Stream.toPull(admin.watch("pods", "default", { resourceVersion: old }))
        yield* admin.create("pods", "default", pod("b"))
        yield* waitUntil("caught up with b", () => caughtUp.events.length === 2)
        yield* settle
        yield* kube.compact("east")
        const error = yield* Effect.flip(pull)
        assert.strictEqual((error as KubeError).reason, "Gone")
      }))

      const gone = yield* admin.watch("pods", "default", { resourceVersion: old }).pipe(Stream.runCollect, Effect.flip)
      assert.strictEqual(gone.reason, "Gone")
      assert.include(gone.detail, "too old resource version")

      // From the current version (after compaction) is fine.
      const now = (yield* admin.list("pods", "default")).resourceVersion
      const fresh = yield* startWatch(admin, "pods", "default", { resourceVersion: now })
      yield* admin.create("pods", "default", pod("c"))
      yield* waitUntil("fresh", () => fresh.events.length === 1)
      yield* waitUntil("caught-up watch still live", () => caughtUp.events.length === 3)
      assert.deepStrictEqual(summary(caughtUp.events), ["ADDED a", "ADDED b", "ADDED c"])
      assert.isUndefined(caughtUp.fiber.pollUnsafe())
    })))

  it.effect("history beyond maxHistoryPerResource is compacted", () =>
    withKube(
      Effect.gen(function*() {
        const { admin } = yield* setup
        const old = (yield* admin.list("configmaps", "default")).resourceVersion
        for (let i = 0; i < 10; i++) yield* admin.create("configmaps", "default", configMap(`c${i}`))
        const gone = yield* admin.watch("configmaps", "default", { resourceVersion: old }).pipe(Stream.runCollect, Effect.flip)
        assert.strictEqual(gone.reason, "Gone")
        const recent = (yield* admin.get("configmaps", "default", "c8")).metadata.resourceVersion!
        const events = yield* admin.watch("configmaps", "default", { resourceVersion: recent, timeoutSeconds: 1 }).pipe(
          Stream.take(2),
          Stream.runCollect
        )
        assert.deepStrictEqual(events[0], { type: "OPENED" })
        assert.deepStrictEqual(summary(events.slice(1) as Array<DataEvent>), ["ADDED c9"])
      }),
      { maxHistoryPerResource: 4 }
    ))
})

// --- failure injection -----------------------------------------------------------

describe("InMemoryKube failure injection", () => {
  it.effect("an unreachable cluster fails every call and every open watch", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      const { fiber } = yield* startWatch(admin, "pods", "default", { resourceVersion: "0" })
      yield* settle
      yield* kube.setReachable("east", false)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(yield* kube.openWatches("east"), 0)
      assert.strictEqual((yield* failure(admin.get("pods", "default", "p"))).reason, "Unavailable")
      assert.strictEqual((yield* failure(admin.create("pods", "default", pod("p")))).reason, "Unavailable")
      const watchError = yield* admin.watch("pods", "default", { resourceVersion: "0" }).pipe(Stream.runCollect, Effect.flip)
      assert.strictEqual(watchError.reason, "Unavailable")
      yield* kube.setReachable("east", true)
      yield* admin.create("pods", "default", pod("p"))
    })))

  it.effect("a hung cluster holds calls and watch opening until unhung", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      yield* kube.setHung("east", true)
      const call = yield* admin.list("pods", "default").pipe(Effect.forkChild)
      const timedOut = yield* admin.get("namespaces", undefined, "default").pipe(Effect.timeout("5 seconds"), Effect.flip, Effect.forkChild)
      const { events } = yield* startWatch(admin, "pods", "default", { resourceVersion: "0" })
      yield* settle
      yield* TestClock.adjust("5 seconds")
      const timeoutError = yield* Fiber.join(timedOut)
      assert.strictEqual((timeoutError as { _tag: string })._tag, "TimeoutError")
      assert.isUndefined(call.pollUnsafe())
      assert.strictEqual(yield* kube.openWatches("east"), 0)

      yield* kube.setHung("east", false)
      assert.strictEqual((yield* Fiber.join(call)).items.length, 0)
      yield* settle
      assert.strictEqual(yield* kube.openWatches("east"), 1)
      yield* admin.create("pods", "default", pod("a"))
      yield* waitUntil("event", () => events.length === 1)
    })))

  it.effect("failNext injects errors for matching calls", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      yield* kube.failNext("east", "create", "pods", "Unavailable", 2)
      assert.strictEqual((yield* failure(admin.create("pods", "default", pod("a")))).reason, "Unavailable")
      yield* admin.create("configmaps", "default", configMap("c"))
      assert.strictEqual((yield* failure(admin.create("pods", "default", pod("a")))).reason, "Unavailable")
      yield* admin.create("pods", "default", pod("a"))
      yield* kube.failNext("east", "*", "*", "Timeout")
      assert.strictEqual((yield* failure(admin.get("pods", "default", "a"))).reason, "Timeout")
      yield* admin.get("pods", "default", "a")
    })))
})

// --- connector ---------------------------------------------------------------------

describe("InMemoryKube as KubeConnector", () => {
  const spec = (server: string, auth: ConnectionSpec["auth"]): ConnectionSpec => ({
    cluster: "prod-east",
    user: "argo",
    endpoint: { server },
    auth
  })

  it.effect("connects by server URL and token", () =>
    withKube(Effect.gen(function*() {
      const { kube } = yield* setup
      yield* kube.addCluster("west")
      yield* kube.addIdentity("west", { name: "system:serviceaccount:argo:argo", token: "tw", rules: [{ verbs: ["*"], resources: ["*"] }] })
      const connector = yield* KubeConnector
      const client = yield* connector.connect(spec("memory://west", { _tag: "Token", token: Redacted.make("tw") }))
      assert.strictEqual(client.cluster, "prod-east")
      assert.strictEqual(client.identity, "system:serviceaccount:argo:argo")
      yield* client.create("configmaps", "default", configMap("in-west"))
      assert.strictEqual((yield* kube.objects("west", "configmaps", "default")).length, 1)
      assert.strictEqual((yield* kube.objects("east", "configmaps", "default")).length, 0)
      const forbidden = yield* failure(client.get("configmaps", "default", "missing"))
      assert.strictEqual(forbidden.cluster, "prod-east")

      const unknown = yield* failure(connector.connect(spec("memory://nowhere", { _tag: "Token", token: Redacted.make("tw") })))
      assert.strictEqual(unknown.reason, "Unavailable")
      assert.include(unknown.detail, "memory://nowhere")
      const https = yield* failure(connector.connect(spec("https://10.0.0.1:6443", { _tag: "Token", token: Redacted.make("tw") })))
      assert.strictEqual(https.reason, "Unavailable")
      const anonymous = yield* failure(connector.connect(spec("memory://west", { _tag: "Anonymous" })))
      assert.strictEqual(anonymous.reason, "Unauthorized")
      const badToken = yield* connector.connect(spec("memory://west", { _tag: "Token", token: Redacted.make("bad") }))
      assert.strictEqual((yield* failure(badToken.list("pods", undefined))).reason, "Unauthorized")
    })))

  it.effect("closing the connection's scope ends its watches and retires the client", () =>
    withKube(Effect.gen(function*() {
      const { kube } = yield* setup
      yield* kube.addIdentity("east", { name: "ctrl", token: "tc", rules: [{ verbs: ["*"], resources: ["*"] }] })
      const connector = yield* KubeConnector
      const scope = yield* Scope.make()
      const client = yield* connector.connect(spec("memory://east", { _tag: "Token", token: Redacted.make("tc") })).pipe(
        Scope.provide(scope)
      )
      const { fiber } = yield* startWatch(client, "pods", undefined, { resourceVersion: "0" })
      yield* settle
      assert.strictEqual(yield* kube.openWatches("east"), 1)
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(yield* kube.openWatches("east"), 0)
      assert.strictEqual((yield* failure(client.list("pods", undefined))).reason, "Unavailable")
    })))

  it.effect("addCluster is idempotent and creates the default namespaces", () =>
    withKube(Effect.gen(function*() {
      const { kube, admin } = yield* setup
      yield* admin.create("configmaps", "default", configMap("keep"))
      yield* kube.addCluster("east")
      assert.deepStrictEqual(yield* kube.clusters, ["east"])
      const namespaces = (yield* admin.list("namespaces", undefined)).items.map((n) => n.metadata.name)
      assert.deepStrictEqual(namespaces, ["default", "kube-system"])
      assert.strictEqual((yield* kube.objects("east", "configmaps")).length, 1)
      const unknown = yield* failure(kube.adminClient("nowhere").list("pods", undefined))
      assert.strictEqual(unknown.reason, "Unavailable")
    })))
})

// --- scale -------------------------------------------------------------------------

describe("InMemoryKube scale", () => {
  it.effect("handles tens of thousands of objects", () =>
    withKube(Effect.gen(function*() {
      const { admin, kube } = yield* setup
      for (let n = 0; n < 20; n++) yield* kube.ensureNamespace("east", `ns-${n}`)
      const { events } = yield* startWatch(admin, "pods", "ns-3", { resourceVersion: "0", labelSelector: "i=3" })
      for (let i = 0; i < 20_000; i++) {
        yield* admin.create("pods", `ns-${i % 20}`, pod(`p-${i}`, { labels: { i: String(i % 10) } }))
      }
      const list = yield* admin.list("pods", "ns-3", { labelSelector: "i=3" })
      assert.strictEqual(list.items.length, 1000)
      yield* waitUntil("watch saw its pods", () => events.length === 1000)
      const all = yield* admin.list("pods", undefined)
      assert.strictEqual(all.items.length, 20_000)
    })), 30_000)
})

describe("InMemoryKube: SubjectAccessReviews", () => {
  it.effect("answered from the named identity's rules, never stored; the caller needs create on them; a review naming no one is Invalid", () =>
    withKube(Effect.gen(function*() {
      const { kube, admin } = yield* setup
      yield* kube.ensureNamespace("east", "team")
      yield* kube.addIdentity("east", { name: "system:serviceaccount:team:reader", token: "r", rules: [{ verbs: ["get"], resources: ["secrets"], namespaces: ["team"] }] })
      yield* kube.addIdentity("east", { name: "asker", token: "a", rules: [{ verbs: ["create"], resources: ["subjectaccessreviews"] }] })
      yield* kube.addIdentity("east", { name: "nobody", token: "n", rules: [] })
      const asker = kube.clientFor("east", "a")
      const allowed = (user: string, attributes: ResourceAttributes) =>
        reviewAccess(asker, { user, groups: [] }, attributes).pipe(Effect.map((d) => d.allowed))
      const secret = { verb: "get", resource: "secrets", namespace: "team", name: "tok" }
      assert.isTrue(yield* allowed("system:serviceaccount:team:reader", secret))
      assert.isFalse(yield* allowed("system:serviceaccount:team:reader", { ...secret, namespace: "default" }))
      assert.isFalse(yield* allowed("system:serviceaccount:team:reader", { ...secret, verb: "list" }))
      assert.isFalse(yield* allowed("system:serviceaccount:team:reader", { ...secret, group: "apps" }))
      assert.isFalse(yield* allowed("system:serviceaccount:team:unknown", secret))
      assert.strictEqual((yield* kube.objects("east", "subjectaccessreviews", undefined)).length, 0)
      const forbidden = yield* failure(reviewAccess(kube.clientFor("east", "n"), { user: "asker", groups: [] }, secret))
      assert.strictEqual(forbidden.reason, "Forbidden")
      assert.include(forbidden.detail, `cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope`)
      const invalid = yield* failure(admin.create("subjectaccessreviews", undefined, { metadata: {}, spec: { resourceAttributes: secret } }))
      assert.strictEqual(invalid.reason, "Invalid")
    })))
})
