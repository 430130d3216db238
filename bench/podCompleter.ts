/**
 * The benchmark's one pod completer (issue 14): what an executor and a kubelet
 * would do for a workflow pod, done alike for flotilla and for upstream Argo's
 * workflow-controller, so that the side-by-side run measures the controllers
 * and nothing else.
 *
 * It watches the pods labelled `workflows.argoproj.io/workflow` in the given
 * namespaces and, for each pod that is Running (kwok's `pod-ready` stage made
 * it so; on the in-memory kube, whoever created it), in this order:
 *   1. creates the pod's WorkflowTaskResult as argoexec does at the end of a
 *      run (`workflow/executor/taskresult.go` in v4.0.5): name = the pod's
 *      node ID (annotation `workflows.argoproj.io/node-id`), in the pod's
 *      namespace, labels `workflows.argoproj.io/workflow` and the completion
 *      label `workflows.argoproj.io/report-outputs-completed=true` (plus the
 *      controller instance id when the pod has one), owned by the Workflow that
 *      the executor env (`ARGO_WORKFLOW_NAME`/`ARGO_WORKFLOW_UID`) or, failing
 *      that, the pod's owner reference names. One create with the final label,
 *      where argoexec makes three writes (create "false", outputs, label "true"):
 *      both controllers get the same single write, and the benchmark counts
 *      controller requests, not executor ones;
 *   2. patches the pod's status to Succeeded (every container terminated with
 *      exit code 0, as kwok-pod-stages.yaml's `e2e-pod-succeed` would).
 *
 * Why the completer completes the pod itself rather than leaving it to kwok
 * (the `e2e.flotilla.dev/outcome: succeed` annotation): the order is then the
 * executor's, result first and pod done after, every time. Neither controller
 * is then left waiting on a result behind a Succeeded pod (flotilla holds a
 * node whose template reports outputs until its result is in; upstream holds
 * one whose result it has seen incomplete, `IsTaskResultIncomplete`), and
 * kwok's independent timing cannot make the order, and with it the reconciles
 * each controller spends per pod, vary from run to run. The moment the pod is
 * done is known here (`completions`), which the pod-done to node-done latency
 * needs. And the same code path runs against the in-memory kube, which has no
 * kwok. The workload must therefore not carry the kwok outcome annotation;
 * kwok only makes pods Running (`pod-ready`) and deletes them (`pod-delete`).
 *
 * Every API request it makes is counted by verb and resource (`stats`), so the
 * harness's own traffic can be told apart from the controllers'. At most
 * `concurrency` requests are in flight at once. It never touches a pod outside
 * its namespaces, nor one that is not Running.
 */
import { Clock, Context, Duration, Effect, FiberSet, Layer, Schedule, Semaphore, Stream, SubscriptionRef } from "effect"
import type { ConnectionSpec } from "../src/kube/api/Connection.js"
import { KubeClient, type KubeClientShape } from "../src/kube/api/KubeClient.js"
import { KubeConnector } from "../src/kube/api/KubeConnector.js"
import { isTransient, type KubeError } from "../src/kube/api/KubeError.js"
import type { KubeObject, OwnerReference, ResourceKind } from "../src/kube/api/Resources.js"
import { watchResource, type WatchItem } from "../src/kube/cache/Watch.js"
import {
  annotationNodeId,
  labelInstanceId,
  labelReportOutputsCompleted,
  labelWorkflow
} from "../src/util/argoKeys.js"
import { executorEnvOf } from "../src/workflow/engine/pod.js"

export interface PodCompleterOptions {
  /** The namespaces whose workflow pods it completes (one watch each). */
  readonly namespaces: ReadonlyArray<string>
  /** Most API requests in flight at once. Default 16. */
  readonly concurrency?: number
  /** How long a pod "runs": from being seen Running to its task result. Default 0. */
  readonly runFor?: Duration.Input
}

/** One completed pod, for the pod-done to node-done latency. */
export interface Completion {
  readonly namespace: string
  readonly pod: string
  readonly workflow: string
  readonly nodeId: string
  /** Epoch ms (Clock) when the pod's Succeeded status was written. */
  readonly completedAt: number
}

export interface PodCompleterStats {
  /** Requests by `<verb> <resource>` (`patch pods/status`, `create workflowtaskresults`, `watch pods`...). */
  readonly requests: Readonly<Record<string, number>>
  readonly totalRequests: number
  readonly taskResults: number
  readonly completed: number
  /** Pods given up on after retries (logged); a benchmark run with any is suspect. */
  readonly failed: number
}

