/**
 * The kubeconfig document (the `value` item of `argo-kubeconfig` and of
 * `<serviceAccount>-kubeconfig`), as a Schema, and its parser.
 *
 * The schema checks shapes only (types of the fields flotilla knows about);
 * what is *allowed* is decided by SystemKubeconfig (operator-owned, trusted)
 * and UserKubeconfig (untrusted). Unknown keys are kept at every level so
 * those validators can see (and reject) fields this schema does not name.
 * Every optional field also accepts `null`, which is what YAML gives for
 * `namespace:` with nothing after it and what kubectl writes for empty lists.
 */
import { Effect, Schema, SchemaIssue } from "effect"
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml"
import { formatPath, KubeconfigError } from "./KubeconfigError.js"

export { formatPath, KubeconfigError, secretSource } from "./KubeconfigError.js"

const opt = <S extends Schema.Top>(schema: S) => Schema.optional(Schema.NullOr(schema))

/** A struct whose unknown extra keys are kept (not stripped) so validators can reject them. */
const openStruct = <const Fields extends Schema.Struct.Fields>(fields: Fields) =>
  Schema.StructWithRest(Schema.Struct(fields), [Schema.Record(Schema.String, Schema.Unknown)])

export const ExecEnvVar = openStruct({
  name: Schema.String,
  value: Schema.String
})
export type ExecEnvVar = typeof ExecEnvVar.Type

export const ExecConfig = openStruct({
  command: opt(Schema.String),
  args: opt(Schema.Array(Schema.String)),
  env: opt(Schema.Array(ExecEnvVar)),
  apiVersion: opt(Schema.String),
  installHint: opt(Schema.String),
  provideClusterInfo: opt(Schema.Boolean),
  interactiveMode: opt(Schema.String)
})
export type ExecConfig = typeof ExecConfig.Type

export const Cluster = openStruct({
  server: opt(Schema.String),
  "certificate-authority-data": opt(Schema.String),
  "certificate-authority": opt(Schema.String),
  "insecure-skip-tls-verify": opt(Schema.Boolean),
  "tls-server-name": opt(Schema.String),
  "proxy-url": opt(Schema.String),
  "disable-compression": opt(Schema.Boolean),
  extensions: opt(Schema.Unknown)
})
export type Cluster = typeof Cluster.Type

export const NamedCluster = openStruct({
  name: opt(Schema.String),
  cluster: opt(Cluster)
})
export type NamedCluster = typeof NamedCluster.Type

export const Context = openStruct({
  cluster: opt(Schema.String),
  user: opt(Schema.String),
  namespace: opt(Schema.String),
  extensions: opt(Schema.Unknown)
})
export type Context = typeof Context.Type

export const NamedContext = openStruct({
  name: opt(Schema.String),
  context: opt(Context)
})
export type NamedContext = typeof NamedContext.Type

export const User = openStruct({
  token: opt(Schema.String),
  tokenFile: opt(Schema.String),
  "client-certificate": opt(Schema.String),
  "client-certificate-data": opt(Schema.String),
  "client-key": opt(Schema.String),
  "client-key-data": opt(Schema.String),
  exec: opt(ExecConfig),
  "auth-provider": opt(Schema.Unknown),
  username: opt(Schema.String),
  password: opt(Schema.String),
  as: opt(Schema.String),
  "as-uid": opt(Schema.String),
  "as-groups": opt(Schema.Array(Schema.String)),
  "as-user-extra": opt(Schema.Unknown),
  extensions: opt(Schema.Unknown)
})
export type User = typeof User.Type

export const NamedUser = openStruct({
  name: opt(Schema.String),
  user: opt(User)
})
export type NamedUser = typeof NamedUser.Type

export const Kubeconfig = openStruct({
  apiVersion: opt(Schema.String),
  kind: opt(Schema.String),
  clusters: opt(Schema.Array(NamedCluster)),
  contexts: opt(Schema.Array(NamedContext)),
  users: opt(Schema.Array(NamedUser)),
  "current-context": opt(Schema.String),
  preferences: opt(Schema.Unknown),
  extensions: opt(Schema.Unknown)
})
export type Kubeconfig = typeof Kubeconfig.Type

