/**
 * The secret volumes of a pod as a kubelet mounts them into its executor
 * containers (init and wait), for the executor's `GetSecret`, which reads
 * `/argo/secret/<secret name>/<key>`. The kubelet reads each Secret from the
 * API with its own identity, in the pod's namespace, as a real kubelet does
 * for a secret volume; the pod never gets a client of its own for it. The
 * files live in memory only: never written to the host. Only the Secrets the
 * pod's own executor volumes name are read, in its namespace; the agent's
 * identity is granted `get` on them per namespace, not cluster-wide
 * (scripts/clusters/node-agent-rbac.yaml).
 *
 * A Secret that is missing (and not `optional`), or an item key it lacks,
 * fails the mount with the kubelet's own words.
 */
import { Effect } from "effect"
import type { KubeClientShape } from "../../kube/api/KubeClient.js"
import type { KubeObject } from "../../kube/api/Resources.js"

/** Where argoexec reads mounted secrets (`common.SecretVolMountPath`). */
export const secretMountRoot = "/argo/secret"

/** The executor's containers, which see the artifact secrets. */
const executorContainers = new Set(["init", "wait"])

/** Mounted secret files by path (`<mountPath>/<item path>`). */
export type SecretFiles = ReadonlyMap<string, Uint8Array>

interface SecretVolumeSource {
  readonly secretName?: string
  readonly items?: ReadonlyArray<{ readonly key?: string; readonly path?: string }>
  readonly optional?: boolean
}

interface VolumeMount {
  readonly name?: string
  readonly mountPath?: string
  readonly subPath?: string
}

/** A secret volume the kubelet could not mount: the message is the kubelet's event. */
export class SecretMountError extends Error {
  override readonly name = "SecretMountError"
}

/** The secret volumes mounted into the pod's executor containers, each with its mount path. */
export const executorSecretMounts = (pod: KubeObject): ReadonlyArray<{ readonly volume: string; readonly mountPath: string; readonly source: SecretVolumeSource }> => {
  const spec = (pod.spec ?? {}) as {
    volumes?: ReadonlyArray<{ name?: string; secret?: SecretVolumeSource }>
    initContainers?: ReadonlyArray<{ name?: string; volumeMounts?: ReadonlyArray<VolumeMount> }>
    containers?: ReadonlyArray<{ name?: string; volumeMounts?: ReadonlyArray<VolumeMount> }>
  }
  const volumes = new Map((spec.volumes ?? []).filter((v) => v.secret !== undefined && v.name !== undefined).map((v) => [v.name!, v.secret!]))
  const out = new Map<string, { volume: string; mountPath: string; source: SecretVolumeSource }>()
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    if (!executorContainers.has(c.name ?? "")) continue
    for (const m of c.volumeMounts ?? []) {
      const source = m.name !== undefined ? volumes.get(m.name) : undefined
      if (source === undefined || m.mountPath === undefined || (m.subPath ?? "") !== "") continue
      out.set(m.mountPath, { volume: m.name!, mountPath: m.mountPath.replace(/\/+$/, ""), source })
    }
  }
  return [...out.values()]
}

const decode = (value: unknown): Uint8Array => typeof value === "string" ? Buffer.from(value, "base64") : new Uint8Array(0)

/**
 * Reads the Secrets behind the pod's executor secret volumes (kubelet
 * identity, pod namespace) and lays out their files as a kubelet would.
 */
export const mountSecretVolumes = (client: KubeClientShape, pod: KubeObject): Effect.Effect<SecretFiles, SecretMountError> =>
  Effect.gen(function*() {
    const namespace = pod.metadata.namespace ?? "default"
    const files = new Map<string, Uint8Array>()
    for (const m of executorSecretMounts(pod)) {
      const secretName = m.source.secretName ?? m.volume
      const secret = yield* client.get("secrets", namespace, secretName).pipe(
        Effect.map((s): KubeObject | undefined => s),
        Effect.catchTag("KubeError", (e) =>
          e.reason === "NotFound"
            ? m.source.optional === true
              ? Effect.succeed(undefined)
              : Effect.fail(new SecretMountError(`MountVolume.SetUp failed for volume "${m.volume}" : secret "${secretName}" not found in namespace "${namespace}"`))
            : Effect.fail(new SecretMountError(`MountVolume.SetUp failed for volume "${m.volume}" : reading secret "${secretName}" in namespace "${namespace}": ${e.message}`)))
      )
      if (secret === undefined) continue
      const data = ((secret as { data?: Record<string, unknown> }).data ?? {})
      const items = m.source.items ?? Object.keys(data).map((key) => ({ key, path: key }))
      for (const item of items) {
        const key = item.key ?? ""
        if (!(key in data)) {
          if (m.source.optional === true) continue
          return yield* Effect.fail(new SecretMountError(`MountVolume.SetUp failed for volume "${m.volume}" : couldn't find key ${key} in Secret ${namespace}/${secretName}`))
        }
        files.set(`${m.mountPath}/${item.path ?? key}`, decode(data[key]))
      }
    }
    return files as SecretFiles
  })

/** `GetSecret`: the content of `/argo/secret/<name>/<key>` as mounted, or argoexec's error. */
export const readSecret = (files: SecretFiles, name: string, key: string): string | { readonly error: string } => {
  const p = `${secretMountRoot}/${name}/${key}`
  const data = files.get(p)
  return data === undefined ? { error: `open ${p}: no such file or directory` } : new TextDecoder().decode(data)
}
