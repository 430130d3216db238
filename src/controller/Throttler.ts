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
 * half way would be worse. After a restart the controller counts them all
 * (`admit` with `started`) before its workers take any workflow, as
 * upstream's throttler `Init` does, so a waiting one cannot slip in first. Completed and deleted workflows release their
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

export interface Admission {
  /** The workflow may run now (it then counts as running until released). */
  readonly admitted: boolean
  /**
   * Waiting workflows to look at again: after a start, those that may still find room (two woken
   * by one release race each other; the one refused for being behind must not be forgotten).
   */
  readonly wake: ReadonlyArray<string>
}

export interface Throttler {
  readonly admit: (candidate: Candidate) => Admission
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

  /** Waiting workflows that would find room now, first in line first. */
  const withRoom = () =>
    [...waiting.values()].filter((c) => hasRoom(c.namespace)).sort((a, b) => (before(a, b) ? -1 : 1)).map((c) => c.key)
  const admitted: Admission = { admitted: true, wake: [] }
  const refused: Admission = { admitted: false, wake: [] }

  return {
    admit: (candidate) => {
      if (unlimited || running.has(candidate.key)) return admitted
      if (candidate.started) {
        start(candidate)
        return admitted
      }
      waiting.set(candidate.key, candidate)
      if (!hasRoom(candidate.namespace)) return refused
      // the first in line among those with room goes first
      for (const other of waiting.values()) {
        if (other.key !== candidate.key && hasRoom(other.namespace) && before(other, candidate)) return refused
      }
      start(candidate)
      return { admitted: true, wake: withRoom() }
    },
    release: (key) => {
      waiting.delete(key)
      const namespace = running.get(key)
      if (namespace === undefined) return []
      running.delete(key)
      const left = (runningByNamespace.get(namespace) ?? 1) - 1
      if (left <= 0) runningByNamespace.delete(namespace)
      else runningByNamespace.set(namespace, left)
      return withRoom()
    },
    running: () => running.size
  }
}
