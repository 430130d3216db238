/**
 * Scopes that answer lookups without copying: a loop item's variables over
 * its step's scope, and a DAG task's scope over its ancestors' outputs.
 * Both flatten only for a reader that iterates them. Pure data structures.
 */
import type { Scope } from "./scope.js"

/**
 * A scope answering lookups itself and flattening only for a reader that
 * iterates: subclasses give `get`, `has` and `all` (the flattened map).
 */
abstract class LazyScope implements ReadonlyMap<string, unknown> {
  abstract get(key: string): unknown
  abstract has(key: string): boolean
  protected abstract all(): Map<string, unknown>
  get size(): number {
    return this.all().size
  }
  forEach(f: (value: unknown, key: string, map: ReadonlyMap<string, unknown>) => void, thisArg?: unknown): void {
    this.all().forEach((v, k) => f.call(thisArg, v, k, this))
  }
  entries() {
    return this.all().entries()
  }
  keys() {
    return this.all().keys()
  }
  values() {
    return this.all().values()
  }
  [Symbol.iterator]() {
    return this.all()[Symbol.iterator]()
  }
}

/**
 * A loop item's variables over its step's or task's scope, without copying
 * the scope per item (a scope carries every earlier step or ancestor task, a
 * loop may have thousands of items). Flattened only if a reader iterates it.
 */
export class LayeredScope extends LazyScope {
  private flat: Map<string, unknown> | undefined
  constructor(private readonly base: Scope, private readonly top: Scope) {
    super()
  }
  get(key: string): unknown {
    return this.top.has(key) ? this.top.get(key) : this.base.get(key)
  }
  has(key: string): boolean {
    return this.top.has(key) || this.base.has(key)
  }
  protected all(): Map<string, unknown> {
    this.flat ??= new Map([...this.base, ...this.top])
    return this.flat
  }
}

/**
 * A DAG task's scope: the workflow's globals and the `tasks.<name>.*` entries
 * of every ancestor task (upstream's `buildLocalScopeFromTask`). A lookup walks
 * the ancestry only until it meets the task it names, so in a chain of
 * thousands of tasks each costs what it references rather than its whole
 * ancestry; a reader that iterates (an expression tag sees the scope whole)
 * gets it flattened once.
 */
export class TaskScope extends LazyScope {
  private readonly ancestors = new Set<string>()
  private readonly pending: Array<string>
  private flat: Map<string, unknown> | undefined

  constructor(
    private readonly globals: Scope,
    dependencies: ReadonlyArray<string>,
    private readonly dependenciesOf: (task: string) => ReadonlyArray<string>,
    private readonly entriesOf: (task: string) => Scope | undefined,
    private readonly isTask: (name: string) => boolean
  ) {
    super()
    this.pending = [...dependencies]
  }

  get(key: string): unknown {
    if (this.flat !== undefined) return this.flat.get(key)
    if (this.globals.has(key)) return this.globals.get(key)
    return this.entriesFor(key)?.get(key)
  }
  has(key: string): boolean {
    if (this.flat !== undefined) return this.flat.has(key)
    return this.globals.has(key) || (this.entriesFor(key)?.has(key) ?? false)
  }

  /** The entries of the ancestor that `tasks.<name>.<field>` names (a name may hold dots: every split is tried). */
  private entriesFor(key: string): Scope | undefined {
    const prefix = "tasks."
    if (!key.startsWith(prefix)) return undefined
    for (let dot = key.indexOf(".", prefix.length); dot > 0; dot = key.indexOf(".", dot + 1)) {
      const name = key.slice(prefix.length, dot)
      if (!this.isTask(name) || !this.isAncestor(name)) continue
      const entries = this.entriesOf(name)
      if (entries?.has(key) === true) return entries
    }
    return undefined
  }

  /** Depth-first through the dependencies, resumed where the last lookup stopped. */
  private isAncestor(name: string | undefined): boolean {
    while ((name === undefined || !this.ancestors.has(name)) && this.pending.length > 0) {
      const d = this.pending.pop()!
      if (this.ancestors.has(d)) continue
      this.ancestors.add(d)
      for (const dd of this.dependenciesOf(d)) if (!this.ancestors.has(dd)) this.pending.push(dd)
    }
    return name !== undefined && this.ancestors.has(name)
  }

  protected all(): Map<string, unknown> {
    if (this.flat === undefined) {
      this.isAncestor(undefined)
      const flat = new Map(this.globals)
      for (const a of this.ancestors) for (const [k, v] of this.entriesOf(a) ?? []) flat.set(k, v)
      this.flat = flat
    }
    return this.flat
  }
}
