/**
 * `flotilla suspend|resume|stop|terminate NAME...`: change running workflows
 * on a cluster, as `argo suspend|resume|stop|terminate` do. The object change
 * is `workflow/control.ts`; this writes it with the caller's own kubeconfig
 * (`--kubeconfig`/`KUBECONFIG`, or in-cluster), retrying on a conflict with a
 * concurrent status write of the controller, which then acts on it.
 *
 * With `--embedded` or `--pid`, or when no kubeconfig is at hand at all (no `--kubeconfig`, no
 * `KUBECONFIG`, not in a pod), it acts on the workflows of this user's running `flotilla run`
 * processes instead, through their control channels (embedded/ControlChannel.ts); `--pid` picks
 * one run when several have the name. An error then says why it looked there and where.
 */
import { Clock, Config, Console, Effect, Option, Schedule, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as fs from "node:fs"
import * as ControlChannel from "../embedded/ControlChannel.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeConnector } from "../kube/api/KubeConnector.js"
import { LiveKubeConnector } from "../kube/live/LiveKubeConnector.js"
import { loadLocalConnection } from "../kube/live/LocalConnection.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { isoSeconds } from "../util/time.js"
import { type ControlAction, controlWorkflow } from "../workflow/control.js"

/** A workflow that cannot be changed (completed, or a resume that lacks an output): upstream's reason. */
export class ControlRefused extends Schema.TaggedError<ControlRefused>()("ControlRefused", {
  message: Schema.String
}) {}

/** Read, change and write one workflow; a Conflict (the controller wrote meanwhile) reads it again. */
export const applyControl = (client: KubeClientShape, namespace: string, name: string, action: ControlAction) =>
  Effect.gen(function*() {
    const current = yield* client.get("workflows", namespace, name)
    const now = yield* Clock.currentTimeMillis
    const r = controlWorkflow(current, action, isoSeconds(now))
    if (!r.ok) return yield* new ControlRefused({ message: r.error })
    if (r.changed) yield* client.replace("workflows", namespace, r.workflow)
  }).pipe(
    Effect.retry({
      while: (e) => e._tag === "KubeError" && e.reason === "Conflict",
      schedule: Schedule.spaced("100 millis"),
      times: 20
    })
  )

const pastTense: Record<ControlAction, string> = {
  suspend: "suspended",
  resume: "resumed",
  stop: "stopped",
  terminate: "terminated"
}

/**
 * What a `flotilla run` process answers on its control channel (embedded/ControlChannel.ts): its
 * workflows of a name, and `applyControl` on its in-memory clusters with `admin`, the outcome in
 * the words `flotilla ACTION` prints against a real cluster.
 */
export const embeddedControl = (admin: KubeClientShape): ControlChannel.Handlers => ({
  lookup: (request) =>
    admin.list("workflows", request.namespace).pipe(
      Effect.map((list) =>
        (list.items as ReadonlyArray<KubeObject>)
          .filter((wf) => wf.metadata.name === request.name)
          .map((wf) => wf.metadata.namespace ?? "")
      ),
      Effect.orElseSucceed((): ReadonlyArray<string> => [])
    ),
  control: (request) =>
    applyControl(admin, request.namespace, request.name, request.action).pipe(
      Effect.as<ControlChannel.ControlAnswer>({ outcome: "done", message: `workflow ${request.name} ${pastTense[request.action]}` }),
      Effect.catchTag("ControlRefused", (e) => Effect.succeed<ControlChannel.ControlAnswer>({ outcome: "refused", message: e.message })),
      Effect.catchTag("KubeError", (e) =>
        Effect.succeed<ControlChannel.ControlAnswer>(
          e.reason === "NotFound"
            ? { outcome: "notFound", message: `workflow ${request.namespace}/${request.name} not found` }
            : { outcome: "failed", message: e.message }
        ))
    )
})

const serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

/** Whether any kubeconfig is at hand: `--kubeconfig`, `KUBECONFIG`, or running in a pod (in-cluster). */
const kubeconfigAvailable = (flag: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isSome(flag)) return true
    const env = yield* Config.all({
      kubeconfig: Config.option(Config.String("KUBECONFIG")),
      serviceHost: Config.option(Config.String("KUBERNETES_SERVICE_HOST"))
    })
    if (Option.isSome(Option.filter(env.kubeconfig, (v) => v !== ""))) return true
    return Option.isSome(Option.filter(env.serviceHost, (v) => v !== "")) && fs.existsSync(serviceAccountToken)
  })

