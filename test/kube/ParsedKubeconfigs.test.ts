/**
 * The bounds of the parsed kubeconfigs `UserClients` keeps (`ParsedKubeconfigs`, default limits):
 * 1,024 secrets, 16 MiB of text in total, no text over 64 KiB, and a kept parse served only for
 * the very text it came from. "Parsed" is counted by the parse function the cache is given.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ParsedKubeconfigs from "../../src/kube/ParsedKubeconfigs.js"

const { maxEntries, maxEntryBytes, maxTotalBytes } = ParsedKubeconfigs.defaultLimits

/** A cache with the default limits and a parse that counts its calls and fails on "broken". */
const counting = () => {
  const cache = ParsedKubeconfigs.make<{ readonly text: string }>()
  const parsed: Array<string> = []
  const parse = (key: string, text: string) =>
    cache.parse(key, text, (text) =>
      Effect.suspend(() => {
        parsed.push(key)
        return text === "broken" ? Effect.fail("does not parse" as const) : Effect.succeed({ text })
      }))
  return { cache, parsed, parse }
}

/** A text of `length` characters, told apart by `tag`. */
const textOf = (tag: string, length: number) => tag + "x".repeat(length - tag.length)

describe("ParsedKubeconfigs", () => {
  it("the default limits are those issue 14 set: 1,024 secrets, 16 MiB in total, 64 KiB a text", () => {
    assert.deepStrictEqual(ParsedKubeconfigs.defaultLimits, { maxEntries: 1024, maxTotalBytes: 16 * 2 ** 20, maxEntryBytes: 64 * 2 ** 10 })
  })

  it.effect("the same text is parsed once; a changed text is parsed again and served, never the old parse", () =>
    Effect.gen(function*() {
      const { parse, parsed } = counting()
      assert.strictEqual((yield* parse("ns/s", "first")).text, "first")
      assert.strictEqual((yield* parse("ns/s", "first")).text, "first")
      assert.deepStrictEqual(parsed, ["ns/s"])
      assert.strictEqual((yield* parse("ns/s", "second")).text, "second")
      assert.strictEqual((yield* parse("ns/s", "second")).text, "second")
      assert.deepStrictEqual(parsed, ["ns/s", "ns/s"])
      // only the last text is kept: going back is a change too
      assert.strictEqual((yield* parse("ns/s", "first")).text, "first")
      assert.lengthOf(parsed, 3)
    }))

  it.effect(`at most ${maxEntries} secrets are kept: the least recently used goes first`, () =>
    Effect.gen(function*() {
      const { cache, parse, parsed } = counting()
      for (let i = 0; i < maxEntries; i++) yield* parse(`ns/s${i}`, `text ${i}`)
      assert.lengthOf(cache.keys(), maxEntries)
      // s0 used again: s1 is now the least recently used
      yield* parse("ns/s0", "text 0")
      assert.lengthOf(parsed, maxEntries)

      yield* parse(`ns/s${maxEntries}`, `text ${maxEntries}`)
      assert.lengthOf(cache.keys(), maxEntries)
      assert.notInclude(cache.keys(), "ns/s1")
      assert.include(cache.keys(), "ns/s0")
      parsed.length = 0
      yield* parse("ns/s0", "text 0")
      assert.deepStrictEqual(parsed, [], "s0 was kept")
      yield* parse("ns/s1", "text 1")
      assert.deepStrictEqual(parsed, ["ns/s1"], "s1 was dropped: parsed again")
      assert.lengthOf(cache.keys(), maxEntries)
    }))

  it.effect("at most 16 MiB of text is kept in total: the least recently used goes first", () =>
    Effect.gen(function*() {
      const { cache, parse, parsed } = counting()
      // texts of the largest size kept: exactly as many as fill the total
      const fit = maxTotalBytes / maxEntryBytes
      for (let i = 0; i < fit; i++) yield* parse(`ns/s${i}`, textOf(`${i}:`, maxEntryBytes))
      assert.lengthOf(cache.keys(), fit)
      assert.strictEqual(cache.totalBytes(), maxTotalBytes)

      yield* parse(`ns/s${fit}`, textOf(`${fit}:`, maxEntryBytes))
      assert.lengthOf(cache.keys(), fit, "one went to make room")
      assert.notInclude(cache.keys(), "ns/s0")
      assert.strictEqual(cache.totalBytes(), maxTotalBytes)
      parsed.length = 0
      yield* parse("ns/s0", textOf("0:", maxEntryBytes))
      assert.deepStrictEqual(parsed, ["ns/s0"], "the first was dropped: parsed again")

      // a small text makes room for itself alone: one large one goes
      yield* parse("ns/small", "small")
      assert.lengthOf(cache.keys(), fit)
      assert.isAtMost(cache.totalBytes(), maxTotalBytes)
      assert.strictEqual(cache.totalBytes(), (fit - 1) * maxEntryBytes + "small".length)
    }))

  it.effect("a text over 64 KiB is never kept: parsed on every use, and what the secret had before is dropped", () =>
    Effect.gen(function*() {
      const { cache, parse, parsed } = counting()
      yield* parse("ns/s", "small")
      assert.deepStrictEqual(cache.keys(), ["ns/s"])
      const large = textOf("large:", maxEntryBytes + 1)
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* parse("ns/s", large)).text, large)
      assert.lengthOf(parsed, 4, "parsed every time")
      assert.deepStrictEqual(cache.keys(), [])
      assert.strictEqual(cache.totalBytes(), 0)
      // a text of exactly 64 KiB is kept
      yield* parse("ns/s", textOf("limit:", maxEntryBytes))
      yield* parse("ns/s", textOf("limit:", maxEntryBytes))
      assert.lengthOf(parsed, 5)
      assert.strictEqual(cache.totalBytes(), maxEntryBytes)
    }))

  it.effect("a text that fails to parse and a forgotten key keep nothing", () =>
    Effect.gen(function*() {
      const { cache, parse, parsed } = counting()
      yield* parse("ns/s", "good")
      assert.strictEqual(yield* Effect.flip(parse("ns/s", "broken")), "does not parse")
      assert.deepStrictEqual(cache.keys(), [])
      assert.strictEqual(cache.totalBytes(), 0)
      yield* parse("ns/s", "good")
      assert.lengthOf(parsed, 3, "the former text is parsed again")

      yield* parse("ns/other", "other")
      cache.forget("ns/s")
      cache.forget("ns/unknown")
      assert.deepStrictEqual(cache.keys(), ["ns/other"])
      assert.strictEqual(cache.totalBytes(), "other".length)
      yield* parse("ns/s", "good")
      assert.lengthOf(parsed, 5)
    }))
})
