/** The Argo Workflow model and its decoder. */
export * from "./Workflow.js"
export { decodeWorkflow, type DecodeResult } from "./decode.js"
