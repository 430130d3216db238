/**
 * containerSet templates: one pod whose main containers run in the order
 * their `dependencies` give (argoexec's emissary, or the embedded kubelet,
 * starts a container once its dependencies exited 0). The template's node is
 * a Pod node like a container template's (podNodes.ts requests the pod; the
 * manifest's mains come from pod.ts); below it, once the pod is requested, one
 * `Container` node per container, `<node>.<container>`, its boundary the pod's
 * node, linked as the graph: a container without dependencies is a child of
 * the pod's node, any other a child of each of its dependencies. Each follows
 * its container's state in the observed pod. Upstream's `executeContainerSet`
 * (workflow/controller/container_set_template.go) and the container-status
 * part of `podReconciliation` (operator.go).
 */
import { isFulfilled, type NodePhase, type Template } from "../model/Workflow.js"
import type { ContainerObservation, PodObservation } from "./contract.js"
import type { ExecOpts, Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { executePod } from "./podNodes.js"

/** A container's name in the pod (pod.ts names an unnamed one "main"). */
const containerName = (c: { readonly name?: string | undefined }): string => c.name === undefined || c.name === "" ? "main" : c.name

/** The Pod node of a containerSet template and its Container nodes; undefined while parallelism holds it back. */
export const executeContainerSet = (op: OperationState, nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined => {
  const validation = validateContainerSet(tmpl)
  if (validation !== undefined) return op.errorNode(nodeName, validation, opts, tmpl.name)
  const node = executePod(op, nodeName, tmpl, opts, retried)
  if (node === undefined) return undefined
  const containers = tmpl.containerSet?.containers ?? []
  const obs = op.input.pods.get(node.id)
  // As upstream, the graph is made only once the pod was requested (a node that errored before has none).
  const requested = obs !== undefined || op.actions.some((a) => a._tag === "CreatePod" && a.nodeId === node.id) ||
    containers.some((c) => op.byName(`${nodeName}.${containerName(c)}`) !== undefined)
  if (!requested) return node
  for (const c of containers) {
    const name = `${nodeName}.${containerName(c)}`
    if (op.byName(name) === undefined) {
      op.initNode(name, "Container", "Pending", { boundaryId: node.id, templateName: tmpl.name, hooked: opts.hooked })
    }
  }
  for (const c of containers) {
    const name = `${nodeName}.${containerName(c)}`
    const deps = c.dependencies ?? []
    if (deps.length === 0) op.addChild(nodeName, name)
    for (const d of deps) op.addChild(`${nodeName}.${d}`, name)
  }
  if (obs !== undefined) followContainers(op, nodeName, obs)
  return node
}

/**
 * Every containerSet pod observed, folded into its Container nodes, before
 * executing (with `reconcilePods`): a pod's node that completes is not executed
 * again, so its containers are followed here. Only pods with containers other
 * than main and wait are observed with `containers`.
 */
export const reconcileContainerSets = (op: OperationState): void => {
  for (const obs of op.input.pods.values()) {
    if (obs.containers === undefined) continue
    const node = op.nodes[obs.nodeId]
    if (node === undefined || node.type !== "Pod") continue
    followContainers(op, node.name, obs)
    if (isFulfilled(node.phase)) closeContainers(op, node)
  }
}

/** `ContainerSetTemplate.Validate`: at least one container, dependencies that exist, no cycle. */
const validateContainerSet = (tmpl: Template): string | undefined => {
  const containers = tmpl.containerSet?.containers ?? []
  if (containers.length === 0) return "containerSet.containers must have at least one container"
  const names = new Set(containers.map(containerName))
  if (names.size !== containers.length) return "containerSet.containers: container names must be unique"
  for (const c of containers) {
    for (const d of c.dependencies ?? []) {
      if (!names.has(d)) return `containerSet.containers.${containerName(c)} dependency '${d}' not defined`
    }
  }
  const deps = new Map(containers.map((c) => [containerName(c), c.dependencies ?? []] as const))
  const state = new Map<string, "visiting" | "done">()
  const cyclic = (n: string): boolean => {
    if (state.get(n) === "done") return false
    if (state.get(n) === "visiting") return true
    state.set(n, "visiting")
    const found = (deps.get(n) ?? []).some(cyclic)
    state.set(n, "done")
    return found
  }
  for (const n of names) if (cyclic(n)) return `containerSet.containers: dependency cycle through container '${n}'`
  return undefined
}

/** Each Container node from its container's state (upstream's podReconciliation for containerSet pods). */
const followContainers = (op: OperationState, nodeName: string, obs: PodObservation): void => {
  for (const c of obs.containers ?? []) {
    const node = op.byName(`${nodeName}.${c.name}`)
    if (node === undefined || node.type !== "Container" || isFulfilled(node.phase)) continue
    const next = containerPhase(c, obs)
    if (next !== undefined) op.markPhase(node, next.phase, next.message)
  }
}

const containerPhase = (c: ContainerObservation, obs: PodObservation): { phase: NodePhase; message?: string } | undefined => {
  if (c.state === "terminated") {
    const exitCode = c.exitCode ?? 0
    const message = `${c.name}: ${c.reason ?? ""} (exit code ${exitCode}): ${c.message ?? ""}`
    // 64: the emissary's own failure rather than the process's.
    if (exitCode === 0) return { phase: "Succeeded" }
    return exitCode === 64 ? { phase: "Error", message } : { phase: "Failed", message }
  }
  if (obs.phase === "Failed") return { phase: "Failed", message: "Pod Failed whilst container running" }
  if (c.state === "waiting") return { phase: "Pending" }
  return { phase: "Running" }
}

/**
 * The pod's node is done but a container's node is not (the pod vanished, was
 * killed at a deadline, or failed before its containers were seen): it takes
 * the pod's phase, as upstream's markAllContainersDeleted errors them.
 */
const closeContainers = (op: OperationState, podNode: Node): void => {
  // The pod's Container nodes: its graph below the pod's node.
  const queue = [...(podNode.children ?? [])]
  const seen = new Set<string>()
  while (queue.length > 0) {
    const id = queue.shift()!
    const node = op.nodes[id]
    if (seen.has(id) || node === undefined || node.type !== "Container" || node.boundaryID !== podNode.id) continue
    seen.add(id)
    queue.push(...(node.children ?? []))
    if (isFulfilled(node.phase)) continue
    if (podNode.phase === "Succeeded") op.markPhase(node, "Succeeded")
    else op.markPhase(node, podNode.phase === "Failed" ? "Failed" : "Error", podNode.message ?? "container deleted")
  }
}
