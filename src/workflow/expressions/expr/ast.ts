/**
 * The abstract syntax tree of an expr-lang expression, as the parser (parser.ts) builds it and the
 * evaluator (evaluator.ts) walks it, and the one analysis done on it without evaluating:
 * which variables an expression references (Argo's `missingVarsInEnv`, used by `{{=...}}`
 * substitution to tell an expression waiting for a later variable from a broken one, and by lint).
 * Every node carries the 0-based offset it was parsed at.
 */

export type Node =
  | { readonly type: "nil"; readonly pos: number }
  | { readonly type: "bool"; readonly value: boolean; readonly pos: number }
  | { readonly type: "int"; readonly value: bigint; readonly pos: number }
  | { readonly type: "float"; readonly value: number; readonly pos: number }
  | { readonly type: "string"; readonly value: string; readonly pos: number }
  | { readonly type: "ident"; readonly name: string; readonly pos: number }
  | { readonly type: "pointer"; readonly name: string; readonly pos: number }
  | { readonly type: "array"; readonly items: ReadonlyArray<Node>; readonly pos: number }
  | { readonly type: "map"; readonly pairs: ReadonlyArray<readonly [Node, Node]>; readonly pos: number }
  | { readonly type: "unary"; readonly op: string; readonly node: Node; readonly pos: number }
  | { readonly type: "binary"; readonly op: string; readonly left: Node; readonly right: Node; readonly pos: number }
  | { readonly type: "member"; readonly node: Node; readonly property: Node; readonly optional: boolean; readonly pos: number }
  | { readonly type: "chain"; readonly node: Node; readonly pos: number }
  | { readonly type: "slice"; readonly node: Node; readonly from?: Node; readonly to?: Node; readonly pos: number }
  | { readonly type: "call"; readonly callee: Node; readonly args: ReadonlyArray<Node>; readonly pos: number }
  | { readonly type: "builtin"; readonly name: string; readonly args: ReadonlyArray<Node>; readonly pos: number }
  | { readonly type: "predicate"; readonly node: Node; readonly pos: number }
  | { readonly type: "conditional"; readonly cond: Node; readonly then: Node; readonly else: Node; readonly pos: number }
  | { readonly type: "let"; readonly name: string; readonly value: Node; readonly body: Node; readonly pos: number }
  | { readonly type: "sequence"; readonly nodes: ReadonlyArray<Node>; readonly pos: number }

const memberPath = (node: Node): string | undefined => {
  const parts: string[] = []
  let cur: Node = node
  for (;;) {
    if (cur.type !== "member" || cur.optional || cur.property.type !== "string") return undefined
    parts.unshift(cur.property.value)
    if (cur.node.type === "ident") return [cur.node.name, ...parts].join(".")
    if (cur.node.type !== "member") return undefined
    cur = cur.node
  }
}

const children = (n: Node): Node[] => {
  switch (n.type) {
    case "array":
      return [...n.items]
    case "map":
      return n.pairs.flatMap(([k, v]) => [k, v])
    case "unary":
    case "chain":
    case "predicate":
      return [n.node]
    case "binary":
      return [n.left, n.right]
    case "member":
      return [n.node, n.property]
    case "slice":
      return [n.node, ...(n.from ? [n.from] : []), ...(n.to ? [n.to] : [])]
    case "call":
      return [n.callee, ...n.args]
    case "builtin":
      return [...n.args]
    case "conditional":
      return [n.cond, n.then, n.else]
    case "let":
      return [n.value, n.body]
    case "sequence":
      return [...n.nodes]
    default:
      return []
  }
}

const walk = (n: Node, f: (n: Node) => void): void => {
  f(n)
  for (const c of children(n)) walk(c, f)
}

/** The variable paths (`inputs.parameters.x`, `steps`, ...) an expression references, excluding member accesses guarded by `??` or `?.`. */
export const referencedVariables = (node: Node): string[] => {
  const guarded = new Set<Node>()
  walk(node, (n) => {
    if (n.type === "binary" && n.op === "??") walk(n.left, (m) => m.type === "member" && guarded.add(m))
    if (n.type === "member" && n.optional && n.node.type === "member") guarded.add(n.node)
  })
  const seen = new Set<string>()
  walk(node, (n) => {
    if (guarded.has(n)) return
    if (n.type === "ident") seen.add(n.name)
    if (n.type === "member") {
      const p = memberPath(n)
      if (p !== undefined) seen.add(p)
    }
  })
  return [...seen]
}
