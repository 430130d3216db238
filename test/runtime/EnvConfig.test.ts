import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as YAML from "yaml"
import { argoNamespaceConfig, leaderElectionConfig, podNamesConfig } from "../../src/runtime/EnvConfig.js"

const read = <A>(config: Config.Config<A>, env: Record<string, string>) =>
  config.pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })))

const failure = <A>(config: Config.Config<A>, env: Record<string, string>) =>
  read(config, env).pipe(Effect.flip, Effect.map((e) => e.message))

const seconds = (d: Duration.Duration) => Duration.toMillis(d) / 1000

describe("EnvConfig", () => {
  it.effect("defaults: Argo's lease and timings, namespace argo, pod names v2", () =>
    Effect.gen(function*() {
      const election = yield* read(leaderElectionConfig, {})
      assert.isFalse(election.disabled)
      assert.strictEqual(election.leaseName, "workflow-controller")
      assert.isTrue(Option.isNone(election.identity))
      assert.deepStrictEqual([seconds(election.leaseDuration), seconds(election.renewDeadline), seconds(election.retryPeriod)], [15, 10, 5])
      assert.strictEqual(yield* read(argoNamespaceConfig, {}), "argo")
      assert.strictEqual(yield* read(podNamesConfig, {}), "v2")
    }))

  it.effect("reads Argo's variables; empty ones count as unset", () =>
    Effect.gen(function*() {
      const election = yield* read(leaderElectionConfig, {
        LEADER_ELECTION_DISABLE: "true",
        INSTANCE_ID: "blue",
        LEADER_ELECTION_IDENTITY: "flotilla-7d9f-abcde",
        LEADER_ELECTION_LEASE_DURATION: "1m30s",
        LEADER_ELECTION_RENEW_DEADLINE: "20s",
        LEADER_ELECTION_RETRY_PERIOD: "500ms"
      })
      assert.isTrue(election.disabled)
      assert.strictEqual(election.leaseName, "workflow-controller-blue")
      assert.deepStrictEqual(election.identity, Option.some("flotilla-7d9f-abcde"))
      assert.deepStrictEqual([seconds(election.leaseDuration), seconds(election.renewDeadline), seconds(election.retryPeriod)], [90, 20, 0.5])
      const empty = yield* read(leaderElectionConfig, { INSTANCE_ID: "", LEADER_ELECTION_IDENTITY: "", LEADER_ELECTION_DISABLE: "false" })
      assert.strictEqual(empty.leaseName, "workflow-controller")
      assert.isTrue(Option.isNone(empty.identity))
      assert.isFalse(empty.disabled)
      assert.strictEqual(yield* read(argoNamespaceConfig, { ARGO_NAMESPACE: "argo-system" }), "argo-system")
      assert.strictEqual(yield* read(podNamesConfig, { POD_NAMES: "v1" }), "v1")
    }))

  it.effect("a malformed value fails, naming the variable", () =>
    Effect.gen(function*() {
      const lease = yield* failure(leaderElectionConfig, { LEADER_ELECTION_LEASE_DURATION: "fifteen" })
      assert.include(lease, "LEADER_ELECTION_LEASE_DURATION")
      assert.include(lease, `"fifteen"`)
      assert.include(yield* failure(leaderElectionConfig, { LEADER_ELECTION_RETRY_PERIOD: "5 seconds" }), "LEADER_ELECTION_RETRY_PERIOD")
      assert.include(yield* failure(leaderElectionConfig, { LEADER_ELECTION_DISABLE: "maybe" }), "LEADER_ELECTION_DISABLE")
      assert.include(yield* failure(podNamesConfig, { POD_NAMES: "v3" }), "POD_NAMES")
    }))

  it.effect("timings that would let two replicas lead at once are refused", () =>
    Effect.gen(function*() {
      const deadline = yield* failure(leaderElectionConfig, { LEADER_ELECTION_RENEW_DEADLINE: "15s" })
      assert.include(deadline, "LEADER_ELECTION_RENEW_DEADLINE (15s) must be shorter than LEADER_ELECTION_LEASE_DURATION (15s)")
      const retry = yield* failure(leaderElectionConfig, { LEADER_ELECTION_RETRY_PERIOD: "10s" })
      assert.include(retry, "LEADER_ELECTION_RETRY_PERIOD (10s) must be shorter than LEADER_ELECTION_RENEW_DEADLINE (10s)")
      assert.include(yield* failure(leaderElectionConfig, { LEADER_ELECTION_RETRY_PERIOD: "0s" }), "LEADER_ELECTION_RETRY_PERIOD (0s) must be positive")
    }))

  it.effect("the manager manifest's environment reads as it is written", () =>
    Effect.gen(function*() {
      const manifest = YAML.parse(fs.readFileSync(path.resolve(import.meta.dirname, "..", "..", "k8s", "manager", "manager.yaml"), "utf8"))
      const container = manifest.spec.template.spec.containers[0]
      // fieldRef values stand for what the kubelet fills in: the pod's namespace and name.
      const env: Record<string, string> = {}
      for (const e of container.env as Array<{ name: string; value?: string }>) env[e.name] = e.value ?? `from-fieldref-${e.name}`
      assert.strictEqual(yield* read(argoNamespaceConfig, env), env["ARGO_NAMESPACE"])
      assert.deepStrictEqual((yield* read(leaderElectionConfig, env)).identity, Option.some(env["LEADER_ELECTION_IDENTITY"]))
      assert.strictEqual(yield* read(podNamesConfig, env), env["POD_NAMES"])
    }))
})
