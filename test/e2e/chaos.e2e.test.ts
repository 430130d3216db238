/**
 * Chaos on the real clusters (issue 10): 200 workflows across main,
 * cluster-1 and cluster-2, submitted in waves while, on a schedule drawn
 * from a seeded random generator (seed printed; CHAOS_SEED=<n> replays it):
 *
 *  - the controller is SIGKILLed 20 times at random moments and started
 *    again at once, as its Deployment's container would be (same
 *    LEADER_ELECTION_IDENTITY, the pod name, so it takes the Lease back).
 *    Each kill lands on a controller at work (one still starting gets until
 *    it leads); about half of them strike within 80 ms of a new pod
 *    appearing in a remote cluster, between the create's answer and the
 *    status write that records the pod;
 *  - a remote cluster's kube-apiserver restarts 5 times: cluster-1 with its
 *    etcd (data kept), cluster-2 API server only with its etcd compacted
 *    while it is down; cluster-2 runs without the watch cache the whole time
 *    (as in resilience.e2e.test.ts), so a resumed watch gets 410 Gone from
 *    etcd itself; no kill falls near a compaction, so a controller that
 *    watched the old history is there to get it;
 *  - each remote cluster is partitioned once for 60 s: its kube-apiserver is
 *    SIGSTOPped (connections open, nothing answers) right after a pod
 *    appeared there, so creates are caught in flight, then SIGCONTed;
 *  - the workflow user's kubeconfig secret is rotated: new tokens, the
 *    secret replaced, the old tokens revoked. The user is a service account
 *    in each remote namespace whose tokens are bound to an anchor Secret
 *    (support/userTokens.ts), so revoking takes no API server restart.
 *
 * Pods run on kwok nodes of this test's own (kwok plays the kubelet and
 * ends each pod Succeeded after its `run-for`, scripts/clusters/kwok-pod-stages.yaml,
 * as in kwok.e2e.test.ts): nothing waits on task results. Workloads: a
 * single remote pod; steps main → one remote cluster → the other; a DAG
 * fanning out across both remote clusters.
 *
 * At the end: every workflow Succeeded; no lost completion (every pod node
 * Succeeded); no duplicate pod (audit log: one 201 per pod name per cluster,
 * 409s counted apart; the watched pods: one pod per node, whatever its
 * name); after deleting the workflows, none is left (finalizers released)
 * and no pod of theirs in any cluster. The figures are printed on one line,
 * `chaos figures: {...}`.
 *
 * Its own namespaces (chaos-*), RBAC, kwok nodes and controller; cluster-2
 * gets its usual API server flags back at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  getJson,
  kubeconfigDoc,
  kubectl,
  kubectlEnsure,
  kubectlRaw,
  sleep,
  tailLogs,
  userName,
  waitFor,
  watchEvents,
  type WatchHandle,
  writePrivateFile
} from "./support/clusters.js"
import {
  type ChaosPlan,
  chaosSeed,
  ControllerReplica,
  describePlan,
  type Disruption,
  pauseApiserver,
  planChaos,
  resumeAllApiservers,
  resumeApiserver,
  seededRandom
} from "./support/chaos.js"
import { apiserverReady, restartControlPlane } from "./support/controlPlane.js"
import { applyIsolatedSetup, cleanUpIsolatedSetup, type IsolatedSetup, MAIN, remoteClusters, standardSetup } from "./support/isolatedSetup.js"
import {
  accountCreates,
  auditEventsSinceAllFiles,
  credentialId,
  duplicateNodes,
  type PodLedger,
  podCreateEvents,
  podLedger,
  workflowPodsIn
} from "./support/podAccounting.js"
import { type BoundToken, ensureTokenUser, issueBoundToken, revokeBoundToken, tokenStatus } from "./support/userTokens.js"

const SETUP: IsolatedSetup = { ...standardSetup("chaos"), userSecretIn: [], userMayCreateIn: [] }
const WF_NS = SETUP.workflowNamespaces[0]!
const REMOTE_NS = SETUP.remoteNamespace
const USER_SA = "chaos-user"
const USER_SECRET = "workflow-kubeconfig"
const NODE_TYPE = "chaos-kwok"
const kwokNode = (cluster: string) => `chaos-kwok-${cluster}`

const WORKFLOWS = Number(process.env["CHAOS_WORKFLOWS"] ?? 200)
const WINDOW_SECONDS = Number(process.env["CHAOS_WINDOW_SECONDS"] ?? 300)
const WAVES = 10
const KILLS = 20
const PARTITION_SECONDS = 60
/** Restarts per remote cluster: cluster-1 with etcd, cluster-2 API server only with compaction. */
const RESTARTS = ["cluster-1", "cluster-1", "cluster-1", "cluster-2", "cluster-2"]
const COMPACT_ON = "cluster-2"
const NO_WATCH_CACHE = ["--watch-cache=false"]
const DRAIN_TIMEOUT_MS = 300_000
const DELETE_TIMEOUT_MS = 240_000
/** The controller reads the user's secret at every create; creates already under way get this long before the old token goes. */
const ROTATION_GRACE_MS = 5_000

