/**
 * An artifact repository on the real clusters, set up as an operator sets up
 * upstream's: a real S3 server (SeaweedFS, test/support/s3Server.ts) on this
 * machine's 127.0.0.1, the configmap's `artifactRepository` naming it, and
 * the credentials Secret created by hand in every namespace where pods run,
 * in every cluster (the seed's step 3: the controller never copies a secret
 * from one cluster to another). Pods reach 127.0.0.1: on node agents the
 * transfers are made by the agent's process on this machine, on the real
 * nodes pods are on the host network (the clusters' admission policy).
 */
import { ListObjectsV2Command } from "@aws-sdk/client-s3"
import * as path from "node:path"
import * as YAML from "yaml"
import type { S3ServerHandle } from "../../support/s3Server.js"
import { kubectl, kubectlEnsure, repoRoot, writePrivateFile } from "./clusters.js"

/** The Secret holding the repository's keys (`accessKey`, `secretKey`). */
export const repositorySecretName = "flotilla-artifact-repository"

/** The configmap's `artifactRepository` (YAML) for `bucket` on `s3`. */
export const artifactRepositoryYaml = (s3: Pick<S3ServerHandle, "endpoint">, bucket: string, secretName = repositorySecretName): string =>
  YAML.stringify({
    s3: {
      endpoint: s3.endpoint,
      bucket,
      insecure: true,
      region: "us-east-1",
      accessKeySecret: { name: secretName, key: "accessKey" },
      secretKeySecret: { name: secretName, key: "secretKey" }
    }
  })

/** The repository's credentials Secret in `cluster`/`ns` (created or updated). */
export const ensureRepositorySecret = async (
  cluster: string,
  ns: string,
  s3: Pick<S3ServerHandle, "accessKey" | "secretKey">,
  secretName = repositorySecretName,
  keys: ReadonlyMap<string, "accessKey" | "secretKey"> = new Map([["accessKey", "accessKey"], ["secretKey", "secretKey"]])
): Promise<void> => {
  const args = [...keys].map(([key, holds]) => {
    const file = writePrivateFile(`s3-${cluster}-${ns}-${secretName}-${key}`, holds === "accessKey" ? s3.accessKey : s3.secretKey)
    return `--from-file=${key}=${file}`
  })
  await kubectlEnsure(cluster, ["-n", ns, "create", "secret", "generic", secretName, ...args])
  // the node agents read it for the pods' executor volumes: this Secret only, in this namespace
  // (scripts/clusters/node-agent-rbac.yaml grants no Secrets cluster-wide)
  await kubectlEnsure(cluster, ["-n", ns, "create", "role", `node-agent-secret-${secretName}`, "--verb=get", "--resource=secrets", `--resource-name=${secretName}`])
  await kubectlEnsure(cluster, ["-n", ns, "create", "rolebinding", `node-agent-secret-${secretName}`, `--role=node-agent-secret-${secretName}`, "--group=flotilla:node-agents"])
}

/**
 * The WorkflowArtifactGCTask CRD in a remote cluster, as k8s/rbac/remote-cluster.yaml
 * installs it (scripts/clusters/up.sh gives remote clusters only the task results' CRD):
 * the GC tasks are made where the GC pods run.
 */
export const ensureArtifactGCTasksCrd = async (cluster: string): Promise<void> => {
  await kubectl(cluster, ["apply", "--server-side", "--force-conflicts", "-f", path.join(repoRoot, "k8s/crd/argoproj.io_workflowartifactgctasks.yaml")])
  await kubectl(cluster, ["wait", "--for=condition=Established", "crd/workflowartifactgctasks.argoproj.io", "--timeout=60s"])
}

/**
 * Upstream's artifact GC rights in `cluster`/`ns` (k8s/rbac/remote-cluster.yaml):
 * the pods' service accounts list/watch the GC tasks and patch their status.
 */
export const ensureArtifactGCExecutorRole = async (cluster: string, ns: string, serviceAccounts: ReadonlyArray<string>): Promise<void> => {
  await kubectlEnsure(cluster, ["-n", ns, "create", "role", "artifactgc", "--verb=list,watch", "--resource=workflowartifactgctasks.argoproj.io"])
  await kubectlEnsure(cluster, ["-n", ns, "create", "role", "artifactgc-status", "--verb=patch", "--resource=workflowartifactgctasks.argoproj.io/status"])
  for (const sa of serviceAccounts) {
    await kubectlEnsure(cluster, ["-n", ns, "create", "rolebinding", `artifactgc-${sa}`, "--role=artifactgc", `--serviceaccount=${ns}:${sa}`])
    await kubectlEnsure(cluster, ["-n", ns, "create", "rolebinding", `artifactgc-status-${sa}`, "--role=artifactgc-status", `--serviceaccount=${ns}:${sa}`])
  }
}

/** Every key in `bucket` under `prefix`. */
export const listKeys = async (s3: Pick<S3ServerHandle, "client">, bucket: string, prefix = ""): Promise<Array<string>> => {
  const client = s3.client()
  try {
    const keys: Array<string> = []
    let token: string | undefined
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
      for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key)
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return keys.sort()
  } finally {
    client.destroy()
  }
}
