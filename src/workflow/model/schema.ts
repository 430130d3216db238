/**
 * The Workflow Schema: the one description of a Workflow's shape that the
 * decoder (`decode.ts`) and the linter (`flotilla lint`) both check against,
 * and the TypeScript types of a decoded Workflow.
 */
export * from "./schema/common.js"
export * from "./schema/issues.js"
export * from "./schema/template.js"
export * from "./schema/workflow.js"
