/**
 * Fuzzing the kubeconfig parsers (issue 10): 1,000 kubeconfigs mutated from
 * the valid fixtures by a seeded generator (structure, types, lengths,
 * unicode, control characters, huge values, YAML anchors and aliases, wrong
 * nesting, exec / auth-provider / file references), fed to the user and the
 * system kubeconfig parsers. Every result must be a connection or a
 * KubeconfigError naming the secret (no defect, no hang); no user connection
 * may carry anything but an inline credential for the operator's endpoint,
 * and no system connection may point at a file (the controller validates
 * argo-kubeconfig without `readFile`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Redacted } from "effect"
import fc from "fast-check"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parse as parseYaml, stringify as stringifyYaml } from "yaml"
import type { ConnectionSpec } from "../../src/kube/api/Connection.js"
import { validateBearerToken } from "../../src/kube/api/Validation.js"
import {
  KubeconfigError,
  MAX_KUBECONFIG_BYTES,
  parseKubeconfig,
  userConnection,
  validateSystemKubeconfig
} from "../../src/kubeconfig/index.js"
import {
  CA_DATA,
  CERT_DATA,
  KEY_DATA,
  SEED_SYSTEM,
  SEED_USER,
  SYSTEM_SOURCE,
  SYSTEM_TOKEN,
  USER_SOURCE,
  USER_TOKEN
} from "./fixtures.js"

const SEED = 20_251_010
const RUNS = 1_000
const SERVER = "https://cluster-1.example:6443"

/** The operator's connection for cluster-1, as validateSystemKubeconfig gives it for SEED_SYSTEM. */
const system: ConnectionSpec = {
  cluster: "cluster-1",
  user: "cluster-1",
  endpoint: { server: SERVER, certificateAuthorityData: CA_DATA, tlsServerName: "kubernetes" },
  auth: { _tag: "Token", token: Redacted.make(SYSTEM_TOKEN) }
}

/** A third base: a user kubeconfig with a clusters entry and an inline client certificate. */
const CERT_USER = JSON.stringify({
  apiVersion: "v1",
  kind: "Config",
  clusters: [{ name: "cluster-1", cluster: { server: SERVER } }],
  contexts: [{ name: "cluster-1", context: { cluster: "cluster-1", user: "cert" } }],
  users: [{ name: "cert", user: { "client-certificate-data": CERT_DATA, "client-key-data": KEY_DATA } }]
})

const BASES: ReadonlyArray<string> = [SEED_SYSTEM, SEED_USER, CERT_USER]
const BASE_DOCS = BASES.map((text) => parseYaml(text) as { [key: string]: Json })

type Json = null | boolean | number | string | Array<Json> | { [key: string]: Json }

// ---------------------------------------------------------------- values

const controlChar = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c))
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c))
const nastyChar = fc.oneof(
  controlChar,
  loneSurrogate,
  fc.constantFrom("\u007f", "\u0085", "\u2028", "\u2029", "\ufeff", "\u202e", "é", "\u{1F600}", "\r\n", ":", "#", "&", "*", "!", "|", ">", "%", "@", "`", "\"", "'", "{", "}", "[", "]", ",", "-", "?", " ", "\t", "\\")
)

/** Strings: unicode, control characters, YAML indicators, file paths, URLs, and now and then very long ones. */
const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 4, arbitrary: fc.string({ unit: nastyChar, maxLength: 20 }) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom("cluster-1", "remote", "https://cluster-1.example:6443"), fc.string({ unit: nastyChar, maxLength: 4 })).map(([a, b]) => a + b) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "/etc/passwd",
      "../../../../etc/shadow",
      "~/.kube/config",
      "/var/run/secrets/kubernetes.io/serviceaccount/token",
      "file:///etc/passwd",
      "https://attacker.example:6443",
      "https://user:pass@cluster-1.example:6443",
      "http://cluster-1.example:6443",
      "ftp://x",
      "memory://cluster-1",
      "not a url",
      "",
      "null",
      "~",
      "0x1F",
      "1e309",
      "!!binary aGVsbG8=",
      "*alias",
      "&anchor x"
    )
  },
  // Long values (in about one input in fifty): mostly well under 1 MiB, some over it.
  {
    weight: 1,
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom("A", "é", "\n", "ab:", "- "), fc.integer({ min: 1_000, max: 30_000 })).map(([s, n]) => s.repeat(n)) },
      { weight: 1, arbitrary: fc.constantFrom("X".repeat(1_100_000), "\u{1F600}".repeat(300_000)) }
    )
  }
)

