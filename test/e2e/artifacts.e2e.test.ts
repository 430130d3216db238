/**
 * Artifacts across clusters on the real clusters (issue 13), on a real S3
 * server: SeaweedFS started for this file on 127.0.0.1 (the node agents'
 * processes make the transfers on this machine), one bucket, the controller
 * configmap's `artifactRepository` naming it, and the credentials Secret
 * created by hand in every namespace where pods run, in every cluster (the
 * seed's step 3: the controller never copies a secret between clusters).
 *
 *  1. Steps: a step in cluster-1/remote writes an artifact a step on main
 *     reads, and a step on main writes one a step in cluster-1/remote reads.
 *  2. A DAG fans an artifact from main out to cluster-1 and cluster-2 and
 *     gathers what they made back on main.
 *  Both: Succeeded, the readers' outputs are what the writers wrote, every
 *  output artifact's key is upstream's default `<workflow>/<pod name>/<artifact>.tgz`
 *  (keyFormat `{{workflow.name}}/{{pod.name}}`, the pod read in the cluster it
 *  ran in), and the bucket holds exactly those objects under `<workflow>/`.
 *  3. artifactGC OnWorkflowDeletion / OnWorkflowCompletion for a workflow
 *     writing in main, cluster-1 and cluster-2: the finalizer is there while
 *     artifacts remain, the bucket ends empty under `<workflow>/` and no
 *     finalizer is left.
 *
 * Its own namespaces (art-*) and RBAC, like control.e2e.test.ts.
 */
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type S3ServerHandle, startS3Server } from "../support/s3Server.js"
import {
  artifactRepositoryYaml,
  ensureArtifactGCExecutorRole,
  ensureArtifactGCTasksCrd,
  ensureRepositorySecret,
  listKeys
} from "./support/artifactRepository.js"
import { clusterNames, getJson, kubeconfigPath, kubectl, kubectlEnsure, kubectlRaw, nodeName, type Proc, repoRoot, startController, startFlotilla, tailLogs, userName, waitFor } from "./support/clusters.js"
import {
  applyIsolatedSetup,
  cleanUpIsolatedSetup,
  finishedWorkflow,
  getWorkflow,
  MAIN,
  podsOfWorkflow,
  remoteClusters,
  standardSetup,
  workflowManifest
} from "./support/isolatedSetup.js"

const SETUP = standardSetup("art")
const SYSTEM_NS = SETUP.systemNamespace
const WF_NS = "art-local"
const REMOTE_NS = SETUP.remoteNamespace
const BUCKET = "flotilla-e2e-artifacts"
const WF_STEPS = "art-steps"
const WF_DAG = "art-dag"
const WF_GC_DELETION = "art-gc-deletion"
const WF_GC_COMPLETION = "art-gc-completion"
const WORKFLOWS = [WF_STEPS, WF_DAG, WF_GC_DELETION, WF_GC_COMPLETION].map((w) => [w, WF_NS] as const)
const FINALIZER_GC = "workflows.argoproj.io/artifact-gc"

const procs: Array<Proc> = []
let s3: S3ServerHandle | undefined
const diagnostics = (): string => `${tailLogs(procs)}\n--- SeaweedFS (${s3?.logFile}):\n${s3?.logTail(15) ?? ""}`

const sh = (script: string) => ({ image: "alpine:3.7", command: ["sh", "-c"], args: [script] })
const at = (cluster: string | undefined) => (cluster === undefined ? {} : { cluster, namespace: REMOTE_NS })

/** Writes `text` (no newline) as output artifact `data`. */
const writer = (name: string, text: string, cluster?: string) => ({
  name,
  ...at(cluster),
  container: sh(`printf '%s' '${text}' > /tmp/out.txt`),
  outputs: { artifacts: [{ name: "data", path: "/tmp/out.txt" }] }
})

/** Reads input artifact `data` and gives it back as output parameter `got`. */
const reader = (name: string, cluster?: string) => ({
  name,
  ...at(cluster),
  inputs: { artifacts: [{ name: "data", path: "/tmp/in.txt" }] },
  container: sh("cat /tmp/in.txt > /tmp/got.txt"),
  outputs: { parameters: [{ name: "got", valueFrom: { path: "/tmp/got.txt" } }] }
})

