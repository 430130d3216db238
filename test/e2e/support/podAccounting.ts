/**
 * Bookkeeping of the pods a test run makes, from two independent sources,
 * for the chaos e2e test's figures:
 *
 *  - a ledger fed by watches on the test's namespaces: every pod object
 *    seen (by UID), with the node it claims (annotation
 *    `workflows.argoproj.io/node-id`) and its last phase, so that two pods
 *    made for one node are found even under different names;
 *  - the API servers' audit logs (rotated files included): every pod create
 *    and its answer, so that two successful creates of one name are found
 *    even when the first pod was deleted before a watch saw it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { annotationNodeId, labelWorkflow } from "../../../src/util/argoKeys.js"
import { type AuditEvent, getJson, stateDir, watchEvents, type WatchHandle } from "./clusters.js"

export { annotationNodeId, labelWorkflow }

export interface LedgerPod {
  readonly cluster: string
  readonly namespace: string
  readonly name: string
  readonly uid: string
  readonly workflow: string | undefined
  readonly nodeId: string | undefined
  phase: string | undefined
  deleted: boolean
}

export interface PodLedger {
  readonly pods: () => Array<LedgerPod>
  /**
   * Resolves true as soon as a pod not seen before appears for which `where`
   * holds, false after `timeoutMs`: the moment a controller is creating pods.
   */
  readonly nextNewPod: (where: (pod: LedgerPod) => boolean, timeoutMs: number) => Promise<boolean>
  readonly stop: () => void
}

/** Watches pods in each (cluster, namespace) and remembers every one it saw. */
export const podLedger = (targets: ReadonlyArray<{ readonly cluster: string; readonly namespace: string }>): PodLedger => {
  const byKey = new Map<string, LedgerPod>()
  const waiters = new Set<{ readonly where: (pod: LedgerPod) => boolean; readonly resolve: (seen: boolean) => void }>()
  const handles: Array<WatchHandle> = targets.map(({ cluster, namespace }) =>
    watchEvents(cluster, `/api/v1/namespaces/${namespace}/pods`, (type, pod) => {
      const uid = pod?.metadata?.uid
      if (typeof uid !== "string") return
      const key = `${cluster}/${uid}`
      let entry = byKey.get(key)
      if (entry === undefined) {
        entry = {
          cluster,
          namespace,
          name: pod.metadata.name,
          uid,
          workflow: pod.metadata.labels?.[labelWorkflow],
          nodeId: pod.metadata.annotations?.[annotationNodeId],
          phase: undefined,
          deleted: false
        }
        byKey.set(key, entry)
        for (const w of [...waiters]) {
          if (w.where(entry)) {
            waiters.delete(w)
            w.resolve(true)
          }
        }
      }
      entry.phase = pod.status?.phase ?? entry.phase
      if (type === "DELETED") entry.deleted = true
    })
  )
  return {
    pods: () => [...byKey.values()],
    nextNewPod: (where, timeoutMs) =>
      new Promise((resolve) => {
        const waiter = {
          where,
          resolve: (seen: boolean) => {
            clearTimeout(timer)
            resolve(seen)
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(waiter)
          resolve(false)
        }, timeoutMs)
        waiters.add(waiter)
      }),
    stop: () => handles.forEach((h) => h.stop())
  }
}

/** Every audit event of a cluster from `since` on, the rotated audit files (audit-<time>.log) included. */
export const auditEventsSinceAllFiles = (cluster: string, since: Date): Array<AuditEvent> => {
  const dir = path.join(stateDir, cluster, "logs")
  if (!fs.existsSync(dir)) return []
  const files = fs.readdirSync(dir).filter((f) => /^audit.*\.log$/.test(f)).sort()
  const events: Array<AuditEvent> = []
  for (const f of files) {
    const full = path.join(dir, f)
    if (fs.statSync(full).mtimeMs < since.getTime()) continue
    for (const line of fs.readFileSync(full, "utf8").split("\n")) {
      if (line.trim() === "") continue
      let e: AuditEvent
      try {
        e = JSON.parse(line) as AuditEvent
      } catch {
        continue // a line cut short by a killed API server
      }
      if (e.stageTimestamp !== undefined && Date.parse(e.stageTimestamp) >= since.getTime()) events.push(e)
    }
  }
  return events
}

