/**
 * Images' own programs on the embedded runtime: busybox and alpine images
 * run BusyBox's sh (not the host's dash), python images the host's python3.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { hostCommand, imageRepository } from "../../src/images/ImageCommands.js"
import * as LocalKubelet from "../../src/kubelet/LocalKubelet.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { awaitFinished, ns, phaseOf, podFor, setup, taskResult } from "./helpers.js"

describe("imageRepository", () => {
  it("drops registry, library/, tag and digest", () => {
    for (const image of ["alpine", "alpine:3.23", "docker.io/alpine:3.23", "docker.io/library/alpine", "library/alpine:latest", "alpine@sha256:abcd", "mirror.gcr.io/library/alpine:3"]) {
      assert.strictEqual(imageRepository(image), "alpine", image)
    }
    assert.strictEqual(imageRepository("localhost:5000/busybox:1.36"), "busybox")
    assert.strictEqual(imageRepository("quay.io/prometheus/busybox:latest"), "prometheus/busybox")
    assert.strictEqual(imageRepository("argoproj/argosay:v2"), "argoproj/argosay")
  })
})

describe("hostCommand", () => {
  const host = { busybox: true }
  it("runs busybox and alpine images' sh with BusyBox, any tag", () => {
    assert.deepStrictEqual(hostCommand("busybox", ["sh", "-c", "echo $RANDOM"], host), ["busybox", "sh", "-c", "echo $RANDOM"])
    assert.deepStrictEqual(hostCommand("alpine:3.23", ["/bin/sh", "/argo/staging/script"], host), ["busybox", "sh", "/argo/staging/script"])
    assert.deepStrictEqual(hostCommand("docker.io/library/busybox:1.36", ["ash", "-c", "true"], host), ["busybox", "ash", "-c", "true"])
    assert.deepStrictEqual(hostCommand("alpine", ["echo", "hi"], host), ["echo", "hi"], "other programs run as named")
    assert.deepStrictEqual(hostCommand("debian", ["sh", "-c", "true"], host), ["sh", "-c", "true"], "other images' sh is the host's")
    assert.deepStrictEqual(hostCommand("alpine", ["sh"], { busybox: false }), ["sh"], "without busybox on the host, the host's sh")
  })
  it("runs python images' python and python3 with the host's python3", () => {
    assert.deepStrictEqual(hostCommand("python:alpine3.23", ["python", "/argo/staging/script"], host), ["python3", "/argo/staging/script"])
    assert.deepStrictEqual(hostCommand("python:3.12", ["/usr/local/bin/python3", "-c", "1"], host), ["python3", "-c", "1"])
    assert.deepStrictEqual(hostCommand("ubuntu", ["python", "-V"], host), ["python", "-V"])
  })
})

const busyboxOnHost = ["/usr/bin/busybox", "/bin/busybox"].some((p) => fs.existsSync(p))

describe("LocalKubelet: image semantics of sh and python (process mode)", () => {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-images-test-"))
  afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }))
  const start = (client: Parameters<typeof LocalKubelet.start>[0]["client"]) =>
    LocalKubelet.start({ client, nodeName: "node-1", namespace: ns, mode: "process", workDir })

  it.effect.skipIf(!busyboxOnHost)("busybox's sh: $RANDOM is a number and ${x:1:1} works, where dash has neither", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* start(client)
      const script = "echo \"random=$RANDOM\"; x=abc; echo \"sub=${x:1:1}\""
      // The same script under the host's dash: no $RANDOM, and a "Bad substitution".
      let dash: string
      try {
        dash = execFileSync("dash", ["-c", `${script} 2>&1`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
      } catch (e) {
        dash = String((e as { stdout?: string }).stdout ?? "") + String((e as { stderr?: string }).stderr ?? "")
      }
      assert.notMatch(dash, /sub=b/)
      yield* client.create("pods", ns, podFor("bb", { container: { image: "busybox:1.36", command: ["sh", "-c", script] } }, { includeScriptOutput: true }))
      yield* client.create("pods", ns, podFor("alp", { script: { image: "alpine:3.23", command: ["sh"], source: script } }, { includeScriptOutput: true }))
      for (const name of ["bb", "alp"]) {
        const pod = yield* awaitFinished(client, name)
        assert.strictEqual(phaseOf(pod), "Succeeded", name)
        const result = (yield* taskResult(client, name)).result ?? ""
        assert.match(result, /^random=\d+\nsub=b$/, name)
      }
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a python image's python is the host's python3", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* start(client)
      yield* client.create(
        "pods",
        ns,
        podFor("py", { container: { image: "python:3.12-alpine", command: ["/usr/local/bin/python", "-c", "import sys; print(sys.version_info[0])"] } }, {
          includeScriptOutput: true
        })
      )
      const pod = yield* awaitFinished(client, "py")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      assert.strictEqual((yield* taskResult(client, "py")).result, "3")
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
