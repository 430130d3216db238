/**
 * What the local kubelet must run for a pod, worked out from the pod alone
 * (pure, no I/O): the argv of the main container, its environment, working
 * directory, the script source to stage, and the outputs to collect.
 *
 * The template comes from the `ARGO_TEMPLATE` env var the controller puts on
 * the pod's containers (as upstream does for its executor); a pod without it
 * (hand-written, or from an older controller) falls back to the `main`
 * container's command/args, with Argo's emissary wrapper unwrapped.
 *
 * The environment is the pod's own only: what the container spec sets. The
 * kubelet adds what a kubelet and container runtime add (LocalKubelet); the
 * host's environment never reaches a pod.
 */
import { posix } from "node:path"
import type { KubeObject } from "../kube/api/Resources.js"
import { type Images, lookupImage } from "./images.js"

export interface OutputParameterSpec {
  readonly name: string
  readonly path: string
  /** `valueFrom.default`: used when the file is missing. */
  readonly default?: string | undefined
}

/** A hostPath volume mounted into the main container. */
export interface HostPathMount {
  /** The folder or file on the host. */
  readonly hostPath: string
  /** Where the pod sees it: absolute and normalised (no `..`). */
  readonly mountPath: string
  readonly readOnly: boolean
}

export interface PodPlan {
  readonly _tag: "PodPlan"
  readonly image: string
  readonly argv: ReadonlyArray<string>
  /** Only the pod's own variables (never the host's); the kubelet adds its defaults. */
  readonly env: Readonly<Record<string, string>>
  readonly workingDir?: string | undefined
  /** Script templates: the source, staged at `/argo/staging/script` and appended to argv. */
  readonly scriptSource?: string | undefined
  readonly outputParameters: ReadonlyArray<OutputParameterSpec>
  /** Whether stdout becomes `outputs.result`. */
  readonly captureResult: boolean
  /** `spec.hostNetwork`: the pod shares the node's network namespace. */
  readonly hostNetwork: boolean
  /** The main container's mounts of `hostPath` volumes; other volume kinds are not supported. */
  readonly hostPaths: ReadonlyArray<HostPathMount>
}

/** The PATH a container runtime (Docker, containerd) gives a process whose image and spec set none. */
export const containerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/** Where Argo's executor stages a script template's source; we use the same path. */
export const scriptPath = "/argo/staging/script"

/** A plan that cannot be made; the pod fails with this message (Argo/kubelet wording). */
export interface PlanError {
  readonly _tag: "PlanError"
  readonly reason: string
  readonly message: string
}

interface ContainerLike {
  readonly name?: string
  readonly image?: string
  readonly command?: ReadonlyArray<string>
  readonly args?: ReadonlyArray<string>
  readonly env?: ReadonlyArray<EnvVar>
  readonly workingDir?: string
  readonly volumeMounts?: ReadonlyArray<VolumeMount>
}

interface VolumeMount {
  readonly name?: string
  readonly mountPath?: string
  readonly subPath?: string
  readonly readOnly?: boolean
}

interface EnvVar {
  readonly name: string
  readonly value?: string
  readonly valueFrom?: {
    readonly fieldRef?: { readonly fieldPath?: string }
    readonly [key: string]: unknown
  }
}

interface TemplateLike {
  readonly container?: ContainerLike
  readonly script?: ContainerLike & { readonly source?: string }
  readonly outputs?: {
    readonly parameters?: ReadonlyArray<{
      readonly name: string
      readonly valueFrom?: { readonly path?: string; readonly default?: unknown }
    }>
  }
}

const asArray = <A>(u: unknown): ReadonlyArray<A> => (Array.isArray(u) ? (u as ReadonlyArray<A>) : [])

export const podContainers = (pod: KubeObject): ReadonlyArray<ContainerLike> => {
  const spec = pod.spec as { containers?: unknown } | undefined
  return asArray<ContainerLike>(spec?.containers)
}

