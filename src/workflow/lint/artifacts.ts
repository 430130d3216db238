/**
 * Artifacts: the fields the engine and the executors read (engine/artifacts.ts), checked with
 * their paths: one location per artifact and only the kinds flotilla's runtimes move (s3, http,
 * raw), `from` as a `{{...}}` reference and not with `fromExpression`, a path for a pod
 * template's inputs and outputs, `archive`, `artifactGC` strategies, `archiveLocation`,
 * `spec.artifactRepositoryRef`, a data template's source (s3 only: what the kubelet lists) and
 * transformation expressions, and the input artifact a resource's `manifestFrom` names.
 */
import { isRecord } from "../../util/records.js"
import { parseExpr } from "../expressions/index.js"
import { type LintContext, list, type Obj, present, str } from "./context.js"

const locationKinds = ["s3", "git", "http", "artifactory", "hdfs", "raw", "oss", "gcs", "azure", "plugin"] as const
const supported = new Set(["s3", "http", "raw"])
const gcStrategies = new Set(["", "OnWorkflowCompletion", "OnWorkflowDeletion", "Never"])

const checkLocation = (cx: LintContext, a: Obj, path: string, what: string): void => {
  const kinds = locationKinds.filter((k) => present(a[k]))
  if (kinds.length > 1) cx.add(path, `${what} has more than one location (${kinds.join(", ")})`)
  for (const k of kinds) {
    if (!supported.has(k)) cx.add(`${path}.${k}`, `${k} artifacts are not supported (only s3, http and raw)`)
    else if (!isRecord(a[k])) cx.add(`${path}.${k}`, `${k} must be a mapping`)
  }
  const s3 = a["s3"]
  if (isRecord(s3)) {
    for (const s of ["accessKeySecret", "secretKeySecret", "sessionTokenSecret", "caSecret"]) {
      const sel = s3[s]
      if (!present(sel)) continue
      if (!isRecord(sel) || (str(sel.name) ?? "") === "" || (str(sel.key) ?? "") === "") cx.add(`${path}.s3.${s}`, "must be a secret key selector {name, key}")
    }
  }
  const http = a["http"]
  if (isRecord(http) && (str(http.url) ?? "") === "") cx.add(`${path}.http.url`, "a url is required")
  const raw = a["raw"]
  if (isRecord(raw) && typeof raw.data !== "string") cx.add(`${path}.raw.data`, "data (a string) is required")
}

/** One artifact of inputs, outputs or arguments. */
export const checkArtifact = (cx: LintContext, a: unknown, path: string, role: "input" | "output" | "argument", podTemplate: boolean): void => {
  if (!isRecord(a)) return
  const name = str(a.name) ?? ""
  const what = `${role} artifact "${name}"`
  checkLocation(cx, a, path, what)
  const from = str(a.from)
  const fromExpression = str(a.fromExpression)
  if (from !== undefined && from !== "" && fromExpression !== undefined && fromExpression !== "") {
    cx.add(path, `${what} has both from and fromExpression`)
  }
  if (from !== undefined && from !== "" && !/^\s*\{\{.*\}\}\s*$/s.test(from)) {
    cx.add(`${path}.from`, `from must be a reference like "{{steps.<name>.outputs.artifacts.<artifact>}}", got "${from}"`)
  }
  if (role === "input" && (from !== undefined || fromExpression !== undefined)) cx.add(`${path}.from`, "an input artifact takes from/fromExpression in the caller's arguments, not here")
  if (podTemplate && role !== "argument" && (str(a.path) ?? "") === "") cx.add(`${path}.path`, `${what} needs a path`)
  const archive = a.archive
  if (present(archive)) {
    if (!isRecord(archive)) cx.add(`${path}.archive`, "archive must be a mapping (none, tar or zip)")
    else {
      const kinds = Object.keys(archive).filter((k) => present(archive[k]))
      const unknown = kinds.filter((k) => k !== "none" && k !== "tar" && k !== "zip")
      if (unknown.length > 0) cx.add(`${path}.archive`, `unknown archive strategy ${unknown.join(", ")} (none, tar or zip)`)
      else if (kinds.length > 1) cx.add(`${path}.archive`, "archive takes one of none, tar or zip")
      const tar = archive.tar
      if (isRecord(tar) && present(tar.compressionLevel)) {
        const l = Number(tar.compressionLevel)
        if (!Number.isInteger(l) || l < -1 || l > 9) cx.add(`${path}.archive.tar.compressionLevel`, "must be an integer from -1 to 9")
      }
    }
  }
  checkGC(cx, a.artifactGC, `${path}.artifactGC`)
}

