/**
 * Helpers for the controller's failure-mode tests: small intervals so the
 * controller's own backoffs take milliseconds, set-up with the controller
 * started separately, workflow builders, secret writers, a log capture in
 * Argo's line format, and audit-log queries.
 */
import { Duration, Effect, Exit, Layer, Logger, Option, Schedule, Scope } from "effect"
import * as YAML from "yaml"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { argoLogger } from "../../src/observability/ArgoLogger.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

/** Controller intervals for tests: every backoff in the 100 ms range. */
export const fastController: Embedded.ControllerTuning = {
  timing: {
    cacheWait: "50 millis",
    retry: "200 millis",
    leaseBackoff: "50 millis",
    leaseBackoffMax: "300 millis",
    requestTimeout: "1 second",
    clusterCheck: "100 millis",
    firstOrphanSweep: "1 hour"
  },
  watch: { schedule: Schedule.spaced("100 millis"), openTimeout: "1 second" }
}

export const fast = (options: Embedded.StartOptions = {}): Embedded.StartOptions => ({
  mode: "simulate",
  ...options,
  controller: { ...fastController, ...options.controller }
})

// --- logs -------------------------------------------------------------------

export interface LogCapture {
  readonly lines: Array<string>
  readonly layer: Layer.Layer<never>
}

/** Captures every log line, formatted as the Argo-style controller prints it. */
export const captureLogs = (): LogCapture => {
  const lines: Array<string> = []
  return { lines, layer: Logger.layer([Logger.map(argoLogger, (line) => void lines.push(line))]) }
}

/** Runs a test body on a fresh in-memory Kubernetes, with logs captured. */
export const inMemory = <A, E>(body: (logs: LogCapture) => Effect.Effect<A, E, any>): Effect.Effect<A, E> => {
  const logs = captureLogs()
  return Effect.suspend(() => body(logs)).pipe(
    Effect.scoped,
    Effect.provide(InMemoryKube.layer),
    Effect.provide(logs.layer)
  ) as Effect.Effect<A, E>
}

// --- set-up with the controller started separately ----------------------------

/**
 * The seed's clusters, secrets and kubelets for `workflows`, but no
 * controller yet. A given `systemKubeconfig` replaces argo-kubeconfig before
 * the kubelets start.
 */
export const provisioned = (
  workflows: ReadonlyArray<KubeObject>,
  options: { readonly systemKubeconfig?: string } = {}
) =>
  Effect.gen(function*() {
    const kube = yield* InMemoryKube
    const placement = Embedded.placementOf(workflows)
    yield* Embedded.provision(placement)
    const admin = kube.adminClient("main")
    if (options.systemKubeconfig !== undefined) yield* putSystemKubeconfig(admin, options.systemKubeconfig)
    yield* Embedded.startKubelets(placement, fast())
    return { kube, admin }
  })

/** A controller in a scope of its own, and the effect that stops it (as a crash or restart would). */
export const stoppableController = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const { controller } = yield* Embedded.startController(fast()).pipe(Scope.provide(scope))
  return { controller, stop: Scope.close(scope, Exit.void) }
})

// --- workflows --------------------------------------------------------------

export interface StepSpec {
  /** Target cluster (absent: the workflow's own). */
  readonly cluster?: string
  /** Target namespace (absent: the workflow's own). */
  readonly namespace?: string
  /** `flotilla.dev/simulate-*` and other pod annotations. */
  readonly annotations?: Readonly<Record<string, string>>
}

export interface WorkflowSpec extends StepSpec {
  readonly name: string
  readonly namespace_?: string
  readonly serviceAccountName?: string
  readonly podGC?: string
  /** More than one: a steps workflow running them in sequence (templates s0, s1, ...). */
  readonly steps?: ReadonlyArray<StepSpec>
}

const podTemplate = (name: string, step: StepSpec) => ({
  name,
  ...(step.cluster ? { cluster: step.cluster } : {}),
  ...(step.namespace ? { namespace: step.namespace } : {}),
  ...(step.annotations ? { metadata: { annotations: step.annotations } } : {}),
  container: { image: "busybox", command: ["true"] }
})

/** A workflow of one pod (or a sequence of pods) placed as asked. */
export const workflow = (spec: WorkflowSpec): KubeObject => {
  const steps = spec.steps ?? [spec]
  const templates = steps.length === 1
    ? [podTemplate("main", steps[0]!)]
    : [
      { name: "main", steps: steps.map((_, i) => [{ name: `s${i}`, template: `s${i}` }]) },
      ...steps.map((step, i) => podTemplate(`s${i}`, step))
    ]
  return {
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Workflow",
    metadata: { name: spec.name, namespace: spec.namespace_ ?? "local" },
    spec: {
      entrypoint: "main",
      serviceAccountName: spec.serviceAccountName ?? "workflow",
      ...(spec.podGC ? { podGC: { strategy: spec.podGC } } : {}),
      templates
    }
  }
}