/** The `main` container, or the only one. */
export const mainContainer = (pod: KubeObject): ContainerLike | undefined => {
  const containers = podContainers(pod)
  return containers.find((c) => c.name === "main") ?? (containers.length === 1 ? containers[0] : undefined)
}

/** Parses `ARGO_TEMPLATE` from any container of the pod (main first). */
export const podTemplate = (pod: KubeObject): TemplateLike | undefined => {
  const main = mainContainer(pod)
  const ordered = [...(main ? [main] : []), ...podContainers(pod).filter((c) => c !== main)]
  for (const c of ordered) {
    const raw = asArray<EnvVar>(c.env).find((e) => e.name === "ARGO_TEMPLATE")?.value
    if (raw !== undefined) {
      try {
        const parsed: unknown = JSON.parse(raw)
        if (parsed !== null && typeof parsed === "object") return parsed as TemplateLike
      } catch {
        // A malformed template is treated like a missing one: the pod's own command still runs.
      }
    }
  }
  return undefined
}

/** `/var/run/argo/argoexec emissary -- cmd args...` -> `cmd args...` */
export const unwrapEmissary = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  if (argv.length >= 2 && argv[0].endsWith("argoexec") && argv[1] === "emissary") {
    const dashes = argv.indexOf("--")
    return dashes === -1 ? argv.slice(2) : argv.slice(dashes + 1)
  }
  return argv
}

const fieldValue = (pod: KubeObject, fieldPath: string | undefined): string | undefined => {
  const meta = pod.metadata
  const spec = pod.spec as Record<string, unknown> | undefined
  switch (fieldPath) {
    case "metadata.name":
      return meta.name
    case "metadata.namespace":
      return meta.namespace
    case "metadata.uid":
      return meta.uid
    case "spec.nodeName":
      return typeof spec?.nodeName === "string" ? spec.nodeName : undefined
    case "spec.serviceAccountName":
      return typeof spec?.serviceAccountName === "string" ? spec.serviceAccountName : undefined
    case "status.podIP":
    case "status.hostIP":
      return "127.0.0.1"
  }
  const label = /^metadata\.labels\['(.+)'\]$/.exec(fieldPath ?? "")
  if (label) return meta.labels?.[label[1]]
  const annotation = /^metadata\.annotations\['(.+)'\]$/.exec(fieldPath ?? "")
  if (annotation) return meta.annotations?.[annotation[1]]
  return undefined
}

/**
 * The container env as a process would see it: literal values, `$(VAR)`
 * references to earlier variables expanded like the kubelet does, fieldRefs
 * resolved; secret/configmap refs are skipped (best effort: the embedded
 * runtime has no volume of them).
 */
export const containerEnv = (pod: KubeObject, container: ContainerLike | undefined): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const e of asArray<EnvVar>(container?.env)) {
    if (typeof e.name !== "string") continue
    if (e.value !== undefined) {
      env[e.name] = String(e.value).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, ref: string | undefined) =>
        ref === undefined ? "$" : env[ref] ?? m)
    } else if (e.valueFrom?.fieldRef) {
      const v = fieldValue(pod, e.valueFrom.fieldRef.fieldPath)
      if (v !== undefined) env[e.name] = v
    }
  }
  return env
}

/**
 * hostPath volumes as the main container mounts them. A mount path of `/`,
 * or a sub path leaving its volume, is skipped (the pod's root stays its
 * own); other volume kinds (emptyDir, configMap, secret) have no counterpart
 * in the embedded runtime and are ignored, as before.
 */
