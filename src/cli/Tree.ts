/**
 * Renders a workflow's `status.nodes` as the tree `argo get` prints: one line
 * per node under its parent (children in order, step groups and task groups
 * included), with template, pod name, duration and message. Pure.
 */
import type { KubeObject } from "../kube/api/Resources.js"
import { statusNodes } from "../workflow/model/compressedNodes.js"

interface Node {
  readonly id: string
  readonly name: string
  readonly displayName?: string
  readonly type: string
  readonly phase?: string
  readonly templateName?: string
  readonly templateRef?: { readonly name?: string; readonly template?: string }
  readonly message?: string
  readonly startedAt?: string
  readonly finishedAt?: string
  readonly children?: ReadonlyArray<string>
  readonly hostNodeName?: string
}

const icons: Record<string, string> = {
  Succeeded: "✔",
  Failed: "✖",
  Error: "⚠",
  Running: "●",
  Pending: "◷",
  Skipped: "○",
  Omitted: "○"
}

const duration = (node: Node, now: number): string => {
  if (!node.startedAt) return ""
  const end = node.finishedAt ? Date.parse(node.finishedAt) : now
  const s = Math.max(0, Math.round((end - Date.parse(node.startedAt)) / 1000))
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`
}

export interface TreeOptions {
  readonly now: number
  /** Pod name and placement per node ID (known to the caller from the pods it saw). */
  readonly pods?: ReadonlyMap<string, { readonly name: string; readonly cluster: string; readonly namespace: string }>
}

export const renderWorkflow = (wf: KubeObject, options: TreeOptions): string => {
  const status = (wf["status"] ?? {}) as { phase?: string; message?: string; startedAt?: string; finishedAt?: string }
  // A large workflow stores its nodes as `status.compressedNodes`.
  const nodes = statusNodes(wf["status"]) as unknown as Record<string, Node>
  const lines: Array<string> = []
  lines.push(`Name:        ${wf.metadata.name ?? ""}`)
  lines.push(`Namespace:   ${wf.metadata.namespace ?? ""}`)
  lines.push(`Status:      ${status.phase || "Pending"}`)
  if (status.message) lines.push(`Message:     ${status.message}`)
  if (status.startedAt) lines.push(`Started:     ${status.startedAt}`)
  if (status.finishedAt) lines.push(`Finished:    ${status.finishedAt}`)
  const rows: Array<ReadonlyArray<string>> = [["STEP", "TEMPLATE", "PODNAME", "WHERE", "DURATION", "MESSAGE"]]
  const root = nodes[wf.metadata.name ?? ""] ?? Object.values(nodes).find((n) => !Object.values(nodes).some((p) => p.children?.includes(n.id)))
  const seen = new Set<string>()
  const walk = (node: Node, prefix: string, last: boolean, depth: number) => {
    if (seen.has(node.id)) return
    seen.add(node.id)
    const icon = icons[node.phase ?? "Pending"] ?? "◷"
    const branch = depth === 0 ? "" : `${prefix}${last ? "└─" : "├─"}`
    const label = node.type === "StepGroup" || node.type === "TaskGroup" ? "·" : (node.displayName ?? node.name)
    const pod = options.pods?.get(node.id)
    rows.push([
      `${branch}${icon} ${label}`,
      // As `argo get`: a template called through a WorkflowTemplate shows as <WorkflowTemplate>/<template>.
      node.templateName ?? (node.templateRef ? `${node.templateRef.name ?? ""}/${node.templateRef.template ?? ""}` : ""),
      node.type === "Pod" ? (pod?.name ?? "") : "",
      node.type === "Pod" && pod ? `${pod.cluster}/${pod.namespace}` : "",
      duration(node, options.now),
      node.message ?? ""
    ])
    const children = (node.children ?? []).map((id) => nodes[id]).filter((n): n is Node => n !== undefined)
    children.forEach((child, i) => walk(child, depth === 0 ? " " : `${prefix}${last ? "  " : "│ "}`, i === children.length - 1, depth + 1))
  }
  if (root) walk(root, "", true, 0)
  for (const node of Object.values(nodes)) if (!seen.has(node.id) && node.name.endsWith(".onExit")) walk(node, "", true, 0)
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => [...(r[c] ?? "")].length)))
  lines.push("")
  for (const row of rows) {
    lines.push(row.map((cell, c) => c === row.length - 1 ? cell : cell + " ".repeat(widths[c]! - [...cell].length)).join("  ").trimEnd())
  }
  return lines.join("\n")
}
