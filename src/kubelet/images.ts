/**
 * Entrypoints of the container images used by upstream Argo's examples, for
 * the embedded runtime: it runs a pod's main container as a host process and
 * cannot pull an image to learn its ENTRYPOINT/CMD. The controller configmap
 * key `images` (same shape as upstream's `images:` key: `cmd` = ENTRYPOINT,
 * `args` = CMD) extends or overrides this map.
 *
 * Docker semantics apply when a template sets no `command`: the process is
 * `cmd ++ (template args ?? image args)`. An image with only a CMD (no
 * ENTRYPOINT) is written as `{ args: [...] }`, so template args replace it.
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"

import type { Images } from "../images/ImageEntrypoints.js"

export { hostCommand, type HostPrograms, imageRepository } from "../images/ImageCommands.js"
export { type ImageEntrypoint, type Images, lookupImage } from "../images/ImageEntrypoints.js"

export const defaultImages: Images = {
  // The seed's multi-cluster sample runs whalesay with no command. The real
  // image's CMD is /bin/bash, which does nothing without a tty; running cowsay
  // is what every example using it means.
  "docker/whalesay": { cmd: ["cowsay"] },
  // test/e2e/images/argosay/v2/Dockerfile: ENTRYPOINT ["/argosay"].
  "argoproj/argosay:v2": { cmd: ["argosay"] },
  // test/e2e/images/argosay/v1/Dockerfile: ubuntu + cowsay with CMD ["cowsay"]
  // (no ENTRYPOINT), so template args replace it entirely.
  "argoproj/argosay:v1": { args: ["cowsay"] }
}

/**
 * The folder of stand-in entrypoints (`argosay`, `cowsay`), to put first on
 * the PATH of pods run by the local kubelet.
 */
export const imagesPath: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "images")
