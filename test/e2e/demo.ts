/**
 * `npm run clusters:demo`: the seed on real clusters, as a user would do it.
 * Builds what is missing and starts clusters main and cluster-1 with real
 * nodes (scripts/clusters/up.sh) unless clusters are up already, deploys
 * flotilla with `kubectl apply -k` (k8s/ through the test overlay), does the
 * seed's set-up with kubectl, submits examples/multi-cluster.yaml, prints the
 * node tree and the pod's output, and exits 0 only when the workflow
 * Succeeded. The clusters stay up afterwards (npm run clusters:down stops them).
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { renderWorkflow } from "../../src/cli/Tree.js"
import { clustersUp, getJson, kubectl, kubectlRaw, repoRoot, stateDir } from "./support/clusters.js"
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
  WF_NS
} from "./support/deploy.js"

const say = (line: string) => console.error(`[demo ${new Date().toISOString().slice(11, 19)}] ${line}`)
const WORKFLOW = "multi-cluster"

const main = async (): Promise<number> => {
  const t0 = Date.now()
  if (!(await clustersUp())) {
    say("starting clusters main and cluster-1 with real nodes (scripts/clusters/up.sh; builds what is missing)")
    execFileSync("bash", [path.join(repoRoot, "scripts/clusters/up.sh")], {
      stdio: "inherit",
      env: {
        ...process.env,
        FLOTILLA_CLUSTERS: process.env["FLOTILLA_CLUSTERS"] ?? `${MAIN} ${REMOTE}`,
        FLOTILLA_REAL_NODES: process.env["FLOTILLA_REAL_NODES"] ?? `${MAIN}:2 ${REMOTE}`
      }
    })
  } else {
    say(`reusing the clusters up in ${stateDir}`)
  }
  const real = realNodeClusters()
  if (!real.includes(MAIN) || !real.includes(REMOTE)) {
    throw new Error(`the clusters up have real nodes in [${real.join(", ")}]; the demo needs ${MAIN} and ${REMOTE} (npm run clusters:down, then run the demo again)`)
  }

  say("kubectl apply -k: flotilla on main (two replicas, leader election, in-cluster credentials)")
  await cleanUpDeploy()
  await deployFlotilla()
  say("the seed's set-up with kubectl: remote-cluster.yaml in cluster-1, argo-kubeconfig, configmap, workflow-kubeconfig")
  await seedSetUp()
  say(`kubectl create -f examples/multi-cluster.yaml`)
  await kubectl(MAIN, ["create", "-f", path.join(repoRoot, "examples/multi-cluster.yaml")])
  const wf = await awaitWorkflowCompleted(WORKFLOW, 300_000).catch(async (e) => {
    throw new Error(`${String(e)}\n${await deployDiagnostics()}`)
  })

  const pods = new Map<string, { name: string; cluster: string; namespace: string }>()
  const remotePods = (await getJson<{ items: Array<any> }>(REMOTE, ["pods", "-n", REMOTE_NS, "-l", `workflows.argoproj.io/workflow=${WORKFLOW}`]))?.items ?? []
  for (const pod of remotePods) {
    const id = pod.metadata.annotations?.["workflows.argoproj.io/node-id"]
    if (id) pods.set(id, { name: pod.metadata.name, cluster: REMOTE, namespace: REMOTE_NS })
  }
  console.log(renderWorkflow(wf, { now: Date.now(), pods }))
  for (const pod of remotePods) {
    const logs = await kubectlRaw(REMOTE, ["-n", REMOTE_NS, "logs", pod.metadata.name, "-c", "main"])
    console.log(`\n--- ${pod.metadata.name} (${REMOTE}/${REMOTE_NS}, node ${pod.spec.nodeName}) ---\n${logs.stdout.trimEnd()}`)
  }
  const phase = wf.status?.phase as string
  say(`workflow ${WF_NS}/${WORKFLOW} ${phase} in ${((Date.now() - t0) / 1000).toFixed(0)}s; the clusters stay up:`)
  say(`  kubectl --kubeconfig ${path.join(stateDir, "kubeconfig")} --context ${MAIN} -n argo get pods -o wide`)
  say("  npm run clusters:down")
  return phase === "Succeeded" ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof Error ? error.message : String(error))
    process.exit(1)
  }
)
