/**
 * A proof, on each pod the controller creates, that it created it for that
 * node: an HMAC-SHA256, under a key only the controller holds, of the
 * workflow's UID, the node ID, the cluster, the namespace, the pod name and
 * what the pod runs (its containers' images, commands, arguments and the
 * executor's `ARGO_*` variables: fields a pod cannot change; containers and
 * variables added by admission webhooks are left out), in the annotation
 * `flotilla.dev/pod-proof`.
 *
 * The node's status records the pod's UID right after the create
 * (`PodIdentity`), and that record is what the controller trusts. The proof
 * covers the moment in between: a controller stopped after the create and
 * before the status write finds, when it starts again, a pod it has no record
 * of; with a valid proof it adopts it (and records it) instead of replacing
 * it, so the step does not run twice. Labels, annotations and names can be
 * written by anyone who may create pods in a namespace; the proof cannot be
 * forged without the key, and a copy of it fits no other node, place or name,
 * nor another pod of the same name that runs anything else.
 *
 * The key is 32 random bytes in the secret `flotilla-pod-identity` (item
 * `key`) of the controller's namespace, made on first start. Without it
 * (the controller may not create secrets there) every pod still works: the
 * record alone decides, and a pod found without one is replaced.
 */
import { Effect, Option } from "effect"
import * as crypto from "node:crypto"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"

export const proofAnnotation = "flotilla.dev/pod-proof"
export const keySecretName = "flotilla-pod-identity"

export interface PodProofKey {
  /** The proof for `pod` (as it will be created) at this place, for this workflow and node. */
  readonly sign: (fields: ProofFields, pod: KubeObject) => string
  readonly verify: (pod: KubeObject, cluster: string, workflowUid: string, nodeId: string) => boolean
}

export interface ProofFields {
  readonly workflowUid: string
  readonly nodeId: string
  readonly cluster: string
  readonly namespace: string
  readonly podName: string
}

type ContainerSpec = {
  readonly name?: unknown
  readonly image?: unknown
  readonly command?: unknown
  readonly args?: unknown
  readonly env?: ReadonlyArray<{ readonly name?: unknown; readonly value?: unknown }>
}

const containersOf = (pod: KubeObject): ReadonlyArray<ContainerSpec> => {
  const spec = (pod["spec"] ?? {}) as { readonly containers?: ReadonlyArray<ContainerSpec>; readonly initContainers?: ReadonlyArray<ContainerSpec> }
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])]
}

/**
 * What the named containers run: image, command, arguments and the
 * executor's `ARGO_*` variables (which carry the template). Containers and
 * variables that admission webhooks add (sidecars, KUBERNETES_SERVICE_HOST...)
 * are outside it; undefined when a named container is missing.
 */
const runsDigest = (pod: KubeObject, names: ReadonlyArray<string>): string | undefined => {
  const containers = containersOf(pod)
  const parts: Array<unknown> = []
  for (const name of names) {
    const c = containers.find((x) => x.name === name)
    if (c === undefined) return undefined
    const argo = (c.env ?? []).filter((e) => typeof e.name === "string" && e.name.startsWith("ARGO_")).map((e) => [e.name, e.value ?? null])
    parts.push([name, c.image ?? null, c.command ?? [], c.args ?? [], argo])
  }
  return crypto.createHash("sha256").update(JSON.stringify(parts)).digest("base64url")
}

/** Proof format: `v1.<container names, comma-separated>.<HMAC>` (names are DNS labels: no dots or commas). */
export const fromKey = (key: Uint8Array): PodProofKey => {
  const mac = (f: ProofFields, names: ReadonlyArray<string>, digest: string) =>
    crypto.createHmac("sha256", key).update([f.workflowUid, f.nodeId, f.cluster, f.namespace, f.podName, names.join(","), digest].join("\n"))
      .digest("base64url")
  return {
    sign: (f, pod) => {
      const names = containersOf(pod).map((c) => String(c.name ?? ""))
      return `v1.${names.join(",")}.${mac(f, names, runsDigest(pod, names) ?? "")}`
    },
    verify: (pod, cluster, workflowUid, nodeId) => {
      const given = pod.metadata.annotations?.[proofAnnotation]
      if (given === undefined || workflowUid === "" || pod.metadata.name === undefined || pod.metadata.namespace === undefined) return false
      const [version, list, signature] = given.split(".")
      if (version !== "v1" || list === undefined || list === "" || signature === undefined) return false
      const names = list.split(",")
      const digest = runsDigest(pod, names)
      if (digest === undefined) return false
      const expected = Buffer.from(mac({ workflowUid, nodeId, cluster, namespace: pod.metadata.namespace, podName: pod.metadata.name }, names, digest))
      const actual = Buffer.from(signature)
      return actual.length === expected.length && crypto.timingSafeEqual(actual, expected)
    }
  }
}

/** The pod as it is created: with its proof (the controller's, over anything the template set). */
export const withProof = (pod: KubeObject, proof: string): KubeObject => ({
  ...pod,
  metadata: { ...pod.metadata, annotations: { ...pod.metadata.annotations, [proofAnnotation]: proof } }
})

const decodeKey = (secret: KubeObject): Uint8Array | undefined => {
  const data = (secret["data"] ?? {}) as Record<string, unknown>
  const value = data["key"]
  if (typeof value !== "string") return undefined
  const key = Buffer.from(value, "base64")
  return key.length >= 32 ? key : undefined
}

/**
 * Reads the key, making it on first start (two replicas racing: the loser
 * reads the winner's). None, with a warning, when it can neither be read nor made.
 */
export const loadKey = (client: KubeClientShape, namespace: string): Effect.Effect<Option.Option<PodProofKey>> =>
  Effect.gen(function*() {
    const read = client.get("secrets", namespace, keySecretName).pipe(Effect.map(decodeKey))
    const existing = yield* read.pipe(
      Effect.map(Option.some),
      Effect.catchTag("KubeError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none<Uint8Array | undefined>()) : Effect.fail(e))
    )
    if (Option.isSome(existing)) {
      if (existing.value === undefined) {
        yield* Effect.logWarning(`secret ${namespace}/${keySecretName} has no 32-byte item "key": pods are told apart by their recorded UID only`)
        return Option.none()
      }
      return Option.some(fromKey(existing.value))
    }
    const key = crypto.randomBytes(32)
    const made = yield* client.create("secrets", namespace, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: keySecretName, namespace, labels: { "app.kubernetes.io/name": "flotilla" } },
      type: "Opaque",
      data: { key: key.toString("base64") }
    }).pipe(
      Effect.as(key as Uint8Array | undefined),
      Effect.catchTag("KubeError", (e) => e.reason === "AlreadyExists" ? read : Effect.fail(e))
    )
    return made === undefined ? Option.none() : Option.some(fromKey(made))
  }).pipe(
    Effect.catchTag("KubeError", (e) =>
      Effect.logWarning(
        `cannot read or create secret ${namespace}/${keySecretName}: pods are told apart by their recorded UID only (a pod created just before a restart is replaced)`
      ).pipe(Effect.annotateLogs({ error: e.message }), Effect.as(Option.none()))
    )
  )
