/**
 * The embedded runtime's sandbox (see src/kubelet/sandbox.ts), escape by
 * escape: each test is an attack a pod made before the sandbox had user,
 * network and IPC namespaces, dropped capabilities, read-only host binds, a
 * private /dev/shm and a clean environment, and must fail now.
 *
 * On a host where the sandbox cannot exist (not Linux, not root) the runner
 * falls back to "none" and these tests only check that; as root on Linux the
 * sandbox is required, so a regression to "none" fails them.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, type Scope } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { defaultImages } from "../../src/kubelet/images.js"
import * as LocalKubelet from "../../src/kubelet/LocalKubelet.js"
import { planPod } from "../../src/kubelet/PodPlan.js"
import { makeRunner, type ProcessSpec, type Runner } from "../../src/kubelet/PodProcess.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { awaitFile, awaitFinished, ns, phaseOf, podFor, setup, taskResult } from "./helpers.js"
import { withHostNetwork } from "./podSpec.js"

/**
 * Outside /tmp on purpose: a pod's /tmp is private anyway, but a work
 * directory elsewhere on the root file system is what the overlay's lower
 * layer would show to every pod if the runner did not hide it.
 */
const scratchRoot = fs.existsSync("/var/tmp") ? "/var/tmp" : os.tmpdir()
const workDir = fs.mkdtempSync(path.join(scratchRoot, "flotilla-sandbox-test-"))
afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }))

const sandboxExpected = process.platform === "linux" && process.getuid?.() === 0
const containerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
const unique = () => `flotilla-sandbox-${process.pid}-${Math.random().toString(36).slice(2, 10)}`

/** The sandboxed runner, or undefined (logged) where this host cannot have one. */
const sandbox = (exposed: ReadonlyArray<string> = []): Effect.Effect<Runner | undefined, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runner = yield* makeRunner(workDir, "auto", exposed)
    if (!sandboxExpected) {
      assert.strictEqual(runner.isolation, "none")
      yield* Effect.logWarning("no sandbox on this host (needs root on Linux): skipped")
      return undefined
    }
    assert.strictEqual(runner.isolation, "overlay", "root on Linux must get the sandbox")
    return runner
  })

const newPodDir = () => {
  const podDir = fs.mkdtempSync(path.join(workDir, "pod-"))
  fs.mkdirSync(path.join(podDir, "tmp"))
  return podDir
}

const runScript = (runner: Runner, script: string, extra: Partial<ProcessSpec> = {}) =>
  Effect.gen(function*() {
    const podDir = extra.podDir ?? newPodDir()
    const result = yield* runner.run({ argv: ["/bin/sh", "-c", script], env: { PATH: containerPath }, outputPaths: [], podDir, ...extra })
    return { ...result, podDir }
  })

/** `name=value` lines of a pod's stdout. */
const fields = (stdout: string): Record<string, string> =>
  Object.fromEntries(stdout.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))

const capability = { dacReadSearch: 2, netAdmin: 12, sysModule: 16, sysRawio: 17, sysChroot: 18, sysPtrace: 19, sysAdmin: 21, mknod: 27 } as const