/** Pod creates (not subresources) in `namespace`, final answers only (ResponseComplete, or ResponseStarted for refusals). */
export const podCreateEvents = (events: ReadonlyArray<AuditEvent>, namespace: string): Array<AuditEvent> => {
  const creates = events.filter((e) =>
    (e.stage === "ResponseComplete" || (e.stage === "ResponseStarted" && (e.responseStatus?.code ?? 0) >= 400)) &&
    e.verb === "create" && e.objectRef?.resource === "pods" && e.objectRef.subresource === undefined &&
    e.objectRef.namespace === namespace
  )
  // one answer per request: a refusal may be logged at both stages
  const complete = new Set(creates.filter((e) => e.stage === "ResponseComplete").map((e) => e.auditID))
  return creates.filter((e) => e.stage === "ResponseComplete" || e.auditID === undefined || !complete.has(e.auditID))
}

/** The credential id (`JTI=...`) a service-account token's request carried, from the audit event. */
export const credentialId = (e: AuditEvent): string | undefined =>
  e.user.extra?.["authentication.kubernetes.io/credential-id"]?.[0]

export interface CreateAccounting {
  /** Successful creates (201). */
  readonly created: number
  /** Names with more than one 201, as `cluster/name xN`. */
  readonly duplicateNames: Array<string>
  /** 409 AlreadyExists answers (a create retried after a crash or a lost answer: not a second pod). */
  readonly alreadyExists: number
  /** Other refusals and errors, by HTTP code. */
  readonly errors: Record<string, number>
  /** (cluster, name) → number of 201s. */
  readonly createdByName: Map<string, number>
  /** `cluster/name` → every answer to a create of that name, in order (refusals before authentication carry no name). */
  readonly answersByName: Map<string, Array<{ readonly code: number; readonly at: number }>>
}

/** Tallies pod creates per (cluster, name) over the given clusters' events. */
export const accountCreates = (byCluster: ReadonlyArray<{ readonly cluster: string; readonly events: ReadonlyArray<AuditEvent> }>): CreateAccounting => {
  const createdByName = new Map<string, number>()
  const answersByName = new Map<string, Array<{ readonly code: number; readonly at: number }>>()
  let created = 0
  let alreadyExists = 0
  const errors: Record<string, number> = {}
  for (const { cluster, events } of byCluster) {
    for (const e of events) {
      const code = e.responseStatus?.code ?? 0
      const key = `${cluster}/${e.objectRef?.name ?? ""}`
      if (e.objectRef?.name !== undefined) {
        answersByName.set(key, [...(answersByName.get(key) ?? []), { code, at: Date.parse(e.stageTimestamp ?? "") }])
      }
      if (code === 201) {
        created++
        createdByName.set(key, (createdByName.get(key) ?? 0) + 1)
      } else if (code === 409) {
        alreadyExists++
      } else {
        errors[String(code)] = (errors[String(code)] ?? 0) + 1
      }
    }
  }
  const duplicateNames = [...createdByName].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`)
  for (const answers of answersByName.values()) answers.sort((a, b) => a.at - b.at)
  return { created, duplicateNames, alreadyExists, errors, createdByName, answersByName }
}

/**
 * Nodes that got more than one pod object (distinct UIDs), whatever the
 * names, across clusters: `workflow/nodeId: cluster/name(uid) ...`.
 */
export const duplicateNodes = (pods: ReadonlyArray<LedgerPod>): Array<string> => {
  const byNode = new Map<string, Array<LedgerPod>>()
  for (const p of pods) {
    if (p.workflow === undefined || p.nodeId === undefined) continue
    const key = `${p.workflow}/${p.nodeId}`
    byNode.set(key, [...(byNode.get(key) ?? []), p])
  }
  return [...byNode]
    .filter(([, ps]) => ps.length > 1)
    .map(([k, ps]) => `${k}: ${ps.map((p) => `${p.cluster}/${p.name}(${p.uid.slice(0, 8)})`).join(" ")}`)
}

/** Pods in any namespace of `cluster` labelled with a workflow for which `ours` holds. */
export const workflowPodsIn = async (cluster: string, ours: (workflow: string) => boolean): Promise<Array<{ cluster: string; namespace: string; name: string; workflow: string; finalizers: Array<string> }>> => {
  const list = await getJson<{ items: Array<any> }>(cluster, ["pods", "-A", "-l", labelWorkflow])
  return (list?.items ?? [])
    .filter((p) => ours(p.metadata.labels[labelWorkflow]))
    .map((p) => ({
      cluster,
      namespace: p.metadata.namespace,
      name: p.metadata.name,
      workflow: p.metadata.labels[labelWorkflow],
      finalizers: p.metadata.finalizers ?? []
    }))
}
