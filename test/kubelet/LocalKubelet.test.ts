import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as LocalKubelet from "../../src/kubelet/LocalKubelet.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import {
  awaitFile,
  awaitFinished,
  awaitRunning,
  mainTerminated,
  ns,
  phaseOf,
  podFor,
  processExists,
  setup,
  taskResult
} from "./helpers.js"
import { sharedDir, withHostPath } from "./podSpec.js"

// Pods see a private /tmp, /dev/shm and copy of the root file system, and every host folder
// read-only; a hostPath volume (`withHostPath` of a `sharedDir`) is what they share with the test.
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-kubelet-test-"))

afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }))

const startKubelet = (client: Parameters<typeof LocalKubelet.start>[0]["client"], nodeName = "node-1") =>
  LocalKubelet.start({ client, nodeName, namespace: ns, mode: "process", workDir })

describe("LocalKubelet (process mode)", () => {
  it.effect("runs a container, binds it, reports Succeeded with exit code 0 and a task result", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const kubelet = yield* startKubelet(client)
      yield* client.create("pods", ns, podFor("hello", { container: { image: "busybox", command: ["echo"], args: ["hello"] } }, { includeScriptOutput: true }))
      const pod = yield* awaitFinished(client, "hello")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      assert.strictEqual((pod.spec as { nodeName?: string }).nodeName, "node-1")
      const status = pod.status as Record<string, unknown>
      assert.strictEqual(status.podIP, "127.0.0.1")
      assert.strictEqual(status.hostIP, "127.0.0.1")
      assert.isString(status.startTime)
      const term = mainTerminated(pod)!
      assert.strictEqual(term.exitCode, 0)
      assert.strictEqual(term.reason, "Completed")
      assert.isString(term.startedAt)
      assert.isString(term.finishedAt)
      const outputs = yield* taskResult(client, "hello")
      assert.deepStrictEqual(outputs, { result: "hello", exitCode: "0" })
      const tr = yield* client.get("workflowtaskresults", ns, "wf-hello")
      assert.strictEqual(tr.metadata.labels?.["workflows.argoproj.io/workflow"], "wf")
      assert.strictEqual(tr.metadata.labels?.["workflows.argoproj.io/report-outputs-completed"], "true")
      assert.deepStrictEqual(yield* kubelet.logs(ns, "hello"), Option.some("hello\n"))
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a failing command ends Failed with its exit code and a message", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* startKubelet(client)
      yield* client.create("pods", ns, podFor("fail", { container: { image: "busybox", command: ["sh", "-c", "echo oops >&2; exit 3"] } }))
      const pod = yield* awaitFinished(client, "fail")
      assert.strictEqual(phaseOf(pod), "Failed")
      assert.strictEqual((pod.status as { message?: string }).message, "Error (exit code 3)")
      const term = mainTerminated(pod)!
      assert.strictEqual(term.exitCode, 3)
      assert.strictEqual(term.reason, "Error")
      const outputs = yield* taskResult(client, "fail")
      assert.strictEqual(outputs.exitCode, "3")
      assert.isUndefined(outputs.result)
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("captures a script template's stdout as result (python when present, else sh)", () =>
    Effect.gen(function*() {
      const { client, kube } = yield* setup
      const logs: Array<string> = []
      yield* LocalKubelet.start({
        client,
        nodeName: "node-1",
        namespace: ns,
        mode: "process",
        workDir,
        logSink: {
          writeLogs: (namespace, name, container, text) =>
            kube.setPodLog("local", namespace, name, container, text).pipe(Effect.tap(() => Effect.sync(() => logs.push(name))))
        }
      })
      const python = ["python3", "python"].find((p) =>
        (process.env.PATH ?? "").split(":").some((d) => fs.existsSync(path.join(d, p)))
      )
      const script = python !== undefined
        ? { image: "python:alpine3.23", command: [python], source: "import sys\nprint(6 * 7)\nprint('to stderr', file=sys.stderr)\n" }
        : { image: "alpine:3.23", command: ["sh"], source: "echo $((6 * 7))\necho to stderr >&2\n" }
      // ARGO_INCLUDE_SCRIPT_OUTPUT=true: what the controller sets when the result is referenced.
      yield* client.create("pods", ns, podFor("script", { script }, { includeScriptOutput: true }))
      const pod = yield* awaitFinished(client, "script")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      const outputs = yield* taskResult(client, "script")
      assert.deepStrictEqual(outputs, { result: "42", exitCode: "0" })
      assert.deepStrictEqual(logs, ["script"])
      const log = yield* client.logs(ns, "script", "main")
      assert.include(log, "42")
      assert.include(log, "to stderr")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("reads output parameters from valueFrom.path, trimming one newline", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* startKubelet(client)
      yield* client.create(
        "pods",
        ns,
        podFor("out", {
          container: { image: "busybox", command: ["sh", "-c"], args: ["echo -n hello world > /tmp/hello_world.txt; printf 'x\\n\\n' > /tmp/two.txt"] },
          outputs: {
            parameters: [
              { name: "hello-param", valueFrom: { path: "/tmp/hello_world.txt" } },
              { name: "two", valueFrom: { path: "/tmp/two.txt" } }
            ]
          }
        })
      )
      const pod = yield* awaitFinished(client, "out")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      const outputs = yield* taskResult(client, "out")
      assert.deepStrictEqual(outputs.parameters, [{ name: "hello-param", value: "hello world" }, { name: "two", value: "x\n" }])
      assert.strictEqual(outputs.exitCode, "0")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a missing output file uses valueFrom.default, and fails the pod without one", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* startKubelet(client)
      const outputs = (withDefault: boolean) => ({
        parameters: [{ name: "p", valueFrom: { path: "/tmp/never-written.txt", ...(withDefault ? { default: "fallback" } : {}) } }]
      })
      yield* client.create("pods", ns, podFor("with-default", { container: { image: "busybox", command: ["true"] }, outputs: outputs(true) }))
      yield* client.create("pods", ns, podFor("no-default", { container: { image: "busybox", command: ["true"] }, outputs: outputs(false) }))
      const ok = yield* awaitFinished(client, "with-default")
      assert.strictEqual(phaseOf(ok), "Succeeded")
      assert.deepStrictEqual((yield* taskResult(client, "with-default")).parameters, [{ name: "p", value: "fallback" }])
      const bad = yield* awaitFinished(client, "no-default")
      assert.strictEqual(phaseOf(bad), "Failed")
      const message = (bad.status as { message?: string }).message ?? ""
      assert.include(message, "/tmp/never-written.txt")
      assert.include(message, "no such file or directory")
      assert.strictEqual(mainTerminated(bad)!.exitCode, 0)
      assert.isUndefined((yield* taskResult(client, "no-default")).parameters)
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("an image without command and without a known entrypoint fails with a clear message", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* startKubelet(client)
      yield* client.create("pods", ns, podFor("noimg", { container: { image: "example.com/unknown:1.0", args: ["x"] } }))
      const pod = yield* awaitFinished(client, "noimg")
      assert.strictEqual(phaseOf(pod), "Failed")
      assert.strictEqual(
        (pod.status as { message?: string }).message,
        `image "example.com/unknown:1.0": no entrypoint known: set command, or add it to the configmap key "images"`
      )
      assert.strictEqual(mainTerminated(pod)!.reason, "StartError")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("looks the entrypoint up in the images map (argosay stand-in writes an output file)", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* LocalKubelet.start({
        client,
        nodeName: "node-1",
        namespace: ns,
        mode: "process",
        workDir,
        images: { "example.com/say": { cmd: ["argosay"], args: ["echo", "from default args"] } }
      })
      yield* client.create(
        "pods",
        ns,
        podFor("say", {
          container: { image: "argoproj/argosay:v2", args: ["echo", "real-value", "/tmp/out.txt"] },
          outputs: { parameters: [{ name: "out", valueFrom: { path: "/tmp/out.txt" } }] }
        })
      )
      yield* client.create("pods", ns, podFor("say-default", { container: { image: "example.com/say:latest" } }, { includeScriptOutput: true }))
      const pod = yield* awaitFinished(client, "say")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      assert.deepStrictEqual((yield* taskResult(client, "say")).parameters, [{ name: "out", value: "real-value" }])
      const pod2 = yield* awaitFinished(client, "say-default")
      assert.strictEqual(phaseOf(pod2), "Succeeded")
      assert.strictEqual((yield* taskResult(client, "say-default")).result, "from default args")
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("entrypoints in a folder under /tmp on the kubelet's PATH (a checkout under /tmp) are found inside the pod", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      // A checkout cloned under /tmp: its images/ folder is below the path every pod gets a private copy of.
      const checkout = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-checkout-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(checkout, { recursive: true, force: true })))
      const standIns = path.join(checkout, "images")
      fs.mkdirSync(standIns)
      fs.writeFileSync(path.join(standIns, "stand-in-say"), "#!/bin/sh\necho \"said $1\" > \"$2\"\n", { mode: 0o755 })
      const kubelet = yield* LocalKubelet.start({ client, nodeName: "node-1", namespace: ns, mode: "process", workDir, pathPrepend: [standIns] })
      yield* client.create(
        "pods",
        ns,
        podFor("stand-in", {
          container: { image: "example.com/any", command: ["stand-in-say"], args: ["hi", "/tmp/said.txt"] },
          outputs: { parameters: [{ name: "said", valueFrom: { path: "/tmp/said.txt" } }] }
        })
      )
      const pod = yield* awaitFinished(client, "stand-in")
      assert.strictEqual(phaseOf(pod), "Succeeded", JSON.stringify(pod.status))
      assert.deepStrictEqual((yield* taskResult(client, "stand-in")).parameters, [{ name: "said", value: "said hi" }])
      // With overlay isolation the pod sees the folder read-only: it cannot change the checkout.
      if (kubelet.isolation !== "overlay") return
      yield* client.create("pods", ns, podFor("write-back", { container: { image: "busybox", command: ["sh", "-c", `echo x > ${standIns}/new`] } }))
      yield* awaitFinished(client, "write-back")
      assert.isFalse(fs.existsSync(path.join(standIns, "new")))
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  it.effect("env vars (values, $(VAR) references, fieldRefs) reach the process, and workingDir applies", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      yield* startKubelet(client)
      yield* client.create(
        "pods",
        ns,
        podFor(
          "env",
          {
            container: {
              image: "busybox",
              command: ["sh", "-c", "echo \"$GREETING|$FULL|$MY_POD|$MY_NS|$ARGO_CONTAINER_NAME|$(pwd)\""],
              workingDir: "/usr"
            }
          },
          {
            includeScriptOutput: true,
            env: [
              { name: "GREETING", value: "hi" },
              { name: "FULL", value: "$(GREETING) there" },
              { name: "MY_POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
              { name: "MY_NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } }
            ]
          }
        )
      )
      const pod = yield* awaitFinished(client, "env")
      assert.strictEqual(phaseOf(pod), "Succeeded")
      assert.strictEqual((yield* taskResult(client, "env")).result, `hi|hi there|env|${ns}|main|/usr`)
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("two concurrent pods writing the same fixed paths do not clash", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const kubelet = yield* startKubelet(client)
      // Without overlay isolation the pods take turns (see PodProcess), and this rendezvous would deadlock.
      if (kubelet.isolation !== "overlay") return yield* Effect.logWarning("overlay isolation unavailable on this host: skipped")
      // Each pod writes its name, waits until the other has written too (both
      // files exist in the shared scratch dir), then reads its own file back.
      const rendezvous = sharedDir("flotilla-rendezvous-")
      const script = (me: string, other: string) =>
        `echo ${me} > /tmp/out.txt; echo ${me} > /output; touch ${rendezvous}/${me}; ` +
        `while [ ! -e ${rendezvous}/${other} ]; do sleep 0.01; done; cat /tmp/out.txt /output`
      for (const [me, other] of [["a", "b"], ["b", "a"]]) {
        yield* client.create(
          "pods",
          ns,
          withHostPath(podFor(me, {
            container: { image: "busybox", command: ["sh", "-c", script(me, other)] },
            outputs: { parameters: [{ name: "tmp", valueFrom: { path: "/tmp/out.txt" } }, { name: "root", valueFrom: { path: "/output" } }] }
          }, { includeScriptOutput: true }), rendezvous)
        )
      }
      const a = yield* awaitFinished(client, "a")
      const b = yield* awaitFinished(client, "b")
      fs.rmSync(rendezvous, { recursive: true, force: true })
      assert.strictEqual(phaseOf(a), "Succeeded")
      assert.strictEqual(phaseOf(b), "Succeeded")
      assert.strictEqual((yield* taskResult(client, "a")).result, "a\na")
      assert.strictEqual((yield* taskResult(client, "b")).result, "b\nb")
      assert.isFalse(fs.existsSync("/output"), "pods must not write the host's /output")
      assert.deepStrictEqual((yield* taskResult(client, "a")).parameters, [{ name: "tmp", value: "a" }, { name: "root", value: "a" }])
      assert.deepStrictEqual((yield* taskResult(client, "b")).parameters, [{ name: "tmp", value: "b" }, { name: "root", value: "b" }])
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("runs a pod once across a kubelet restart; a pod left Running is failed, not rerun", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const counter = sharedDir("flotilla-once-")
      const appendRun = (name: string) => `echo run >> ${counter}/${name}.log && touch ${counter}/${name}`
      // First kubelet: runs "done" to completion, and leaves "stuck" running when it stops.
      yield* Effect.scoped(Effect.gen(function*() {
        yield* startKubelet(client)
        yield* client.create("pods", ns, withHostPath(podFor("done", { container: { image: "busybox", command: ["sh", "-c", appendRun("done")] } }), counter))
        yield* awaitFinished(client, "done")
        yield* client.create(
          "pods",
          ns,
          withHostPath(podFor("stuck", { container: { image: "busybox", command: ["sh", "-c", `${appendRun("stuck")}; exec sleep 60`] } }), counter)
        )
        yield* awaitRunning(client, "stuck")
        yield* awaitFile(`${counter}/stuck`)
      }))
      // The first kubelet's scope closed: its process was killed, the pod is still Running.
      const before = yield* client.get("pods", ns, "stuck")
      assert.strictEqual(phaseOf(before), "Running")
      yield* startKubelet(client)
      const stuck = yield* awaitFinished(client, "stuck")
      assert.strictEqual(phaseOf(stuck), "Failed")
      assert.include((stuck.status as { message?: string }).message ?? "", "kubelet stopped")
      // A new pod proves the second kubelet is working before we count runs.
      yield* client.create("pods", ns, podFor("after", { container: { image: "busybox", command: ["true"] } }))
      yield* awaitFinished(client, "after")
      assert.strictEqual(fs.readFileSync(`${counter}/done.log`, "utf8"), "run\n")
      assert.strictEqual(fs.readFileSync(`${counter}/stuck.log`, "utf8"), "run\n")
      fs.rmSync(counter, { recursive: true, force: true })
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("a pod deleted while running is killed and not reported", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const kubelet = yield* startKubelet(client)
      const marker = sharedDir("flotilla-kill-")
      // The pod writes its pid and sleeps; once deleted, that pid must be gone. (An odd duration of
      // its own: processes are looked for machine-wide, where another `sleep 60` may well run.)
      const nap = `59.${process.pid}`
      yield* client.create(
        "pods",
        ns,
        withHostPath(podFor("victim", { container: { image: "busybox", command: ["sh", "-c", `sleep ${nap} & echo $! > ${marker}/pid.tmp; mv ${marker}/pid.tmp ${marker}/pid; wait`] } }), marker)
      )
      yield* awaitRunning(client, "victim")
      yield* awaitFile(`${marker}/pid`)
      yield* client.delete("pods", ns, "victim")
      // FiberMap.remove waits for the process to be reaped, so `running` drops only after the kill.
      const waitIdle: Effect.Effect<void> = Effect.flatMap(kubelet.running, (n) => n === 0 ? Effect.void : Effect.flatMap(Effect.yieldNow, () => waitIdle))
      yield* waitIdle
      const pid = fs.readFileSync(`${marker}/pid`, "utf8").trim()
      assert.isFalse(processExists((c) => c.includes(`${marker}/pid`)), "the pod's shell must be killed")
      assert.isFalse(processExists((c) => c === `sleep\u0000${nap}\u0000`), `its child sleep (pid ${pid} in the pod) must be killed`)
      const results = yield* client.list("workflowtaskresults", ns)
      assert.deepStrictEqual(results.items.map((r) => r.metadata.name), [])
      fs.rmSync(marker, { recursive: true, force: true })
    }).pipe(Effect.provide(InMemoryKube.layer)))

  it.effect("stops every process when the kubelet's scope closes", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const marker = sharedDir("flotilla-scope-")
      const nap = `61.${process.pid}` // its own duration: processes are looked for machine-wide
      const fiber = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        yield* startKubelet(client)
        yield* client.create("pods", ns, withHostPath(podFor("long", { container: { image: "busybox", command: ["sh", "-c", `touch ${marker}/started; exec sleep ${nap}`] } }), marker))
        yield* awaitRunning(client, "long")
        yield* awaitFile(`${marker}/started`)
      })))
      yield* Fiber.join(fiber)
      assert.isFalse(processExists((c) => c === `sleep\u0000${nap}\u0000`))
      fs.rmSync(marker, { recursive: true, force: true })
    }).pipe(Effect.provide(InMemoryKube.layer)))
})

describe("LocalKubelet (fallback isolation: none)", () => {
  it.effect("runs scripts with a per-pod TMPDIR and serialises pods that read back fixed output paths", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const kubelet = yield* LocalKubelet.start({ client, nodeName: "plain", namespace: ns, mode: "process", workDir, isolation: "none" })
      assert.strictEqual(kubelet.isolation, "none")
      const fixed = path.join(os.tmpdir(), `flotilla-none-${process.pid}.txt`)
      for (const me of ["p", "q"]) {
        yield* client.create(
          "pods",
          ns,
          podFor(me, {
            script: { image: "alpine", command: ["sh"], source: `echo ${me} > ${fixed}; echo "$TMPDIR" | grep -q ${workDir} && echo ${me}-tmp` },
            outputs: { parameters: [{ name: "v", valueFrom: { path: fixed } }] }
          }, { includeScriptOutput: true })
        )
      }
      const p = yield* awaitFinished(client, "p")
      const q = yield* awaitFinished(client, "q")
      assert.strictEqual(phaseOf(p), "Succeeded")
      assert.strictEqual(phaseOf(q), "Succeeded")
      assert.deepStrictEqual(yield* taskResult(client, "p"), { parameters: [{ name: "v", value: "p" }], result: "p-tmp", exitCode: "0" })
      assert.deepStrictEqual(yield* taskResult(client, "q"), { parameters: [{ name: "v", value: "q" }], result: "q-tmp", exitCode: "0" })
      fs.rmSync(fixed, { force: true })
    }).pipe(Effect.provide(InMemoryKube.layer)))
})
