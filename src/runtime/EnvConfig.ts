/**
 * The process environment flotilla reads, in one place, through effect
 * `Config` (so tests can supply a `ConfigProvider` instead of mutating
 * `process.env`). The names and defaults are Argo's workflow-controller's, as
 * `k8s/manager/manager.yaml` sets them; they must not change.
 *
 * A malformed value fails with a `ConfigError` whose message names the
 * variable and what was expected (Argo panics on an unparsable duration too),
 * rather than being ignored in favour of the default. Nothing here reads
 * `process.env` directly or runs at import time: callers yield these configs
 * once at startup and pass the values on.
 */
import { Config, Duration, Effect, Option, Schema, SchemaIssue, SchemaTransformation } from "effect"
import { defaultTimings, leaseName } from "../controller/LeaderElection.js"
import { parseDurationMs } from "../util/goDuration.js"

const invalid = (message: string, input: unknown): SchemaIssue.Issue =>
  new SchemaIssue.InvalidValue({ message }, Option.some(input))

/** A Go duration ("15s", "1m30s", "500ms"), as Argo's LEADER_ELECTION_* variables hold. */
export const GoDuration: Schema.Codec<Duration.Duration, string> = Schema.String.pipe(
  Schema.decodeTo(
    Schema.Duration,
    SchemaTransformation.transformEffect({
      decode: (s: string) => {
        const ms = parseDurationMs(s)
        return ms === undefined
          ? Effect.fail(invalid(`expected a Go duration such as "15s" or "1m30s", got ${JSON.stringify(s)}`, s))
          : Effect.succeed(Duration.millis(ms))
      },
      encode: (d: Duration.Duration) => Effect.succeed(`${Duration.toMillis(d)}ms`)
    })
  )
)

/** A variable holding a Go duration. */
export const goDuration = (name: string): Config.Config<Duration.Duration> => Config.schema(GoDuration, name)

/** `ARGO_NAMESPACE`: the system namespace (`--namespace`'s default); `argo` when unset or empty. */
export const argoNamespaceConfig: Config.Config<string> = Config.String("ARGO_NAMESPACE").pipe(Config.withDefault("argo"))

/** `POD_NAMES`: Argo's pod name scheme, `v1` or `v2` (the default). */
export const podNamesConfig: Config.Config<"v1" | "v2"> = Config.Literals(["v1", "v2"], "POD_NAMES").pipe(
  Config.withDefault("v2")
)

/** The controller's leader election, from Argo's variables. */
export interface LeaderElectionEnv {
  /** `LEADER_ELECTION_DISABLE=true`: run the controller without a Lease (a single replica). */
  readonly disabled: boolean
  /** `workflow-controller`, or `workflow-controller-<INSTANCE_ID>`. */
  readonly leaseName: string
  /** `LEADER_ELECTION_IDENTITY` (the pod name in k8s/); None: the caller picks one (hostname and pid). */
  readonly identity: Option.Option<string>
  /** `LEADER_ELECTION_LEASE_DURATION`, default 15s. */
  readonly leaseDuration: Duration.Duration
  /** `LEADER_ELECTION_RENEW_DEADLINE`, default 10s. */
  readonly renewDeadline: Duration.Duration
  /** `LEADER_ELECTION_RETRY_PERIOD`, default 5s. */
  readonly retryPeriod: Duration.Duration
}

const nonEmpty = (name: string): Config.Config<Option.Option<string>> =>
  Config.option(Config.String(name)).pipe(Config.map(Option.filter((s) => s !== "")))

const show = (d: Duration.Duration) => `${Duration.toMillis(d) / 1000}s`

/**
 * Refuses timings that break the election's guarantee, as client-go does: a
 * leader must give up (renewDeadline) before others may take over
 * (leaseDuration), and must get a few attempts (retryPeriod) in before that.
 */
const checkTimings = (env: LeaderElectionEnv): Effect.Effect<LeaderElectionEnv, Config.ConfigError> => {
  const fail = (message: string) => Effect.fail(new Config.ConfigError(new Schema.SchemaError(invalid(message, env))))
  if (Duration.toMillis(env.retryPeriod) <= 0) {
    return fail(`LEADER_ELECTION_RETRY_PERIOD (${show(env.retryPeriod)}) must be positive`)
  }
  if (Duration.isGreaterThanOrEqualTo(env.renewDeadline, env.leaseDuration)) {
    return fail(
      `LEADER_ELECTION_RENEW_DEADLINE (${show(env.renewDeadline)}) must be shorter than LEADER_ELECTION_LEASE_DURATION (${show(env.leaseDuration)})`
    )
  }
  if (Duration.isGreaterThanOrEqualTo(env.retryPeriod, env.renewDeadline)) {
    return fail(
      `LEADER_ELECTION_RETRY_PERIOD (${show(env.retryPeriod)}) must be shorter than LEADER_ELECTION_RENEW_DEADLINE (${show(env.renewDeadline)})`
    )
  }
  return Effect.succeed(env)
}

export const leaderElectionConfig: Config.Config<LeaderElectionEnv> = Config.all({
  disabled: Config.Boolean("LEADER_ELECTION_DISABLE").pipe(Config.withDefault(false)),
  leaseName: nonEmpty("INSTANCE_ID").pipe(Config.map((id) => leaseName(Option.getOrUndefined(id)))),
  identity: nonEmpty("LEADER_ELECTION_IDENTITY"),
  leaseDuration: goDuration("LEADER_ELECTION_LEASE_DURATION").pipe(Config.withDefault(defaultTimings.leaseDuration)),
  renewDeadline: goDuration("LEADER_ELECTION_RENEW_DEADLINE").pipe(Config.withDefault(defaultTimings.renewDeadline)),
  retryPeriod: goDuration("LEADER_ELECTION_RETRY_PERIOD").pipe(Config.withDefault(defaultTimings.retryPeriod))
}).pipe(Config.mapEffect(checkTimings))