const checkGC = (cx: LintContext, gc: unknown, path: string): void => {
  if (!present(gc)) return
  if (!isRecord(gc)) return cx.add(path, "artifactGC must be a mapping")
  const s = gc.strategy
  if (present(s) && (typeof s !== "string" || !gcStrategies.has(s))) {
    cx.add(`${path}.strategy`, `unknown strategy ${JSON.stringify(s)} (OnWorkflowCompletion, OnWorkflowDeletion or Never)`)
  }
}

/** A template's artifacts and archiveLocation. */
export const checkTemplateArtifacts = (cx: LintContext, t: Obj, path: string, kind: string | undefined): void => {
  // Resource and data templates run pods too: their executor reads its inputs at their paths.
  const pod = kind === "container" || kind === "script" || kind === "containerSet" || kind === "resource" || kind === "data"
  const inputs = isRecord(t.inputs) ? t.inputs : {}
  const outputs = isRecord(t.outputs) ? t.outputs : {}
  list(inputs.artifacts).forEach((a, i) => checkArtifact(cx, a, `${path}.inputs.artifacts[${i}]`, "input", pod))
  list(outputs.artifacts).forEach((a, i) => checkArtifact(cx, a, `${path}.outputs.artifacts[${i}]`, "output", pod))
  if (kind === "data" && isRecord(t.data)) checkData(cx, t.data, `${path}.data`)
  const resource = t.resource
  if (kind === "resource" && isRecord(resource) && isRecord(resource.manifestFrom)) {
    const name = isRecord(resource.manifestFrom.artifact) ? str(resource.manifestFrom.artifact.name) ?? "" : ""
    const named = list(inputs.artifacts).some((a) => isRecord(a) && a.name === name)
    if (!named) cx.add(`${path}.resource.manifestFrom.artifact.name`, `artifact ${name} in \`manifestFrom\` refer to a non-exist artifact`)
  }
  const loc = t.archiveLocation
  if (present(loc)) {
    if (!isRecord(loc)) cx.add(`${path}.archiveLocation`, "archiveLocation must be a mapping")
    else {
      if (present(loc.archiveLogs) && typeof loc.archiveLogs !== "boolean") cx.add(`${path}.archiveLocation.archiveLogs`, "must be true or false")
      checkLocation(cx, loc, `${path}.archiveLocation`, "archiveLocation")
    }
  }
}

/** A data template: its source's location (s3 only) and each transformation expression's syntax (its only variable is `data`). */
const checkData = (cx: LintContext, data: Obj, path: string): void => {
  const source = isRecord(data.source) ? data.source : {}
  const art = source.artifactPaths
  if (!isRecord(art)) cx.add(`${path}.source`, "no valid source is used for data template (artifactPaths)")
  else {
    checkLocation(cx, art, `${path}.source.artifactPaths`, "the data source")
    const other = locationKinds.find((k) => k !== "s3" && present(art[k]))
    if (other !== undefined && supported.has(other)) cx.add(`${path}.source.artifactPaths.${other}`, `listing ${other} artifacts is not supported (only s3)`)
  }
  list(data.transformation).forEach((step, i) => {
    const e = isRecord(step) ? str(step.expression) : undefined
    if (e === undefined || e === "") return
    try {
      parseExpr(e)
    } catch (err) {
      cx.add(`${path}.transformation[${i}].expression`, `invalid expression ${JSON.stringify(e)}: ${err instanceof Error ? err.message : String(err)}`)
    }
  })
}

/** A call's `arguments.artifacts`. */
export const checkArgumentArtifacts = (cx: LintContext, args: Obj, path: string): void => {
  list(args.artifacts).forEach((a, i) => checkArtifact(cx, a, `${path}.artifacts[${i}]`, "argument", false))
}

/** The workflow's repository reference and its artifact GC. */
export const checkWorkflowArtifacts = (cx: LintContext, spec: Obj): void => {
  const ref = spec.artifactRepositoryRef
  if (present(ref)) {
    if (!isRecord(ref)) cx.add("spec.artifactRepositoryRef", "must be a mapping {configMap, key}")
    else {
      for (const k of Object.keys(ref)) {
        if (k !== "configMap" && k !== "key") cx.add(`spec.artifactRepositoryRef.${k}`, "unknown field (configMap, key)")
        else if (present(ref[k]) && typeof ref[k] !== "string") cx.add(`spec.artifactRepositoryRef.${k}`, "must be a string")
      }
    }
  }
  checkGC(cx, spec.artifactGC, "spec.artifactGC")
  if (present(spec.archiveLogs) && typeof spec.archiveLogs !== "boolean") cx.add("spec.archiveLogs", "must be true or false")
  const args = isRecord(spec.arguments) ? spec.arguments : {}
  checkArgumentArtifacts(cx, args, "spec.arguments")
}