const seed = chaosSeed()
const rng = seededRandom(seed)

let replica: ControllerReplica | undefined
let ledger: PodLedger | undefined
let workflowWatch: WatchHandle | undefined
let compactOnChanged = false
let aborted = false
const startedAt = Date.now()

const diagnostics = (): string => (replica ? tailLogs([replica.current]) : "")

// ---------------------------------------------------------------- workloads

type Kind = "single" | "steps" | "dag"
interface PlannedWorkflow {
  readonly name: string
  readonly kind: Kind
  readonly podNodes: number
  readonly manifest: Record<string, unknown>
}

/** A pod template for this test's kwok node of the cluster (main when `cluster` is undefined). */
const kwokPod = (name: string, cluster: string | undefined) => ({
  name,
  ...(cluster === undefined ? {} : { cluster, namespace: REMOTE_NS }),
  metadata: { annotations: { "e2e.flotilla.dev/outcome": "succeed", "e2e.flotilla.dev/run-for": `${rng.int(1, 4)}s` } },
  nodeSelector: { type: NODE_TYPE },
  tolerations: [{ key: "kwok.x-k8s.io/node", operator: "Exists", effect: "NoSchedule" }],
  container: { image: "alpine:3.7", command: ["sh", "-c", "exit 0"] }
})

const planWorkflow = (wave: number, index: number): PlannedWorkflow => {
  const r = rng.next()
  const kind: Kind = r < 0.4 ? "single" : r < 0.75 ? "steps" : "dag"
  const [a, b] = rng.shuffle(remoteClusters())
  const name = `chaos-${String(wave).padStart(2, "0")}-${String(index).padStart(2, "0")}-${kind}`
  let templates: Array<Record<string, unknown>>
  let podNodes: number
  if (kind === "single") {
    templates = [kwokPod("main", a)]
    podNodes = 1
  } else if (kind === "steps") {
    templates = [
      { name: "main", steps: [[{ name: "local", template: "local" }], [{ name: "remote", template: "remote" }], [{ name: "other", template: "other" }]] },
      kwokPod("local", undefined),
      kwokPod("remote", a),
      kwokPod("other", b)
    ]
    podNodes = 3
  } else {
    templates = [
      {
        name: "main",
        dag: {
          tasks: [
            { name: "root", template: "on-a" },
            { name: "fan-a", template: "on-a", dependencies: ["root"] },
            { name: "fan-b1", template: "on-b", dependencies: ["root"] },
            { name: "fan-b2", template: "on-b", dependencies: ["root"] },
            { name: "join", template: "on-a", dependencies: ["fan-a", "fan-b1", "fan-b2"] }
          ]
        }
      },
      kwokPod("on-a", a),
      kwokPod("on-b", b)
    ]
    podNodes = 5
  }
  return {
    name,
    kind,
    podNodes,
    manifest: {
      apiVersion: "argoproj.io/v1alpha1",
      kind: "Workflow",
      metadata: { name, namespace: WF_NS, labels: { "e2e.flotilla.dev/chaos-seed": String(seed) } },
      spec: { entrypoint: "main", serviceAccountName: "workflow", templates }
    }
  }
}

// ---------------------------------------------------------------- set-up and clean-up

/** Writes the user's kubeconfig secret in the workflow namespace: one context per remote cluster with its token. */
const writeUserSecret = async (tokens: ReadonlyArray<BoundToken>, generation: number): Promise<void> => {
  const doc = kubeconfigDoc({
    users: tokens.map((t) => ({ name: `workflow@${t.cluster}`, token: t.token })),
    contexts: tokens.map((t) => ({ name: t.cluster, cluster: t.cluster, user: `workflow@${t.cluster}`, namespace: REMOTE_NS }))
  })
  const file = writePrivateFile(`chaos-workflow-kubeconfig-${generation}`, doc)
  await kubectlEnsure(MAIN, ["-n", WF_NS, "create", "secret", "generic", USER_SECRET, `--from-file=value=${file}`])
}

