/**
 * `flotilla run`'s embedded part: in-memory clusters with local kubelets and
 * the controller, the workflows submitted, their progress printed until they
 * end. Loaded by main.ts only when `run` is the command, so the controller's
 * process never loads the embedded runtime (in-memory API server, kubelets,
 * the S3 SDK).
 */
import { Clock, Console, Effect, Option, PubSub } from "effect"
import type { Controller } from "../controller/Controller.js"
import * as ControlChannel from "../embedded/ControlChannel.js"
import * as Embedded from "../embedded/EmbeddedRuntime.js"
import * as LocalArtifacts from "../embedded/LocalArtifacts.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { podNamesConfig } from "../runtime/EnvConfig.js"
import { InMemoryKube } from "../testing/InMemoryKube.js"
import { statusNodes } from "../workflow/model/compressedNodes.js"
import { embeddedControl } from "./control.js"
import { newSuspendHints, suspendHints } from "./suspendHint.js"
import { renderWorkflow } from "./Tree.js"

const podIndex = (pods: ReadonlyArray<{ cluster: string; pod: KubeObject }>) => {
  const map = new Map<string, { name: string; cluster: string; namespace: string }>()
  for (const { cluster, pod } of pods) {
    const id = pod.metadata.annotations?.["workflows.argoproj.io/node-id"]
    if (id) map.set(id, { name: pod.metadata.name ?? "", cluster, namespace: pod.metadata.namespace ?? "" })
  }
  return map
}

/** Prints node phase changes as they happen (a redrawn tree on a terminal). */
const follow = (
  controller: Controller["Service"],
  workflows: ReadonlyArray<KubeObject>,
  output: string
) =>
  Effect.gen(function*() {
    const keys = new Set(workflows.map((w) => `${w.metadata.namespace}/${w.metadata.name}`))
    const tty = process.stdout.isTTY === true && output !== "json"
    const seen = new Map<string, string>()
    const subscription = yield* controller.workflows.subscribe
    const latest = new Map<string, KubeObject>()
    const pending = new Set(keys)
    const allPods = Effect.gen(function*() {
      const out: Array<{ cluster: string; pod: KubeObject }> = []
      for (const view of yield* controller.pool.all) for (const pod of yield* view.pods.list()) out.push({ cluster: view.name, pod })
      return out
    })
    const hinted = new Set<string>()
    const show = (wf: KubeObject) =>
      Effect.gen(function*() {
        const key = `${wf.metadata.namespace}/${wf.metadata.name}`
        latest.set(key, wf)
        if (output === "json") return
        if (tty) {
          const pods = podIndex(yield* allPods)
          const now = yield* Clock.currentTimeMillis
          const text = [...latest.values()].map((w) => renderWorkflow(w, { now, pods })).join("\n\n")
          // While a workflow waits to be resumed, the redrawn screen says how.
          const hints = [...latest.values()].flatMap((w) => suspendHints(w).map((h) => h.text))
          process.stdout.write("\x1b[H\x1b[2J" + text + "\n" + (hints.length > 0 ? `\n${hints.join("\n")}\n` : ""))
          return
        }
        const nodes = statusNodes(wf["status"])
        for (const [id, node] of Object.entries(nodes)) {
          const line = `${node.phase ?? "Pending"}${node.message ? ` ${node.message}` : ""}`
          if (seen.get(`${key}/${id}`) === line) continue
          seen.set(`${key}/${id}`, line)
          yield* Console.log(`${wf.metadata.name}  ${node.name}  ${node.type}  ${line}`)
        }
        // once per suspension: how to go on (again when suspended again)
        for (const hint of newSuspendHints(hinted, wf)) yield* Console.log(hint.text)
      })
    for (const key of keys) {
      const [ns, name] = key.split("/") as [string, string]
      const wf = yield* controller.workflows.get(ns, name)
      if (Option.isSome(wf)) {
        yield* show(wf.value)
        if (Embedded.isCompleted(wf.value)) pending.delete(key)
      }
    }
    while (pending.size > 0) {
      const change = yield* PubSub.take(subscription)
      const key = `${change.object.metadata.namespace}/${change.object.metadata.name}`
      if (!keys.has(key) || change.type === "delete") continue
      yield* show(change.object)
      if (Embedded.isCompleted(change.object)) pending.delete(key)
    }
    const finals = [...keys].map((k) => latest.get(k)!).filter(Boolean)
    if (output === "json") {
      yield* Console.log(JSON.stringify(finals.length === 1 ? finals[0] : finals, null, 2))
    } else {
      const pods = podIndex(yield* allPods)
      const now = yield* Clock.currentTimeMillis
      yield* Console.log("\n" + finals.map((w) => renderWorkflow(w, { now, pods })).join("\n\n"))
    }
    return finals
  })