export interface NodeView {
  readonly id: string
  readonly name: string
  readonly type: string
  readonly phase: string
  readonly message?: string
}

export const nodesOf = (wf: KubeObject | undefined): ReadonlyArray<NodeView> =>
  Object.entries(((wf?.["status"] as { nodes?: Record<string, Omit<NodeView, "id">> } | undefined)?.nodes) ?? {})
    .map(([id, n]) => ({ id, ...n }))

export const podNodes = (wf: KubeObject | undefined) => nodesOf(wf).filter((n) => n.type === "Pod")

/** Some pod node is Running (its pod has started). */
export const podRunning = (wf: KubeObject | undefined): boolean => podNodes(wf).some((n) => n.phase === "Running")

export const messageOf = (wf: KubeObject | undefined): string =>
  ((wf?.["status"] as { message?: string } | undefined)?.message) ?? ""

export const waitFor = (
  controller: Embedded.StartResult["controller"],
  wf: KubeObject,
  predicate: (wf: KubeObject | undefined) => boolean,
  what: string,
  timeout: Duration.Input = "20 seconds"
) =>
  Embedded.awaitWorkflow(controller, wf.metadata.namespace!, wf.metadata.name!, predicate).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        controller.workflows.get(wf.metadata.namespace!, wf.metadata.name!).pipe(
          Effect.flatMap((current) =>
            Effect.die(
              new Error(
                `workflow ${wf.metadata.namespace}/${wf.metadata.name}: ${what} did not happen within ${
                  Duration.format(Duration.fromInputUnsafe(timeout))
                }; now: ${JSON.stringify(Option.getOrUndefined(current)?.["status"] ?? null)}`
              )
            )
          )
        )
    })
  )

export const completed = (controller: Embedded.StartResult["controller"], wf: KubeObject, timeout?: Duration.Input) =>
  waitFor(controller, wf, Embedded.isCompleted, "completion", timeout)

/** Polls `check` (for conditions no informer announces) until it returns a value. */
export const eventually = <A, E, R>(
  what: string,
  check: Effect.Effect<A | undefined, E, R>,
  timeout: Duration.Input = "20 seconds"
): Effect.Effect<A, E, R> =>
  check.pipe(
    Effect.flatMap((a) => (a === undefined ? Effect.fail("again" as const) : Effect.succeed(a))),
    Effect.retry({ while: (e) => e === "again", schedule: Schedule.spaced("25 millis") }),
    Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.die(new Error(`${what} did not happen`)) })
  ) as Effect.Effect<A, E, R>

// --- secrets ----------------------------------------------------------------

export const secret = (namespace: string, name: string, value: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { namespace, name },
  type: "Opaque",
  data: { value: Buffer.from(value, "utf8").toString("base64") }
})

/** Creates or replaces a secret with item `value`. */
export const putSecret = (admin: KubeClientShape, namespace: string, name: string, value: string) =>
  Effect.gen(function*() {
    const current = yield* admin.get("secrets", namespace, name).pipe(Effect.option)
    const object = secret(namespace, name, value)
    if (Option.isNone(current)) return yield* admin.create("secrets", namespace, object)
    return yield* admin.replace("secrets", namespace, {
      ...object,
      metadata: { ...object.metadata, resourceVersion: current.value.metadata.resourceVersion! }
    })
  })

export interface ContextSpec {
  readonly name: string
  readonly namespace?: string | undefined
  readonly token?: string
}

/** argo-kubeconfig content for these clusters (the controller's token). */
export const systemKubeconfig = (contexts: ReadonlyArray<ContextSpec>): string =>
  Embedded.kubeconfigYaml(contexts.map((c) => ({ ...c, token: c.token ?? Embedded.tokens.controller })), true)

export const putSystemKubeconfig = (admin: KubeClientShape, value: string) =>
  putSecret(admin, Embedded.systemNamespace, "argo-kubeconfig", value)

/** A user kubeconfig document, as YAML. */
export const yaml = (doc: unknown): string => YAML.stringify(doc)

// --- audit log ---------------------------------------------------------------

export const podCreates = (kube: InMemoryKube["Service"], cluster: string) =>
  kube.requests(cluster).pipe(Effect.map((rs) => rs.filter((r) => r.verb === "create" && r.resource === "pods")))

/** Pods carrying a workflow's label, in every cluster. */
export const podsOfWorkflow = (kube: InMemoryKube["Service"], name: string) =>
  Effect.gen(function*() {
    const out: Array<KubeObject & { cluster: string }> = []
    for (const cluster of yield* kube.clusters) {
      for (const pod of yield* kube.objects(cluster, "pods")) {
        if (pod.metadata.labels?.["workflows.argoproj.io/workflow"] === name) out.push({ ...pod, cluster })
      }
    }
    return out
  })

export const countBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1
  return out
}
