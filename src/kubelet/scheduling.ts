/**
 * Where a pod may run, decided as kube-scheduler's filters decide it for the
 * fields users set (pure, no I/O): `spec.unschedulable` nodes
 * (NodeUnschedulable), taints with effect NoSchedule or NoExecute against the
 * pod's tolerations (TaintToleration), then `nodeSelector` and required node
 * affinity (NodeAffinity): `nodeSelectorTerms` ORed, each term's
 * `matchExpressions` (In, NotIn, Exists, DoesNotExist, Gt, Lt) and
 * `matchFields` (`metadata.name`) ANDed. Each node is rejected for the first
 * filter it fails, and a pod no node takes gets the scheduler's message,
 * "0/N nodes are available: ...", with its reasons counted and sorted as
 * kube-scheduler v1.36 writes them (every reason here is one preemption
 * cannot help).
 *
 * Also the Node objects of the embedded runtime's nodes, with the labels a
 * kubelet gives its node.
 */
import type { KubeObject } from "../kube/api/Resources.js"

export interface Taint {
  readonly key: string
  readonly value?: string | undefined
  readonly effect: string
}

interface Toleration {
  readonly key?: string
  readonly operator?: string
  readonly value?: string
  readonly effect?: string
}

interface NodeSelectorRequirement {
  readonly key?: string
  readonly operator?: string
  readonly values?: ReadonlyArray<string>
}

interface NodeSelectorTerm {
  readonly matchExpressions?: ReadonlyArray<NodeSelectorRequirement>
  readonly matchFields?: ReadonlyArray<NodeSelectorRequirement>
}

interface PodSchedulingSpec {
  readonly nodeSelector?: Readonly<Record<string, string>>
  readonly tolerations?: ReadonlyArray<Toleration>
  readonly affinity?: {
    readonly nodeAffinity?: {
      readonly requiredDuringSchedulingIgnoredDuringExecution?: { readonly nodeSelectorTerms?: ReadonlyArray<NodeSelectorTerm> }
    }
  }
}

/** kube-scheduler's filter reasons (plugins NodeUnschedulable, TaintToleration, NodeAffinity). */
export const reasons = {
  unschedulable: "node(s) were unschedulable",
  taint: "node(s) had untolerated taint(s)",
  affinity: "node(s) didn't match Pod's node affinity/selector"
} as const

/** The taint the node lifecycle controller puts on a cordoned (`spec.unschedulable`) node. */
const unschedulableTaint: Taint = { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }

/** The value of `kubernetes.io/arch` for this process's architecture (Go's GOARCH names). */
export const hostArch = (arch: string = process.arch): string =>
  ({ x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loong64" } as Record<string, string>)[arch] ?? arch

/** The labels a kubelet gives the node it registers (hostname, os and arch, stable and beta). */
export const standardNodeLabels = (nodeName: string): Record<string, string> => ({
  "beta.kubernetes.io/arch": hostArch(),
  "beta.kubernetes.io/os": "linux",
  "kubernetes.io/arch": hostArch(),
  "kubernetes.io/hostname": nodeName,
  "kubernetes.io/os": "linux"
})

export interface NodeOptions {
  /** On top of the standard labels. */
  readonly labels?: Readonly<Record<string, string>> | undefined
  readonly taints?: ReadonlyArray<Taint> | undefined
}

/** A Ready node of the embedded runtime, as its kubelet would register it. */
export const nodeObject = (nodeName: string, options: NodeOptions = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name: nodeName, labels: { ...standardNodeLabels(nodeName), ...options.labels } },
  spec: options.taints !== undefined && options.taints.length > 0 ? { taints: options.taints.map((t) => ({ ...t })) } : {},
  status: {
    conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "flotilla local kubelet" }],
    addresses: [{ type: "InternalIP", address: "127.0.0.1" }, { type: "Hostname", address: nodeName }],
    allocatable: { cpu: "32", memory: "256Gi", pods: "110" },
    capacity: { cpu: "32", memory: "256Gi", pods: "110" },
    nodeInfo: { operatingSystem: "linux", architecture: hostArch() }
  }
})

const asArray = <A>(u: unknown): ReadonlyArray<A> => (Array.isArray(u) ? (u as ReadonlyArray<A>) : [])

/** Whether a toleration tolerates a taint (the API's ToleratesTaint). */
export const tolerates = (toleration: Toleration, taint: Taint): boolean => {
  if (toleration.effect !== undefined && toleration.effect !== "" && toleration.effect !== taint.effect) return false
  if (toleration.key !== undefined && toleration.key !== "" && toleration.key !== taint.key) return false
  switch (toleration.operator ?? "Equal") {
    case "Exists":
      return true
    case "Equal":
    case "":
      // An empty key matches every key only with Exists.
      return toleration.key !== undefined && toleration.key !== "" && (toleration.value ?? "") === (taint.value ?? "")
    default:
      return false
  }
}

const taintsOf = (node: KubeObject): ReadonlyArray<Taint> =>
  asArray<Taint>((node.spec as { taints?: unknown } | undefined)?.taints).filter((t) => typeof t?.key === "string")

