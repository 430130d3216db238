/**
 * Runs the main container of one pod as a host process, for the local
 * kubelet, and collects what the executor would: stdout, the combined log,
 * the exit code and the output-parameter files as the process left them.
 *
 * It is a runtime for development and tests, not a container runtime, and
 * not a boundary for untrusted code: it keeps a pod from acting as host root,
 * from writing the host and from seeing other pods, but shares the kernel and
 * everything world-readable (see "Not isolated"). Real isolation comes from a
 * real kubelet and container runtime. It must never run a pod as host root
 * with host privileges, nor hand a pod the runner's environment.
 *
 * The sandbox ("overlay" isolation) is in sandbox.ts, with what it isolates,
 * what it does not and what it costs; spawn.ts starts a process and captures
 * its log; podView.ts reads outputs back as the pod saw them; processSpec.ts
 * holds what both runners share. This module picks the runner.
 *
 * Fallback ("none"): when the probe fails (not root, not Linux, no overlayfs:
 * typical on a laptop or macOS) pods run directly, as this user with the
 * host's file system, network and devices, and the runner logs a warning
 * that they are UNISOLATED. Each gets a per-pod TMPDIR and working directory;
 * pods that declare output parameters are serialised by the caller, and their
 * declared output files under the temp directories are removed before they
 * start, so a stale file from another pod is never reported as theirs.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, type Scope } from "effect"
import { scriptPath } from "./PodPlan.js"
import {
  collectArtifacts,
  helperEnv,
  type Isolation,
  isUnder,
  podHostId,
  prepareDirs,
  type ProcessResult,
  type ProcessSpec,
  removeDir,
  type Runner
} from "./processSpec.js"
import { makeDevTemplate, makeOverlayRunner } from "./sandbox.js"
import { spawnAndWait } from "./spawn.js"

export type { HostPathMount } from "./PodPlan.js"
export { type Isolation, podHostId, type ProcessResult, type ProcessSpec, removeDir, type Runner } from "./processSpec.js"

const readIfFile = (p: string): string | undefined => {
  try {
    const st = fs.lstatSync(p)
    // A character device in an overlay upper dir is a whiteout: the pod deleted the file.
    if (st.isCharacterDevice()) return undefined
    return fs.readFileSync(p, "utf8")
  } catch {
    return undefined
  }
}

/** The real path of `p`'s nearest existing ancestor (itself included), with the rest appended. */
const realish = (p: string): string => {
  let dir = p
  const rest: Array<string> = []
  for (;;) {
    try {
      return path.join(fs.realpathSync(dir), ...rest.reverse())
    } catch {
      const parent = path.dirname(dir)
      if (parent === dir) return p
      rest.push(path.basename(dir))
      dir = parent
    }
  }
}

/**
 * Unisolated, an input artifact's path is the host's, and putting the input
 * there replaces what was there: only strictly under the pod's own folder or
 * the temp folders (/tmp, the system's), links resolved, so a workflow never
 * makes the runner remove `/usr`, a home folder or `/tmp` itself. The
 * message naming the artifact's path, or undefined when it may go there.
 */
export const unisolatedInputRefusal = (podPath: string, podDir: string): string | undefined => {
  const wanted = path.resolve("/", podPath)
  const roots = [...new Set([podDir, "/tmp", os.tmpdir()].map((r) => realish(path.resolve(r))))]
  const real = realish(wanted)
  const under = (p: string) => roots.some((r) => p.startsWith(r.endsWith(path.sep) ? r : r + path.sep))
  if (under(wanted) && under(real)) return undefined
  return `input artifact path ${podPath} is refused: pods run unisolated on this node (their paths are the host's), ` +
    `so inputs may only go under /tmp or ${os.tmpdir()}, never replace another host path`
}

