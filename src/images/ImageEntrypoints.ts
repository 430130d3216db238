/**
 * Image entrypoints from the controller configmap's `images` key. Argo's
 * executor looks up the entrypoint of a container that has no `command`; the
 * engine (when building the pod) and the local kubelet (which cannot pull the
 * image) both use this one lookup, so they always agree.
 */

export interface ImageEntrypoint {
  /** The image's ENTRYPOINT. */
  readonly cmd?: ReadonlyArray<string> | undefined
  /** The image's CMD: default arguments, replaced by the template's `args`. */
  readonly args?: ReadonlyArray<string> | undefined
}

export type Images = Readonly<Record<string, ImageEntrypoint>>

/** `name`, `name:latest` and `docker.io/[library/]name` all find the same entry. */
export const lookupImage = (images: Images | undefined, image: string | undefined): ImageEntrypoint | undefined => {
  if (images === undefined || image === undefined) return undefined
  const candidates = new Set<string>([image])
  candidates.add(image.replace(/^docker\.io\//, "").replace(/^library\//, ""))
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
