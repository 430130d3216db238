/**
 * Label and field selectors of lists and watches: the fields each kind
 * supports (as the real server does; others are Invalid), and the matcher
 * built from a request's options.
 */
import { Result } from "effect"
import type { KubeObject, ListOptions, ResourceKind } from "../../kube/api/Resources.js"
import { isRecord } from "../../util/records.js"
import * as LabelSelector from "../LabelSelector.js"
import { fail } from "./errors.js"
import type { Ctx } from "./state.js"

export const commonFields = ["metadata.name", "metadata.namespace"]
export const kindFields: Partial<Record<ResourceKind, ReadonlyArray<string>>> = {
  pods: [
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName"
  ],
  events: [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type"
  ],
  secrets: ["type"],
  namespaces: ["status.phase"]
}

export const fieldValue = (object: KubeObject, field: string): string => {
  let current: unknown = object
  for (const part of field.split(".")) {
    if (!isRecord(current)) return ""
    current = current[part]
  }
  if (typeof current === "string") return current
  if (typeof current === "number" || typeof current === "boolean") return String(current)
  if (field === "source" && isRecord(current)) return typeof current.component === "string" ? current.component : ""
  return ""
}

export const buildMatcher = (ctx: Ctx, kind: ResourceKind, options: ListOptions | undefined): (o: KubeObject) => boolean => {
  const labels = LabelSelector.parse(options?.labelSelector ?? "")
  if (Result.isFailure(labels)) throw fail(ctx, "Invalid", `unable to parse requirement: ${labels.failure.detail}`)
  const fields = LabelSelector.parseFieldSelector(options?.fieldSelector ?? "")
  if (Result.isFailure(fields)) throw fail(ctx, "Invalid", fields.failure.detail)
  const supported = [...commonFields, ...(kindFields[kind] ?? [])]
  for (const requirement of fields.success) {
    if (!supported.includes(requirement.field)) {
      throw fail(ctx, "Invalid", `field label not supported: ${requirement.field}`)
    }
  }
  const labelSelector = labels.success
  const fieldSelector = fields.success
  if (labelSelector.length === 0 && fieldSelector.length === 0) return () => true
  return (object) =>
    LabelSelector.matches(labelSelector, object.metadata.labels) &&
    LabelSelector.matchesFields(fieldSelector, (field) => fieldValue(object, field))
}