describe("embedded runtime sandbox", () => {
  it.effect("root in a pod is an unprivileged uid on the host, without admin capabilities; the runner still reads its files", () =>
    Effect.gen(function*() {
      const runner = yield* sandbox()
      if (runner === undefined) return
      const result = yield* runScript(
        runner,
        "echo uid=$(id -u); echo x > /tmp/in-tmp; echo y > /at-root; echo caps=$(grep '^CapEff' /proc/self/status | cut -f2)",
        { outputPaths: ["/tmp/in-tmp", "/at-root"] }
      )
      assert.strictEqual(result.exitCode, 0, result.log)
      const out = fields(result.stdout)
      assert.strictEqual(out.uid, "0", "root inside the pod")
      // The files' owners on the host: the uid that root in the pod maps to.
      const tmpOwner = fs.statSync(path.join(result.podDir, "tmp", "in-tmp")).uid
      const upperOwner = fs.statSync(path.join(result.podDir, "upper", "at-root")).uid
      assert.notStrictEqual(tmpOwner, 0)
      assert.strictEqual(upperOwner, tmpOwner)
      assert.deepStrictEqual(result.files, { "/tmp/in-tmp": "x\n", "/at-root": "y\n" })
      const caps = BigInt(`0x${out.caps}`)
      for (const [name, bit] of Object.entries(capability)) {
        assert.strictEqual(caps & (1n << BigInt(bit)), 0n, `the pod must not hold CAP_${name}`)
      }
    }).pipe(Effect.scoped))

  it.effect("a pod cannot read a host file only root may read (a node agent's kubeconfig)", () =>
    Effect.gen(function*() {
      const runner = yield* sandbox()
      if (runner === undefined) return
      const dir = fs.mkdtempSync(path.join(scratchRoot, "flotilla-agent-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      fs.chmodSync(dir, 0o755)
      const kubeconfig = path.join(dir, "node-agent.yaml")
      fs.writeFileSync(kubeconfig, "token: secret-token\n", { mode: 0o600 })
      const result = yield* runScript(runner, `cat ${kubeconfig}`)
      assert.notStrictEqual(result.exitCode, 0)
      assert.notInclude(result.stdout, "secret-token")
    }).pipe(Effect.scoped))

  it.effect("host mounts are read-only in a pod: nothing it writes under /dev, /dev/shm or a bound host folder reaches the host", () =>
    Effect.gen(function*() {
      // A world-writable host folder bound into every pod (as the kubelet binds its PATH folders):
      // only the read-only bind stops the pod.
      const exposed = fs.mkdtempSync(path.join(scratchRoot, "flotilla-exposed-"))
      fs.chmodSync(exposed, 0o1777)
      const runner = yield* sandbox([exposed])
      const name = unique()
      const targets = [`/dev/shm/${name}`, `/dev/${name}`, `${exposed}/${name}`]
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const t of targets) fs.rmSync(t, { force: true })
          fs.rmSync(exposed, { recursive: true, force: true })
        })
      )
      if (runner === undefined) return
      const result = yield* runScript(runner, targets.map((t) => `echo x > ${t}`).join("; "))
      for (const t of targets) assert.isFalse(fs.existsSync(t), `${t} written on the host: ${result.log}`)
    }).pipe(Effect.scoped))

  it.effect("two running pods have distinct /dev/shm", () =>
    Effect.gen(function*() {
      const runner = yield* sandbox()
      if (runner === undefined) return
      const name = unique()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(`/dev/shm/${name}`, { force: true })))
      // The first pod writes its /dev/shm, says so, and keeps running.
      const first = newPodDir()
      const fiber = yield* Effect.forkChild(runScript(runner, `echo mine > /dev/shm/${name} && touch /tmp/ready; exec sleep 60`, { podDir: first }))
      yield* awaitFile(path.join(first, "tmp", "ready"))
      const second = yield* runScript(runner, `cat /dev/shm/${name}`)
      yield* Fiber.interrupt(fiber)
      assert.notStrictEqual(second.exitCode, 0, second.log)
      assert.notInclude(second.stdout, "mine")
    }).pipe(Effect.scoped))

  it.effect("a pod cannot read another running pod's /tmp files", () =>
    Effect.gen(function*() {
      const runner = yield* sandbox()
      if (runner === undefined) return
      const first = newPodDir()
      const fiber = yield* Effect.forkChild(runScript(runner, "echo first-pod-secret > /tmp/secret && touch /tmp/ready; exec sleep 60", { podDir: first }))
      yield* awaitFile(path.join(first, "tmp", "ready"))
      // Every host path of the first pod's /tmp: its own, and any pod's under the kubelet's work directory.
      const second = yield* runScript(runner, `cat ${first}/tmp/secret; cat ${workDir}/*/tmp/secret; cat /proc/*/root/tmp/secret`)
      yield* Fiber.interrupt(fiber)
      assert.notInclude(second.stdout, "first-pod-secret", second.log)
    }).pipe(Effect.scoped))

  it.effect("a pod can neither chroot out (and write on the host root), mount, nor make a user namespace to get those rights back", () =>
    Effect.gen(function*() {
      const runner = yield* sandbox()
      if (runner === undefined) return
      const escaped = `/${unique()}`
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(escaped, { force: true })))
      // The classic escape: chroot into a subfolder keeps the cwd outside it, so `..` climbs to the real root.
      const python = [
        "import os",
        "os.mkdir('/escape')",
        "os.chroot('/escape')",
        "[os.chdir('..') for _ in range(64)]",
        "os.chroot('.')",
        `open('${escaped}', 'w').write('escaped')`
      ].join("\n")
      const script = [
        `python3 -c "${python}"; echo chroot=$?`,
        "mount -t tmpfs tmpfs /mnt; echo mount=$?",
        "unshare --user --map-root-user --mount true; echo userns=$?"
      ].join("\n")
      const result = yield* runScript(runner, script)
      const out = fields(result.stdout)
      assert.isFalse(fs.existsSync(escaped), `the pod wrote ${escaped} on the host`)
      assert.notStrictEqual(out.chroot, "0", result.log)
      assert.notStrictEqual(out.mount, "0", result.log)
      assert.notStrictEqual(out.userns, "0", result.log)
      assert.isDefined(out.userns, result.log)
    }).pipe(Effect.scoped))
})

