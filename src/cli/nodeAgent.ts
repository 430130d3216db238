/**
 * `flotilla kubelet`: the node agent of the test clusters, running the pods
 * bound to its node as local processes. Loaded by main.ts only when `kubelet`
 * is the command, so the controller's process never loads the kubelet's
 * modules (the S3 SDK among them).
 */
import { Effect, Option } from "effect"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import { KubeConnector } from "../kube/api/KubeConnector.js"
import { LiveKubeConnector } from "../kube/live/LiveKubeConnector.js"
import { loadLocalConnection } from "../kube/live/LocalConnection.js"
import { podServiceAccountClients } from "../kubelet/boundToken.js"
import * as LocalKubelet from "../kubelet/LocalKubelet.js"
import { standardNodeLabels } from "../kubelet/scheduling.js"

const registerNode = (client: KubeClientShape, nodeName: string) =>
  client.create("nodes", undefined, {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: nodeName, labels: { ...standardNodeLabels(nodeName), type: "flotilla-local-kubelet" } },
    spec: {},
    status: {
      conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "flotilla local kubelet" }],
      addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
      allocatable: { cpu: "32", memory: "256Gi", pods: "110" },
      capacity: { cpu: "32", memory: "256Gi", pods: "110" }
    }
  }).pipe(Effect.catchTag("KubeError", (e) => e.reason === "AlreadyExists" ? Effect.void : Effect.fail(e)))

export const runNodeAgent = (
  { artifactEndpoints, context, kubeconfig, nodeName, register, simulate }: {
    readonly kubeconfig: Option.Option<string>
    readonly context: Option.Option<string>
    readonly nodeName: string
    readonly register: boolean
    readonly artifactEndpoints: ReadonlyArray<string>
    readonly simulate: boolean
  }
) =>
  Effect.gen(function*() {
    const spec = yield* loadLocalConnection({
      kubeconfig: Option.getOrUndefined(kubeconfig),
      context: Option.getOrUndefined(context)
    })
    yield* Effect.gen(function*() {
      const connector = yield* KubeConnector
      const client = yield* connector.connect(spec)
      if (register) yield* registerNode(client, nodeName)
      // On a real cluster kube-scheduler binds pods; this agent only runs what lands on its node.
      // Resource templates' pods act as their service account, with a token bound to the pod (TokenRequest), never as this agent.
      const podServiceAccountClient = yield* podServiceAccountClients(client, spec, nodeName)
      yield* LocalKubelet.start({
        client,
        nodeName,
        mode: simulate ? "simulate" : "process",
        pathPrepend: ["/usr/games"],
        bind: false,
        podServiceAccountClient,
        artifactAllowedEndpoints: artifactEndpoints
      })
      yield* Effect.logInfo("kubelet started").pipe(Effect.annotateLogs({ node: nodeName, cluster: spec.cluster }))
      yield* Effect.never
    }).pipe(Effect.scoped, Effect.provide(LiveKubeConnector.layer))
  })
