/**
 * The tokenizer of the expr-lang language (github.com/expr-lang/expr), written from its language
 * definition: numbers in every base with `_` separators, three kinds of string literal with Go's
 * escapes, comments, and `not in`-style negated word operators read as one operator.
 * Errors are thrown as {@link EvalError}s carrying the 0-based offset of the offending character.
 */
import { EvalError } from "../errors.js"

export type TokenKind = "ident" | "number" | "string" | "op" | "bracket" | "eof"

export interface Token {
  readonly kind: TokenKind
  readonly value: string
  readonly pos: number // 0-based offset into the expression
}

const isAlphaNumeric = (c: string) => /[\p{L}\p{N}_$]/u.test(c)
const isDigit = (c: string) => c >= "0" && c <= "9"
const isSpace = (c: string) => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v"

const WORD_OPERATORS = new Set(["in", "or", "and", "matches", "contains", "startsWith", "endsWith", "let", "if", "else"])
/** Word operators that `not` may negate (`not in`, `not matches`, ...). */
export const NEGATABLE = new Set(["contains", "matches", "startsWith", "endsWith", "in"])

const unescape = (raw: string, quote: string, pos: number): string => {
  let out = ""
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]
    if (c !== "\\") {
      out += c
      continue
    }
    const n = raw[++i]
    switch (n) {
      case "a":
        out += "\x07"
        break
      case "b":
        out += "\b"
        break
      case "f":
        out += "\f"
        break
      case "n":
        out += "\n"
        break
      case "r":
        out += "\r"
        break
      case "t":
        out += "\t"
        break
      case "v":
        out += "\v"
        break
      case "\\":
        out += "\\"
        break
      case "x": {
        const h = raw.slice(i + 1, i + 3)
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new EvalError("invalid char escape", pos)
        out += String.fromCharCode(parseInt(h, 16))
        i += 2
        break
      }
      case "u":
      case "U": {
        const len = n === "u" ? 4 : 8
        const h = raw.slice(i + 1, i + 1 + len)
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(h)) throw new EvalError("invalid char escape", pos)
        out += String.fromCodePoint(parseInt(h, 16))
        i += len
        break
      }
      default:
        if (n === quote) out += n
        else if (n !== undefined && n >= "0" && n <= "7") {
          const o = raw.slice(i, i + 3)
          if (!/^[0-7]{3}$/.test(o)) throw new EvalError("invalid char escape", pos)
          out += String.fromCharCode(parseInt(o, 8))
          i += 2
        } else throw new EvalError("invalid char escape", pos)
    }
  }
  return out
}

/** Splits an expression into tokens, ending with an `eof` token; throws EvalError on a malformed literal or an unknown character. */
export const tokenize = (src: string): Token[] => {
  const tokens: Token[] = []
  let i = 0
  const push = (kind: TokenKind, value: string, pos: number) => tokens.push({ kind, value, pos })
  while (i < src.length) {
    const c = src[i]
    const start = i
    if (isSpace(c)) {
      i++
      continue
    }
    if (c === "'" || c === '"') {
      let j = i + 1
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\\") j++
        if (src[j] === "\n") throw new EvalError("literal not terminated", start)
        j++
      }
      if (j >= src.length) throw new EvalError("literal not terminated", start)
      push("string", unescape(src.slice(i + 1, j), c, start), start)
      i = j + 1
      continue
    }
    if (c === "`") {
      const j = src.indexOf("`", i + 1)
      if (j < 0) throw new EvalError("literal not terminated", start)
      push("string", src.slice(i + 1, j), start)
      i = j + 1
      continue
    }
    if (isDigit(c) || (c === "." && isDigit(src[i + 1] ?? ""))) {
      let j = i
      let digits = /[0-9_]/
      if (src[j] === "0" && /[xXoObB]/.test(src[j + 1] ?? "")) {
        const k = src[j + 1].toLowerCase()
        digits = k === "x" ? /[0-9a-fA-F_]/ : k === "o" ? /[0-7_]/ : /[01_]/
        j += 2
      }
      while (j < src.length && digits.test(src[j])) j++
      if (src[j] === "." && src[j + 1] !== ".") {
        j++
        while (j < src.length && digits.test(src[j])) j++
      }
      if (src[j] === "e" || src[j] === "E") {
        j++
        if (src[j] === "+" || src[j] === "-") j++
        while (j < src.length && digits.test(src[j])) j++
      }
      if (j < src.length && isAlphaNumeric(src[j])) throw new EvalError(`bad number syntax: "${src.slice(i, j + 1)}"`, start)
      push("number", src.slice(i, j), start)
      i = j
      continue
    }
    if (c === "/" && src[i + 1] === "/") {
      while (i < src.length && src[i] !== "\n") i++
      continue
    }
    if (c === "/" && src[i + 1] === "*") {
      const j = src.indexOf("*/", i + 2)
      if (j < 0) throw new EvalError("unclosed comment", start)
      i = j + 2
      continue
    }
    if (c === "/") {
      push("op", "/", start)
      i++
      continue
    }
    if (c === "?") {
      const n = src[i + 1]
      if (n === "." || n === "?") {
        push("op", c + n, start)
        i += 2
      } else {
        push("op", "?", start)
        i++
      }
      continue
    }
    if (c === "#") {
      push("op", "#", start)
      i++
      let j = i
      while (j < src.length && isAlphaNumeric(src[j])) j++
      if (j > i) push("ident", src.slice(i, j), i)
      i = j
      continue
    }
    if (c === "|" || c === ":" || c === "." || c === "&") {
      if (src[i + 1] === c) {
        push("op", c + c, start)
        i += 2
      } else {
        push("op", c, start)
        i++
      }
      continue
    }
    if ("([{".includes(c) || ")]}".includes(c)) {
      push("bracket", c, start)
      i++
      continue
    }
    if (",;%+-^".includes(c)) {
      push("op", c, start)
      i++
      continue
    }
    if ("!=*<>".includes(c)) {
      const n = src[i + 1]
      if (n === "=" || (c === "*" && n === "*")) {
        push("op", c + n, start)
        i += 2
      } else {
        push("op", c, start)
        i++
      }
      continue
    }
    if (isAlphaNumeric(c)) {
      let j = i
      while (j < src.length && isAlphaNumeric(src[j])) j++
      const word = src.slice(i, j)
      if (word === "not") {
        // `not in`, `not matches`, ... are single operators
        let k = j
        while (k < src.length && isSpace(src[k])) k++
        let m = k
        while (m < src.length && isAlphaNumeric(src[m])) m++
        push("op", "not", start)
        if (NEGATABLE.has(src.slice(k, m))) {
          push("op", src.slice(k, m), k)
          i = m
        } else i = j
        continue
      }
      push(WORD_OPERATORS.has(word) ? "op" : "ident", word, start)
      i = j
      continue
    }
    throw new EvalError(`unrecognized character: ${JSON.stringify(c)}`, start)
  }
  tokens.push({ kind: "eof", value: "", pos: src.length })
  return tokens
}
