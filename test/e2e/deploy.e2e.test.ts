/**
 * Deployed as shipped: flotilla installed with `kubectl apply -k` (k8s/ through
 * the test overlay test/e2e/deploy: the image is imported, never pulled, and
 * the host-network replicas bind their own loopback address) on main's real
 * nodes (kubelet + containerd + runc, scripts/clusters/node.sh), two replicas
 * with leader election and in-cluster credentials (projected token), probes
 * passing. The remote side from k8s/rbac/remote-cluster.yaml, then the seed's
 * set-up with kubectl; pods really run in containers on cluster-1's real node,
 * with upstream's argoexec (v4.0.5) as init and wait containers and the
 * emissary in main; the wait container writes the WorkflowTaskResult in
 * cluster-1/remote with the pod's own identity.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { auditEventsSince, e2eLogDir, getJson, kubectl, repoRoot, waitFor } from "./support/clusters.js"
import {
  awaitWorkflowCompleted,
  cleanUpDeploy,
  deployDiagnostics,
  deployFlotilla,
  MAIN,
  realNodeClusters,
  REMOTE,
  REMOTE_NS,
  seedSetUp,
  SYSTEM_NS,
  WF_NS
} from "./support/deploy.js"
import { workflowManifest } from "./support/isolatedSetup.js"

/** Skipped only outside CI, on clusters started without real nodes (FLOTILLA_REAL_NODES=""). */
const haveRealNodes = (realNodeClusters().includes(MAIN) && realNodeClusters().includes(REMOTE)) || process.env["CI"] === "true"

let lastDiagnostics = ""
const noteDiagnostics = () => lastDiagnostics
const refreshDiagnostics = async () => {
  lastDiagnostics = await deployDiagnostics()
}

const workflowPhase = async (name: string) =>
  (await getJson<any>(MAIN, ["workflows.argoproj.io", name, "-n", WF_NS]))?.status?.phase as string | undefined

const awaitCompleted = async (name: string, timeoutMs = 240_000) => {
  const wf = await awaitWorkflowCompleted(name, timeoutMs, noteDiagnostics)
  await refreshDiagnostics()
  return wf
}

const podsOf = async (cluster: string, ns: string, workflow: string) =>
  (await getJson<{ items: Array<any> }>(cluster, ["pods", "-n", ns, "-l", `workflows.argoproj.io/workflow=${workflow}`]))?.items ?? []

