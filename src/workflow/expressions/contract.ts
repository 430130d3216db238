/**
 * The contract of the expression module used by the engine: Argo's `{{...}}`
 * substitution, `{{=expr}}` expressions and `when` conditions. Pure functions.
 */

/** Variables visible at a point of the workflow, flat keys as Argo names them: `inputs.parameters.x`, `steps.a.outputs.result`, `workflow.name`, `item`, `item.key`... */
export type Scope = ReadonlyMap<string, unknown>

export interface ExpressionError {
  readonly _tag: "ExpressionError"
  readonly expression: string
  readonly message: string
  /** Set when the failure is an unresolved reference (Argo requeues on those rather than failing). */
  readonly missingVariable?: string
}