/** Any JSON-ish value, nested, deep now and then. */
const hostileValue: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 6, arbitrary: hostileString },
    { weight: 1, arbitrary: fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 2 ** 53 + 1, 1e308, -0) },
    { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(hostileString.filter((k) => k.length < 50), tie("value"), { maxKeys: 4 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 120 }).map((depth) => nest(depth, "deep")) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Json>(
        { command: "sh", args: ["-c", "touch /tmp/pwned"], apiVersion: "client.authentication.k8s.io/v1" },
        { name: "oidc", config: { "id-token": USER_TOKEN, "refresh-token": "r" } },
        { token: USER_TOKEN },
        [{ name: "cluster-1", user: { exec: { command: "sh" } } }]
      )
    }
  )
})).value

const nest = (depth: number, leaf: Json): Json => {
  let value: Json = leaf
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value }
  return value
}

/** Keys an attacker would add: every credential and file field, and some nonsense. */
const sensitiveKey = fc.oneof(
  fc.constantFrom(
    "exec",
    "auth-provider",
    "tokenFile",
    "token",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
    "certificate-authority",
    "certificate-authority-data",
    "username",
    "password",
    "as",
    "as-uid",
    "as-groups",
    "as-user-extra",
    "proxy-url",
    "insecure-skip-tls-verify",
    "server",
    "tls-server-name",
    "namespace",
    "cluster",
    "user",
    "name",
    "context",
    "contexts",
    "users",
    "clusters",
    "extensions",
    "__proto__",
    "constructor",
    "<<"
  ),
  hostileString.filter((k) => k.length > 0 && k.length < 30)
)

// ---------------------------------------------------------------- mutations

type Mutation =
  | { readonly op: "set"; readonly at: number; readonly value: Json }
  | { readonly op: "delete"; readonly at: number }
  | { readonly op: "add"; readonly at: number; readonly key: string; readonly value: Json }
  | { readonly op: "wrap"; readonly at: number; readonly inList: boolean }
  | { readonly op: "graft"; readonly at: number; readonly from: number }
  | { readonly op: "share"; readonly at: number; readonly from: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: hostileValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), at: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("add" as const), at: fc.nat(), key: sensitiveKey, value: hostileValue }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("wrap" as const), at: fc.nat(), inList: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("graft" as const), at: fc.nat(), from: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("share" as const), at: fc.nat(), from: fc.nat() }) }
)

interface Slot {
  readonly parent: Array<Json> | { [key: string]: Json }
  readonly key: string | number
}

/** Every value slot of the tree (iteratively; shared subtrees visited once). */
const slots = (root: Json): Array<Slot> => {
  const out: Array<Slot> = []
  const seen = new Set<object>()
  const stack: Array<Json> = [root]
  while (stack.length > 0) {
    const node = stack.pop()!
    if (node === null || typeof node !== "object" || seen.has(node)) continue
    seen.add(node)
    for (const key of Array.isArray(node) ? node.keys() : Object.keys(node)) {
      const parent = node as Slot["parent"]
      out.push({ parent, key })
      stack.push((parent as Record<string | number, Json>)[key])
    }
  }
  return out
}

const get = (slot: Slot): Json => (slot.parent as Record<string | number, Json>)[slot.key]
const put = (slot: Slot, value: Json): void => {
  if (slot.key === "__proto__" && !Array.isArray(slot.parent)) {
    Object.defineProperty(slot.parent, "__proto__", { value, enumerable: true, writable: true, configurable: true })
  } else (slot.parent as Record<string | number, Json>)[slot.key] = value
}

const applyMutation = (root: { [key: string]: Json }, m: Mutation): void => {
  const all = slots(root)
  if (all.length === 0) return
  const slot = all[m.at % all.length]
  switch (m.op) {
    case "set":
      return put(slot, m.value)
    case "delete":
      if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1)
      else delete slot.parent[slot.key as string]
      return
    case "add": {
      const target = get(slot)
      if (target !== null && typeof target === "object" && !Array.isArray(target)) put({ parent: target, key: m.key }, m.value)
      else if (Array.isArray(target)) target.push({ [m.key]: m.value })
      else put(slot, { [m.key]: m.value })
      return
    }
    case "wrap":
      return put(slot, m.inList ? [get(slot)] : { value: get(slot) })
    case "graft": {
      // Wrong nesting: a subtree from elsewhere (a user body as a context, a list as a server...). Only
      // collections: a token moved into a name would be echoed in errors, as names rightly are.
      const source = get(all[m.from % all.length])
      if (source !== null && typeof source === "object") put(slot, structuredClone(source))
      return
    }
    case "share": {
      // The same object twice: serialized as a YAML anchor and an alias.
      const source = get(all[m.from % all.length])
      if (source !== null && typeof source === "object" && !slots(source).some((s) => s.parent === slot.parent)) put(slot, source)
      return
    }
  }
}

