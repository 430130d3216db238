/**
 * The recursive-descent parser of the expr-lang language (github.com/expr-lang/expr), written from
 * its language definition: operator precedences, `not in`-style negated operators, comparison
 * chaining, `??`, ternaries, `if/else`, `let`, pipes, predicates (`{# > 1}`), member access, slices
 * and optional chaining. Builds the AST of ast.ts from the tokens of lexer.ts; evaluates nothing.
 */
import { EvalError } from "../errors.js"
import type { Node } from "./ast.js"
import { NEGATABLE, type Token, type TokenKind, tokenize } from "./lexer.js"

const UNARY: Record<string, number> = { not: 50, "!": 50, "-": 90, "+": 90 }
const BINARY: Record<string, { prec: number; right?: boolean }> = {
  "|": { prec: 0 },
  or: { prec: 10 },
  "||": { prec: 10 },
  and: { prec: 15 },
  "&&": { prec: 15 },
  "==": { prec: 20 },
  "!=": { prec: 20 },
  "<": { prec: 20 },
  ">": { prec: 20 },
  ">=": { prec: 20 },
  "<=": { prec: 20 },
  in: { prec: 20 },
  matches: { prec: 20 },
  contains: { prec: 20 },
  startsWith: { prec: 20 },
  endsWith: { prec: 20 },
  "..": { prec: 25 },
  "+": { prec: 30 },
  "-": { prec: 30 },
  "*": { prec: 60 },
  "/": { prec: 60 },
  "%": { prec: 60 },
  "**": { prec: 100, right: true },
  "^": { prec: 100, right: true },
  "??": { prec: 500 }
}
const COMPARISONS = new Set(["<", ">", "<=", ">="])

/** Builtins taking a predicate (closure) argument, and which of their arguments are predicates. */
const PREDICATES: Record<string, ReadonlyArray<"expr" | "pred" | "expr?" | "pred?">> = {
  all: ["expr", "pred"],
  none: ["expr", "pred"],
  any: ["expr", "pred"],
  one: ["expr", "pred"],
  filter: ["expr", "pred"],
  map: ["expr", "pred"],
  count: ["expr", "pred?"],
  sum: ["expr", "pred?"],
  find: ["expr", "pred"],
  findIndex: ["expr", "pred"],
  findLast: ["expr", "pred"],
  findLastIndex: ["expr", "pred"],
  groupBy: ["expr", "pred"],
  sortBy: ["expr", "pred", "expr?"],
  reduce: ["expr", "pred", "expr?"]
}

/** Names of expr-lang's builtin functions (called without an environment lookup). */
export const BUILTIN_NAMES = new Set([
  ...Object.keys(PREDICATES),
  "len", "type", "abs", "ceil", "floor", "round", "int", "float", "string", "trim", "trimPrefix", "trimSuffix",
  "upper", "lower", "split", "splitAfter", "replace", "repeat", "join", "indexOf", "lastIndexOf", "hasPrefix",
  "hasSuffix", "max", "min", "mean", "median", "toJSON", "fromJSON", "toBase64", "fromBase64", "now", "duration",
  "date", "timezone", "first", "last", "get", "take", "keys", "values", "toPairs", "fromPairs", "reverse", "uniq",
  "concat", "flatten", "sort", "bitnot", "bitand", "bitor", "bitxor", "bitnand", "bitshl", "bitshr", "bitushr"
])

class Parser {
  private i = 0
  private depth = 0 // predicate nesting
  constructor(private readonly tokens: Token[]) {}

  private get cur(): Token {
    return this.tokens[this.i]
  }
  private next(): void {
    if (this.i < this.tokens.length - 1) this.i++
  }
  private is(kind: TokenKind, value?: string): boolean {
    return this.cur.kind === kind && (value === undefined || this.cur.value === value)
  }
  private fail(token: Token = this.cur, message?: string): never {
    throw new EvalError(
      message ?? (token.kind === "eof" ? "unexpected end of expression" : `unexpected token ${describe(token)}`),
      token.pos
    )
  }
  private expect(kind: TokenKind, value?: string): Token {
    const t = this.cur
    if (!this.is(kind, value)) this.fail()
    this.next()
    return t
  }

