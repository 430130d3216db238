/**
 * Every `{{...}}`, `{{=...}}`, `when:` and `expression:` in the upstream examples
 * (/work/shared/conformance/argo-examples), with a plausible scope and the value Argo produces.
 */
import { describe, expect, it } from "vitest"
import { evaluate, evaluateWhen, substitute, substituteObject } from "../../../src/workflow/expressions/index.js"

const scope = (entries: Record<string, unknown>) => new Map(Object.entries(entries))
const sub = (text: string, s: Record<string, unknown>) => {
  const r = substitute(text, scope(s))
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}
const when = (text: string, s: Record<string, unknown>) => {
  const r = evaluateWhen(text, scope(s))
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}
const ev = (text: string, s: Record<string, unknown>) => {
  const r = evaluate(text, scope(s))
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

describe("simple tags in the examples", () => {
  it.each([
    ["{{inputs.parameters.message}}", { "inputs.parameters.message": "hello world" }, "hello world"],
    ["{{workflow.parameters.message}}", { "workflow.parameters.message": "hello world" }, "hello world"],
    ["{{workflow.parameters.target}}", { "workflow.parameters.target": "E" }, "E"],
    ["{{inputs.parameters.message}}{{item}}", { "inputs.parameters.message": "A", item: "1" }, "A1"],
    ["{{item}}", { item: "hello world" }, "hello world"],
    ["{{item.num}}", { item: '{"num":"1","evenness":"odd"}', "item.num": "1" }, "1"],
    ["{{steps.failing-container.exitCode}}", { "steps.failing-container.exitCode": "1" }, "1"],
    ["echo \"Exit code was: {{inputs.parameters.exitCode}}\"", { "inputs.parameters.exitCode": "1" }, 'echo "Exit code was: 1"'],
    ["{{steps.generate-parameter.outputs.parameters.hello-param}}", { "steps.generate-parameter.outputs.parameters.hello-param": "hello world" }, "hello world"],
    ["{{tasks.odd-or-even.outputs.parameters.num}}", { "tasks.odd-or-even.outputs.parameters.num": '["1","2"]' }, '["1","2"]'],
    ["{{tasks.odd-or-even.outputs.parameters}}", { "tasks.odd-or-even.outputs.parameters": '[{"num":"1"}]' }, '[{"num":"1"}]'],
    ["{{steps.odd-or-even.outputs.result}}", { "steps.odd-or-even.outputs.result": '[{"num": 1, "evenness": "odd"}]' }, '[{"num": 1, "evenness": "odd"}]'],
    ["{{tasks.divide-by-2.outputs.result}}", { "tasks.divide-by-2.outputs.result": "[0, 1, 1]" }, "[0, 1, 1]"],
    ["if [ $(({{inputs.parameters.num}}%2)) -eq 0 ]; then", { "inputs.parameters.num": "3" }, "if [ $((3%2)) -eq 0 ]; then"],
    ["echo $(({{inputs.parameters.num}}/2))", { "inputs.parameters.num": "8" }, "echo $((8/2))"],
    ["i = {{inputs.parameters.num}}", { "inputs.parameters.num": "4" }, "i = 4"],
    ["echo result was: {{inputs.parameters.message}}", { "inputs.parameters.message": "42" }, "echo result was: 42"],
    ["{{steps.generate.outputs.result}}", { "steps.generate.outputs.result": "17" }, "17"],
    ["{{steps.hello-a.outputs.result}}", { "steps.hello-a.outputs.result": "3" }, "3"],
    ["{{tasks.producer.outputs.parameters.msg}}", { "tasks.producer.outputs.parameters.msg": "fallback" }, "fallback"],
    ["consumer got: [{{inputs.parameters.in}}]", { "inputs.parameters.in": "" }, "consumer got: []"],
    ["{{inputs.parameters.a}}", { "inputs.parameters.a": "[43]" }, "[43]"]
  ])("%s", (text, s, expected) => {
    expect(sub(text, s)).toBe(expected)
  })

  it("leaves comments in scripts alone when the variable is unknown", () => {
    expect(sub("# {{steps.<stepname>.outputs.result}}, and used", {})).toBe("# {{steps.<stepname>.outputs.result}}, and used")
  })
})

describe("expression tags in the examples", () => {
  const config = '{"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]}'
  it.each([
    ["{{=jsonpath(workflow.parameters.config, '$.employees[?(@.name==\"Baris\")].age')}}", "[43]"],
    ["{{=jsonpath(workflow.parameters.config, '$.employees[?(@.age>42 && @.age<44)].age')}}", "[43]"],
    ["{{=jsonpath(workflow.parameters.config, '$.employees[0:1]')}}", '[{"age":43,"name":"Baris"}]'],
    ["{{=jsonpath(workflow.parameters.config, '$.employees[*].name')}}", '["Baris","Mo","Jai"]']
  ])("expression-destructure-json-complex %s", (text, expected) => {
    expect(sub(text, { "workflow.parameters.config": config })).toBe(expected)
  })

  it.each([
    ["{{=jsonpath(workflow.parameters.config, '$.a')}}", "1"],
    ["{{=jsonpath(workflow.parameters.config, '$.b')}}", "2"],
    ["{{=jsonpath(workflow.parameters.config, '$.c')}}", "3"]
  ])("expression-destructure-json %s", (text, expected) => {
    expect(sub(text, { "workflow.parameters.config": '{"a": "1", "b": "2", "c": "3"}' })).toBe(expected)
  })

  it("expression-reusing-verbose-snippets: map/#/sprig.b64dec/add/min/max/toJson", () => {
    const text = `{{=
                map([
                    jsonpath(sprig.b64dec(jsonpath(workflow.parameters.weather, '$.weekWeather')), '$.temps')
                  ], {
                    toJson({
                      avg: sprig.add(#[0], #[1], #[2], #[3], #[4]) / 5,
                      min: sprig.min(#[0], #[1], #[2], #[3], #[4]),
                      max: sprig.max(#[0], #[1], #[2], #[3], #[4])
                    })
                })[0]
              }}`
    const weekTemps = sub(text, { "workflow.parameters.weather": '{"weekWeather": "eyJ0ZW1wcyI6IFszNCwgMjcsIDE1LCA1NywgNDZdfQo="}' })
    expect(weekTemps).toBe('{"avg":35.8,"max":57,"min":15}')
    const s = { "inputs.parameters.week-temps": weekTemps }
    expect(sub("{{=jsonpath(inputs.parameters['week-temps'], '$.avg')}}", s)).toBe("35.8")
    expect(sub("{{=jsonpath(inputs.parameters['week-temps'], '$.min')}}", s)).toBe("15")
    expect(sub("{{=jsonpath(inputs.parameters['week-temps'], '$.max')}}", s)).toBe("57")
  })

  it("expression-tag-template: withParam toJson(filter(...))", () => {
    expect(sub("{{=toJson(filter([1, 3], {# > 1}))}}", {})).toBe("[3]")
  })

  it("expression-tag-template: {{=item}} (a late-binding variable stays until the item exists)", () => {
    expect(sub("{{=item}}", {})).toBe("{{=item}}")
    expect(sub("{{=item}}", { item: "3" })).toBe("3")
    expect(sub("{{=item}}", { item: 3 })).toBe("3")
  })

  it("expression-tag-template: asInt and sprig.date with a Go layout", () => {
    const text = "hello {{=asInt(inputs.parameters.foo) * 10}} @ {{=sprig.date('2006', workflow.creationTimestamp)}}\n"
    expect(sub(text, { "inputs.parameters.foo": "3", "workflow.creationTimestamp": "2024-05-06T07:08:09Z" })).toBe("hello 30 @ 2024\n")
  })

  it("conditional-parameters / dag-conditional-parameters: expression: with dashes in brackets", () => {
    const steps = { "steps.flip-coin.outputs.result": "heads", "steps.heads.outputs.result": "it was heads", "steps.tails.outputs.result": "it was tails" }
    expect(ev("steps['flip-coin'].outputs.result == 'heads' ? steps.heads.outputs.result : steps.tails.outputs.result", steps)).toBe("it was heads")
    const tasks = { "tasks.flip-coin.outputs.result": "tails", "tasks.heads.outputs.result": null, "tasks.tails.outputs.result": "it was tails" }
    expect(ev("tasks['flip-coin'].outputs.result == 'heads' ? tasks.heads.outputs.result : tasks.tails.outputs.result", tasks)).toBe("it was tails")
  })

  it("label-value-from-workflow: expression: workflow.parameters.foo", () => {
    expect(ev("workflow.parameters.foo", { "workflow.parameters.foo": "bar" })).toBe("bar")
  })

  it("skipped-output-defaults-expression-fallback: ?? on an absent (nil) output", () => {
    expect(ev("tasks.producer.outputs.parameters.msg ?? 'expr-fallback'", { "tasks.producer.outputs.parameters.msg": null })).toBe("expr-fallback")
    expect(ev("tasks.producer.outputs.parameters.msg ?? 'expr-fallback'", { "tasks.producer.outputs.parameters.msg": "" })).toBe("")
    expect(ev("tasks.producer.outputs.parameters.msg ?? 'expr-fallback'", { "tasks.producer.outputs.parameters.msg": "real-value" })).toBe("real-value")
  })

  it("a simple tag on an absent optional output is an error", () => {
    const r = substitute("{{tasks.producer.outputs.parameters.msg}}", scope({ "tasks.producer.outputs.parameters.msg": null }))
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.message).toContain("absent optional")
  })
})

