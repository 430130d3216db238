/**
 * `flotilla`: run workflows on embedded clusters, run the controller against
 * real clusters, or act as a node agent (the local kubelet) for test clusters.
 */
// deep imports: the package index also loads NodeRedis and with it the whole redis client (about 20 MB of RSS)
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Clock, Console, Context, Effect, Layer, Option, Ref, Result, Scope } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as fs from "node:fs"
import * as os from "node:os"
import * as YAML from "yaml"
import { configMapName, Controller } from "../controller/Controller.js"
import { parseCronSpec, submittedWorkflowFor } from "../controller/cron/spec.js"
import * as Health from "../controller/Health.js"
import * as LeaderElection from "../controller/LeaderElection.js"
import * as Metrics from "../controller/Metrics.js"
import { LiveKubeConnector } from "../kube/live/LiveKubeConnector.js"
import type { KubeObject } from "../kube/api/Resources.js"
import * as ArgoLogger from "../observability/ArgoLogger.js"
import { lintWorkflow } from "../workflow/lint/lint.js"
import type { TemplateLookup } from "../workflow/engine/contract.js"
import { referenceProblems } from "../workflow/engine/templateRefs.js"
import { execWorkflow } from "../workflow/engine/workflowTemplateRef.js"
import { decodeWorkflow } from "../workflow/model/decode.js"
import { decodeTemplateHolderSpec } from "../workflow/model/schema/workflowTemplate.js"
import { argoNamespaceConfig, leaderElectionConfig, podNamesConfig } from "../runtime/EnvConfig.js"
import * as FlotillaLive from "../runtime/FlotillaLive.js"
import { controlCommands } from "./control.js"

/**
 * What the files hold: the workflows to run, and the (Cluster)WorkflowTemplates they may reference
 * and the ConfigMaps their parameters may read (`valueFrom.configMapKeyRef`), both in `templates`.
 */
interface Documents {
  readonly workflows: ReadonlyArray<KubeObject>
  readonly templates: ReadonlyArray<KubeObject>
}

const templateKinds = new Set(["WorkflowTemplate", "ClusterWorkflowTemplate", "ConfigMap"])
/** Kinds found in the workflow's own namespace: one given without a namespace goes beside the workflows. */
const namespacedBeside = (kind: unknown) => kind === "WorkflowTemplate" || kind === "ConfigMap"

/**
 * A CronWorkflow given to `flotilla run` (or lint) runs once now, as `argo submit --from
 * cronwf/NAME` does: the Workflow upstream's `ConvertCronWorkflowToWorkflow` makes of it
 * (controller/cron/spec.ts), named `<cron>-<5 random characters>`; its spec is checked first.
 */
const workflowOfCron = (file: string, value: KubeObject, namespace: string, nowMs: number): KubeObject => {
  const metadata = { ...value.metadata, namespace: value.metadata?.namespace ?? namespace }
  if (!metadata.name) throw new Error(`${file}: CronWorkflow metadata.name is required`)
  const cron = { ...value, metadata }
  const parsed = parseCronSpec(cron)
  if (Result.isFailure(parsed)) throw new Error(`${file}: CronWorkflow ${metadata.name}: ${parsed.failure}`)
  return submittedWorkflowFor(cron, parsed.success, nowMs)
}

