/**
 * The workflow engine's public surface for the controller: `reconcile` and
 * the pure helpers about identity and placement.
 */
export type * from "./contract.js"
export { reconcile } from "./reconcile.js"
export { podCleanupAction } from "./podgc.js"
export { workflowLabels } from "./status.js"
export { labelPhase, labelCompleted as labelWorkflowCompleted } from "../../util/argoKeys.js"
export { nodeId, podName, fnv32a } from "./ids.js"
export { needsFinalizer, targetOf, isLocalTarget, inheritPlacement, type Placement, type Target } from "./targeting.js"
export { buildPod, lookupImage, podLabels } from "./pod.js"
export { holderRefsIn, type HolderRef } from "./templateRefs.js"
export { execWorkflow, joinWorkflowSpec } from "./workflowTemplateRef.js"
