/**
 * The engine's node vocabulary, free of any operation's state: a node of
 * `status.nodes` as the engine mutates it, the options a template call is
 * executed with, resolved arguments, the `Failure` a step of evaluation may
 * return instead of a value, and small pure helpers about nodes (display
 * names, `continueOn`). Mirrors the types upstream keeps in `wfv1`
 * (`NodeStatus`) and `executeTemplateOpts` (workflow/controller/operator.go).
 */
import type { Artifact, NodePhase, NodeStatus, Template, TemplateCall } from "../model/Workflow.js"
import type { TemplateRef } from "../model/schema/common.js"
import type { Placement } from "./targeting.js"

/** A status type whose fields the operation assigns. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] }
/** A node of `status.nodes` as the operation builds it. */
export type Node = Mutable<NodeStatus> & { children?: Array<string>; outboundNodes?: Array<string> }

/** How a template call is executed (upstream's `executeTemplateOpts`). */
export interface ExecOpts {
  readonly boundaryId?: string
  readonly onExit: boolean
  readonly hooked?: boolean
  readonly placement?: Placement
  /** The step or task name, for `steps.name` / `tasks.name`. */
  readonly callName?: string
  readonly callKind?: "step" | "task"
  /** The template of the enclosing steps/DAG (for includeScriptOutput). */
  readonly parentTemplate?: Template
  /** What a hook calls when it names a WorkflowTemplate's template rather than its own (steps and tasks: `callOf`). */
  readonly templateRef?: TemplateRef
}

/**
 * Arguments after substitution; `undefined` marks a parameter that could not be resolved. The
 * call's artifacts, `from` resolved (artifacts.ts), ride along on the map.
 */
export type ResolvedArgs = ReadonlyMap<string, string | undefined> & { readonly artifacts?: ReadonlyArray<Artifact> }

/** What a step of evaluation returns instead of its value when it fails; the message becomes a node's. */
export type Failure = { readonly error: string }
export const isFailure = (u: unknown): u is Failure => typeof u === "object" && u !== null && "error" in u && !("name" in u)

/** The map's value for `key`, made and stored on first use. */
export const getOrCreate = <K, V>(map: Map<K, V>, key: K, make: () => V): V => {
  let v = map.get(key)
  if (v === undefined) {
    v = make()
    map.set(key, v)
  }
  return v
}

/** Whether a step's or task's `continueOn` lets its parent carry on past this phase. */
export const continues = (call: TemplateCall | undefined, phase: NodePhase): boolean =>
  (phase === "Failed" && call?.continueOn?.failed === true) || (phase === "Error" && call?.continueOn?.error === true)

/** A node's `displayName`, from its name. */
export const displayNameOf = (name: string): string => {
  // The display name is the last segment of the node name: `wf[0].step(1:x)` -> `step(1:x)`, `wf[0]` -> `[0]`.
  let depth = 0
  for (let i = name.length - 1; i >= 0; i--) {
    const c = name[i]
    if (c === ")") depth++
    else if (c === "(") depth--
    else if (depth === 0 && c === ".") return name.slice(i + 1)
    else if (depth === 0 && c === "[" && i > 0) return name.slice(i)
  }
  return name
}
