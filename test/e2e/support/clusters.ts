/**
 * Helpers for end-to-end tests on the clusters started by
 * scripts/clusters/up.sh: paths, kubectl as a given identity, processes with
 * their output captured to files, polling, the apiserver audit log.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parse } from "yaml"

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
export const stateDir = process.env["FLOTILLA_CLUSTERS_DIR"] ?? path.join(repoRoot, ".clusters")

/** Identities with a static token in every cluster (see scripts/clusters/up.sh). */
export type Identity = "admin" | "controller" | "workflow" | "tenant" | "node-agent"
/** The user names those tokens authenticate as. */
export const userName: Record<Identity, string> = {
  admin: "flotilla-e2e-admin",
  controller: "flotilla-controller",
  workflow: "workflow-user",
  tenant: "tenant-b",
  "node-agent": "flotilla-node-agent"
}

const readEnv = (): Record<string, string> | undefined => {
  const file = path.join(stateDir, "clusters.env")
  if (!fs.existsSync(file)) return undefined
  const env: Record<string, string> = {}
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line)
    if (m) env[m[1]] = m[2].replace(/^"(.*)"$/, "$1")
  }
  return env
}

export const env = (): Record<string, string> => {
  const e = readEnv()
  if (e === undefined) throw new Error(`no clusters: ${stateDir}/clusters.env is missing; run npm run clusters:up`)
  return e
}

export const clusterNames = (): Array<string> => env()["FLOTILLA_CLUSTERS"].split(" ")
export const kubeconfigPath = (cluster: string, identity: Identity): string =>
  path.join(stateDir, cluster, "kubeconfig", `${identity}.yaml`)
export const caFile = (): string => path.join(stateDir, "pki", "ca.crt")

interface KubeconfigDoc {
  clusters: Array<{ name: string; cluster: { server: string; "certificate-authority-data": string } }>
  users: Array<{ name: string; user: { token: string } }>
}
const readKubeconfig = (cluster: string, identity: Identity): KubeconfigDoc =>
  parse(fs.readFileSync(kubeconfigPath(cluster, identity), "utf8")) as KubeconfigDoc

export const token = (cluster: string, identity: Identity): string => readKubeconfig(cluster, identity).users[0].user.token
export const server = (cluster: string): string => readKubeconfig(cluster, "admin").clusters[0].cluster.server
export const caData = (cluster: string): string =>
  readKubeconfig(cluster, "admin").clusters[0].cluster["certificate-authority-data"]

