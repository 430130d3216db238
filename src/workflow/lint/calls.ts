/**
 * Steps and tasks as calls: the template each names (and its required
 * inputs), the call's name, its loop (one of withItems, withParam,
 * withSequence), its exit handler and lifecycle hooks, and the variables its
 * fields may use: its scope, plus `item` in a loop; its hooks also see the
 * call itself. An inline template is linted through `LintContext.lintTemplate`.
 */
import { checkArgumentArtifacts } from "./artifacts.js"
import { isRecord } from "../../util/records.js"
import {
  type CallInfo,
  callsOf,
  field,
  fieldNamePattern,
  itemScope,
  type LintContext,
  list,
  type Obj,
  present,
  type RefCtx,
  str,
  withVisible
} from "./context.js"
import { checkParameter, checkRequiredInputs } from "./parameters.js"
import { checkExpressionField, checkWhen, scan } from "./references.js"

export const callInfo = (cx: LintContext, call: Obj, name: string): CallInfo => {
  const t = str(call.template)
  const callee = isRecord(call.inline) ? call.inline : t === undefined ? undefined : cx.templates.get(t)
  return { name, callee, loop: present(call.withItems) || present(call.withParam) || present(call.withSequence) }
}

export const stepsScope = (cx: LintContext, t: Obj): Map<string, CallInfo> => {
  const m = new Map<string, CallInfo>()
  for (const { call } of callsOf(t, "steps")) {
    const n = str(call.name)
    if (n !== undefined && !m.has(n)) m.set(n, callInfo(cx, call, n))
  }
  return m
}

export const dagScope = (cx: LintContext, t: Obj): Map<string, CallInfo> => {
  const m = new Map<string, CallInfo>()
  for (const { call } of callsOf(t, "dag")) {
    const n = str(call.name)
    if (n !== undefined && !m.has(n)) m.set(n, callInfo(cx, call, n))
  }
  return m
}

/** Checks common to steps and tasks: the template called, its arguments, loops, hooks. */
export const checkCall = (cx: LintContext, call: Obj, path: string, ctx: RefCtx, self: { kind: "steps" | "tasks"; name: string }): void => {
  const name = str(call.name)
  if (name === "") cx.add(`${path}.name`, "a name is required")
  else if (name !== undefined && (!fieldNamePattern.test(name) || name.length > 128)) {
    cx.add(`${path}.name`, `name "${name}" is invalid: it must consist of alpha-numeric characters or '-', and start with an alpha-numeric character`)
  }
  const tmpl = str(call.template)
  if (tmpl !== undefined && !cx.templates.has(tmpl)) cx.add(`${path}.template`, `unknown template "${tmpl}"`)
  const args = isRecord(call.arguments) ? call.arguments : {}
  list(args.parameters).forEach((p, i) => checkParameter(cx, p, `${path}.arguments.parameters[${i}]`, "argument", false))
  checkArgumentArtifacts(cx, args, `${path}.arguments`)
  if (tmpl !== undefined && cx.templates.has(tmpl)) {
    checkRequiredInputs(cx, tmpl, args, `${path}.arguments.parameters`, `template "${tmpl}"`)
  }
  if (isRecord(call.inline)) {
    checkRequiredInputs(cx, call.inline, args, `${path}.arguments.parameters`, "the inline template")
    cx.lintTemplate(call.inline, `${path}.inline`)
  }
  const loops = ["withItems", "withParam", "withSequence"].filter((k) => present(call[k]))
  if (loops.length > 1) cx.add(path, `only one of withItems, withParam, withSequence can be specified (got ${loops.join(", ")})`)
  if (present(call.withParam) && str(call.withParam) !== undefined && !String(call.withParam).includes("{{")) {
    try {
      if (!Array.isArray(JSON.parse(String(call.withParam)))) throw new Error()
    } catch {
      cx.add(`${path}.withParam`, `withParam "${String(call.withParam)}" is neither a JSON list nor a {{...}} reference`)
    }
  }
  const onExit = str(call.onExit)
  if (onExit !== undefined && !cx.templates.has(onExit)) cx.add(`${path}.onExit`, `unknown template "${onExit}"`)
  if (onExit !== undefined && cx.templates.has(onExit)) {
    checkRequiredInputs(cx, onExit, {}, `${path}.onExit`, `exit handler template "${onExit}"`)
  }

  // Variables: the call sees its scope (plus `item` in a loop); its hooks also see itself.
  const item = itemScope(call)
  const local: RefCtx = { ...ctx, ...(item !== undefined ? { item } : {}) }
  for (const [k, v] of Object.entries(call)) {
    if (k === "name" || k === "inline" || k === "hooks" || k === "depends" || k === "dependencies" || k === "template" || k === "onExit") continue
    if (k === "when" && typeof v === "string") {
      checkWhen(cx, v, `${path}.when`, local)
      continue
    }
    scan(cx, v, field(path, k), local)
  }
  if (isRecord(call.hooks)) {
    const withSelf = withVisible(ctx, self.kind, name)
    checkHooks(cx, call.hooks, `${path}.hooks`, withSelf)
  }
}

export const checkHooks = (cx: LintContext, hooks: Obj, path: string, ctx: RefCtx | undefined): void => {
  for (const [k, h] of Object.entries(hooks)) {
    const hp = field(path, k)
    if (!isRecord(h)) continue
    const t = str(h.template)
    if (t === undefined) {
      if (!isRecord(h.templateRef)) cx.add(`${hp}.template`, "a template name is required")
    } else if (!cx.templates.has(t)) cx.add(`${hp}.template`, `unknown template "${t}"`)
    else checkRequiredInputs(cx, t, isRecord(h.arguments) ? h.arguments : {}, `${hp}.arguments.parameters`, `template "${t}"`)
    const e = str(h.expression)
    if (k !== "exit" && (e === undefined || e === "")) cx.add(`${hp}.expression`, `hook "${k}" needs an expression (only the "exit" hook may omit it)`)
    if (e !== undefined && e !== "") checkExpressionField(cx, e, `${hp}.expression`, ctx)
    const args = isRecord(h.arguments) ? h.arguments : {}
    list(args.parameters).forEach((p, i) => checkParameter(cx, p, `${hp}.arguments.parameters[${i}]`, "argument", false))
    if (ctx !== undefined) scan(cx, h.arguments, `${hp}.arguments`, ctx)
  }
}