/** Reads input artifact `data`, appends `+<tag>` and writes it as output artifact `data`. */
const relay = (name: string, tag: string, cluster?: string) => ({
  name,
  ...at(cluster),
  inputs: { artifacts: [{ name: "data", path: "/tmp/in.txt" }] },
  container: sh(`printf '%s+${tag}' "$(cat /tmp/in.txt)" > /tmp/out.txt`),
  outputs: { artifacts: [{ name: "data", path: "/tmp/out.txt" }] }
})

const nodeNamed = (nodes: ReadonlyArray<any>, displayName: string) => {
  const node = nodes.find((n) => n.displayName === displayName)
  if (node === undefined) throw new Error(`no node ${displayName} in ${nodes.map((n) => n.displayName).join(", ")}`)
  return node
}
const parameter = (node: any, name: string): string | undefined =>
  (node.outputs?.parameters ?? []).find((p: any) => p.name === name)?.value

/**
 * Every output artifact of the workflow's pod nodes with the key upstream's
 * default keyFormat gives it, from the pod found (by its node-id annotation)
 * in the cluster it ran in; checks each node reports that key.
 */
const expectedKeys = async (workflow: string, nodes: ReadonlyArray<any>): Promise<Array<string>> => {
  const pods = new Map<string, { cluster: string; name: string }>()
  for (const c of clusterNames()) {
    for (const pod of await podsOfWorkflow(workflow, c)) {
      pods.set(pod.metadata.annotations?.["workflows.argoproj.io/node-id"], { cluster: c, name: pod.metadata.name })
    }
  }
  const keys: Array<string> = []
  for (const node of nodes.filter((n) => n.type === "Pod")) {
    const pod = pods.get(node.id)
    expect(pod, `the pod of node ${node.displayName} (${node.id})`).toBeDefined()
    for (const artifact of node.outputs?.artifacts ?? []) {
      const key = `${workflow}/${pod!.name}/${artifact.name}.tgz`
      expect(artifact.s3?.key, `node ${node.displayName}'s artifact ${artifact.name} (pod ${pod!.cluster}/${pod!.name})`).toBe(key)
      keys.push(key)
    }
  }
  return keys.sort()
}

const run = async (name: string, templates: ReadonlyArray<Record<string, unknown>>, spec: Record<string, unknown> = {}) => {
  const manifest = JSON.parse(workflowManifest(name, WF_NS, templates))
  await kubectl(MAIN, ["create", "-f", "-"], { input: JSON.stringify({ ...manifest, spec: { ...manifest.spec, ...spec } }) })
  const done = await finishedWorkflow(name, WF_NS, diagnostics, 240_000)
  expect(done.wf.status.phase, `${JSON.stringify(done.wf.status, null, 2)}\n${diagnostics()}`).toBe("Succeeded")
  return done
}

/** Three writers at once: main, cluster-1 and cluster-2. */
const threeWriters = (name: string): ReadonlyArray<Record<string, unknown>> => [
  { name: "main", steps: [[{ name: "on-main", template: "w-main" }, { name: "on-c1", template: "w-c1" }, { name: "on-c2", template: "w-c2" }]] },
  writer("w-main", `${name} main`),
  writer("w-c1", `${name} cluster-1`, "cluster-1"),
  writer("w-c2", `${name} cluster-2`, "cluster-2")
]

