/**
 * One API call: the client's session still open, the cluster reachable and
 * not hung, the bearer token authenticated, RBAC, the audit-log entry (with
 * the outcome the call ends with), an injected failure if one matches, then
 * the body, synchronously. Synchronous bodies throw KubeErrors; `toEffect`
 * turns them into failures (anything else is a defect).
 */
import { Clock, Effect, Random } from "effect"
import { KubeError } from "../../kube/api/KubeError.js"
import { type AuditEntry, serverUrl } from "./api.js"
import { fail } from "./errors.js"
import { takeInjected } from "./faults.js"
import { boundTokenValid } from "./boundTokens.js"
import { forbiddenMessage, rbacNamespaceOf, ruleAllows } from "./rbac.js"
import { adminIdentity, type ClientRef, type ClusterState, type Ctx, type Identity, type Request, trimLog } from "./state.js"

export const unavailable = (client: ClientRef, req: Request, detail: string) =>
  fail({ label: client.label, req }, "Unavailable", detail)

export const audit = (c: ClusterState, entry: Omit<AuditEntry, "seq">): { outcome: AuditEntry["outcome"]; name?: string } => {
  const full = { seq: ++c.seq, ...entry } as { -readonly [K in keyof AuditEntry]: AuditEntry[K] }
  if (full.namespace === undefined) delete full.namespace
  if (full.name === undefined) delete full.name
  if (full.subresource === undefined) delete full.subresource
  c.requests.push(full)
  c.requests = trimLog(c, c.requests)
  return full
}

/**
 * Authenticates, authorizes, audits and runs `body` synchronously. Throws
 * KubeErrors. The cluster must be running (not hung).
 */
export const runSync = <A>(
  client: ClientRef,
  c: ClusterState,
  req: Request,
  now: number,
  random: Random.Random,
  body: (ctx: Ctx) => A,
  nameOf?: (result: A) => string | undefined
): A => {
  if (client.session?.closed === true) throw unavailable(client, req, `the client for cluster ${client.label} has been closed`)
  if (!c.reachable) throw unavailable(client, req, `cluster ${client.label} (memory://${c.name}) is unreachable`)
  const target = {
    verb: req.verb,
    resource: req.kind,
    subresource: req.subresource,
    namespace: req.namespace,
    name: req.name
  }
  let identity: Identity | undefined
  let identityName = adminIdentity
  if (client.auth._tag === "Token") {
    identity = c.tokens.get(client.auth.token)
    if (identity === undefined || !boundTokenValid(c, client.auth.token, now)) {
      audit(c, { identity: "system:anonymous", ...target, allowed: false, outcome: "Unauthorized" })
      throw fail({ label: client.label, req }, "Unauthorized", "Unauthorized")
    }
    identityName = identity.name
  }
  const entry = audit(c, { identity: identityName, ...target, allowed: true, outcome: "Success" }) as { -readonly [K in keyof AuditEntry]: AuditEntry[K] }
  if (identity !== undefined) {
    const rbacNs = rbacNamespaceOf(req)
    if (!identity.rules.some((rule) => ruleAllows(rule, req, rbacNs))) {
      entry.allowed = false
      entry.outcome = "Forbidden"
      throw fail({ label: client.label, req }, "Forbidden", forbiddenMessage(identity.name, req))
    }
  }
  const ctx: Ctx = { c, label: client.label, identity: identityName, now, random, req }
  const injected = takeInjected(c, req)
  if (injected !== undefined) {
    entry.outcome = injected.reason
    throw fail(ctx, injected.reason, injected.detail ?? `injected failure (${injected.reason})`)
  }
  try {
    const result = body(ctx)
    const name = nameOf?.(result)
    if (name !== undefined) entry.name = name
    return result
  } catch (error) {
    if (error instanceof KubeError) entry.outcome = error.reason
    throw error
  }
}

export const toEffect = <A>(f: () => A): Effect.Effect<A, KubeError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (error) {
      if (error instanceof KubeError) return Effect.fail(error)
      return Effect.die(error)
    }
  })

/** Waits while the cluster is hung, then runs the call. */
export const call = <A>(
  client: ClientRef,
  req: Request,
  body: (ctx: Ctx) => A,
  nameOf?: (result: A) => string | undefined
): Effect.Effect<A, KubeError> =>
  Effect.gen(function*() {
    const c = yield* clusterFor(client, req)
    yield* awaitRunning(c)
    const now = yield* Clock.currentTimeMillis
    const random = yield* Random.Random
    return yield* toEffect(() => runSync(client, c, req, now, random, body, nameOf))
  })

export const clusterFor = (client: ClientRef, req: Request): Effect.Effect<ClusterState, KubeError> =>
  Effect.suspend(() => {
    const c = client.clusters.get(client.clusterName)
    return c === undefined
      ? Effect.fail(unavailable(client, req, `no in-memory cluster serves ${serverUrl(client.clusterName)}`))
      : Effect.succeed(c)
  })

export const awaitRunning = (c: ClusterState): Effect.Effect<void> =>
  Effect.suspend(() => (c.running.isOpen() ? Effect.void : Effect.andThen(c.running.await, awaitRunning(c))))