  parse(): Node {
    const node = this.parseSequence()
    if (!this.is("eof")) this.fail()
    return node
  }

  private parseSequence(): Node {
    const first = this.parseExpression(0)
    const nodes = [first]
    while (this.is("op", ";")) {
      this.next()
      if (this.is("eof")) break
      nodes.push(this.parseExpression(0))
    }
    return nodes.length === 1 ? first : { type: "sequence", nodes, pos: first.pos }
  }

  private parseExpression(precedence: number): Node {
    if (precedence === 0 && this.is("op", "let")) return this.parseLet()
    if (precedence === 0 && this.is("op", "if")) return this.parseIf()
    let left = this.parsePrimary()
    let prevOp = ""
    for (;;) {
      let opToken = this.cur
      if (opToken.kind !== "op") break
      let negate = false
      if (opToken.value === "not") {
        const after = this.tokens[this.i + 1]
        if (!after || after.kind !== "op" || !NEGATABLE.has(after.value)) this.fail(after)
        if (BINARY[after.value].prec < precedence) break
        negate = true
        this.next()
        opToken = this.cur
      }
      const op = BINARY[opToken.value]
      if (!op || op.prec < precedence) break
      this.next()
      if (opToken.value === "|") {
        const ident = this.expect("ident")
        left = this.parseCall(ident, [left])
        prevOp = "|"
        continue
      }
      if (prevOp === "??" && opToken.value !== "??") {
        this.fail(opToken, `Operator (${opToken.value}) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses.`)
      }
      if (COMPARISONS.has(opToken.value)) {
        left = this.parseComparison(left, opToken, op.prec)
        prevOp = opToken.value
        continue
      }
      const right = this.parseExpression(op.right ? op.prec : op.prec + 1)
      left = { type: "binary", op: opToken.value, left, right, pos: opToken.pos }
      if (negate) left = { type: "unary", op: "not", node: left, pos: opToken.pos }
      prevOp = opToken.value
    }
    if (precedence === 0) left = this.parseConditional(left)
    return left
  }

  private parseComparison(left: Node, token: Token, prec: number): Node {
    let root: Node | undefined
    for (;;) {
      const right = this.parseExpression(prec + 1)
      const cmp: Node = { type: "binary", op: token.value, left, right, pos: token.pos }
      root = root === undefined ? cmp : { type: "binary", op: "&&", left: root, right: cmp, pos: token.pos }
      left = right
      token = this.cur
      if (!(token.kind === "op" && COMPARISONS.has(token.value))) break
      this.next()
    }
    return root
  }

  private parseLet(): Node {
    const letToken = this.expect("op", "let")
    const name = this.expect("ident").value
    this.expect("op", "=")
    const value = this.parseExpression(0)
    this.expect("op", ";")
    const body = this.parseSequence()
    return { type: "let", name, value, body, pos: letToken.pos }
  }

  private parseIf(): Node {
    const ifToken = this.expect("op", "if")
    const cond = this.parseExpression(0)
    this.expect("bracket", "{")
    const then = this.parseSequence()
    this.expect("bracket", "}")
    this.expect("op", "else")
    let otherwise: Node
    if (this.is("op", "if")) otherwise = this.parseIf()
    else {
      this.expect("bracket", "{")
      otherwise = this.parseSequence()
      this.expect("bracket", "}")
    }
    return { type: "conditional", cond, then, else: otherwise, pos: ifToken.pos }
  }

  private parseConditional(node: Node): Node {
    while (this.is("op", "?")) {
      const q = this.cur
      this.next()
      let then: Node
      let otherwise: Node
      if (!this.is("op", ":")) {
        then = this.parseExpression(0)
        this.expect("op", ":")
        otherwise = this.parseExpression(0)
      } else {
        this.next()
        then = node
        otherwise = this.parseExpression(0)
      }
      node = { type: "conditional", cond: node, then, else: otherwise, pos: q.pos }
    }
    return node
  }