const decodeKubeconfig = Schema.decodeUnknownEffect(Kubeconfig)

/**
 * Renders schema issues without ever echoing the offending input (which could
 * be a token put where a list was expected).
 */
const issueFormatter = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => {
    switch (issue._tag) {
      case "InvalidType": {
        const expected = SchemaIssue.defaultLeafHook(issue).split(", got ")[0]
        const actual = SchemaIssue.hasInput(issue) ? describeType(issue.input) : undefined
        return actual === undefined ? expected : `${expected}, got ${actual}`
      }
      case "MissingKey":
        return "Missing key"
      case "UnexpectedKey":
        return "Unexpected key"
      default:
        return "Invalid value"
    }
  },
  checkHook: () => "Invalid value"
})

const describeType = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "a list" : typeof value === "object" ? "a mapping" : `a ${typeof value}`

/**
 * Limits on a kubeconfig document. A Secret holds at most 1 MiB, so no real
 * kubeconfig is larger; the others are far above any real kubeconfig and keep
 * a hostile one from costing more than a linear pass over at most 1 MiB.
 */
export const MAX_KUBECONFIG_BYTES = 1024 * 1024
/** Entries of `contexts`, `clusters` and `users` each. */
export const MAX_KUBECONFIG_ENTRIES = 1000
/** YAML alias nodes (`*name`) in the document: each may stand for a whole subtree. */
export const MAX_YAML_ALIASES = 100
/** Nesting of YAML collections; a kubeconfig needs fewer than ten. */
export const MAX_YAML_DEPTH = 64

const yamlProblems: Record<string, string> = {
  BAD_INDENT: "bad indentation",
  DUPLICATE_KEY: "duplicate key",
  MISSING_CHAR: "missing closing character (quote or bracket)",
  MULTIPLE_DOCS: "contains more than one YAML document",
  TAB_AS_INDENT: "tab used for indentation",
  BAD_DQ_ESCAPE: "invalid escape in double-quoted string",
  BLOCK_AS_IMPLICIT_KEY: "block collection used as a key",
  MULTILINE_IMPLICIT_KEY: "implicit key spans several lines",
  NON_STRING_KEY: "non-string key",
  UNEXPECTED_TOKEN: "unexpected token",
  BAD_ALIAS: "bad alias",
  RESOURCE_EXHAUSTION: "nested too deeply or too many aliases",
  KEY_OVER_1024_CHARS: "key longer than 1024 characters"
}

/**
 * One pass over the parsed YAML tree, with an explicit stack (no recursion, so
 * no nesting can overflow it): duplicate keys (a Set per mapping; yaml's own
 * `uniqueKeys` compares each key with every earlier one, which made 40,000 keys
 * take tens of seconds), alias count and nesting depth. Returns the first
 * problem with its offset in the text, or undefined.
 */
const checkTree = (doc: Document.Parsed): { readonly problem: string; readonly offset?: number } | undefined => {
  let aliases = 0
  const stack: Array<{ readonly node: unknown; readonly depth: number }> = [{ node: doc.contents, depth: 0 }]
  while (stack.length > 0) {
    const { depth, node } = stack.pop()!
    if (isAlias(node)) {
      aliases++
      if (aliases > MAX_YAML_ALIASES) {
        return { problem: `more than ${MAX_YAML_ALIASES} YAML aliases`, offset: node.range?.[0] }
      }
    } else if (isMap(node) || isSeq(node)) {
      if (depth >= MAX_YAML_DEPTH) {
        return { problem: `nested more than ${MAX_YAML_DEPTH} levels deep`, offset: node.range?.[0] }
      }
      if (isMap(node)) {
        const keys = new Set<unknown>()
        for (const pair of node.items) {
          if (isScalar(pair.key)) {
            if (keys.has(pair.key.value)) return { problem: "duplicate key", offset: pair.key.range?.[0] }
            keys.add(pair.key.value)
          }
          stack.push({ node: pair.key, depth: depth + 1 }, { node: pair.value, depth: depth + 1 })
        }
      } else {
        for (const item of node.items) stack.push({ node: item, depth: depth + 1 })
      }
    }
  }
  return undefined
}

