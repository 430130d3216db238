/**
 * The engine's modules stay pure and readable: none imports Effect or a Node
 * module, reads the clock or randomness, or starts a timer (the time is
 * `EngineInput.now`), each opens with a header comment saying what it is for,
 * and none grows past 500 lines.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const engineRoot = path.resolve(import.meta.dirname, "../../../src/workflow/engine")
const modules = fs.readdirSync(engineRoot)
  .filter((f) => f.endsWith(".ts"))
  .map((f) => ({ name: f, text: fs.readFileSync(path.join(engineRoot, f), "utf8") }))

const impure: ReadonlyArray<readonly [string, RegExp]> = [
  ["imports effect", /from "effect(\/[^"]*)?"/],
  ["imports a Node module", /from "node:[^"]*"/],
  ["reads the clock", /\bDate\.now\(|new Date\(\)/],
  ["uses randomness", /\bMath\.random\(/],
  ["starts a timer", /\bset(Timeout|Interval|Immediate)\(/]
]

describe("src/workflow/engine modules", () => {
  it("are pure", () => {
    const findings = modules.flatMap(({ name, text }) => impure.filter(([, re]) => re.test(text)).map(([what]) => `${name} ${what}`))
    assert.deepStrictEqual(findings, [])
  })

  it("open with a header comment", () => {
    assert.deepStrictEqual(modules.filter(({ text }) => !text.startsWith("/**")).map(({ name }) => name), [])
  })

  it("have at most 500 lines each", () => {
    const long = modules.map(({ name, text }) => ({ name, lines: text.split("\n").length })).filter(({ lines }) => lines > 500)
    assert.deepStrictEqual(long, [])
  })
})
