/**
 * Drives the pure engine step by step: a workflow, what the "clusters" show
 * (pods, task results) and the time; each `tick` stores the returned status
 * back on the workflow like the controller would.
 */
import type { KubeObject } from "../../../src/kube/api/Resources.js"
import type {
  ConfigMapRead,
  EngineAction,
  EngineConfig,
  EngineOutput,
  PodObservation,
  PodPhase,
  TaskResultObservation,
  TemplateLookup
} from "../../../src/workflow/engine/contract.js"
import { reconcile } from "../../../src/workflow/engine/reconcile.js"

export const config: EngineConfig = {
  localCluster: "main",
  podNameVersion: "v2",
  executorImage: "quay.io/argoproj/argoexec:v3.6.19",
  images: { busybox: { cmd: ["sh"], args: ["-c", "echo default"] } }
}

export const T0 = Date.parse("2025-01-01T00:00:00Z")

export const workflow = (spec: Record<string, unknown>, name = "wf", namespace = "argo"): KubeObject => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Workflow",
  metadata: { name, namespace, uid: "uid-1", creationTimestamp: "2025-01-01T00:00:00Z" },
  spec
})

export type CreatePod = Extract<EngineAction, { _tag: "CreatePod" }>

export class Sim {
  wf: KubeObject
  now = T0
  readonly pods = new Map<string, PodObservation>()
  readonly taskResults = new Map<string, TaskResultObservation>()
  last: EngineOutput | undefined
  cfg: EngineConfig = config
  /** The (Cluster)WorkflowTemplates the engine is given. */
  templates: TemplateLookup | undefined
  /**
   * The ConfigMaps of the workflow's namespace, when set: the engine's `needConfigMaps` are read
   * from here (absent = not found) and it runs again, as the Reconciler does.
   */
  configMapStore: Map<string, ConfigMapRead> | undefined
  /** The ConfigMaps of the controller's namespace (`needControllerConfigMaps`), read as `configMapStore`'s. */
  controllerConfigMapStore: Map<string, ConfigMapRead> | undefined

  constructor(wf: KubeObject) {
    this.wf = wf
  }

  tick(): EngineOutput {
    const run = (configMaps?: ReadonlyMap<string, ConfigMapRead>, controllerConfigMaps?: ReadonlyMap<string, ConfigMapRead>) =>
      reconcile({
        workflow: this.wf,
        pods: this.pods,
        taskResults: this.taskResults,
        now: this.now,
        config: this.cfg,
        templates: this.templates,
        ...(configMaps ? { configMaps } : {}),
        ...(controllerConfigMaps ? { controllerConfigMaps } : {})
      })
    let out = run(this.configMapStore === undefined ? undefined : new Map())
    const store = this.configMapStore
    const controllerStore = this.controllerConfigMapStore ?? new Map<string, ConfigMapRead>()
    // as the Reconciler: again while the engine asks for ConfigMaps it was not given
    let read = new Map<string, ConfigMapRead>()
    let controllerRead = new Map<string, ConfigMapRead>()
    for (let round = 0; store !== undefined && round < 4; round++) {
      const need = (out.needConfigMaps ?? []).filter((n) => !read.has(n))
      const needController = (out.needControllerConfigMaps ?? []).filter((n) => !controllerRead.has(n))
      if (need.length === 0 && needController.length === 0) break
      read = new Map([...read, ...need.map((n) => [n, store.get(n) ?? { found: false }] as const)])
      controllerRead = new Map([...controllerRead, ...needController.map((n) => [n, controllerStore.get(n) ?? { found: false }] as const)])
      out = run(read, controllerRead)
    }
    this.wf = { ...this.wf, metadata: { ...this.wf.metadata, labels: { ...this.wf.metadata.labels, ...out.labels } }, status: out.status }
    this.last = out
    return out
  }

  creates(out: EngineOutput = this.last!): Array<CreatePod> {
    return out.actions.filter((a): a is CreatePod => a._tag === "CreatePod")
  }

  /** Pretend the controller created every requested pod; they show up in `phase`. */
  apply(out: EngineOutput = this.last!, phase: PodPhase = "Pending"): Array<CreatePod> {
    const created = this.creates(out)
    for (const c of created) {
      if (!this.pods.has(c.nodeId)) {
        this.pods.set(c.nodeId, {
          nodeId: c.nodeId,
          podName: c.pod.metadata.name!,
          cluster: c.cluster,
          namespace: c.namespace,
          phase
        })
      }
    }
    return created
  }

  setPod(nodeId: string, phase: PodPhase, extra: Partial<PodObservation> = {}): void {
    const p = this.pods.get(nodeId)
    if (p === undefined) throw new Error(`no pod for ${nodeId}`)
    this.pods.set(nodeId, { ...p, phase, ...extra })
  }

  /** Finish a pod (and its task result); `result` becomes outputs.result. */
  finish(nodeId: string, ok = true, outputs?: TaskResultObservation["outputs"]): void {
    this.setPod(nodeId, ok ? "Succeeded" : "Failed", { exitCode: ok ? 0 : 1, finishedAt: new Date(this.now).toISOString().replace(/\.\d+Z$/, "Z") })
    this.taskResults.set(nodeId, { nodeId, outputs: { ...outputs, exitCode: ok ? "0" : "1" }, completed: true })
  }

  /** Run until no new pods are requested, finishing every pod successfully (or per `decide`). */
  runAll(decide: (c: CreatePod) => { ok: boolean; outputs?: TaskResultObservation["outputs"] } = () => ({ ok: true }), max = 50): EngineOutput {
    for (let i = 0; i < max; i++) {
      const out = this.tick()
      const fresh = this.creates(out).filter((c) => !this.pods.has(c.nodeId))
      if (fresh.length === 0 && out.requeueAfterMs === undefined) return out
      if (fresh.length === 0 && out.requeueAfterMs !== undefined) {
        if ((out.status.phase as string) !== "Running") return out
        this.now += out.requeueAfterMs
        continue
      }
      this.apply(out, "Running")
      for (const c of fresh) {
        const d = decide(c)
        this.finish(c.nodeId, d.ok, d.outputs)
      }
    }
    throw new Error("did not settle")
  }

  nodes(): Record<string, Record<string, any>> {
    return (this.wf.status as any).nodes
  }

  node(name: string): Record<string, any> | undefined {
    return Object.values(this.nodes()).find((n) => n.name === name)
  }
}

/** A container or init container of the pod, by name. */
export const container = (pod: KubeObject, name: string): Record<string, any> =>
  [...((pod.spec as any).initContainers ?? []), ...(pod.spec as any).containers].find((c) => c.name === name)

export const envOf = (c: Record<string, any>, name: string): string | undefined =>
  (c.env as Array<any>).find((e) => e.name === name)?.value