  private parsePrimary(): Node {
    const t = this.cur
    if (t.kind === "op" && UNARY[t.value] !== undefined) {
      this.next()
      const node = this.parseExpression(UNARY[t.value])
      return this.parsePostfix({ type: "unary", op: t.value, node, pos: t.pos })
    }
    if (this.is("bracket", "(")) {
      this.next()
      const e = this.parseSequence()
      this.expect("bracket", ")")
      return this.parsePostfix(e)
    }
    if (this.depth > 0 && (this.is("op", "#") || this.is("op", "."))) {
      let name = ""
      if (this.is("op", "#")) {
        this.next()
        if (this.is("ident")) {
          name = this.cur.value
          this.next()
        }
      }
      return this.parsePostfix({ type: "pointer", name, pos: t.pos })
    }
    return this.parseSecondary()
  }

  private parseSecondary(): Node {
    const t = this.cur
    let node: Node
    switch (t.kind) {
      case "ident":
        this.next()
        if (t.value === "true" || t.value === "false") return { type: "bool", value: t.value === "true", pos: t.pos }
        if (t.value === "nil") return { type: "nil", pos: t.pos }
        node = this.is("bracket", "(") ? this.parseCall(t, []) : { type: "ident", name: t.value, pos: t.pos }
        break
      case "number":
        this.next()
        return parseNumber(t)
      case "string":
        this.next()
        node = { type: "string", value: t.value, pos: t.pos }
        break
      default:
        if (this.is("bracket", "[")) node = this.parseArray()
        else if (this.is("bracket", "{")) node = this.parseMap()
        else this.fail()
    }
    return this.parsePostfix(node)
  }

  private parseCall(token: Token, args: Node[]): Node {
    const predicate = PREDICATES[token.value]
    if (predicate) {
      this.expect("bracket", "(")
      const spec = predicate.slice(args.length)
      for (let k = 0; k < spec.length; k++) {
        const kind = spec[k]
        if (kind.endsWith("?")) {
          if (this.is("bracket", ")")) break
        } else if (this.is("bracket", ")")) this.fail(this.cur, `expected at least ${spec.length} arguments`)
        if (k > 0) this.expect("op", ",")
        args.push(kind.startsWith("pred") ? this.parsePredicate() : this.parseExpression(0))
      }
      if (this.is("op", ",")) this.next()
      this.expect("bracket", ")")
      return { type: "builtin", name: token.value, args, pos: token.pos }
    }
    if (BUILTIN_NAMES.has(token.value)) {
      return { type: "builtin", name: token.value, args: this.parseArguments(args), pos: token.pos }
    }
    return {
      type: "call",
      callee: { type: "ident", name: token.value, pos: token.pos },
      args: this.parseArguments(args),
      pos: token.pos
    }
  }

  private parseArguments(args: Node[]): Node[] {
    const offset = args.length
    this.expect("bracket", "(")
    while (!this.is("bracket", ")")) {
      if (args.length > offset) this.expect("op", ",")
      if (this.is("bracket", ")")) break
      args.push(this.parseExpression(0))
    }
    this.expect("bracket", ")")
    return args
  }

  private parsePredicate(): Node {
    const start = this.cur
    const braces = this.is("bracket", "{")
    if (braces) this.next()
    this.depth++
    const node = braces ? this.parseSequence() : this.parseExpression(0)
    this.depth--
    if (braces) this.expect("bracket", "}")
    return { type: "predicate", node, pos: start.pos }
  }

  private parseArray(): Node {
    const start = this.expect("bracket", "[")
    const items: Node[] = []
    while (!this.is("bracket", "]")) {
      if (items.length > 0) {
        this.expect("op", ",")
        if (this.is("bracket", "]")) break
      }
      items.push(this.parseExpression(0))
    }
    this.expect("bracket", "]")
    return { type: "array", items, pos: start.pos }
  }

