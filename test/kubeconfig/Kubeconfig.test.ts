import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { formatPath, KubeconfigError, parseKubeconfig, secretSource } from "../../src/kubeconfig/index.js"
import { SEED_SYSTEM, SEED_USER, SYSTEM_SOURCE, SYSTEM_TOKEN, USER_SOURCE, USER_TOKEN } from "./fixtures.js"

describe("parseKubeconfig", () => {
  it.effect("parses the seed system kubeconfig and keeps unknown keys", () =>
    Effect.gen(function*() {
      const doc = yield* parseKubeconfig(`${SEED_SYSTEM}x-extra: 1\n`, SYSTEM_SOURCE)
      assert.strictEqual(doc.contexts?.length, 1)
      assert.strictEqual(doc.contexts?.[0].context?.namespace, "remote")
      assert.strictEqual(doc.users?.[0].user?.token, SYSTEM_TOKEN)
      assert.strictEqual(doc.clusters?.[0].cluster?.server, "https://cluster-1.example:6443")
      assert.strictEqual((doc as Record<string, unknown>)["x-extra"], 1)
    }))

  it.effect("parses the seed user kubeconfig, which has no clusters section", () =>
    Effect.gen(function*() {
      const doc = yield* parseKubeconfig(SEED_USER, USER_SOURCE)
      assert.isUndefined(doc.clusters)
      assert.strictEqual(doc.contexts?.[0].name, "cluster-1")
      assert.strictEqual(doc.users?.[0].user?.token, USER_TOKEN)
    }))

  it.effect("accepts null for empty fields (namespace:, clusters: null)", () =>
    Effect.gen(function*() {
      const doc = yield* parseKubeconfig(
        "clusters: null\ncontexts:\n- name: c\n  context:\n    cluster: c\n    namespace:\n",
        SYSTEM_SOURCE
      )
      assert.isNull(doc.clusters)
      assert.isNull(doc.contexts?.[0].context?.namespace)
    }))

  it.effect("malformed YAML: error names the source and the line, not the text", () =>
    Effect.gen(function*() {
      const text = `users:\n  - name: x\n    user:\n      token: ${USER_TOKEN}\n     bad: 1\n`
      const error = yield* Effect.flip(parseKubeconfig(text, USER_SOURCE))
      assert.instanceOf(error, KubeconfigError)
      assert.include(error.message, USER_SOURCE)
      assert.include(error.message, "line 5")
      assert.include(error.message, "malformed YAML")
      assert.notInclude(error.message, USER_TOKEN)
    }))

  it.effect("unterminated quote is a YAML error with a line", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseKubeconfig(`a: 1\ntoken: "${USER_TOKEN}\n`, USER_SOURCE))
      assert.match(error.message, /malformed YAML at line \d+, column \d+: missing closing/)
      assert.notInclude(error.message, USER_TOKEN)
    }))

  it.effect("duplicate keys are rejected", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseKubeconfig("kind: Config\nkind: Config\n", SYSTEM_SOURCE))
      assert.include(error.detail, "duplicate key")
    }))

  it.effect("a document that is not a mapping is rejected", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseKubeconfig("- a\n- b\n", SYSTEM_SOURCE))
      assert.include(error.message, SYSTEM_SOURCE)
      assert.include(error.detail, "mapping")
    }))

  it.effect("an empty document is rejected", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseKubeconfig("", SYSTEM_SOURCE))
      assert.include(error.detail, "empty")
    }))

  it.effect("wrong types name the field path and never echo the value", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        parseKubeconfig(`users:\n  - name: u\n    user:\n      token:\n        nested: ${USER_TOKEN}\n`, USER_SOURCE)
      )
      assert.strictEqual(error.field, "users[0].user.token")
      assert.include(error.message, USER_SOURCE)
      assert.include(error.message, "users[0].user.token")
      assert.include(error.message, "Expected string")
      assert.notInclude(error.message, USER_TOKEN)
    }))

  it.effect("a list where a list is expected is checked too", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseKubeconfig(`contexts: ${USER_TOKEN}\n`, USER_SOURCE))
      assert.strictEqual(error.field, "contexts")
      assert.notInclude(error.message, USER_TOKEN)
    }))
})

describe("KubeconfigError", () => {
  it("composes source, context, field and detail", () => {
    const error = new KubeconfigError({
      source: "secret local/workflow-kubeconfig",
      context: "cluster-1",
      field: "users[0].user.exec",
      detail: "not allowed"
    })
    assert.strictEqual(
      error.message,
      `secret local/workflow-kubeconfig: context "cluster-1": users[0].user.exec: not allowed`
    )
    assert.strictEqual(new KubeconfigError({ source: "s", detail: "d" }).message, "s: d")
  })

  it("formatPath and secretSource", () => {
    assert.strictEqual(formatPath(["users", 0, "user", "client-key-data"]), "users[0].user.client-key-data")
    assert.strictEqual(formatPath(["a b"]), `["a b"]`)
    assert.strictEqual(secretSource("argo", "argo-kubeconfig"), "secret argo/argo-kubeconfig")
  })
})