describe("when conditions in the examples", () => {
  it.each([
    ["{{steps.flip-coin.outputs.result}} == heads", { "steps.flip-coin.outputs.result": "heads" }, true],
    ["{{steps.flip-coin.outputs.result}} == heads", { "steps.flip-coin.outputs.result": "tails" }, false],
    ["{{steps.flip-coin.outputs.result}} == tails", { "steps.flip-coin.outputs.result": "tails" }, true],
    ["{{tasks.flip-coin.outputs.result}} == heads", { "tasks.flip-coin.outputs.result": "heads" }, true],
    ["{{tasks.flip-coin.outputs.result}} == tails", { "tasks.flip-coin.outputs.result": "heads" }, false],
    ["{{steps.flip-again.outputs.result}} =~ hea", { "steps.flip-again.outputs.result": "heads" }, true],
    ["{{steps.flip-again.outputs.result}} =~ tai", { "steps.flip-again.outputs.result": "heads" }, false],
    ["{{inputs.parameters.should-print}} == true", { "inputs.parameters.should-print": "true" }, true],
    ["{{inputs.parameters.should-print}} == true", { "inputs.parameters.should-print": "false" }, false],
    ["{{= inputs.parameters[\"should-print\"] == 'true'}}", { "inputs.parameters.should-print": "true" }, true],
    ["{{= inputs.parameters[\"should-print\"] == 'true'}}", { "inputs.parameters.should-print": "false" }, false],
    ["{{=jsonpath(workflow.parameters.json, '$[0].value') == 'true'}}", { "workflow.parameters.json": '[{"value":"true"}]' }, true],
    ["{{=jsonpath(workflow.parameters.json, '$[0].value') == 'true'}}", { "workflow.parameters.json": '[{"value":"no"}]' }, false],
    ["{{item.evenness}} == even", { "item.evenness": "even" }, true],
    ["{{item.evenness}} == even", { "item.evenness": "odd" }, false],
    ["{{steps.flakey-container.status}} == Failed", { "steps.flakey-container.status": "Failed" }, true],
    ["{{steps.flakey-container.status}} == Succeeded", { "steps.flakey-container.status": "Failed" }, false],
    ["false", {}, false]
  ])("%s with %j -> %s", (text, s, expected) => {
    expect(when(text, s)).toBe(expected)
  })

  const complex = `( {{steps.flip-coin.outputs.result}} == heads &&
  {{steps.flip-again.outputs.result}} == tails
) ||
( {{steps.flip-coin.outputs.result}} == tails &&
  {{steps.flip-again.outputs.result}} == tails )`
  it.each([
    ["heads", "tails", true],
    ["tails", "tails", true],
    ["heads", "heads", false],
    ["tails", "heads", false]
  ])("conditionals-complex %s %s -> %s", (a, b, expected) => {
    expect(when(complex, { "steps.flip-coin.outputs.result": a, "steps.flip-again.outputs.result": b })).toBe(expected)
  })

  it("a when on a step result that is not there yet is a missing-variable error", () => {
    const r = evaluateWhen("{{steps.flip-coin.outputs.result}} == heads", scope({}))
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.missingVariable).toBe("steps.flip-coin.outputs.result")
  })
})

describe("substituteObject", () => {
  it("substitutes every string of a template", () => {
    const template = {
      name: "whalesay",
      container: { image: "busybox", args: ["{{inputs.parameters.message}}", "n={{=asInt(inputs.parameters.n) + 1}}"] },
      retryStrategy: { limit: "10" },
      count: 3
    }
    const r = substituteObject(template, scope({ "inputs.parameters.message": "hi", "inputs.parameters.n": "1" }))
    expect(r).toEqual({
      ok: true,
      value: { name: "whalesay", container: { image: "busybox", args: ["hi", "n=2"] }, retryStrategy: { limit: "10" }, count: 3 }
    })
  })
  it("reports the first error", () => {
    const r = substituteObject({ a: ["{{inputs.parameters.x}}"] }, scope({}), { strict: true })
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.message).toBe("failed to resolve {{inputs.parameters.x}}")
  })
})