const entryLists = ["contexts", "clusters", "users"] as const

/**
 * Parses kubeconfig text in time linear in its size. Fails with a
 * KubeconfigError naming `source` and, for YAML syntax errors, the line and
 * column (never the offending text, which may hold a token); for shape errors,
 * the field path. Documents over {@link MAX_KUBECONFIG_BYTES}, with more than
 * {@link MAX_YAML_ALIASES} aliases, nested deeper than {@link MAX_YAML_DEPTH}
 * or with more than {@link MAX_KUBECONFIG_ENTRIES} contexts, clusters or users
 * are refused. (`prettyErrors` only makes yaml fill in line positions; its
 * messages, which quote the source, are never used. `logLevel: "error"` keeps
 * yaml from printing warnings, which quote keys, to the console.)
 */
export const parseKubeconfig = Effect.fnUntraced(function*(
  text: string,
  source: string
): Effect.fn.Return<Kubeconfig, KubeconfigError> {
  const bytes = Buffer.byteLength(text, "utf8")
  if (bytes > MAX_KUBECONFIG_BYTES) {
    return yield* new KubeconfigError({
      source,
      detail: `kubeconfig is ${bytes} bytes, more than the 1 MiB (${MAX_KUBECONFIG_BYTES} bytes) a Secret can hold`
    })
  }
  const lineCounter = new LineCounter()
  const malformed = (problem: string, offset?: number, what = "malformed YAML") => {
    const pos = offset === undefined ? undefined : lineCounter.linePos(offset)
    return new KubeconfigError({
      source,
      detail: `${what}${pos && pos.line > 0 ? ` at line ${pos.line}, column ${pos.col}` : ""}: ${problem}`
    })
  }
  let doc: Document.Parsed
  try {
    doc = parseDocument(text, { prettyErrors: true, uniqueKeys: false, stringKeys: true, logLevel: "error", lineCounter })
  } catch {
    // yaml reports problems in doc.errors; a throw would be a bug of its own, still not a crash of ours.
    return yield* malformed("could not be parsed")
  }
  if (doc.errors.length > 0) {
    const first = doc.errors[0]
    return yield* malformed(yamlProblems[first.code] ?? first.code.toLowerCase().replace(/_/g, " "), first.pos[0])
  }
  const problem = checkTree(doc)
  if (problem !== undefined) {
    return yield* malformed(problem.problem, problem.offset, problem.problem === "duplicate key" ? "malformed YAML" : "YAML refused")
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES })
  } catch {
    return yield* malformed("could not be converted (an alias to an undefined anchor, or aliases expanding too much)")
  }
  if (value === null || value === undefined) {
    return yield* new KubeconfigError({ source, detail: "kubeconfig is empty" })
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    return yield* new KubeconfigError({ source, detail: `kubeconfig must be a YAML mapping, got ${describeType(value)}` })
  }
  for (const list of entryLists) {
    const entries = (value as Record<string, unknown>)[list]
    if (Array.isArray(entries) && entries.length > MAX_KUBECONFIG_ENTRIES) {
      return yield* new KubeconfigError({
        source,
        field: list,
        detail: `${entries.length} entries, more than the ${MAX_KUBECONFIG_ENTRIES} a kubeconfig may have`
      })
    }
  }
  return yield* decodeKubeconfig(value).pipe(
    Effect.mapError((error) => {
      const issue = issueFormatter(error.issue).issues[0]
      const path = (issue?.path ?? []).map((segment) =>
        typeof segment === "object" && segment !== null && "key" in segment ? segment.key : segment
      )
      return new KubeconfigError({
        source,
        field: path.length > 0 ? formatPath(path) : undefined,
        detail: `invalid kubeconfig: ${(issue?.message ?? "invalid document").replace(/ \| null \| undefined$/, "")}`
      })
    })
  )
})
