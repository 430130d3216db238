/**
 * Parameters: values a call must pass (inputs of the callee with neither value
 * nor default), values each argument or workflow parameter must have
 * (flotilla has no submit-time parameters), and enums (non-empty; a literal
 * value must be one of them).
 */
import { isRecord } from "../../util/records.js"
import { type LintContext, list, type Obj, present, str } from "./context.js"

/** Every input parameter of the callee without value or default must be passed. */
export const checkRequiredInputs = (cx: LintContext, callee: string | Obj, args: Obj, path: string, what: string): void => {
  const t = typeof callee === "string" ? cx.templates.get(callee) : callee
  if (t === undefined) return
  const passed = new Set<string>()
  for (const p of list(args.parameters)) if (isRecord(p) && typeof p.name === "string") passed.add(p.name)
  const inputs = isRecord(t.inputs) ? t.inputs : {}
  for (const p of list(inputs.parameters)) {
    if (!isRecord(p) || typeof p.name !== "string") continue
    if (present(p.value) || present(p.default) || present(p.valueFrom)) continue
    if (!passed.has(p.name)) cx.add(path, `${what} requires input parameter "${p.name}", which is not passed`)
  }
}

export const checkParameter = (cx: LintContext, p: unknown, path: string, what: string, workflow: boolean): void => {
  if (!isRecord(p)) return
  const n = str(p.name)
  if (n === undefined || n === "") return
  if (workflow) {
    // a value from a ConfigMap (valueFrom.configMapKeyRef) is read when the workflow runs
    if (!present(p.value) && !present(p.default) && !(isRecord(p.valueFrom) && (present(p.valueFrom.default) || present(p.valueFrom.configMapKeyRef)))) {
      cx.add(`${path}.value`, `${what} "${n}" has no value`)
    }
  } else if (!present(p.value) && !present(p.valueFrom)) {
    cx.add(`${path}.value`, `${what} "${n}" has no value`)
  }
  checkEnum(cx, p, path, p.value ?? p.default)
}

export const checkEnum = (cx: LintContext, p: Obj, path: string, value: unknown): void => {
  if (!Array.isArray(p.enum)) return
  if (p.enum.length === 0) return cx.add(`${path}.enum`, "enum should contain at least one value")
  if (present(value) && !String(value).includes("{{") && !p.enum.map(String).includes(String(value))) {
    cx.add(`${path}.value`, `value "${String(value)}" is not in the enum [${p.enum.map(String).join(" ")}]`)
  }
}