describe("artifacts across clusters on real clusters, on a real S3 server", () => {
  beforeAll(async () => {
    await cleanUpIsolatedSetup(SETUP, WORKFLOWS)
    s3 = await startS3Server()
    await s3.createBucket(BUCKET)
    await applyIsolatedSetup(SETUP)
    // the node agents read the secrets their pods mount (as the checkout has the agents' rights)
    for (const c of clusterNames()) await kubectl(c, ["apply", "-f", path.join(repoRoot, "scripts/clusters/node-agent-rbac.yaml")])
    // the repository, for the controller
    await kubectlEnsure(MAIN, [
      "-n", SYSTEM_NS, "create", "configmap", "workflow-controller-configmap",
      "--from-literal=cluster=main", `--from-literal=artifactRepository=${artifactRepositoryYaml(s3, BUCKET)}`
    ])
    for (const c of remoteClusters()) await ensureArtifactGCTasksCrd(c)
    // its credentials where pods run, in every cluster, by hand; upstream's artifact GC rights there, for the
    // service account the GC pods run as (`default`: no artifactGC.serviceAccountName here, as upstream)
    for (const [c, ns] of [[MAIN, WF_NS], ...remoteClusters().map((c) => [c, REMOTE_NS] as const)] as const) {
      await ensureRepositorySecret(c, ns, s3)
      await ensureArtifactGCExecutorRole(c, ns, ["default"])
    }
    // artifact GC in the remote clusters (k8s/rbac/remote-cluster.yaml): the user creates the GC tasks beside the
    // GC pods, the controller reads and deletes them
    for (const c of remoteClusters()) {
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "role", "remote-gc-tasks", "--verb=create", "--resource=workflowartifactgctasks.argoproj.io"])
      await kubectlEnsure(c, ["-n", REMOTE_NS, "create", "rolebinding", "remote-gc-tasks", "--role=remote-gc-tasks", `--user=${userName.workflow}`])
      await kubectlEnsure(c, ["create", "clusterrole", "art-flotilla-remote-gc", "--verb=get,list,watch,delete", "--resource=workflowartifactgctasks.argoproj.io"])
      await kubectlEnsure(c, ["create", "clusterrolebinding", "art-flotilla-remote-gc", "--clusterrole=art-flotilla-remote-gc", `--user=${userName.controller}`])
    }
    for (const c of clusterNames()) {
      procs.push(startFlotilla(`art-kubelet-${c}`, [
        "kubelet", "--kubeconfig", kubeconfigPath(c, "node-agent"), "--node-name", nodeName(c),
        // the repository is on 127.0.0.1: allowed explicitly (artifact calls to loopback are refused otherwise)
        "--artifact-allow-endpoint", `http://${s3!.endpoint}`
      ]))
    }
    procs.push(startController("art-controller", MAIN, SYSTEM_NS))
    for (const c of clusterNames()) {
      await waitFor(`node ${nodeName(c)} registered in ${c}`, async () => (await getJson(c, ["node", nodeName(c)])) ?? undefined, 120_000, 500, diagnostics)
    }
  })

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    for (const p of procs) console.log(`e2e: ${p.name} output: ${p.logFile}`)
    await cleanUpIsolatedSetup(SETUP, WORKFLOWS)
    for (const c of remoteClusters()) {
      await kubectlRaw(c, ["delete", "clusterrolebinding", "art-flotilla-remote-gc", "--ignore-not-found"])
      await kubectlRaw(c, ["delete", "clusterrole", "art-flotilla-remote-gc", "--ignore-not-found"])
    }
    await s3?.stop()
  })

  it("a step in cluster-1 writes an artifact a step on main reads, and the other way round; keys as upstream lays them out", async () => {
    const { nodes } = await run(WF_STEPS, [
      {
        name: "main",
        steps: [
          [{ name: "write-remote", template: "write-remote" }],
          [{ name: "read-main", template: "read-main", arguments: { artifacts: [{ name: "data", from: "{{steps.write-remote.outputs.artifacts.data}}" }] } }],
          [{ name: "write-main", template: "write-main" }],
          [{ name: "read-remote", template: "read-remote", arguments: { artifacts: [{ name: "data", from: "{{steps.write-main.outputs.artifacts.data}}" }] } }]
        ]
      },
      writer("write-remote", "written in cluster-1", "cluster-1"),
      reader("read-main"),
      writer("write-main", "written on main"),
      reader("read-remote", "cluster-1")
    ])
    expect(parameter(nodeNamed(nodes, "read-main"), "got")).toBe("written in cluster-1")
    expect(parameter(nodeNamed(nodes, "read-remote"), "got")).toBe("written on main")
    // the pods ran where their templates say
    expect((await podsOfWorkflow(WF_STEPS, "cluster-1")).map((p) => p.metadata.namespace)).toEqual([REMOTE_NS, REMOTE_NS])
    const keys = await expectedKeys(WF_STEPS, nodes)
    expect(keys).toHaveLength(2)
    expect(await listKeys(s3!, BUCKET, `${WF_STEPS}/`)).toEqual(keys)
  })

  it("a DAG fans an artifact out to cluster-1 and cluster-2 and gathers what they made back on main", async () => {
    const { nodes } = await run(WF_DAG, [
      {
        name: "main",
        dag: {
          tasks: [
            { name: "seed", template: "seed" },
            { name: "left", template: "left", dependencies: ["seed"], arguments: { artifacts: [{ name: "data", from: "{{tasks.seed.outputs.artifacts.data}}" }] } },
            { name: "right", template: "right", dependencies: ["seed"], arguments: { artifacts: [{ name: "data", from: "{{tasks.seed.outputs.artifacts.data}}" }] } },
            {
              name: "gather",
              template: "gather",
              dependencies: ["left", "right"],
              arguments: {
                artifacts: [
                  { name: "l", from: "{{tasks.left.outputs.artifacts.data}}" },
                  { name: "r", from: "{{tasks.right.outputs.artifacts.data}}" }
                ]
              }
            }
          ]
        }
      },
      writer("seed", "seed"),
      relay("left", "cluster-1", "cluster-1"),
      relay("right", "cluster-2", "cluster-2"),
      {
        name: "gather",
        inputs: { artifacts: [{ name: "l", path: "/tmp/l.txt" }, { name: "r", path: "/tmp/r.txt" }] },
        container: sh(`printf '%s|%s' "$(cat /tmp/l.txt)" "$(cat /tmp/r.txt)" > /tmp/got.txt`),
        outputs: { parameters: [{ name: "got", valueFrom: { path: "/tmp/got.txt" } }] }
      }
    ])
    expect(parameter(nodeNamed(nodes, "gather"), "got")).toBe("seed+cluster-1|seed+cluster-2")
    for (const c of ["cluster-1", "cluster-2"]) expect((await podsOfWorkflow(WF_DAG, c)).map((p) => p.metadata.namespace)).toEqual([REMOTE_NS])
    const keys = await expectedKeys(WF_DAG, nodes)
    expect(keys).toHaveLength(3)
    expect(await listKeys(s3!, BUCKET, `${WF_DAG}/`)).toEqual(keys)
  })

  it("artifactGC OnWorkflowDeletion: the objects written in three clusters stay until the workflow is deleted, then the bucket is empty and no finalizer is left", async () => {
    const { wf, nodes } = await run(WF_GC_DELETION, threeWriters(WF_GC_DELETION), { artifactGC: { strategy: "OnWorkflowDeletion" } })
    const keys = await expectedKeys(WF_GC_DELETION, nodes)
    expect(keys).toHaveLength(3)
    expect(await listKeys(s3!, BUCKET, `${WF_GC_DELETION}/`)).toEqual(keys)
    expect(wf.metadata.finalizers ?? []).toContain(FINALIZER_GC)
    await kubectl(MAIN, ["delete", "workflows.argoproj.io", WF_GC_DELETION, "-n", WF_NS, "--wait=false"])
    let last: any
    await waitFor(`workflow ${WF_GC_DELETION} gone (its artifacts collected)`, async () => {
      last = await getWorkflow(WF_GC_DELETION, WF_NS)
      return last === undefined ? true : undefined
    }, 180_000, 1000, () => `${JSON.stringify({ metadata: last?.metadata, status: last?.status }, null, 2)}\n${diagnostics()}`)
    expect(await listKeys(s3!, BUCKET, `${WF_GC_DELETION}/`)).toEqual([])
  })

  it("artifactGC OnWorkflowCompletion: once the workflow completed the bucket is emptied of what it wrote in three clusters and the finalizer removed", async () => {
    await run(WF_GC_COMPLETION, threeWriters(WF_GC_COMPLETION), { artifactGC: { strategy: "OnWorkflowCompletion" } })
    let last: any
    await waitFor(`the artifact-gc finalizer of ${WF_GC_COMPLETION} removed`, async () => {
      last = await getWorkflow(WF_GC_COMPLETION, WF_NS)
      return (last?.metadata?.finalizers ?? []).includes(FINALIZER_GC) ? undefined : true
    }, 180_000, 1000, () => `${JSON.stringify({ metadata: last?.metadata, status: last?.status }, null, 2)}\n${diagnostics()}`)
    expect(await listKeys(s3!, BUCKET, `${WF_GC_COMPLETION}/`)).toEqual([])
    const wf = await getWorkflow(WF_GC_COMPLETION, WF_NS)
    expect(wf.status.artifactGCStatus?.strategiesProcessed?.OnWorkflowCompletion).toBe(true)
    const outputs = Object.values<any>(wf.status.nodes).flatMap((n) => n.outputs?.artifacts ?? [])
    expect(outputs).toHaveLength(3)
    for (const a of outputs) expect(a.deleted, JSON.stringify(a)).toBe(true)
  })
})