describe.runIf(haveRealNodes)("deployed as shipped: kubectl apply -k, real nodes, argoexec", () => {
  /** When this run began: the clusters' audit logs hold earlier runs too. */
  const started = new Date()
  beforeAll(async () => {
    await cleanUpDeploy()
    await deployFlotilla(noteDiagnostics).catch(async (e) => {
      throw new Error(`${String(e)}\n${await deployDiagnostics()}`)
    })
    await seedSetUp()
  }, 600_000)

  afterAll(async () => {
    await refreshDiagnostics()
    fs.mkdirSync(e2eLogDir, { recursive: true })
    fs.writeFileSync(path.join(e2eLogDir, "deploy-diagnostics.log"), lastDiagnostics)
    if (process.env["FLOTILLA_E2E_KEEP_DEPLOY"] !== "1") await cleanUpDeploy()
  }, 300_000)

  it("the replicas run the image's `flotilla controller` with in-cluster credentials: one leads, both answer /healthz and /readyz", async () => {
    const pods = (await getJson<{ items: Array<any> }>(MAIN, ["pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/name=flotilla"]))!.items
    expect(pods).toHaveLength(2)
    expect(new Set(pods.map((p) => p.spec.nodeName)).size).toBe(2)
    for (const p of pods) {
      expect(p.spec.containers[0].command).toEqual(["flotilla", "controller"])
      expect(p.spec.serviceAccountName).toBe("flotilla-controller")
      expect(p.status.containerStatuses[0].ready).toBe(true)
      expect(p.status.containerStatuses[0].restartCount).toBe(0)
      // The projected service-account token is mounted: that is what the controller authenticates with.
      expect(p.spec.volumes.some((v: any) => v.projected?.sources?.some((s: any) => s.serviceAccountToken))).toBe(true)
    }
    const lease = await waitFor("the leader lease", async () => {
      const l = await getJson<any>(MAIN, ["lease", "workflow-controller", "-n", SYSTEM_NS])
      return pods.some((p) => p.metadata.name === l?.spec?.holderIdentity) ? l : undefined
    }, 60_000, 500)
    expect(pods.map((p) => p.metadata.name)).toContain(lease.spec.holderIdentity)
    // Both replicas answer /healthz on their own address (host network): the leader with its clusters, the standby as such.
    for (const p of pods) {
      const response = await fetch(`http://${p.status.podIP}:6060/healthz`)
      expect(response.status).toBe(200)
      const body = await response.json() as { leader: boolean; clusters?: Record<string, string> }
      expect(body.leader).toBe(p.metadata.name === lease.spec.holderIdentity)
      if (body.leader) expect(body.clusters?.[MAIN]).toBe("Connected")
      // the readiness probe's path: the leader with every supervised component running, the standby as such
      const ready = await fetch(`http://${p.status.podIP}:6060/readyz`)
      const readyBody = await ready.json() as { leader: boolean; components?: Record<string, string> }
      expect(ready.status, JSON.stringify(readyBody)).toBe(200)
      if (readyBody.leader) expect(Object.values(readyBody.components ?? {})).toContain("Running")
    }
    const logs = await kubectl(MAIN, ["-n", SYSTEM_NS, "logs", lease.spec.holderIdentity])
    await waitFor("the leader's msg=cluster lines", async () => {
      const text = await kubectl(MAIN, ["-n", SYSTEM_NS, "logs", lease.spec.holderIdentity])
      return /msg=cluster cluster=cluster-1 managedNamespace=(\s|$)/.test(text) ? text : undefined
    }, 60_000, 1000, () => logs)
  })

  it("the seed's workflow: its pod runs in a container on cluster-1's real node, with argoexec, and Succeeds", async () => {
    await kubectl(MAIN, ["create", "-f", path.join(repoRoot, "examples/multi-cluster.yaml")])
    const wf = await awaitCompleted("multi-cluster")
    expect(wf.status.phase, `${JSON.stringify(wf.status, null, 2)}\n${lastDiagnostics}`).toBe("Succeeded")
    const [pod] = await podsOf(REMOTE, REMOTE_NS, "multi-cluster")
    expect(pod, "the remote pod").toBeDefined()
    expect(pod.spec.nodeName).toMatch(/^127\.0\.0\.\d+$/)
    expect(pod.spec.initContainers.map((c: any) => c.image)).toEqual(["quay.io/argoproj/argoexec:v4.0.5"])
    expect(pod.status.containerStatuses.map((c: any) => c.containerID.split(":")[0])).toEqual(["containerd", "containerd"])
    expect(pod.metadata.finalizers ?? []).toEqual([])
    // Created by the workflow user; its task result written by the pod's own service account.
    const audit = auditEventsSince(REMOTE, started).filter((e) => e.stage === "ResponseComplete" && (e.responseStatus?.code ?? 0) < 300)
    const creates = audit.filter((e) => e.verb === "create" && e.objectRef?.resource === "pods" && e.objectRef.subresource === undefined && e.objectRef.name === pod.metadata.name)
    expect(creates.map((e) => e.user.username)).toEqual(["system:serviceaccount:remote:workflow"])
    const results = audit.filter((e) => (e.verb === "create" || e.verb === "patch") && e.objectRef?.resource === "workflowtaskresults" && e.objectRef.namespace === REMOTE_NS)
    expect(results.map((e) => e.user.username)).toContain("system:serviceaccount:remote:workflow")
    // The controller writes the workflow's status as its service account: in-cluster, with the projected token.
    const statusWrites = auditEventsSince(MAIN, started).filter((e) =>
      e.stage === "ResponseComplete" && (e.verb === "update" || e.verb === "patch") && e.objectRef?.resource === "workflows" && e.objectRef.name === "multi-cluster"
    )
    expect(new Set(statusWrites.map((e) => e.user.username))).toEqual(new Set(["system:serviceaccount:argo:flotilla-controller"]))
  })

  it("a script step in cluster-1/remote passes its result and an output parameter to a step on main", async () => {
    const name = "remote-to-main"
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: workflowManifest(name, WF_NS, [
        {
          name: "main",
          steps: [
            [{ name: "produce", template: "produce" }],
            [{
              name: "consume",
              template: "consume",
              arguments: {
                parameters: [
                  { name: "result", value: "{{steps.produce.outputs.result}}" },
                  { name: "word", value: "{{steps.produce.outputs.parameters.word}}" }
                ]
              }
            }]
          ]
        },
        {
          name: "produce",
          cluster: REMOTE,
          namespace: REMOTE_NS,
          script: {
            image: "busybox",
            command: ["sh"],
            source: "echo -n flotilla > /tmp/word.txt\necho from-cluster-1\n"
          },
          outputs: { parameters: [{ name: "word", valueFrom: { path: "/tmp/word.txt" } }] }
        },
        {
          name: "consume",
          inputs: { parameters: [{ name: "result" }, { name: "word" }] },
          container: {
            image: "busybox",
            command: ["sh", "-c"],
            args: ['test "{{inputs.parameters.result}}" = from-cluster-1 && test "{{inputs.parameters.word}}" = flotilla && echo "got {{inputs.parameters.result}} {{inputs.parameters.word}}"']
          }
        }
      ])
    })
    const wf = await awaitCompleted(name)
    expect(wf.status.phase, `${JSON.stringify(wf.status, null, 2)}\n${lastDiagnostics}`).toBe("Succeeded")
    const nodes = Object.values(wf.status.nodes) as Array<any>
    const produce = nodes.find((n) => n.displayName === "produce")
    expect(produce.outputs.result).toBe("from-cluster-1")
    expect(produce.outputs.parameters).toEqual([expect.objectContaining({ name: "word", value: "flotilla" })])
    const [local] = await podsOf(MAIN, WF_NS, name)
    expect(local.spec.nodeName).toMatch(/^127\.0\.0\.\d+$/)
    expect(await kubectl(MAIN, ["-n", WF_NS, "logs", local.metadata.name, "-c", "main"])).toContain("got from-cluster-1 flotilla")
  })

  it("the leader pod killed mid-workflow: the other replica takes over within the lease, no pod is created twice", async () => {
    const name = "leader-kill"
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: workflowManifest(name, WF_NS, [
        { name: "main", steps: [[{ name: "a", template: "sleep" }], [{ name: "b", template: "sleep" }], [{ name: "c", template: "sleep" }]] },
        { name: "sleep", cluster: REMOTE, namespace: REMOTE_NS, container: { image: "busybox", command: ["sh", "-c", "sleep 4; echo done"] } }
      ])
    })
    await waitFor("the first remote pod", async () => (await podsOf(REMOTE, REMOTE_NS, name))[0], 120_000, 500)
    const before = await getJson<any>(MAIN, ["lease", "workflow-controller", "-n", SYSTEM_NS])
    const leader = before.spec.holderIdentity as string
    const killedAt = Date.now()
    await kubectl(MAIN, ["-n", SYSTEM_NS, "delete", "pod", leader, "--grace-period=0", "--force", "--wait=false"])
    const after = await waitFor("another replica to hold the lease", async () => {
      const l = await getJson<any>(MAIN, ["lease", "workflow-controller", "-n", SYSTEM_NS])
      return l?.spec?.holderIdentity && l.spec.holderIdentity !== leader ? l : undefined
    }, 120_000, 500)
    const takeover = (Date.now() - killedAt) / 1000
    console.log(`e2e: leader ${leader} killed; ${after.spec.holderIdentity} leads after ${takeover.toFixed(1)}s (lease ${before.spec.leaseDurationSeconds}s)`)
    expect(takeover).toBeLessThan((before.spec.leaseDurationSeconds ?? 15) + 10)
    const wf = await awaitCompleted(name)
    expect(wf.status.phase, `${JSON.stringify(wf.status, null, 2)}\n${lastDiagnostics}`).toBe("Succeeded")
    const pods = await podsOf(REMOTE, REMOTE_NS, name)
    expect(pods).toHaveLength(3)
    const creates = auditEventsSince(REMOTE, started).filter((e) =>
      e.stage === "ResponseComplete" && e.verb === "create" && e.objectRef?.resource === "pods" && e.objectRef.subresource === undefined &&
      e.objectRef.namespace === REMOTE_NS && (e.objectRef.name ?? "").startsWith(name) && e.responseStatus?.code === 201
    )
    expect(creates.map((e) => e.objectRef!.name).sort()).toEqual(pods.map((p) => p.metadata.name).sort())
  })

  it("deleting a workflow deletes its remote pods and releases the finalizer", async () => {
    const before = await podsOf(REMOTE, REMOTE_NS, "multi-cluster")
    expect(before.length).toBeGreaterThan(0)
    await kubectl(MAIN, ["delete", "workflows.argoproj.io", "multi-cluster", "-n", WF_NS, "--wait=false"])
    await waitFor("the remote pods to be deleted", async () => ((await podsOf(REMOTE, REMOTE_NS, "multi-cluster")).length === 0 ? true : undefined), 120_000, 500, noteDiagnostics)
    await waitFor("the workflow to be gone (finalizer released)", async () =>
      (await workflowPhase("multi-cluster")) === undefined && (await getJson(MAIN, ["workflows.argoproj.io", "multi-cluster", "-n", WF_NS])) === undefined ? true : undefined, 120_000, 500, noteDiagnostics)
  })
})
