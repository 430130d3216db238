/**
 * Conformance suite (see suite.ts) on the embedded runtime (process mode:
 * real host processes): every upstream Argo example, as written and as its
 * multi-cluster variant, on in-memory clusters; the examples' WorkflowTemplates,
 * ClusterWorkflowTemplates and ConfigMaps are created first, and the loopback
 * server their `url` header lines point at is started, and one real S3
 * server (SeaweedFS, test/support/s3Server.ts) for the run: the artifact
 * repository of every cluster (the configmap's `artifactRepository`, its
 * Secret in every namespace where pods run, in every cluster), and the server
 * the examples' `s3` header lines point their own locations at.
 *
 * Prints `PASS <run>` / `FAIL <run>: <reason>` per workflow run, then
 * `N passed, N failed`, and exits non-zero when anything failed.
 * Env: see suite.ts (FLOTILLA_CONFORMANCE_TIMEOUT defaults to 120 seconds here).
 */
import { PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Fiber, References } from "effect"
import * as Embedded from "../../src/embedded/EmbeddedRuntime.js"
import { InMemoryKube } from "../../src/testing/InMemoryKube.js"
import { startS3Server } from "../support/s3Server.js"
import { exitWith, judge, loadExamples, manifestOf, placementHints, report, resourceOf, runVariants, s3SecretsOf, startLoopbackServer, supportObjects, timedOut, timeoutFor, timeoutSeconds, type Variant, variantsOf, verbose } from "./suite.js"

const timeout = timeoutSeconds(120)

const main = Effect.gen(function*() {
  // The examples' http templates call it instead of the public URLs their `url` header lines name.
  const server = yield* Effect.acquireRelease(Effect.promise(startLoopbackServer), (s) => Effect.promise(s.close))
  // The artifact repository, and the S3 server the examples' own locations are moved to.
  const s3 = yield* Effect.acquireRelease(Effect.promise(() => startS3Server()), (s) => Effect.promise(s.stop))
  const bucket = "flotilla-conformance"
  yield* Effect.promise(() => s3.createBucket(bucket))
  const examples = loadExamples(server.base, s3)
  for (const bucketOrObject of [...new Set(examples.flatMap((ex) => (ex.expect.s3 ?? []).map((l) => JSON.stringify([l.bucket, l.key]))))]) {
    const [b, key] = JSON.parse(bucketOrObject) as [string, string | null]
    yield* Effect.promise(() => s3.createBucket(b).catch((e: Error) => /BucketAlready/.test(e.message) ? undefined : Promise.reject(e)))
    if (key !== null) {
      const client = s3.client()
      yield* Effect.promise(() => client.send(new PutObjectCommand({ Bucket: b, Key: key, Body: "an object put by the conformance suite\n" })).finally(() => client.destroy()))
    }
  }
  const variants = variantsOf(examples)
  const support = supportObjects()
  const placement = Embedded.placementOf([...variants.map((v) => v.wf), ...placementHints(support)])
  const { admin, controller, kube } = yield* Embedded.start(placement, {
    mode: "process",
    artifactRepository: { endpoint: s3.endpoint, bucket, accessKey: s3.accessKey, secretKey: s3.secretKey },
    // The examples' http inputs are moved to the loopback server: allowed explicitly, as nothing else on 127.0.0.1 is.
    artifactAllowedEndpoints: [server.base]
  })
  // The Secrets the examples' own S3 locations name, with the server's keys, where pods run (as the user creates them).
  for (const secret of new Map(examples.flatMap((ex) => s3SecretsOf(ex)).map((s) => [s.name, s])).values()) {
    const keys = s3
    const data = Object.fromEntries([...secret.keys].map(([key, holds]) => [key, Buffer.from(holds === "accessKey" ? keys.accessKey : keys.secretKey).toString("base64")]))
    for (const [cluster, namespaces] of placement.namespaces) {
      for (const ns of namespaces) {
        yield* kube.adminClient(cluster).create("secrets", ns, { apiVersion: "v1", kind: "Secret", metadata: { namespace: ns, name: secret.name }, type: "Opaque", data })
      }
    }
  }
  // The templates and configmaps first: a workflow referencing one that is not there yet errors at once.
  for (const { object } of support) yield* admin.create(resourceOf(object), object.metadata.namespace, object)

  const attempt = (v: Variant) =>
    Effect.gen(function*() {
      const ns = v.wf.metadata.namespace!
      const name = v.wf.metadata.name!
      const started = Date.now()
      const seconds = timeoutFor(v.ex, timeout)
      // Subscribe before submitting: a workflow with a TTL may be gone soon after it completes.
      const done = yield* Effect.forkChild(
        Embedded.awaitWorkflow(controller, ns, name, Embedded.isCompleted).pipe(
          Effect.timeoutOrElse({ duration: `${seconds} seconds`, orElse: () => Effect.succeed("timeout" as const) })
        )
      )
      yield* Effect.yieldNow
      yield* admin.create("workflows", ns, manifestOf(v))
      const result = yield* Fiber.join(done)
      if (result === "timeout") {
        const current = yield* controller.workflows.get(ns, name)
        return timedOut(v, current._tag === "Some" ? current.value : undefined, seconds)
      }
      return judge(v, result, started)
    })

  const remove = (v: Variant) =>
    Effect.gen(function*() {
      const ns = v.wf.metadata.namespace!
      const name = v.wf.metadata.name!
      yield* admin.delete("workflows", ns, name).pipe(Effect.ignore)
      yield* Embedded.awaitWorkflow(controller, ns, name, (wf) => wf === undefined).pipe(
        Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.void })
      )
    })

  const outcomes = yield* runVariants(variants, { attempt, remove })
  return report(examples, outcomes)
})

exitWith(Effect.runPromise(main.pipe(
  Effect.scoped,
  Effect.provide(InMemoryKube.layer),
  Effect.provideService(References.MinimumLogLevel, verbose ? "Info" : "None")
)))
