/**
 * The shape of src/ as a module graph: no import cycles (type-only imports included, so that a
 * module can be read without the modules that import it), and no top-level await or dynamic
 * import() (either would keep the package from being `require()`d, and a computed import hides a
 * dependency from the type checker). One exception: the command line (src/cli/, not part of the
 * package's API) loads a command's own modules when that command runs, with `import("./x.js")` of
 * a literal path (type-checked; an edge of the graph here like any import), so that
 * `flotilla controller` never loads the embedded runtime or the kubelet (issue 14: RSS).
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

const srcRoot = path.resolve(import.meta.dirname, "../../src")

const sourceFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : []
  })

const parsed = sourceFiles(srcRoot).map((file) => ({
  file,
  source: ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
}))

const rel = (file: string) => path.relative(srcRoot, file)

/** Every import specifier of a module (packages and node: built-ins included). */
const specifiersOf = (source: ts.SourceFile): Array<string> =>
  source.statements.flatMap((s) =>
    (ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) && s.moduleSpecifier !== undefined && ts.isStringLiteral(s.moduleSpecifier)
      ? [s.moduleSpecifier.text]
      : []
  )

/** `import("./literal.js")` calls anywhere in a module: their literal paths. */
const dynamicImportsOf = (source: ts.SourceFile): Array<string> => {
  const found: Array<string> = []
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0]
      if (arg !== undefined && ts.isStringLiteral(arg)) found.push(arg.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/** Relative imports, re-exports and (unless `staticOnly`) literal dynamic imports of a module, resolved to the .ts files they name. */
const importsOf = (file: string, source: ts.SourceFile, staticOnly = false): Array<string> =>
  [
    ...source.statements.flatMap((s) =>
      (ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) && s.moduleSpecifier !== undefined && ts.isStringLiteral(s.moduleSpecifier)
        ? [s.moduleSpecifier.text]
        : []
    ),
    ...(staticOnly ? [] : dynamicImportsOf(source))
  ].flatMap((spec) => {
    if (!spec.startsWith(".")) return []
    const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, ".ts"))
    return fs.existsSync(target) ? [target] : []
  })

/** Strongly connected components of more than one module (Tarjan). */
const cycles = (graph: ReadonlyMap<string, ReadonlyArray<string>>): Array<Array<string>> => {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const out: Array<Array<string>> = []
  const visit = (v: string): void => {
    index.set(v, counter)
    low.set(v, counter++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: Array<string> = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || graph.get(v)?.includes(v)) out.push(component)
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return out
}

describe("src/ module graph", () => {
  it("has no import cycles", () => {
    const graph = new Map(parsed.map(({ file, source }) => [file, importsOf(file, source)]))
    assert.deepStrictEqual(cycles(graph).map((c) => c.map(rel).sort().join(" <-> ")), [])
  })

  it("has no top-level await and no dynamic import() (but the command line's own, of literal sibling paths)", () => {
    const findings: Array<string> = []
    for (const { file, source } of parsed) {
      const visit = (node: ts.Node, inFunction: boolean): void => {
        const inside = inFunction || ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)
        const where = () => `${rel(file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
        if (!inside && (ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier !== undefined))) {
          findings.push(`top-level await at ${where()}`)
        }
        if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
          const arg = node.arguments[0]
          const commandLine = rel(file).startsWith(`cli${path.sep}`) && node.arguments.length === 1 && arg !== undefined &&
            ts.isStringLiteral(arg) && /^\.\/[A-Za-z]+\.js$/.test(arg.text)
          if (!commandLine) findings.push(`import() at ${where()}`)
        }
        ts.forEachChild(node, (child) => visit(child, inside))
      }
      visit(source, false)
    }
    assert.deepStrictEqual(findings, [])
  })

  it("`flotilla controller` loads no in-memory cluster, embedded runtime or local kubelet: cli/main.ts reaches none statically", () => {
    const graph = new Map(parsed.map(({ file, source }) => [file, importsOf(file, source, true)]))
    const reached = new Set<string>()
    const visit = (file: string): void => {
      if (reached.has(file)) return
      reached.add(file)
      for (const next of graph.get(file) ?? []) visit(next)
    }
    visit(path.join(srcRoot, "cli", "main.ts"))
    assert.deepStrictEqual([...reached].map(rel).filter((f) => /^(testing|embedded\/EmbeddedRuntime|kubelet)\//.test(f) || f === "embedded/EmbeddedRuntime.ts"), [])
    // and no package the controller does not need: the S3 SDK (the kubelet's), the whole client-node
    const packages = new Set([...reached].flatMap((f) => specifiersOf(parsed.find((p) => p.file === f)!.source)).filter((s) => !s.startsWith(".")))
    assert.deepStrictEqual([...packages].filter((p) => /aws-sdk|client-node|^@effect\/platform-node$/.test(p)), [])
  })

  it("the production entry (src/index.ts) reaches no in-memory cluster, embedded runtime or local kubelet", () => {
    const graph = new Map(parsed.map(({ file, source }) => [file, importsOf(file, source)]))
    const reached = new Set<string>()
    const visit = (file: string): void => {
      if (reached.has(file)) return
      reached.add(file)
      for (const next of graph.get(file) ?? []) visit(next)
    }
    visit(path.join(srcRoot, "index.ts"))
    const forbidden = [...reached].map(rel).filter((f) => /^(testing|embedded|kubelet)\//.test(f))
    assert.deepStrictEqual(forbidden, [])
    // Processes: only the exec credential plugin of the controller's own kubeconfig (users' exec is refused).
    const spawning = [...reached].filter((f) => specifiersOf(parsed.find((p) => p.file === f)!.source).some((s) => /child_process/.test(s)))
    assert.deepStrictEqual(spawning.map(rel), ["kube/live/execCredential.ts"])
    // and flotilla/testing does offer them
    const testing = new Set<string>()
    const visitTesting = (file: string): void => {
      if (testing.has(file)) return
      testing.add(file)
      for (const next of graph.get(file) ?? []) visitTesting(next)
    }
    visitTesting(path.join(srcRoot, "testing/index.ts"))
    assert.includeMembers([...testing].map(rel), ["embedded/EmbeddedRuntime.ts", "kubelet/LocalKubelet.ts", "testing/InMemoryKube.ts"])
  })
})