/** The first NoSchedule/NoExecute taint of the node that the pod does not tolerate. */
const untoleratedTaint = (tolerations: ReadonlyArray<Toleration>, taints: ReadonlyArray<Taint>): Taint | undefined =>
  taints.find((t) => (t.effect === "NoSchedule" || t.effect === "NoExecute") && !tolerations.some((tol) => tolerates(tol, t)))

const parseInteger = (s: string | undefined): number | undefined =>
  s !== undefined && /^-?\d+$/.test(s.trim()) ? Number.parseInt(s, 10) : undefined

/** One requirement against a value that may be absent (a label the node lacks). */
const requirementMatches = (r: NodeSelectorRequirement, present: boolean, value: string | undefined): boolean => {
  const values = asArray<string>(r.values)
  switch (r.operator) {
    case "In":
      return present && values.includes(value ?? "")
    case "NotIn":
      return !present || !values.includes(value ?? "")
    case "Exists":
      return present
    case "DoesNotExist":
      return !present
    case "Gt":
    case "Lt": {
      const have = parseInteger(value)
      const want = values.length === 1 ? parseInteger(values[0]) : undefined
      if (!present || have === undefined || want === undefined) return false
      return r.operator === "Gt" ? have > want : have < want
    }
    default:
      return false
  }
}

/** A term of a node selector: every expression and field matches; a term with neither matches nothing. */
export const termMatches = (term: NodeSelectorTerm, node: KubeObject): boolean => {
  const expressions = asArray<NodeSelectorRequirement>(term.matchExpressions)
  const fields = asArray<NodeSelectorRequirement>(term.matchFields)
  if (expressions.length === 0 && fields.length === 0) return false
  const labels = node.metadata.labels ?? {}
  return expressions.every((r) => {
    const key = r.key ?? ""
    return requirementMatches(r, Object.hasOwn(labels, key), labels[key])
  }) && fields.every((r) =>
    // The only field a node selector may name.
    r.key === "metadata.name" && (r.operator === "In" || r.operator === "NotIn") &&
    requirementMatches(r, true, node.metadata.name)
  )
}

/** NodeAffinity's filter: `nodeSelector` and the required node affinity terms (ORed). */
export const matchesNodeAffinity = (pod: KubeObject, node: KubeObject): boolean => {
  const spec = (pod.spec ?? {}) as PodSchedulingSpec
  const labels = node.metadata.labels ?? {}
  for (const [k, v] of Object.entries(spec.nodeSelector ?? {})) if (labels[k] !== v) return false
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
  if (required === undefined || required === null) return true
  return asArray<NodeSelectorTerm>(required.nodeSelectorTerms).some((t) => termMatches(t, node))
}

/** Why the pod cannot go to the node, in kube-scheduler's words, or undefined when it can. */
export const nodeRejects = (pod: KubeObject, node: KubeObject): string | undefined => {
  const tolerations = asArray<Toleration>(((pod.spec ?? {}) as PodSchedulingSpec).tolerations)
  if ((node.spec as { unschedulable?: unknown } | undefined)?.unschedulable === true &&
    !tolerations.some((t) => tolerates(t, unschedulableTaint))) {
    return reasons.unschedulable
  }
  if (untoleratedTaint(tolerations, taintsOf(node)) !== undefined) return reasons.taint
  if (!matchesNodeAffinity(pod, node)) return reasons.affinity
  return undefined
}

export type Placement =
  | { readonly _tag: "Feasible"; readonly nodes: ReadonlyArray<KubeObject> }
  | { readonly _tag: "Unschedulable"; readonly message: string }

/** The nodes the pod may go to, or the scheduler's message when there are none. */
export const place = (pod: KubeObject, nodes: ReadonlyArray<KubeObject>): Placement => {
  if (nodes.length === 0) return { _tag: "Unschedulable", message: "no nodes available to schedule pods" }
  const feasible: Array<KubeObject> = []
  const counts = new Map<string, number>()
  for (const node of nodes) {
    const reason = nodeRejects(pod, node)
    if (reason === undefined) feasible.push(node)
    else counts.set(reason, (counts.get(reason) ?? 0) + 1)
  }
  if (feasible.length > 0) return { _tag: "Feasible", nodes: feasible }
  const n = nodes.length
  const histogram = [...counts].map(([reason, count]) => `${count} ${reason}`).sort()
  return {
    _tag: "Unschedulable",
    message: `0/${n} nodes are available: ${histogram.join(", ")}. preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`
  }
}

/** The PodScheduled condition kube-scheduler writes on a pod it cannot place. */
export const unschedulableCondition = (message: string, at: string) => ({
  type: "PodScheduled",
  status: "False",
  reason: "Unschedulable",
  message,
  lastProbeTime: null,
  lastTransitionTime: at
})

/** The message of the pod's PodScheduled=False condition, if it has one. */
export const unschedulableMessage = (pod: KubeObject): string | undefined => {
  const conditions = asArray<{ type?: string; status?: string; reason?: string; message?: string }>(
    (pod.status as { conditions?: unknown } | undefined)?.conditions
  )
  const c = conditions.find((x) => x.type === "PodScheduled")
  return c?.status === "False" && c.reason === "Unschedulable" ? c.message ?? "" : undefined
}