// ---------------------------------------------------------------- text

type TextEdit = { readonly at: number; readonly insert: string; readonly cut: number }

const textEdit: fc.Arbitrary<TextEdit> = fc.record({
  at: fc.nat(),
  insert: fc.oneof(
    fc.string({ unit: nastyChar, maxLength: 6 }),
    fc.constantFrom("\n", "\n  ", "\t", ": ", "- ", "&a ", "*a", "<<: *a\n", "!!binary ", "!!set ", "? ", "%YAML 1.1\n---\n", "---\n", "...\n", "\ufeff")
  ),
  cut: fc.integer({ min: 0, max: 8 })
})

/** A few aliases of one anchor, or the billion laughs. */
const aliasAttack = fc.oneof(
  fc.integer({ min: 1, max: 150 }).map((n) =>
    `apiVersion: &a v1\nkind: Config\npreferences:\n${Array.from({ length: n }, (_, i) => `  k${i}: *a`).join("\n")}\n`
  ),
  fc.integer({ min: 2, max: 9 }).map((levels) => {
    let text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for (let i = 1; i < levels; i++) text += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]\n`
    return text
  })
)

/** How the mutated document is written: JSON, YAML (block or flow), YAML then edited as text, or an alias attack instead. */
type Format = "json" | "yaml" | "yaml-flow" | "yaml-edited" | "alias-attack"

interface Case {
  readonly base: number
  readonly mutations: ReadonlyArray<Mutation>
  readonly format: Format
  readonly edits: ReadonlyArray<TextEdit>
  readonly attack: string
}

const kubeconfigCase: fc.Arbitrary<Case> = fc.record({
  base: fc.nat({ max: BASES.length - 1 }),
  mutations: fc.array(mutation, { minLength: 0, maxLength: 3 }),
  format: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom<Format>("json", "yaml", "yaml-flow") },
    { weight: 3, arbitrary: fc.constant<Format>("yaml-edited") },
    { weight: 1, arbitrary: fc.constant<Format>("alias-attack") }
  ),
  edits: fc.array(textEdit, { minLength: 1, maxLength: 3 }),
  attack: aliasAttack
})

const render = (c: Case): string => {
  if (c.format === "alias-attack") return c.attack
  const doc = structuredClone(BASE_DOCS[c.base])
  for (const m of c.mutations) applyMutation(doc, m)
  if (c.format === "json") return JSON.stringify(doc)
  const yaml = stringifyYaml(doc, { aliasDuplicateObjects: true, collectionStyle: c.format === "yaml-flow" ? "flow" : "any" })
  if (c.format !== "yaml-edited") return yaml
  let text = yaml
  for (const e of c.edits) {
    const at = text.length === 0 ? 0 : e.at % text.length
    text = text.slice(0, at) + e.insert + text.slice(at + e.cut)
  }
  return text
}

// ---------------------------------------------------------------- checks

const SECRETS = [USER_TOKEN, SYSTEM_TOKEN, KEY_DATA]

/** Nothing but a KubeconfigError may come out: no defect, no interruption, no other error. */
const expectTypedFailure = (exit: Exit.Exit<unknown, unknown>, source: string, label: string): KubeconfigError | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  assert.isFalse(Cause.hasDies(exit.cause), `${label}: defect ${String(Cause.squash(exit.cause))}`)
  assert.isFalse(Cause.hasInterrupts(exit.cause), `${label}: interrupted`)
  const error = Cause.squash(exit.cause)
  assert.instanceOf(error, KubeconfigError, label)
  expectGoodError(error as KubeconfigError, source, label)
  return error as KubeconfigError
}

/** Names the secret, says what is wrong, and never carries a credential in what it says. */
const expectGoodError = (error: KubeconfigError, source: string, label: string): void => {
  assert.strictEqual(error.source, source, label)
  assert.include(error.message, source, label)
  assert.isAbove(error.detail.length, 0, label)
  if (error.field !== undefined) assert.isAbove(error.field.length, 0, label)
  for (const secret of SECRETS) assert.notInclude(error.detail, secret, `${label}: ${error.message}`)
}

const tokenOf = (spec: ConnectionSpec): string | undefined => spec.auth._tag === "Token" ? Redacted.value(spec.auth.token) : undefined

const cases = fc.sample(kubeconfigCase, { seed: SEED, numRuns: RUNS })

describe("kubeconfig fuzz", () => {
  it.effect(`${RUNS} mutated kubeconfigs: typed results only, no file or command reachable`, () =>
    Effect.gen(function*() {
      const outcomes = { userOk: 0, userRefused: 0, systemContexts: 0, systemRefused: 0, docRefused: 0, tooLarge: 0 }
      for (let i = 0; i < cases.length; i++) {
        const text = render(cases[i])
        const label = `case ${i} (seed ${SEED}): ${JSON.stringify(text.slice(0, 300))}`

        // loadUserConnection and loadSystemKubeconfig are this parse followed by each validator;
        // the text is parsed once for both, which halves the run time.
        const parsed = yield* Effect.exit(parseKubeconfig(text, USER_SOURCE))
        const refused = expectTypedFailure(parsed, USER_SOURCE, label)
        if (Buffer.byteLength(text) > MAX_KUBECONFIG_BYTES) {
          outcomes.tooLarge++
          assert.include(refused?.detail, "1 MiB", label)
        }
        if (refused !== undefined || !Exit.isSuccess(parsed)) {
          outcomes.docRefused++
          continue
        }
        const doc = parsed.value

        const user = yield* Effect.exit(userConnection(doc, {
          source: USER_SOURCE,
          cluster: "cluster-1",
          namespace: "remote",
          system,
          allowInsecureSkipTlsVerify: false
        }))
        if (expectTypedFailure(user, USER_SOURCE, label) !== undefined) outcomes.userRefused++
        else if (Exit.isSuccess(user)) {
          outcomes.userOk++
          const spec = user.value
          // Only inline credentials, only to the operator's endpoint, never weakened.
          assert.oneOf(spec.auth._tag, ["Token", "ClientCertificate"], label)
          assert.deepStrictEqual(spec.endpoint, system.endpoint, label)
          assert.strictEqual(spec.cluster, "cluster-1", label)
          assert.strictEqual(spec.namespace, "remote", label)
          const token = tokenOf(spec)
          if (token !== undefined) assert.isUndefined(validateBearerToken(token), label)
        }

        const sys = yield* Effect.exit(Effect.sync(() => validateSystemKubeconfig(doc, { source: SYSTEM_SOURCE })))
        assert.isTrue(Exit.isSuccess(sys), `${label}: ${Exit.isFailure(sys) ? String(Cause.squash(sys.cause)) : ""}`)
        if (Exit.isSuccess(sys)) {
          for (const error of sys.value.errors) {
            assert.instanceOf(error, KubeconfigError, label)
            expectGoodError(error, SYSTEM_SOURCE, label)
            outcomes.systemRefused++
          }
          for (const spec of sys.value.clusters) {
            outcomes.systemContexts++
            // No readFile was given (as in the controller): nothing may refer to a file.
            assert.notStrictEqual(spec.auth._tag, "TokenFile", label)
            assert.match(spec.endpoint.server, /^(https?|memory):\/\/[^\s]*$/i, label)
            const token = tokenOf(spec)
            if (token !== undefined) assert.isUndefined(validateBearerToken(token), label)
          }
        }
      }
      // The generator reaches every outcome (it is not refusing everything at the YAML stage).
      assert.isAbove(outcomes.userOk, 20, JSON.stringify(outcomes))
      assert.isAbove(outcomes.userRefused, 100, JSON.stringify(outcomes))
      assert.isAbove(outcomes.systemContexts, 20, JSON.stringify(outcomes))
      assert.isAbove(outcomes.systemRefused, 100, JSON.stringify(outcomes))
      assert.isAbove(outcomes.docRefused, 100, JSON.stringify(outcomes))
      assert.isAbove(outcomes.tooLarge, 0, JSON.stringify(outcomes))
    }))

  it("the kubeconfig parsers cannot read files or run commands: they import neither", () => {
    const dir = join(import.meta.dirname, "../../src/kubeconfig")
    // node:path is path arithmetic only (LocalKubeconfig resolves a file's relative references); it reads nothing
    const allowed = new Set(["effect", "yaml", "node:path", "../kube/api/Connection.js", "../kube/api/Validation.js"])
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"))
    assert.isAbove(files.length, 3)
    for (const file of [...files.map((f) => join(dir, f)), join(dir, "../kube/api/Validation.ts")]) {
      const source = readFileSync(file, "utf8")
      for (const match of source.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
        const spec = match[1]
        assert.isTrue(allowed.has(spec) || /^\.\/[A-Za-z]+\.js$/.test(spec), `${file} imports ${spec}`)
      }
      assert.notMatch(source, /\brequire\s*\(|process\.binding|child_process|node:fs/, file)
    }
  })
})