describe("embedded runtime sandbox: what the runner reads and binds for a pod", () => {
  it.effect("output files are read as the pod saw them: a link to a host secret, a FIFO or a device yield nothing", () =>
    Effect.gen(function*() {
      const runner = yield* sandbox()
      if (runner === undefined) return
      const dir = fs.mkdtempSync(path.join(scratchRoot, "flotilla-agent-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      fs.chmodSync(dir, 0o755)
      const secret = path.join(dir, "node-agent.yaml")
      fs.writeFileSync(secret, "token: secret-token\n", { mode: 0o600 })
      const result = yield* runScript(
        runner,
        `ln -s ${secret} /tmp/linked; ln -s ${secret} /linked; ln -s ${dir} /tmp/folder; mkfifo /tmp/fifo; ln -s /dev/zero /tmp/zero; ` +
          "echo mine > /tmp/own; ln -s /tmp/own /tmp/link-to-own",
        { outputPaths: ["/tmp/linked", "/linked", "/tmp/folder/node-agent.yaml", "/tmp/fifo", "/tmp/zero", "/tmp/link-to-own", "/etc/os-release"] }
      )
      assert.strictEqual(result.exitCode, 0, result.log)
      assert.notInclude(JSON.stringify(result.files), "secret-token")
      assert.isUndefined(result.files["/tmp/fifo"])
      assert.isUndefined(result.files["/tmp/zero"])
      // Links inside the pod's own view still work, and what the pod may read on the host is read.
      assert.strictEqual(result.files["/tmp/link-to-own"], "mine\n")
      assert.strictEqual(result.files["/etc/os-release"], fs.readFileSync("/etc/os-release", "utf8"))
    }).pipe(Effect.scoped))

  it.effect("hostPath volumes: a read-only one cannot be written; a writable one is written as the pod's unprivileged uid", () =>
    Effect.gen(function*() {
      const runner = yield* sandbox()
      if (runner === undefined) return
      const readOnly = fs.mkdtempSync(path.join(scratchRoot, "flotilla-hostpath-ro-"))
      const writable = fs.mkdtempSync(path.join(scratchRoot, "flotilla-hostpath-rw-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => [readOnly, writable].forEach((d) => fs.rmSync(d, { recursive: true, force: true }))))
      for (const d of [readOnly, writable]) fs.chmodSync(d, 0o1777)
      const result = yield* runScript(runner, "echo x > /data/ro/new; echo x > /data/rw/new; echo y > /data/rw/out", {
        hostPaths: [
          { hostPath: readOnly, mountPath: "/data/ro", readOnly: true },
          { hostPath: writable, mountPath: "/data/rw", readOnly: false }
        ],
        outputPaths: ["/data/rw/out"]
      })
      assert.isFalse(fs.existsSync(path.join(readOnly, "new")), result.log)
      assert.strictEqual(fs.readFileSync(path.join(writable, "new"), "utf8"), "x\n", result.log)
      assert.notStrictEqual(fs.statSync(path.join(writable, "new")).uid, 0)
      assert.strictEqual(result.files["/data/rw/out"], "y\n")
    }).pipe(Effect.scoped))

  it("planPod passes hostNetwork and the main container's hostPath mounts, and drops mounts that would leave them", () => {
    const pod = podFor("vol", { container: { image: "busybox", command: ["true"] } })
    const spec = pod.spec as { containers: Array<Record<string, unknown>> }
    const withVolumes = {
      ...pod,
      spec: {
        ...spec,
        hostNetwork: true,
        volumes: [{ name: "h", hostPath: { path: "/srv/data/" } }, { name: "e", emptyDir: {} }],
        containers: spec.containers.map((c) =>
          c.name === "main"
            ? {
              ...c,
              volumeMounts: [
                { name: "h", mountPath: "/mnt/../data" },
                { name: "h", mountPath: "/sub", subPath: "a/b", readOnly: true },
                { name: "h", mountPath: "/escape", subPath: "../etc" },
                { name: "h", mountPath: "/" },
                { name: "e", mountPath: "/scratch" }
              ]
            }
            : c
        )
      }
    }
    const plan = planPod(withVolumes, defaultImages)
    assert.strictEqual(plan._tag, "PodPlan")
    if (plan._tag !== "PodPlan") return
    assert.isTrue(plan.hostNetwork)
    assert.deepStrictEqual(plan.hostPaths, [
      { hostPath: "/srv/data", mountPath: "/data", readOnly: false },
      { hostPath: "/srv/data/a/b", mountPath: "/sub", readOnly: true }
    ])
    const bare = planPod(pod, defaultImages)
    if (bare._tag === "PodPlan") {
      assert.isFalse(bare.hostNetwork)
      assert.deepStrictEqual(bare.hostPaths, [])
    }
  })
})

describe("embedded runtime sandbox: network and environment (through the kubelet)", () => {
  /** A loopback listener on the host, closed with the scope. */
  const loopbackServer = Effect.acquireRelease(
    Effect.callback<net.Server>((resume) => {
      const server = net.createServer((socket) => socket.end())
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  )
  const dial = (port: number) => `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' 2>/dev/null; echo dial=$?; echo hostname=$(cat /proc/sys/kernel/hostname)`

  it.effect("without hostNetwork a pod cannot reach the host's loopback; with hostNetwork it can", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const kubelet = yield* LocalKubelet.start({ client, nodeName: "node-1", namespace: ns, mode: "process", workDir })
      if (!sandboxExpected) return
      assert.strictEqual(kubelet.isolation, "overlay")
      const server = yield* loopbackServer
      const port = (server.address() as net.AddressInfo).port
      const pod = (name: string) => podFor(name, { container: { image: "busybox", command: ["sh", "-c", dial(port)] } }, { includeScriptOutput: true })
      yield* client.create("pods", ns, pod("own-net"))
      yield* client.create("pods", ns, withHostNetwork(pod("host-net")))
      assert.strictEqual(phaseOf(yield* awaitFinished(client, "own-net")), "Succeeded")
      assert.strictEqual(phaseOf(yield* awaitFinished(client, "host-net")), "Succeeded")
      const own = fields((yield* taskResult(client, "own-net")).result ?? "")
      const host = fields((yield* taskResult(client, "host-net")).result ?? "")
      assert.notStrictEqual(own.dial, "0", "a pod's own network namespace must not reach the host's 127.0.0.1")
      assert.strictEqual(own.hostname, "own-net", "a pod's own UTS namespace carries its name")
      assert.strictEqual(host.dial, "0", `hostNetwork: the host's loopback is the pod's ${JSON.stringify(yield* kubelet.logs(ns, "host-net"))}`)
    }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))

  for (const isolation of ["auto", "none"] as const) {
    it.effect(`a pod sees only its spec's variables and the kubelet's, never the runner's environment (isolation ${isolation})`, () =>
      Effect.gen(function*() {
        const { client } = yield* setup
        const secret = unique()
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            process.env.FLOTILLA_RUNNER_SECRET = secret
          }),
          () => Effect.sync(() => delete process.env.FLOTILLA_RUNNER_SECRET)
        )
        yield* LocalKubelet.start({ client, nodeName: "node-1", namespace: ns, mode: "process", workDir, isolation })
        yield* client.create(
          "pods",
          ns,
          podFor("env-only", { container: { image: "busybox", command: ["env"] } }, {
            includeScriptOutput: true,
            env: [{ name: "FROM_SPEC", value: "yes" }]
          })
        )
        assert.strictEqual(phaseOf(yield* awaitFinished(client, "env-only")), "Succeeded")
        const env = fields((yield* taskResult(client, "env-only")).result ?? "")
        assert.notInclude(Object.values(env).join("\n"), secret)
        assert.isUndefined(env.FLOTILLA_RUNNER_SECRET)
        assert.strictEqual(env.FROM_SPEC, "yes")
        assert.strictEqual(env.HOSTNAME, "env-only")
        assert.isTrue((env.PATH ?? "").endsWith(`:${containerPath}`), `PATH is the kubelet's folders, then a container's default: ${env.PATH}`)
        // Nothing else of the runner's own environment (USER, NODE_OPTIONS, VITEST...) is passed on.
        const kubeletSets = new Set(["PATH", "HOSTNAME", "HOME"])
        assert.deepStrictEqual(Object.keys(process.env).filter((key) => !kubeletSets.has(key) && env[key] !== undefined), [])
      }).pipe(Effect.scoped, Effect.provide(InMemoryKube.layer)))
  }

  it.effect("the unisolated fallback says so in the log", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      yield* makeRunner(workDir, "none").pipe(
        Effect.scoped,
        Effect.provide(Logger.layer([Logger.map(Logger.formatSimple, (line) => void lines.push(line))]))
      )
      assert.isTrue(lines.some((l) => l.includes("UNISOLATED")), lines.join("\n"))
    }))
})