/**
 * Runs `workflows` (already checked; `placed` are the objects whose clusters and namespaces the
 * embedded clusters must have, `templates` the template objects to create first) to their end.
 * Succeeds with whether every workflow succeeded.
 */
export const runEmbedded = (options: {
  readonly workflows: ReadonlyArray<KubeObject>
  readonly templates: ReadonlyArray<KubeObject>
  readonly placed: ReadonlyArray<KubeObject>
  readonly namespace: string
  readonly simulate: boolean
  readonly output: string
}) =>
  Effect.gen(function*() {
    const { namespace, output, placed, simulate, templates, workflows } = options
    const finals = yield* Effect.scoped(Effect.gen(function*() {
      const podNameVersion = yield* podNamesConfig
      // No repository is configured for an embedded run: artifacts go to a local directory (LocalArtifacts.ts).
      const artifacts = LocalArtifacts.repository(yield* LocalArtifacts.artifactDirConfig)
      const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf(placed, namespace), {
        mode: simulate ? "simulate" : "process",
        controller: { podNameVersion },
        artifactRepository: artifacts.repository
      })
      // The templates and ConfigMaps first: a workflow that references one that is not there yet errors at once.
      for (const t of templates) {
        if (t.kind === "ClusterWorkflowTemplate") yield* admin.create("clusterworkflowtemplates", undefined, t)
        else if (t.kind === "ConfigMap") yield* admin.create("configmaps", t.metadata.namespace, t)
        else yield* admin.create("workflowtemplates", t.metadata.namespace, t)
      }
      // `flotilla resume|suspend|stop|terminate NAME` in another terminal reach these workflows through it.
      const channel = yield* ControlChannel.serve(embeddedControl(admin)).pipe(
        Effect.map(Option.some),
        // a control directory that is not this user's own is an error (someone else may have planted it), the rest a warning
        Effect.catch((e) =>
          e._tag === "ControlDirectoryError"
            ? Effect.fail(e)
            : Effect.logWarning(`no control channel: flotilla resume|suspend|stop|terminate cannot reach this run: ${e.message}`).pipe(Effect.as(Option.none<string>()))
        )
      )
      for (const wf of workflows) {
        yield* admin.create("workflows", wf.metadata.namespace, { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", ...wf })
      }
      if (Option.isSome(channel)) yield* Effect.logInfo("control channel").pipe(Effect.annotateLogs({ socket: channel.value }))
      const finals = yield* follow(controller, workflows, output)
      if (output !== "json") {
        // What each pod printed, from whichever cluster it ran in (like `argo logs`).
        for (const view of yield* controller.pool.all) {
          for (const pod of yield* view.pods.list()) {
            const text = yield* kube.adminClient(view.name).logs(pod.metadata.namespace!, pod.metadata.name!, "main").pipe(
              Effect.orElseSucceed(() => "")
            )
            if (text.trim() === "") continue
            yield* Console.log(`\n--- ${pod.metadata.name} (${view.name}/${pod.metadata.namespace}) ---\n${text.trimEnd()}`)
          }
        }
      }
      // Where the artifacts went (on stderr with --output json, whose stdout is the Workflow objects).
      const where = LocalArtifacts.describe(finals, artifacts)
      if (where !== undefined) yield* (output === "json" ? Console.error(where) : Console.log(`\n${where}`))
      return finals
    })).pipe(Effect.provide(InMemoryKube.layer))
    const ok = finals.length === workflows.length && finals.every((w) => Embedded.phaseOf(w) === "Succeeded")
    return ok
  })
