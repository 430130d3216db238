import { it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { fast, inMemory, waitFor, workflow, podNodes } from "./harness.js"
import { submit } from "./fixtures.js"
const remote = { cluster: "cluster-1", namespace: "remote" } as const
const slow = (duration: string) => ({ ...remote, annotations: { "flotilla.dev/simulate-duration": duration } })
it.live("dbg", () => inMemory((logs) => Effect.gen(function*() {
  const wf = workflow({ name: "restart", podGC: "OnPodCompletion", steps: [slow("0s"), slow("2s"), slow("0s")] })
  const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
  yield* submit(admin, wf)
  yield* waitFor(controller, wf, (w) => { const nodes = podNodes(w); return nodes.some((n) => n.phase === "Succeeded") && nodes.some((n) => n.phase === "Running") }, "x")
  yield* Effect.sleep("500 millis")
  console.log((yield* kube.objects("cluster-1", "pods", "remote")).map(p => [p.metadata.name, (p as any).status?.phase, p.metadata.deletionTimestamp]))
  console.log(JSON.stringify((yield* admin.get("workflows","local","restart"))["status"], null, 1).slice(0, 3000))
  console.log(logs.lines.filter(l => !l.includes("level=debug")).join("\n"))
})), 30000)
