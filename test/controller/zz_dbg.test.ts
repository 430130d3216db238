import { it } from "@effect/vitest"
import { Effect } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { fast, inMemory, waitFor, workflow, podRunning, putSystemKubeconfig, systemKubeconfig } from "./harness.js"
import { submit } from "./fixtures.js"
it.live("dbg", () => inMemory((logs) => Effect.gen(function*() {
        const wf = workflow({ name: "rotated", cluster: "cluster-1", namespace: "remote", annotations: { "flotilla.dev/simulate-duration": "1500ms" } })
        const { admin, controller, kube } = yield* Embedded.start(Embedded.placementOf([wf]), fast())
        yield* submit(admin, wf)
        yield* waitFor(controller, wf, podRunning, "pod running")
        yield* kube.addIdentity("cluster-1", { name: "controller-rotated", token: "controller-token-2",
          rules: [{ verbs: ["list", "watch", "delete"], resources: ["pods", "workflowtaskresults"], namespaces: ["remote"] }] })
        yield* putSystemKubeconfig(admin, systemKubeconfig([{ name: "cluster-1", namespace: "remote", token: "controller-token-2" }]))
        yield* Effect.sleep("1 second")
        console.log((yield* kube.requests("main")).filter(r => r.resource === "secrets"))
        console.log(logs.lines.filter(l => !l.includes("level=debug")).join("\n"))
})), 30000)
