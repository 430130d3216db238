/**
 * Shared by the unit tests of the controller's services: a fake local client whose unscripted
 * verbs die, and ControllerSettings with the configmap's defaults.
 */
import { Layer } from "effect"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import { KubeClient, type KubeClientShape } from "../../src/kube/api/KubeClient.js"
import { parseControllerConfig } from "../../src/controller/ControllerConfig.js"
import { type ControllerOptions, ControllerSettings } from "../../src/controller/Controller.js"
import type { EngineConfig } from "../../src/workflow/engine/contract.js"

export { fakeClient } from "../kube/fakeClient.js"

/** ControllerSettings (configmap defaults: cluster `main`) and the KubeClient, over `client`. */
export const settingsLayer = (client: KubeClientShape, options: Partial<ControllerOptions> = {}) => {
  const { config } = parseControllerConfig(undefined)
  const full: ControllerOptions = { localClient: client, localSpec: {} as ConnectionSpec, ...options }
  const engineConfig = { localCluster: config.cluster, podNameVersion: "v2" } as EngineConfig
  return Layer.mergeAll(
    Layer.succeed(ControllerSettings, ControllerSettings.of({ options: full, config, engineConfig })),
    Layer.succeed(KubeClient, client)
  )
}
