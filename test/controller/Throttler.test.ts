import { assert, describe, it } from "vitest"
import * as Throttler from "../../src/controller/Throttler.js"

const c = (key: string, extra: Partial<Throttler.Candidate> = {}): Throttler.Candidate => ({
  key,
  namespace: key.split("/")[0]!,
  priority: 0,
  created: 0,
  started: false,
  ...extra
})

describe("Throttler", () => {
  it("no limits: everything runs", () => {
    const t = Throttler.make({ parallelism: 0, namespaceParallelism: 0 })
    for (let i = 0; i < 10; i++) assert.isTrue(t.admit(c(`ns/w${i}`)).admitted)
  })

  it("parallelism 2: the third waits; a release names the waiting in priority, then age, order", () => {
    const t = Throttler.make({ parallelism: 2, namespaceParallelism: 0 })
    assert.isTrue(t.admit(c("a/1", { created: 1 })).admitted)
    assert.isTrue(t.admit(c("a/2", { created: 2 })).admitted)
    assert.isFalse(t.admit(c("a/3", { created: 3 })).admitted)
    assert.isFalse(t.admit(c("b/4", { created: 4, priority: 9 })).admitted)
    assert.isFalse(t.admit(c("a/5", { created: 0 })).admitted)
    assert.deepStrictEqual(t.release("a/1"), ["b/4", "a/5", "a/3"])
    // only the first in line gets the place
    assert.isFalse(t.admit(c("a/3", { created: 3 })).admitted)
    assert.isTrue(t.admit(c("b/4", { created: 4, priority: 9 })).admitted)
    assert.strictEqual(t.running(), 2)
    // admitted once, admitted again
    assert.isTrue(t.admit(c("b/4", { created: 4, priority: 9 })).admitted)
  })

  it("a started workflow always counts and runs, even over the limit", () => {
    const t = Throttler.make({ parallelism: 1, namespaceParallelism: 0 })
    assert.isTrue(t.admit(c("a/1", { started: true })).admitted)
    assert.isTrue(t.admit(c("a/2", { started: true })).admitted)
    assert.strictEqual(t.running(), 2)
    assert.isFalse(t.admit(c("a/3")).admitted)
    assert.deepStrictEqual(t.release("a/1"), [])
    assert.deepStrictEqual(t.release("a/2"), ["a/3"])
  })

  it("namespaceParallelism: a full namespace does not hold another back", () => {
    const t = Throttler.make({ parallelism: 0, namespaceParallelism: 1 })
    assert.isTrue(t.admit(c("a/1")).admitted)
    assert.isFalse(t.admit(c("a/2", { created: -5 })).admitted)
    assert.isTrue(t.admit(c("b/1", { created: 10 })).admitted)
    assert.deepStrictEqual(t.release("a/1"), ["a/2"])
  })

  it("a waiting workflow that is deleted leaves the line", () => {
    const t = Throttler.make({ parallelism: 1, namespaceParallelism: 0 })
    assert.isTrue(t.admit(c("a/1")).admitted)
    assert.isFalse(t.admit(c("a/2", { created: 1 })).admitted)
    assert.isFalse(t.admit(c("a/3", { created: 2 })).admitted)
    assert.deepStrictEqual(t.release("a/2"), [])
    assert.deepStrictEqual(t.release("a/1"), ["a/3"])
    assert.isTrue(t.admit(c("a/3", { created: 2 })).admitted)
  })

  it("a start wakes the waiting that may still find room: two woken by one release race, the one behind is not forgotten", () => {
    const t = Throttler.make({ parallelism: 3, namespaceParallelism: 0 })
    for (const k of ["a/r1", "a/r2", "a/r3"]) assert.isTrue(t.admit(c(k)).admitted)
    assert.isFalse(t.admit(c("a/A", { created: 1 })).admitted)
    assert.isFalse(t.admit(c("a/B", { created: 2 })).admitted)
    assert.deepStrictEqual(t.release("a/r1"), ["a/A", "a/B"])
    assert.deepStrictEqual(t.release("a/r2"), ["a/A", "a/B"])
    // B first: refused, A is ahead
    assert.isFalse(t.admit(c("a/B", { created: 2 })).admitted)
    const a = t.admit(c("a/A", { created: 1 }))
    assert.isTrue(a.admitted)
    assert.deepStrictEqual(a.wake, ["a/B"])
    assert.isTrue(t.admit(c("a/B", { created: 2 })).admitted)
    assert.strictEqual(t.running(), 3)
  })
})
