/**
 * What one workflow may ask of the engine. The engine runs on the
 * controller's event loop, shared by every tenant: a workflow beyond these
 * bounds ends in Error with a message naming the limit and the field that
 * crossed it, and every other workflow keeps its latency.
 *
 * Defaults are at least as generous as what upstream Argo can actually run
 * (its recursion bound is 100 levels; its status must fit the API object size
 * limit), and the configmap's `limits` key overrides any of them.
 */
import { defaultExpressionLimits, type ExpressionLimits } from "../expressions/limits.js"

export interface EngineLimits {
  /** Nodes in `status.nodes`. */
  readonly maxNodes: number
  /** Items of one `withItems` / `withParam` / `withSequence` loop. */
  readonly maxLoopItems: number
  /** Nesting of template calls (steps/DAG inside steps/DAG, recursion); upstream's is 100. */
  readonly maxDepth: number
  /** Size of the status as stored, in bytes of JSON. */
  readonly maxStatusBytes: number
  /** Work units (nodes visited, tasks assessed, substitutions) one reconcile may spend. */
  readonly maxReconcileSteps: number
  readonly expression: ExpressionLimits
}

export const defaultEngineLimits: EngineLimits = {
  maxNodes: 50_000,
  maxLoopItems: 50_000,
  maxDepth: 100,
  maxStatusBytes: 1024 * 1024,
  maxReconcileSteps: 50_000_000,
  expression: defaultExpressionLimits
}

/** Partial overrides (as the configmap gives them) over the defaults. */
export interface EngineLimitsInput {
  readonly maxNodes?: number
  readonly maxLoopItems?: number
  readonly maxDepth?: number
  readonly maxStatusBytes?: number
  readonly maxReconcileSteps?: number
  readonly expression?: Partial<ExpressionLimits>
}

export const resolveLimits = (input: EngineLimitsInput | undefined): EngineLimits => ({
  ...defaultEngineLimits,
  ...input,
  expression: { ...defaultEngineLimits.expression, ...input?.expression }
})
