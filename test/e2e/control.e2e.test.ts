/**
 * Suspend, resume and stop on the real clusters, with `flotilla` run as a user
 * runs it (bin/flotilla.mjs, an operator's kubeconfig), issue 12:
 *
 *  1. A workflow runs a step in cluster-1, then waits at a suspend template,
 *     then runs a step in cluster-2. While it waits, the controller is
 *     restarted: the workflow keeps its finalizer (its cluster-1 pod is still
 *     there) and loses nothing. `flotilla resume` then completes the suspend
 *     node and the cluster-2 step runs: Succeeded, one create per pod.
 *  2. A workflow's long step runs in cluster-1; `flotilla stop` deletes its pod,
 *     fails its node with upstream's message, runs the exit handler (in
 *     cluster-2) and ends the workflow Failed, "Stopped with strategy 'Stop'".
 *
 * Its own namespaces (ctl-*) and RBAC, like resilience.e2e.test.ts.
 */
import { execFile } from "node:child_process"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { clusterNames, getJson, kubeconfigPath, kubectl, nodeName, type Proc, repoRoot, startController, startFlotilla, tailLogs, waitFor } from "./support/clusters.js"
import {
  applyIsolatedSetup,
  cleanUpIsolatedSetup,
  finishedWorkflow,
  getWorkflow,
  MAIN,
  podCreates,
  podsOfWorkflow,
  standardSetup,
  workflowManifest
} from "./support/isolatedSetup.js"

const SETUP = standardSetup("ctl")
const SYSTEM_NS = SETUP.systemNamespace
const WF_NS = "ctl-local"
const REMOTE_NS = SETUP.remoteNamespace
const WF_SUSPEND = "ctl-suspend-restart"
const WF_STOP = "ctl-stop"

const procs: Array<Proc> = []
let controller: Proc
const diagnostics = (): string => tailLogs(procs)

/** `flotilla <args>` exactly as a user runs the installed command. */
const flotilla = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, "bin/flotilla.mjs"), ...args], { cwd: repoRoot, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
  })

const alpine = (script: string) => ({ image: "alpine:3.7", command: ["sh", "-c"], args: [script] })

const withExitHandler = (manifest: string, template: string): string => {
  const wf = JSON.parse(manifest)
  return JSON.stringify({ ...wf, spec: { ...wf.spec, onExit: template } })
}

const nodeOf = async (workflow: string, displayName: string) => {
  const wf = await getWorkflow(workflow, WF_NS)
  return Object.values<any>(wf?.status?.nodes ?? {}).find((n) => n.displayName === displayName)
}

