/**
 * Shared set-up for in-memory controller tests: the seed's clusters and
 * secrets (EmbeddedRuntime.provision), kubelets in simulate mode unless a test
 * asks for real processes, and helpers to submit and wait.
 */
import { Effect } from "effect"
import * as YAML from "yaml"
import * as fs from "node:fs"
import type { KubeObject } from "../../src/kube/api/Resources.js"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"

export const loadWorkflow = (path: string): KubeObject => YAML.parse(fs.readFileSync(path, "utf8")) as KubeObject

export const seedWorkflow = (): KubeObject => loadWorkflow(new URL("../../examples/multi-cluster.yaml", import.meta.url).pathname)

export const submit = (admin: Embedded.StartResult["admin"], wf: KubeObject) =>
  admin.create("workflows", wf.metadata.namespace, { apiVersion: "argoproj.io/v1alpha1", kind: "Workflow", ...wf })

export const startFor = (workflows: ReadonlyArray<KubeObject>, options: Embedded.StartOptions = {}) =>
  Embedded.start(Embedded.placementOf(workflows), { mode: "simulate", ...options })

export const untilCompleted = (controller: Embedded.StartResult["controller"], wf: KubeObject) =>
  Embedded.awaitWorkflow(controller, wf.metadata.namespace!, wf.metadata.name!, Embedded.isCompleted).pipe(
    Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error(`workflow ${wf.metadata.name} did not complete`)) })
  )
