/**
 * Disturbing a real cluster's control plane from an e2e test: restarting its
 * kube-apiserver (and etcd) through scripts/clusters/restart.sh, and asking
 * whether its API server answers.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import * as path from "node:path"
import { caFile, repoRoot, server, stateDir, token } from "./clusters.js"

export interface RestartOptions {
  /** Keep etcd running (default: restart it too, data kept). */
  readonly apiserverOnly?: boolean
  /** Seconds to stay down before starting again. */
  readonly downSeconds?: number
  /** While the API server is down, compact etcd past every version it served. */
  readonly compact?: boolean
  /** Extra kube-apiserver flags for this start only. */
  readonly apiserverArgs?: ReadonlyArray<string>
}

export interface RestartResult {
  /** etcd revision compacted at (with `compact`). */
  readonly compactedRevision: number | undefined
  readonly output: string
}

/** Restarts `cluster`'s API server (scripts/clusters/restart.sh); rejects with its output when it fails. */
export const restartControlPlane = (cluster: string, options: RestartOptions = {}): Promise<RestartResult> => {
  const args = [path.join(repoRoot, "scripts/clusters/restart.sh"), cluster]
  if (options.apiserverOnly) args.push("--apiserver-only")
  if (options.downSeconds !== undefined) args.push("--down", String(options.downSeconds))
  if (options.compact) args.push("--compact")
  for (const flag of options.apiserverArgs ?? []) args.push(`--apiserver-arg=${flag}`)
  return new Promise((resolve, reject) => {
    execFile("bash", args, { env: { ...process.env, FLOTILLA_CLUSTERS_DIR: stateDir }, timeout: 300_000 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`
      if (error) {
        reject(new Error(`restart.sh ${args.slice(1).join(" ")} failed: ${error.message}\n${output}`))
        return
      }
      const m = /^compacted=(\d+)$/m.exec(stdout)
      resolve({ compactedRevision: m ? Number(m[1]) : undefined, output })
    })
  })
}

/** True when the cluster's API server answers /readyz with 200 within 2 s. */
export const apiserverReady = (cluster: string): Promise<boolean> =>
  new Promise((resolve) => {
    const req = https.get(new URL("/readyz", server(cluster)), {
      ca: fs.readFileSync(caFile()),
      headers: { authorization: `Bearer ${token(cluster, "admin")}` },
      timeout: 2000
    }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resolve(false))
  })
