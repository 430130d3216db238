/**
 * A pod with artifacts on the local kubelet: the executor's artifact work
 * around the main container's run, in argoexec's order. Init: the pod's
 * secret volumes mounted (read with the kubelet's identity, in the pod's
 * namespace), then every input artifact loaded and staged on the host; a
 * failure there is init's (the pod fails and main never starts). Main runs
 * with the inputs shown at their paths. Wait: every output artifact main
 * left, also when main failed, copied out of the pod, uploaded and reported
 * for the task result; then, when the template's archive location says
 * `archiveLogs`, main's log (the pod's log as the kubelet keeps it), from a
 * file in the staging directory, as artifact `main-logs` at
 * `<archive key>/main.log`. The staging directory is removed whatever
 * happens.
 *
 * The pod's active deadline bounds init and wait as it bounds main (upstream
 * kills every container at the deadline): loading inputs or saving outputs
 * still under way then is interrupted, nothing more is saved, and the pod
 * ends as killed at its deadline. Unisolated, inputs may only go under the
 * temp folders (PodProcess.ts `unisolatedInputRefusal`).
 *
 * It never reads credentials from anywhere but the pod's mounted secrets.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect } from "effect"
import type { ArtifactEgress } from "./artifacts/egress.js"
import type { KubeClientShape } from "../kube/api/KubeClient.js"
import type { KubeObject } from "../kube/api/Resources.js"
import { type ArtifactDeps, type ArtifactTemplate, hasArtifacts, loadInputs, type SavedOutputs, saveLogs, saveOutputs } from "./artifacts/executor.js"
import { cleanPath, isArchiveLogs } from "./artifacts/location.js"
import type { ArtifactStore } from "./artifacts/S3Store.js"
import { mountSecretVolumes } from "./artifacts/secretVolumes.js"
import type { Outcome } from "./outcome.js"
import { unisolatedInputRefusal } from "./PodProcess.js"
import { podTemplate } from "./PodPlan.js"
import type { Isolation } from "./processSpec.js"
import { podHostId, removeDir } from "./processSpec.js"

export interface ArtifactPodDeps {
  readonly client: KubeClientShape
  readonly store: ArtifactStore
  /** Where the pod's artifact calls may go (egress.ts). */
  readonly egress: ArtifactEgress
  readonly isolation: Isolation
  /** Parent of the per-pod staging directories. */
  readonly workDir: string
  /** Bounds on the pod's transfers (executor.ts); the defaults when absent. */
  readonly limits?: { readonly maxHttpBytes?: number | undefined; readonly maxDecompressedBytes?: number | undefined } | undefined
}

/** What `runProcess` is given on top of the plan. */
export interface ArtifactRun {
  readonly inputs: ReadonlyArray<{ readonly podPath: string; readonly hostPath: string }>
  readonly artifactPaths: ReadonlyArray<string>
  readonly artifactDir: string
}

export type ArtifactPodResult =
  | { readonly _tag: "InitFailed"; readonly message: string }
  | { readonly _tag: "Ran"; readonly outcome: Outcome; readonly saved: SavedOutputs }

/** The pod's template when it has artifacts, or archives its logs (from `ARGO_TEMPLATE`). */
export const artifactTemplateOf = (pod: KubeObject): ArtifactTemplate | undefined => {
  const t = podTemplate(pod) as ArtifactTemplate | undefined
  return hasArtifacts(t) || isArchiveLogs(t?.archiveLocation) ? t : undefined
}

/** The main container of a container or script template, as argoexec's `GetMainContainerNames` names it. */
const mainContainerName = "main"

/**
 * The wait container's uploads: `SaveArtifacts`, then (with `archiveLogs`)
 * `SaveLogs`: main's log, as the kubelet keeps it, written to a file in the
 * staging directory and uploaded from there. Their reports and errors in
 * argoexec's order (artifacts, then logs).
 */
const saveAll = (
  deps: ArtifactDeps,
  template: ArtifactTemplate,
  outcome: Outcome,
  logDir: string
): Effect.Effect<SavedOutputs> =>
  Effect.gen(function*() {
    const outputs = yield* saveOutputs(deps, template, (p) => outcome.artifacts?.[p])
    if (!isArchiveLogs(template.archiveLocation)) return outputs
    const file = path.join(logDir, `${mainContainerName}.log`)
    const written = yield* Effect.result(Effect.tryPromise({
      try: async () => {
        await fs.promises.mkdir(logDir, { recursive: true, mode: 0o700 })
        await fs.promises.writeFile(file, outcome.log, { mode: 0o600 })
      },
      catch: (e) => `saving the logs of container '${mainContainerName}': ${e instanceof Error ? e.message : String(e)}`
    }))
    const logs: SavedOutputs = written._tag === "Failure"
      ? { artifacts: [], error: written.failure }
      : yield* saveLogs(deps, template, [{ container: mainContainerName, file }])
    const errors = [outputs.error, logs.error].filter((e): e is string => e !== undefined)
    return { artifacts: [...outputs.artifacts, ...logs.artifacts], ...(errors.length > 0 ? { error: errors.join("; ") } : {}) }
  })

