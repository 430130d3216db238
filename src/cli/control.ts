/**
 * `flotilla suspend|resume|stop|terminate NAME...`: change running workflows
 * on a cluster, as `argo suspend|resume|stop|terminate` do. The object change
 * is `workflow/control.ts`; this writes it with the caller's own kubeconfig
 * (`--kubeconfig`/`KUBECONFIG`, or in-cluster), retrying on a conflict with a
 * concurrent status write of the controller, which then acts on it.
 */
import { Clock, Console, Effect, Option, Schedule } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeConnector } from "../kube/api/KubeConnector.js"
import { KubeError } from "../kube/api/KubeError.js"
import { LiveKubeConnector } from "../kube/live/LiveKubeConnector.js"
import { loadLocalConnection } from "../kube/live/LocalConnection.js"
import { isoSeconds } from "../util/time.js"
import { type ControlAction, controlWorkflow } from "../workflow/control.js"

/** A workflow that cannot be changed (completed, or a resume that lacks an output). */
class ControlRefused extends Error {}

/** Read, change and write one workflow; a Conflict (the controller wrote meanwhile) reads it again. */
export const applyControl = (client: KubeClientShape, namespace: string, name: string, action: ControlAction) =>
  Effect.gen(function*() {
    const current = yield* client.get("workflows", namespace, name)
    const now = yield* Clock.currentTimeMillis
    const r = controlWorkflow(current, action, isoSeconds(now))
    if (!r.ok) return yield* Effect.die(new ControlRefused(r.error))
    if (r.changed) yield* client.replace("workflows", namespace, r.workflow)
  }).pipe(
    Effect.retry({ while: (e) => e instanceof KubeError && e.reason === "Conflict", schedule: Schedule.spaced("100 millis"), times: 20 })
  )

const pastTense: Record<ControlAction, string> = {
  suspend: "suspended",
  resume: "resumed",
  stop: "stopped",
  terminate: "terminated"
}

const describe: Record<ControlAction, string> = {
  suspend: "Suspend workflows: nothing new starts, running pods go on (spec.suspend)",
  resume: "Resume workflows: clear spec.suspend and complete their active suspend nodes",
  stop: "Stop workflows: stop their pods, run their exit handlers, end Failed (spec.shutdown: Stop)",
  terminate: "Terminate workflows: stop their pods, skip their exit handlers, end Failed (spec.shutdown: Terminate)"
}

export const controlCommand = (action: ControlAction) =>
  Command.make(
    action,
    {
      names: Argument.String("name").pipe(Argument.withDescription("Workflow names"), Argument.atLeast(1)),
      namespace: Flag.String("namespace").pipe(
        Flag.withAlias("n"),
        Flag.withDescription("The workflows' namespace (default: the kubeconfig context's, else default)"),
        Flag.optional
      ),
      kubeconfig: Flag.String("kubeconfig").pipe(Flag.withDescription("Kubeconfig (default: $KUBECONFIG, else in-cluster)"), Flag.optional),
      context: Flag.String("context").pipe(Flag.withDescription("Context in the kubeconfig"), Flag.optional)
    },
    Effect.fn(function*({ names, namespace, kubeconfig, context }) {
      const spec = yield* loadLocalConnection({ kubeconfig: Option.getOrUndefined(kubeconfig), context: Option.getOrUndefined(context) })
      const ns = Option.getOrElse(namespace, () => spec.namespace ?? "default")
      let failed = 0
      yield* Effect.gen(function*() {
        const connector = yield* KubeConnector
        const client = yield* connector.connect(spec)
        for (const name of names) {
          yield* applyControl(client, ns, name, action).pipe(
            Effect.andThen(Console.log(`workflow ${name} ${pastTense[action]}`)),
            Effect.catchDefect((d) =>
              d instanceof ControlRefused ? Console.error(`${ns}/${name}: ${d.message}`).pipe(Effect.andThen(Effect.sync(() => failed++))) : Effect.die(d)
            ),
            Effect.catchTag("KubeError", (e) => Console.error(`${ns}/${name}: ${e.message}`).pipe(Effect.andThen(Effect.sync(() => failed++))))
          )
        }
      }).pipe(Effect.scoped, Effect.provide(LiveKubeConnector.layer))
      if (failed > 0) process.exitCode = 1
    })
  ).pipe(Command.withDescription(describe[action]))

export const controlCommands = [controlCommand("suspend"), controlCommand("resume"), controlCommand("stop"), controlCommand("terminate")] as const
