/**
 * Artifact garbage collection, the bookkeeping half (upstream's artifact_gc.go): whether a
 * workflow needs the `workflows.argoproj.io/artifact-gc` finalizer (`HasArtifactGC`: an output
 * artifact of one of its templates, or of a stored WorkflowTemplate's, whose strategy is
 * `OnWorkflowCompletion` or `OnWorkflowDeletion`), which strategies are ready (completion once the
 * workflow is completed or being deleted, deletion once it is being deleted) and not yet processed
 * (`status.artifactGCStatus.strategiesProcessed`), and which reported artifacts each must delete,
 * grouped by where the pod that wrote them ran: the credentials are Secrets of that cluster and
 * namespace (never copied), so the deleting is done there, as the pods that wrote them did.
 *
 * Pure. The controller's half (adding and removing the finalizer, running the deletions in each
 * cluster and namespace, recording `strategiesProcessed` and the artifacts' `deleted`) reads
 * `EngineOutput.artifactGC`.
 */
import { isRecord } from "../../util/records.js"
import type { Artifact, NodeStatus, Template, Workflow } from "../model/Workflow.js"

export const finalizerArtifactGC = "workflows.argoproj.io/artifact-gc"

export type ArtifactGCStrategy = "OnWorkflowCompletion" | "OnWorkflowDeletion" | "Never"

const strategyIn = (gc: unknown): string => isRecord(gc) && typeof gc["strategy"] === "string" ? gc["strategy"] : ""

/** `GetArtifactGCStrategy`: the artifact's own strategy, else the workflow's `spec.artifactGC`, else Never. */
export const artifactGCStrategy = (wf: Workflow, art: Artifact): ArtifactGCStrategy => {
  const own = strategyIn(art.artifactGC)
  const strategy = own !== "" ? own : strategyIn(wf.spec.artifactGC)
  return strategy === "OnWorkflowCompletion" || strategy === "OnWorkflowDeletion" ? strategy : "Never"
}

/** `HasArtifactGC`: an output artifact of the workflow's templates (or stored templates) is collected. */
export const hasArtifactGC = (wf: Workflow): boolean => {
  const stored = isRecord(wf.status?.["storedTemplates"]) ? Object.values(wf.status["storedTemplates"] as Record<string, Template>) : []
  for (const t of [...wf.spec.templates, ...stored]) {
    for (const art of t?.outputs?.artifacts ?? []) if (artifactGCStrategy(wf, art) !== "Never") return true
  }
  return false
}

/** One artifact to delete, where the pod that wrote it ran. */
export interface ArtifactGCItem {
  readonly strategy: ArtifactGCStrategy
  readonly nodeId: string
  readonly cluster?: string
  readonly namespace?: string
  /** The service account the deleting runs as (`artifactGC.serviceAccountName`, the artifact's over the workflow's). */
  readonly serviceAccountName?: string
  readonly artifact: Artifact
}

export interface ArtifactGCPlan {
  /** The workflow must carry `workflows.argoproj.io/artifact-gc` (until every ready strategy is processed). */
  readonly finalizer: boolean
  /** Strategies ready and not yet processed. */
  readonly ready: ReadonlyArray<ArtifactGCStrategy>
  /** The artifacts those strategies delete, not yet deleted. */
  readonly items: ReadonlyArray<ArtifactGCItem>
}

const processed = (status: Readonly<Record<string, unknown>>, strategy: ArtifactGCStrategy): boolean => {
  const gc = status["artifactGCStatus"]
  return isRecord(gc) && isRecord(gc["strategiesProcessed"]) && gc["strategiesProcessed"][strategy] === true
}

/**
 * What artifact GC has left to do for a workflow, from its nodes' reported artifacts; undefined
 * when it collects nothing (no finalizer). `completed`: the workflow has finished;
 * `deleting`: it has a deletionTimestamp.
 */
export const artifactGCPlan = (
  wf: Workflow,
  status: Readonly<Record<string, unknown>>,
  nodes: Readonly<Record<string, NodeStatus>>,
  state: { readonly completed: boolean; readonly deleting: boolean },
  /** Where each node's pod was seen (for a node whose status records no `cluster`/`namespace` yet). */
  pods?: ReadonlyMap<string, { readonly cluster: string; readonly namespace: string }>
): ArtifactGCPlan | undefined => {
  if (!hasArtifactGC(wf)) return undefined
  const ready: Array<ArtifactGCStrategy> = []
  if ((state.completed || state.deleting) && !processed(status, "OnWorkflowCompletion")) ready.push("OnWorkflowCompletion")
  if (state.deleting && !processed(status, "OnWorkflowDeletion")) ready.push("OnWorkflowDeletion")
  const items: Array<ArtifactGCItem> = []
  if (ready.length > 0) {
    const wfAccount = isRecord(wf.spec.artifactGC) ? wf.spec.artifactGC["serviceAccountName"] : undefined
    for (const id in nodes) {
      const node = nodes[id]!
      if (node.type !== "Pod") continue
      for (const art of node.outputs?.artifacts ?? []) {
        if (art.deleted === true) continue
        const strategy = artifactGCStrategy(wf, art)
        if (!ready.includes(strategy)) continue
        const account = isRecord(art.artifactGC) ? art.artifactGC["serviceAccountName"] : undefined
        const sa = typeof account === "string" && account !== "" ? account : typeof wfAccount === "string" && wfAccount !== "" ? wfAccount : undefined
        // the controller's record of where the pod was made (PodIdentity), else where it was seen
        const seen = pods?.get(node.id)
        const cluster = typeof node["cluster"] === "string" ? node["cluster"] : seen?.cluster
        const namespace = typeof node["namespace"] === "string" ? node["namespace"] : seen?.namespace
        items.push({
          strategy,
          nodeId: node.id,
          ...(cluster !== undefined ? { cluster } : {}),
          ...(namespace !== undefined ? { namespace } : {}),
          ...(sa !== undefined ? { serviceAccountName: sa } : {}),
          artifact: art
        })
      }
    }
  }
  // The finalizer stays until what deletion will need is done: both strategies once the workflow is being deleted.
  const finalizer = !(processed(status, "OnWorkflowCompletion") && processed(status, "OnWorkflowDeletion")) &&
    !(state.deleting && ready.length === 0)
  return { finalizer, ready, items }
}