describe("suspend, resume and stop on real clusters", () => {
  beforeAll(async () => {
    await cleanUpIsolatedSetup(SETUP, [[WF_SUSPEND, WF_NS], [WF_STOP, WF_NS]])
    await applyIsolatedSetup(SETUP)
    for (const c of clusterNames()) {
      procs.push(startFlotilla(`ctl-kubelet-${c}`, ["kubelet", "--kubeconfig", kubeconfigPath(c, "node-agent"), "--node-name", nodeName(c)]))
    }
    controller = startController("ctl-controller", MAIN, SYSTEM_NS)
    procs.push(controller)
    for (const c of clusterNames()) {
      await waitFor(`node ${nodeName(c)} registered in ${c}`, async () => (await getJson(c, ["node", nodeName(c)])) ?? undefined, 60_000, 500, diagnostics)
    }
  })

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    for (const p of procs) console.log(`e2e: ${p.name} output: ${p.logFile}`)
    await cleanUpIsolatedSetup(SETUP, [[WF_SUSPEND, WF_NS], [WF_STOP, WF_NS]])
  })

  it("a suspended multi-cluster workflow survives a controller restart with its finalizer, and `flotilla resume` completes it", async () => {
    const baseline1 = podCreates(REMOTE_NS, "cluster-1").length
    const baseline2 = podCreates(REMOTE_NS, "cluster-2").length
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: workflowManifest(WF_SUSPEND, WF_NS, [
        { name: "main", steps: [[{ name: "before", template: "before" }], [{ name: "approve", template: "approve" }], [{ name: "after", template: "after" }]] },
        { name: "before", cluster: "cluster-1", namespace: REMOTE_NS, container: alpine("echo before") },
        { name: "approve", suspend: {} },
        { name: "after", cluster: "cluster-2", namespace: REMOTE_NS, container: alpine("echo after") }
      ])
    })
    await waitFor("the approve node waiting", async () => ((await nodeOf(WF_SUSPEND, "approve"))?.phase === "Running" ? true : undefined), 120_000, 500, diagnostics)
    const waiting = await getWorkflow(WF_SUSPEND, WF_NS)
    expect(waiting.metadata.finalizers).toContain("workflows.argoproj.io/multi-cluster")

    // restart the controller while the workflow waits
    await controller.stop()
    controller = startController("ctl-controller-restarted", MAIN, SYSTEM_NS)
    procs.push(controller)
    await waitFor("the restarted controller serving", async () => (controller.log().includes("msg=cluster") ? true : undefined), 60_000, 500, diagnostics)
    const afterRestart = await getWorkflow(WF_SUSPEND, WF_NS)
    expect(afterRestart.status.phase).toBe("Running")
    expect(afterRestart.metadata.finalizers).toContain("workflows.argoproj.io/multi-cluster")
    expect((await nodeOf(WF_SUSPEND, "approve"))?.phase).toBe("Running")

    const resumed = await flotilla(["resume", WF_SUSPEND, "-n", WF_NS, "--kubeconfig", kubeconfigPath(MAIN, "admin")])
    expect(resumed, resumed.stderr).toMatchObject({ code: 0 })
    expect(resumed.stdout).toContain(`workflow ${WF_SUSPEND} resumed`)

    const { wf, nodes } = await finishedWorkflow(WF_SUSPEND, WF_NS, diagnostics, 180_000)
    expect(wf.status.phase, JSON.stringify(wf.status, null, 2)).toBe("Succeeded")
    expect(nodes.filter((n) => n.type !== "StepGroup").map((n) => `${n.displayName} ${n.phase}`).sort())
      .toEqual([`${WF_SUSPEND} Succeeded`, "after Succeeded", "approve Succeeded", "before Succeeded"].sort())
    for (const [cluster, baseline] of [["cluster-1", baseline1], ["cluster-2", baseline2]] as const) {
      const pods = await podsOfWorkflow(WF_SUSPEND, cluster)
      expect(pods).toHaveLength(1)
      const creates = podCreates(REMOTE_NS, cluster).slice(baseline).filter((e) => e.objectRef?.name === pods[0].metadata.name)
      expect(creates.map((e) => e.responseStatus?.code), `creates of ${pods[0].metadata.name} in ${cluster}`).toEqual([201])
    }
  })

  it("`flotilla stop` deletes the running pod in cluster-1, runs the exit handler in cluster-2 and ends the workflow Failed", async () => {
    await kubectl(MAIN, ["create", "-f", "-"], {
      input: withExitHandler(workflowManifest(WF_STOP, WF_NS, [
        { name: "main", steps: [[{ name: "long", template: "long" }], [{ name: "never", template: "bye" }]] },
        { name: "long", cluster: "cluster-1", namespace: REMOTE_NS, container: alpine("sleep 300") },
        { name: "bye", cluster: "cluster-2", namespace: REMOTE_NS, container: alpine("echo bye") }
      ]), "bye")
    })
    await waitFor("the long pod running in cluster-1", async () =>
      (await podsOfWorkflow(WF_STOP, "cluster-1")).find((p) => p.status?.phase === "Running"), 120_000, 500, diagnostics)

    const stopped = await flotilla(["stop", WF_STOP, "-n", WF_NS, "--kubeconfig", kubeconfigPath(MAIN, "admin")])
    expect(stopped, stopped.stderr).toMatchObject({ code: 0 })

    const { wf, nodes } = await finishedWorkflow(WF_STOP, WF_NS, diagnostics, 120_000)
    expect(wf.status.phase, JSON.stringify(wf.status, null, 2)).toBe("Failed")
    expect(wf.status.message).toBe("Stopped with strategy 'Stop'")
    const long = nodes.find((n) => n.displayName === "long")
    expect(long?.phase).toBe("Failed")
    expect(long?.message).toBe("workflow shutdown with strategy:  Stop")
    expect(nodes.find((n) => n.displayName === "never")).toBeUndefined()
    expect(nodes.find((n) => n.name === `${WF_STOP}.onExit`)?.phase).toBe("Succeeded")
    await waitFor("the long pod gone from cluster-1", async () =>
      ((await podsOfWorkflow(WF_STOP, "cluster-1")).length === 0 ? true : undefined), 90_000, 500, diagnostics)

    // a stopped workflow cannot be stopped again: the command says why and fails
    const again = await flotilla(["terminate", WF_STOP, "-n", WF_NS, "--kubeconfig", kubeconfigPath(MAIN, "admin")])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("cannot shutdown a completed workflow")
  })
})
