/**
 * The embedded runtime runs a pod's command on the host instead of in its
 * image, so a few programs the images are known by must be the image's own,
 * not whatever the host calls by that name:
 *  - `busybox` and `alpine` (any tag): `sh`, `/bin/sh`, `ash` are BusyBox's
 *    ash (`busybox sh`), not the host's shell (Debian's dash), so `$RANDOM`,
 *    `${var:offset:length}`, `[[ ]]` and other BusyBox-isms behave as in the
 *    image. BusyBox comes from Debian's `busybox-static` (or `busybox`)
 *    package, as in the images built for the real test nodes; without it on
 *    the host, the host's shell stands in.
 *  - `python` (any tag): `python`, `python3` (also at the image's
 *    `/usr/local/bin`) are the host's `python3`.
 *  - `argoproj/argosay` (any tag): `/argosay` is the stand-in `argosay`.
 * Every other command runs as named.
 */

/**
 * The repository of an image reference: registry host, `library/`, tag and
 * digest dropped (`docker.io/library/alpine:3.23` and `alpine@sha256:...`
 * are both `alpine`).
 */
export const imageRepository = (image: string): string => {
  let ref = image.trim()
  const at = ref.indexOf("@")
  if (at >= 0) ref = ref.slice(0, at)
  const colon = ref.lastIndexOf(":")
  if (colon > ref.lastIndexOf("/")) ref = ref.slice(0, colon)
  const parts = ref.split("/")
  if (parts.length > 1 && (parts[0].includes(".") || parts[0].includes(":") || parts[0] === "localhost")) parts.shift()
  if (parts.length > 1 && parts[0] === "library") parts.shift()
  return parts.join("/").toLowerCase()
}

/** Images whose shell is BusyBox's. */
const busyboxImages = new Set(["busybox", "alpine"])
const busyboxShells = new Map([["sh", "sh"], ["/bin/sh", "sh"], ["ash", "ash"], ["/bin/ash", "ash"]])

/** Images whose `python` is Python 3. */
const pythonImages = new Set(["python"])
const pythons = new Set(["python", "python3", "/usr/local/bin/python", "/usr/local/bin/python3", "/usr/bin/python", "/usr/bin/python3"])

export interface HostPrograms {
  /** Whether `busybox` is on the pods' PATH. */
  readonly busybox: boolean
}

/** The host argv that runs `argv` with `image`'s semantics (see the module comment). */
export const hostCommand = (image: string | undefined, argv: ReadonlyArray<string>, host: HostPrograms): ReadonlyArray<string> => {
  if (image === undefined || argv.length === 0) return argv
  const repository = imageRepository(image)
  const [program, ...rest] = argv
  if (busyboxImages.has(repository) && host.busybox) {
    const applet = busyboxShells.get(program)
    if (applet !== undefined) return ["busybox", applet, ...rest]
  }
  if (pythonImages.has(repository) && pythons.has(program)) return ["python3", ...rest]
  // The argosay images' entrypoint is /argosay (test/e2e/images/argosay/v2/Dockerfile): the stand-in on the PATH.
  if (repository === "argoproj/argosay" && program === "/argosay") return ["argosay", ...rest]
  return argv
}