export class PodCompleter extends Context.Service<PodCompleter, {
  readonly stats: Effect.Effect<PodCompleterStats>
  /** Every pod completed so far, oldest first. */
  readonly completions: Effect.Effect<ReadonlyArray<Completion>>
  /** Waits until at least `count` pods are completed (or given up on). */
  readonly awaitCompleted: (count: number) => Effect.Effect<void>
}>()("flotilla/bench/PodCompleter") {
  /** Completes pods through the `KubeClient` in context (in-memory or a real API server). */
  static readonly layer = (options: PodCompleterOptions): Layer.Layer<PodCompleter, never, KubeClient> =>
    Layer.effect(
      PodCompleter,
      Effect.gen(function*() {
        return yield* make(yield* KubeClient, options)
      })
    )

  /**
   * Completes pods through its own connection, opened with the `KubeConnector`
   * in context: `LiveKubeConnector.layer` for a real cluster (the harness's
   * admin token, so none of its requests are charged to either controller's
   * identity), `InMemoryKube.layer` for `memory://` servers. It needs, in each
   * of its namespaces: get/list/watch/patch on pods (and pods/status), and
   * create/patch on workflowtaskresults.
   */
  static readonly layerConnected = (
    spec: ConnectionSpec,
    options: PodCompleterOptions
  ): Layer.Layer<PodCompleter, KubeError, KubeConnector> =>
    PodCompleter.layer(options).pipe(
      Layer.provide(Layer.effect(
        KubeClient,
        Effect.gen(function*() {
          const connector = yield* KubeConnector
          return yield* connector.connect(spec)
        })
      ))
    )
}

// ---------------------------------------------------------------------------

/** Retries of one request: transient failures only, capped, about a minute in all. */
const retrySchedule = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")]).pipe(Schedule.jittered)
const retryTimes = 15