/** GET a path on a cluster's apiserver as admin; resolves to the status code (0 when unreachable). */
export const getStatus = (cluster: string, urlPath: string): Promise<number> =>
  new Promise((resolve) => {
    const url = new URL(urlPath, server(cluster))
    const req = https.get(url, {
      ca: fs.readFileSync(caFile()),
      headers: { authorization: `Bearer ${token(cluster, "admin")}` },
      timeout: 3000
    }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on("error", () => resolve(0))
    req.on("timeout", () => {
      req.destroy()
      resolve(0)
    })
  })

/** True when clusters.env exists and every apiserver answers /readyz. */
export const clustersUp = async (): Promise<boolean> => {
  if (readEnv() === undefined) return false
  try {
    const codes = await Promise.all(clusterNames().map((c) => getStatus(c, "/readyz")))
    return codes.every((c) => c === 200)
  } catch {
    return false
  }
}

export interface KubectlResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs kubectl against `cluster` as `identity` (default admin). Never throws. */
export const kubectlRaw = (
  cluster: string,
  args: ReadonlyArray<string>,
  options: { identity?: Identity; input?: string } = {}
): Promise<KubectlResult> =>
  new Promise((resolve) => {
    const child = execFile(
      env()["KUBECTL"],
      ["--kubeconfig", kubeconfigPath(cluster, options.identity ?? "admin"), ...args],
      { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resolve({ code, stdout, stderr })
      }
    )
    if (options.input !== undefined) child.stdin?.end(options.input)
    else child.stdin?.end()
  })

/** Like kubectlRaw but fails with kubectl's stderr on a non-zero exit; returns stdout. */
export const kubectl = async (
  cluster: string,
  args: ReadonlyArray<string>,
  options: { identity?: Identity; input?: string } = {}
): Promise<string> => {
  const r = await kubectlRaw(cluster, args, options)
  if (r.code !== 0) {
    throw new Error(`kubectl ${args.join(" ")} (cluster ${cluster}, ${options.identity ?? "admin"}) exited ${r.code}: ${r.stderr.trim()}`)
  }
  return r.stdout
}

/** kubectl create ... --dry-run=client -o yaml | kubectl apply -f -: idempotent creation. */
export const kubectlEnsure = async (cluster: string, createArgs: ReadonlyArray<string>): Promise<void> => {
  const manifest = await kubectl(cluster, [...createArgs, "--dry-run=client", "-o", "yaml"])
  await kubectl(cluster, ["apply", "-f", "-"], { input: manifest })
}

export const getJson = async <A = any>(cluster: string, args: ReadonlyArray<string>): Promise<A | undefined> => {
  const r = await kubectlRaw(cluster, ["get", ...args, "-o", "json"])
  if (r.code !== 0) {
    if (/NotFound|not found/.test(r.stderr)) return undefined
    throw new Error(`kubectl get ${args.join(" ")} on ${cluster}: ${r.stderr.trim()}`)
  }
  return JSON.parse(r.stdout) as A
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `probe` until it returns a value other than undefined; fails after `timeoutMs` saying `what`. */
export const waitFor = async <A>(
  what: string,
  probe: () => Promise<A | undefined> | A | undefined,
  timeoutMs = 60_000,
  intervalMs = 250,
  onTimeout?: () => string
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) {
      const extra = onTimeout?.() ?? ""
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}${extra ? `\n${extra}` : ""}`)
    }
    await sleep(intervalMs)
  }
}

/** A child process whose stdout+stderr go to a file. */
export interface Proc {
  readonly name: string
  readonly logFile: string
  readonly child: ChildProcess
  readonly log: () => string
  readonly exited: () => boolean
  readonly stop: () => Promise<void>
}

export const startProcess = (
  name: string,
  command: string,
  args: ReadonlyArray<string>,
  logFile: string,
  extraEnv: Readonly<Record<string, string>> = {}
): Proc => {
  fs.mkdirSync(path.dirname(logFile), { recursive: true })
  const fd = fs.openSync(logFile, "w")
  const child = spawn(command, args, { cwd: repoRoot, stdio: ["ignore", fd, fd], env: {
      ...process.env,
      // tsx's shebang runs `node` from PATH: use the project's (devDependency "node"), not the machine's
      PATH: `${path.join(repoRoot, "node_modules/.bin")}${path.delimiter}${process.env["PATH"] ?? ""}`,
      NO_COLOR: "1",
      ...extraEnv
    }
  })
  fs.closeSync(fd)
  // recorded so that scripts/clusters/down.sh stops it if the test run dies
  const pidFile = path.join(stateDir, "run", `e2e-${name}.pid`)
  if (child.pid !== undefined) fs.writeFileSync(pidFile, `${child.pid}\n`)
  let done = false
  const exitP = new Promise<void>((resolve) => child.on("exit", () => {
    done = true
    fs.rmSync(pidFile, { force: true })
    resolve()
  }))
  return {
    name,
    logFile,
    child,
    log: () => fs.readFileSync(logFile, "utf8"),
    exited: () => done,
    stop: async () => {
      if (done) return
      child.kill("SIGTERM")
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000)
      await exitP
      clearTimeout(t)
    }
  }
}

/** Where the e2e tests put process logs and token-bearing files (the gitignored state dir, not /tmp). */
export const e2eLogDir = path.join(stateDir, "e2e")

/** The Node a `flotilla kubelet` registers in a cluster. */
export const nodeName = (cluster: string): string => `flotilla-${cluster}`

/** Writes a file that may hold tokens, readable by its owner only, beside the e2e logs. */
export const writePrivateFile = (name: string, text: string): string => {
  fs.mkdirSync(e2eLogDir, { recursive: true })
  const file = path.join(e2eLogDir, name)
  fs.writeFileSync(file, text, { mode: 0o600 })
  return file
}

/** Runs `flotilla <args>` (src/cli/main.ts through tsx) with its output in `<e2eLogDir>/<name>.log`. */
export const startFlotilla = (name: string, args: ReadonlyArray<string>, extraEnv: Readonly<Record<string, string>> = {}): Proc =>
  startProcess(name, path.join(repoRoot, "node_modules/.bin/tsx"), [path.join(repoRoot, "src/cli/main.ts"), ...args], path.join(e2eLogDir, `${name}.log`), extraEnv)

/**
 * The controller container of k8s/manager/manager.yaml: its command (after `flotilla`) and args,
 * exactly as the Deployment runs them, so a flag the CLI does not know fails every e2e test.
 */
export const manifestControllerArgs = (): Array<string> => {
  const docs = fs.readFileSync(path.join(repoRoot, "k8s/manager/manager.yaml"), "utf8")
  const deployment = parse(docs) as { spec: { template: { spec: { containers: Array<{ name: string; command?: Array<string>; args?: Array<string> }> } } } }
  const container = deployment.spec.template.spec.containers.find((c) => c.name === "controller")
  if (!container?.command || container.command[0] !== "flotilla") throw new Error("manager.yaml: the controller container does not run `flotilla`")
  return [...container.command.slice(1), ...(container.args ?? [])]
}

/**
 * `flotilla controller` as the Deployment starts it, on `cluster`'s API server with the controller identity's kubeconfig.
 * `extraEnv` stands for the container's env (e.g. LEADER_ELECTION_IDENTITY, the pod name there).
 */
export const startController = (name: string, cluster: string, systemNamespace: string, extraEnv: Readonly<Record<string, string>> = {}): Proc =>
  startFlotilla(name, [...manifestControllerArgs(), "--kubeconfig", kubeconfigPath(cluster, "controller"), "--namespace", systemNamespace], extraEnv)

/** The last lines of each process's log, for failure messages. */
export const tailLogs = (procs: ReadonlyArray<Proc>): string =>
  procs.map((p) => `--- ${p.name} (${p.logFile}), last lines:\n${p.log().split("\n").slice(-25).join("\n")}`).join("\n")

/** Audit events (scripts/clusters/audit-policy.yaml) of a cluster. */
export interface AuditEvent {
  readonly auditID?: string
  readonly verb: string
  readonly user: { username: string; groups?: Array<string>; extra?: Record<string, Array<string>> }
  readonly objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string }
  readonly responseStatus?: { code?: number }
  readonly userAgent?: string
  readonly stage: string
  readonly stageTimestamp?: string
}
export const auditEvents = (cluster: string): Array<AuditEvent> => {
  const file = path.join(stateDir, cluster, "logs", "audit.log")
  if (!fs.existsSync(file)) return []
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as AuditEvent)
}

/** Audit events of a cluster from `since` on (the log outlives a test run on the same clusters). */
export const auditEventsSince = (cluster: string, since: Date): Array<AuditEvent> =>
  auditEvents(cluster).filter((e) => e.stageTimestamp !== undefined && Date.parse(e.stageTimestamp) >= since.getTime())

/** A kubeconfig document (YAML is a superset of JSON). */
export const kubeconfigDoc = (doc: {
  clusters?: Array<{ name: string; server: string; caData: string }>
  users: Array<{ name: string; token: string }>
  contexts: Array<{ name: string; cluster: string; user: string; namespace?: string }>
  currentContext?: string
}): string =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    ...(doc.clusters
      ? { clusters: doc.clusters.map((c) => ({ name: c.name, cluster: { server: c.server, "certificate-authority-data": c.caData } })) }
      : {}),
    users: doc.users.map((u) => ({ name: u.name, user: { token: u.token } })),
    contexts: doc.contexts.map((c) => ({
      name: c.name,
      context: { cluster: c.cluster, user: c.user, ...(c.namespace ? { namespace: c.namespace } : {}) }
    })),
    ...(doc.currentContext ? { "current-context": doc.currentContext } : {})
  }, null, 2)

/** A watch on a cluster's apiserver (see `watchEvents`). */
export interface WatchHandle {
  readonly stop: () => void
}

/**
 * Watches `urlPath` (a collection, e.g. /apis/argoproj.io/v1alpha1/workflows)
 * on a cluster's apiserver as admin, calling `onEvent` for every event
 * (ADDED, MODIFIED, DELETED; the first events of each connection are ADDED
 * for what exists). When the connection ends it reconnects after a second
 * (a fresh list: a deletion in between is not reported) until stopped.
 */
export const watchEvents = (
  cluster: string,
  urlPath: string,
  onEvent: (type: string, object: any) => void
): WatchHandle => {
  let stopped = false
  let current: ReturnType<typeof https.get> | undefined
  const connect = () => {
    if (stopped) return
    let ended = false
    const reconnect = () => {
      if (ended) return
      ended = true
      current = undefined
      if (!stopped) setTimeout(connect, 1000)
    }
    const url = new URL(urlPath, server(cluster))
    url.searchParams.set("watch", "1")
    const req = https.get(url, {
      ca: fs.readFileSync(caFile()),
      headers: { authorization: `Bearer ${token(cluster, "admin")}` }
    }, (res) => {
      res.on("close", reconnect)
      res.on("error", reconnect)
      if (res.statusCode !== 200) {
        res.resume()
        return
      }
      res.setEncoding("utf8")
      let buffer = ""
      res.on("data", (chunk: string) => {
        buffer += chunk
        for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
          const line = buffer.slice(0, nl).trim()
          buffer = buffer.slice(nl + 1)
          if (line === "") continue
          try {
            const event = JSON.parse(line) as { type: string; object: any }
            if (event.type !== "ERROR" && event.type !== "BOOKMARK") onEvent(event.type, event.object)
          } catch {
            // a malformed line: skip it
          }
        }
      })
    })
    req.on("error", reconnect)
    current = req
  }
  connect()
  return {
    stop: () => {
      stopped = true
      current?.destroy()
    }
  }
}

/**
 * Creates namespace `ns` in `cluster` if needed and waits for its `default`
 * service account (kube-controller-manager creates it; pods need it).
 */
export const ensureNamespace = async (cluster: string, ns: string): Promise<void> => {
  await kubectlEnsure(cluster, ["create", "namespace", ns])
  await waitFor(`service account default in ${cluster}/${ns}`, async () =>
    (await getJson(cluster, ["serviceaccount", "default", "-n", ns])) ?? undefined, 60_000, 500)
}

/** Ensures service account `name` in `cluster`/`ns` (`default` is created by kcm: waited for). */
export const ensureServiceAccount = async (cluster: string, ns: string, name: string): Promise<void> => {
  if (name !== "default") await kubectlEnsure(cluster, ["-n", ns, "create", "serviceaccount", name])
  await waitFor(`service account ${name} in ${cluster}/${ns}`, async () =>
    (await getJson(cluster, ["serviceaccount", name, "-n", ns])) ?? undefined, 60_000, 500)
}