const readDocuments = (files: ReadonlyArray<string>, namespace: string, nowMs: number): Documents => {
  const workflows: Array<KubeObject> = []
  const templates: Array<KubeObject> = []
  for (const file of files) {
    const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))
    for (const doc of docs) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`)
      const read = doc.toJS() as KubeObject | null
      if (!read) continue
      const value = read.kind === "CronWorkflow" ? workflowOfCron(file, read, namespace, nowMs) : read
      const kind = String(value.kind)
      if (kind !== "Workflow" && !templateKinds.has(kind)) {
        throw new Error(`${file}: kind ${kind} is not a Workflow, CronWorkflow, WorkflowTemplate, ClusterWorkflowTemplate or ConfigMap`)
      }
      const metadata = { ...value.metadata }
      // A WorkflowTemplate or ConfigMap that names no namespace goes beside the workflows (see `placeTemplates`).
      if (kind === "ClusterWorkflowTemplate" || (namespacedBeside(kind) && !metadata.namespace)) delete metadata.namespace
      else if (!metadata.namespace) metadata.namespace = namespace
      if (!metadata.name) {
        if (kind !== "Workflow" || !metadata.generateName) throw new Error(`${file}: metadata.name${kind === "Workflow" ? " or metadata.generateName" : ""} is required`)
        // as Kubernetes' generateName: the prefix cut to 58 characters, so the name fits 63
        metadata.name = String(metadata.generateName).slice(0, 58) + Math.random().toString(36).slice(2, 7)
      }
      ;(kind === "Workflow" ? workflows : templates).push({ ...value, metadata })
    }
  }
  return { workflows, templates }
}

/**
 * A WorkflowTemplate (or a parameters' ConfigMap) is found in its workflow's namespace only (as
 * upstream): one given without a namespace is placed in every namespace the workflows given with it
 * use (the default one if none).
 */
const placeTemplates = (templates: ReadonlyArray<KubeObject>, workflows: ReadonlyArray<KubeObject>, namespace: string): Array<KubeObject> => {
  const namespaces = new Set(workflows.map((wf) => wf.metadata.namespace!))
  if (namespaces.size === 0) namespaces.add(namespace)
  return templates.flatMap((t) =>
    !namespacedBeside(t.kind) || t.metadata.namespace
      ? [t]
      : [...namespaces].map((ns) => ({ ...t, metadata: { ...t.metadata, namespace: ns } }))
  )
}

/** The template objects as the engine is given them. */
const lookupOf = (templates: ReadonlyArray<KubeObject>): TemplateLookup => ({
  workflowTemplates: new Map(templates.filter((t) => t.kind === "WorkflowTemplate").map((t) => [`${t.metadata.namespace}/${t.metadata.name}`, t])),
  clusterWorkflowTemplates: new Map(templates.filter((t) => t.kind === "ClusterWorkflowTemplate").map((t) => [t.metadata.name!, t]))
})

/**
 * A workflow's reference problems and, for one with `workflowTemplateRef`, the
 * workflow as it runs (the template's spec joined under its own).
 */
const resolveReferences = (wf: KubeObject, lookup: TemplateLookup) => {
  const exec = execWorkflow(wf, lookup)
  if (!exec.ok) return { workflow: wf, problems: [{ path: "spec.workflowTemplateRef", message: exec.error }] }
  const decoded = decodeWorkflow(exec.workflow)
  const stub = { metadata: { name: wf.metadata.name ?? "", namespace: wf.metadata.namespace ?? "default" }, spec: { templates: [] } }
  return { workflow: exec.workflow, problems: referenceProblems(decoded.ok ? decoded.value : stub, exec.workflow.spec, lookup) }
}

const files = Argument.String("file").pipe(Argument.withDescription("Workflow YAML files, and the WorkflowTemplate, ClusterWorkflowTemplate and ConfigMap files they reference"), Argument.variadic({ min: 1 }))
const outputFlag = Flag.Literals("output", ["tree", "json"]).pipe(
  Flag.withAlias("o"),
  Flag.withDescription("tree: live node tree; json: the final Workflow object(s)"),
  Flag.withDefault("tree")
)
const namespaceFlag = Flag.String("namespace").pipe(
  Flag.withAlias("n"),
  Flag.withDescription("Namespace for workflows that name none"),
  Flag.withDefault("default")
)
const simulateFlag = Flag.Boolean("simulate").pipe(
  Flag.withDescription("Do not run commands: pods follow their flotilla.dev/simulate-* annotations"),
  Flag.withDefault(false)
)

const run = Command.make(
  "run",
  { files, output: outputFlag, namespace: namespaceFlag, simulate: simulateFlag },
  Effect.fn(function*({ files, output, namespace, simulate }) {
    const now = yield* Clock.currentTimeMillis
    const docs = yield* Effect.try({ try: () => readDocuments(files, namespace, now), catch: (e) => e as Error })
    const workflows = docs.workflows
    if (workflows.length === 0) return yield* Effect.fail(new Error("no Workflow in the files given"))
    const templates = placeTemplates(docs.templates, workflows, namespace)
    const lookup = lookupOf(templates)
    // Every cluster and namespace the workflows' own templates and the referenced ones name.
    const placed: Array<KubeObject> = []
    for (const wf of workflows) {
      const resolved = resolveReferences(wf, lookup)
      const problem = resolved.problems[0]
      if (problem !== undefined) {
        return yield* Effect.fail(new Error(`workflow ${wf.metadata.namespace}/${wf.metadata.name}: ${problem.path}: ${problem.message}`))
      }
      const decoded = decodeWorkflow(resolved.workflow)
      if (!decoded.ok) return yield* Effect.fail(new Error(`workflow ${wf.metadata.namespace}/${wf.metadata.name}: ${decoded.error}`))
      placed.push(resolved.workflow)
      for (const t of templates) placed.push({ ...t, metadata: { ...t.metadata, namespace: wf.metadata.namespace } })
    }
    // the embedded runtime (in-memory clusters, local kubelets, artifact stores) is loaded only for `run`
    const { runEmbedded } = yield* Effect.promise(() => import("./embeddedRun.js"))
    const ok = yield* runEmbedded({ workflows, templates, placed, namespace, simulate, output })
    if (!ok) process.exitCode = 1
  })
).pipe(Command.withDescription("Run workflows on embedded in-memory clusters (the pods' commands run on this machine)"))

const kubeconfigFlag = Flag.String("kubeconfig").pipe(
  Flag.withDescription("Kubeconfig of the controller's identity on its own cluster (default: in-cluster)"),
  Flag.optional
)
const contextFlag = Flag.String("context").pipe(Flag.withDescription("Context in --kubeconfig"), Flag.optional)

const controller = Command.make(
  "controller",
  {
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
    namespace: Flag.String("namespace").pipe(
      Flag.withDescription("System namespace holding workflow-controller-configmap and argo-kubeconfig (default: $ARGO_NAMESPACE, else argo)"),
      Flag.withFallbackConfig(argoNamespaceConfig)
    ),
    configmap: Flag.String("configmap").pipe(
      Flag.withDescription("Name of the controller configmap in the system namespace (as Argo's --configmap)"),
      Flag.withDefault(configMapName)
    ),
    workers: Flag.Int("workflow-workers").pipe(Flag.withDefault(32)),
    healthPort: Flag.Int("health-port").pipe(Flag.withDescription("/healthz port (0 disables)"), Flag.withDefault(6060)),
    metricsPort: Flag.Int("metrics-port").pipe(Flag.withDescription("/metrics port (0 disables)"), Flag.withDefault(9090)),
    bindAddress: Flag.String("bind-address").pipe(
      Flag.withDescription("Address /healthz and /metrics listen on (default: all interfaces)"),
      Flag.withDefault("")
    ),
    // Unlimited by default (upstream's controller defaults to --qps 20 --burst 30): flotilla makes
    // few requests per workflow, works from watch caches, and bounds its own concurrency
    // (--workflow-workers); API Priority and Fairness protects the API server on its side. Set a
    // limit to cap what this controller may ask of each cluster.
    qps: Flag.Finite("qps").pipe(
      Flag.withDescription(
        "Client-side limit of API requests per second on each cluster connection, as Argo's --qps (token buckets, one for argoproj.io and one for the other APIs, as Argo's two clientsets; 0: no limit, the default)"
      ),
      Flag.withDefault(0)
    ),
    burst: Flag.Int("burst").pipe(
      Flag.withDescription("Requests a connection may send at once before --qps paces them (the bucket size), as Argo's --burst (default: --qps rounded up)"),
      Flag.withDefault(0)
    )
  },
  Effect.fn(function*({ kubeconfig, context, namespace, configmap, workers, healthPort, metricsPort, bindAddress, qps, burst }) {
    // Before connecting: a malformed variable fails at once, naming it.
    const election = yield* leaderElectionConfig
    const podNameVersion = yield* podNamesConfig
    yield* Effect.gen(function*() {
      // the same connection and controller layer an embedder gets from FlotillaLive
      const connection = yield* FlotillaLive.connect({
        kubeconfig: Option.getOrUndefined(kubeconfig),
        context: Option.getOrUndefined(context)
      })
      const localClient = connection.localClient
      // Served by every replica: a standby answers /healthz too, so its probes pass while it waits.
      const leading = yield* Ref.make(Option.none<Controller["Service"]>())
      const host = bindAddress === "" ? undefined : bindAddress
      if (healthPort > 0) {
        yield* Health.serve(
          Effect.map(Ref.get(leading), Option.map((c) => c.pool)),
          healthPort,
          host,
          Effect.map(Ref.get(leading), Option.map((c) => c.supervisor))
        )
      }
      if (metricsPort > 0) yield* Metrics.serve(Ref.get(leading), metricsPort, host)
      // Interruptible throughout (a lost lease or SIGTERM must stop a controller still waiting for its caches).
      const lead = Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Ref.set(leading, Option.none()))
        const built = yield* Layer.build(FlotillaLive.controllerLayer(connection, {
          systemNamespace: namespace,
          configMapName: configmap,
          workers,
          podNameVersion
        }))
        const controller = Context.get(built, Controller)
        yield* Ref.set(leading, Option.some(controller))
      })
      if (election.disabled) {
        yield* lead
        return yield* Effect.never
      }
      yield* LeaderElection.run(localClient, {
        namespace,
        name: election.leaseName,
        identity: Option.getOrElse(election.identity, () => `${os.hostname()}-${process.pid}`),
        leaseDuration: election.leaseDuration,
        renewDeadline: election.renewDeadline,
        retryPeriod: election.retryPeriod
      }, lead)
      // Like Argo: a replica that lost the lease exits and is restarted fresh.
      process.exitCode = 1
    }).pipe(
      Effect.scoped,
      Effect.provide(qps > 0 ? LiveKubeConnector.layerWith({ rateLimit: { qps, burst } }) : LiveKubeConnector.layer)
    )
  })
).pipe(Command.withDescription("Run the controller against real clusters"))

const kubelet = Command.make(
  "kubelet",
  {
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
    nodeName: Flag.String("node-name").pipe(Flag.withDescription("The node this agent runs pods for")),
    register: Flag.Boolean("register-node").pipe(Flag.withDescription("Create the Node object"), Flag.withDefault(true)),
    artifactEndpoints: Flag.String("artifact-allow-endpoint").pipe(
      Flag.withDescription(
        "An endpoint (host:port or URL) pods' artifact calls may reach although on a loopback, link-local or private address: the artifact repository's (repeatable; others there are refused)"
      ),
      Flag.atLeast(0)
    ),
    simulate: simulateFlag
  },
  Effect.fn(function*(options) {
    // the node agent's modules (the kubelet, artifact stores) are loaded only for `kubelet`
    const { runNodeAgent } = yield* Effect.promise(() => import("./nodeAgent.js"))
    yield* runNodeAgent(options)
  })
).pipe(Command.withDescription("Node agent: run pods bound to a node as local processes (test clusters)"))

const lint = Command.make(
  "lint",
  { files },
  Effect.fn(function*({ files }) {
    const now = yield* Clock.currentTimeMillis
    let bad = 0
    const empty: Documents = { workflows: [], templates: [] }
    const byFile: Array<readonly [string, Documents]> = []
    for (const file of files) {
      const docs = yield* Effect.try({ try: () => readDocuments([file], "default", now), catch: (e) => e as Error }).pipe(
        Effect.catch((e) => Console.error(`${file}: ${e.message}`).pipe(Effect.andThen(Effect.sync(() => { bad++ })), Effect.as(empty)))
      )
      byFile.push([file, docs])
    }
    // templateRef and workflowTemplateRef resolve against the template objects of every file given.
    const lookup = lookupOf(placeTemplates(byFile.flatMap(([, d]) => d.templates), byFile.flatMap(([, d]) => d.workflows), "default"))
    for (const [file, { templates, workflows }] of byFile) {
      for (const t of templates) {
        if (t.kind === "ConfigMap") continue // data for parameters, nothing to check
        const decoded = decodeTemplateHolderSpec(t)
        if (decoded.ok) yield* Console.log(`${file}: ok`)
        else {
          bad++
          for (const p of decoded.problems) yield* Console.error(`${file}: ${t.kind} ${t.metadata.name}: ${p.path}: ${p.message}`)
        }
      }
      for (const wf of workflows) {
        const resolved = resolveReferences(wf, lookup)
        const issues = [...resolved.problems, ...lintWorkflow(resolved.workflow)]
        if (issues.length === 0) yield* Console.log(`${file}: ok`)
        else {
          bad++
          for (const issue of issues) yield* Console.error(`${file}: ${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`)
        }
      }
    }
    if (bad > 0) process.exitCode = 1
  })
).pipe(Command.withDescription("Check workflows without running them"))

const flotilla = Command.make("flotilla").pipe(
  Command.withDescription("Argo Workflows compatible controller whose templates may run in other clusters and namespaces"),
  Command.withSubcommands([run, controller, kubelet, lint, ...controlCommands])
)

flotilla.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(Layer.mergeAll(NodeServices.layer, ArgoLogger.layer)),
  NodeRuntime.runMain
)

export type { Scope }
