/**
 * Resource templates (`resource: {action, manifest, ...}`), as upstream's
 * `executeResource` (workflow/controller/operator.go): the node is a Pod node
 * whose pod runs the executor's `argoexec resource <action>` (pod.ts lays it
 * out as workflowpod.go does), so the resource is created, patched or read by
 * the pod, with the pod's service account, in the pod's cluster and
 * namespace: wherever the template targets, by whoever created the pod
 * there (the workflow owner in another cluster or namespace), never with the
 * controller's identity. Conditions and output parameters come back through
 * the pod's phase and its task result like any pod's.
 *
 * What the controller checks before any pod is made (upstream's validation
 * and what flotilla cannot do yet) errors the node here.
 */
import * as YAML from "yaml"
import { isRecord } from "../../util/records.js"
import type { Template } from "../model/Workflow.js"
import type { ExecOpts, Node } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { executePod } from "./podNodes.js"
import { isInvalidTarget, resolveTarget } from "./targeting.js"

/** The actions `argoexec resource` takes (upstream's validation lists them in this order). */
export const resourceActions: ReadonlyArray<string> = ["get", "create", "apply", "delete", "replace", "patch"]

/** A Resource template's Pod node; undefined while parallelism holds it back. */
export const executeResource = (op: OperationState, nodeName: string, tmpl: Template, opts: ExecOpts, retried: boolean): Node | undefined => {
  const existing = op.byName(nodeName)
  // Past Pending the pod exists: what it runs was decided when it was made.
  if (existing !== undefined && existing.phase !== "Pending") return existing
  const prepared = prepareResourceTemplate(op, tmpl, opts)
  if (typeof prepared === "string") return op.errorNode(nodeName, prepared, opts, tmpl.name)
  return executePod(op, nodeName, prepared, opts, retried)
}

/**
 * The template the pod runs, or why it cannot run: upstream's checks of the
 * resource fields (`validate.go`; `manifestFrom` names one of the template's
 * input artifacts, which the pod's init loads and its executor reads the
 * manifest from), and `setOwnerReference` applied to the manifest as
 * upstream's controller does (a controller reference to the Workflow).
 */
export const prepareResourceTemplate = (op: OperationState, tmpl: Template, opts: ExecOpts): Template | string => {
  const resource = tmpl.resource!
  const at = `templates.${tmpl.name ?? ""}.resource`
  if (!resourceActions.includes(resource.action)) {
    return `${at}.action must be one of: ${resourceActions.join(", ")}`
  }
  const manifest = resource.manifest ?? ""
  const manifestFrom = resource.manifestFrom
  if (resource.action !== "delete" && resource.action !== "get") {
    if (manifest === "" && manifestFrom === undefined) return `either ${at}.manifest or ${at}.manifestFrom must be specified`
    if (manifest !== "" && manifestFrom !== undefined) return "shouldn't have both `manifest` and `manifestFrom` specified in `Manifest` for resource template"
  }
  if (manifestFrom !== undefined) {
    const name = manifestFrom.artifact?.name ?? ""
    if (!(tmpl.inputs?.artifacts ?? []).some((a) => a.name === name)) {
      return `artifact ${name} in \`manifestFrom\` refer to a non-exist artifact`
    }
    // The manifest is only known in the pod: an owner reference cannot be set on it here.
    if (resource.setOwnerReference === true) return `${at}.setOwnerReference is not supported with manifestFrom: the manifest is read in the pod`
    return tmpl
  }
  let parsed: unknown
  try {
    parsed = manifest === "" ? undefined : YAML.parse(manifest)
  } catch {
    return `${at}.manifest must be a valid yaml`
  }
  if (resource.setOwnerReference !== true) return tmpl
  if (!isRecord(parsed)) return `${at}.manifest must be a valid yaml object to set an owner reference on`

  // An owner reference only holds where the Workflow is: in its own cluster and namespace
  // (Kubernetes forbids cross-namespace owners; the garbage collector would delete the resource at once).
  const target = resolveTarget(tmpl, op.wf, op.config.localCluster, opts.placement)
  if (!isInvalidTarget(target)) {
    const metadata = isRecord(parsed.metadata) ? parsed.metadata : {}
    const namespace = typeof metadata.namespace === "string" && metadata.namespace !== "" ? metadata.namespace : target.namespace
    if (target.cluster !== op.config.localCluster || namespace !== op.wf.metadata.namespace) {
      const where = target.cluster !== op.config.localCluster ? `cluster "${target.cluster}"` : `namespace "${namespace}"`
      return `${at}.setOwnerReference is not supported for a resource in ${where}: its owner, the Workflow, is in ` +
        `namespace "${op.wf.metadata.namespace}" of this cluster, and the garbage collector would delete the resource at once`
    }
  }
  const metadata: Record<string, unknown> = isRecord(parsed.metadata) ? { ...parsed.metadata } : {}
  const owners = Array.isArray(metadata.ownerReferences) ? metadata.ownerReferences : []
  metadata.ownerReferences = [...owners, {
    apiVersion: op.wf.apiVersion ?? "argoproj.io/v1alpha1",
    kind: op.wf.kind ?? "Workflow",
    name: op.wf.metadata.name,
    uid: op.wf.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true
  }]
  return { ...tmpl, resource: { ...resource, manifest: YAML.stringify({ ...parsed, metadata }) } }
}