/** Why a control command went to the embedded runs without `--embedded`. */
export const noKubeconfig = "no kubeconfig (--kubeconfig, KUBECONFIG or in-cluster), so embedded runs were looked for"

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
        Flag.withDescription("The workflows' namespace (default: the kubeconfig context's, else default; embedded: any)"),
        Flag.optional
      ),
      kubeconfig: Flag.String("kubeconfig").pipe(Flag.withDescription("Kubeconfig (default: $KUBECONFIG, else in-cluster)"), Flag.optional),
      context: Flag.String("context").pipe(Flag.withDescription("Context in the kubeconfig"), Flag.optional),
      pid: Flag.Int("pid").pipe(
        Flag.withDescription("Embedded: the `flotilla run` process (its pid) whose workflow this is, when several runs have that name"),
        Flag.optional
      ),
      embedded: Flag.Boolean("embedded").pipe(
        Flag.withDescription("Act on the workflows of a running `flotilla run` of this user (the default when no kubeconfig is at hand)"),
        Flag.withDefault(false)
      )
    },
    Effect.fn(function*({ names, namespace, kubeconfig, context, pid, embedded }) {
      let failed = 0
      const refuse = (name: string, ns: string | undefined, message: string) =>
        Console.error(`${ns === undefined ? "" : `${ns}/`}${name}: ${message}`).pipe(Effect.andThen(Effect.sync(() => failed++)))
      // --pid names an embedded run; with neither flag, embedded when no kubeconfig is at hand (and the error says so)
      const chosen = embedded || Option.isSome(pid) ? "asked" : (yield* kubeconfigAvailable(kubeconfig)) ? "no" : "noKubeconfig"
      if (chosen !== "no") {
        const ns = Option.getOrUndefined(namespace)
        const why = chosen === "noKubeconfig" ? `${noKubeconfig}; ` : ""
        const options = Option.isSome(pid) ? { pid: pid.value } : {}
        for (const name of names) {
          yield* ControlChannel.controlEmbedded(name, ns, action, options).pipe(
            Effect.flatMap((answer) => answer.outcome === "done" ? Console.log(answer.message) : refuse(name, ns, answer.message)),
            Effect.catchTag("ControlChannelError", (e) => refuse(name, ns, `${why}${e.message}`))
          )
        }
        if (failed > 0) process.exitCode = 1
        return
      }
      const spec = yield* loadLocalConnection({ kubeconfig: Option.getOrUndefined(kubeconfig), context: Option.getOrUndefined(context) })
      const ns = Option.getOrElse(namespace, () => spec.namespace ?? "default")
      yield* Effect.gen(function*() {
        const connector = yield* KubeConnector
        const client = yield* connector.connect(spec)
        for (const name of names) {
          yield* applyControl(client, ns, name, action).pipe(
            Effect.andThen(Console.log(`workflow ${name} ${pastTense[action]}`)),
            Effect.catchTag("ControlRefused", (e) => refuse(name, ns, e.message)),
            Effect.catchTag("KubeError", (e) => refuse(name, ns, e.message))
          )
        }
      }).pipe(Effect.scoped, Effect.provide(LiveKubeConnector.layer))
      if (failed > 0) process.exitCode = 1
    })
  ).pipe(Command.withDescription(describe[action]))

export const controlCommands = [controlCommand("suspend"), controlCommand("resume"), controlCommand("stop"), controlCommand("terminate")] as const
