/**
 * Binding a call to a template: the arguments of a step, task or hook
 * resolved against its scope (with the callee's input defaults for what does
 * not resolve), the template's inputs bound and its body substituted, and a
 * `when` evaluated. Upstream's `common.ProcessArgs` / `SubstituteParams`
 * (workflow/common/util.go) and `shouldExecute` (workflow/controller/steps.go).
 */
import { type Arguments, type Artifact, inlineOf, type Parameter, type Template, type TemplateCall } from "../model/Workflow.js"
import { bindInputArtifacts, resolveArgArtifacts } from "./artifacts.js"
import { configMapKeyRefOf, inputParameterFromConfigMap } from "./configMapParams.js"
import type { EngineLimits } from "./limits.js"
import { type Failure, isFailure, type ResolvedArgs } from "./nodes.js"
import type { OperationState } from "./operation.js"
import { evaluateWhen, type Scope, substitute, substituteTemplate } from "./scope.js"

/** The text with what resolves substituted, for a message (the text as written when it does not). */
export const substituteForMessage = (text: string, scope: Scope, limits: EngineLimits["expression"]): string => {
  const r = substitute(text, scope, true, limits)
  return r.ok ? r.value : text
}

/**
 * The workflow's own arguments as a call's (values given, nothing substituted). One from a ConfigMap
 * passes the value `setGlobals` read (upstream reads the same informer again in `ProcessArgs`).
 */
export const argMap = (args: Arguments | undefined, globals?: ReadonlyMap<string, unknown>): ResolvedArgs => {
  const m: Map<string, string | undefined> & { artifacts?: ReadonlyArray<Artifact> } = new Map<string, string | undefined>()
  // spec.arguments.artifacts are the entrypoint's (upstream passes the workflow's arguments as its call's)
  if (args?.artifacts !== undefined) m.artifacts = args.artifacts
  for (const p of args?.parameters ?? []) {
    if (p.value !== undefined) m.set(p.name, String(p.value))
    else if (configMapKeyRefOf(p) !== undefined) {
      const read = globals?.get(`workflow.parameters.${p.name}`)
      if (read !== undefined) m.set(p.name, String(read))
    }
  }
  return m
}

/** Bind arguments to inputs and substitute the template (`common.ProcessArgs`). */
export const processTemplate = (op: OperationState, tmpl: Template, args: ResolvedArgs, locals: ReadonlyMap<string, unknown>): Template | Failure => {
  // Substitution walks the whole template: a DAG's or steps' size is its calls.
  op.spend(1 + (tmpl.dag?.tasks.length ?? 0) + (tmpl.steps?.length ?? 0))
  const scope = new Map<string, unknown>([...op.globals, ...locals])
  const inputs: Array<Parameter> = []
  for (const p of tmpl.inputs?.parameters ?? []) {
    let value: string | undefined = p.value !== undefined ? String(p.value) : p.default !== undefined ? String(p.default) : undefined
    const supplied = args.get(p.name)
    if (supplied !== undefined) value = supplied
    else if (value === undefined && configMapKeyRefOf(p) !== undefined) {
      // its name and key substituted with the global variables only, as upstream
      const fromConfigMap = inputParameterFromConfigMap(op, p, op.globals)
      if ("error" in fromConfigMap) return fromConfigMap
      value = fromConfigMap.value
    }
    if (value === undefined) {
      return { error: `inputs.parameters.${p.name} was not supplied` }
    }
    // An argument is data, substituted where the caller wrote it; only the template's own value or default is substituted here
    // (a ConfigMap's value is data too).
    const s = supplied === undefined && p.value === undefined && p.default === undefined && configMapKeyRefOf(p) !== undefined
      ? undefined
      : supplied === undefined ? substitute(value, scope, true, op.limits.expression) : undefined
    if (s?.ok) value = s.value
    if (p.enum !== undefined && p.enum.length > 0 && !p.enum.map(String).includes(value)) {
      return { error: `inputs.parameters.${p.name}: value '${value}' is not in the enum [${p.enum.join(" ")}]` }
    }
    const { default: _d, enum: _e, ...rest } = p
    inputs.push({ ...rest, value })
    scope.set(`inputs.parameters.${p.name}`, value)
  }
  scope.set("inputs.parameters", JSON.stringify(inputs.map((p) => ({ name: p.name, value: p.value }))))
  // input artifacts bound to the call's (artifacts.ts)
  const artifacts = bindInputArtifacts(op, tmpl, args.artifacts, scope)
  if (isFailure(artifacts)) return artifacts
  const { inputs: _inputs, ...body } = tmpl
  const sub = substituteTemplate(body, scope, op.limits.expression)
  if (!sub.ok) return { error: sub.error.message }
  const out: Template = { ...sub.value, name: tmpl.name } as Template
  if (tmpl.inputs !== undefined) {
    return {
      ...out,
      inputs: {
        ...tmpl.inputs,
        parameters: tmpl.inputs.parameters === undefined ? undefined : inputs,
        ...(artifacts !== undefined ? { artifacts } : {})
      }
    }
  }
  return out
}

/** Resolve a call's arguments against the scope; unresolvable parameters become `undefined`. */
export const resolveArgs = (op: OperationState, call: TemplateCall, scope: Scope): ResolvedArgs | Failure => {
  const out: Map<string, string | undefined> & { artifacts?: ReadonlyArray<Artifact> } = new Map<string, string | undefined>()
  if (call.arguments?.artifacts !== undefined) {
    const artifacts = resolveArgArtifacts(op, call, scope)
    if (isFailure(artifacts)) return artifacts
    out.artifacts = artifacts
  }
  let firstError: string | undefined
  for (const p of call.arguments?.parameters ?? []) {
    if (p.value === undefined) {
      if (configMapKeyRefOf(p) !== undefined) {
        // upstream's overwriteWithArguments: the callee's input reads the ConfigMap
        const fromConfigMap = inputParameterFromConfigMap(op, p, op.globals)
        if ("error" in fromConfigMap) return fromConfigMap
        out.set(p.name, fromConfigMap.value)
        continue
      }
      if (p.valueFrom !== undefined) return { error: `arguments.parameters.${p.name}: valueFrom is not supported in arguments` }
      continue
    }
    const r = substitute(String(p.value), scope, false, op.limits.expression)
    if (r.ok) out.set(p.name, r.value)
    else {
      out.set(p.name, undefined)
      firstError ??= r.error.message
    }
  }
  // Unresolved arguments fall back to the callee's input defaults; without one they are an error.
  const resolved = inlineOf(call) ?? (call.template === undefined && call.templateRef === undefined ? undefined : op.resolveCall(call))
  const callee = resolved === undefined || isFailure(resolved) ? undefined : resolved
  for (const [name, v] of out) {
    if (v !== undefined) continue
    const input = callee?.inputs?.parameters?.find((ip) => ip.name === name)
    if (input?.default === undefined && input?.value === undefined) return { error: firstError ?? `failed to resolve arguments.parameters.${name}` }
  }
  return out
}

/** Evaluate a `when` against the scope: true, false, or an error message. */
export const shouldExecute = (op: OperationState, when: string | undefined, scope: Scope): boolean | Failure => {
  if (when === undefined || when.trim() === "") return true
  const r = evaluateWhen(when, scope, op.limits.expression)
  if (!r.ok) return { error: r.error.message }
  return r.value
}
