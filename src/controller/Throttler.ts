/**
 * The configmap's `parallelism` and `namespaceParallelism`, as upstream's
 * throttler (workflow/sync/throttler.go): at most `parallelism` workflows run
 * at once (0 = no limit), and at most `namespaceParallelism` of one namespace.
 * A workflow that may not start yet stays Pending with upstream's message;
 * waiting ones start in order of `spec.priority` (higher first), then
 * creation time (older first), as room frees up.
 *
 * A workflow that already started (it has nodes, or phase Running, say
 * after a controller restart) always counts as running and is never held
 * back, even over the limit (the limit may have been lowered): stopping it
 * half way would be worse. Completed and deleted workflows release their
 * place (`release`), which names the waiting workflows to look at again.
 *
 * Pure bookkeeping, no I/O; one instance per controller. Workflows are
 * reconciled one at a time per key, so calls for one key never overlap.
 */

export interface ThrottleLimits {
  /** Running workflows at most; 0 = unlimited. */
  readonly parallelism: number
  /** Running workflows of one namespace at most; 0 = unlimited. */
  readonly namespaceParallelism: number
}

export interface Candidate {
  readonly key: string
  readonly namespace: string
  /** `spec.priority`; higher starts first. */
  readonly priority: number
  /** Creation time (millis); older starts first. */
  readonly created: number
  /** It has started already (nodes or phase Running). */
  readonly started: boolean
}

/** Upstream's message on a workflow held back by `parallelism`. */
export const postponedMessage = "Workflow processing has been postponed because too many workflows are already running"

export interface Throttler {
  /** True when the workflow may run now (it then counts as running until released). */
  readonly admit: (candidate: Candidate) => boolean
  /** The workflow completed or is gone: frees its place; returns the waiting keys to look at again. */
  readonly release: (key: string) => ReadonlyArray<string>
  readonly running: () => number
}

const before = (a: Candidate, b: Candidate): boolean =>
  a.priority !== b.priority ? a.priority > b.priority : a.created !== b.created ? a.created < b.created : a.key < b.key

export const make = (limits: ThrottleLimits): Throttler => {
  const unlimited = limits.parallelism <= 0 && limits.namespaceParallelism <= 0
  const running = new Map<string, string>() // key -> namespace
  const runningByNamespace = new Map<string, number>()
  const waiting = new Map<string, Candidate>()

  const hasRoom = (namespace: string) =>
    (limits.parallelism <= 0 || running.size < limits.parallelism) &&
    (limits.namespaceParallelism <= 0 || (runningByNamespace.get(namespace) ?? 0) < limits.namespaceParallelism)

  const start = (candidate: Candidate) => {
    waiting.delete(candidate.key)
    running.set(candidate.key, candidate.namespace)
    runningByNamespace.set(candidate.namespace, (runningByNamespace.get(candidate.namespace) ?? 0) + 1)
  }

  return {
    admit: (candidate) => {
      if (unlimited || running.has(candidate.key)) return true
      if (candidate.started) {
        start(candidate)
        return true
      }
      waiting.set(candidate.key, candidate)
      if (!hasRoom(candidate.namespace)) return false
      // the first in line among those with room goes first
      for (const other of waiting.values()) {
        if (other.key !== candidate.key && hasRoom(other.namespace) && before(other, candidate)) return false
      }
      start(candidate)
      return true
    },
    release: (key) => {
      waiting.delete(key)
      const namespace = running.get(key)
      if (namespace === undefined) return []
      running.delete(key)
      const left = (runningByNamespace.get(namespace) ?? 1) - 1
      if (left <= 0) runningByNamespace.delete(namespace)
      else runningByNamespace.set(namespace, left)
      return [...waiting.values()].filter((c) => hasRoom(c.namespace)).sort((a, b) => (before(a, b) ? -1 : 1)).map((c) => c.key)
    },
    running: () => running.size
  }
}
