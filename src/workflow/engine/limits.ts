/**
 * What one workflow may ask of the engine. The engine runs on the
 * controller's event loop, shared by every tenant: a workflow beyond these
 * bounds ends in Error with a message naming the limit and the field that
 * crossed it, and every other workflow keeps its latency.
 *
 * Defaults are at least as generous as what upstream Argo can actually run
 * (its recursion bound is 100 levels; its status must fit the API object size
 * limit), and the configmap's `limits` key overrides any of them. Each
 * default is sized from measurements (`npm run bench`, and the engine's
 * scale tests) on the 2-core reference machine: a node is 300-480 bytes of
 * status JSON and 30-45 bytes once compressed (gzip + base64, as
 * `status.compressedNodes`), and an honest reconcile spends about 6 work
 * units per node it looks at.
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
  /**
   * About as many nodes as fit `maxStatusBytes` even compressed (1 MiB at
   * 30-45 bytes a node is 23,000-35,000), so a workflow too big to store is
   * refused by name rather than built and then found too large. At 20,000
   * nodes a reconcile takes about 0.3 s, the first one (creating every pod)
   * about 1 s.
   */
  maxNodes: 25_000,
  /** Twice the largest loop we test end to end (10,000 items), and below `maxNodes`, which a wider loop would cross anyway. */
  maxLoopItems: 20_000,
  /** Upstream's `maxAllowedStackDepth` (the nesting at which `ErrMaxDepthExceeded` is raised, the entrypoint counting 1). */
  maxDepth: 100,
  /**
   * Upstream's `MAX_WORKFLOW_SIZE` default; past it `nodes` is stored as
   * `compressedNodes`. Counted on the status alone, which leaves the spec and
   * metadata room below etcd's 1.5 MiB request limit.
   */
  maxStatusBytes: 1024 * 1024,
  /**
   * About six times what an honest workflow of `maxNodes` nodes spends in
   * one reconcile (~150,000 units), and about two seconds of event loop time
   * for one that is not: a DAG of 100 layers of 100 tasks each depending on
   * every task of the layer before (a million edges) is stopped here after
   * about 2 s (60 layers of 60 took 80 s before reconcile was made linear).
   */
  maxReconcileSteps: 1_000_000,
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