/** argoexec's exit code for an error (`os.Exit(64)`). */
export const initErrorExitCode = 64

/** Hands a staged tree to the pod's root (host uid `podHostId` in the sandbox), as files an init container wrote as root. */
const chownTree = (p: string, uid: number) => {
  fs.lchownSync(p, uid, uid)
  if (!fs.lstatSync(p).isDirectory()) return
  for (const name of fs.readdirSync(p)) chownTree(path.join(p, name), uid)
}

/** What the pod ends with when its deadline passes during init or wait: killed, nothing (more) saved. */
const killedAtDeadline = (outcome?: Outcome): ArtifactPodResult => ({
  _tag: "Ran",
  outcome: outcome !== undefined ? { ...outcome, deadlineExceeded: true } : { exitCode: 137, stdout: "", log: "", files: {}, deadlineExceeded: true },
  saved: { artifacts: [] }
})

export const runArtifactPod = (
  deps: ArtifactPodDeps,
  pod: KubeObject,
  template: ArtifactTemplate,
  stageName: string,
  run: (extra: ArtifactRun) => Effect.Effect<Outcome>,
  /** Completes at the pod's active deadline (never: no deadline). */
  deadline: Effect.Effect<void> = Effect.never
): Effect.Effect<ArtifactPodResult> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const dir = path.join(deps.workDir, stageName)
      fs.mkdirSync(path.join(dir, "in"), { recursive: true, mode: 0o700 })
      fs.mkdirSync(path.join(dir, "scratch"), { recursive: true, mode: 0o700 })
      return dir
    }),
    (dir) =>
      Effect.gen(function*() {
        const secrets = yield* mountSecretVolumes(deps.client, pod).pipe(Effect.mapError((e) => e.message))
        const artifactDeps = {
          store: deps.store,
          secrets,
          egress: deps.egress,
          httpTimeout: Duration.seconds(60),
          scratchDir: path.join(dir, "scratch"),
          ...deps.limits
        }
        if (deps.isolation === "none") {
          for (const art of template.inputs?.artifacts ?? []) {
            const podPath = cleanPath(art)
            const refused = typeof podPath === "string" ? unisolatedInputRefusal(podPath, dir) : undefined
            if (refused !== undefined) return yield* Effect.fail(`artifact ${art.name}: ${refused}`)
          }
        }
        // Init, bounded by the deadline as a whole.
        const loaded = yield* Effect.raceFirst(
          loadInputs(artifactDeps, template, path.join(dir, "in")).pipe(Effect.map((inputs) => ({ _tag: "Loaded" as const, inputs }))),
          deadline.pipe(Effect.as({ _tag: "Deadline" as const }))
        )
        if (loaded._tag === "Deadline") return killedAtDeadline()
        const inputs = loaded.inputs
        if (deps.isolation === "overlay") {
          yield* Effect.try({ try: () => inputs.forEach((i) => chownTree(i.hostPath, podHostId)), catch: (e) => `staging inputs: ${String(e)}` })
        }
        const artifactPaths = (template.outputs?.artifacts ?? []).map(cleanPath).filter((p): p is string => typeof p === "string")
        const outcome = yield* run({ inputs, artifactPaths, artifactDir: path.join(dir, "out") })
        // Killed at its deadline, or main never started: the wait container saves nothing.
        if (outcome.deadlineExceeded === true || outcome.startFailure !== undefined) {
          return { _tag: "Ran", outcome, saved: { artifacts: [] } } satisfies ArtifactPodResult
        }
        // Wait, bounded by the same deadline.
        const saved = yield* Effect.raceFirst(
          saveAll(artifactDeps, template, outcome, path.join(dir, "logs")).pipe(Effect.map((saved) => ({ _tag: "Saved" as const, saved }))),
          deadline.pipe(Effect.as({ _tag: "Deadline" as const }))
        )
        if (saved._tag === "Deadline") return killedAtDeadline(outcome)
        return { _tag: "Ran", outcome, saved: saved.saved } satisfies ArtifactPodResult
      }).pipe(
        Effect.catch((message: string) => Effect.succeed<ArtifactPodResult>({ _tag: "InitFailed", message }))
      ),
    (dir) => Effect.sync(() => removeDir(dir))
  )
