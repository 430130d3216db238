/**
 * The WorkflowTemplates (of the controller's namespace, or all) and the
 * ClusterWorkflowTemplates of the local cluster, as informers: what the engine
 * is given for `templateRef` and `spec.workflowTemplateRef`. A reconcile asks
 * for the template objects one workflow names, following the ones they name in
 * turn, by key from the caches, never from the API server. Upstream's
 * `wftmplInformer` / `cwftmplInformer` (workflow/controller/controller.go).
 */
import { Context, Effect, Layer, Option } from "effect"
import { KubeClient } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { Informer as Informers } from "../kube/cache/Informer.js"
import { Supervisor } from "../runtime/Supervisor.js"
import type { TemplateLookup } from "../workflow/engine/contract.js"
import { holderRefsIn } from "../workflow/engine/templateRefs.js"
import { ControllerSettings } from "./ControllerSettings.js"

/** A workflow that names no template object is given none. */
const noTemplates: TemplateLookup = { workflowTemplates: new Map(), clusterWorkflowTemplates: new Map() }

export class TemplateCache extends Context.Service<TemplateCache, {
  /** Both caches hold their first listing: until then a template not seen may yet exist. */
  readonly ready: Effect.Effect<boolean>
  /** The template objects `workflow` names (by `templateRef` or `workflowTemplateRef`), and those they name. */
  readonly lookupFor: (workflow: KubeObject) => Effect.Effect<TemplateLookup>
}>()("flotilla/controller/TemplateCache") {
  /** The informers' watches live as long as the layer (supervised components). */
  static readonly layer = Layer.effect(
    TemplateCache,
    Effect.gen(function*() {
      const { config, options } = yield* ControllerSettings
      const local = yield* KubeClient
      const supervisor = yield* Supervisor
      const workflowTemplates = yield* Informers.make(local, "workflowtemplates", config.namespace, { ...options.watch, supervisor })
      const clusterWorkflowTemplates = yield* Informers.make(local, "clusterworkflowtemplates", undefined, { ...options.watch, supervisor })
      let synced = false
      yield* Effect.forkScoped(Effect.andThen(
        Effect.all([workflowTemplates.synced, clusterWorkflowTemplates.synced], { discard: true }),
        Effect.sync(() => {
          synced = true
        })
      ))

      const lookupFor = (workflow: KubeObject) =>
        Effect.gen(function*() {
          const status = (workflow["status"] ?? {}) as { storedWorkflowTemplateSpec?: unknown }
          const pending = [...holderRefsIn(workflow.spec), ...holderRefsIn(status.storedWorkflowTemplateSpec)]
          if (pending.length === 0) return noTemplates
          const namespace = workflow.metadata.namespace ?? "default"
          const wfts = new Map<string, KubeObject>()
          const cwfts = new Map<string, KubeObject>()
          const seen = new Set<string>()
          for (let ref = pending.pop(); ref !== undefined; ref = pending.pop()) {
            const key = ref.clusterScope ? ref.name : `${namespace}/${ref.name}`
            if (seen.has(`${ref.clusterScope}/${key}`)) continue
            seen.add(`${ref.clusterScope}/${key}`)
            const found = ref.clusterScope
              ? yield* clusterWorkflowTemplates.get(undefined, ref.name)
              : yield* workflowTemplates.get(namespace, ref.name)
            if (Option.isNone(found)) continue
            ;(ref.clusterScope ? cwfts : wfts).set(key, found.value)
            pending.push(...holderRefsIn(found.value.spec))
          }
          return { workflowTemplates: wfts, clusterWorkflowTemplates: cwfts } satisfies TemplateLookup
        })

      return TemplateCache.of({ ready: Effect.sync(() => synced), lookupFor })
    })
  )
}
