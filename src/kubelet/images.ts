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

export interface ImageEntrypoint {
  /** The image's ENTRYPOINT. */
  readonly cmd?: ReadonlyArray<string> | undefined
  /** The image's CMD: default arguments, replaced by the template's `args`. */
  readonly args?: ReadonlyArray<string> | undefined
}

export type Images = Readonly<Record<string, ImageEntrypoint>>

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

/** `name`, `name:latest` and `docker.io/[library/]name` all find the same entry. */
export const lookupImage = (images: Images, image: string): ImageEntrypoint | undefined => {
  const candidates = new Set<string>([image])
  const stripped = image.replace(/^docker\.io\//, "").replace(/^library\//, "")
  candidates.add(stripped)
  for (const c of [...candidates]) {
    if (c.endsWith(":latest")) candidates.add(c.slice(0, -":latest".length))
    else if (!/:[^/]+$/.test(c) && !c.includes("@")) candidates.add(`${c}:latest`)
  }
  for (const c of candidates) {
    const hit = images[c]
    if (hit !== undefined) return hit
  }
  return undefined
}
