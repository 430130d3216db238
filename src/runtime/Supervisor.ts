/**
 * The controller's long-running fibres (informer loops, change triggers,
 * resync, orphan sweep, each cluster's watches), supervised. In Effect 4 a
 * fibre forked into a scope that fails or dies does so silently: nothing
 * logs it and the process looks healthy while, say, no workflow change is
 * followed any more. client-go crashes the process in that case; here each
 * component is restarted instead, so one cluster's broken watch does not take
 * the others down:
 *
 *  - a failure or defect is logged (`level=error msg="component failed"`)
 *    with the component's name, its annotations (cluster, kind...), the
 *    attempt and the cause;
 *  - the component restarts after an exponential backoff (default 100 ms
 *    doubling to 30 s); one that ran for `stableAfter` (default 60 s) before
 *    failing starts the backoff over;
 *  - one that ends although it should run forever counts as failed too;
 *  - `states` and `ready` say which components run now: `/readyz` answers 503
 *    while any is restarting.
 *
 * Interruption by the scope closing is not a failure: the component just stops. A component
 * interrupted otherwise (its own input shut down, say) has failed and restarts.
 */
import { Cause, Clock, Context, Duration, Effect, Exit, Fiber, Layer, Ref, Scope } from "effect"

export type ComponentState =
  | { readonly _tag: "Running"; readonly since: number }
  | { readonly _tag: "Restarting"; readonly attempt: number; readonly error: string; readonly since: number }

export interface SuperviseOptions {
  /** Log annotations for this component (cluster, kind...). */
  readonly annotations?: Readonly<Record<string, string>>
  /** First restart delay, doubling per failure in a row. Default 100 ms. */
  readonly backoff?: Duration.Input
  /** Longest restart delay. Default 30 s. */
  readonly backoffMax?: Duration.Input
  /** A run at least this long before failing resets the backoff. Default 60 s. */
  readonly stableAfter?: Duration.Input
}

export class Supervisor extends Context.Service<Supervisor, {
  /**
   * Runs `effect` (meant to run until interrupted) in the supervisor's scope as component
   * `component` (names are unique: supervising a name again replaces nothing, it adds a second
   * entry under a numbered name). Returns once it is forked.
   */
  readonly supervise: <E, R>(component: string, effect: Effect.Effect<unknown, E, R>, options?: SuperviseOptions) => Effect.Effect<void, never, R>
  /**
   * Like `supervise`, but the component lives in the caller's scope (say, one cluster's watch,
   * stopped when the cluster is removed); it leaves `states` when that scope closes.
   */
  readonly superviseScoped: <E, R>(
    component: string,
    effect: Effect.Effect<unknown, E, R>,
    options?: SuperviseOptions
  ) => Effect.Effect<void, never, R | Scope.Scope>
  /** Every supervised component's state, by name. */
  readonly states: Effect.Effect<ReadonlyMap<string, ComponentState>>
  /** True when every supervised component is running. */
  readonly ready: Effect.Effect<boolean>
}>()("flotilla/runtime/Supervisor") {
  /** A supervisor whose components live as long as the current scope. */
  static readonly make: Effect.Effect<Supervisor["Service"], never, Scope.Scope> = Effect.suspend(() => make())
  static readonly layer: Layer.Layer<Supervisor> = Layer.effect(Supervisor, Effect.suspend(() => make()))
}

const describe = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit) ? "ended although it should run until stopped" : Cause.pretty(exit.cause)

const make = Effect.fnUntraced(function*() {
  const scope = yield* Effect.scope
  const states = yield* Ref.make(new Map<string, ComponentState>())
  const set = (name: string, state: ComponentState) => Ref.update(states, (m) => new Map(m).set(name, state))
  const unique = (name: string, taken: ReadonlyMap<string, ComponentState>): string => {
    if (!taken.has(name)) return name
    let i = 2
    while (taken.has(`${name}#${i}`)) i++
    return `${name}#${i}`
  }

  const supervise = <E, R>(component: string, effect: Effect.Effect<unknown, E, R>, options: SuperviseOptions = {}) =>
    start(component, effect, options, scope)
  const superviseScoped = <E, R>(component: string, effect: Effect.Effect<unknown, E, R>, options: SuperviseOptions = {}) =>
    Effect.flatMap(Effect.scope, (caller) => start(component, effect, options, caller))

  const start = <E, R>(component: string, effect: Effect.Effect<unknown, E, R>, options: SuperviseOptions, into: Scope.Scope) =>
    Effect.gen(function*() {
      const backoffMs = Duration.toMillis(Duration.fromInputUnsafe(options.backoff ?? "100 millis"))
      const backoffMaxMs = Duration.toMillis(Duration.fromInputUnsafe(options.backoffMax ?? "30 seconds"))
      const stableMs = Duration.toMillis(Duration.fromInputUnsafe(options.stableAfter ?? "60 seconds"))
      const name = yield* Ref.modify(states, (m) => {
        const n = unique(component, m)
        return [n, new Map(m).set(n, { _tag: "Running", since: 0 } as ComponentState)]
      })
      const annotations = { component: name, ...options.annotations }
      const loop = Effect.gen(function*() {
        let attempt = 0
        while (true) {
          const started = yield* Clock.currentTimeMillis
          yield* set(name, { _tag: "Running", since: started })
          // in a child fibre: one that interrupts itself must not take this loop down with it
          const exit = yield* Effect.flatMap(Effect.forkChild(effect), Fiber.await)
          // Interrupted because its scope is closing: the next step interrupts this loop too, and it
          // just stops. Interrupted by anything else (say, a queue it read was shut down): it failed.
          if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) yield* Effect.yieldNow
          const now = yield* Clock.currentTimeMillis
          attempt = now - started >= stableMs ? 1 : attempt + 1
          const delayMs = Math.min(backoffMaxMs, backoffMs * 2 ** Math.min(attempt - 1, 30))
          const error = describe(exit)
          yield* set(name, { _tag: "Restarting", attempt, error, since: now })
          // (only here: the component's own log lines keep their format, e.g. `msg=cluster cluster=...`)
          yield* Effect.logError("component failed").pipe(
            Effect.annotateLogs({ ...annotations, attempt, restartInMs: delayMs, error })
          )
          yield* Effect.sleep(Duration.millis(delayMs))
        }
      })
      if (into !== scope) {
        yield* Scope.addFinalizer(into, Ref.update(states, (m) => {
          const copy = new Map(m)
          copy.delete(name)
          return copy
        }))
      }
      yield* Effect.forkIn(loop, into)
    })

  return Supervisor.of({
    supervise,
    superviseScoped,
    states: Ref.get(states),
    ready: Effect.map(Ref.get(states), (m) => [...m.values()].every((s) => s._tag === "Running"))
  })
})
