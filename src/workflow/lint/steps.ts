/**
 * Steps templates: step names unique across the template, and each step's
 * scope: `steps.<name>` may only name a step of an earlier group.
 */
import { isRecord } from "../../util/records.js"
import { type CallInfo, type LintContext, list, type Obj, type RefCtx, str } from "./context.js"
import { checkCall } from "./calls.js"

export const lintSteps = (cx: LintContext, t: Obj, path: string, base: RefCtx, all: ReadonlyMap<string, CallInfo>): void => {
  const groups = list(t.steps)
  const names = new Map<string, string>()
  const earlier = new Set<string>()
  groups.forEach((g, i) => {
    const gp = `${path}.steps[${i}]`
    const steps = isRecord(g) && Array.isArray(g.steps) ? g.steps : Array.isArray(g) ? g : undefined
    if (steps === undefined) return
    const groupNames: Array<string> = []
    steps.forEach((s, j) => {
      const sp = `${gp}[${j}]`
      if (!isRecord(s)) return
      const n = str(s.name)
      if (n !== undefined) {
        const prev = names.get(n)
        if (prev !== undefined) cx.add(`${sp}.name`, `duplicate step name "${n}" (also ${prev})`)
        else names.set(n, sp)
        groupNames.push(n)
      }
      const ctx: RefCtx = { ...base, steps: { all, visible: new Set(earlier), where: n } }
      checkCall(cx, s, sp, ctx, { kind: "steps", name: n ?? "" })
    })
    for (const n of groupNames) earlier.add(n)
  })
}

