/** The Argo Workflow model and its decoder. */
export * from "./Workflow.js"
export { decodeWorkflow, type DecodeResult } from "./decode.js"
export { compressNodes, compressNodesJson, decompressNodes, readStatusNodes, statusNodes, updateStatusNodes, type Nodes, type StatusNodes } from "./compressedNodes.js"
/** The Workflow Schema and the types of a decoded workflow (`WorkflowSchema.Workflow`, `WorkflowSchema.Template`, ...). */
export * as WorkflowSchema from "./schema.js"