const makePlainRunner = (): Runner => {
  const run = (spec: ProcessSpec): Effect.Effect<ProcessResult> =>
    Effect.gen(function*() {
      const tmp = path.join(spec.podDir, "tmp")
      const refused = (spec.inputs ?? []).map((i) => unisolatedInputRefusal(i.podPath, spec.podDir)).find((r) => r !== undefined)
      if (refused !== undefined) return { exitCode: 128, stdout: "", log: `${refused}\n`, files: {}, startError: refused } satisfies ProcessResult
      yield* Effect.sync(() => {
        prepareDirs(spec, false)
        for (const p of spec.outputPaths) {
          if (isUnder(p, "/tmp") || isUnder(p, os.tmpdir())) fs.rmSync(p, { force: true })
        }
        // Unisolated: the pod's paths are the host's, so its inputs are put there (and replace what was there).
        for (const input of spec.inputs ?? []) {
          fs.rmSync(input.podPath, { recursive: true, force: true })
          fs.mkdirSync(path.dirname(input.podPath), { recursive: true })
          fs.cpSync(input.hostPath, input.podPath, { recursive: true, verbatimSymlinks: true })
        }
      })
      const script = path.join(spec.podDir, "script")
      const argv = spec.argv.map((a) => (spec.scriptSource !== undefined && a === scriptPath ? script : a))
      const cwd = spec.workingDir !== undefined && fs.existsSync(spec.workingDir) ? spec.workingDir : spec.podDir
      const spawned = yield* spawnAndWait(argv, { env: { ...spec.env, TMPDIR: tmp }, cwd, stop: spec.stop })
      const files = yield* Effect.sync(() => {
        const out: Record<string, string | undefined> = {}
        for (const p of spec.outputPaths) out[p] = readIfFile(p)
        return out
      })
      const artifacts = yield* Effect.sync(() =>
        collectArtifacts(spec, (p, dest) => {
          if (!fs.existsSync(p)) return false
          fs.cpSync(p, dest, { recursive: true, verbatimSymlinks: true, dereference: false })
          return true
        })
      )
      return { ...spawned, files, ...(artifacts !== undefined ? { artifacts } : {}) }
    })
  return { isolation: "none", run }
}

const unisolated = (reason: string) =>
  Effect.logWarning(
    `local kubelet: pods run UNISOLATED (${reason}): each is a plain process of this user with the host's file system, ` +
      `network and devices; use this only for trusted workflows. Pods with output parameters run one at a time`
  )

/** Why this host cannot sandbox pods, or undefined: runs one sandboxed pod and checks what it wrote as whom. */
const probe = (overlay: Runner, workDir: string): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    const probeDir = yield* Effect.sync(() => fs.mkdtempSync(path.join(workDir, "probe-")))
    return yield* overlay.run({
      argv: ["/bin/sh", "-c", "echo ok > /tmp/probe; echo ok > /flotilla-probe; id -u"],
      env: { PATH: helperEnv.PATH },
      outputPaths: ["/tmp/probe", "/flotilla-probe"],
      podDir: probeDir
    }).pipe(
      Effect.map((result) => {
        let owner: number | undefined
        try {
          owner = fs.statSync(path.join(probeDir, "tmp", "probe")).uid
        } catch {
          owner = undefined
        }
        const ok = result.exitCode === 0 && result.stdout === "0\n" && owner === podHostId &&
          result.files["/tmp/probe"] === "ok\n" && result.files["/flotilla-probe"] === "ok\n"
        return ok ? undefined : `the sandbox probe exited ${result.exitCode}: ${result.log.trim().slice(0, 300)}`
      }),
      Effect.ensuring(Effect.sync(() => removeDir(probeDir)))
    )
  })

/**
 * Picks the isolation: "auto" probes by running one sandboxed pod (it costs
 * one pod start, once per kubelet) and checks that it ran as root of its own
 * user namespace; without the sandbox, it says so loudly. The scope holds the
 * pods' /dev template.
 */
export const makeRunner = (
  workDir: string,
  isolation: Isolation | "auto",
  /** Host directories every pod sees at the same path, read-only (the kubelet's own PATH entries). */
  exposed: ReadonlyArray<string> = []
): Effect.Effect<Runner, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* Effect.sync(() => fs.mkdirSync(workDir, { recursive: true }))
    if (isolation === "none") {
      yield* unisolated("isolation \"none\" was asked for")
      return makePlainRunner()
    }
    if (process.platform !== "linux") {
      yield* unisolated(`the sandbox needs Linux, this is ${process.platform}`)
      return makePlainRunner()
    }
    const uid = process.getuid?.()
    const made = yield* Effect.gen(function*() {
      // The pods' directories live here; another user owning it could swap them under the runner.
      const st = yield* Effect.sync(() => fs.statSync(workDir))
      if (st.uid !== uid) return yield* Effect.fail(`work directory ${workDir} belongs to uid ${st.uid}, not to this process`)
      if ((st.mode & 0o022) !== 0) yield* Effect.sync(() => fs.chmodSync(workDir, st.mode & 0o755))
      const dev = yield* makeDevTemplate(workDir)
      const overlay = makeOverlayRunner(workDir, exposed.filter((dir) => path.isAbsolute(dir)).map((dir) => path.normalize(dir)), dev)
      const failure = isolation === "overlay" ? undefined : yield* probe(overlay, workDir)
      return failure === undefined ? overlay : yield* Effect.fail(failure)
    }).pipe(Effect.result)
    if (made._tag === "Success") return made.success
    const reason = `${uid !== 0 ? `not root (uid ${uid}); ` : ""}${made.failure}`
    if (isolation === "overlay") return yield* Effect.die(new Error(`local kubelet: the sandbox was asked for and is unavailable: ${reason}`))
    yield* unisolated(reason)
    return makePlainRunner()
  })
