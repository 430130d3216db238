/**
 * Pod spec fields the kubelet tests add to `podFor`'s pods: a hostPath
 * volume (the only host directory a sandboxed pod may write, and only when
 * the directory's host permissions let its unprivileged uid in) and
 * `hostNetwork`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { KubeObject } from "../../src/kube/api/Resources.js"

interface ContainerSpec {
  readonly name?: string
  readonly volumeMounts?: ReadonlyArray<unknown>
}

interface PodSpec {
  readonly containers?: ReadonlyArray<ContainerSpec>
  readonly volumes?: ReadonlyArray<unknown>
}

/** Mounts host directory `dir` at the same path in the pod's main container. */
export const withHostPath = (pod: KubeObject, dir: string, options: { readonly readOnly?: boolean } = {}): KubeObject => {
  const spec = (pod.spec ?? {}) as PodSpec
  const name = `host-${(spec.volumes ?? []).length}`
  return {
    ...pod,
    spec: {
      ...spec,
      volumes: [...(spec.volumes ?? []), { name, hostPath: { path: dir, type: "Directory" } }],
      containers: (spec.containers ?? []).map((c) =>
        c.name === "main"
          ? { ...c, volumeMounts: [...(c.volumeMounts ?? []), { name, mountPath: dir, ...(options.readOnly ? { readOnly: true } : {}) }] }
          : c
      )
    }
  }
}

export const withHostNetwork = (pod: KubeObject): KubeObject => ({ ...pod, spec: { ...(pod.spec ?? {}), hostNetwork: true } })

/**
 * A fresh host directory that pods may write through a hostPath volume:
 * world-writable, because root in a sandboxed pod is an unprivileged uid on
 * the host.
 */
export const sharedDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  fs.chmodSync(dir, 0o1777)
  return dir
}