const make = Effect.fnUntraced(function*(inner: KubeClientShape, options: PodCompleterOptions) {
  const requests: Record<string, number> = {}
  let taskResults = 0
  let failed = 0
  const completions: Array<Completion> = []
  const finished = yield* SubscriptionRef.make(0)
  const permits = yield* Semaphore.make(Math.max(1, options.concurrency ?? 16))
  const runFor = Duration.fromInputUnsafe(options.runFor ?? 0)

  const count = (key: string) => {
    requests[key] = (requests[key] ?? 0) + 1
  }
  /** One counted, bounded, retried request. */
  const call = <A>(key: string, request: Effect.Effect<A, KubeError>): Effect.Effect<A, KubeError> =>
    Effect.suspend(() => {
      count(key)
      return request
    }).pipe(
      Semaphore.withPermits(permits, 1),
      Effect.retry({ schedule: retrySchedule, times: retryTimes, while: isTransient })
    )
  // The watch's lists and watches are counted too (not bounded: they are long-lived).
  const counted: KubeClientShape = {
    ...inner,
    list: (kind: ResourceKind, namespace, listOptions) =>
      Effect.suspend(() => {
        count(`list ${kind}`)
        return inner.list(kind, namespace, listOptions)
      }),
    watch: (kind: ResourceKind, namespace, watchOptions) =>
      Stream.suspend(() => {
        count(`watch ${kind}`)
        return inner.watch(kind, namespace, watchOptions)
      })
  }

  const writeTaskResult = (pod: KubeObject, namespace: string, nodeId: string, workflow: string) => {
    const env = executorEnvOf(pod)
    // As argoexec: owned by the Workflow its executor env names, else the pod's Workflow owner.
    const ownerReferences: ReadonlyArray<OwnerReference> = env["ARGO_WORKFLOW_NAME"] && env["ARGO_WORKFLOW_UID"]
      ? [{ apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", name: env["ARGO_WORKFLOW_NAME"], uid: env["ARGO_WORKFLOW_UID"] }]
      : (pod.metadata.ownerReferences ?? [])
        .filter((o) => o.kind === "Workflow" && o.apiVersion.startsWith("argoproj.io/"))
        .map(({ apiVersion, kind, name, uid }) => ({ apiVersion, kind, name, uid }))
    const instanceId = pod.metadata.labels?.[labelInstanceId] ?? env["ARGO_INSTANCE_ID"]
    const labels: Record<string, string> = {
      [labelWorkflow]: workflow,
      [labelReportOutputsCompleted]: "true",
      ...(instanceId !== undefined && instanceId !== "" ? { [labelInstanceId]: instanceId } : {})
    }
    const result: KubeObject = {
      apiVersion: "argoproj.io/v1alpha1",
      kind: "WorkflowTaskResult",
      metadata: { name: nodeId, namespace, labels, ...(ownerReferences.length > 0 ? { ownerReferences } : {}) }
    }
    return call("create workflowtaskresults", inner.create("workflowtaskresults", namespace, result)).pipe(
      Effect.catchTag("KubeError", (e) =>
        e.reason === "AlreadyExists"
          // A result left by an earlier run of the completer (or argoexec's "false" one): finish it.
          ? call("patch workflowtaskresults", inner.patch("workflowtaskresults", namespace, nodeId, { metadata: { labels } }))
          : Effect.fail(e)),
      Effect.tap(() =>
        Effect.sync(() => {
          taskResults++
        })
      )
    )
  }

  const markSucceeded = (pod: KubeObject, namespace: string, now: string) => {
    const spec = (pod.spec ?? {}) as {
      containers?: ReadonlyArray<{ name?: string; image?: string }>
      initContainers?: ReadonlyArray<{ name?: string; image?: string }>
    }
    type ContainerStatus = { name?: string; state?: { running?: { startedAt?: string } } }
    const current = pod.status as { containerStatuses?: ReadonlyArray<ContainerStatus> } | undefined
    // Keep when kwok said a container started, so both controllers see the same run time.
    const startedAt = (name: string | undefined) =>
      current?.containerStatuses?.find((c) => c.name === name)?.state?.running?.startedAt ?? now
    const terminated = (c: { name?: string; image?: string }) => ({
      name: c.name,
      image: c.image ?? "",
      imageID: "",
      ready: false,
      restartCount: 0,
      started: false,
      state: { terminated: { exitCode: 0, reason: "Completed", startedAt: startedAt(c.name), finishedAt: now } }
    })
    const condition = (type: string) => ({ type, status: "False", reason: "PodCompleted", lastTransitionTime: now })
    return call(
      "patch pods/status",
      inner.patch("pods", namespace, pod.metadata.name!, {
        status: {
          phase: "Succeeded",
          conditions: [condition("Ready"), condition("ContainersReady")],
          ...(spec.initContainers !== undefined ? { initContainerStatuses: spec.initContainers.map(terminated) } : {}),
          containerStatuses: (spec.containers ?? []).map(terminated)
        }
      }, { subresource: "status" })
    )
  }

  const complete = Effect.fnUntraced(function*(pod: KubeObject) {
    const namespace = pod.metadata.namespace!
    const name = pod.metadata.name!
    const workflow = pod.metadata.labels?.[labelWorkflow] ?? ""
    const nodeId = pod.metadata.annotations?.[annotationNodeId]
    if (Duration.isGreaterThan(runFor, Duration.zero)) yield* Effect.sleep(runFor)
    // Without a node ID no controller can match a result to the pod: complete it only.
    if (nodeId !== undefined) yield* writeTaskResult(pod, namespace, nodeId, workflow)
    const now = yield* Clock.currentTimeMillis
    yield* markSucceeded(pod, namespace, new Date(now).toISOString())
    completions.push({ namespace, pod: name, workflow, nodeId: nodeId ?? "", completedAt: now })
  }, (effect, pod) =>
    effect.pipe(
      Effect.catchTag("KubeError", (e) =>
        Effect.logWarning(`pod completer: gave up on pod ${pod.metadata.namespace}/${pod.metadata.name}: ${e.message}`).pipe(
          Effect.andThen(Effect.sync(() => {
            failed++
          }))
        )),
      Effect.ensuring(SubscriptionRef.update(finished, (n) => n + 1))
    ))

  // Pods seen (by uid) and not deleted since: each is completed at most once,
  // however often a relist or an unrelated update shows it Running again.
  const seen = new Set<string>()
  const running = (pod: KubeObject): boolean =>
    (pod.status as { phase?: string } | undefined)?.phase === "Running" &&
    pod.metadata.deletionTimestamp === undefined &&
    pod.metadata.labels?.[labelWorkflow] !== undefined
  const keyOf = (pod: KubeObject) => pod.metadata.uid ?? `${pod.metadata.namespace}/${pod.metadata.name}`
  const toStart = (item: WatchItem): ReadonlyArray<KubeObject> => {
    switch (item._tag) {
      case "Synced":
        return item.items.filter(running)
      case "Upsert":
        return running(item.object) ? [item.object] : []
      case "Delete":
        seen.delete(keyOf(item.object))
        return []
    }
  }

  const fibers = yield* FiberSet.make<void, never>()
  yield* Stream.mergeAll(
    options.namespaces.map((namespace) => watchResource(counted, "pods", namespace, { labelSelector: labelWorkflow })),
    { concurrency: "unbounded" }
  ).pipe(
    Stream.runForEach((item) =>
      Effect.forEach(toStart(item), (pod) => {
        const key = keyOf(pod)
        if (seen.has(key)) return Effect.void
        seen.add(key)
        return FiberSet.run(fibers, complete(pod))
      }, { discard: true })
    ),
    Effect.forkScoped
  )

  return PodCompleter.of({
    stats: Effect.sync(() => {
      const snapshot = { ...requests }
      return {
        requests: snapshot,
        totalRequests: Object.values(snapshot).reduce((a, b) => a + b, 0),
        taskResults,
        completed: completions.length,
        failed
      }
    }),
    completions: Effect.sync(() => [...completions]),
    awaitCompleted: (n) =>
      SubscriptionRef.changes(finished).pipe(
        Stream.takeUntil((done) => done >= n),
        Stream.runDrain
      )
  })
})
