/**
 * Shared set-up for the local kubelet tests: one in-memory cluster, pods laid
 * out like the controller lays them out (ARGO_TEMPLATE on the main container,
 * node-id annotation, workflow label), and waits on watch events rather than
 * on time.
 */
import { Effect, Option, Stream } from "effect"
import * as nodeFs from "node:fs"
import * as nodePath from "node:path"
import type { KubeClientShape } from "../../src/kube/api/KubeClient.js"
import type { KubeObject, ResourceKind } from "../../src/kube/api/Resources.js"
import { watchResource } from "../../src/kube/cache/Watch.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"

export const cluster = "local"
export const ns = "work"

export const setup = Effect.gen(function*() {
  const kube = yield* InMemoryKube
  yield* kube.addCluster(cluster)
  yield* kube.ensureNamespace(cluster, ns)
  return { kube, client: kube.adminClient(cluster) }
})

export interface TemplateInput {
  readonly container?: Record<string, unknown>
  readonly script?: Record<string, unknown>
  readonly outputs?: Record<string, unknown>
}

export const podFor = (
  name: string,
  template: TemplateInput,
  extra: {
    readonly env?: ReadonlyArray<Record<string, unknown>>
    readonly annotations?: Record<string, string>
    readonly nodeName?: string
    readonly includeScriptOutput?: boolean
  } = {}
): KubeObject => {
  const image = (template.container?.image ?? template.script?.image ?? "busybox") as string
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: ns,
      labels: { "workflows.argoproj.io/workflow": "wf", "workflows.argoproj.io/completed": "false" },
      annotations: { "workflows.argoproj.io/node-id": `wf-${name}`, "workflows.argoproj.io/node-name": `wf.${name}`, ...extra.annotations }
    },
    spec: {
      ...(extra.nodeName !== undefined ? { nodeName: extra.nodeName } : {}),
      restartPolicy: "Never",
      containers: [
        {
          name: "wait",
          image: "quay.io/argoproj/argoexec:v3.6.19",
          command: ["argoexec"],
          args: ["wait"],
          env: [{ name: "ARGO_TEMPLATE", value: JSON.stringify({ name, ...template }) }]
        },
        {
          name: "main",
          image,
          command: ["/var/run/argo/argoexec", "emissary", "--", "sh", "-c", "exit 99"],
          env: [
            { name: "ARGO_CONTAINER_NAME", value: "main" },
            { name: "ARGO_TEMPLATE", value: JSON.stringify({ name, ...template }) },
            { name: "ARGO_INCLUDE_SCRIPT_OUTPUT", value: String(extra.includeScriptOutput ?? false) },
            ...(extra.env ?? [])
          ]
        }
      ]
    }
  }
}

/** Waits (on watch events, not time) until the named object satisfies `predicate`. */
export const awaitObject = (
  client: KubeClientShape,
  kind: ResourceKind,
  name: string,
  predicate: (o: KubeObject) => boolean
): Effect.Effect<KubeObject> =>
  watchResource(client, kind, ns).pipe(
    Stream.flatMap((item) =>
      Stream.fromIterable(item._tag === "Synced" ? item.items : item._tag === "Upsert" ? [item.object] : [])
    ),
    Stream.filter((o) => o.metadata.name === name && predicate(o)),
    Stream.runHead,
    Effect.map(Option.getOrThrow)
  )

export const phaseOf = (pod: KubeObject): string | undefined => (pod.status as { phase?: string } | undefined)?.phase

export const awaitFinished = (client: KubeClientShape, name: string) =>
  awaitObject(client, "pods", name, (p) => phaseOf(p) === "Succeeded" || phaseOf(p) === "Failed")

export const awaitRunning = (client: KubeClientShape, name: string) =>
  awaitObject(client, "pods", name, (p) => phaseOf(p) === "Running")

export const mainTerminated = (pod: KubeObject) => {
  const statuses = (pod.status as { containerStatuses?: Array<{ name: string; state: { terminated?: Record<string, unknown> } }> })
    .containerStatuses ?? []
  return statuses.find((s) => s.name === "main")?.state.terminated
}

export interface TaskOutputs {
  readonly result?: string
  readonly exitCode?: string
  readonly parameters?: ReadonlyArray<{ name: string; value: string }>
}

export const taskResult = (client: KubeClientShape, name: string) =>
  client.get("workflowtaskresults", ns, `wf-${name}`).pipe(Effect.map((o) => o.outputs as TaskOutputs))

/** Waits until a real child process has created `file` (fs.watch on its folder, no polling). */
export const awaitFile = (file: string): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const dir = nodePath.dirname(file)
    let done = false
    const check = () => {
      if (!done && nodeFs.existsSync(file)) {
        done = true
        watcher.close()
        resume(Effect.void)
      }
    }
    const watcher = nodeFs.watch(dir, check)
    check()
    return Effect.sync(() => watcher.close())
  })

/** Whether any process on the host has a command line matching `predicate` (NUL-separated argv). */
export const processExists = (predicate: (cmdline: string) => boolean): boolean =>
  nodeFs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).some((d) => {
    try {
      return predicate(nodeFs.readFileSync(`/proc/${d}/cmdline`, "utf8"))
    } catch {
      return false
    }
  })
