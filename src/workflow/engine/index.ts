/**
 * The workflow engine's public surface for the controller: `reconcile` and
 * the pure helpers about identity and placement.
 */
export type * from "./contract.js"
export { reconcile, podCleanupAction, workflowLabels, labelPhase, labelWorkflowCompleted } from "./reconcile.js"
export { nodeId, podName, fnv32a } from "./ids.js"
export { needsFinalizer, targetOf, isLocalTarget, inheritPlacement, type Placement, type Target } from "./targeting.js"
export { buildPod, lookupImage, podLabels } from "./pod.js"
