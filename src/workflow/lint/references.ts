/**
 * References and expressions: every `{{...}}` tag in a string, every
 * `{{=...}}` and `expression:` field (parsed with the engine's expr parser)
 * and every `when:` (govaluate, after tags are substituted) must parse, and
 * each variable it names (`inputs.*`, `steps.*`, `tasks.*`, `item`,
 * `workflow.*`, `retries`) must exist where the string sits (its `RefCtx`),
 * as upstream's validator resolves them. Other roots are left alone.
 */
import { isRecord } from "../../util/records.js"
import { parseExpr, parseGovaluate, referencedVariables } from "../expressions/index.js"
import { checkedRoots, field, kindOf, type LintContext, list, noResultKinds, present, type RefCtx } from "./context.js"

/** Walk a value; check every `{{...}}` tag in its strings. */
export const scan = (cx: LintContext, value: unknown, path: string, ctx: RefCtx | undefined): void => {
  if (typeof value === "string") return checkTags(cx, value, path, ctx)
  if (Array.isArray(value)) return value.forEach((v, i) => scan(cx, v, `${path}[${i}]`, ctx))
  if (isRecord(value)) for (const [k, v] of Object.entries(value)) scan(cx, v, field(path, k), ctx)
}

export const checkTags = (cx: LintContext, text: string, path: string, ctx: RefCtx | undefined): void => {
  let i = 0
  for (;;) {
    const start = text.indexOf("{{", i)
    if (start < 0) return
    const end = text.indexOf("}}", start + 2)
    if (end < 0) return cx.add(path, `unterminated tag: cannot find "}}" after ${JSON.stringify(text.slice(start, start + 40))}`)
    const tag = text.slice(start + 2, end)
    if (tag.startsWith("=")) checkExpressionField(cx, tag.slice(1), path, ctx, "{{=...}}")
    else {
      const name = tag.trim()
      if (/^[A-Za-z_][A-Za-z0-9_.\-]*$/.test(name)) checkRef(cx, name, path, ctx)
    }
    i = end + 2
  }
}

export const checkExpressionField = (cx: LintContext, expression: string, path: string, ctx: RefCtx | undefined, what = "expression"): void => {
  let refs: Array<string>
  try {
    refs = referencedVariables(parseExpr(expression))
  } catch (e) {
    cx.add(path, `invalid ${what} ${JSON.stringify(expression)}: ${e instanceof Error ? e.message : String(e)}`)
    return
  }
  // Only the longest reference of a member chain matters (`a.b.c`, not also `a.b` and `a`).
  const longest = refs.filter((r) => !refs.some((o) => o !== r && o.startsWith(r + ".")))
  for (const r of longest) checkRef(cx, r, path, ctx)
}

export const checkWhen = (cx: LintContext, when: string, path: string, ctx: RefCtx): void => {
  checkTags(cx, when, path, ctx)
  // Tags are substituted before govaluate sees the text; a word stands in for each.
  const replaced = when.replace(/\{\{[\s\S]*?\}\}/g, "placeholder")
  if (replaced.includes("{{")) return
  const error = parseGovaluate(replaced.trim())
  if (error !== undefined) cx.add(path, `invalid when expression ${JSON.stringify(when)}: ${error}`)
}

export const checkRef = (cx: LintContext, name: string, path: string, ctx: RefCtx | undefined): void => {
  const seg = name.split(".")
  const root = seg[0]
  if (!checkedRoots.has(root)) return
  switch (root) {
    case "inputs": {
      if (ctx === undefined) return
      if (seg[1] === "parameters" && seg.length >= 3) {
        const p = seg.slice(2).join(".")
        if (!ctx.inputs.has(p)) cx.add(path, `{{inputs.parameters.${p}}}: template "${ctx.templateName}" has no input parameter "${p}"`)
      } else if (seg[1] === "artifacts" && seg.length >= 3) {
        if (!ctx.inputArtifacts.has(seg[2])) cx.add(path, `{{inputs.artifacts.${seg[2]}}}: template "${ctx.templateName}" has no input artifact "${seg[2]}"`)
      }
      return
    }
    case "steps":
    case "tasks": {
      if (seg.length < 2 || seg[1] === "name") return
      const scope = root === "steps" ? ctx?.steps : ctx?.tasks
      const what = root === "steps" ? "step" : "task"
      if (scope === undefined) {
        cx.add(path, `{{${name}}}: "${root}.*" can only be used in a ${root === "steps" ? "steps" : "dag"} template`)
        return
      }
      const target = seg[1]
      const info = scope.all.get(target)
      if (info === undefined) {
        cx.add(path, `{{${name}}}: unknown ${what} "${target}"`)
        return
      }
      if (!scope.visible.has(target)) {
        cx.add(path, root === "steps"
          ? target === scope.where
            ? `{{${name}}}: step "${target}" cannot reference itself`
            : `{{${name}}}: step "${target}" is not in an earlier step group than "${scope.where ?? ""}"`
          : target === scope.where
          ? `{{${name}}}: task "${target}" cannot reference itself`
          : `{{${name}}}: task "${target}" is not a dependency of "${scope.where ?? ""}" (add it to depends/dependencies)`)
        return
      }
      const callee = info.callee
      if (callee === undefined) return
      if (seg[2] === "outputs" && seg[3] === "parameters" && seg.length >= 5) {
        const p = seg.slice(4).join(".")
        const declared = list((isRecord(callee.outputs) ? callee.outputs : {}).parameters).some((o) => isRecord(o) && o.name === p)
        if (!declared) cx.add(path, `{{${name}}}: template "${String(callee.name ?? "(inline)")}" has no output parameter "${p}"`)
      } else if (seg[2] === "outputs" && seg[3] === "result" && seg.length === 4) {
        const k = kindOf(callee)
        if (k !== undefined && noResultKinds.has(k) && !info.loop) {
          cx.add(path, `{{${name}}}: template "${String(callee.name ?? "(inline)")}" is a ${k} template and has no outputs.result`)
        }
      }
      return
    }
    case "item": {
      if (ctx === undefined) return
      if (ctx.item === undefined) {
        cx.add(path, `{{${name}}}: "item" is only defined in a step or task with withItems, withParam or withSequence`)
        return
      }
      if (ctx.item !== "any" && seg.length >= 2 && !ctx.item.has(seg[1])) {
        cx.add(path, `{{${name}}}: no item of withItems has the key "${seg[1]}"`)
      }
      return
    }
    case "workflow": {
      if (seg[1] === "parameters" && seg.length >= 3 && !(seg.length === 3 && seg[2] === "json")) {
        const p = seg.slice(2).join(".")
        if (!cx.workflowParams.has(p)) cx.add(path, `{{${name}}}: "${p}" is not a parameter in spec.arguments.parameters`)
      } else if (seg[1] === "outputs" && seg[2] === "parameters" && seg.length >= 4 && !cx.anyGlobalOutput) {
        const p = seg.slice(3).join(".")
        if (!cx.globalOutputs.has(p)) cx.add(path, `{{${name}}}: no output parameter has globalName "${p}"`)
      }
      return
    }
    case "retries":
    case "lastRetry": {
      if (ctx === undefined) return
      if (!present(ctx.template.retryStrategy)) cx.add(path, `{{${name}}}: "${root}" is only defined in a template with a retryStrategy`)
      return
    }
  }
}