const ensureKwokNode = async (cluster: string): Promise<void> => {
  const node = {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: kwokNode(cluster),
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: { "kubernetes.io/hostname": kwokNode(cluster), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", type: NODE_TYPE }
    },
    spec: { taints: [{ key: "kwok.x-k8s.io/node", value: "fake", effect: "NoSchedule" }] },
    status: { allocatable: { cpu: "64", memory: "512Gi", pods: "2000" }, capacity: { cpu: "64", memory: "512Gi", pods: "2000" } }
  }
  await kubectl(cluster, ["apply", "-f", "-"], { input: JSON.stringify(node) })
  await waitFor(`kwok node ${kwokNode(cluster)} Ready in ${cluster}`, async () => {
    const n = await getJson<any>(cluster, ["node", kwokNode(cluster)])
    return n?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True") ? true : undefined
  }, 60_000, 500)
}

/** Workflows left in the workflow namespace lose their finalizer (for clean-up only). */
const releaseWorkflows = async (): Promise<void> => {
  const list = await getJson<{ items: Array<any> }>(MAIN, ["workflows.argoproj.io", "-n", WF_NS]).catch(() => undefined)
  for (const wf of list?.items ?? []) {
    if ((wf.metadata.finalizers ?? []).length === 0) continue
    await kubectlRaw(MAIN, ["patch", "workflows.argoproj.io", wf.metadata.name, "-n", WF_NS, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'])
  }
  await kubectlRaw(MAIN, ["delete", "workflows.argoproj.io", "--all", "-n", WF_NS, "--wait=false"])
}

const cleanUp = async (): Promise<void> => {
  await releaseWorkflows()
  await cleanUpIsolatedSetup(SETUP, [])
  for (const c of [MAIN, ...remoteClusters()]) await kubectlRaw(c, ["delete", "node", kwokNode(c), "--ignore-not-found"])
}

// ---------------------------------------------------------------- the run

/** Workflow phases as the watch last showed them. */
const phases = new Map<string, { phase: string; message?: string }>()
const finished = (name: string) => ["Succeeded", "Failed", "Error"].includes(phases.get(name)?.phase ?? "")

describe("chaos on the real clusters", () => {
  let tokensV1: Array<BoundToken> = []

  beforeAll(async () => {
    console.log(`chaos seed: ${seed} (CHAOS_SEED=${seed} replays this schedule)`)
    await cleanUp()
    await applyIsolatedSetup(SETUP)
    for (const c of remoteClusters()) await ensureTokenUser(c, REMOTE_NS, USER_SA)
    tokensV1 = await Promise.all(remoteClusters().map((c) => issueBoundToken(c, REMOTE_NS, USER_SA, `${USER_SA}-token-1`)))
    await writeUserSecret(tokensV1, 1)
    for (const c of [MAIN, ...remoteClusters()]) await ensureKwokNode(c)
    // watches served by etcd itself: a resumed watch from a compacted version is refused (410)
    compactOnChanged = true
    await restartControlPlane(COMPACT_ON, { apiserverOnly: true, apiserverArgs: NO_WATCH_CACHE })
    ledger = podLedger([{ cluster: MAIN, namespace: WF_NS }, ...remoteClusters().map((c) => ({ cluster: c, namespace: REMOTE_NS }))])
    workflowWatch = watchEvents(MAIN, `/apis/argoproj.io/v1alpha1/namespaces/${WF_NS}/workflows`, (type, wf) => {
      const name = wf?.metadata?.name
      if (typeof name !== "string") return
      if (type === "DELETED") phases.delete(name)
      else phases.set(name, { phase: wf.status?.phase ?? "", message: wf.status?.message })
    })
  })

  afterAll(async () => {
    aborted = true
    resumeAllApiservers()
    await replica?.stop()
    ledger?.stop()
    workflowWatch?.stop()
    for (const p of replica?.incarnations ?? []) console.log(`e2e: ${p.name} output: ${p.logFile}`)
    // whatever happened, cluster-2 gets up.sh's API server flags back
    if (compactOnChanged || !(await apiserverReady(COMPACT_ON))) await restartControlPlane(COMPACT_ON, { apiserverOnly: true })
    await cleanUp()
  })

  it(`${WORKFLOWS} workflows through ${KILLS} controller SIGKILLs, ${RESTARTS.length} API server restarts, 60 s partitions, forced 410s and a token rotation: all Succeeded, nothing lost, duplicated or left behind`, async () => {
    const remotes = remoteClusters()
    const plan: ChaosPlan = planChaos(rng, {
      windowSeconds: WINDOW_SECONDS,
      kills: KILLS,
      remotes,
      partitionSeconds: PARTITION_SECONDS,
      restarts: RESTARTS,
      compactOn: COMPACT_ON,
      killFreeBefore: 20,
      killFreeAfter: 30,
      minKillGap: 5,
      midCreateShare: 0.5
    })
    const waveAt = (i: number) => Math.round((i * (WINDOW_SECONDS - 30)) / (WAVES - 1))
    const perWave = Math.ceil(WORKFLOWS / WAVES)
    const planned: Array<PlannedWorkflow> = []
    for (let w = 0; w < WAVES; w++) {
      for (let i = 0; i < perWave && planned.length < WORKFLOWS; i++) planned.push(planWorkflow(w, i))
    }
    console.log(`chaos plan (seed ${seed}): ${describePlan(plan)}; ${WAVES} waves at ${Array.from({ length: WAVES }, (_, i) => `${waveAt(i)}s`).join(" ")}`)

    // ------------------------------------------------------------ controller
    let t0 = Date.now()
    const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1)
    const note = (message: string) => {
      console.log(`chaos +${elapsed()}s ${message}`)
    }
    replica = new ControllerReplica("chaos-controller", MAIN, SETUP.systemNamespace, note)
    await waitFor("the controller to lead", () => (replica!.leading() ? true : undefined), 120_000, 250, diagnostics)
    const setupSeconds = (Date.now() - startedAt) / 1000

    // ------------------------------------------------------------ chaos phase
    t0 = Date.now()
    const since = new Date(t0 - 2000)
    const at = async (seconds: number) => {
      const wait = t0 + seconds * 1000 - Date.now()
      if (wait > 0) await sleep(wait)
    }
    // one disruption at a time per remote cluster (the rotation needs both up)
    const locks = new Map<string, Promise<unknown>>()
    const withLock = <A>(cluster: string, f: () => Promise<A>): Promise<A> => {
      const run = (locks.get(cluster) ?? Promise.resolve()).then(f)
      locks.set(cluster, run.catch(() => undefined))
      return run
    }
    // no kill while a compaction restart is near (absolute ms; `until` set when it is over)
    const killGuards: Array<{ from: number; until: number | undefined }> = []
    const done = { kills: 0, killsOfLeader: 0, killsMidCreate: 0, restarts: 0, partitions: [] as Array<{ cluster: string; seconds: number }>, compactions: 0 }
    let rotation: { replacedAt?: number; revokedAt?: number; tokensV2?: Array<BoundToken>; refusedAfterMs?: number } = {}

    const runDisruption = async (d: Disruption) => {
      if (aborted) return
      if (d._tag === "Partition") {
        // while creates are under way there, so some are caught in flight
        const midCreate = await ledger!.nextNewPod((p) => p.cluster === d.cluster, 20_000)
        const pid = pauseApiserver(d.cluster)
        const from = Date.now()
        note(`partition: ${d.cluster}'s kube-apiserver (pid ${pid}) SIGSTOPped for ${d.seconds}s${midCreate ? ", right after a pod appeared there" : ""}`)
        await sleep(d.seconds * 1000)
        resumeApiserver(pid)
        const seconds = (Date.now() - from) / 1000
        done.partitions.push({ cluster: d.cluster, seconds })
        await waitFor(`${d.cluster}'s API server answering after SIGCONT`, async () => ((await apiserverReady(d.cluster)) ? true : undefined), 60_000, 250)
        note(`partition of ${d.cluster} over after ${seconds.toFixed(1)}s (SIGCONT), API server ready`)
      } else {
        note(`restart: ${d.cluster} ${d.withEtcd ? `kube-apiserver and etcd, down ${d.downSeconds}s` : "kube-apiserver"}${d.compact ? ", etcd compacted while it is down" : ""}`)
        const r = await restartControlPlane(d.cluster, {
          apiserverOnly: !d.withEtcd,
          downSeconds: d.downSeconds,
          compact: d.compact,
          ...(d.cluster === COMPACT_ON ? { apiserverArgs: NO_WATCH_CACHE } : {})
        })
        done.restarts++
        if (d.compact) done.compactions++
        note(`restart of ${d.cluster} done${r.compactedRevision ? ` (etcd compacted at revision ${r.compactedRevision})` : ""}`)
      }
    }

    const disruptionChains = remotes.map(async (cluster) => {
      for (const d of plan.disruptions.filter((x) => x.cluster === cluster)) {
        await at(d.at)
        const guard = d._tag === "Restart" && d.compact ? { from: t0 + (d.at - 20) * 1000, until: undefined as number | undefined } : undefined
        if (guard) killGuards.push(guard)
        try {
          await withLock(cluster, () => runDisruption(d))
        } finally {
          if (guard) guard.until = Date.now() + 30_000
        }
      }
    })
    // compaction guards start before the restart does
    for (const d of plan.disruptions) {
      if (d._tag === "Restart" && d.compact) killGuards.push({ from: t0 + (d.at - 20) * 1000, until: t0 + (d.at + 15 + 30) * 1000 })
    }

    const guarded = () => killGuards.some((g) => Date.now() >= g.from && (g.until === undefined || Date.now() < g.until))
    const killer = (async () => {
      for (const k of plan.kills) {
        await at(k.at)
        while (!aborted && guarded()) await sleep(250)
        // a kill lands on a controller at work: one still starting (tsx, caches) gets until it leads
        let waited = false
        if (!replica!.leading()) {
          waited = true
          await waitFor("the controller to lead", () => (replica!.leading() || aborted ? true : undefined), 120_000, 100, diagnostics)
        }
        let midCreate = false
        if (k.midCreate) midCreate = await ledger!.nextNewPod((p) => p.cluster !== MAIN, 20_000)
        if (k.midCreate || waited) await sleep(k.delay * 1000)
        while (!aborted && guarded()) await sleep(250)
        if (aborted) return
        const victim = replica!.current.name
        const led = replica!.leading()
        await replica!.kill()
        done.kills++
        if (led) done.killsOfLeader++
        if (midCreate) done.killsMidCreate++
        note(`SIGKILL #${done.kills}: ${victim}${led ? " (leading" : " (not leading yet"}${midCreate ? `, ${k.delay}s after a remote pod appeared)` : ")"}, restarted as ${replica!.current.name}`)
      }
    })()

    const rotator = (async () => {
      await at(plan.rotationAt)
      if (aborted) return
      await withLock(remotes[0]!, () => withLock(remotes[1]!, async () => {
        const tokensV2 = await Promise.all(remotes.map((c) => issueBoundToken(c, REMOTE_NS, USER_SA, `${USER_SA}-token-2`)))
        await writeUserSecret(tokensV2, 2)
        rotation = { ...rotation, tokensV2, replacedAt: Date.now() }
        note(`rotation: ${WF_NS}/${USER_SECRET} now holds new tokens (${tokensV2.map((t) => `${t.cluster} JTI=${t.jti.slice(0, 8)}`).join(", ")})`)
        await sleep(ROTATION_GRACE_MS)
        await Promise.all(tokensV1.map(revokeBoundToken))
        rotation.revokedAt = Date.now()
        await waitFor("the old tokens refused (401)", async () =>
          (await Promise.all(tokensV1.map((t) => tokenStatus(t.cluster, t.token)))).every((s) => s === 401) ? true : undefined, 60_000, 250)
        rotation.refusedAfterMs = Date.now() - rotation.revokedAt
        note(`rotation: old tokens revoked (anchor secrets deleted), refused ${(rotation.refusedAfterMs / 1000).toFixed(1)}s later`)
      }))
    })()

    const submitter = (async () => {
      for (let w = 0; w < WAVES; w++) {
        await at(waveAt(w))
        if (aborted) return
        const wave = planned.filter((p) => p.name.startsWith(`chaos-${String(w).padStart(2, "0")}-`))
        await kubectl(MAIN, ["create", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: wave.map((p) => p.manifest) }) })
        note(`wave ${w}: ${wave.length} workflows submitted (${["single", "steps", "dag"].map((k) => `${wave.filter((p) => p.kind === k).length} ${k}`).join(", ")})`)
      }
    })()

    const histogram = () => {
      const h: Record<string, number> = {}
      for (const p of planned) {
        const phase = phases.get(p.name)?.phase || "(none)"
        h[phase] = (h[phase] ?? 0) + 1
      }
      return JSON.stringify(h)
    }
    const progress = setInterval(() => note(`workflows by phase: ${histogram()}`), 30_000)

    const results = await Promise.allSettled([...disruptionChains, killer, rotator, submitter])
    const chaosErrors = results.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []))
    const chaosSeconds = (Date.now() - t0) / 1000
    note(`chaos over after ${chaosSeconds.toFixed(1)}s${chaosErrors.length ? `, with errors: ${chaosErrors.join("; ")}` : ""}`)

    // ------------------------------------------------------------ drain
    const drainFrom = Date.now()
    while (!planned.every((p) => finished(p.name)) && Date.now() - drainFrom < DRAIN_TIMEOUT_MS) await sleep(500)
    const drainSeconds = (Date.now() - drainFrom) / 1000
    const unfinished = planned.filter((p) => !finished(p.name)).map((p) => `${p.name}: ${phases.get(p.name)?.phase || "(no phase)"}`)
    clearInterval(progress)
    note(`drain: ${planned.filter((p) => finished(p.name)).length}/${planned.length} finished ${drainSeconds.toFixed(1)}s after the chaos; ${histogram()}`)

    // ------------------------------------------------------------ completions
    const list = await getJson<{ items: Array<any> }>(MAIN, ["workflows.argoproj.io", "-n", WF_NS])
    const byName = new Map<string, any>((list?.items ?? []).map((wf) => [wf.metadata.name, wf]))
    const notSucceeded: Array<string> = []
    const lost: Array<string> = []
    let podNodes = 0
    let podNodesSucceeded = 0
    for (const p of planned) {
      const wf = byName.get(p.name)
      const phase = wf?.status?.phase ?? "(missing)"
      if (phase !== "Succeeded") notSucceeded.push(`${p.name}: ${phase}${wf?.status?.message ? ` (${wf.status.message})` : ""}`)
      const nodes = Object.values<any>(wf?.status?.nodes ?? {}).filter((n) => n.type === "Pod")
      podNodes += nodes.length
      const ok = nodes.filter((n) => n.phase === "Succeeded")
      podNodesSucceeded += ok.length
      if (ok.length < p.podNodes) {
        lost.push(`${p.name}: ${ok.length}/${p.podNodes} pod nodes Succeeded [${nodes.filter((n) => n.phase !== "Succeeded").map((n) => `${n.displayName}=${n.phase}${n.message ? ` (${n.message})` : ""}`).join(", ")}]`)
      }
    }
    // pods that ended Succeeded in their cluster while their node did not
    const nodePhase = new Map<string, string>()
    for (const wf of byName.values()) for (const [id, n] of Object.entries<any>(wf.status?.nodes ?? {})) nodePhase.set(`${wf.metadata.name}/${id}`, n.phase)
    const ledgerPods = ledger!.pods()
    const unfolded = ledgerPods
      .filter((p) => p.phase === "Succeeded" && p.workflow !== undefined && p.nodeId !== undefined && nodePhase.get(`${p.workflow}/${p.nodeId}`) !== "Succeeded")
      .map((p) => `${p.cluster}/${p.name}: node ${nodePhase.get(`${p.workflow}/${p.nodeId}`) ?? "(no node)"}`)

    // ------------------------------------------------------------ creates (audit log) and duplicates
    // pod names: <workflow>-<template>-<hash>, or the workflow's name when the entrypoint is the pod
    const plannedNames = new Set(planned.map((p) => p.name))
    const ours = (name: string | undefined) => name !== undefined && planned.some((p) => name === p.name || name.startsWith(`${p.name}-`))
    const audit = [MAIN, ...remotes].map((cluster) => {
      const events = podCreateEvents(auditEventsSinceAllFiles(cluster, since), cluster === MAIN ? WF_NS : REMOTE_NS)
      return { cluster, events: events.filter((e) => e.responseStatus?.code !== 201 || ours(e.objectRef?.name)) }
    })
    const creates = accountCreates(audit)
    const ledgerNames = new Set(ledgerPods.map((p) => `${p.cluster}/${p.name}`))
    const unseenCreates = [...creates.createdByName.keys()].filter((k) => !ledgerNames.has(k))
    // pods whose create was never answered 201 (a 504 from an API server that made the pod all the same)
    const withoutCreated = ledgerPods.filter((p) => ours(p.name) && !creates.createdByName.has(`${p.cluster}/${p.name}`)).map((p) => `${p.cluster}/${p.name}`)
    const dupNodes = duplicateNodes(ledgerPods.filter((p) => p.workflow !== undefined && plannedNames.has(p.workflow)))
    // each name created twice: its answers in order, and whether the controller was killed between the two 201s
    const rel = (ms: number) => `+${((ms - t0) / 1000).toFixed(1)}s`
    let duplicatesAcrossKill = 0
    const duplicateDetails = creates.duplicateNames.map((d) => {
      const key = d.slice(0, d.lastIndexOf(" "))
      const answers = creates.answersByName.get(key) ?? []
      const made = answers.filter((a) => a.code === 201)
      const [first, second] = [replica!.incarnationAt(made[0]!.at), replica!.incarnationAt(made[made.length - 1]!.at)]
      if (first !== second) duplicatesAcrossKill++
      return `${key}: ${answers.map((a) => `${a.code}@${rel(a.at)}`).join(" ")}; ${first === second ? `both 201s while chaos-controller-${first} ran (no kill in between)` : `first 201 while chaos-controller-${first} ran, again by chaos-controller-${second}`}`
    })
    const serviceAccountUser = `system:serviceaccount:${REMOTE_NS}:${USER_SA}`
    const remoteEvents = audit.filter((a) => a.cluster !== MAIN).flatMap((a) => a.events)
    const remoteCreated = remoteEvents.filter((e) => e.responseStatus?.code === 201)
    const remoteCreatesByOthers = remoteCreated.filter((e) => e.user.username !== serviceAccountUser).map((e) => `${e.objectRef?.name} by ${e.user.username}`)
    const localCreatesByOthers = audit.find((a) => a.cluster === MAIN)!.events
      .filter((e) => e.responseStatus?.code === 201 && e.user.username !== userName.controller).map((e) => `${e.objectRef?.name} by ${e.user.username}`)
    const jtis = (ts: ReadonlyArray<BoundToken>) => new Set(ts.map((t) => `JTI=${t.jti}`))
    const oldJtis = jtis(tokensV1)
    const newJtis = jtis(rotation.tokensV2 ?? [])
    const revokedAt = rotation.revokedAt ?? Infinity
    const rotationFigures = {
      creates201OldToken: remoteCreated.filter((e) => oldJtis.has(credentialId(e) ?? "")).length,
      creates201OldTokenAfterRevocation: remoteCreated.filter((e) => oldJtis.has(credentialId(e) ?? "") && Date.parse(e.stageTimestamp ?? "") > revokedAt + 10_000).length,
      creates201NewToken: remoteCreated.filter((e) => newJtis.has(credentialId(e) ?? "")).length,
      refused401: remoteEvents.filter((e) => e.responseStatus?.code === 401).length,
      oldTokenRefusedAfterS: rotation.refusedAfterMs === undefined ? null : Number((rotation.refusedAfterMs / 1000).toFixed(1))
    }

    // ------------------------------------------------------------ controller's own account
    const controllerLog = replica!.logs().split("\n")
    const relists = (cluster: string) => controllerLog.filter((l) => l.includes("is gone, relisting") && l.includes(`cluster=${cluster}`)).length
    const replaced = controllerLog.filter((l) => l.includes("replacing a pod this controller has no record of creating"))
    const createFailed = controllerLog.filter((l) => l.includes("pod creation failed"))

    // ------------------------------------------------------------ deletion: finalizers released, nothing left
    const deleteFrom = Date.now()
    await kubectl(MAIN, ["delete", "workflows.argoproj.io", "--all", "-n", WF_NS, "--wait=false"])
    const workflowsLeft = await (async () => {
      while (Date.now() - deleteFrom < DELETE_TIMEOUT_MS) {
        const left = (await getJson<{ items: Array<any> }>(MAIN, ["workflows.argoproj.io", "-n", WF_NS]))?.items ?? []
        if (left.length === 0) return []
        await sleep(1000)
      }
      return ((await getJson<{ items: Array<any> }>(MAIN, ["workflows.argoproj.io", "-n", WF_NS]))?.items ?? [])
        .map((wf) => `${wf.metadata.name} (finalizers ${JSON.stringify(wf.metadata.finalizers ?? [])})`)
    })()
    const workflowsGoneSeconds = (Date.now() - deleteFrom) / 1000
    // local pods go with their owner (the garbage collector); remote ones were deleted before the finalizer went
    const leftPods = async () => (await Promise.all([MAIN, ...remotes].map((c) => workflowPodsIn(c, (wf) => plannedNames.has(wf))))).flat()
    let orphans = await leftPods()
    const remoteLeftAtRelease = orphans.filter((p) => p.cluster !== MAIN).map((p) => `${p.cluster}/${p.namespace}/${p.name}`)
    const orphanWaitFrom = Date.now()
    while (orphans.length > 0 && Date.now() - orphanWaitFrom < 60_000) {
      await sleep(1000)
      orphans = await leftPods()
    }
    const deleteSeconds = (Date.now() - deleteFrom) / 1000

    // ------------------------------------------------------------ figures
    const byCode = Object.entries(creates.errors).map(([code, n]) => `${code}:${n}`).join(" ")
    const figures = {
      seed,
      workflows: planned.length,
      kinds: Object.fromEntries((["single", "steps", "dag"] as const).map((k) => [k, planned.filter((p) => p.kind === k).length])),
      succeeded: planned.length - notSucceeded.length,
      notSucceeded: notSucceeded.length,
      unfinished: unfinished.length,
      podNodes,
      podNodesSucceeded,
      lostCompletions: lost.length,
      completionsNotFolded: unfolded.length,
      podsCreated: creates.created,
      duplicatePodsByName: creates.duplicateNames.length,
      duplicatePodsByNameAcrossKill: duplicatesAcrossKill,
      duplicatePodsByNameNoKill: creates.duplicateNames.length - duplicatesAcrossKill,
      duplicatePodsByNode: dupNodes.length,
      alreadyExists409: creates.alreadyExists,
      createErrorsByCode: byCode || "none",
      createdButNeverWatched: unseenCreates.length,
      podsWithoutA201: withoutCreated.length,
      remoteCreatesNotByUser: remoteCreatesByOthers.length,
      localCreatesNotByController: localCreatesByOthers.length,
      podsReplacedByController: replaced.length,
      podCreationFailedLogs: createFailed.length,
      orphanedPods: orphans.length,
      workflowsLeftAfterDelete: workflowsLeft.length,
      controllerKills: done.kills,
      controllerKillsWhileLeading: done.killsOfLeader,
      controllerKillsMidCreate: done.killsMidCreate,
      controllerIncarnations: replica!.incarnations.length,
      controllerUnexpectedExits: replica!.unexpectedExits,
      apiserverRestarts: done.restarts,
      etcdCompactions: done.compactions,
      relists410: Object.fromEntries(remotes.map((c) => [c, relists(c)])),
      partitions: done.partitions.map((p) => `${p.cluster}:${p.seconds.toFixed(0)}s`),
      rotation: rotationFigures,
      chaosErrors: chaosErrors.length,
      seconds: {
        setup: Number(setupSeconds.toFixed(1)),
        chaos: Number(chaosSeconds.toFixed(1)),
        drain: Number(drainSeconds.toFixed(1)),
        deleteAndOrphanCheck: Number(deleteSeconds.toFixed(1)),
        workflowsGoneAfterDelete: Number(workflowsGoneSeconds.toFixed(1)),
        total: Number(((Date.now() - startedAt) / 1000).toFixed(1))
      }
    }
    const show = (title: string, items: ReadonlyArray<string>) => {
      if (items.length > 0) console.log(`chaos ${title} (${items.length}):\n  ${items.slice(0, 40).join("\n  ")}`)
    }
    show("workflows not Succeeded", notSucceeded)
    show("lost completions", lost)
    show("pods Succeeded whose node is not", unfolded)
    show("unfinished workflows", unfinished)
    show("duplicate pods by name (audit: create answers, time after the chaos began)", duplicateDetails)
    show("duplicate pods by node (watched pods)", dupNodes)
    show("created (201) but never seen by the watch", unseenCreates)
    show("pods whose create was not answered 201", withoutCreated)
    show("remote creates not by the workflow user", remoteCreatesByOthers)
    show("local creates not by the controller", localCreatesByOthers)
    show("controller: replaced pods", replaced)
    show("controller: pod creation failed", createFailed)
    show("orphaned pods", orphans.map((p) => `${p.cluster}/${p.namespace}/${p.name} finalizers=${JSON.stringify(p.finalizers)}`))
    show("workflows left after delete", workflowsLeft)
    show("chaos errors", chaosErrors)
    console.log(`chaos figures: ${JSON.stringify(figures)}`)

    // ------------------------------------------------------------ verdict
    expect(chaosErrors, "every fault was injected").toEqual([])
    expect.soft(done.kills).toBe(KILLS)
    expect.soft(done.restarts).toBe(RESTARTS.length)
    expect.soft(done.partitions.map((p) => p.cluster).sort()).toEqual([...remotes].sort())
    expect.soft(rotation.revokedAt, "the old tokens were revoked").toBeDefined()
    expect.soft(unfinished, "workflows still running at the end of the drain").toEqual([])
    expect.soft(notSucceeded, "workflows not Succeeded").toEqual([])
    expect.soft(lost, "lost completions").toEqual([])
    expect.soft(unfolded, "pods Succeeded whose node is not").toEqual([])
    expect.soft(creates.duplicateNames, "pod names created (201) more than once").toEqual([])
    expect.soft(dupNodes, "nodes with more than one pod").toEqual([])
    expect.soft(remoteCreatesByOthers, "remote pods are created by the workflow user only").toEqual([])
    expect.soft(rotationFigures.creates201NewToken, "pods created with the rotated token").toBeGreaterThan(0)
    expect.soft(rotationFigures.creates201OldTokenAfterRevocation).toBe(0)
    expect.soft(relists(COMPACT_ON), `the controller relisted ${COMPACT_ON} after 410 Gone`).toBeGreaterThan(0)
    expect.soft(workflowsLeft, "workflows left after deletion (finalizers)").toEqual([])
    expect.soft(remoteLeftAtRelease, "remote pods left once the finalizers were released").toEqual([])
    expect.soft(orphans, "pods left after deletion").toEqual([])
  }, 840_000)
})