  private parseMap(): Node {
    const start = this.expect("bracket", "{")
    const pairs: Array<readonly [Node, Node]> = []
    while (!this.is("bracket", "}")) {
      if (pairs.length > 0) {
        this.expect("op", ",")
        if (this.is("bracket", "}")) break
      }
      let key: Node
      const t = this.cur
      if (t.kind === "number" || t.kind === "string" || t.kind === "ident") {
        key = { type: "string", value: t.value, pos: t.pos }
        this.next()
      } else if (this.is("bracket", "(")) key = this.parseExpression(0)
      else
        this.fail(
          t,
          `a map key must be a quoted string, a number, a identifier, or an expression enclosed in parentheses (unexpected token ${describe(t)})`
        )
      this.expect("op", ":")
      pairs.push([key, this.parseExpression(0)])
    }
    this.expect("bracket", "}")
    return { type: "map", pairs, pos: start.pos }
  }

  private parsePostfix(node: Node): Node {
    for (;;) {
      const t = this.cur
      if (t.kind === "op" && (t.value === "." || t.value === "?.")) {
        const optional = t.value === "?."
        this.next()
        if (optional && this.is("bracket", "[")) {
          node = this.parseIndex(node, true)
          continue
        }
        const prop = this.cur
        if (prop.kind !== "ident" && !(prop.kind === "op" && /^[A-Za-z_$][\w$]*$/.test(prop.value))) this.fail(prop, "expected name")
        this.next()
        const isChain = node.type === "chain"
        const base = node.type === "chain" ? node.node : node
        let member: Node = { type: "member", node: base, property: { type: "string", value: prop.value, pos: prop.pos }, optional, pos: prop.pos }
        if (this.is("bracket", "(")) member = { type: "call", callee: member, args: this.parseArguments([]), pos: prop.pos }
        node = isChain || optional ? { type: "chain", node: member, pos: prop.pos } : member
        continue
      }
      if (t.kind === "bracket" && t.value === "[") {
        node = this.parseIndex(node, false)
        continue
      }
      return node
    }
  }

  private parseIndex(node: Node, optional: boolean): Node {
    const open = this.expect("bracket", "[")
    if (this.is("op", ":")) {
      this.next()
      const to = this.is("bracket", "]") ? undefined : this.parseExpression(0)
      this.expect("bracket", "]")
      return { type: "slice", node, to, pos: open.pos }
    }
    const from = this.parseExpression(0)
    if (this.is("op", ":")) {
      this.next()
      const to = this.is("bracket", "]") ? undefined : this.parseExpression(0)
      this.expect("bracket", "]")
      return { type: "slice", node, from, to, pos: open.pos }
    }
    this.expect("bracket", "]")
    const isChain = node.type === "chain"
    const base = node.type === "chain" ? node.node : node
    const member: Node = { type: "member", node: base, property: from, optional, pos: open.pos }
    return isChain || optional ? { type: "chain", node: member, pos: open.pos } : member
  }
}

const describe = (t: Token): string =>
  t.kind === "eof" ? "EOF" : `${{ ident: "Identifier", number: "Number", string: "String", op: "Operator", bracket: "Bracket", eof: "EOF" }[t.kind]}(${JSON.stringify(t.value)})`

const parseNumber = (t: Token): Node => {
  const raw = t.value.replace(/_/g, "")
  const lower = raw.toLowerCase()
  if (/^0[xob]/.test(lower)) {
    return { type: "int", value: BigInt(lower), pos: t.pos }
  }
  if (/[.e]/.test(lower)) {
    const f = Number(raw.startsWith(".") ? "0" + raw : raw)
    if (Number.isNaN(f)) throw new EvalError(`invalid float literal: ${raw}`, t.pos)
    return { type: "float", value: f, pos: t.pos }
  }
  const v = BigInt(raw)
  if (v > 9223372036854775807n) throw new EvalError("integer literal is too large", t.pos)
  return { type: "int", value: v, pos: t.pos }
}

/** Parses an expr-lang expression; throws EvalError with a 0-based position on syntax errors. */
export const parseExpr = (src: string): Node => new Parser(tokenize(src)).parse()