export const hostPathMounts = (pod: KubeObject, container: ContainerLike | undefined): ReadonlyArray<HostPathMount> => {
  const spec = pod.spec as { volumes?: unknown } | undefined
  const sources = new Map<string, string>()
  for (const v of asArray<{ name?: unknown; hostPath?: { path?: unknown } }>(spec?.volumes)) {
    if (typeof v.name === "string" && typeof v.hostPath?.path === "string" && v.hostPath.path.startsWith("/")) {
      sources.set(v.name, posix.normalize(v.hostPath.path))
    }
  }
  const mounts: Array<HostPathMount> = []
  for (const m of asArray<VolumeMount>(container?.volumeMounts)) {
    const source = typeof m.name === "string" ? sources.get(m.name) : undefined
    if (source === undefined || typeof m.mountPath !== "string") continue
    const mountPath = posix.resolve("/", m.mountPath)
    const subPath = typeof m.subPath === "string" && m.subPath !== "" ? posix.normalize(m.subPath) : "."
    if (mountPath === "/" || subPath === ".." || subPath.startsWith("../") || posix.isAbsolute(subPath)) continue
    mounts.push({ hostPath: posix.join(source, subPath), mountPath, readOnly: m.readOnly === true })
  }
  return mounts
}

const noEntrypoint = (image: string): PlanError => ({
  _tag: "PlanError",
  reason: "StartError",
  message: `image "${image}": no entrypoint known: set command, or add it to the configmap key "images"`
})

/** Builds the plan, or says why the pod cannot start. */
export const planPod = (pod: KubeObject, images: Images): PodPlan | PlanError => {
  const main = mainContainer(pod)
  const template = podTemplate(pod)
  const env = containerEnv(pod, main)
  const outputParameters: Array<OutputParameterSpec> = []
  for (const p of asArray<NonNullable<NonNullable<TemplateLike["outputs"]>["parameters"]>[number]>(template?.outputs?.parameters)) {
    const path = p.valueFrom?.path
    if (typeof path === "string" && path !== "") {
      const d = p.valueFrom?.default
      outputParameters.push({ name: p.name, path, default: d === undefined || d === null ? undefined : String(d) })
    }
  }
  const includeScriptOutput = env.ARGO_INCLUDE_SCRIPT_OUTPUT === "true"
  const hostNetwork = (pod.spec as { hostNetwork?: unknown } | undefined)?.hostNetwork === true
  const hostPaths = hostPathMounts(pod, main)

  const script = template?.script
  // A script template without a source runs its container as is (as upstream): planned like a container, below.
  if (script !== undefined && typeof script.source === "string" && script.source !== "") {
    const image = script.image ?? main?.image ?? ""
    const command = asArray<string>(script.command).length > 0 ? asArray<string>(script.command) : ["sh"]
    return {
      _tag: "PodPlan",
      image,
      argv: [...command, ...asArray<string>(script.args), scriptPath],
      env,
      workingDir: script.workingDir ?? main?.workingDir,
      scriptSource: script.source ?? "",
      outputParameters,
      captureResult: includeScriptOutput,
      hostNetwork,
      hostPaths
    }
  }

  const container = template?.container
  let image: string
  let command: ReadonlyArray<string>
  let args: ReadonlyArray<string> | undefined
  if (container !== undefined) {
    image = container.image ?? main?.image ?? ""
    command = asArray<string>(container.command)
    args = container.args === undefined ? undefined : asArray<string>(container.args)
  } else {
    image = main?.image ?? ""
    command = unwrapEmissary(asArray<string>(main?.command))
    args = main?.args === undefined ? undefined : asArray<string>(main.args)
  }
  let argv: ReadonlyArray<string>
  if (command.length > 0) {
    argv = [...command, ...(args ?? [])]
  } else {
    const entry = lookupImage(images, image)
    if (entry === undefined) return noEntrypoint(image)
    argv = [...(entry.cmd ?? []), ...(args ?? entry.args ?? [])]
    if (argv.length === 0) return noEntrypoint(image)
  }
  return {
    _tag: "PodPlan",
    image,
    argv,
    env,
    workingDir: container?.workingDir ?? main?.workingDir,
    outputParameters,
    captureResult: includeScriptOutput,
    hostNetwork,
    hostPaths
  }
}
